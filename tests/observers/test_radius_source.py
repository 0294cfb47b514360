"""R2.2, R2.3, R2.4: the RADIUS accounting source (observers/sources/radius.py) on localhost:
FreeRADIUS's `radclient` as the gateway, and crafted datagrams (socket + pyrad.packet) for what
radclient cannot send. No database except the last test: `deliver` collects bytes."""
import hashlib
import json
import logging
import re
import shutil
import socket
import struct
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyrad.packet import AccountingResponse, AcctPacket

from billing.models import Call
from observers.parsers import radius as radius_parser
from observers.parsers.base import CallRecord
from observers.pipeline import profile_ingest
from observers.sources.radius import RadiusSource, radius_dictionary
from tests.conftest import needs, wait_for
from tests.factories import DeviceFactory, ObserverProfileFactory
from tests.observers.helpers import Deliveries, Events, running, serving

SECRET = "s3cret"
DICTIONARIES = Path(radius_parser.__file__).resolve().parent.parent / "radius_dictionaries"
LOGGER = "test.observer.radius"

# A Cisco gateway's two legs of one call: 1001 calls 0441234567 for 61 s.
CONF_ID = "4F1C6E9A 8B5611D4 8020E09D 8B2F0F50"
CISCO_STOP = {
    "Acct-Status-Type": "Stop",
    "NAS-IP-Address": "192.0.2.10",
    "User-Name": "1001",
    "Calling-Station-Id": "1001",
    "Called-Station-Id": "0441234567",
    "Acct-Session-Time": 61,
    "Acct-Delay-Time": 0,
    "h323-conf-id": f"h323-conf-id={CONF_ID}",
    "h323-setup-time": "h323-setup-time=*10:15:33.123 UTC Mon Jun 17 2024",
    "h323-connect-time": "h323-connect-time=10:15:38.000 UTC Mon Jun 17 2024",
    "h323-disconnect-time": "h323-disconnect-time=10:16:39.000 UTC Mon Jun 17 2024",
    "h323-disconnect-cause": "h323-disconnect-cause=10",
    "h323-remote-address": "h323-remote-address=192.0.2.50",
    "Cisco-AVPair": ["h323-incoming-conf-id=4F1C6E9A 8B5611D4 8020E09D 8B2F0F50",
                     "release-source=4"],
}
ANSWER_LEG = {**CISCO_STOP, "Acct-Session-Id": "00000001",
              "h323-call-origin": "h323-call-origin=answer", "h323-call-type": "h323-call-type=VoIP"}
ORIGINATE_LEG = {**CISCO_STOP, "Acct-Session-Id": "00000002",
                 "h323-call-origin": "h323-call-origin=originate",
                 "h323-call-type": "h323-call-type=Telephony"}
EXPECTED_CALL = CallRecord(
    source_key=f"192.0.2.10|conf|{CONF_ID}",
    start=radius_parser.parse_record(ORIGINATE_LEG).start,
    duration=61, direction=None, extension="1001", dialled="0441234567",
    trunk="192.0.2.10", answered=True, origin_trunk="192.0.2.10",
)


def json_lines(deliver: Deliveries) -> list[dict]:
    """The lines delivered, each one accounting packet as a JSON object."""
    return [json.loads(line) for line in deliver.lines()]


def radius_source(deliver=None, notify=None, **settings) -> RadiusSource:
    return RadiusSource(name="gw1", settings={"port": 0, "host": "127.0.0.1", "secret": SECRET,
                                              **settings},
                        deliver=deliver or Deliveries(), log=logging.getLogger(LOGGER),
                        notify=notify)


def request(attributes: dict, *, secret: str = SECRET, identifier: int = 7) -> bytes:
    """An Accounting-Request as a gateway encodes it (Request Authenticator of RFC 2866)."""
    packet = AcctPacket(id=identifier, secret=secret.encode(), dict=radius_dictionary())
    for name, value in attributes.items():
        packet[name] = value
    return packet.RequestPacket()


