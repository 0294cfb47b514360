"""R2.2 TCP sources: the PBX streams call records one per line (3CX's CDR socket service).

`TcpServerSource`: the PBX connects to us (3CX "active socket" mode).
`TcpClientSource`: we connect to the PBX (3CX "passive socket" mode).

Both share the framing (`LineFramer`: bytes in any chunking -> complete lines) and the
hand-over (`LineStream`: complete lines go to `deliver` as soon as a read completes them;
only while `deliver` fails do they wait in memory, retried with back-off). The runner's
`deliver` is the profile's journal (observers/journal.py): it appends them to the raw
archive at once and hands them to processing from there, gathered by `flush_lines` and
`flush_seconds`; so a collector killed with `kill -9` loses at most each connection's
unfinished line (R2.4). Lines are delivered byte for byte as received, terminator included
("\\n" or "\\r\\n"), so the raw archive holds what the PBX sent; only three things are not
delivered, each logged: a line longer than `max_line_bytes`, a partial line left when the
peer goes away, and blank lines (keep-alives carry no call).

Each source runs in the one thread that calls `run(stop)`: a selector loop, not a thread
per connection, so `deliver` (which writes to the archive) is only ever called from that
thread, in order, and nothing needs a lock. A slow `deliver` holds up reading, which TCP
turns into back-pressure on the PBX; nothing is dropped.
"""
import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from observers.backoff import backoff
from observers.sources.keys import (
    COUNT,
    HOST,
    PARSER,
    PORT,
    SECONDS,
    Setting,
    settings_with_defaults,
)

TICK = 0.1  # seconds between checks of `stop`, flush timers and idle timers
RECV_BYTES = 64 * 1024
LOG_HEAD = 200  # bytes of a dropped or lost line that go into the log
# Keep-alive probes find a PBX that vanished without closing (power cut, cable): a silent
# but healthy 3CX may send nothing all night, so silence alone must not count as death.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 5
_IN_PROGRESS = {errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK}

# The framing and batching keys both TCP sources take (docs/config.md); the journal
# (observers/journal.py) gathers by flush_lines and flush_seconds and retries by retry_*.
LINE_SETTINGS = (
    Setting("max_line_bytes", COUNT, "a longer line is dropped (and logged)", default=8192),
    Setting("flush_lines", COUNT, "lines handed to processing together at most", default=500),
    Setting("flush_seconds", SECONDS, "the longest an archived line waits to be handed to "
            "processing", default=1.0),
    Setting("retry_min", SECONDS, "the first wait after a failed hand-over or bind",
            default=0.5),
    Setting("retry_max", SECONDS, "the longest wait between hand-over or bind attempts",
            default=30.0),
    Setting("max_pending_lines", COUNT, "lines waiting for delivery beyond which reading "
            "pauses", default=100_000),
    Setting("max_pending_bytes", COUNT, "bytes waiting for delivery beyond which reading "
            "pauses", default=64 * 1024 * 1024),
)
# The Python type a key's value is read as.
_KINDS = {"integer": int, "number": float}


class LineFramer:
    """Cuts a byte stream, however it is split into chunks, into complete lines. Pure.

    A line is everything up to and including "\\n"; its length, which `max_line_bytes`
    limits, is counted without the "\\n" or "\\r\\n". An over-long line is dropped whole:
    only its first LOG_HEAD bytes and its size are kept (for the log) while the rest is
    skipped up to the next newline, so the buffer never holds much more than
    `max_line_bytes`. Dropped lines are reported as (size with line end, first bytes).
    """

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._partial = bytearray()
        self._over: int | None = None  # bytes seen of the over-long line being skipped
        self._over_head = b""

    @property
    def partial(self) -> bytes:
        """The unfinished line so far (empty while skipping an over-long one)."""
        return bytes(self._partial)

    def reset(self) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The connection ended: forget the unfinished line and return it (and the
        over-long line it cut short, if one was being skipped)."""
        partial = bytes(self._partial)
        self._partial.clear()
        dropped = [] if self._over is None else [(self._over, self._over_head)]
        self._over, self._over_head = None, b""
        return partial, dropped

    def feed(self, chunk: bytes) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Take the next chunk; return (complete lines, over-long lines dropped)."""
        lines, dropped = [], []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end + 1]
            start = end + 1
            if self._over is not None:
                self._skip(piece)
                dropped.append((self._over, self._over_head))
                self._over, self._over_head = None, b""
                continue
            if self._partial:
                self._partial += piece
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = piece
            if self._too_long(line):
                dropped.append((len(line), line[:LOG_HEAD]))
            elif line.strip():
                lines.append(line)
        if start < len(chunk):
            if self._over is not None:
                self._skip(chunk[start:])
            else:
                self._partial += chunk[start:]
                if self._too_long_unfinished():
                    self._over = 0
                    self._skip(bytes(self._partial))
                    self._partial.clear()
        return lines, dropped

    def _too_long(self, line: bytes) -> bool:
        body = len(line) - (2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0)
        return body > self.max_line_bytes

    def _too_long_unfinished(self) -> bool:
        # One byte of slack: a line of exactly max_line_bytes may be waiting for the "\n"
        # of its "\r\n".
        size = len(self._partial)
        return size > self.max_line_bytes + 1 or (
            size == self.max_line_bytes + 1 and not self._partial.endswith(b"\r"))

    def _skip(self, data: bytes) -> None:
        if len(self._over_head) < LOG_HEAD:
            self._over_head += data[:LOG_HEAD - len(self._over_head)]
        self._over += len(data)


