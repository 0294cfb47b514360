"""R2.4: every byte received is appended to the profile's raw archive before it is parsed.

The archive is also what the processing task reads: a delivery is handed on as
(archive file, offset, length), so a worker never needs the bytes in the broker message
and a crashed worker re-reads exactly the same bytes.
"""
import fcntl
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


def archive_period_bounds(file_name: str, profile_name: str) -> tuple[date, date] | None:
    """The first and last day an archive file `<profile>_<period>.cdr` covers, or None."""
    prefix = f"{profile_name}_"
    if not (file_name.startswith(prefix) and file_name.endswith(".cdr")):
        return None
    stamp = file_name[len(prefix):-len(".cdr")]
    try:
        if len(stamp) == 10:  # 2024-06-17
            day = date.fromisoformat(stamp)
            return day, day
        if "-W" in stamp:  # 2024-W25
            monday = datetime.strptime(stamp + "-1", "%G-W%V-%u").date()
            return monday, monday + timedelta(days=6)
        first = date.fromisoformat(stamp + "-01")  # 2024-06
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return first, following - timedelta(days=1)
    except ValueError:
        return None


def archive_files(folder: Path, profile_name: str, date_from: date, date_to: date) -> list[Path]:
    """The profile's archive files whose period meets [date_from, date_to], oldest first."""
    found = []
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        bounds = archive_period_bounds(path.name, profile_name)
        if bounds and bounds[0] <= date_to and bounds[1] >= date_from:
            found.append((bounds[0], path))
    return [path for _, path in sorted(found)]


def read_in_chunks(path: Path, size: int = 8 * 1024 * 1024):
    """The file's bytes in pieces of about `size`, each ending at a line end."""
    with open(path, "rb") as handle:
        rest = b""
        while True:
            block = handle.read(size)
            if not block:
                if rest:
                    yield rest
                return
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            yield block[:cut + 1]
            rest = block[cut + 1:]


def archive_line_regions(path: Path, start: int, size: int):
    """(offset, length, lines) of the file's bytes from `start` on, in regions of about
    `size` bytes (more only for a longer line), each ending at a line end; an unfinished
    last line is left out (its writer is still at work). Reads a block at a time."""
    size = max(size, 1)
    with open(path, "rb") as handle:
        handle.seek(start)
        offset, buffer = start, b""
        while True:
            block = handle.read(max(size, 1 << 16))
            buffer += block
            while len(buffer) >= size or (not block and buffer):
                cut = buffer.rfind(b"\n", 0, size)
                if cut < 0:
                    cut = buffer.find(b"\n", size)
                if cut < 0:
                    break  # an unfinished line: read on, or leave it out at the end
                piece, buffer = buffer[:cut + 1], buffer[cut + 1:]
                yield offset, len(piece), piece.count(b"\n")
                offset += len(piece)
            if not block:
                return
