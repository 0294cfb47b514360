"""R2.2, R2.4: the TCP sources (observers/sources/tcp.py) over real sockets on 127.0.0.1.

The PBX side is played by plain sockets in the test; `deliver` and `notify` are recorders.
"""
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.backoff import backoff
from observers.sources.tcp import LineFramer, TcpClientSource, TcpServerSource
from tests.conftest import free_port, wait_for
from tests.observers.helpers import Deliveries, Events
from tests.observers.helpers import running as running_thread
from tests.observers.threecx_cdr import INCOMING, INTERNAL, OUTGOING, cdr_line

LOG = logging.getLogger("tests.observers.tcp_sources")
FAST = {"flush_seconds": 0.05, "retry_min": 0.05, "retry_max": 0.1}


@dataclass
class Running:
    """A TCP source running in its thread, with what it delivered and notified."""

    source: TcpServerSource | TcpClientSource
    deliveries: Deliveries
    notes: Events
    stop_and_time: Callable[[], float]


@contextmanager
def running(cls, deliveries: Deliveries | None = None, **source_settings):
    deliveries = deliveries if deliveries is not None else Deliveries()
    notes = Events()
    source = cls(name="pbx", settings=source_settings, deliver=deliveries, log=LOG, notify=notes)
    with running_thread(source, stop_within=3) as thread:
        yield Running(source, deliveries, notes, thread.stop_and_time)


@contextmanager
def tcp_server(deliveries: Deliveries | None = None, **source_settings):
    """A TcpServerSource listening on a free port of 127.0.0.1."""
    with running(TcpServerSource, deliveries, **{"port": 0, "host": "127.0.0.1", **FAST,
                                                 **source_settings}) as run:
        assert run.source.ready.wait(1)
        yield run


def connect(run: Running) -> socket.socket:
    sock = socket.create_connection(run.source.address, timeout=2)
    return sock


def name_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"tcp:{host}:{port}"


def cdr_lines(count: int, newline: str = "\n", first: int = 1) -> list[bytes]:
    bases = (OUTGOING, INCOMING, INTERNAL)
    return [(cdr_line(bases[n % 3], historyid=f"Call {n}") + newline).encode()
            for n in range(first, first + count)]


def send_in_odd_pieces(sock: socket.socket, data: bytes, rng: random.Random) -> None:
    """Send `data` cut at random byte boundaries, the first 40 bytes one byte at a time."""
    for byte in data[:40]:
        sock.sendall(bytes([byte]))
    position = 40
    while position < len(data):
        size = rng.choice((1, 2, 3, 7, 13, 64, 301, 1500))
        sock.sendall(data[position:position + size])
        position += size


