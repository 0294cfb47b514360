"""R2.4 for streams: what a TCP or RADIUS source receives goes to the raw archive at once,
and is handed to processing from there.

A stream has nobody to ask for a record again (3CX does not resend a CDR line; a NAS is
answered as soon as its Stop is safe), so the raw archive is the collector's journal:

- `write(data, name)` appends the bytes to the archive durably (fsync) and returns: the TCP
  sources call it for what each read brought, the RADIUS source before it answers. Nothing
  waits in memory in between, so a collector killed with `kill -9` loses at most the
  unfinished line of each connection.
- A sender thread hands the archived bytes to processing (observers.delivery.chunk_hand_on:
  a Celery task, or in this process on the embedded default), in order, in tasks of at most
  `flush_lines` lines (and TARISCOPE_TASK_BYTES), each gathered for at most `flush_seconds`.
  After each task it records how far it got in a cursor next to the archive
  (`.<profile>.sent`: the archive file and the offset, replaced atomically).
- While the broker or the database is away the sender tries again with back-off (from
  `retry_min` to `retry_max`), and the collector goes on reading and archiving: an outage
  costs disk, not calls. Any other error fails the batch for good, counted on the profile
  (observers.pipeline.piece_failure_record); its bytes stay in the archive for `reprocess`.
- When a collector starts, the archive after the cursor (what a collector killed, or
  stopped during an outage, had archived but not handed on) is handed on first. Handing on
  twice is harmless: a call is stored once by its source key, a reject once by its print.

One collector per profile: the journal holds a lock (`.<profile>.lock`) while it is open.
"""
import fcntl
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from observers.archive import (
    ArchiveChunk,
    archive_chunk_append,
    archive_file_name,
    archive_line_regions,
    archive_period_bounds,
)
from observers.backoff import backoff
from observers.delivery import chunk_hand_on, delivery_away
from observers.logs import STATUS
from observers.models import ObserverProfile
from observers.pipeline import piece_failure_record
from scripts.events import Event, event_emit

RECOVERED = "archive"  # the source name of bytes handed on after a restart
LOCK_WAIT_SECONDS = 10.0  # a collector being replaced may take this long to let go


class JournalBusy(RuntimeError):
    """Another collector of the same profile holds the journal."""


@dataclass
class _Region:
    """Bytes in the archive not handed on yet."""

    path: Path
    offset: int
    length: int
    lines: int
    name: str
    since: float  # when they were written (monotonic)

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class JournalSettings:
    flush_lines: int = 500
    flush_seconds: float = 1.0
    retry_min: float = 0.5
    retry_max: float = 30.0
    close_seconds: float = 5.0  # on stop, how long the last attempt may take