def with_authenticator(data: bytes, secret: str = SECRET) -> bytes:
    """`data` with its Request Authenticator recomputed (for packets altered after encoding)."""
    digest = hashlib.md5(data[:4] + bytes(16) + data[20:] + secret.encode()).digest()  # noqa: S324
    return data[:4] + digest + data[20:]


@contextmanager
def gateway(timeout: float = 2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        yield sock
    finally:
        sock.close()


def exchange(sock: socket.socket, source: RadiusSource, data: bytes) -> bytes | None:
    """Send `data` to the source; its answer, or None when none comes within the timeout."""
    sock.sendto(data, source.address)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def is_response_to(reply: bytes, data: bytes, secret: str = SECRET) -> bool:
    """Whether `reply` is a valid Accounting-Response to `data` (RFC 2866 section 3)."""
    sent = AcctPacket(packet=data, secret=secret.encode(), dict=radius_dictionary())
    answer = AcctPacket(packet=reply, secret=secret.encode(), dict=radius_dictionary())
    return reply[0] == AccountingResponse and sent.VerifyReply(answer, reply)


# -- crafted datagrams ----------------------------------------------------------------------

def test_stop_is_delivered_as_one_json_line_and_answered_after_delivery():
    # given a source and a gateway
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway() as sock:
        # when the gateway sends a Stop with Cisco VSAs
        data = request(ORIGINATE_LEG)
        reply = exchange(sock, source, data)
    # then it is answered with a valid Accounting-Response, after one delivery of one line
    assert reply is not None and is_response_to(reply, data)
    assert [name for _, name in deliver.received] == ["radius:127.0.0.1"]
    assert deliver.data.count(b"\n") == 1 and deliver.data.endswith(b"\n")
    (line,) = json_lines(deliver)
    # with every attribute by its dictionary name, VSAs included, Cisco's strings as sent
    assert {key: line[key] for key in ORIGINATE_LEG} == ORIGINATE_LEG
    assert line["_peer"] == "127.0.0.1"
    assert line["_received"].endswith("+00:00")
    assert source.counters["received"] == source.counters["answered"] == 1


@pytest.mark.parametrize("status", ["Start", "Interim-Update", "Accounting-On", "Accounting-Off"])
def test_packets_other_than_stop_are_answered_and_not_delivered(status, caplog):
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway() as sock, \
            caplog.at_level(logging.DEBUG, logger=LOGGER):
        # when a gateway sends a packet that is not a Stop
        data = request({**ORIGINATE_LEG, "Acct-Status-Type": status})
        reply = exchange(sock, source, data)
    # then it is answered, and nothing is delivered (it is no call)
    assert reply is not None and is_response_to(reply, data)
    assert len(deliver.attempts) == 0
    assert any(status in r.getMessage() for r in caplog.records)


def test_packet_with_wrong_secret_is_dropped_counted_and_logged(caplog):
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway(timeout=0.5) as sock, \
            caplog.at_level(logging.WARNING, logger=LOGGER):
        # when a gateway signs a Stop with another secret
        reply = exchange(sock, source, request(ORIGINATE_LEG, secret="wrong"))
    # then there is no answer, no delivery; the drop is counted and logged
    assert reply is None
    assert len(deliver.attempts) == 0
    assert source.counters["dropped_bad_authenticator"] == 1
    assert "wrong secret or corrupt packet from 127.0.0.1" in caplog.text


def _cut(data: bytes) -> bytes:
    return data[:-5]


def _zero_length_attribute(data: bytes) -> bytes:
    return with_authenticator(data[:21] + b"\x00" + data[22:])


def _overrunning_attribute(data: bytes) -> bytes:
    # the last attribute claims 10 bytes more than the packet has
    position = 20
    while position + data[position + 1] < len(data):
        position += data[position + 1]
    return with_authenticator(data[:position + 1] + bytes([data[position + 1] + 10])
                              + data[position + 2:])


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda data: data[:12], "shorter than a RADIUS header"),
    (_cut, "the length field says"),
    (lambda data: data[:2] + struct.pack("!H", 19) + data[4:], "the length field says"),
    (lambda data: data[:2] + struct.pack("!H", 5000) + data[4:], "the length field says"),
    (_zero_length_attribute, "bad length"),
    (_overrunning_attribute, "bad length"),
    (lambda data: bytes([1]) + data[1:], "not an Accounting-Request"),
    (lambda data: b"\xff" * 64, "not an Accounting-Request"),
])
def test_malformed_packet_is_dropped_and_the_server_goes_on(damage, reason, caplog):
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway(timeout=0.5) as sock, \
            caplog.at_level(logging.WARNING, logger=LOGGER):
        # when a malformed datagram arrives
        assert exchange(sock, source, damage(request(ORIGINATE_LEG))) is None
        # then it is dropped, counted and logged with its reason
        assert source.counters["dropped_malformed"] == 1
        assert reason in caplog.text
        # and a good packet afterwards is served as usual
        sock.settimeout(2)
        good = request(ORIGINATE_LEG, identifier=8)
        assert is_response_to(exchange(sock, source, good), good)
    assert len(json_lines(deliver)) == 1