def _positive(name: str, key: str, raw, kind):
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"observer {name}: settings.{key} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"observer {name}: settings.{key} must be positive, not {raw!r}")
    return value


def _tuning(name: str, settings: dict, declared: tuple[Setting, ...]) -> dict:
    """The counts and durations of a source: each key of `declared` that is a COUNT or in
    SECONDS, from `settings` (settings_with_defaults), as an int or a float, checked positive."""
    return {setting.name: _positive(name, setting.name, settings[setting.name],
                                    _KINDS[setting.schema["type"]])
            for setting in declared if setting.schema in (COUNT, SECONDS)}


@dataclass(frozen=True)
class LineSettings:
    """The values of LINE_SETTINGS of one source."""

    max_line_bytes: int
    flush_lines: int
    flush_seconds: float
    retry_min: float  # back-off between failed deliveries
    retry_max: float
    max_pending_lines: int  # held in memory (deliver failing) beyond this: stop reading
    max_pending_bytes: int

    @classmethod
    def of(cls, tuning: dict) -> "LineSettings":
        """The line keys of a source's `_tuning`."""
        return cls(**{setting.name: tuning[setting.name] for setting in LINE_SETTINGS})

    @classmethod
    def from_settings(cls, name: str, settings: dict) -> "LineSettings":
        """The line keys of profile `name`'s settings, defaults filled in, checked."""
        return cls.of(_tuning(name, settings_with_defaults(settings, LINE_SETTINGS),
                              LINE_SETTINGS))


class LineStream:
    """Lines received from one peer and not yet delivered (R2.4: nothing received is lost).

    Complete lines go to `deliver` at the next `flush`, which the sources call right after
    each read, in batches of at most `flush_lines`. A batch leaves only when `deliver`
    returns; when it raises (the archive cannot be written), the lines stay and the next
    attempt waits a growing back-off.
    """

    def __init__(self, source_name: str, config: LineSettings, log):
        self.source_name = source_name
        self.config = config
        self.log = log
        self.framer = LineFramer(config.max_line_bytes)
        self.lines: list[bytes] = []
        self.bytes = 0
        self._failures = 0
        self._retry_at = 0.0

    def receive(self, chunk: bytes) -> None:
        lines, dropped = self.framer.feed(chunk)
        self._log_dropped(dropped)
        if lines:
            self.lines.extend(lines)
            self.bytes += sum(len(line) for line in lines)

    def end(self, why: str) -> None:
        """The connection is gone: its unfinished line can never be completed."""
        partial, dropped = self.framer.reset()
        self._log_dropped(dropped)
        if partial:
            self.log.warning("%s: %s mid-line; %d bytes lost: %r", self.source_name, why,
                             len(partial), partial[:LOG_HEAD])

    def _log_dropped(self, dropped: list[tuple[int, bytes]]) -> None:
        for size, head in dropped:
            self.log.warning("%s: dropped a %d-byte line, over max_line_bytes=%d; it began %r",
                             self.source_name, size, self.config.max_line_bytes, head)

    @property
    def full(self) -> bool:
        return (len(self.lines) >= self.config.max_pending_lines
                or self.bytes >= self.config.max_pending_bytes)

    def due(self, now: float) -> bool:
        """Whether lines wait and no back-off after a failure holds them."""
        return bool(self.lines) and now >= self._retry_at

    def flush(self, deliver: Callable[[bytes, str], object], now: float) -> None:
        while self.due(now):
            if not self._deliver_batch(deliver):
                delay = backoff(self._failures - 1, self.config.retry_min, self.config.retry_max,
                                jitter=True)
                self._retry_at = now + delay
                self.log.warning("%s: %d lines kept; next delivery attempt in %.1f s",
                                 self.source_name, len(self.lines), delay)
                return

    def flush_final(self, deliver: Callable[[bytes, str], object]) -> None:
        """Last chance before the source stops: one attempt, whatever the back-off says."""
        while self.lines:
            if not self._deliver_batch(deliver):
                head = self.lines[0][:LOG_HEAD]
                self.log.error("%s: stopping with %d undelivered lines; they are lost (first: %r)",
                               self.source_name, len(self.lines), head)
                self.lines.clear()
                self.bytes = 0
                return

    def _deliver_batch(self, deliver) -> bool:
        batch = self.lines[:self.config.flush_lines]
        data = b"".join(batch)
        try:
            deliver(data, self.source_name)
        except Exception as exc:  # the database may be down: keep the lines, try again
            self._failures += 1
            self.log.warning("%s: delivering %d lines failed: %s", self.source_name, len(batch), exc)
            return False
        del self.lines[:len(batch)]
        self.bytes -= len(data)
        self._failures = 0
        self._retry_at = 0.0
        return True


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                          ("TCP_KEEPCNT", KEEPALIVE_COUNT)):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _drain(sock: socket.socket, stream: LineStream) -> None:
    """Take what the peer has already sent, without waiting (used when stopping)."""
    sock.setblocking(False)
    while not stream.full:
        try:
            chunk = sock.recv(RECV_BYTES)
        except OSError:  # nothing more buffered, or the connection is broken
            return
        if not chunk:
            return
        stream.receive(chunk)


