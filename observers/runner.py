"""Runs a profile's data source as a long-running loop (R2.2, R2.5)."""
import logging
import threading
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from observers.models import ObserverProfile, ObserverState, SourceType
from observers.parsers import parser_for, parser_options_problems
from observers.services import profile_deliver, profile_logger, profile_set_state
from observers.sources.folder import FolderWatcher

logger = logging.getLogger(__name__)


def _folder_watcher(profile: ObserverProfile) -> FolderWatcher:
    path = profile.settings.get("path")
    if not path:
        raise ValueError(f"observer {profile.name}: a folder source needs settings.path")

    def deliver(data: bytes, name: str):
        close_old_connections()
        return profile_deliver(profile=profile, data=data, source_name=name)

    return FolderWatcher(path=Path(path), deliver=deliver,
                         max_bytes=settings.TARISCOPE_MAX_FILE_BYTES,
                         settle_seconds=float(profile.settings.get("settle_seconds", 2)))


def run_profile(profile: ObserverProfile, *, once: bool = False,
                stop: threading.Event | None = None, interval: float = 5.0) -> None:
    """Collect for `profile` until `stop` is set (or one pass when `once`)."""
    if profile.source != SourceType.FOLDER:
        raise NotImplementedError(
            f"observer {profile.name}: the {profile.source} source is not available in this "
            "version; only folder profiles can run"
        )
    # Refuse to start, rather than archive what cannot be parsed.
    parser_for(profile.device.type)
    problems = parser_options_problems(profile.device.type, profile.settings.get("parser"))
    if problems:
        raise ValueError(f"observer {profile.name}: parser settings: " + "; ".join(problems))
    stop = stop or threading.Event()
    log = profile_logger(profile)
    watcher = _folder_watcher(profile)
    if once:
        # One pass takes every file present now, however recently it was written.
        watcher.settle_seconds = 0
    profile_set_state(profile=profile, state=ObserverState.ONLINE)
    try:
        while True:
            try:
                watcher.poll()
            except Exception as exc:  # one bad pass must not stop the collector
                log.error("poll failed: %s", exc)
                logger.exception("observer %s: poll failed", profile.name)
                if once:
                    raise
            if once or stop.wait(interval):
                break
    finally:
        profile_set_state(profile=profile, state=ObserverState.OFFLINE)