def test_octets_past_the_length_field_are_padding():
    # given a Stop followed by 7 bytes of padding (RFC 2865 section 3: ignored)
    deliver = Deliveries()
    data = request(ORIGINATE_LEG)
    with serving(radius_source(deliver), within=5) as source, gateway() as sock:
        reply = exchange(sock, source, data + b"padding")
    # then it is served like the packet without them
    assert is_response_to(reply, data)
    assert len(json_lines(deliver)) == 1


def test_packet_from_an_address_outside_the_clients_is_dropped(caplog):
    # given a source that serves only 10.0.0.0/8
    deliver = Deliveries()
    with serving(radius_source(deliver, clients=[{"address": "10.0.0.0/8"}]), within=5) as source, \
            gateway(timeout=0.5) as sock, caplog.at_level(logging.WARNING, logger=LOGGER):
        # when a correctly signed Stop comes from 127.0.0.1
        reply = exchange(sock, source, request(ORIGINATE_LEG))
    # then it is never answered, nor delivered; the drop is counted and logged
    assert reply is None
    assert len(deliver.attempts) == 0
    assert source.counters["dropped_unknown_client"] == 1
    assert "packet from 127.0.0.1 dropped: not one of the clients" in caplog.text


def test_a_client_network_with_its_own_secret_uses_it():
    # given 127.0.0.0/8 with its own secret, and another network with the profile's
    clients = [{"address": "10.0.0.0/8"}, {"address": "127.0.0.0/8", "secret": "loopback"}]
    deliver = Deliveries()
    with serving(radius_source(deliver, clients=clients), within=5) as source, gateway(timeout=0.5) as sock:
        # when one Stop is signed with the profile's secret and one with the client's
        assert exchange(sock, source, request(ORIGINATE_LEG, identifier=1)) is None
        good = request(ANSWER_LEG, secret="loopback", identifier=2)
        reply = exchange(sock, source, good)
    # then only the one with the client's secret is answered
    assert is_response_to(reply, good, secret="loopback")
    assert source.counters["dropped_bad_authenticator"] == 1
    assert [line["Acct-Session-Id"] for line in json_lines(deliver)] == ["00000001"]


def test_retransmission_is_answered_from_the_cache_without_a_second_delivery():
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway() as sock:
        # when the gateway sends the same Stop twice (it missed the first answer)
        data = request(ORIGINATE_LEG)
        first = exchange(sock, source, data)
        second = exchange(sock, source, data)
    # then both copies get the same answer, and the call is delivered once
    assert first == second and is_response_to(first, data)
    assert len(deliver.attempts) == 1
    assert source.counters["retransmits"] == 1
    assert source.counters["answered"] == 2


def test_same_identifier_with_new_content_is_a_new_packet():
    # given a gateway that reuses identifier 7 for the next Stop (RFC 5080: a new request)
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway() as sock:
        first, second = request(ORIGINATE_LEG), request(ANSWER_LEG)
        assert is_response_to(exchange(sock, source, first), first)
        assert is_response_to(exchange(sock, source, second), second)
    # then both are delivered
    assert [line["Acct-Session-Id"] for line in json_lines(deliver)] == ["00000002", "00000001"]


