"""R2.2, R2.3: the RADIUS accounting server source (UDP, RFC 2866).

Every Accounting-Request from an allowed client with the right secret is answered with an
Accounting-Response. Only Stop packets carry a finished call: each becomes one JSON line (its
attributes by their dictionary names) that is handed to `deliver`, and the packet is answered
only once `deliver` has returned, so a packet is never acknowledged before it is archived (R2.4).
The runner's `deliver` is the profile's journal (observers/journal.py): it returns once the
line is in the raw archive, and hands it to processing from there, so a broker or database
that is away does not hold the answers back. When `deliver` raises (the archive cannot be
written), the packet stays unanswered and the NAS sends it again. Start,
Interim-Update and Accounting-On/Off packets are answered and go no further.

The JSON line of a Stop packet (observers/parsers/radius.py reads it; docs/formats.md):

    {"Acct-Status-Type": "Stop", "Acct-Session-Id": "1A2B", "h323-conf-id":
     "h323-conf-id=4F1C6E9A 8B5611D4 8020E09D 8B2F0F50", "Cisco-AVPair": ["a=1", "b=2"], …,
     "_received": "2024-06-17T10:16:40.123+00:00", "_peer": "192.0.2.10"}

An attribute sent once has its value, one sent several times a list of values. Integers with
named values (Acct-Status-Type) are written by name, dates (Event-Timestamp) as Unix seconds,
octets and strings that are not UTF-8 as "0x" and hex; attributes the dictionary does not know
are named like FreeRADIUS names them: "Attr-200", "Attr-26.9999.1" (vendor 9999, attribute 1).

Why a plain socket loop rather than pyrad's Server: it must stop promptly on `stop`, pick the
secret per client network, answer a Stop only after `deliver` returned, and answer
retransmissions from a cache (RFC 5080 section 2.2.2); pyrad.packet does the decoding and the
Response Authenticator.

Throughput: packets waiting in the socket buffer are taken together (up to BATCH_MAX) and the
Stop packets among them from one NAS go to `deliver` as one piece of data, so that one durable
archive write (one fsync) covers many calls when the NAS sends faster than one write takes.
Deliveries run in a second thread: while one is being written (and handed to the processing
task), the receiving thread goes on decoding the packets that arrive, and the next delivery
takes every Stop decoded meanwhile (at most DELIVERY_QUEUE batches wait; then the receiving
thread waits too and the socket buffer holds the rest). A copy of a Stop that arrives while
its first copy waits for its delivery is answered with it, never delivered twice.
"""
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import queue
import select
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from pyrad import tools
from pyrad.dictionary import Dictionary
from pyrad.packet import AccountingRequest, AccountingResponse, AcctPacket

from observers.backoff import backoff
from observers.sources.keys import (
    HOST,
    NAME,
    PARSER,
    PORT,
    SECONDS,
    Setting,
    schema_list,
    schema_object,
    settings_with_defaults,
)

logger = logging.getLogger(__name__)

DICTIONARY = Path(__file__).resolve().parent.parent / "radius_dictionaries" / "dictionary"


# Acct-Status-Type (RFC 2866 section 5.1, RFC 2866/2867 values).
START, STOP, INTERIM_UPDATE, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8
_STATUS_NAMES = {START: "Start", INTERIM_UPDATE: "Interim-Update", ACCOUNTING_ON: "Accounting-On",
                 ACCOUNTING_OFF: "Accounting-Off"}

HEADER = 20
MAX_PACKET = 4096  # RFC 2865 section 3: the largest packet a server must accept
ACCT_STATUS_TYPE = 40
VENDOR_SPECIFIC = 26
PROXY_STATE = 33
MESSAGE_AUTHENTICATOR = 80
# Attribute types the fast decoder (_attributes_split, _decoder) reads exactly as pyrad does.
_PLAIN_TYPES = {"string", "octets", "integer", "date", "ipaddr", "ipv6addr", "ipv6prefix",
                "signed", "short", "byte", "integer64", "ifid", "ether", "abinary"}

