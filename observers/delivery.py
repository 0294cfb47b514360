"""Hand an archived delivery to the processing step (observers.pipeline.piece_process): to a
Celery worker when a broker is configured, in this process otherwise (the embedded
default), as one task or, for a large file of a line-by-line format, one per piece."""
import kombu.exceptions
from django.conf import settings
from django.db import DatabaseError

from observers.archive import ArchiveChunk
from observers.models import ObserverProfile
from observers.parsers import line_by_line
from observers.pipeline import IngestSummary, delivery_pieces, profile_archive
from observers.tasks import process_chunk


def delivery_away(exc: Exception) -> bool:
    """Whether a failed delivery met the database or the broker away (restarting, failing
    over, refusing connections) rather than bad data: then a collector keeps what it holds
    (a file stays in its folder and is not counted as failing) and delivers it again. Celery
    raises kombu's OperationalError once its own publish retries are spent."""
    return isinstance(exc, DatabaseError | kombu.exceptions.OperationalError)


class Delivery:
    """The processing tasks of one delivery (Celery results, or eager ones in-process): one,
    or one per piece of a large file of a line-by-line format."""

    def __init__(self, results: list):
        self.results = results

    def ready(self) -> bool:
        return all(result.ready() for result in self.results)

    def successful(self) -> bool:
        return all(result.successful() for result in self.results)

    def get(self, timeout: float | None = None) -> dict:
        """The summary of the whole delivery (IngestSummary.as_dict), once every piece is done."""
        total = IngestSummary()
        for result in self.results:
            total.add(IngestSummary(**result.get(timeout=timeout)))
        return total.as_dict()


def profile_deliver(*, profile: ObserverProfile, data: bytes, source_name: str = "",
                    keep_result: bool = True) -> Delivery:
    """Archive `data`, then hand it to the processing task: a Celery worker when a broker
    is configured, this process otherwise (the embedded default). A large delivery of a
    format with one record per line goes as several tasks, cut at line ends, which
    several workers process side by side (R12.1). A collector, which never reads the
    outcome, passes keep_result=False: the worker then writes no result to the backend
    (with a broker, the Delivery's get() is then not available)."""
    chunk = profile_archive(profile=profile, data=data)
    return chunk_hand_on(profile=profile, chunk=chunk, source_name=source_name,
                         keep_result=keep_result, data=data)


def chunk_hand_on(*, profile: ObserverProfile, chunk: ArchiveChunk, source_name: str = "",
                  keep_result: bool = False, data: bytes | None = None) -> Delivery:
    """Hand bytes already in the raw archive to the processing task: one task, or one per
    piece when the device type has one record per line (its bytes are read from the archive
    when `data` is not given)."""
    if line_by_line(profile.device.type):
        pieces = delivery_pieces(chunk.read() if data is None else data,
                                 settings.TARISCOPE_TASK_BYTES)
    else:
        pieces = [(0, chunk.length, 0)]
    return Delivery([
        process_chunk.apply_async(
            (profile.pk, str(chunk.path), chunk.offset + offset, length, source_name,
             lines_before), ignore_result=not keep_result)
        for offset, length, lines_before in pieces])