def test_failed_delivery_leaves_the_packet_unanswered_until_a_retry_succeeds(caplog):
    # given a delivery that fails once (the archive's disk is full, the database is down)
    deliver = Deliveries(failures=1)
    with serving(radius_source(deliver), within=5) as source, gateway(timeout=0.5) as sock, \
            caplog.at_level(logging.ERROR, logger=LOGGER):
        data = request(ORIGINATE_LEG)
        # when the Stop arrives: no answer, so the gateway keeps it and sends it again
        assert exchange(sock, source, data) is None
        assert "not taken" in caplog.text
        # when it sends it again
        sock.settimeout(2)
        reply = exchange(sock, source, data)
    # then that copy is delivered and answered: one delivery in all
    assert is_response_to(reply, data)
    assert len(deliver.received) == 1 and len(json_lines(deliver)) == 1
    assert source.counters["deliver_failures"] == 1


def test_retransmission_arriving_while_its_first_copy_waits_is_answered_after_one_delivery():
    # given a delivery that takes a while the first time (a slow disk)
    deliver = Deliveries()
    slow = threading.Event()

    def slow_deliver(data: bytes, name: str):
        if not slow.is_set():
            slow.set()
            threading.Event().wait(0.3)
        deliver(data, name)

    with serving(radius_source(slow_deliver), within=5) as source, gateway() as sock:
        # when Stop A is being delivered and Stop B arrives twice meanwhile
        first, second = request(ORIGINATE_LEG, identifier=1), request(ANSWER_LEG, identifier=2)
        sock.sendto(first, source.address)
        assert slow.wait(2)
        sock.sendto(second, source.address)
        sock.sendto(second, source.address)
        replies = [sock.recv(4096) for _ in range(3)]
    # then all three copies are answered, and each call was delivered once
    assert sorted(reply[1] for reply in replies) == [1, 2, 2]
    assert [line["Acct-Session-Id"] for line in json_lines(deliver)] == ["00000002", "00000001"]
    assert source.counters["retransmits"] == 1


def test_random_datagrams_never_stop_the_server():
    # given 300 random datagrams, correctly signed so that they reach the decoding
    import random

    generator = random.Random(2866)
    junk = []
    for _ in range(300):
        body = bytes(generator.randrange(256) for _ in range(generator.randrange(0, 120)))
        header = struct.pack("!BBH", 4, generator.randrange(256), 20 + len(body))
        junk.append(with_authenticator(header + bytes(16) + body))
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway(timeout=2) as sock:
        for n, data in enumerate(junk):
            sock.sendto(data, source.address)
            if n % 50 == 49:
                threading.Event().wait(0.05)
        # then the server still serves, having counted every datagram
        good = request(ORIGINATE_LEG, identifier=3)
        sock.sendto(good, source.address)
        while True:
            reply = sock.recv(4096)
            if reply[1] == 3 and is_response_to(reply, good):
                break
    # each one dropped as malformed, or (the rare well-formed one) answered
    assert source.counters["received"] == 301
    assert source.counters["dropped_malformed"] + source.counters["answered"] == 301


def test_a_burst_of_stops_is_answered_in_full_and_each_call_delivered_once():
    # given 300 different Stops sent without waiting for answers
    deliver = Deliveries()
    packets = [request({**ORIGINATE_LEG, "Acct-Session-Id": f"{n:08d}"}, identifier=n % 256)
               for n in range(300)]
    with serving(radius_source(deliver), within=5) as source, gateway() as sock:
        replies = []
        for n, data in enumerate(packets):
            sock.sendto(data, source.address)
            if n % 50 == 49:  # stay within the kernel's receive buffer on a small machine
                replies += [sock.recv(4096) for _ in range(50)]
    # then every one is answered and every call delivered exactly once
    assert len(replies) == 300
    assert sorted(line["Acct-Session-Id"] for line in json_lines(deliver)) == [
        f"{n:08d}" for n in range(300)]
    assert source.counters["answered"] == 300


