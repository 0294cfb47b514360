"""Chaos soak of collection (R2.4): collectors of three kinds and two Celery workers on
PostgreSQL and Redis at a steady rate, while a chaos loop kills a worker, kills a collector,
stops the broker and refuses the database at random intervals. At the end every call sent
must be stored exactly once, without `reprocess`, and the call charges must equal the sum
of the calls' costs.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 20] [--seed N] [--chaos-every 45]
                                   [--no-chaos] [--drain-minutes 5] [--broker-signal TERM]
                                   [--keep]

Loopback only and bounded in time: the sending period (--minutes), then at most
--drain-minutes of waiting. Needs PostgreSQL at --postgres (default
postgres://postgres@127.0.0.1:5432, a role that may create and drop databases) and
redis-server on the PATH. A CELERY_VISIBILITY_TIMEOUT or CELERY_RESTORE_INTERVAL in the
environment goes through to the workers (the defaults, 180 s and 10 s, are production's).

What it sets up, all its own: a database soak_<pid> (`manage.py migrate`, then the demo site
of `seed_demo --days 1`: the demo carrier's deck and plan and thirty subscribers), a
redis-server on a free loopback port with its append-only file on (as docker-compose.yml
runs it), and a temporary TARISCOPE_DATA_DIR. Three devices priced by the demo carrier, each
with the subscribers' numbers and an observer profile collected by a real
`manage.py observer --name <profile>` process:
  SoakTcp     tcp_server: a PBX streams 3CX CDR lines over one connection; lines it cannot
              write while the collector is away wait in the PBX and go when it reconnects;
  SoakRadius  radius: a NAS sends one Accounting-Request Stop per call and sends it again
              every 3 s until it is answered;
  SoakFolder  folder: a PBX writes a small 3CX CDR file every second (under a hidden name,
              then renamed into the folder, as an upload tool does);
and two Celery workers (`celery -A tariscope worker --concurrency 2`, the docker-compose
worker's command). Each call has a source key of its own (a serial number in it), so the
call table tells which calls were stored. A supervisor starts again any of these processes
that dies (1-5 s after a chaos kill, 2 s after an exit of its own), as systemd would.

The chaos loop waits a random time (exponential, mean --chaos-every seconds), then takes one
action at random, from a random generator seeded with --seed; each is printed with its time:
  worker     kill -9 the process group of a worker (main process and pool);
  collector  kill -9 one of the three collectors;
  broker     stop redis-server (SIGTERM, or --broker-signal KILL), start it again on the
             same port 2-15 s later;
  database   refuse the database for 5-30 s: ALLOW_CONNECTIONS false and every session of it
             terminated, then ALLOW_CONNECTIONS true.
The chaos loop stops with the sending. The script then waits until the database holds
every call sent, or nothing has changed for longer than a killed worker's tasks take to come
back (visibility timeout + restore interval + 30 s), or --drain-minutes have passed.
`manage.py reprocess` is never run.

Printed, per kind and in all: calls sent; stored; doubled (a call stored in more than one
row: the unique constraint rules out one key twice, so rows are matched to calls by the
serial number in their key, which also finds a call stored under a mangled key); lost (sent,
never stored), with the chaos actions just before and after them; the delay from sending a
call (its line written to the socket, the first transmission of its packet, its file renamed
into the folder) to its row's created_at (set by the worker as it inserts the row, just
before its transaction commits), median and longest. Then the charges check: the call
charges are computed again here from the stored calls as billing/accounts.py builds them
(per subscriber, month of the call's start in its device's time zone and service, the sum
of the costs rounded to the currency's minor unit) and compared one by one with the Charge
rows. Also the machine and the date, and a Markdown table for docs/benchmarks.md. Exit status
1 when a call was lost or doubled, a row matches no call sent, or a charge differs.
"""
import argparse
import contextlib
import hashlib
import io
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg2
import redis
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rating import cpu_model  # noqa: E402  (bench/rating.py: the machine's CPU, once)

KINDS = ("tcp", "radius", "folder")
PROFILES = {"tcp": "SoakTcp", "radius": "SoakRadius", "folder": "SoakFolder"}
TITLES = {"tcp": "TCP (3CX lines)", "radius": "RADIUS (Stop packets)", "folder": "folder (3CX files)"}
ZONE = zoneinfo.ZoneInfo("Europe/Kyiv")
SECRET = "soak-secret"  # noqa: S105 - a throwaway secret on loopback
NAS = "127.0.0.1"  # the NAS-IP-Address the gateway writes: the address it sends from
CONF_TAIL = "8B5611D4 8020E09D 8B2F0F50"  # the last three words of each h323-conf-id
RADIUS_RETRY = 3.0  # seconds without an answer before the NAS sends a packet again
FILE_SECONDS = 1.0  # the folder PBX writes a file this often
RESTART_AFTER_EXIT = 2.0  # seconds before a process that exited by itself is started again
PROGRESS_SECONDS = 15.0
MOBILE = ("50", "66", "67", "68", "93", "95", "96", "97", "98", "99", "63", "73")
ABROAD = ("48", "49", "44", "1", "33", "39", "420", "371", "90", "972")
# The serial number of a call in its source key (observers/parsers/threecx.py: historyid|callid;
# observers/parsers/radius.py: NAS|conf|h323-conf-id).
KEY_SERIAL = {"tcp": re.compile(r"Call (\d+)\|"), "folder": re.compile(r"Call (\d+)\|"),
              "radius": re.compile(r"\|conf\|[0-9A-F]{8} ([0-9A-F]{8}) ")}
SERIAL_BASE = {"tcp": 10, "folder": 10, "radius": 16}


# --- what is printed --------------------------------------------------------------------

@dataclass
class ChaosAction:
    at: float  # wall time it began
    action: str  # worker, collector, broker, database
    text: str
    until: float | None = None  # wall time it ended (broker, database)


