"""R2.6: a remote observer: the collector runs on another host and delivers its records to
the main server over HTTP with its own token. It needs no database: received bytes are
spooled to disk first (so nothing is lost while the main server is away) and sent in order;
a batch is deleted from the spool only once the main server has acknowledged it.
"""
import json
import logging
import os
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from observers.backoff import backoff
from observers.parsers import line_by_line
from observers.pipeline import delivery_pieces
from observers.sources import source_class
from observers.sources.folder import FolderWatcher

logger = logging.getLogger(__name__)

# A spooled batch of a line-by-line format goes to the main server in pieces of about this
# size, cut at line ends: well under what a web server or proxy in between accepts.
PIECE_BYTES = 1024 * 1024
# Answers that say the batch itself is refused, and would be on every try: the batch is set
# aside (spool/refused/, with the reason) so that the batches after it go on.
REFUSED_FOR_GOOD = frozenset({400, 413, 415, 422})


class MainServerError(RuntimeError):
    """The main server refused or could not be reached; `status` is its HTTP status, or
    None when it could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class MainServer:
    """The main server's observer API (api/observer.py), with this observer's token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the main server's URL must start with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, path: str, *, data: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            f"{self.url}{path}", data=data, method="POST" if data is not None else "GET",
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/octet-stream", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()[:500].decode("utf-8", "replace")
            raise MainServerError(f"{exc.code} from {self.url}{path}: {body}",
                                  status=exc.code) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise MainServerError(f"{self.url} unreachable: {exc}") from None

    def profile(self) -> dict:
        return self._request("/api/observer/profile")

    def send(self, *, batch_id: str, data: bytes, source_name: str) -> dict:
        return self._request("/api/observer/ingest", data=data,
                             headers={"X-Batch-Id": batch_id, "X-Source-Name": source_name})


class Spool:
    """Batches on disk, in order: `<sequence>.batch` (bytes) with `<sequence>.name`."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "instance"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex)
        # Batch ids are unique per spool: instance id + sequence.
        self.instance = id_file.read_text().strip()
        self._lock = threading.Lock()
        self._next = max((int(p.stem) for p in folder.glob("*.batch")), default=0) + 1
        self._written = threading.Event()

    def put(self, data: bytes, source_name: str) -> None:
        """Durably store one batch (fsynced, then renamed into place)."""
        with self._lock:
            sequence = self._next
            self._next += 1
        stem = f"{sequence:012d}"
        (self.folder / f"{stem}.name").write_text(source_name)
        temporary = self.folder / f"{stem}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / f"{stem}.batch")
        self._written.set()

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.batch"))

    @property
    def refused(self) -> Path:
        return self.folder / "refused"

    def set_aside(self, path: Path, reason: str) -> None:
        """Move a batch the main server refuses for good to refused/, with the reason."""
        self.refused.mkdir(exist_ok=True)
        (self.refused / f"{path.stem}.reason").write_text(reason + "\n")
        name = path.with_suffix(".name")
        if name.exists():
            os.replace(name, self.refused / name.name)
        os.replace(path, self.refused / path.name)

    def wait(self, timeout: float) -> None:
        self._written.wait(timeout)
        self._written.clear()


class RemoteObserver:
    """Runs one profile's source here and forwards what it receives to the main server."""

    def __init__(self, *, name: str, main: MainServer, spool_dir: Path,
                 log: logging.Logger | None = None, poll_interval: float = 5.0,
                 retry_min: float = 1.0, retry_max: float = 60.0):
        self.name = name
        self.main = main
        self.spool = Spool(spool_dir)
        self.log = log or logging.getLogger(f"tariscope.observer.{name}")
        self.poll_interval = poll_interval
        self.retry_min = retry_min  # between failed deliveries to the main server
        self.retry_max = retry_max
        self.sent = 0
        self.device_type = ""  # from the profile: whether a large batch may be cut in pieces

    def _profile(self) -> dict:
        """The profile from the main server; the last copy when it cannot be reached."""
        cache = self.spool.folder / "profile.json"
        try:
            profile = self.main.profile()
            cache.write_text(json.dumps(profile))
        except MainServerError as exc:
            if not cache.exists():
                raise
            self.log.warning("main server unreachable (%s): using the last known profile", exc)
            profile = json.loads(cache.read_text())
        if profile.get("name") != self.name:
            raise MainServerError(f"the token belongs to observer {profile.get('name')!r}, "
                                  f"not {self.name!r}")
        self.device_type = profile.get("device_type", "")
        return profile

    def send_pending(self) -> int:
        """Send spooled batches in order; stop at the first failure that a later try may
        cure (the main server away, the token refused). A batch the main server refuses for
        good is set aside with the reason, and the next goes on. Returns how many went."""
        sent = 0
        for path in self.spool.pending():
            name_file = path.with_suffix(".name")
            source_name = name_file.read_text() if name_file.exists() else "remote"
            try:
                self._send(path, source_name)
            except MainServerError as exc:
                if exc.status not in REFUSED_FOR_GOOD:
                    raise
                self.spool.set_aside(path, str(exc))
                self.log.error("batch %s (%s) refused by the main server, set aside in %s: %s",
                               path.stem, source_name, self.spool.refused, exc)
                continue
            path.unlink()
            name_file.unlink(missing_ok=True)
            sent += 1
            self.sent += 1
        return sent

    def _send(self, path: Path, source_name: str) -> None:
        """One spooled batch; a large one of a line-by-line format in pieces cut at line ends,
        each with an id of its own, so that a piece sent again is not stored twice."""
        data = path.read_bytes()
        batch_id = f"{self.spool.instance}-{path.stem}"
        if len(data) <= PIECE_BYTES or not line_by_line(self.device_type):
            self.main.send(batch_id=batch_id, data=data, source_name=source_name)
            return
        for number, (offset, length, _) in enumerate(delivery_pieces(data, PIECE_BYTES)):
            self.main.send(batch_id=f"{batch_id}.{number}", data=data[offset:offset + length],
                           source_name=source_name)

    def _sender(self, stop: threading.Event) -> None:
        failures = 0
        while True:
            try:
                self.send_pending()
                failures = 0
            except MainServerError as exc:
                delay = backoff(failures, self.retry_min, self.retry_max)
                failures += 1
                self.log.warning("delivery to the main server failed, retrying in %.0f s: %s",
                                 delay, exc)
                if stop.wait(delay):
                    break
                continue
            if stop.is_set():
                break
            self.spool.wait(1.0)

    def run(self, stop: threading.Event) -> None:
        profile = self._profile()
        sender = threading.Thread(target=self._sender, args=(stop,), name="remote-sender",
                                  daemon=True)
        sender.start()
        try:
            self._collect(profile, stop)
        finally:
            stop.set()
            sender.join(30)
            try:  # a last attempt, so that a clean stop leaves nothing behind if it can
                self.send_pending()
            except MainServerError as exc:
                self.log.warning("%d batch(es) stay spooled: %s", len(self.spool.pending()), exc)

    def _collect(self, profile: dict, stop: threading.Event) -> None:
        settings = profile.get("settings") or {}
        if profile["source"] == "folder":
            watcher = FolderWatcher.from_settings(name=self.name, settings=settings,
                                                  deliver=self.spool.put)
            while not stop.is_set():
                try:
                    watcher.poll()
                except Exception as exc:
                    self.log.error("poll failed: %s", exc)
                stop.wait(self.poll_interval)
            return
        source = source_class(profile["source"])(name=self.name, settings=settings, deliver=self.spool.put,
                              log=self.log, notify=lambda event, **params: self.log.info(
                                  "%s %s", event, params))
        source.run(stop)