def test_gateway_is_reported_connected_and_disconnected():
    # given a source with an event handler (R9.2)
    events = Events()
    with serving(radius_source(notify=events), within=5) as source, gateway() as sock:
        # when a gateway sends Accounting-On, a Stop, then Accounting-Off
        for n, status in enumerate(["Accounting-On", "Stop", "Accounting-Off"]):
            exchange(sock, source, request({**ORIGINATE_LEG, "Acct-Status-Type": status},
                                           identifier=n))
    # then it was connected once and disconnected once
    assert events.events == [("connected", {"peer": "127.0.0.1"}),
                             ("disconnected", {"peer": "127.0.0.1"})]


def test_port_in_use_is_retried_until_it_is_free(caplog):
    # given the port taken by another program
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    source = radius_source(port=port)
    # when the source starts there
    with caplog.at_level(logging.ERROR, logger=LOGGER), running(source, stop_within=5):
        try:
            # then the source says so and does not serve
            assert not source.ready.wait(0.5)
            assert f"cannot listen on UDP 127.0.0.1 port {port}" in caplog.text
            # when the port is freed, it listens on the next attempt
            blocker.close()
            assert source.ready.wait(5)
            assert source.address == ("127.0.0.1", port)
        finally:
            blocker.close()


@pytest.mark.parametrize(("source_settings", "message"), [
    ({}, "needs settings.secret"),
    ({"secret": ""}, "secret must be a non-empty string"),
    ({"secret": SECRET, "port": 70000}, "is not a UDP port"),
    ({"secret": SECRET, "port": "1813"}, "is not a UDP port"),
    ({"secret": SECRET, "clients": "10.0.0.1"}, "clients must be a list"),
    ({"secret": SECRET, "clients": [{"address": "10.0.0.300"}]}, "is not an IP address"),
    ({"secret": SECRET, "clients": [{"address": "10.0.0.1", "secret": ""}]},
     "clients[0].secret must be a non-empty string"),
    ({"secret": SECRET, "clients": [{"address": "10.0.0.1", "key": "x"}]}, "unknown key(s) key"),
    ({"secret": SECRET, "retransmit_cache_seconds": "soon"}, "must be a number"),
])
def test_bad_settings_are_refused_with_the_key_named(source_settings, message):
    with pytest.raises(ValueError) as error:
        RadiusSource(name="gw1", settings=source_settings, deliver=Deliveries())
    assert message in str(error.value)


# -- with FreeRADIUS's radclient --------------------------------------------------------------

def radclient(source: RadiusSource, *packets: dict, secret: str = SECRET,
              timeout: int = 2) -> subprocess.CompletedProcess:
    """Send `packets` with radclient (one per blank-line separated block), with our dictionary."""
    def value(item):
        return str(item) if isinstance(item, int) or item in (
            "Start", "Stop", "Interim-Update") else '"' + item + '"'

    blocks = []
    for packet in packets:
        pairs = []
        for name, item in packet.items():
            for one in item if isinstance(item, list) else [item]:
                pairs.append(f"{name} = {one if name == 'NAS-IP-Address' else value(one)}")
        blocks.append("\n".join(pairs))
    host, port = source.address
    return subprocess.run(
        ["radclient", "-d", str(DICTIONARIES), "-t", str(timeout), "-r", "1", "-p", "1",
         f"{host}:{port}", "acct", secret],
        input="\n\n".join(blocks) + "\n", capture_output=True, text=True, timeout=60)


def needs_radclient():
    needs(shutil.which("radclient") is not None, "needs radclient (package freeradius-utils)")


def test_radclient_start_interim_and_stop_are_answered_and_only_stop_is_a_call():
    needs_radclient()
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source:
        # when a gateway (radclient) sends Start, Interim-Update and Stop of the originate leg
        start = {key: value for key, value in ORIGINATE_LEG.items()
                 if key not in ("Acct-Session-Time", "h323-disconnect-time",
                                "h323-disconnect-cause")}
        result = radclient(source, {**start, "Acct-Status-Type": "Start"},
                           {**start, "Acct-Status-Type": "Interim-Update",
                            "Acct-Session-Time": 30},
                           ORIGINATE_LEG)
    # then radclient got all three answers, and one Stop was delivered
    assert result.returncode == 0, result.stderr + result.stdout
    assert source.counters["answered"] == 3
    (line,) = json_lines(deliver)
    assert line["Acct-Status-Type"] == "Stop"
    assert line["h323-setup-time"] == ORIGINATE_LEG["h323-setup-time"]
    assert line["Cisco-AVPair"] == ORIGINATE_LEG["Cisco-AVPair"]
    # which is the call
    assert list(radius_parser.parse(deliver.data)) == [EXPECTED_CALL]