# How many waiting datagrams are handled (and their Stops delivered) together at most.
BATCH_MAX = 512
# Batches of decoded Stop packets waiting for the delivery thread at most.
DELIVERY_QUEUE = 8
# A delivery about to start first takes the Stops that keep arriving: it waits while a batch
# is being decoded or until no new one came for DELIVERY_QUIET_SECONDS, for at most
# DELIVERY_GATHER_SECONDS, so that one archive write covers the packets of every NAS
# answered by the last delivery (they send their next ones at about the same time).
DELIVERY_GATHER_SECONDS = 0.003
DELIVERY_QUIET_SECONDS = 0.0005
# Socket receive buffer asked for (the kernel may grant less): room for bursts while a
# delivery is being written.
RECEIVE_BUFFER = 8 * 1024 * 1024
# Entries of the retransmission cache kept at most, whatever their age (memory bound).
CACHE_MAX = 500_000
# A repeated drop (same reason, same address) is logged at most once in this many seconds.
DROP_LOG_INTERVAL = 10.0
# Drops are also summed up once in this many seconds, at the profile's least detailed level
# ("Status", observers.logs.STATUS), so that an attack shows in the log at the default level.
DROP_SUMMARY_SECONDS = 60.0
STATUS_LEVEL = logging.WARNING + 5
_DROP_WORDS = {"authenticator": "with a wrong secret or corrupt", "unknown": "from unknown clients",
               "malformed": "malformed"}
POLL_SECONDS = 0.2
# Seconds between attempts to bind a port that is taken: 1 s, doubling, up to a minute.
MIN_BACK_OFF, MAX_BACK_OFF = 1.0, 60.0

COUNTERS = ("received", "answered", "dropped_unknown_client", "dropped_bad_authenticator",
            "dropped_malformed", "retransmits", "delivered", "deliver_failures")


@cache
def radius_dictionary() -> Dictionary:
    """The dictionary of observers/radius_dictionaries, read once per process."""
    return Dictionary(str(DICTIONARY))


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _CacheEntry:
    expires: float
    request: bytes
    reply: bytes


@dataclass
class _PendingStop:
    """A Stop packet waiting for its delivery; answered (to every copy received) after it."""

    key: tuple
    request: bytes
    reply: bytes
    line: bytes
    peers: list = field(default_factory=list)


