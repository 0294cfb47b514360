"""Celery wrappers of the collection pipeline (STYLE rule 4): observers.pipeline holds the
steps; this module only loads what a task names and calls them."""
from pathlib import Path

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection

from observers.archive import ArchiveChunk
from observers.backoff import backoff
from observers.models import ObserverProfile
from observers.pipeline import piece_process

# The database away for a while (restarted, failed over, the connection cut): the piece is
# tried again later rather than failed, which would leave its calls to `reprocess`. COPY
# runs on the driver's own cursor, whose errors Django does not wrap.
_DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
try:
    import psycopg2

    _DATABASE_AWAY += (psycopg2.OperationalError, psycopg2.InterfaceError)
except ImportError:  # SQLite only
    pass

RETRY_MAX_SECONDS = 300


@shared_task(name="observers.process_chunk", acks_late=True, bind=True)
def process_chunk(self, profile_id: int, path: str, offset: int, length: int, source_name: str,
                  lines_before: int = 0) -> dict:
    """Parse and store one archived delivery, or a piece of one that starts after
    `lines_before` lines; a repeat stores nothing twice (R2.4). While the database is away
    the task is tried again, 1 s, 2 s, 4 s ... up to 5 minutes apart, for as long as it
    takes; in-process (no broker) the error goes to the collector, which keeps the data."""
    try:
        profile = ObserverProfile.objects.select_related("device").get(pk=profile_id)
        data = ArchiveChunk(Path(path), offset, length).read()
        return piece_process(profile=profile, data=data, source_name=source_name,
                             lines_before=lines_before).as_dict()
    except _DATABASE_AWAY as exc:
        if self.request.is_eager:
            raise
        connection.close()  # the next try opens a new one
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, 1, RETRY_MAX_SECONDS),
                         max_retries=None) from exc