class Log:
    """Lines printed with the seconds since the sending began; the chaos actions taken."""

    def __init__(self):
        self.t0 = time.time()
        self.actions: list[ChaosAction] = []
        self._lock = threading.Lock()

    def at(self, when: float) -> float:
        return when - self.t0

    def say(self, text: str) -> None:
        with self._lock:
            print(f"[{self.at(time.time()):7.1f} s] {text}", flush=True)

    def chaos(self, action: str, text: str) -> ChaosAction:
        entry = ChaosAction(time.time(), action, text)
        with self._lock:
            self.actions.append(entry)
        self.say(f"chaos: {text}")
        return entry


class Ledger:
    """Every call sent, by kind: serial number -> the wall time it was first sent."""

    def __init__(self):
        self.sent: dict[str, dict[int, float]] = {kind: {} for kind in KINDS}
        self.unsent: Counter = Counter()  # made, but never sent before the end
        self._lock = threading.Lock()

    def mark(self, kind: str, serials) -> None:
        now = time.time()
        with self._lock:
            for serial in serials:
                self.sent[kind].setdefault(serial, now)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {kind: len(sent) for kind, sent in self.sent.items()}


# --- the calls --------------------------------------------------------------------------

@dataclass(frozen=True)
class CallMade:
    serial: int
    extension: str
    dialled: str
    talk: int  # seconds
    ring: int  # seconds before the answer


def call_make(rng: random.Random, serial: int, kind: str) -> CallMade:
    """An answered outgoing call: mostly from a subscriber's extension, one in twenty from
    a number nobody holds (stored, priced, not charged), to Kyiv, a mobile or abroad."""
    if kind == "radius":  # a gateway: 4-digit extensions, numbers dialled without access code
        extension = "1099" if rng.random() < 0.05 else str(1001 + rng.randrange(30))
        prefix = ""
    else:  # a 3CX: 3-digit extensions, access code 9
        extension = "150" if rng.random() < 0.05 else str(101 + rng.randrange(30))
        prefix = "9"
    pick = rng.random()
    if pick < 0.3:
        number = f"044{rng.randint(1000000, 9999999)}"
    elif pick < 0.8:
        number = f"0{rng.choice(MOBILE)}{rng.randint(0, 9999999):07d}"
    else:
        number = f"00{rng.choice(ABROAD)}{rng.randint(0, 99999999):08d}"
    return CallMade(serial, extension, prefix + number, rng.randint(1, 900), rng.randint(2, 20))


def threecx_line(call: CallMade, end: datetime) -> bytes:
    """The call as one 3CX v18 CDR line (the default field order), ending at `end` (the
    PBX's local time); its source key is `Call <serial>|<serial in hex>_1`."""
    fmt = "%Y/%m/%d %H:%M:%S"
    answer = end - timedelta(seconds=call.talk)
    begin = answer - timedelta(seconds=call.ring)
    n, ext, number, talk = call.serial, call.extension, call.dialled, call.talk
    return (f"Call {n},{n:016x}_1,{talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d},"
            f"{begin:{fmt}},{answer:{fmt}},{end:{fmt}},TerminatedBySrc,Ext.{ext},{number},{ext},"
            f"10000,{number},,{number},10000,,,,,Chain: Ext.{ext};{number};,Extension,Line,Line,"
            f"Staff,{number},{number},\n").encode()


def cisco_time(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}.000 UTC {moment:%a %b %d %Y}"


def radius_stop(call: CallMade, identifier: int, tag: int, end: datetime) -> bytes:
    """The originate leg's Accounting-Request Stop of a Cisco gateway; source key
    `<NAS>|conf|<tag> <serial> <CONF_TAIL>` (hex)."""
    from pyrad.packet import AcctPacket

    from observers.sources.radius import radius_dictionary

    connect = end - timedelta(seconds=call.talk)
    packet = AcctPacket(id=identifier, secret=SECRET.encode(), dict=radius_dictionary())
    packet["Acct-Status-Type"] = "Stop"
    packet["Acct-Session-Id"] = f"{tag:08X}{call.serial:08X}"
    packet["NAS-IP-Address"] = NAS
    packet["Calling-Station-Id"] = call.extension
    packet["Called-Station-Id"] = call.dialled
    packet["Acct-Session-Time"] = call.talk
    packet["Event-Timestamp"] = int(end.timestamp())
    packet["h323-conf-id"] = f"h323-conf-id={tag:08X} {call.serial:08X} {CONF_TAIL}"
    packet["h323-call-origin"] = "h323-call-origin=originate"
    packet["h323-call-type"] = "h323-call-type=Telephony"
    packet["h323-setup-time"] = "h323-setup-time=" + cisco_time(
        connect - timedelta(seconds=call.ring))
    packet["h323-connect-time"] = "h323-connect-time=" + cisco_time(connect)
    packet["h323-disconnect-time"] = "h323-disconnect-time=" + cisco_time(end)
    packet["h323-disconnect-cause"] = "h323-disconnect-cause=10"
    return packet.RequestPacket()


# --- the senders: a PBX streaming lines, a gateway, a PBX writing files -----------------

class Sender(threading.Thread):
    """Makes calls of its kind at `rate` a second from when it starts until `over` is set;
    stops at once when `abort` is set."""

    kind = ""

    def __init__(self, *, rate: float, seed: int, ledger: Ledger, log: Log,
                 over: threading.Event, abort: threading.Event):
        super().__init__(name=f"sender-{self.kind}", daemon=True)
        self.interval = 1 / rate
        self.rng = random.Random(f"{seed}-{self.kind}")
        self.ledger, self.log, self.over, self.abort = ledger, log, over, abort
        self.serial = 0
        self._next = None

    def due(self) -> list[CallMade]:
        now = time.monotonic()
        if self._next is None:
            self._next = now
        calls = []
        while not self.over.is_set() and now >= self._next:
            self.serial += 1
            calls.append(call_make(self.rng, self.serial, self.kind))
            self._next += self.interval
        return calls

    def pause(self) -> None:
        """Until the next call is due, 50 ms at most."""
        wait = 0.05 if self._next is None else self._next - time.monotonic()
        self.abort.wait(min(0.05, max(wait, 0.001)))