def _required_port(name: str, settings: dict, kind: str) -> int:
    if settings.get("port") in (None, ""):
        raise ValueError(f"observer {name}: a {kind} source needs settings.port")
    try:
        port = int(settings["port"])
    except (TypeError, ValueError):
        raise ValueError(f"observer {name}: settings.port must be a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"observer {name}: settings.port {port} is out of range")
    return port


class _Peer:
    """One accepted connection of the server source."""

    def __init__(self, sock: socket.socket, address, config: LineSettings, log, now: float):
        self.sock = sock
        self.label = f"{address[0]}:{address[1]}"
        self.stream = LineStream(f"tcp:{self.label}", config, log)
        self.last_read = now
        self.open = True
        self.paused = False  # unregistered from the selector while its lines cannot go


class TcpServerSource:
    """R2.2 TCP server: PBXs connect to `host`:`port` and stream records one per line."""

    SETTINGS = (
        Setting("port", PORT, "the TCP port the PBX connects to", required=True),
        # The PBX connects from the network, so every interface by default.
        Setting("host", HOST, "the address to listen on", default="0.0.0.0"),  # noqa: S104
        Setting("max_connections", COUNT, "connections at once; more are closed at once",
                default=16),
        Setting("idle_timeout", SECONDS, "a connection silent this long is closed",
                default=3600),
        PARSER,
        *LINE_SETTINGS,
    )

    def __init__(self, *, name: str, settings: dict, deliver, log, notify):
        self.name = name
        settings = settings_with_defaults(settings, self.SETTINGS)
        self.port = _required_port(name, settings, "tcp_server")
        self.host = str(settings["host"])
        tuning = _tuning(name, settings, self.SETTINGS)
        self.max_connections = tuning["max_connections"]
        self.idle_timeout = tuning["idle_timeout"]
        self.config = LineSettings.of(tuning)
        self.deliver = deliver
        self.log = log
        self.notify = notify
        self.ready = threading.Event()
        self.address: tuple[str, int] | None = None  # where it listens, once `ready`
        self._peers: list[_Peer] = []  # open connections, and closed ones with lines to deliver
        self._selector: selectors.BaseSelector | None = None

    def run(self, stop: threading.Event) -> None:
        listener = self._listen(stop)
        if listener is None:
            return
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, None)
        self.ready.set()
        self.log.info("listening on %s:%d", *self.address)
        try:
            while not stop.is_set():
                for key, _ in self._selector.select(TICK):
                    if key.data is None:
                        self._accept(listener)
                    else:
                        self._read(key.data)
                self._tend(time.monotonic())
        finally:
            self.ready.clear()
            self._selector.unregister(listener)
            listener.close()
            self._shutdown()
            self._selector.close()
            self.log.info("stopped listening on %s:%d", *self.address)

    def _listen(self, stop: threading.Event) -> socket.socket | None:
        """Bind, retrying with back-off while the port is taken (an old process lingering)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        attempt = 0
        while not stop.is_set():
            try:
                # create_server sets SO_REUSEADDR (POSIX), so a restart binds at once even
                # while the previous run's connections sit in TIME_WAIT.
                listener = socket.create_server((self.host, self.port), family=family,
                                                backlog=self.max_connections + 8)
            except OSError as exc:
                delay = backoff(attempt, self.config.retry_min, self.config.retry_max, jitter=True)
                attempt += 1
                self.log.error("cannot listen on %s:%d (%s); retrying in %.1f s",
                               self.host, self.port, exc, delay)
                stop.wait(delay)
                continue
            listener.setblocking(False)
            self.address = listener.getsockname()[:2]
            return listener
        return None

    def _open_count(self) -> int:
        return sum(1 for peer in self._peers if peer.open)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of file descriptors, or the client gave up already
                self.log.error("accepting a connection failed: %s", exc)
                return
            if self._open_count() >= self.max_connections:
                self.log.warning("refused %s:%d: already %d connections (max_connections)",
                                 address[0], address[1], self.max_connections)
                sock.close()
                continue
            sock.setblocking(False)
            _keep_alive(sock)
            peer = _Peer(sock, address, self.config, self.log, time.monotonic())
            if self._pending_full():
                peer.paused = True  # read once delivery catches up
            else:
                self._selector.register(sock, selectors.EVENT_READ, peer)
            self._peers.append(peer)
            self.log.info("%s connected", peer.label)
            self._notify("connected", peer.label)

    def _read(self, peer: _Peer) -> None:
        try:
            chunk = peer.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(peer, f"lost the connection ({exc})")
            return
        if not chunk:
            self._close(peer, "disconnected")
            return
        peer.last_read = time.monotonic()
        peer.stream.receive(chunk)

    def _tend(self, now: float) -> None:
        """Flush what is due, apply back-pressure, close idle connections."""
        for peer in list(self._peers):
            peer.stream.flush(self.deliver, now)
            if not peer.open and not peer.stream.lines:
                self._peers.remove(peer)
        full = self._pending_full()
        for peer in self._peers:
            if not peer.open:
                continue
            if full and not peer.paused:
                self._selector.unregister(peer.sock)
                peer.paused = True
                self.log.warning("%s: %d lines wait for delivery; reading paused", peer.label,
                                 sum(len(p.stream.lines) for p in self._peers))
            elif peer.paused and not full:
                self._selector.register(peer.sock, selectors.EVENT_READ, peer)
                peer.paused = False
                peer.last_read = now  # the pause was ours, not the peer's silence
                self.log.info("%s: reading resumed", peer.label)
            elif not peer.paused and now - peer.last_read > self.idle_timeout:
                self._close(peer, f"idle for {self.idle_timeout:g} s, closed")

    def _pending_full(self) -> bool:
        """The memory bound counts every peer's lines, those of closed connections too, so a
        PBX reconnecting over and over cannot pile up lines while delivery fails."""
        return (sum(len(peer.stream.lines) for peer in self._peers) >= self.config.max_pending_lines
                or sum(peer.stream.bytes for peer in self._peers) >= self.config.max_pending_bytes)

    def _close(self, peer: _Peer, why: str) -> None:
        if not peer.paused:
            self._selector.unregister(peer.sock)
        peer.sock.close()
        peer.open = False
        peer.stream.end(why)
        self.log.info("%s %s", peer.label, why)
        self._notify("disconnected", peer.label)

    def _shutdown(self) -> None:
        """Stop: take what peers already sent, deliver every complete line, then close."""
        for peer in self._peers:
            if peer.open:
                _drain(peer.sock, peer.stream)
            peer.stream.flush_final(self.deliver)
        for peer in self._peers:
            if peer.open:
                self._close(peer, "closed (stopping)")
        self._peers.clear()

    def _notify(self, event: str, peer: str) -> None:
        try:
            self.notify(event, peer=peer)
        except Exception as exc:  # a failed notification must not stop the collection
            self.log.error("notifying %s of %s failed: %s", event, peer, exc)


class TcpClientSource:
    """R2.2 TCP client: connect to the PBX at `host`:`port` and read records one per line,
    reconnecting with back-off whenever the PBX closes or cannot be reached."""

    SETTINGS = (
        Setting("host", HOST, "the PBX's name or address", required=True),
        Setting("port", PORT, "the PBX's TCP port", required=True),
        Setting("reconnect_min", SECONDS, "the first wait before connecting again",
                default=1.0),
        Setting("reconnect_max", SECONDS, "the longest wait between connection attempts",
                default=60.0),
        Setting("connect_timeout", SECONDS, "how long one connection attempt may take",
                default=10.0),
        PARSER,
        *LINE_SETTINGS,
    )

    def __init__(self, *, name: str, settings: dict, deliver, log, notify):
        self.name = name
        settings = settings_with_defaults(settings, self.SETTINGS)
        self.host = str(settings["host"] or "")
        if not self.host:
            raise ValueError(f"observer {name}: a tcp_client source needs settings.host")
        self.port = _required_port(name, settings, "tcp_client")
        tuning = _tuning(name, settings, self.SETTINGS)
        self.reconnect_min = tuning["reconnect_min"]
        self.reconnect_max = max(self.reconnect_min, tuning["reconnect_max"])
        self.connect_timeout = tuning["connect_timeout"]
        self.config = LineSettings.of(tuning)
        self.deliver = deliver
        self.log = log
        self.notify = notify
        self.ready = threading.Event()
        self.label = f"{self.host}:{self.port}"
        # One stream for every connection: lines kept while delivery fails survive a reconnect.
        self.stream = LineStream(f"tcp:{self.label}", self.config, log)

    def run(self, stop: threading.Event) -> None:
        attempt = 0
        try:
            while not stop.is_set():
                sock = self._connect(stop)
                if sock is not None:
                    brought_data, lasted = self._serve(sock, stop)
                    # A PBX that accepts and hangs up at once (another client holds its
                    # only slot) must not be hammered: only a useful connection resets.
                    if brought_data or lasted >= self.reconnect_max:
                        attempt = 0
                if stop.is_set():
                    break
                delay = backoff(attempt, self.reconnect_min, self.reconnect_max, jitter=True)
                attempt += 1
                self.log.info("reconnecting to %s in %.1f s", self.label, delay)
                self._wait(stop, delay)
        finally:
            self.stream.flush_final(self.deliver)

    def _connect(self, stop: threading.Event) -> socket.socket | None:
        """Connect without blocking longer than a tick, so `stop` is always heard."""
        deadline = time.monotonic() + self.connect_timeout
        try:
            addresses = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self.log.warning("cannot resolve %s: %s", self.host, exc)
            return None
        problem = "no address"
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            error = sock.connect_ex(address)
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_WRITE)
                while error in _IN_PROGRESS and not stop.is_set() and time.monotonic() < deadline:
                    if selector.select(TICK):
                        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error == 0:
                _keep_alive(sock)
                return sock
            sock.close()
            if stop.is_set():
                return None
            problem = "timed out" if error in _IN_PROGRESS else os.strerror(error)
        self.log.warning("cannot connect to %s: %s", self.label, problem)
        return None

    def _serve(self, sock: socket.socket, stop: threading.Event) -> tuple[bool, float]:
        """Read until the peer goes or `stop`; return (any bytes came, seconds connected)."""
        started = time.monotonic()
        brought_data, paused, why = False, False, "disconnected"
        sock.settimeout(TICK)
        self.ready.set()
        self.log.info("connected to %s", self.label)
        self._notify("connected")
        try:
            while not stop.is_set():
                if self.stream.full:
                    if not paused:
                        self.log.warning("%s: %d lines wait for delivery; reading paused",
                                         self.label, len(self.stream.lines))
                    paused = True
                    stop.wait(TICK)
                else:
                    paused = False
                    try:
                        chunk = sock.recv(RECV_BYTES)
                    except TimeoutError:
                        chunk = None
                    except OSError as exc:
                        why = f"lost the connection ({exc})"
                        break
                    if chunk == b"":
                        break
                    if chunk:
                        brought_data = True
                        self.stream.receive(chunk)
                self.stream.flush(self.deliver, time.monotonic())
            if stop.is_set():
                why = "closed (stopping)"
                _drain(sock, self.stream)
                self.stream.flush_final(self.deliver)
        finally:
            sock.close()
            self.ready.clear()
            self.stream.end(why)
            self.log.info("%s %s", self.label, why)
            self._notify("disconnected")
        return brought_data, time.monotonic() - started

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Sit out a back-off, still delivering the lines already received."""
        until = time.monotonic() + seconds
        while not stop.is_set() and (now := time.monotonic()) < until:
            self.stream.flush(self.deliver, now)
            stop.wait(min(TICK, until - now))

    def _notify(self, event: str) -> None:
        try:
            self.notify(event, peer=self.label)
        except Exception as exc:  # a failed notification must not stop the collection
            self.log.error("notifying %s of %s failed: %s", event, self.label, exc)

