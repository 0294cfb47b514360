"""The collection pipeline: receive -> archive -> parse -> store (rate) (STYLE rule 5)."""
import logging
from dataclasses import asdict, dataclass
from logging.handlers import WatchedFileHandler

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.services import calls_store
from observers.archive import archive_append
from observers.models import LogLevel, ObserverProfile, ObserverState, RejectedRecord
from observers.parsers import parser_for
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


def profile_ingest(*, profile: ObserverProfile, data: bytes, source_name: str = "") -> IngestSummary:
    """R2.4, R2.7: archive `data` durably, then parse it and store its calls and rejects."""
    log = profile_logger(profile)
    archive_append(folder=profile.archive_path, profile_name=profile.name,
                   period=profile.archive_period, data=data)
    parse = parser_for(profile.device.type)
    records, rejects = [], []
    for item in parse(data):
        (rejects if isinstance(item, Reject) else records).append(item)
    for reject in rejects:
        log.warning("%s line %s rejected: %s", source_name, reject.line_number, reject.reason)
    with transaction.atomic():
        RejectedRecord.objects.bulk_create(
            RejectedRecord(profile=profile, source_name=source_name[:300],
                           line_number=r.line_number, raw=r.raw, reason=r.reason[:500])
            for r in rejects
        )
        stored = calls_store(device=profile.device, records=records)
        ObserverProfile.objects.filter(pk=profile.pk).update(
            records_total=F("records_total") + stored.calls,
            rejects_total=F("rejects_total") + len(rejects),
            **({"last_record_at": timezone.now()} if stored.calls else {}),
        )
    summary = IngestSummary(received=len(records) + len(rejects), calls=stored.calls,
                            duplicates=stored.duplicates, rejected=len(rejects))
    log.info("%s: %s", source_name or "data", summary.as_dict())
    return summary


def profile_set_state(*, profile: ObserverProfile, state: str) -> None:
    """R2.5: record whether the profile's collector is running."""
    ObserverProfile.objects.filter(pk=profile.pk).update(state=state)
    profile.state = state
    profile_logger(profile).log(STATUS, "observer %s", state)


__all__ = ["IngestSummary", "ObserverState", "profile_ingest", "profile_set_state"]
