"""R2.4: every byte received is appended to the profile's raw archive before it is parsed."""
import os
from datetime import date, datetime
from pathlib import Path

from django.utils import timezone


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


def archive_append(*, folder: Path, profile_name: str, period: str, data: bytes,
                   now: datetime | None = None) -> Path:
    """Append `data` durably (flushed and fsynced) and return the archive file's path."""
    day = timezone.localdate(now or timezone.now())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / archive_file_name(profile_name, period, day)
    if data and not data.endswith(b"\n"):
        # Records of the next delivery must not run on into this one's last line.
        data += b"\n"
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path
