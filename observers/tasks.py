"""Celery wrappers of the collection pipeline (STYLE rule 4): observers.pipeline holds the
steps; this module only loads what a task names and calls them."""
import logging
from pathlib import Path

from celery import Task, shared_task
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from observers.archive import ArchiveChunk
from observers.backoff import backoff
from observers.models import ObserverProfile
from observers.pipeline import piece_failure_record, piece_process
from scripts.events import Event, event_emit

logger = logging.getLogger(__name__)

# The database away for a while (restarted, failed over, refusing connections, the
# connection cut): the piece is tried again later rather than failed, which would leave
# its calls to `reprocess`. COPY runs on the driver's own cursor, whose errors Django does
# not wrap.
_DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
try:
    # psycopg2 is the PostgreSQL driver, not installed where only SQLite is used.
    import psycopg2

    _DATABASE_AWAY += (psycopg2.OperationalError, psycopg2.InterfaceError)
except ImportError:
    pass

# A minute at most between tries: a waiting piece costs one refused connection a minute,
# and the calls are stored within a minute of the database coming back.
RETRY_MAX_SECONDS = 60


class _PieceTask(Task):
    """A processing task whose failure for good is recorded on its profile (R2.4)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if self.request.is_eager:
            return  # in-process, the error goes back to the collector, which keeps the data
        try:
            piece_failure_record(profile_id=args[0], source_name=args[4],
                                 error=f"{type(exc).__name__}: {exc}")
        except DatabaseError:
            logger.exception("recording the failure of piece %s failed", task_id)


# max_retries=None on the task, not on retry(): there, None means "the task's default",
# which is 3, and a 30 s outage outlasts three retries.
@shared_task(name="observers.process_chunk", base=_PieceTask, acks_late=True, bind=True,
             max_retries=None)
def process_chunk(self, profile_id: int, path: str, offset: int, length: int, source_name: str,
                  lines_before: int = 0) -> dict:
    """Parse and store one archived delivery, or a piece of one that starts after
    `lines_before` lines; a repeat stores nothing twice (R2.4). While the database is away
    the task is tried again, 1 s, 2 s, 4 s ... up to a minute apart, for as long as it
    takes, each time raising the database error event (R9.2); any other error fails the
    piece for good, counted on its profile. In-process (no broker) the error goes to the
    collector, which keeps the data."""
    try:
        profile = ObserverProfile.objects.select_related("device").get(pk=profile_id)
        data = ArchiveChunk(Path(path), offset, length).read()
        return piece_process(profile=profile, data=data, source_name=source_name,
                             lines_before=lines_before).as_dict()
    except _DATABASE_AWAY as exc:
        if self.request.is_eager:
            raise
        connection.close()  # the next try opens a new one
        delay = backoff(self.request.retries, 1, RETRY_MAX_SECONDS)
        logger.warning("piece %s of profile %s: database away (%s); trying again in %s s",
                       source_name, profile_id, exc, delay)
        event_emit(Event.DATABASE_ERROR, profile_id=profile_id, source=source_name,
                   error=str(exc), retry_in=delay)
        raise self.retry(exc=exc, countdown=delay) from exc