class TcpPbx(Sender):
    """A 3CX streaming CDR lines to the tcp_server collector over one connection. A line
    counts as sent once written to the socket whole; it is written again, whole, on a new
    connection when the write failed. Before each write the PBX looks whether the collector
    closed the connection, so that as few lines as possible go to a collector that died."""

    kind = "tcp"

    def __init__(self, port: int, **kwargs):
        super().__init__(**kwargs)
        self.port = port
        self.connections = 0
        self.breaks: list[float] = []  # wall times a broken connection was noticed

    def run(self):
        backlog: deque[tuple[int, bytes]] = deque()
        sock = None
        try:
            while not self.abort.is_set():
                now = datetime.now(ZONE).replace(tzinfo=None)
                backlog.extend((call.serial, threecx_line(call, now)) for call in self.due())
                if self.over.is_set() and not backlog:
                    break
                if sock is not None and self._peer_gone(sock):
                    sock = self._broken(sock)
                if sock is None:
                    sock = self._connect()
                    if sock is None:
                        self.abort.wait(0.2)
                        continue
                if not backlog:
                    self.pause()
                    continue
                serial, line = backlog[0]
                try:
                    self._write(sock, line)
                except OSError:
                    sock = self._broken(sock)
                    continue
                backlog.popleft()
                self.ledger.mark(self.kind, [serial])
        finally:
            if sock is not None:
                sock.close()
            self.ledger.unsent[self.kind] += len(backlog)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
        except OSError:
            return None
        self.connections += 1
        return sock

    def _broken(self, sock: socket.socket) -> None:
        self.breaks.append(time.time())
        sock.close()

    @staticmethod
    def _peer_gone(sock: socket.socket) -> bool:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(4096, socket.MSG_DONTWAIT) == b""  # the collector never writes
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _write(self, sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except TimeoutError:  # the collector does not read (paused): wait on
                if self.abort.is_set():
                    raise ConnectionAbortedError("the soak is over") from None


class RadiusNas(Sender):
    """A gateway sending one Stop per call to the radius collector, and each again every
    RADIUS_RETRY seconds until an Accounting-Response with the right authenticator answers
    it. Packets are spread over as many UDP sockets as 256 identifiers each need."""

    kind = "radius"

    def __init__(self, port: int, tag: int, **kwargs):
        super().__init__(**kwargs)
        self.port, self.tag = port, tag
        self.sockets: list[socket.socket] = []
        self.free: list[list[int]] = []  # per socket, the identifiers not in use
        # (socket index, identifier) -> [request, serial, last sent (monotonic)]
        self.outstanding: dict[tuple[int, int], list] = {}
        self.answered = self.retransmits = 0

    def run(self):
        try:
            while not self.abort.is_set():
                now = datetime.now(ZONE)
                for call in self.due():
                    index, identifier = self._identifier()
                    request = radius_stop(call, identifier, self.tag, now)
                    self._send(index, request)
                    self.outstanding[(index, identifier)] = [request, call.serial, time.monotonic()]
                    self.ledger.mark(self.kind, [call.serial])
                if self.over.is_set() and not self.outstanding:
                    break
                self._receive()
                self._retransmit()
        finally:
            for sock in self.sockets:
                sock.close()

    def _identifier(self) -> tuple[int, int]:
        for index, free in enumerate(self.free):
            if free:
                return index, free.pop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        self.sockets.append(sock)
        self.free.append(list(range(255, -1, -1)))
        return len(self.sockets) - 1, self.free[-1].pop()

    def _send(self, index: int, request: bytes) -> None:
        with contextlib.suppress(OSError):  # nobody listening: the retransmission will tell
            self.sockets[index].sendto(request, ("127.0.0.1", self.port))

    def _receive(self) -> None:
        if not self.sockets:
            self.pause()
            return
        readable, _, _ = select.select(self.sockets, [], [], 0.02)
        for sock in readable:
            index = self.sockets.index(sock)
            while True:
                try:
                    reply = sock.recv(4096)
                except OSError:
                    break
                pending = self.outstanding.get((index, reply[1])) if len(reply) >= 20 else None
                if pending is None or reply[0] != 5:  # 5: Accounting-Response
                    continue
                request = pending[0]
                # RFC 2866 section 3: the Response Authenticator (MD5 by the protocol).
                expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + SECRET.encode(),
                                       usedforsecurity=False).digest()
                if expected != reply[4:20]:
                    continue
                del self.outstanding[(index, reply[1])]
                self.free[index].append(reply[1])
                self.answered += 1

    def _retransmit(self) -> None:
        now = time.monotonic()
        for (index, _), pending in self.outstanding.items():
            if now - pending[2] >= RADIUS_RETRY:
                self._send(index, pending[0])
                pending[2] = now
                self.retransmits += 1


