"""The collection pipeline: receive -> archive -> parse -> store (rate) (STYLE rule 5)."""
import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass, replace
from logging.handlers import WatchedFileHandler

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from billing.services import calls_store
from observers.archive import ArchiveChunk, archive_chunk_append, archive_files, read_in_chunks
from observers.models import LogLevel, ObserverProfile, ObserverState, RejectedRecord, RemoteBatch
from observers.parsers import line_by_line, parser_for
from observers.parsers.base import Reject

# R2.1 log levels mapped onto Python's: Status shows only start/stop and totals.
_PY_LEVELS = {
    LogLevel.STATUS: logging.WARNING + 5,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.SETUP: logging.DEBUG - 5,
}
STATUS = _PY_LEVELS[LogLevel.STATUS]
logging.addLevelName(STATUS, "STATUS")


def profile_logger(profile: ObserverProfile) -> logging.Logger:
    """R2.5: each profile writes its own log, <logs>/observer/<profile>.log."""
    logger = logging.getLogger(f"tariscope.observer.{profile.name}")
    path = profile.log_path
    if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = WatchedFileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(_PY_LEVELS[profile.log_level])
    return logger


@dataclass
class IngestSummary:
    received: int = 0  # records (parsed or not) in the data
    calls: int = 0  # new calls stored
    duplicates: int = 0  # records already stored before
    rejected: int = 0  # records that could not be parsed

    def add(self, other: "IngestSummary"):
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self):
        return asdict(self)


def profile_archive(*, profile: ObserverProfile, data: bytes) -> ArchiveChunk:
    """R2.4: append received bytes to the profile's raw archive, durably, before parsing."""
    return archive_chunk_append(folder=profile.archive_path, profile_name=profile.name,
                                period=profile.archive_period, data=data)


def chunk_process(*, profile: ObserverProfile, data: bytes, source_name: str = "",
                  lines_before: int = 0) -> IngestSummary:
    """R2.7, R3, R4: parse archived bytes; store their calls and rejects. Safe to repeat.
    `lines_before`: the lines of the same file before `data` (a piece of a large delivery),
    so that rejects carry their line numbers in the file."""
    log = profile_logger(profile)
    parse = parser_for(profile.device.type)
    records, rejects = [], []
    for item in parse(data, profile.settings.get("parser") or {}):
        if isinstance(item, Reject):
            if lines_before and item.line_number is not None:
                item = replace(item, line_number=item.line_number + lines_before)
            rejects.append(item)
        else:
            records.append(item)
    for reject in rejects:
        log.warning("%s line %s rejected: %s", source_name, reject.line_number, reject.reason)
    with transaction.atomic():
        new_rejects = _rejects_store(profile=profile, rejects=rejects, source_name=source_name)
        stored = calls_store(device=profile.device, records=records)
        ObserverProfile.objects.filter(pk=profile.pk).update(
            records_total=F("records_total") + stored.calls,
            rejects_total=F("rejects_total") + new_rejects,
            **({"last_record_at": timezone.now()} if stored.calls else {}),
        )
    summary = IngestSummary(received=len(records) + len(rejects), calls=stored.calls,
                            duplicates=stored.duplicates, rejected=len(rejects))
    log.log(STATUS, "%s: %s", source_name or "data", summary.as_dict())
    return summary


def _rejects_store(*, profile: ObserverProfile, rejects: list[Reject], source_name: str) -> int:
    """R2.7: keep each bad record once, however often it is delivered; return how many are new."""
    by_print = {RejectedRecord.fingerprint_of(r.raw): r for r in rejects}
    known = set()
    prints = list(by_print)
    for i in range(0, len(prints), 500):
        known.update(RejectedRecord.objects.filter(
            profile=profile, fingerprint__in=prints[i:i + 500]).values_list("fingerprint", flat=True))
    RejectedRecord.objects.bulk_create(
        [RejectedRecord(profile=profile, source_name=source_name[:300], line_number=r.line_number,
                        raw=r.raw, reason=r.reason[:500], fingerprint=fp)
         for fp, r in by_print.items() if fp not in known],
        ignore_conflicts=True,
    )
    return len(by_print) - len(known)