def _secret_bytes(value, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return value.encode("utf-8")


def _clients(value, default_secret: bytes) -> list[tuple[_Network, bytes]]:
    """(network, secret) of the `clients` setting, the most specific network first."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError("clients must be a list of {address, secret}")
    clients = []
    for number, client in enumerate(value):
        if not isinstance(client, Mapping) or "address" not in client:
            raise ValueError(f"clients[{number}] must be a mapping with an 'address'")
        unknown = set(client) - {"address", "secret"}
        if unknown:
            raise ValueError(f"clients[{number}]: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            network = ipaddress.ip_network(str(client["address"]).strip(), strict=False)
        except ValueError:
            raise ValueError(f"clients[{number}].address {client['address']!r} is not an IP "
                             "address or network") from None
        secret = client.get("secret")
        clients.append((network, default_secret if secret is None
                        else _secret_bytes(secret, f"clients[{number}].secret")))
    clients.sort(key=lambda item: item[0].prefixlen, reverse=True)
    return clients


def _structure_problem(data: bytes) -> str | None:
    """Why `data` is not a well-formed Accounting-Request, or None (RFC 2865 sections 3, 5)."""
    if len(data) < HEADER:
        return f"{len(data)} bytes, shorter than a RADIUS header"
    code, _, length = struct.unpack_from("!BBH", data)
    if code != AccountingRequest:
        return f"code {code} is not an Accounting-Request"
    if length < HEADER or length > MAX_PACKET or length > len(data):
        return f"the length field says {length} bytes, the datagram has {len(data)}"
    position = HEADER
    while position < length:
        if length - position < 2:
            return "an attribute header is cut off"
        attribute_length = data[position + 1]
        if attribute_length < 2 or position + attribute_length > length:
            return f"attribute {data[position]} has a bad length ({attribute_length})"
        position += attribute_length
    return None


def _json_value(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str | int):
        return value
    return str(value)


def stop_line(packet: AcctPacket, *, peer: str, received: datetime) -> bytes:
    """The JSON line of an Accounting-Request: its attributes by dictionary name (see above)."""
    dictionary = packet.dict
    values: dict[str, object] = {}
    for key in OrderedDict.keys(packet):
        name = dictionary.attrindex.GetBackward(key) if dictionary.attrindex.HasBackward(key) else None
        raw = OrderedDict.__getitem__(packet, key)
        decoded = None
        if name is not None:
            try:
                decoded = packet[name]
            except Exception:  # noqa: BLE001 - a value of the wrong size: kept as it came
                decoded = None
        if name is None:
            name = f"Attr-26.{key[0]}.{key[1]}" if isinstance(key, tuple) else f"Attr-{key}"
        _put(values, name, [_json_value(v) for v in (decoded if decoded is not None else raw)])
    return _json_line(values, peer=peer, received=received)


def _put(values: dict, name: str, items: list) -> None:
    """One attribute's values into a JSON line's object: a lone value as itself, several as
    a list; the same name twice (an unknown and a known spelling) is merged."""
    if name in values:
        previous = values[name]
        items = (previous if isinstance(previous, list) else [previous]) + items
    values[name] = items[0] if len(items) == 1 else items


def _json_line(values: dict, *, peer: str, received: datetime) -> bytes:
    values["_received"] = received.isoformat(timespec="milliseconds")
    values["_peer"] = peer
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


# -- the fast path ----------------------------------------------------------------------
# Decoding with pyrad (AcctPacket, then packet[name] per attribute) took most of the time the
# source spends on each packet (bench/radius.py, docs/benchmarks.md). The common packet -
# plain attributes, Vendor-Specific ones in the RFC 2865 layout - is decoded here in one pass
# with the same dictionary and the same value decoding (pyrad.tools.DecodeAttr), so its JSON
# line is byte for byte what stop_line gives; anything else (TLVs, tagged or salt-encrypted
# attributes, a Vendor-Specific attribute that is not in that layout) goes the pyrad way.

def _attributes_split(dictionary: Dictionary, packet: bytes) -> dict | None:
    """The raw values of a well-formed packet by attribute key (a number, or (vendor,
    type)) in order of first appearance, as pyrad.packet decodes them; None when pyrad must
    decode it."""
    values: dict = {}
    position, length = HEADER, len(packet)
    while position < length:
        key, size = packet[position], packet[position + 1]
        value = packet[position + 2:position + size]
        position += size
        if key == VENDOR_SPECIFIC:
            if len(value) < 6:
                return None
            vendor = int.from_bytes(value[:4], "big")
            at, end = 4, len(value)
            while at < end:
                if end - at < 2:
                    return None
                sub_type, sub_size = value[at], value[at + 1]
                if sub_size < 2 or at + sub_size > end:
                    return None
                sub_key = (vendor, sub_type)
                if _decoder(dictionary, sub_key) is None:
                    return None
                values.setdefault(sub_key, []).append(value[at + 2:at + sub_size])
                at += sub_size
        else:
            if _decoder(dictionary, key) is None:
                return None
            values.setdefault(key, []).append(value)
    return values


@cache
def _decoder(dictionary: Dictionary, key) -> tuple[str, Callable] | None:
    """(name, values -> JSON values) of an attribute key, as stop_line names and writes it;
    None for an attribute only pyrad decodes right."""
    if not dictionary.attrindex.HasBackward(key):
        name = f"Attr-26.{key[0]}.{key[1]}" if isinstance(key, tuple) else f"Attr-{key}"
        return name, _raw_values
    name = dictionary.attrindex.GetBackward(key)
    attribute = dictionary.attributes[name]
    if (attribute.type not in _PLAIN_TYPES or attribute.has_tag or attribute.encrypt == 2
            or attribute.is_sub_attribute):
        return None
    names, kind = attribute.values, attribute.type

    def decode(raw: list[bytes]) -> list:
        try:
            decoded = [names.GetBackward(item) if names.HasBackward(item)
                       else tools.DecodeAttr(kind, item) for item in raw]
        except Exception:  # noqa: BLE001 - a value of the wrong size: kept as it came
            return _raw_values(raw)
        return [_json_value(item) for item in decoded]
    return name, decode


def _raw_values(raw: list[bytes]) -> list:
    return [_json_value(item) for item in raw]


def _line(dictionary: Dictionary, attributes: dict, *, peer: str, received: datetime) -> bytes:
    """stop_line of a packet split by _attributes_split."""
    values: dict[str, object] = {}
    for key, raw in attributes.items():
        name, decode = _decoder(dictionary, key)
        _put(values, name, decode(raw))
    return _json_line(values, peer=peer, received=received)


def _reply(packet: bytes, secret: bytes) -> bytes:
    """The Accounting-Response, without attributes, to `packet` (RFC 2866 section 3)."""
    header = struct.pack("!BBH", AccountingResponse, packet[1], HEADER)
    # RFC 2866 section 3: the Response Authenticator is MD5 by definition of the protocol.
    return header + hashlib.md5(header + packet[4:20] + secret).digest()  # noqa: S324


class RadiusSource:
    """R2.2: a RADIUS accounting server for one observer profile (one UDP port, one secret
    with optional per-client secrets); the contract is in observers/sources/__init__.py."""

    SETTINGS = (
        Setting("secret", NAME, "the shared secret of the NASes", required=True, secret=True),
        Setting("port", PORT, "the UDP port to listen on", default=1813),
        Setting("clients", schema_list(schema_object({"address": HOST}, {"secret": NAME})),
                "the NASes allowed, each {address, secret}: an address or network and its "
                "own secret (default the profile's); packets from anyone else are dropped"),
        # A RADIUS server listens for the NASes of the whole network.
        Setting("host", HOST, "the address to listen on", default="0.0.0.0"),  # noqa: S104
        Setting("retransmit_cache_seconds", SECONDS, "how long an answer is kept to answer a "
                "retransmitted copy of its packet again", default=30),
        PARSER,
    )

    def __init__(self, *, name: str, settings: Mapping, deliver: Callable[[bytes, str], object],
                 log: logging.Logger | None = None, notify: Callable[..., object] | None = None):
        self.name = name
        self.deliver = deliver
        self.log = log or logger
        self.notify = notify
        settings = settings_with_defaults(settings, self.SETTINGS)
        if settings["secret"] is None:
            raise ValueError(f"observer {name}: a radius source needs settings.secret")
        self.secret = _secret_bytes(settings["secret"], f"observer {name}: secret")
        port = settings["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"observer {name}: port {port!r} is not a UDP port (1 to 65535)")
        self.port = port
        self.host = str(settings["host"])
        try:
            self.clients = _clients(settings["clients"], self.secret)
        except ValueError as exc:
            raise ValueError(f"observer {name}: {exc}") from None
        try:
            self.retransmit_seconds = float(settings["retransmit_cache_seconds"])
        except (TypeError, ValueError):
            raise ValueError(f"observer {name}: retransmit_cache_seconds must be a number") from None
        self.dictionary = radius_dictionary()
        self.ready = threading.Event()
        self.address: tuple | None = None
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._cache: OrderedDict[tuple, _CacheEntry] = OrderedDict()
        # Stops handed to the delivery thread, not delivered yet; with the cache and the
        # "answered" counter, shared by the two threads under this lock.
        self._in_flight: dict[tuple, _PendingStop] = {}
        self._lock = threading.Lock()
        self._decoding = threading.Event()  # the receiving thread is handling a batch
        self._peers: set[str] = set()
        self._drop_logged: dict[tuple, list] = {}
        # (reason, address) -> drops since the last summary; when the summary is due.
        self._drop_window: dict[tuple, int] = {}
        self._drop_summary_at = time.monotonic() + DROP_SUMMARY_SECONDS

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set; a port that cannot be bound is retried with back-off."""
        failures = 0
        while not stop.is_set():
            try:
                sock = self._bind()
            except OSError as exc:
                delay = backoff(failures, MIN_BACK_OFF, MAX_BACK_OFF)
                failures += 1
                self.log.error("cannot listen on UDP %s port %s: %s; retrying in %.0f s",
                               self.host, self.port, exc, delay)
                stop.wait(delay)
                continue
            failures = 0
            try:
                self.log.info("RADIUS accounting server listening on UDP %s port %s", *self.address[:2])
                self.ready.set()
                self._serve(sock, stop)
            except Exception:  # a bug, not bad input: log it, listen again
                self.log.exception("RADIUS accounting server failed; listening again")
                stop.wait(1.0)
            finally:
                self.ready.clear()
                sock.close()

    def _bind(self) -> socket.socket:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        try:
            # Best effort: the default buffer still works, only bursts fit less.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.address = sock.getsockname()[:2]
        return sock

    def _serve(self, sock: socket.socket, stop: threading.Event) -> None:
        handoff: queue.Queue = queue.Queue(maxsize=DELIVERY_QUEUE)
        deliverer = threading.Thread(target=self._deliver_loop, args=(sock, handoff),
                                     name=f"{self.name}-deliver", daemon=True)
        deliverer.start()
        try:
            while not stop.is_set():
                readable, _, _ = select.select([sock], [], [], POLL_SECONDS)
                self._purge_cache(time.monotonic())
                self._drops_summarize(time.monotonic())
                if not readable:
                    continue
                batch = []
                while len(batch) < BATCH_MAX:
                    try:
                        batch.append(sock.recvfrom(65535))
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # e.g. an ICMP error reported on the socket
                        self.log.debug("receive failed: %s", exc)
                        break
                if batch:
                    self._decoding.set()
                    try:
                        pending = self._handle(sock, batch)
                        if pending:
                            handoff.put(pending)
                    finally:
                        self._decoding.clear()
        finally:
            # What was received is still delivered (and answered) before the socket closes.
            handoff.put(None)
            deliverer.join()

    def _handle(self, sock: socket.socket, batch: list[tuple[bytes, tuple]]) -> dict:
        """Answer or drop each datagram; return the new Stops by NAS, now in flight."""
        now = time.monotonic()
        received = datetime.now(UTC)
        pending: dict[str, dict[tuple, _PendingStop]] = {}
        for data, peer in batch:
            try:
                self._take(sock, data, peer, now, received, pending)
            except Exception:  # one packet must never stop the server
                self.counters["dropped_malformed"] += 1
                self.log.exception("packet from %s could not be handled; dropped", peer[0])
        if pending:
            with self._lock:
                for stops in pending.values():
                    self._in_flight.update(stops)
        return pending

    def _deliver_loop(self, sock: socket.socket, handoff: queue.Queue) -> None:
        """The delivery thread: deliver every batch waiting, each NAS's Stops as one piece,
        then answer them; until the None that _serve puts last."""
        while True:
            batches = [handoff.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batches.append(handoff.get_nowait())
            deadline = time.monotonic() + DELIVERY_GATHER_SECONDS
            while batches[-1] is not None:
                left = deadline - time.monotonic()
                if not self._decoding.is_set():
                    left = min(left, DELIVERY_QUIET_SECONDS)
                if left <= 0:
                    break
                try:
                    batches.append(handoff.get(timeout=left))
                except queue.Empty:
                    if not self._decoding.is_set():
                        break
            by_nas: dict[str, dict[tuple, _PendingStop]] = {}
            for pending in batches:
                for ip, stops in (pending or {}).items():
                    by_nas.setdefault(ip, {}).update(stops)
            for ip, stops in by_nas.items():
                try:
                    self._deliver(sock, ip, stops)
                except Exception:  # a bug, not bad input: the NAS sends them again
                    self.log.exception("delivery of %d Stop packet(s) from %s failed",
                                       len(stops), ip)
                    with self._lock:
                        for key in stops:
                            self._in_flight.pop(key, None)
            if batches[-1] is None:
                return

    def _deliver(self, sock: socket.socket, ip: str, stops: dict[tuple, _PendingStop]) -> None:
        data = b"".join(item.line for item in stops.values())
        try:
            self.deliver(data, f"radius:{ip}")
        except Exception as exc:
            self.counters["deliver_failures"] += 1
            self.log.error("%d Stop packet(s) from %s not taken (%s); left unanswered, the "
                           "NAS sends them again", len(stops), ip, exc)
            with self._lock:
                for key in stops:
                    self._in_flight.pop(key, None)
            return
        self.counters["delivered"] += len(stops)
        expires = time.monotonic() + self.retransmit_seconds
        answers = []
        with self._lock:  # from now on a copy is answered from the cache
            for key, item in stops.items():
                self._remember(key, item.request, item.reply, expires)
                self._in_flight.pop(key, None)
                answers.extend((item.reply, peer) for peer in item.peers)
        for reply, peer in answers:
            self._send(sock, reply, peer)

    # -- one datagram --------------------------------------------------------------------

    def _take(self, sock, data: bytes, peer: tuple, now: float, received: datetime,
              pending: dict[str, dict[tuple, _PendingStop]]) -> None:
        self.counters["received"] += 1
        ip = peer[0]
        secret = self._secret_for(ip)
        if secret is None:
            self.counters["dropped_unknown_client"] += 1
            self._log_drop("unknown", ip, "packet from %s dropped: not one of the clients", ip)
            return
        key = (ip, peer[1], data[1:2], data[4:20])
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and (cached.request != data or cached.expires <= now):
                cached = None
            waiting = pending.get(ip, {}).get(key) or self._in_flight.get(key)
            if cached is None and waiting is not None and waiting.request == data:
                # answered together with its first copy, after that one's delivery
                waiting.peers.append(peer)
                self.counters["retransmits"] += 1
                return
        if cached is not None:
            self.counters["retransmits"] += 1
            self.log.debug("retransmitted packet %d from %s answered again", data[1], ip)
            self._send(sock, cached.reply, peer)
            return
        problem = _structure_problem(data)
        if problem:
            self.counters["dropped_malformed"] += 1
            self._log_drop("malformed", ip, "malformed packet from %s dropped: %s", ip, problem)
            return
        length = struct.unpack_from("!H", data, 2)[0]
        packet_bytes = data[:length]  # RFC 2865 section 3: octets past Length are padding
        # RFC 2866 section 3: the Request Authenticator is MD5 by definition of the protocol.
        expected = hashlib.md5(  # noqa: S324
            packet_bytes[:4] + bytes(16) + packet_bytes[HEADER:] + secret).digest()
        if not hmac.compare_digest(expected, packet_bytes[4:20]):
            self.counters["dropped_bad_authenticator"] += 1
            self._log_drop("authenticator", ip, "wrong secret or corrupt packet from %s", ip)
            return
        attributes = _attributes_split(self.dictionary, packet_bytes)
        packet = None
        if attributes is None:
            packet = AcctPacket(packet=packet_bytes, dict=self.dictionary, secret=secret)
            attributes = packet
        status_values = attributes.get(ACCT_STATUS_TYPE)
        if not status_values or len(status_values[0]) != 4:
            self.counters["dropped_malformed"] += 1
            self._log_drop("malformed", ip, "malformed packet from %s dropped: %s", ip,
                           "no Acct-Status-Type")
            return
        status = int.from_bytes(status_values[0], "big")
        self._seen(ip, status)
        if packet is None and (PROXY_STATE in attributes or MESSAGE_AUTHENTICATOR in attributes):
            packet = AcctPacket(packet=packet_bytes, dict=self.dictionary, secret=secret)
        reply = _reply(packet_bytes, secret) if packet is None else packet.CreateReply().ReplyPacket()
        if status == STOP:
            line = (_line(self.dictionary, attributes, peer=ip, received=received)
                    if packet is None else stop_line(packet, peer=ip, received=received))
            pending.setdefault(ip, {})[key] = _PendingStop(key, data, reply, line, [peer])
            return
        if status in (START, INTERIM_UPDATE):
            self.log.debug("%s packet from %s answered; only Stop packets are calls",
                           _STATUS_NAMES[status], ip)
        elif status in (ACCOUNTING_ON, ACCOUNTING_OFF):
            self.log.info("%s from %s", _STATUS_NAMES[status], ip)
        else:
            self.log.info("Acct-Status-Type %d from %s answered and ignored", status, ip)
        with self._lock:
            self._remember(key, data, reply, now + self.retransmit_seconds)
        self._send(sock, reply, peer)

    def _secret_for(self, ip: str) -> bytes | None:
        if not self.clients:
            return self.secret
        try:
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        for network, secret in self.clients:
            if address.version == network.version and address in network:
                return secret
        return None

    def _send(self, sock: socket.socket, reply: bytes, peer: tuple) -> None:
        try:
            sock.sendto(reply, peer)
        except OSError as exc:
            self.log.warning("cannot answer %s: %s", peer[0], exc)
            return
        with self._lock:
            self.counters["answered"] += 1

    def _remember(self, key: tuple, request: bytes, reply: bytes, expires: float) -> None:
        """Keep an answer for its retransmissions (the caller holds the lock)."""
        self._cache[key] = _CacheEntry(expires, request, reply)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_MAX:
            self._cache.popitem(last=False)

    def _purge_cache(self, now: float) -> None:
        with self._lock:
            while self._cache:
                key, entry = next(iter(self._cache.items()))
                if entry.expires > now:
                    break
                del self._cache[key]

    def _seen(self, ip: str, status: int) -> None:
        """R9.2: a NAS that starts sending (or says Accounting-On) is a data source connected;
        one that says Accounting-Off has disconnected."""
        if status == ACCOUNTING_OFF:
            if ip in self._peers:
                self._peers.discard(ip)
            self._notify("disconnected", ip)
        elif ip not in self._peers:
            self._peers.add(ip)
            self._notify("connected", ip)

    def _notify(self, event: str, ip: str) -> None:
        if self.notify is None:
            return
        try:
            self.notify(event, peer=ip)
        except Exception:  # an event handler must never stop collection (R9.3)
            self.log.exception("event %s for %s failed", event, ip)

    def _drops_summarize(self, now: float) -> None:
        """Once per DROP_SUMMARY_SECONDS, one line at the Status level with the drops since the
        last one, by reason and with the addresses that sent the most."""
        if now < self._drop_summary_at:
            return
        self._drop_summary_at = now + DROP_SUMMARY_SECONDS
        window, self._drop_window = self._drop_window, {}
        if not window:
            return
        by_reason: dict[str, int] = {}
        by_sender: dict[str, int] = {}
        for (reason, ip), count in window.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
            by_sender[ip] = by_sender.get(ip, 0) + count
        senders = sorted(by_sender.items(), key=lambda item: -item[1])[:5]
        self.log.log(STATUS_LEVEL, "%d packet(s) dropped in the last %g s: %s; most from %s",
                     sum(by_reason.values()), DROP_SUMMARY_SECONDS,
                     ", ".join(f"{count} {_DROP_WORDS.get(reason, reason)}"
                               for reason, count in sorted(by_reason.items())),
                     ", ".join(f"{ip} ({count})" for ip, count in senders))

    def _log_drop(self, reason: str, ip: str, message: str, *args) -> None:
        """Log a dropped packet, at most once per DROP_LOG_INTERVAL for the same reason and
        address (a flood of bad packets must not flood the profile's log); count it for the
        summary."""
        key = (reason, ip)
        if key not in self._drop_window and len(self._drop_window) >= 10_000:
            key = (reason, "other addresses")  # spoofed sources must not grow it forever
        self._drop_window[key] = self._drop_window.get(key, 0) + 1
        now = time.monotonic()
        state = self._drop_logged.get((reason, ip))
        if state is not None and now - state[0] < DROP_LOG_INTERVAL:
            state[1] += 1
            return
        suppressed = state[1] if state else 0
        if suppressed:
            message += " (and %d more like it since the last report)"
            args = (*args, suppressed)
        self.log.warning(message, *args)
        if len(self._drop_logged) > 10_000:  # spoofed source addresses must not grow it forever
            self._drop_logged.clear()
        self._drop_logged[(reason, ip)] = [now, 0]