class FolderPbx(Sender):
    """A PBX writing the calls of each FILE_SECONDS into a CDR file of the watched folder:
    written and fsynced under a hidden name (which the collector ignores), then renamed."""

    kind = "folder"

    def __init__(self, folder: Path, **kwargs):
        super().__init__(**kwargs)
        self.folder = folder
        self.files = 0

    def run(self):
        pending: list[tuple[int, bytes]] = []
        next_file = time.monotonic() + FILE_SECONDS
        try:
            while not self.abort.is_set():
                now = datetime.now(ZONE).replace(tzinfo=None)
                pending.extend((call.serial, threecx_line(call, now)) for call in self.due())
                if pending and (time.monotonic() >= next_file or self.over.is_set()):
                    self._write(pending)
                    pending = []
                if time.monotonic() >= next_file:
                    next_file = time.monotonic() + FILE_SECONDS
                if self.over.is_set() and not pending:
                    break
                self.pause()
        finally:
            self.ledger.unsent[self.kind] += len(pending)

    def _write(self, calls: list[tuple[int, bytes]]) -> None:
        self.files += 1
        name = f"soak-{self.files:06d}.cdr"
        part = self.folder / f".{name}.part"
        with open(part, "wb") as handle:
            handle.write(b"".join(line for _, line in calls))
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(part, self.folder / name)
        self.ledger.mark(self.kind, [serial for serial, _ in calls])


# --- the processes ----------------------------------------------------------------------

