"""The steps of collection, in order (STYLE rule 5): archive the bytes received (R2.4), cut
a large delivery into pieces, parse (R2.7), hand the records to storage (billing.calls:
normalise, classify, rate, store; R3, R4), rebuild the charges they change (R7.1), and keep
the records that could not be parsed (R2.7).

`piece_process` is the processing step: the Celery task (observers.tasks), the in-process
path of `ingest` (`profile_ingest`) and `reprocess` all call it the same way. How a
delivery reaches it, through a broker or in this process, is observers.delivery's affair.
"""
import zoneinfo
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from billing.accounts import charges_recalculate_for
from billing.calls import StoreResult, calls_store
from observers.archive import ArchiveChunk, archive_chunk_append, archive_files, read_in_chunks
from observers.logs import STATUS, profile_logger
from observers.models import ObserverProfile, RejectedRecord
from observers.parsers import parser_for
from observers.parsers.base import CallRecord, Reject
from scripts.events import Event, event_emit


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


def records_parse(*, profile: ObserverProfile, data: bytes,
                  lines_before: int = 0) -> tuple[list[CallRecord], list[Reject]]:
    """R2.7: the records in `data`, and the rejects, each with its line number in the file
    (`lines_before`: the lines of the same file before `data`, when it is a piece)."""
    parse = parser_for(profile.device.type)
    records, rejects = [], []
    for item in parse(data, profile.settings.get("parser") or {}):
        if isinstance(item, Reject):
            if lines_before and item.line_number is not None:
                item = replace(item, line_number=item.line_number + lines_before)
            rejects.append(item)
        else:
            records.append(item)
    return records, rejects


def charges_update(*, stored: StoreResult) -> None:
    """R7.1: rebuild the charges of the months that gained priced calls."""
    if stored.charged:
        charges_recalculate_for(pairs=stored.charged)


def piece_process(*, profile: ObserverProfile, data: bytes, source_name: str = "",
                  lines_before: int = 0,
                  keep: Callable[[CallRecord], bool] | None = None) -> IngestSummary:
    """R2.7, R3, R4, R7.1: parse archived bytes, then store their rejects and calls and rebuild
    the charges they change, in one transaction. Safe to repeat. `lines_before`: the lines
    of the same file before `data` (a piece of a large delivery), so that rejects carry
    their line numbers in the file. `keep`: only the records it accepts are stored (and
    counted), as `reprocess` by call dates wants."""
    log = profile_logger(profile)
    records, rejects = records_parse(profile=profile, data=data, lines_before=lines_before)
    if keep is not None:
        records = [record for record in records if keep(record)]
    for reject in rejects:
        log.warning("%s line %s rejected: %s", source_name, reject.line_number, reject.reason)
    with transaction.atomic():
        new_rejects = rejects_store(profile=profile, rejects=rejects, source_name=source_name)
        stored = calls_store(device=profile.device, records=records)
        charges_update(stored=stored)
        if stored.ids:
            # R9.2: one event for the calls of this piece, recorded (by the scripts app) in
            # this transaction: stored calls and their event commit together or not at all.
            # `subscribers`: those whose month's usage grew (their limits are checked, R8.1).
            event_emit(Event.CALL_PROCESSED, profile=profile.name, ids=stored.ids,
                       subscribers=sorted(stored.subscribers))
        today = timezone.localdate()
        ObserverProfile.objects.filter(pk=profile.pk).update(
            records_total=F("records_total") + stored.calls,
            rejects_total=F("rejects_total") + new_rejects,
            # (Every expression of an UPDATE reads the row as it was.)
            calls_today=Case(When(calls_day=today, then=F("calls_today") + stored.calls),
                             default=Value(stored.calls)),
            calls_day=today,
            **({"last_record_at": timezone.now()} if stored.calls else {}),
        )
    summary = IngestSummary(received=len(records) + len(rejects), calls=stored.calls,
                            duplicates=stored.duplicates, rejected=len(rejects))
    log.log(STATUS, "%s: %s", source_name or "data", summary.as_dict())
    return summary


def rejects_store(*, profile: ObserverProfile, rejects: list[Reject], source_name: str) -> int:
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
    return piece_process(profile=profile, data=data, source_name=source_name)


def profile_reprocess(*, profile: ObserverProfile, date_from: date, date_to: date,
                      by_call_date: bool = False, late_days: int = 31) -> IngestSummary:
    """R2.4: parse the raw archive of a period again; calls already stored are skipped, so
    only what was lost (or rejected before a parser fix) is added.

    The archive is kept by the day the data was received: by default the period picks the
    archive files received in it. With `by_call_date` it is a period of the calls' start
    days (in the device's zone): the files received from its first day up to `late_days`
    after its last are read (records arrive late: a November call collected on 1 December),
    and only the calls that started in the period are stored."""
    keep = None
    until = date_to
    if by_call_date:
        zone = zoneinfo.ZoneInfo(profile.device.timezone)
        until = date_to + timedelta(days=late_days)

        def keep(record: CallRecord) -> bool:
            start = record.start
            day = (start.astimezone(zone) if start.tzinfo else start).date()
            return date_from <= day <= date_to
    total = IngestSummary()
    for path in archive_files(profile.archive_path, profile.name, date_from, until):
        for piece in read_in_chunks(path):
            total.add(piece_process(profile=profile, data=piece, source_name=f"archive:{path.name}",
                                    keep=keep))
    return total


def piece_failure_record(*, profile_id: int, source_name: str, error: str) -> None:
    """R2.4: a piece that failed for good is counted on its profile, logged and raised as an
    event, so that the Observers page, /health and scripts show it; its bytes are in the
    raw archive, for `reprocess` once the cause is fixed."""
    error = error[:500]
    ObserverProfile.objects.filter(pk=profile_id).update(
        failures_total=F("failures_total") + 1, last_failure=error,
        last_failure_at=timezone.now())
    profile = ObserverProfile.objects.filter(pk=profile_id).first()
    if profile is not None:
        profile_logger(profile).error("%s: processing failed, kept in the raw archive for "
                                      "reprocess: %s", source_name or "data", error)
        event_emit(Event.PROCESSING_FAILED, profile=profile.name, source=source_name, error=error)