def listener(port: int = 0) -> socket.socket:
    """The PBX's side in passive-socket mode: a plain listening socket."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    sock.settimeout(2)
    return sock


# --- the framing, pure -----------------------------------------------------------------

@pytest.mark.parametrize(("chunks", "lines", "dropped"), [
    ([b"a,b\r\nc,d\n"], [b"a,b\r\n", b"c,d\n"], []),
    ([b"a,", b"b", b"\r", b"\n"], [b"a,b\r\n"], []),
    ([b"\n\r\n  \r\nx\n"], [b"x\n"], []),  # blank keep-alive lines carry no call
    ([b"12345\r\n"], [b"12345\r\n"], []),  # exactly max_line_bytes before the CRLF
    ([b"123456\n", b"ok\n"], [b"ok\n"], [7]),
    ([b"1234", b"5678", b"9\nok", b"\n"], [b"ok\n"], [10]),
    ([b"12345", b"\r", b"x\r\nok\n"], [b"ok\n"], [9]),
    ([b"no newline yet"], [], []),  # reported when it ends, or when the connection does
])
def test_framer_cuts_lines_and_drops_over_long_ones(chunks, lines, dropped):
    # given a framer allowing five bytes a line
    framer = LineFramer(max_line_bytes=5)
    # when the chunks arrive
    got, sizes = [], []
    for chunk in chunks:
        complete, long_ones = framer.feed(chunk)
        got += complete
        sizes += [size for size, _ in long_ones]
    # then the complete lines come out verbatim and over-long ones are reported once
    assert got == lines
    assert sizes == dropped


def test_framer_reports_the_unfinished_line_when_the_connection_ends():
    # given a framer inside a short unfinished line, and one inside an over-long line
    short, long = LineFramer(max_line_bytes=50), LineFramer(max_line_bytes=50)
    short.feed(b"ok\nhalf,")
    long.feed(b"ok\n" + b"x" * 300)
    # when their connections end
    # then the short one gives back its partial line, the long one its size and first bytes
    assert short.reset() == (b"half,", [])
    assert long.reset() == (b"", [(300, b"x" * 200)])


@settings(max_examples=100, deadline=None)
@given(
    records=st.lists(st.tuples(
        st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r")),
        st.sampled_from([b"\n", b"\r\n"]),
    ), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40),
)
def test_any_split_of_the_stream_yields_the_same_lines_in_order(records, cuts):
    # given a stream of lines, some longer than the 30-byte limit, cut anywhere
    stream = b"".join(body + end for body, end in records)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    framer = LineFramer(max_line_bytes=30)
    # when the pieces are fed one by one
    got, dropped = [], []
    for start, end in zip(points, points[1:], strict=False):
        lines, long_ones = framer.feed(stream[start:end])
        got += lines
        dropped += long_ones
    # then exactly the lines within the limit come out, byte for byte, in order
    assert got == [body + end for body, end in records if len(body) <= 30 and (body + end).strip()]
    # and each longer one is reported once with its size and first bytes
    assert dropped == [(len(body + end), (body + end)[:200]) for body, end in records if len(body) > 30]
    assert framer.reset() == (b"", [])


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_doubles_within_its_bounds(attempt):
    # given the bounds 0.1 s .. 2 s
    # when the delay of a retry is drawn, jittered as the TCP sources draw it
    delay = backoff(attempt, 0.1, 2.0, jitter=True)
    # then it stays within the bounds, under the doubled ceiling, and starts at the minimum
    assert 0.1 <= delay <= min(2.0, 0.1 * 2 ** attempt)
    if attempt == 0:
        assert delay == 0.1


@pytest.mark.parametrize(("cls", "source_settings"), [
    (TcpServerSource, {}),
    (TcpServerSource, {"port": "http"}),
    (TcpServerSource, {"port": 1, "flush_lines": -5}),
    (TcpClientSource, {"port": 10000}),
    (TcpClientSource, {"host": "pbx"}),
    (TcpClientSource, {"host": "pbx", "port": 1, "reconnect_min": "soon"}),
])
def test_a_source_with_missing_or_bad_settings_is_refused(cls, source_settings):
    # given settings lacking a required key, or holding a bad number
    # when the source is built, then it refuses, naming the profile
    with pytest.raises(ValueError, match="observer pbx"):
        cls(name="pbx", settings=source_settings, deliver=Deliveries(), log=LOG, notify=Events())


# --- the server source -----------------------------------------------------------------

def test_server_joins_lines_split_at_odd_byte_boundaries(caplog):
    # given a listening server and a PBX sending LF then CRLF lines cut anywhere
    lines = cdr_lines(6) + cdr_lines(6, newline="\r\n", first=7)
    with tcp_server() as run, connect(run) as pbx:
        # when the bytes arrive, the first ones one at a time
        send_in_odd_pieces(pbx, b"".join(lines), random.Random(7))
        delivered = run.deliveries.lines_when(len(lines))
        name = name_of(pbx)
    # then every line is delivered once, verbatim, in order, under the peer's name
    assert delivered == lines
    assert {source for _, source in run.deliveries.received} == {name}
    assert run.notes.peer_events == [("connected", name[4:]), ("disconnected", name[4:])]
    assert "lost" not in caplog.text


def test_server_hands_every_line_on_at_once_in_batches_of_at_most_flush_lines():
    # given a server handing on at most 4 lines at a time (flush_seconds is the journal's:
    # observers/journal.py gathers by it, not the source)
    lines = cdr_lines(10)
    with tcp_server(flush_lines=4, flush_seconds=30) as run, connect(run) as pbx:
        # when 10 lines arrive together
        sent = time.monotonic()
        pbx.sendall(b"".join(lines))
        # then all go at once, nothing waits in memory for a timer
        assert run.deliveries.lines_when(10) == lines
        waited = time.monotonic() - sent
    assert waited < 1.0
    assert max(len(data.splitlines()) for data, _ in run.deliveries.received) <= 4


@pytest.mark.parametrize("peers", [2, 5])
def test_concurrent_connections_each_deliver_their_own_lines_under_their_own_name(peers):
    # given a server and several PBX connections open at once
    with tcp_server() as run:
        socks = [connect(run) for _ in range(peers)]
        sent = {name_of(sock): cdr_lines(15, newline="\r\n" if n % 2 else "\n", first=100 * n)
                for n, sock in enumerate(socks)}

        def stream(sock, seed):
            send_in_odd_pieces(sock, b"".join(sent[name_of(sock)]), random.Random(seed))

        # when they all stream at the same time
        senders = [threading.Thread(target=stream, args=(sock, n)) for n, sock in enumerate(socks)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(2)
        run.deliveries.lines_when(15 * peers)
        for sock in socks:
            sock.close()
        assert wait_for(lambda: run.notes.count("disconnected") == peers, timeout=1.5)
    # then each connection's lines arrive complete and in order under its own name
    for name, lines in sent.items():
        assert run.deliveries.lines(name) == lines
    assert run.notes.count("connected") == peers


def test_over_long_line_is_dropped_and_logged_while_its_neighbours_are_delivered(caplog):
    # given a server allowing 100-byte lines
    good = [b"good,1\n", b"good,2\r\n"]
    long_line = b"L" * 199 + b"Z" + b"Q" * 300 + b"\r\n"
    with tcp_server(max_line_bytes=100) as run, connect(run) as pbx:
        # when a 500-byte line comes between two good ones, in pieces
        pbx.sendall(good[0])
        for i in range(0, len(long_line), 37):
            pbx.sendall(long_line[i:i + 37])
            time.sleep(0.002)
        pbx.sendall(good[1])
        delivered = run.deliveries.lines_when(2)
        time.sleep(0.1)
    # then the good lines are delivered and the long one is not, its first 200 bytes logged
    assert delivered == good
    assert run.deliveries.lines() == good
    assert "dropped a 502-byte line, over max_line_bytes=100" in caplog.text
    assert "L" * 199 + "Z" in caplog.text
    assert "Q" not in caplog.text


def test_client_disconnecting_mid_line_loses_only_the_partial_line_which_is_logged(caplog):
    # given a connected PBX
    lines = cdr_lines(2)
    partial = b"P" * 200 + b"R" * 100
    with tcp_server() as run:
        pbx = connect(run)
        name = name_of(pbx)
        # when it sends two lines and part of a third, then hangs up
        pbx.sendall(b"".join(lines) + partial)
        pbx.close()
        assert wait_for(lambda: run.notes.count("disconnected") == 1, timeout=1.5)
        delivered = run.deliveries.lines_when(2)
        time.sleep(0.1)
    # then the two lines are delivered, the partial one is not, and the log shows its head
    assert delivered == lines
    assert run.deliveries.lines() == lines
    assert f"{name}: disconnected mid-line; 300 bytes lost" in caplog.text
    assert "P" * 200 in caplog.text
    assert "R" not in caplog.text.split("bytes lost")[1]


def test_connections_beyond_the_limit_are_closed_at_once_with_a_warning(caplog):
    # given a server allowing two connections, both taken
    with tcp_server(max_connections=2) as run:
        first, second = connect(run), connect(run)
        assert wait_for(lambda: run.notes.count("connected") == 2, timeout=1.5)
        # when a third PBX connects
        # then it is closed at once (an orderly close or a reset), with a warning
        with connect(run) as third, suppress(ConnectionResetError):
            assert third.recv(1) == b""
        assert "already 2 connections (max_connections)" in caplog.text
        # and once one leaves, a new connection is served
        first.close()
        assert wait_for(lambda: run.notes.count("disconnected") == 1, timeout=1.5)
        with connect(run) as fourth:
            fourth.sendall(b"after,1\n")
            assert run.deliveries.lines_when(1) == [b"after,1\n"]
            assert run.deliveries.received[0][1] == name_of(fourth)
        second.close()
    assert run.notes.count("connected") == 3


def test_idle_connection_is_closed_after_idle_timeout():
    # given a server closing connections silent for 0.3 s
    with tcp_server(idle_timeout=0.3) as run:
        with connect(run) as pbx:
            pbx.sendall(b"one,line\n")
            started = time.monotonic()
            # when the PBX then stays silent
            closed = pbx.recv(1)
            waited = time.monotonic() - started
        # then the server closes it after the timeout, having delivered its line
        assert closed == b""
        assert 0.25 <= waited < 1.0
        assert run.deliveries.lines_when(1) == [b"one,line\n"]
        assert wait_for(lambda: run.notes.count("disconnected") == 1, timeout=1.5)


def test_failed_deliveries_are_retried_without_loss_or_doubling(caplog):
    # given a deliver that fails twice (the database is down), then works
    deliveries = Deliveries(failures=2)
    lines = cdr_lines(5)
    with tcp_server(deliveries) as run, connect(run) as pbx:
        # when lines arrive before and during the outage
        pbx.sendall(b"".join(lines[:3]))
        assert wait_for(lambda: len(deliveries.attempts) >= 1, timeout=1.5)
        pbx.sendall(b"".join(lines[3:]))
        delivered = deliveries.lines_when(5)
        time.sleep(0.2)
    # then every line is delivered exactly once, in order, after the retries
    assert delivered == lines
    assert deliveries.lines() == lines
    assert len(deliveries.attempts) >= 3
    assert "delivering 3 lines failed: database unavailable" in caplog.text


def test_reading_pauses_at_the_pending_limit_while_delivery_fails():
    # given a server keeping at most 10 undelivered lines, and a deliver that fails
    deliveries = Deliveries()
    deliveries.failing = True
    lines = cdr_lines(50)
    with tcp_server(deliveries, max_pending_lines=10) as run, connect(run) as pbx:
        # when the PBX streams 50 lines in small bursts
        for i in range(0, 50, 5):
            pbx.sendall(b"".join(lines[i:i + 5]))
            time.sleep(0.02)
        assert wait_for(lambda: any(len(d.splitlines()) >= 10 for d, _ in deliveries.attempts),
                        timeout=1.5)
        time.sleep(0.3)
        sizes = [len(data.splitlines()) for data, _ in deliveries.attempts]
        held = sizes[next(i for i, size in enumerate(sizes) if size >= 10):]
        # then the source stops reading: what it holds no longer grows
        assert len(set(held)) == 1 and held[0] < 50
        # and when delivery recovers, everything comes, once and in order
        deliveries.failing = False
        delivered = deliveries.lines_when(50)
    assert delivered == lines


def test_lines_of_a_closed_connection_still_count_towards_the_pending_limit():
    # given a limit of 10 pending lines, a deliver that fails, and a PBX that sent 9 lines
    # and hung up
    deliveries = Deliveries()
    deliveries.failing = True
    lines = cdr_lines(13)
    with tcp_server(deliveries, max_pending_lines=10) as run:
        with connect(run) as first:
            first_name = name_of(first)
            first.sendall(b"".join(lines[:9]))
            assert wait_for(lambda: len(deliveries.attempts) >= 1, timeout=1.5)
        assert wait_for(lambda: run.notes.count("disconnected") == 1, timeout=1.5)
        # when it reconnects and sends one line (the tenth), then three more
        second = connect(run)
        second.sendall(lines[9])
        assert wait_for(lambda: any(name == name_of(second) for _, name in deliveries.attempts),
                        timeout=1.5)
        second.sendall(b"".join(lines[10:]))
        time.sleep(0.3)
        # then reading stops at the tenth line: the old connection's lines count too
        assert {len(d.splitlines()) for d, name in deliveries.attempts if name == name_of(second)} == {1}
        # and once delivery recovers, all lines come once, in order
        deliveries.failing = False
        delivered = deliveries.lines_when(13)
        assert deliveries.lines(first_name) == lines[:9]
        assert deliveries.lines(name_of(second)) == lines[9:]
        second.close()
    assert sorted(delivered) == sorted(lines)


def test_stop_returns_promptly_and_flushes_pending_lines():
    # given two connected PBXs with lines waiting for a 30-second flush timer
    lines = cdr_lines(3)
    with tcp_server(flush_seconds=30) as run:
        first, second = connect(run), connect(run)
        first.sendall(lines[0] + lines[1])
        second.sendall(lines[2] + b"half a li")
        time.sleep(0.1)
        # when the source is stopped
        elapsed = run.stop_and_time()
        # then it returns within a second, having delivered every complete line
        assert elapsed < 1.0
        assert run.deliveries.lines(name_of(first)) == lines[:2]
        assert run.deliveries.lines(name_of(second)) == lines[2:]
        # and the PBXs see their connections closed
        assert first.recv(1) == b"" and second.recv(1) == b""
        assert not run.source.ready.is_set()
        first.close()
        second.close()
    assert run.notes.count("disconnected") == 2


def test_restarted_server_binds_the_same_port_at_once():
    # given a server that closed a connection (leaving it in TIME_WAIT) when it stopped
    with tcp_server() as run:
        port = run.source.address[1]
        pbx = connect(run)
        assert wait_for(lambda: run.notes.count("connected") == 1, timeout=1.5)
        assert run.stop_and_time() < 1.0
        pbx.close()
    # when a new server starts on that port, then it listens at once
    with tcp_server(port=port) as again:
        assert again.source.address[1] == port


def test_server_retries_while_its_port_is_taken(caplog):
    # given a port held by another listener
    blocker = listener()
    port = blocker.getsockname()[1]
    with running(TcpServerSource, port=port, host="127.0.0.1", **FAST) as run:
        # when the server starts, then it waits, logging why
        assert not run.source.ready.wait(0.3)
        assert "cannot listen on 127.0.0.1" in caplog.text
        # and it listens once the port is free
        blocker.close()
        assert run.source.ready.wait(1)


# --- the client source -----------------------------------------------------------------

def client_settings(port: int, **extra) -> dict:
    return {"host": "127.0.0.1", "port": port, "reconnect_min": 0.05, "reconnect_max": 0.2,
            **FAST, **extra}


def test_client_reconnects_after_the_server_restarts_without_loss_or_doubling():
    # given a PBX in passive-socket mode that the client has connected to
    pbx = listener()
    port = pbx.getsockname()[1]
    before, after = cdr_lines(4), cdr_lines(4, newline="\r\n", first=5)
    with running(TcpClientSource, **client_settings(port)) as run:
        conn, _ = pbx.accept()
        assert run.source.ready.wait(1)
        # when it streams lines, closes, and comes back on the same port
        send_in_odd_pieces(conn, b"".join(before), random.Random(1))
        pbx.close()
        conn.close()
        assert run.deliveries.lines_when(4) == before
        assert wait_for(lambda: not run.source.ready.is_set(), timeout=1.5)
        pbx = listener(port)
        conn, _ = pbx.accept()
        assert run.source.ready.wait(1)
        conn.sendall(b"".join(after))
        delivered = run.deliveries.lines_when(8)
        time.sleep(0.1)
        conn.close()
        pbx.close()
    # then the client reconnected and every line came exactly once, in order
    assert delivered == before + after
    assert run.deliveries.lines() == before + after
    assert {name for _, name in run.deliveries.received} == {f"tcp:127.0.0.1:{port}"}
    assert run.notes.count("connected") >= 2
    assert run.notes.peer_events[:3] == [("connected", f"127.0.0.1:{port}"),
                                    ("disconnected", f"127.0.0.1:{port}"),
                                    ("connected", f"127.0.0.1:{port}")]


def test_client_retries_an_unreachable_server_until_it_appears(caplog):
    # given no PBX listening yet (connection refused)
    port = free_port()
    with running(TcpClientSource, **client_settings(port)) as run:
        # when the client starts, then it is not ready and logs why
        assert not run.source.ready.wait(0.3)
        assert f"cannot connect to 127.0.0.1:{port}" in caplog.text
        # and when the PBX starts listening, the client connects and reads
        pbx = listener(port)
        conn, _ = pbx.accept()
        assert run.source.ready.wait(1)
        conn.sendall(b"late,1\nlate,2\n")
        delivered = run.deliveries.lines_when(2)
        conn.close()
        pbx.close()
    assert delivered == [b"late,1\n", b"late,2\n"]


def test_client_keeps_undelivered_lines_across_a_reconnect():
    # given a client whose deliver fails (the database is down)
    deliveries = Deliveries()
    deliveries.failing = True
    pbx = listener()
    port = pbx.getsockname()[1]
    with running(TcpClientSource, deliveries, **client_settings(port)):
        conn, _ = pbx.accept()
        # when the PBX sends lines and restarts while they cannot be delivered
        conn.sendall(b"kept,1\nkept,2\n")
        assert wait_for(lambda: len(deliveries.attempts) >= 1, timeout=1.5)
        conn.close()
        conn, _ = pbx.accept()
        conn.sendall(b"kept,3\n")
        assert wait_for(lambda: any(b"kept,3" in data for data, _ in deliveries.attempts),
                        timeout=1.5)
        deliveries.failing = False
        # then once delivery works, every line arrives once, in order
        delivered = deliveries.lines_when(3)
        time.sleep(0.1)
        conn.close()
        pbx.close()
    assert delivered == [b"kept,1\n", b"kept,2\n", b"kept,3\n"]
    assert deliveries.lines() == delivered


def test_client_loses_only_the_partial_line_when_the_server_closes_mid_line(caplog):
    # given a connected client
    pbx = listener()
    port = pbx.getsockname()[1]
    with running(TcpClientSource, **client_settings(port)) as run:
        conn, _ = pbx.accept()
        # when the PBX sends a line and half of another, then closes
        conn.sendall(b"whole,1\nhalf,")
        conn.close()
        pbx.close()
        delivered = run.deliveries.lines_when(1)
        assert wait_for(lambda: "mid-line" in caplog.text, timeout=1.5)
    # then the whole line is delivered and the half is logged, not delivered
    assert delivered == [b"whole,1\n"]
    assert f"tcp:127.0.0.1:{port}: disconnected mid-line; 5 bytes lost: b'half,'" in caplog.text


def test_client_stop_returns_promptly_and_flushes_pending_lines():
    # given a connected client holding lines for a 30-second flush timer
    pbx = listener()
    port = pbx.getsockname()[1]
    with running(TcpClientSource, **client_settings(port, flush_seconds=30)) as run:
        conn, _ = pbx.accept()
        conn.sendall(b"pending,1\npending,2\n")
        time.sleep(0.1)
        # when it is stopped
        elapsed = run.stop_and_time()
        # then it returns within a second with the lines delivered and the socket closed
        assert elapsed < 1.0
        assert run.deliveries.lines() == [b"pending,1\n", b"pending,2\n"]
        assert conn.recv(1) == b""
        assert not run.source.ready.is_set()
        conn.close()
        pbx.close()
    assert run.notes.peer_events[-1] == ("disconnected", f"127.0.0.1:{port}")


def test_client_stop_returns_promptly_while_a_connect_hangs():
    # given a client connecting to an address that never answers, with a 10-second timeout
    with running(TcpClientSource, host="10.255.255.1", port=9, connect_timeout=10) as run:
        time.sleep(0.2)
        # when it is stopped, then it returns within a second
        assert run.stop_and_time() < 1.0