class Child:
    """A collector or worker process in a process group of its own, its output in a file;
    the supervisor starts it again when it dies (`restart_at`)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.popen: subprocess.Popen | None = None
        self.restart_at: float | None = None  # set when it was killed or has exited
        self.stopping = False
        self.restarts = self.kills = self.own_exits = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with open(self.log_path, "ab") as output:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=output, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.restart_at = None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, restart_in: float) -> bool:
        """kill -9 of its whole process group (a worker's pool too); False if not running."""
        with self.lock:
            if not self.running() or self.stopping:
                return False
            self.restart_at = time.monotonic() + restart_in
            self.kills += 1
            self._signal_group(signal.SIGKILL)
            self.popen.wait(10)
            return True

    def tend(self, log: Log) -> None:
        """Start it again when it is dead and its time has come."""
        with self.lock:
            if self.stopping or self.popen is None or self.popen.poll() is None:
                return
            if self.restart_at is None:
                self.own_exits += 1
                self.restart_at = time.monotonic() + RESTART_AFTER_EXIT
                log.say(f"{self.name} exited by itself (status {self.popen.returncode}); "
                        f"starting it again in {RESTART_AFTER_EXIT:.0f} s")
                self._signal_group(signal.SIGKILL)  # what is left of it
            elif time.monotonic() >= self.restart_at:
                self.start()
                self.restarts += 1
                log.say(f"{self.name} started again (pid {self.popen.pid})")

    def stop(self) -> None:
        """SIGTERM to its process group (a warm shutdown), SIGKILL after 20 s."""
        with self.lock:
            self.stopping = True
            if self.popen is None:
                return
            if self.popen.poll() is None:
                self._signal_group(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(20)
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


class Supervisor(threading.Thread):
    """What systemd's Restart=always does for the collectors and workers."""

    def __init__(self, children: list[Child], log: Log):
        super().__init__(name="supervisor", daemon=True)
        self.children, self.log = children, log
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            for child in self.children:
                child.tend(self.log)


class Broker:
    """A redis-server of the soak's own on a loopback port, which the chaos loop stops and
    starts again on the same port; append-only file on (docker-compose.yml), so the tasks
    it holds outlive a stop."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        with open(self.folder / "redis.log", "ab") as output:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "yes", "--dir", str(self.folder)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (see {self.folder}/redis.log)")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def queued(self) -> dict[str, int]:
        """Tasks waiting in the default queue, and taken by a worker but not acknowledged."""
        client = self.client()
        return {"queued": client.llen("celery"), "unacked": client.hlen("unacked")}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- chaos ------------------------------------------------------------------------------

class Chaos(threading.Thread):
    """At random intervals, one of: kill -9 a worker, kill -9 a collector, stop the broker,
    refuse the database. Each action ends (the broker started again, the database let in
    again) before the next begins."""

    ACTIONS = ("worker", "collector", "broker", "database")

    def __init__(self, soak: "Soak", seed: int, every: float):
        super().__init__(name="chaos", daemon=True)
        self.soak, self.every = soak, every
        self.rng = random.Random(seed)

    def run(self):
        while not self.soak.over.wait(max(1.0, self.rng.expovariate(1 / self.every))):
            action = self.rng.choice(self.ACTIONS)
            getattr(self, action)()

    def _kill(self, children: list[Child], what: str) -> None:
        child = self.rng.choice(children)
        restart_in = self.rng.uniform(1, 5)
        pid = child.popen.pid if child.popen else None
        if child.kill(restart_in):
            self.soak.log.chaos(what, f"kill -9 {child.name} (pid {pid}); started again in "
                                      f"{restart_in:.1f} s")
        else:
            self.soak.log.say(f"chaos: {child.name} is not running; nothing killed")

    def worker(self) -> None:
        self._kill(self.soak.workers, "worker")

    def collector(self) -> None:
        self._kill(self.soak.collectors, "collector")

    def broker(self) -> None:
        seconds = self.rng.uniform(2, 15)
        sig = self.soak.args.broker_signal
        entry = self.soak.log.chaos("broker", f"redis-server stopped (SIG{sig}) for {seconds:.1f} s")
        self.soak.broker.stop(getattr(signal, f"SIG{sig}"))
        self.soak.abort.wait(seconds)
        self.soak.broker.start()
        entry.until = time.time()
        self.soak.log.say("chaos: redis-server started again")

    def database(self) -> None:
        seconds = self.rng.uniform(5, 30)
        entry = self.soak.log.chaos("database", f"database refused for {seconds:.1f} s")
        try:
            terminated = self.soak.database_refuse()
            self.soak.log.say(f"chaos: {terminated} database sessions terminated")
            self.soak.abort.wait(seconds)
        finally:
            self.soak.database_allow()
            entry.until = time.time()
        self.soak.log.say("chaos: database accepts connections again")


# --- the soak ---------------------------------------------------------------------------

@dataclass
class KindResult:
    sent: int = 0
    stored: int = 0  # calls sent with at least one row
    rows: int = 0
    doubled: int = 0  # calls sent with more than one row
    unexpected: int = 0  # rows of the device that match no call sent
    lost: list[int] = field(default_factory=list)  # serials
    delays: list[float] = field(default_factory=list)
    slowest: tuple[float, int] | None = None  # (delay, serial)
    unsent: int = 0


@dataclass
class ChargesResult:
    charges: int = 0
    charges_total: Decimal = Decimal(0)
    costs_total: Decimal = Decimal(0)  # of the calls that are charged
    priced: int = 0  # calls with a cost
    charged: int = 0  # of them, with a subscriber and a tariff
    mismatches: list = field(default_factory=list)


class Soak:
    def __init__(self, args):
        self.args = args
        self.log = Log()
        self.ledger = Ledger()
        self.over, self.abort = threading.Event(), threading.Event()
        self.folder = Path(tempfile.mkdtemp(prefix="soak-"))
        self.database = f"soak_{os.getpid()}"
        self.database_created = False
        self.broker: Broker | None = None
        self.collectors: list[Child] = []
        self.workers: list[Child] = []
        self.supervisor: Supervisor | None = None
        self.senders: list[Sender] = []
        self.chaos: Chaos | None = None
        self.devices: dict[int, str] = {}  # device id -> kind
        self.ports: dict[str, int] = {}  # the collectors' (tcp, radius)
        self.env: dict[str, str] = {}  # of the collectors and workers
        self.sending_seconds = 0.0

    # -- the database, as its administrator ---------------------------------------------

    def admin(self):
        connection = psycopg2.connect(f"{self.args.postgres}/postgres")
        connection.autocommit = True
        return contextlib.closing(connection)

    def database_refuse(self) -> int:
        """ALLOW_CONNECTIONS false, then every session of the database terminated."""
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                sql.Identifier(self.database)))
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", [self.database])
            return cursor.fetchone()[0]

    def database_allow(self) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                sql.Identifier(self.database)))

    # -- setting up ----------------------------------------------------------------------

    def prepare(self) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.database_created = True
        self.broker = Broker(self.folder / "redis", free_port())
        self.broker.start()
        self.ports = {"tcp": free_port(), "radius": free_port(socket.SOCK_DGRAM)}
        (self.folder / "cdr").mkdir()
        (self.folder / "logs").mkdir()
        self.env = {
            **os.environ, "DATABASE_URL": f"{self.args.postgres}/{self.database}",
            "CELERY_BROKER_URL": self.broker.url, "CELERY_RESULT_BACKEND": self.broker.url,
            "TARISCOPE_DATA_DIR": str(self.folder / "data"), "DEBUG": "false",
            "SECRET_KEY": f"soak-{os.getpid()}-{random.random()}", "PYTHONUNBUFFERED": "1"}
        os.environ.update({key: self.env[key] for key in (
            "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TARISCOPE_DATA_DIR",
            "DEBUG", "SECRET_KEY")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")
        began = time.monotonic()
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                                 env=self.env, capture_output=True, text=True)
        if migrate.returncode:
            raise RuntimeError(f"manage.py migrate failed:\n{migrate.stdout}{migrate.stderr}")
        import django

        django.setup()
        self.site_create()
        self.log.say(f"database {self.database} migrated and its site created in "
                     f"{time.monotonic() - began:.0f} s; redis-server on port {self.broker.port}; "
                     f"data in {self.folder}")

    def site_create(self) -> None:
        """The demo site (seed_demo --days 1), and a device per kind priced by its carrier
        and plan, with the demo subscribers' numbers and its observer profile."""
        from django.core.management import call_command
        from django.db import transaction

        from billing.models import Device, DeviceType, Node, PhoneNumber, Route, Subscriber
        from observers.models import ObserverProfile, SourceType
        from tariffs.models import Operator, TariffPlan
        from tariscope.demo.site import NODE_NAME, OPERATOR_NAME, PLAN_NAME, TRUNK_DN

        call_command("seed_demo", "--days", "1", "--cdr-dir", str(self.folder / "demo-cdr"),
                     stdout=io.StringIO())
        operator = Operator.objects.get(name=OPERATOR_NAME)
        plan = TariffPlan.objects.get(name=PLAN_NAME)
        node = Node.objects.get(name=NODE_NAME)
        subscribers = list(Subscriber.objects.order_by("pk")[:30])
        since = date.today() - timedelta(days=40)
        threecx = {"type": DeviceType.THREECX, "access_code": "9", "extension_length": 3}
        sources = {
            "tcp": (threecx, TRUNK_DN, SourceType.TCP_SERVER,
                    {"host": "127.0.0.1", "port": self.ports["tcp"]}),
            "radius": ({"type": DeviceType.RADIUS, "access_code": "", "extension_length": 4}, NAS,
                       SourceType.RADIUS,
                       {"host": "127.0.0.1", "port": self.ports["radius"], "secret": SECRET}),
            "folder": (threecx, TRUNK_DN, SourceType.FOLDER, {"path": str(self.folder / "cdr")}),
        }
        with transaction.atomic():
            for kind, (dial_plan, trunk, source, settings) in sources.items():
                device = Device.objects.create(
                    name=PROFILES[kind], node=node, timezone=ZONE.key, national_prefix="0",
                    international_prefix="00", country_code="380", area_code="44",
                    default_operator=operator, default_plan=plan, **dial_plan)
                Route.objects.create(device=device, name=trunk, operator=operator)
                first = 1001 if kind == "radius" else 101
                PhoneNumber.objects.bulk_create(
                    PhoneNumber(subscriber=subscriber, device=device, dn=str(first + index),
                                valid_from=since) for index, subscriber in enumerate(subscribers))
                ObserverProfile.objects.create(name=PROFILES[kind], device=device, source=source,
                                               settings=settings)
                self.devices[device.pk] = kind

    def processes_start(self) -> None:
        logs = self.folder / "logs"
        for kind in KINDS:
            argv = [sys.executable, "manage.py", "observer", "--name", PROFILES[kind]]
            if kind == "folder":
                argv += ["--interval", "1"]
            self.collectors.append(Child(f"collector {kind}", argv, self.env,
                                         logs / f"collector-{kind}.log"))
        for number in range(1, self.args.workers + 1):
            self.workers.append(Child(
                f"worker {number}",
                [sys.executable, "-m", "celery", "-A", "tariscope", "worker", "--concurrency",
                 str(self.args.concurrency), "--loglevel", "INFO",
                 "--hostname", f"soak{number}-{os.getpid()}@%h"],
                self.env, logs / f"worker-{number}.log"))
        for child in self.collectors + self.workers:
            child.start()
        self.supervisor = Supervisor(self.collectors + self.workers, self.log)
        self.supervisor.start()
        self._ready_wait()

    def _ready_wait(self, timeout: float = 120.0) -> None:
        """Until the collectors are online (the TCP one accepting) and the workers answer."""
        from django.db import connection

        from observers.models import ObserverProfile, ObserverState
        from tariscope.celery import app

        names = [f"soak{n}-{os.getpid()}@{socket.gethostname()}"
                 for n in range(1, self.args.workers + 1)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            online = ObserverProfile.objects.filter(name__in=PROFILES.values(),
                                                    state=ObserverState.ONLINE).count()
            try:
                socket.create_connection(("127.0.0.1", self.ports["tcp"]), timeout=1).close()
                listening = True
            except OSError:
                listening = False
            answers = app.control.ping(destination=names, timeout=1.0) if online == 3 else []
            if online == 3 and listening and len(answers) == len(names):
                connection.close()
                self.log.say(f"{len(self.collectors)} collectors and {len(names)} workers ready")
                return
            time.sleep(0.5)
        raise RuntimeError(f"the collectors and workers were not ready within {timeout:.0f} s "
                           f"(their output: {self.folder / 'logs'})")

    # -- the run -------------------------------------------------------------------------

    def run(self) -> None:
        """The sending period, with the chaos loop."""
        self.log.t0 = time.time()
        rate = self.args.rate / len(KINDS)
        common = {"rate": rate, "seed": self.args.seed, "ledger": self.ledger, "log": self.log,
                  "over": self.over, "abort": self.abort}
        self.senders = [TcpPbx(self.ports["tcp"], **common),
                        RadiusNas(self.ports["radius"], os.getpid() & 0xFFFFFFFF, **common),
                        FolderPbx(self.folder / "cdr", **common)]
        self.log.say(f"sending {self.args.rate:g} calls/s ({rate:.2f} of each kind) for "
                     f"{self.args.minutes:g} min; chaos "
                     + ("off" if self.args.no_chaos else
                        f"every {self.args.chaos_every:g} s on average, seed {self.args.seed}"))
        for sender in self.senders:
            sender.start()
        if not self.args.no_chaos:
            self.chaos = Chaos(self, self.args.seed, self.args.chaos_every)
            self.chaos.start()
        end = self.log.t0 + self.args.minutes * 60
        while time.time() < end:
            time.sleep(min(PROGRESS_SECONDS, max(end - time.time(), 0)))
            self.progress()
        self.over.set()
        self.sending_seconds = time.time() - self.log.t0
        if self.chaos is not None:
            self.chaos.join()
        self.log.say("sending over, chaos over")

    def stored_counts(self) -> dict[str, int] | None:
        """Rows per kind, or None while the database is away."""
        from django.db import DatabaseError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT device_id, count(*) FROM billing_call GROUP BY device_id")
                rows = dict(cursor.fetchall())
        except DatabaseError:
            connection.close()
            return None
        return {kind: sum(n for device, n in rows.items() if self.devices.get(device) == kind)
                for kind in KINDS}

    def progress(self) -> dict[str, int] | None:
        sent, stored = self.ledger.counts(), self.stored_counts()
        shown = "database away" if stored is None else " ".join(
            f"{kind} {stored[kind]}/{sent[kind]}" for kind in KINDS)
        self.log.say(f"stored/sent: {shown}")
        return stored

    def drain(self) -> None:
        """Until every call sent is stored, nothing has changed for longer than a killed
        worker's tasks take to come back, or --drain-minutes have passed."""
        from django.conf import settings

        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        idle_limit = options["visibility_timeout"] + options["unacked_restore_interval"] + 30
        deadline = time.monotonic() + self.args.drain_minutes * 60
        last, changed, shown = None, time.monotonic(), 0.0
        why = f"--drain-minutes ({self.args.drain_minutes:g}) passed"
        while time.monotonic() < deadline:
            stored, sent = self.stored_counts(), self.ledger.counts()
            senders_done = not any(sender.is_alive() for sender in self.senders)
            if stored is not None:
                if stored != last:
                    last, changed = stored, time.monotonic()
                if senders_done and all(stored[kind] >= sent[kind] for kind in KINDS):
                    why = "every call sent is stored"
                    break
                if senders_done and time.monotonic() - changed > idle_limit:
                    why = f"nothing changed for {idle_limit} s"
                    break
            if time.monotonic() - shown >= PROGRESS_SECONDS:
                self.progress()
                shown = time.monotonic()
            time.sleep(1.0)
        self.abort.set()
        for sender in self.senders:
            sender.join(10)
        self.log.say(f"waiting over: {why}")

    # -- the figures ---------------------------------------------------------------------

    def analyse(self) -> tuple[dict[str, KindResult], ChargesResult, dict]:
        from django.db import connection

        from billing.models import Call
        from observers.models import ObserverProfile, RejectedRecord

        connection.close()  # a fresh one: the chaos loop may have cut the last
        results = {kind: KindResult(sent=len(self.ledger.sent[kind]),
                                    unsent=self.ledger.unsent[kind]) for kind in KINDS}
        rows: dict[str, dict[int, list[datetime]]] = {kind: defaultdict(list) for kind in KINDS}
        for device_id, key, created in Call.objects.filter(device_id__in=self.devices).values_list(
                "device_id", "source_key", "created_at").iterator():
            kind = self.devices[device_id]
            match = KEY_SERIAL[kind].search(key)
            serial = int(match.group(1), SERIAL_BASE[kind]) if match else None
            if serial not in self.ledger.sent[kind]:
                results[kind].unexpected += 1
                continue
            rows[kind][serial].append(created)
        for kind, result in results.items():
            for serial, sent_at in self.ledger.sent[kind].items():
                stored = rows[kind].get(serial)
                if not stored:
                    result.lost.append(serial)
                    continue
                result.stored += 1
                result.rows += len(stored)
                result.doubled += len(stored) > 1
                delay = min(stored).timestamp() - sent_at
                result.delays.append(delay)
                if result.slowest is None or delay > result.slowest[0]:
                    result.slowest = (delay, serial)
        profiles = {profile.name: profile for profile in ObserverProfile.objects.all()}
        health = {
            "records_total": {kind: profiles[PROFILES[kind]].records_total for kind in KINDS},
            "failures_total": {kind: profiles[PROFILES[kind]].failures_total for kind in KINDS},
            "rejects": {kind: RejectedRecord.objects.filter(profile=profiles[PROFILES[kind]]).count()
                        for kind in KINDS},
            "tasks": self.broker.queued(),
        }
        return results, self.charges_check(), health

    @staticmethod
    def charges_check() -> ChargesResult:
        """The call charges as billing/accounts.py builds them, from the stored calls: per
        subscriber, month of the start in the device's zone and service (the tariff's
        description for personal accounts, else its name; with the currency when one name
        comes in two), the costs summed and rounded; compared with every call Charge."""
        from billing.models import Call, Charge, ChargeKind
        from tariffs.rating import quantize_money

        result = ChargesResult(priced=Call.objects.exclude(cost=None).count())
        sums: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0])
        for subscriber, start, zone, description, name, currency, cost, seconds in (
                Call.objects.filter(cost__isnull=False, subscriber__isnull=False,
                                    tariff__isnull=False)
                .values_list("subscriber_id", "start", "device__timezone",
                             "tariff__account_description", "tariff__name", "currency", "cost",
                             "billable_seconds").iterator()):
            month = start.astimezone(zoneinfo.ZoneInfo(zone)).date().replace(day=1)
            entry = sums[(subscriber, month, (description or name)[:190], currency)]
            entry[0] += cost
            entry[1] += seconds
            result.charged += 1
            result.costs_total += cost
        currencies = Counter((subscriber, month, service) for subscriber, month, service, _ in sums)
        expected = {}
        for (subscriber, month, service, currency), (amount, seconds) in sums.items():
            if currencies[(subscriber, month, service)] > 1:
                service = f"{service} ({currency})"
            expected[(subscriber, month, service)] = (quantize_money(amount, currency), seconds)
        actual = {}
        for subscriber, month, service, amount, seconds in Charge.objects.filter(
                kind=ChargeKind.CALL).values_list("subscriber_id", "period_start", "service_name",
                                                  "amount", "count"):
            actual[(subscriber, month, service)] = (amount, seconds)
            result.charges += 1
            result.charges_total += amount
        result.mismatches = sorted(
            (key, expected.get(key), actual.get(key)) for key in expected.keys() | actual.keys()
            if expected.get(key) != actual.get(key))
        return result

    # -- the end -------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Every process started, stopped; the database dropped and the folder removed
        unless --keep. Safe to call after a failure at any point."""
        self.over.set()
        self.abort.set()
        if self.chaos is not None:
            self.chaos.join(30)
        if self.supervisor is not None:
            self.supervisor.done.set()
            self.supervisor.join(5)
        for child in self.collectors + self.workers:
            child.stop()
        if self.database_created:
            with contextlib.suppress(Exception):
                from django.db import connection

                connection.close()
            with contextlib.suppress(psycopg2.Error):
                self.database_allow()
            if not self.args.keep:
                with self.admin() as connection, connection.cursor() as cursor:
                    cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)))
        if self.broker is not None:
            self.broker.stop()
        if self.args.keep:
            print(f"kept: database {self.database}, folder {self.folder} (archives, logs)")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


# --- the report -------------------------------------------------------------------------

def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} s" if abs(value) < 1 else f"{value:.1f} s"


def machine() -> str:
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, {memory} RAM; "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def versions(soak: Soak) -> str:
    with soak.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    redis_version = soak.broker.client().info("server")["redis_version"]
    return f"PostgreSQL {postgres}, Redis {redis_version}"


def chaos_around(actions: list[ChaosAction], when: float, log: Log) -> str:
    """The chaos actions just before and just after the wall time `when`."""
    before = [a for a in actions if a.at <= when]
    after = [a for a in actions if a.at > when]
    parts = []
    if before:
        last = before[-1]
        ongoing = last.until is not None and last.until >= when
        parts.append(f"{'during' if ongoing else 'after'} \"{last.text}\" at {log.at(last.at):.1f} s")
    if after:
        parts.append(f"before \"{after[0].text}\" at {log.at(after[0].at):.1f} s")
    return "; ".join(parts) or "no chaos action"


def report(soak: Soak, results: dict[str, KindResult], charges: ChargesResult, health: dict,
           versions_line: str) -> bool:
    """Print the figures; True when nothing was lost or doubled and the charges agree."""
    log, args = soak.log, soak.args
    print()
    print("## Chaos soak (bench/soak.py)")
    print()
    print(f"Machine: {machine()}; {versions_line}. Date: {date.today():%Y-%m-%d}.")
    chaos_counts = Counter(action.action for action in log.actions)
    print(f"Command: `bench/soak.py {' '.join(sys.argv[1:])}` — {args.rate:g} calls/s for "
          f"{soak.sending_seconds / 60:.1f} min, {args.workers} workers × {args.concurrency} "
          f"processes; chaos: " + (", ".join(f"{chaos_counts[a]} {a}" for a in Chaos.ACTIONS)
                                   if log.actions else "none") + f" (seed {args.seed}).")
    print()
    print("| kind | sent | stored | doubled | lost | delay median | longest delay |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    every = KindResult()
    for kind in KINDS:
        r = results[kind]
        print(f"| {TITLES[kind]} | {r.sent:,} | {r.stored:,} | {r.doubled:,} | {len(r.lost):,} | "
              f"{seconds(statistics.median(r.delays) if r.delays else None)} | "
              f"{seconds(max(r.delays, default=None))} |")
        every.sent += r.sent
        every.stored += r.stored
        every.doubled += r.doubled
        every.unexpected += r.unexpected
        every.unsent += r.unsent
        every.lost += r.lost
        every.delays += r.delays
    print(f"| **all** | **{every.sent:,}** | **{every.stored:,}** | **{every.doubled:,}** | "
          f"**{len(every.lost):,}** | {seconds(statistics.median(every.delays) if every.delays else None)}"
          f" | **{seconds(max(every.delays, default=None))}** |")
    charges_ok = not charges.mismatches and charges.charged > 0
    print()
    print(f"Charges: {charges.charges} call charges, {charges.charges_total} in all; the "
          f"{charges.charged:,} charged calls' costs sum to {charges.costs_total} "
          f"({charges.priced:,} calls priced): "
          + ("every charge equals its calls' costs." if charges_ok else
             f"**{len(charges.mismatches)} charges differ**." if charges.mismatches else
             "**no charged call**: nothing to compare."))
    print()
    print("Details:")
    for action in log.actions:
        print(f"  chaos at {log.at(action.at):6.1f} s: {action.text}")
    for kind in KINDS:
        r = results[kind]
        if r.slowest is not None:
            delay, serial = r.slowest
            sent_at = soak.ledger.sent[kind][serial]
            print(f"  {kind}: longest delay {delay:.1f} s, call {serial} sent at "
                  f"{log.at(sent_at):.1f} s, {chaos_around(log.actions, sent_at, log)}")
        if r.lost:
            groups: dict[str, list[int]] = defaultdict(list)
            for serial in r.lost:
                groups[chaos_around(log.actions, soak.ledger.sent[kind][serial], log)].append(serial)
            for where, serials in groups.items():
                times = [log.at(soak.ledger.sent[kind][s]) for s in serials]
                print(f"  {kind}: {len(serials)} lost, sent {min(times):.1f}-{max(times):.1f} s, "
                      f"{where}; serials {', '.join(map(str, serials[:10]))}"
                      + (" …" if len(serials) > 10 else ""))
        if r.unexpected:
            print(f"  {kind}: {r.unexpected} rows that match no call sent")
        if r.unsent:
            print(f"  {kind}: {r.unsent} calls made but never sent (the collector away at the end)")
    tcp, nas, folder = soak.senders
    print(f"  TCP PBX: {tcp.connections} connections, {len(tcp.breaks)} broken; RADIUS NAS: "
          f"{nas.answered:,} answered, {nas.retransmits:,} retransmissions, "
          f"{len(nas.outstanding)} never answered; folder PBX: {folder.files} files")
    for child in soak.collectors + soak.workers:
        print(f"  {child.name}: killed {child.kills}, exited by itself {child.own_exits}, "
              f"started again {child.restarts}")
    print(f"  profiles: records_total {health['records_total']}, failures_total "
          f"{health['failures_total']}, rejects {health['rejects']}; tasks left in Redis "
          f"{health['tasks']}")
    for mismatch in charges.mismatches[:10]:
        print(f"  charge (subscriber, month, service) {mismatch[0]}: expected (amount, seconds) "
              f"{mismatch[1]}, stored {mismatch[2]}")
    ok = not every.lost and not every.doubled and not every.unexpected and charges_ok
    print()
    once = not every.lost and not every.doubled
    print(f"Verdict: {'every' if once else 'NOT every'} call sent stored exactly once"
          f"{f', {every.unexpected} rows matching no call sent' if every.unexpected else ''}; "
          f"charges {'equal' if charges_ok else 'DIFFER from'} the sum of the calls' costs.")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="sending period (default 10)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="calls per second over the three kinds (default 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the chaos loop and the calls (default: a random one, printed)")
    parser.add_argument("--chaos-every", type=float, default=45.0,
                        help="mean seconds between chaos actions (default 45)")
    parser.add_argument("--no-chaos", action="store_true", help="a baseline: no chaos loop")
    parser.add_argument("--drain-minutes", type=float, default=5.0,
                        help="after sending, wait at most this long for the calls (default 5)")
    parser.add_argument("--broker-signal", choices=("TERM", "KILL"), default="TERM",
                        help="how the chaos loop stops redis-server (default TERM)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="processes per worker (default 2)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432",
                        help="the PostgreSQL server, without a database name")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database and the folder (archives, logs) at the end")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.chaos_every <= 0 or args.workers < 1:
        parser.error("--minutes, --rate, --chaos-every and --workers must be positive")
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not on the PATH (package redis-server)")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    soak = Soak(args)
    print(f"soak: seed {args.seed}, database {soak.database}, folder {soak.folder}", flush=True)
    try:
        soak.prepare()
        soak.processes_start()
        soak.run()
        soak.drain()
        results, charges, health = soak.analyse()
        versions_line = versions(soak)
    finally:
        soak.cleanup()
    ok = report(soak, results, charges, health, versions_line)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
