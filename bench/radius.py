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
answered, none lost. `--batch-max 1` makes the receiving thread of the source hand the
packets over one by one (its delivery thread still takes together what waits for it).

End to end (`--pipeline`, the deployment for busy gateways): needs DATABASE_URL (PostgreSQL,
migrated) and CELERY_BROKER_URL (Redis).

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... DEBUG=true \
        .venv/bin/python bench/radius.py --pipeline [--workers 1] [--duplicates 1000]

The script creates the demo site when the database has none (`seed_demo --days 1`), adds a
device of type radius priced by the demo operator and plan with its RADIUS observer profile
(RADIUS-BENCH), empties the call table and the task queue, and starts `--workers` Celery
worker processes (`celery -A tariscope worker -c K --pool prefork -Q <default queue>`). The
collector runs in a child process with the source and journal the runner builds
(observers.runner.build_source, build_journal): its deliver archives the bytes (fsync),
and the journal's sender enqueues `observers.process_chunk` from the archive; the workers
parse, rate and store. After the load as above
(`--duplicates` packets of it sent once more afterwards, from whichever NAS socket is free,
as a NAS that lost the answer does), it waits until every call is stored. Printed besides the
answered rate: the time from the first packet to the last call stored (calls/s end to end),
and whether the table holds each call sent exactly once. `--workers-after` starts the
workers only when the load is over (the tasks wait in Redis): the answered rate of the
collector alone, as when the workers run on other hosts, then the workers' rate alone.
`--py-spy FILE` records the collector process with py-spy during the load (a flame graph
when FILE ends in .svg, collapsed stacks otherwise).
"""
import argparse
import multiprocessing
import os
import platform
import select
import signal
import socket
import subprocess
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
ROOT = Path(__file__).resolve().parent.parent
PROFILE = "RADIUS-BENCH"
NAS = "192.0.2.10"


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
        packet["NAS-IP-Address"] = NAS
        packet["Calling-Station-Id"] = f"10{n % 100:02d}"
        # Kyiv numbers and the carrier's own mobile network (both in the demo deck).
        packet["Called-Station-Id"] = f"0441{n:06d}" if n % 2 else f"067{n:07d}"
        packet["Acct-Session-Time"] = 30 + n % 600
        packet["Event-Timestamp"] = 1794824133 + n
        packet["h323-conf-id"] = f"h323-conf-id={n:08X} 8B5611D4 8020E09D 8B2F0F50"
        packet["h323-call-origin"] = "h323-call-origin=originate"
        packet["h323-call-type"] = "h323-call-type=Telephony"
        packet["h323-setup-time"] = "h323-setup-time=10:15:33.123 UTC Mon Nov 16 2026"
        packet["h323-connect-time"] = "h323-connect-time=10:15:38.000 UTC Mon Nov 16 2026"
        packet["h323-disconnect-time"] = "h323-disconnect-time=10:16:39.000 UTC Mon Nov 16 2026"
        packet["h323-disconnect-cause"] = "h323-disconnect-cause=10"
        packet["Cisco-AVPair"] = ["h323-incoming-conf-id=" + f"{n:08X}", "release-source=4"]
        packets.append(packet.RequestPacket())
    return packets


def blast(port: int, packets: list[bytes], concurrency: int, timeout: float, retries: int):
    """Send every packet, `concurrency` outstanding; return (seconds, answered, lost, resent).
    A packet that appears twice in `packets` is sent twice, each copy as its own request."""
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


def django_setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")
    import django

    django.setup()


def collect(port_queue, stop_event, stats_queue, profile_name: str):
    """The child process of --pipeline: the profile's source and journal as observers.runner
    builds them (deliver = archive with fsync; the journal enqueues observers.process_chunk)."""
    django_setup()
    from observers.logs import profile_logger
    from observers.models import ObserverProfile
    from observers.runner import build_journal, build_source

    profile = ObserverProfile.objects.select_related("device").get(name=profile_name)
    journal = build_journal(profile, profile_logger(profile)).open()
    source = build_source(profile, profile_logger(profile), deliver=journal)
    deliveries = {"calls": 0, "writes": 0}
    real_deliver = source.deliver

    def deliver(data: bytes, name: str):  # the runner's deliver, counted
        outcome = real_deliver(data, name)
        deliveries["writes"] += 1
        deliveries["calls"] += data.count(b"\n")
        return outcome

    source.deliver = deliver
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    source.ready.wait(30)
    port_queue.put((source.address[1], os.getpid()))
    stop_event.wait()
    stop.set()
    thread.join()
    journal.close()
    stats_queue.put({**source.counters, **deliveries})


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_prepare(port: int):
    """The demo operator and plan, a radius device priced by them, its RADIUS profile on
    `port`; the call table emptied. Returns the profile."""
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Device, DeviceType, Node, Route
    from observers.models import ObserverProfile, SourceType
    from tariffs.models import Operator, TariffPlan
    from tariscope.demo.site import NODE_NAME, OPERATOR_NAME, PLAN_NAME

    if not Node.objects.filter(name=NODE_NAME).exists():
        call_command("seed_demo", "--days", "1", "--cdr-dir", tempfile.mkdtemp())
    operator = Operator.objects.get(name=OPERATOR_NAME)
    plan = TariffPlan.objects.get(name=PLAN_NAME)
    # A Kyiv gateway: 4-digit extensions, numbers dialled nationally (0 44 …) without an
    # access code, the calls priced by the demo carrier's deck.
    device, _ = Device.objects.update_or_create(name=PROFILE, defaults={
        "node": Node.objects.get(name=NODE_NAME), "type": DeviceType.RADIUS,
        "timezone": "Europe/Kyiv", "access_code": "", "national_prefix": "0",
        "international_prefix": "00", "country_code": "380", "area_code": "44",
        "extension_length": 4, "default_operator": operator, "default_plan": plan})
    Route.objects.update_or_create(device=device, name=NAS, defaults={"operator": operator})
    profile, _ = ObserverProfile.objects.update_or_create(name=PROFILE, defaults={
        "device": device, "source": SourceType.RADIUS,
        "settings": {"secret": SECRET, "host": "127.0.0.1", "port": port}})
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_call CASCADE")
    return profile


def workers_start(count: int, log_path: str):
    """`count` Celery worker processes (one prefork pool) on the default queue, answering;
    their output goes to `log_path`."""
    from tariscope.celery import app

    queue = app.conf.task_default_queue
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "celery", "-A", "tariscope", "worker", "-c", str(count),
         "--pool", "prefork", "-Q", queue, "--loglevel", "WARNING",
         "-n", f"radius-bench-{os.getpid()}@%h"],
        cwd=ROOT, start_new_session=True, stdout=open(log_path, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"the Celery worker exited with status {worker.returncode} (its "
                     f"output: {log_path})")
        if app.control.ping(destination=[f"radius-bench-{os.getpid()}@{socket.gethostname()}"],
                            timeout=1.0):
            return worker, queue
    worker.terminate()
    sys.exit("the Celery worker did not answer within 60 s")


def workers_stop(worker):
    worker.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def calls_wait(expected: int, since: float, idle_limit: float = 120.0):
    """Poll the call table until it holds `expected` calls (or stops growing for
    `idle_limit` s); return (calls, seconds from `since` to the last call's created_at)."""
    from django.db.models import Max

    from billing.models import Call

    count, last_change, last_count = 0, time.monotonic(), -1
    while True:
        count = Call.objects.count()
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if count >= expected or time.monotonic() - last_change > idle_limit:
            break
        time.sleep(0.05)
    last = Call.objects.aggregate(last=Max("created_at"))["last"]
    return count, (last.timestamp() - since) if last else float("nan")


def pipeline(args, packets: list[bytes]):
    django_setup()
    from django.conf import settings
    from django.db import connection

    from billing.models import Call

    if connection.vendor != "postgresql":
        sys.exit("--pipeline: set DATABASE_URL to a PostgreSQL database (migrated)")
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        sys.exit("--pipeline: set CELERY_BROKER_URL to a Redis database")
    port = free_udp_port()
    site_prepare(port)
    connection.close()
    log_path = os.path.join(tempfile.mkdtemp(prefix="radius-bench-"), "worker.log")
    from tariscope.celery import app

    app.control.purge()  # tasks of an earlier run that was stopped
    worker = None
    if not args.workers_after:
        worker, queue = workers_start(args.workers, log_path)
    context = multiprocessing.get_context("spawn")
    port_queue, stats_queue, stop_event = context.Queue(), context.Queue(), context.Event()
    child = context.Process(target=collect, args=(port_queue, stop_event, stats_queue, PROFILE))
    try:
        child.start()
        port, pid = port_queue.get(timeout=60)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(  # noqa: S603
                [str(Path(sys.executable).with_name("py-spy")), "record", "-o", args.py_spy,
                 "-p", str(pid), "-r", "200", "--idle", "--format",
                 "flamegraph" if args.py_spy.endswith(".svg") else "raw"],
                stdout=subprocess.DEVNULL)
            time.sleep(1)
        resend = [packets[i * len(packets) // args.duplicates] for i in range(args.duplicates)] \
            if args.duplicates else []
        since = time.time()
        elapsed, answered, lost, resent = blast(port, packets + resend, args.concurrency,
                                                args.timeout, args.retries)
        if spy:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        if args.workers_after:
            since = time.time()
            worker, queue = workers_start(args.workers, log_path)
        stored, until_last = calls_wait(len(packets), since)
        stop_event.set()
        stats = stats_queue.get(timeout=60)
        child.join(30)
        distinct = Call.objects.values("source_key").distinct().count()
        priced = Call.objects.exclude(cost=None).count()
    finally:
        if child.is_alive():
            stop_event.set()
            child.join(30)
        if worker is not None:
            workers_stop(worker)
    sent = len(packets) + len(resend)
    rate = answered / elapsed
    print(f"{sent} Stop packets ({len(packets)} calls + {len(resend)} sent again), concurrency "
          f"{args.concurrency}, {args.workers} worker process(es) on queue {queue!r}")
    print(f"answered {answered} in {elapsed:.2f} s: {rate:,.0f} packets/s "
          f"(goal {GOAL:,}: {'met' if rate >= GOAL and not lost else 'NOT met'})")
    print(f"lost {lost}, retransmitted {resent}; source: {stats['received']} received, "
          f"{stats['answered']} answered, {stats['retransmits']} retransmits answered from cache")
    print(f"deliver (archive, fsync) called {stats['writes']} times "
          f"({stats['calls'] / max(stats['writes'], 1):.1f} calls each)")
    print(f"stored {stored} calls ({distinct} distinct, {priced} priced); last stored "
          f"{until_last:.2f} s after the {'workers started' if args.workers_after else 'first packet'}"
          f": {stored / until_last:,.0f} calls/s end to end")
    once = stored == distinct == len(packets)
    print(f"every call stored once: {'yes' if once else 'NO'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-max", type=int, default=radius.BATCH_MAX,
                        help="The source alone: datagrams handled together at most.")
    parser.add_argument("--no-fsync", action="store_true",
                        help="The source alone: append to the file without fsync.")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--pipeline", action="store_true",
                        help="End to end: the runner's deliver, Celery workers, PostgreSQL.")
    parser.add_argument("--workers", type=int, default=1,
                        help="--pipeline: Celery worker processes (default 1).")
    parser.add_argument("--duplicates", type=int, default=0,
                        help="--pipeline: packets sent once more after the load (default 0).")
    parser.add_argument("--workers-after", action="store_true",
                        help="--pipeline: start the workers only once the load is over (the "
                             "collector alone, as with workers on other hosts).")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="--pipeline: record the collector with py-spy into FILE (.svg).")
    args = parser.parse_args()
    if args.workers < 1 or args.concurrency < 1 or args.packets < 1:
        parser.error("--workers, --concurrency and --packets must be at least 1")
    if not 0 <= args.duplicates <= args.packets:
        parser.error("--duplicates must be between 0 and --packets")

    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    packets = build_packets(args.packets)
    print(f"built {len(packets)} Stop packets ({len(packets[0])} bytes each) in "
          f"{time.perf_counter() - started:.1f} s")
    if args.pipeline:
        pipeline(args, packets)
        return
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
