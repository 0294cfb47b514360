"""Runs a profile's data source as a long-running loop (R2.2, R2.5)."""
import hashlib
import logging
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from observers.archive import ArchiveChunk
from observers.delivery import chunk_hand_on, delivery_away
from observers.journal import ArchiveJournal, JournalSettings
from observers.logs import profile_logger
from observers.models import ObserverProfile, ObserverState, SourceType
from observers.parsers import parser_for, parser_options_problems
from observers.pipeline import profile_archive
from observers.services import profile_set_state
from observers.sources import source_class
from observers.sources.folder import FolderWatcher
from observers.sources.tcp import LineSettings
from scripts.events import Event, event_emit

logger = logging.getLogger(__name__)

# Streams, which nobody can be asked to send again, are archived as they arrive and handed
# on from the archive (observers/journal.py); a file stays where it is until delivered.
JOURNALED = frozenset({SourceType.TCP_SERVER, SourceType.TCP_CLIENT, SourceType.RADIUS})


# Files archived whose hand-over failed (the broker or the database away), kept so that the
# retries of the same bytes enqueue them again without archiving them again.
ARCHIVED_WAITING_MAX = 1000


def _deliverer(profile: ObserverProfile):
    """deliver(data, name): archive, then process; a database failure is an event (R9.2).
    A file that comes back because handing it on failed (the same name and bytes) is not
    archived again: its first copy in the archive is handed on."""
    waiting: dict[tuple[str, bytes], ArchiveChunk] = {}

    def deliver(data: bytes, name: str):
        close_old_connections()
        key = (name, hashlib.sha256(data).digest())
        try:
            chunk = waiting.get(key)
            if chunk is None:
                chunk = profile_archive(profile=profile, data=data)
            try:
                delivery = chunk_hand_on(profile=profile, chunk=chunk, source_name=name,
                                         data=data)
            except Exception:
                if len(waiting) < ARCHIVED_WAITING_MAX:
                    waiting[key] = chunk
                raise
            waiting.pop(key, None)
            return delivery
        except DatabaseError as exc:
            event_emit(Event.DATABASE_ERROR, profile=profile.name, error=str(exc))
            raise
    return deliver


def _notifier(profile: ObserverProfile, log: logging.Logger):
    events = {"connected": Event.SOURCE_CONNECTED, "disconnected": Event.SOURCE_DISCONNECTED}

    def notify(event: str, **params):
        log.info("%s %s", event, " ".join(f"{k}={v}" for k, v in params.items()))
        event_emit(events.get(event, event), profile=profile.name, **params)
    return notify


def _check(profile: ObserverProfile) -> None:
    """Refuse to start, rather than archive what cannot be parsed."""
    parser_for(profile.device.type)
    problems = parser_options_problems(profile.device.type, profile.settings.get("parser"))
    if problems:
        raise ValueError(f"observer {profile.name}: parser settings: " + "; ".join(problems))


def build_source(profile: ObserverProfile, log: logging.Logger, deliver=None):
    """The source object of a non-folder profile (observers.sources interface); `deliver`
    by default archives and hands on at once (what a file source wants)."""
    return source_class(profile.source)(name=profile.name, settings=dict(profile.settings),
                                        deliver=_deliverer(profile) if deliver is None else deliver,
                                        log=log,
                                        notify=_notifier(profile, log))


def build_journal(profile: ObserverProfile, log: logging.Logger) -> ArchiveJournal:
    """The journal of a stream profile, with its gathering and retry keys (LINE_SETTINGS;
    a RADIUS profile has none of its own and takes their defaults)."""
    line = LineSettings.from_settings(profile.name, dict(profile.settings))
    return ArchiveJournal(profile, log=log, config=JournalSettings(
        flush_lines=line.flush_lines, flush_seconds=line.flush_seconds,
        retry_min=line.retry_min, retry_max=line.retry_max))


def _folder_watcher(profile: ObserverProfile) -> FolderWatcher:
    """The watcher of a folder profile; a missing `path` stops the collector here."""
    return FolderWatcher.from_settings(name=profile.name, settings=profile.settings,
                                       deliver=_deliverer(profile),
                                       max_bytes=settings.TARISCOPE_MAX_FILE_BYTES,
                                       transient=delivery_away)


def _run_folder(profile, watcher, *, once, stop, interval, log):
    if once:
        # One pass takes every file present now, however recently it was written.
        watcher.settle_seconds = 0
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


def run_profile(profile: ObserverProfile, *, once: bool = False,
                stop: threading.Event | None = None, interval: float = 5.0) -> None:
    """Collect for `profile` until `stop` is set (or, for a folder, one pass when `once`)."""
    _check(profile)
    if once and profile.source != SourceType.FOLDER:
        raise ValueError(f"observer {profile.name}: --once is for folder sources only")
    stop = stop or threading.Event()
    log = profile_logger(profile)
    journal = build_journal(profile, log) if profile.source in JOURNALED else None
    if profile.source == SourceType.FOLDER:
        watcher, source = _folder_watcher(profile), None
    else:
        watcher, source = None, build_source(profile, log, deliver=journal)
    if journal is not None:
        journal.open()  # takes the profile's lock; queues what the last run left unsent
    try:
        profile_set_state(profile=profile, state=ObserverState.ONLINE)
        if source is None:
            _run_folder(profile, watcher, once=once, stop=stop, interval=interval, log=log)
        else:
            source.run(stop)
    finally:
        if journal is not None:
            journal.close()
        profile_set_state(profile=profile, state=ObserverState.OFFLINE)