def profile_ingest(*, profile: ObserverProfile, data: bytes, source_name: str = "") -> IngestSummary:
    """Archive `data`, then process it in this process (the `ingest` command's path)."""
    parser_for(profile.device.type)  # fail before archiving what could never be parsed
    profile_archive(profile=profile, data=data)
    # The bytes are in hand: no need to read them back from the archive (the Celery path,
    # which runs elsewhere, does).
    return chunk_process(profile=profile, data=data, source_name=source_name)


def delivery_pieces(data: bytes, size: int) -> list[tuple[int, int, int]]:
    """(offset, length, lines before) of the pieces of `data` of about `size` bytes each,
    every piece but the last ending with a newline."""
    pieces, start, lines, end_of_data = [], 0, 0, len(data)
    while start < end_of_data:
        end = start + max(size, 1)
        if end >= end_of_data:
            end = end_of_data
        else:
            newline = data.find(b"\n", end - 1)
            end = end_of_data if newline < 0 else newline + 1
        pieces.append((start, end - start, lines))
        lines += data.count(b"\n", start, end)
        start = end
    return pieces


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
    from observers.tasks import process_chunk

    chunk = profile_archive(profile=profile, data=data)
    if line_by_line(profile.device.type):
        pieces = delivery_pieces(data, settings.TARISCOPE_TASK_BYTES)
    else:
        pieces = [(0, chunk.length, 0)]
    return Delivery([
        process_chunk.apply_async(
            (profile.pk, str(chunk.path), chunk.offset + offset, length, source_name,
             lines_before), ignore_result=not keep_result)
        for offset, length, lines_before in pieces])


def profile_reprocess(*, profile: ObserverProfile, date_from, date_to) -> IngestSummary:
    """R2.4: parse the raw archive of a period again; calls already stored are skipped, so
    only what was lost (or rejected before a parser fix) is added."""
    total = IngestSummary()
    for path in archive_files(profile.archive_path, profile.name, date_from, date_to):
        for piece in read_in_chunks(path):
            total.add(chunk_process(profile=profile, data=piece, source_name=f"archive:{path.name}"))
    return total


def profile_issue_token(*, profile: ObserverProfile) -> str:
    """R2.6: a new credential for the profile's remote observer, shown once; the previous one
    stops working. Only its SHA-256 is kept."""
    token = f"obs_{secrets.token_urlsafe(32)}"
    ObserverProfile.objects.filter(pk=profile.pk).update(remote_token_hash=token_hash(token))
    profile_logger(profile).log(STATUS, "remote observer token issued")
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def remote_batch_receive(*, profile: ObserverProfile, batch_id: str, data: bytes,
                         source_name: str) -> tuple[bool, dict]:
    """R2.6: a batch from a remote observer: (True, summary) when new; (False, summary of the
    first delivery) when this batch was received before (its answer was lost)."""
    known = RemoteBatch.objects.filter(profile=profile, batch_id=batch_id).first()
    if known is not None:
        return False, known.summary
    outcome = profile_deliver(profile=profile, data=data, source_name=source_name,
                              keep_result=False)
    summary = {"bytes": len(data)}
    if outcome.ready() and outcome.successful():
        summary.update(outcome.get())  # processed in-process (no broker)
    try:
        with transaction.atomic():
            RemoteBatch.objects.create(profile=profile, batch_id=batch_id, size=len(data),
                                       summary=summary)
    except IntegrityError:  # the same batch, sent twice at once: the other copy won
        return False, summary
    return True, summary


def profile_set_enabled(*, profile: ObserverProfile, enabled: bool) -> ObserverProfile:
    """R2.5: start (True) or stop (False) a local profile; the supervisor follows within seconds."""
    ObserverProfile.objects.filter(pk=profile.pk).update(enabled=enabled)
    profile.enabled = enabled
    profile_logger(profile).log(STATUS, "observer %s from the UI",
                                "started" if enabled else "stopped")
    return profile


def profile_set_state(*, profile: ObserverProfile, state: str) -> None:
    """R2.5: record whether the profile's collector is running. SQLite (the embedded
    default) may refuse a write for a moment while another thread writes: try again."""
    for attempt in range(10):
        try:
            ObserverProfile.objects.filter(pk=profile.pk).update(state=state)
            break
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.1 * (attempt + 1))
    profile.state = state
    profile_logger(profile).log(STATUS, "observer %s", state)


__all__ = ["IngestSummary", "ObserverState", "profile_deliver", "profile_ingest", "profile_set_state"]