@pytest.mark.parametrize("legs", [(ANSWER_LEG, ORIGINATE_LEG), (ORIGINATE_LEG, ANSWER_LEG)],
                         ids=["answer first", "originate first"])
def test_radclient_two_legs_of_one_call_give_one_call(legs):
    needs_radclient()
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source:
        # when the gateway sends a Stop for each leg of one call, in either order
        result = radclient(source, *legs)
    # then both are answered and archived (every byte received is kept, R2.4)
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(json_lines(deliver)) == 2
    # and they are one call
    assert list(radius_parser.parse(deliver.data)) == [EXPECTED_CALL]


def test_radclient_with_a_wrong_secret_gets_no_answer():
    needs_radclient()
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source:
        # when radclient signs with another secret
        result = radclient(source, ORIGINATE_LEG, secret="not-the-secret", timeout=1)
    # then it gives up without an answer; nothing is delivered; the drop is counted
    assert result.returncode != 0
    assert len(deliver.attempts) == 0
    assert source.counters["dropped_bad_authenticator"] >= 1
    assert source.counters["answered"] == 0


@pytest.mark.django_db
def test_radclient_legs_delivered_twice_are_stored_as_one_call():
    # given a RADIUS gateway device
    needs_radclient()
    profile = ObserverProfileFactory(device=DeviceFactory(type="radius"), source="radius",
                                     settings={"secret": SECRET})
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source:
        assert radclient(source, ANSWER_LEG, ORIGINATE_LEG).returncode == 0
    # when what was delivered is ingested, and then ingested again (a re-delivery)
    first = profile_ingest(profile=profile, data=deliver.data, source_name="radius:127.0.0.1")
    second = profile_ingest(profile=profile, data=deliver.data, source_name="radius:127.0.0.1")
    # then one call is stored, once
    assert (first.calls, second.calls, second.duplicates) == (1, 0, 1)
    call = Call.objects.get()
    assert (call.source_key, call.duration, call.dialled) == (EXPECTED_CALL.source_key, 61,
                                                              "0441234567")


def test_drops_are_summed_up_at_the_default_log_level(caplog, monkeypatch):
    # given a source that sums up its drops every half second
    from observers.logs import STATUS
    from observers.sources import radius as radius_module

    assert radius_module.STATUS_LEVEL == STATUS  # the profile's default, least detailed level
    monkeypatch.setattr(radius_module, "DROP_SUMMARY_SECONDS", 0.5)
    deliver = Deliveries()
    with serving(radius_source(deliver), within=5) as source, gateway(timeout=0.2) as sock, \
            caplog.at_level(STATUS, logger=LOGGER):
        # when a peer sends twelve Stops signed with another secret, and three cut short
        for _ in range(12):
            exchange(sock, source, request(ORIGINATE_LEG, secret="wrong"))
        for _ in range(3):
            exchange(sock, source, _cut(request(ORIGINATE_LEG)))
        wait_for(lambda: sum(_dropped(r) for r in caplog.records) == 15, timeout=5)
    # then lines at the Status level count them by reason, naming the sender
    summaries = [r for r in caplog.records if "dropped in the last" in r.getMessage()]
    assert {r.levelno for r in summaries} == {STATUS}
    assert re.fullmatch(r"\d+ packet\(s\) dropped in the last 0.5 s: (\d+ with a wrong secret or "
                        r"corrupt)?(, )?(\d+ malformed)?; most from 127.0.0.1 \(\d+\)",
                        summaries[0].getMessage())
    assert len(deliver.attempts) == 0


def _dropped(record) -> int:
    """The number of drops a summary line counts (0 for other lines)."""
    message = record.getMessage()
    return int(message.split(" ", 1)[0]) if "dropped in the last" in message else 0
