"""R2.2 folder source: poll a folder; each finished file is processed once, then moved to
`done/` (or `failed/` when it could not be read). Its keys: SETTINGS."""
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from observers.sources.keys import PARSER, SECONDS, TEXT, Setting, settings_with_defaults

logger = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"

SETTINGS = (
    Setting("path", TEXT, "the folder the PBX writes its files to", required=True),
    Setting("settle_seconds", SECONDS, "a file unchanged for this long is taken even if it "
            "was not seen on the poll before", default=2),
    PARSER,
)
DEFAULTS = settings_with_defaults({}, SETTINGS)


def move_into(item: Path, target_dir: Path) -> Path:
    """Move `item` into `target_dir` (made if missing) without overwriting: `name.1.ext`,
    `name.2.ext`, … on a clash, so a processed file is kept and never read twice."""
    target_dir.mkdir(exist_ok=True)
    target = target_dir / item.name
    n = 1
    while target.exists():
        target = target_dir / f"{item.stem}.{n}{item.suffix}"
        n += 1
    shutil.move(str(item), str(target))
    return target


@dataclass
class FolderWatcher:
    """Finds files that have stopped growing and hands their bytes to `deliver`.

    A file is taken when its size and modification time are unchanged between two polls
    (or it is older than `settle_seconds`), so a file still being written is never read
    half-way. Hidden files and the `done`/`failed` subfolders are ignored.
    """

    path: Path
    deliver: Callable[[bytes, str], object]
    max_bytes: int = 512 * 1024 * 1024
    settle_seconds: float = float(DEFAULTS["settle_seconds"])
    # A file that failed this many times in a row goes to failed/ ...
    max_attempts: int = 5
    # ... unless the failure is one to wait out (the database away): then it stays.
    transient: Callable[[Exception], bool] = lambda exc: False
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, *, name: str, settings: Mapping, **options) -> "FolderWatcher":
        """The watcher of folder profile `name` with `settings` (SETTINGS); `options` are
        the collector's own (deliver, max_bytes, transient)."""
        settings = settings_with_defaults(settings, SETTINGS)
        if not settings["path"]:
            raise ValueError(f"observer {name}: a folder source needs settings.path")
        return cls(path=Path(settings["path"]), settle_seconds=float(settings["settle_seconds"]),
                   **options)

    def _ready(self, item: Path) -> bool:
        stat = item.stat()
        signature = (stat.st_size, stat.st_mtime_ns)
        previous = self._seen.get(item.name)
        self._seen[item.name] = signature
        if previous == signature:
            return True
        return time.time() - stat.st_mtime >= self.settle_seconds

    def poll(self) -> int:
        """Process every finished file once; return how many were processed.

        A file that fails stays for the next poll and the others are still processed; the
        first failure is raised at the end of the pass. After `max_attempts` failures in a
        row (not transient ones) the file is moved to failed/.
        """
        if not self.path.is_dir():
            raise FileNotFoundError(f"folder {self.path} does not exist")
        processed = 0
        first_error = None
        for item in sorted(self.path.iterdir()):
            # Symlinks could point outside the profile's folder: never followed.
            if item.name.startswith(".") or item.is_symlink() or not item.is_file():
                continue
            if not self._ready(item):
                continue
            self._seen.pop(item.name, None)
            try:
                self._process(item)
            except Exception as exc:
                first_error = first_error or exc
                self._failed(item, exc)
                continue
            self._failures.pop(item.name, None)
            processed += 1
        if first_error is not None:
            raise first_error
        return processed

    def _failed(self, item: Path, exc: Exception) -> None:
        if self.transient(exc):
            return
        count = self._failures.get(item.name, 0) + 1
        self._failures[item.name] = count
        if count >= self.max_attempts:
            logger.error("%s failed %d times (%s): moved to %s/", item, count, exc, FAILED)
            self._failures.pop(item.name, None)
            move_into(item, self.path / FAILED)

    def _process(self, item: Path) -> None:
        size = item.stat().st_size
        if size > self.max_bytes:
            logger.error("%s is %d bytes, over the %d-byte limit", item, size, self.max_bytes)
            move_into(item, self.path / FAILED)
            return
        try:
            self.deliver(item.read_bytes(), item.name)
        except Exception:
            logger.exception("processing %s failed", item)
            raise
        move_into(item, self.path / DONE)
