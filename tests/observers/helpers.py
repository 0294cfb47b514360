"""What the tests of the collectors (observers/sources/*, the supervisor) give the code under
test and run it in: a `deliver` and a `notify` that record, and a thread to run a source in."""
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from observers.supervisor import Supervisor


class Deliveries:
    """A source's `deliver` that records every attempt and what it took; it raises (the
    database is down) while `failures` remain or while `failing` is set."""

    def __init__(self, failures: int = 0):
        self.lock = threading.Lock()
        self.failures = failures
        self.failing = False
        self.attempts: list[tuple[bytes, str]] = []
        self.received: list[tuple[bytes, str]] = []

    def __call__(self, data: bytes, name: str):
        with self.lock:
            self.attempts.append((data, name))
            if self.failing or self.failures:
                self.failures = max(0, self.failures - 1)
                raise RuntimeError("database unavailable")
            self.received.append((data, name))

    @property
    def names(self) -> list[str]:
        with self.lock:
            return [name for _, name in self.received]

    @property
    def data(self) -> bytes:
        """All that was taken, in order."""
        with self.lock:
            return b"".join(data for data, _ in self.received)

    def lines(self, name: str | None = None) -> list[bytes]:
        """The lines taken (from the piece named `name`, when given), line ends kept."""
        with self.lock:
            return [line for data, source in self.received if name in (None, source)
                    for line in data.splitlines(keepends=True)]

    def lines_when(self, count: int, timeout: float = 1.5) -> list[bytes]:
        """The lines taken once there are `count` of them, or whatever came by `timeout`
        (the test's assertions then say what was missing)."""
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.lines()


class Events:
    """A source's `notify` that records each event with its parameters."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[tuple[str, dict]] = []

    def __call__(self, event: str, **params):
        with self.lock:
            self.events.append((event, params))

    @property
    def names(self) -> list[str]:
        with self.lock:
            return [event for event, _ in self.events]

    @property
    def peer_events(self) -> list[tuple[str, str]]:
        """Each event with the peer it names."""
        with self.lock:
            return [(event, params["peer"]) for event, params in self.events]

    def count(self, event: str) -> int:
        return self.names.count(event)


@dataclass
class RunningThread:
    stop: threading.Event
    thread: threading.Thread

    def stop_and_time(self) -> float:
        """Ask it to stop; how long it took (up to 3 s)."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(3)
        return time.monotonic() - started


@contextmanager
def running(worker, *, stop_within: float = 2.0):
    """`worker.run(stop)` (a source, a supervisor) in a thread while the block runs; then it
    is asked to stop and must have stopped within `stop_within` seconds."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield RunningThread(stop, thread)
    finally:
        stop.set()
        thread.join(stop_within)
        assert not thread.is_alive(), f"{worker!r} did not stop within {stop_within} s"


@contextmanager
def serving(source, *, within: float = 2.0):
    """`source` running (`running`), the block starting once it is ready (listening): it must
    be ready, and stop when the block ends, within `within` seconds."""
    with running(source, stop_within=within):
        assert source.ready.wait(within), f"{source!r} was not ready within {within} s"
        yield source


@contextmanager
def supervising():
    """A Supervisor running in a thread (quick intervals) while the block runs; it must
    stop when asked."""
    supervisor = Supervisor(interval=0.1, check_every=0.1)
    with running(supervisor, stop_within=10):
        yield supervisor
