"""R2.4: every byte received is appended to the profile's raw archive before it is parsed.

The archive is also what the processing task reads: a delivery is handed on as
(archive file, offset, length), so a worker never needs the bytes in the broker message
and a crashed worker re-reads exactly the same bytes.
"""
import fcntl
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from django.utils import timezone


@dataclass(frozen=True)
class ArchiveChunk:
    """Where one delivery's bytes lie in the raw archive."""

    path: Path
    offset: int
    length: int

    def read(self) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.length)
        if len(data) != self.length:
            raise OSError(f"{self.path} holds {len(data)} of {self.length} bytes at {self.offset}")
        return data


def archive_file_name(profile_name: str, period: str, day: date) -> str:
    """`<profile>_<period>.cdr`: the period is 2024-06-17, 2024-W25 or 2024-06."""
    if period == "day":
        stamp = day.isoformat()
    elif period == "week":
        year, week, _ = day.isocalendar()
        stamp = f"{year}-W{week:02d}"
    else:
        stamp = f"{day:%Y-%m}"
    return f"{profile_name}_{stamp}.cdr"


def archive_chunk_append(*, folder: Path, profile_name: str, period: str, data: bytes,
                         now: datetime | None = None) -> ArchiveChunk:
    """Append `data` durably (flushed and fsynced); return where it lies in the archive."""
    day = timezone.localdate(now or timezone.now())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / archive_file_name(profile_name, period, day)
    if data and not data.endswith(b"\n"):
        # Records of the next delivery must not run on into this one's last line.
        data += b"\n"
    with open(path, "ab") as handle:
        # One writer at a time, so that the offset we report is where our bytes went.
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0, os.SEEK_END)
            offset = handle.tell()
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return ArchiveChunk(path=path, offset=offset, length=len(data))


def archive_append(*, folder: Path, profile_name: str, period: str, data: bytes,
                   now: datetime | None = None) -> Path:
    """Append `data` durably and return the archive file's path."""
    return archive_chunk_append(folder=folder, profile_name=profile_name, period=period,
                                data=data, now=now).path
