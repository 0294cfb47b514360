"""Benchmark of the RADIUS accounting source (observers/sources/radius.py) over loopback.

    .venv/bin/python bench/radius.py [--packets 20000] [--concurrency 50] [--batch-max 512]
                                     [--no-fsync] [--timeout 3] [--retries 2]

A RadiusSource runs in a child process with a `deliver` that appends the data to a file and
fsyncs it before returning (what the raw archive does, R2.4), so each answer means "on disk".
This process plays `--concurrency` NASes: each has its own UDP socket and one Stop packet
(Cisco VSAs, ~400 bytes) outstanding at a time, sends the next as soon as the answer comes,
and sends a packet again after `--timeout` seconds without an answer, up to `--retries`
times, as a NAS does. Packets are built before the clock starts.

Printed: answered Stop packets per second, packets never answered (lost), retransmissions,
deliver calls and fsyncs, calls in the file. The goal (its issue): >= 5,000 Stop packets/s
answered, none lost. `--batch-max 1` makes the source deliver (and fsync) every packet on its
own, to show what batching buys.
"""
import argparse
import multiprocessing
import os
import platform
import select
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyrad.packet import AcctPacket  # noqa: E402

from observers.sources import radius  # noqa: E402

SECRET = "bench-secret"  # noqa: S105 - a throwaway secret on loopback
GOAL = 5_000


def serve(port_queue, stop_event, path: str, fsync: bool, batch_max: int, stats_queue):
    """The child process: a RadiusSource whose deliver appends to `path` (and fsyncs)."""
    radius.BATCH_MAX = batch_max
    deliveries = {"calls": 0, "writes": 0}
    handle = open(path, "ab")  # noqa: SIM115 - open for the life of the process

    def deliver(data: bytes, name: str):
        handle.write(data)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
        deliveries["writes"] += 1
        deliveries["calls"] += data.count(b"\n")

    source = radius.RadiusSource(name="bench", settings={"port": 0, "host": "127.0.0.1",
                                                          "secret": SECRET}, deliver=deliver)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    source.ready.wait(10)
    port_queue.put(source.address[1])
    stop_event.wait()
    stop.set()
    thread.join()
    handle.close()
    stats_queue.put({**source.counters, **deliveries})


def build_packets(count: int) -> list[bytes]:
    dictionary = radius.radius_dictionary()
    packets = []
    for n in range(count):
        packet = AcctPacket(id=n % 256, secret=SECRET.encode(), dict=dictionary)
        packet["Acct-Status-Type"] = "Stop"
        packet["Acct-Session-Id"] = f"{n:08X}"
        packet["NAS-IP-Address"] = "192.0.2.10"
        packet["Calling-Station-Id"] = f"10{n % 100:02d}"
        packet["Called-Station-Id"] = f"0441{n:06d}"
        packet["Acct-Session-Time"] = 30 + n % 600
        packet["Event-Timestamp"] = 1718619400 + n
        packet["h323-conf-id"] = f"h323-conf-id={n:08X} 8B5611D4 8020E09D 8B2F0F50"
        packet["h323-call-origin"] = "h323-call-origin=originate"
        packet["h323-call-type"] = "h323-call-type=Telephony"
        packet["h323-setup-time"] = "h323-setup-time=10:15:33.123 UTC Mon Jun 17 2024"
        packet["h323-connect-time"] = "h323-connect-time=10:15:38.000 UTC Mon Jun 17 2024"
        packet["h323-disconnect-time"] = "h323-disconnect-time=10:16:39.000 UTC Mon Jun 17 2024"
        packet["h323-disconnect-cause"] = "h323-disconnect-cause=10"
        packet["Cisco-AVPair"] = ["h323-incoming-conf-id=" + f"{n:08X}", "release-source=4"]
        packets.append(packet.RequestPacket())
    return packets


def blast(port: int, packets: list[bytes], concurrency: int, timeout: float, retries: int):
    """Send every packet, `concurrency` outstanding; return (seconds, answered, lost, resent)."""
    sockets = []
    for _ in range(concurrency):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        sockets.append(sock)
    queue = list(reversed(packets))
    outstanding = {}  # socket -> [packet, sent at, tries]
    answered = lost = resent = 0
    started = time.perf_counter()

    def send_next(sock):
        if queue:
            packet = queue.pop()
            sock.send(packet)
            outstanding[sock] = [packet, time.perf_counter(), 1]
        else:
            outstanding.pop(sock, None)

    for sock in sockets:
        send_next(sock)
    while outstanding:
        readable, _, _ = select.select(list(outstanding), [], [], 0.05)
        for sock in readable:
            try:
                reply = sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            packet = outstanding[sock][0]
            if len(reply) >= 20 and reply[0] == 5 and reply[1] == packet[1]:
                answered += 1
                send_next(sock)
        now = time.perf_counter()
        for sock, state in list(outstanding.items()):
            if now - state[1] > timeout:
                if state[2] > retries:
                    lost += 1
                    send_next(sock)
                else:
                    sock.send(state[0])
                    state[1], state[2] = now, state[2] + 1
                    resent += 1
    elapsed = time.perf_counter() - started
    for sock in sockets:
        sock.close()
    return elapsed, answered, lost, resent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-max", type=int, default=radius.BATCH_MAX)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args()

    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    packets = build_packets(args.packets)
    print(f"built {len(packets)} Stop packets ({len(packets[0])} bytes each) in "
          f"{time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "archive.cdr")
        context = multiprocessing.get_context("spawn")
        port_queue, stats_queue, stop_event = context.Queue(), context.Queue(), context.Event()
        child = context.Process(target=serve, args=(port_queue, stop_event, path,
                                                    not args.no_fsync, args.batch_max, stats_queue))
        child.start()
        port = port_queue.get(timeout=30)
        elapsed, answered, lost, resent = blast(port, packets, args.concurrency, args.timeout,
                                                args.retries)
        stop_event.set()
        stats = stats_queue.get(timeout=30)
        child.join(30)
        with open(path, "rb") as handle:
            lines = handle.read().count(b"\n")
    rate = answered / elapsed
    print(f"{args.packets} Stop packets, concurrency {args.concurrency}, batch max "
          f"{args.batch_max}, fsync {'off' if args.no_fsync else 'on'}")
    print(f"answered {answered} in {elapsed:.2f} s: {rate:,.0f} packets/s "
          f"(goal {GOAL:,}: {'met' if rate >= GOAL and not lost else 'NOT met'})")
    print(f"lost {lost}, retransmitted {resent}; source: {stats['received']} received, "
          f"{stats['answered']} answered, {stats['retransmits']} retransmits answered from cache")
    print(f"deliver called {stats['writes']} times ({stats['calls'] / max(stats['writes'], 1):.1f} "
          f"calls per fsync); {lines} calls in the file")


if __name__ == "__main__":
    main()