class ArchiveJournal:
    """The raw archive of one profile used as its collector's journal (module docstring)."""

    def __init__(self, profile: ObserverProfile, *, log: logging.Logger,
                 config: JournalSettings | None = None, task_bytes: int | None = None):
        self.profile = profile
        self.log = log
        self.config = config or JournalSettings()
        self.task_bytes = task_bytes or settings.TARISCOPE_TASK_BYTES
        self.folder = profile.archive_path
        self.cursor_path = self.folder / f".{profile.name}.sent"
        self._regions: deque[_Region] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._failures = 0
        self._retry_at = 0.0
        self._lock_handle = None
        self._sender: threading.Thread | None = None

    # -- the collector's side -------------------------------------------------------------

    def open(self) -> "ArchiveJournal":
        """Take the profile's lock, queue what the last run left unsent, start sending."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock()
        backlog = self._backlog()
        if backlog:
            self._regions.extend(backlog)
            self.log.log(STATUS, "%d bytes (%d lines) in the raw archive were not handed on "
                         "before the last stop; handing them on now", self.pending_bytes,
                         self.pending_lines)
        self._sender = threading.Thread(target=self._send_loop, name=f"{self.profile.name}-journal",
                                        daemon=True)
        self._sender.start()
        return self

    def write(self, data: bytes, name: str) -> None:
        """Append `data` (complete lines) to the archive durably; it is then the journal's to
        hand on. Raises OSError when the archive cannot be written (nothing was taken)."""
        if not data:
            return
        chunk = archive_chunk_append(folder=self.folder, profile_name=self.profile.name,
                                     period=self.profile.archive_period, data=data)
        region = _Region(chunk.path, chunk.offset, chunk.length, data.count(b"\n") or 1, name,
                         time.monotonic())
        with self._wake:
            self._regions.append(region)
            self._wake.notify()

    # The interface of a source's `deliver` (observers/sources/__init__.py).
    __call__ = write

    def close(self) -> None:
        """Hand on what can be within `close_seconds`, then stop; what is left waits in the
        archive for the next start."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._sender is not None:
            self._sender.join()
        if self._regions:
            self.log.log(STATUS, "stopping with %d lines (%d bytes) not handed on yet; they are "
                         "in the raw archive and go when the collector starts again",
                         self.pending_lines, self.pending_bytes)
        if self._lock_handle is not None:
            self._lock_handle.close()  # lets go of the lock
            self._lock_handle = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    @property
    def pending_lines(self) -> int:
        with self._wake:
            return sum(region.lines for region in self._regions)

    @property
    def pending_bytes(self) -> int:
        with self._wake:
            return sum(region.length for region in self._regions)

    # -- the lock and the cursor ----------------------------------------------------------

    def _lock(self) -> None:
        handle = open(self.folder / f".{self.profile.name}.lock", "a")  # noqa: SIM115 (held open)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise JournalBusy(f"observer {self.profile.name}: another collector of this "
                                      "profile is running") from None
                time.sleep(0.2)
        self._lock_handle = handle

    def _cursor(self) -> tuple[str, int] | None:
        try:
            saved = json.loads(self.cursor_path.read_text())
            return str(saved["file"]), int(saved["offset"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self.log.error("the journal cursor %s is unreadable (%s); starting after what "
                           "the archive holds now", self.cursor_path, exc)
            return None

    def _cursor_save(self, path: Path, offset: int) -> None:
        temporary = self.cursor_path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump({"file": path.name, "offset": offset}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.cursor_path)

    def _backlog(self) -> list[_Region]:
        """The archive after the cursor, in task-sized regions; with no cursor (a first
        start), nothing, and the cursor is set at the archive's end."""
        cursor = self._cursor()
        if cursor is None:
            today = self.folder / archive_file_name(
                self.profile.name, self.profile.archive_period, timezone.localdate())
            self._cursor_save(today, today.stat().st_size if today.exists() else 0)
            return []
        name, offset = cursor
        start = archive_period_bounds(name, self.profile.name)
        files = []
        for path in self.folder.iterdir():
            bounds = archive_period_bounds(path.name, self.profile.name)
            if bounds and (path.name == name or start is None or bounds[0] > start[0]):
                files.append((bounds[0], path))
        now = time.monotonic()
        regions = []
        for _, path in sorted(files):
            first = offset if path.name == name else 0
            regions += [_Region(path, region_offset, length, lines, RECOVERED, now)
                        for region_offset, length, lines in
                        archive_line_regions(path, first, self.task_bytes)]
        return regions

    # -- the sender -----------------------------------------------------------------------

    def _send_loop(self) -> None:
        deadline = None
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if self._closing and deadline is None:
                    deadline = time.monotonic() + self.config.close_seconds
                if not self._hand_on(batch) and self._closing:
                    return  # away: the rest waits for the next start
                if deadline is not None and time.monotonic() >= deadline:
                    return
        finally:
            connection.close()  # the embedded default processed in this thread

    def _next_batch(self) -> list[_Region] | None:
        """Wait until a batch is due (or the journal closes); take it, without removing it."""
        with self._wake:
            while True:
                now = time.monotonic()
                if not self._regions:
                    if self._closing:
                        return None
                    self._wake.wait()
                    continue
                if self._closing:
                    return self._batch()  # one last attempt, whatever the back-off says
                if now < self._retry_at:
                    self._wake.wait(self._retry_at - now)
                    continue
                waited = now - self._regions[0].since
                if (waited >= self.config.flush_seconds
                        or self._lines_up_to(self.config.flush_lines) >= self.config.flush_lines
                        or self._regions[0].name == RECOVERED):
                    return self._batch()
                self._wake.wait(self.config.flush_seconds - waited)

    def _lines_up_to(self, limit: int) -> int:
        lines = 0
        for region in self._regions:
            lines += region.lines
            if lines >= limit:
                break
        return lines

    def _batch(self) -> list[_Region]:
        """The first regions that make one task: adjacent in one file, from one source, at
        most flush_lines lines and task_bytes (a single region may be larger)."""
        batch = [self._regions[0]]
        lines, size = batch[0].lines, batch[0].length
        for region in list(self._regions)[1:]:
            last = batch[-1]
            if (region.path != last.path or region.offset != last.end or region.name != last.name
                    or lines + region.lines > self.config.flush_lines
                    or size + region.length > self.task_bytes):
                break
            batch.append(region)
            lines += region.lines
            size += region.length
        return batch

    def _hand_on(self, batch: list[_Region]) -> bool:
        """One task for `batch`; on success (or a failure for good) it leaves the journal."""
        first, last = batch[0], batch[-1]
        chunk = ArchiveChunk(first.path, first.offset, last.end - first.offset)
        close_old_connections()
        try:
            chunk_hand_on(profile=self.profile, chunk=chunk, source_name=first.name)
        except Exception as exc:
            if not delivery_away(exc):
                self._give_up(batch, exc)
                return True
            self._failures += 1
            delay = backoff(self._failures - 1, self.config.retry_min, self.config.retry_max,
                            jitter=True)
            self._retry_at = time.monotonic() + delay
            # The first failure of an outage shows at the default level, the retries below it.
            self.log.log(STATUS if self._failures == 1 else logging.WARNING,
                         "handing on %d lines failed (%s); they wait in the raw archive, "
                         "next attempt in %.1f s", self.pending_lines, exc, delay)
            if isinstance(exc, DatabaseError):
                event_emit(Event.DATABASE_ERROR, profile=self.profile.name, error=str(exc))
            return False
        if self._failures:
            self.log.log(STATUS, "handing on works again after %d failed attempts",
                         self._failures)
        self._failures, self._retry_at = 0, 0.0
        self._done(batch)
        return True

    def _give_up(self, batch: list[_Region], exc: Exception) -> None:
        self.log.exception("%s: processing failed for good", batch[0].name)
        try:
            piece_failure_record(profile_id=self.profile.pk, source_name=batch[0].name,
                                 error=f"{type(exc).__name__}: {exc}")
        except DatabaseError:
            self.log.exception("recording the failure failed")
        self._done(batch)

    def _done(self, batch: list[_Region]) -> None:
        with self._wake:
            for _ in batch:
                self._regions.popleft()
        self._cursor_save(batch[-1].path, batch[-1].end)
