"""Benchmark of collection end to end (R2, issue 5): 3CX CDR lines from a file to rated,
stored calls on PostgreSQL, against the floor of loading the same rows, already rated, with
COPY (what `psql \\copy` does).

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/pipeline.py [--calls 1000000]
    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... DEBUG=true \
        .venv/bin/python bench/pipeline.py --workers 2

The database of DATABASE_URL is used as it is (migrated beforehand); the script creates the
demo site there when it has none (`seed_demo --days 1`), empties the call table, and then:
  (b) ingests the file through `observers.pipeline.profile_ingest` — archive (fsync), parse,
      normalise, classify, rate, insert — in this process, in one go; or, with `--workers K`,
      as a collector delivers a file with a broker (`profile_deliver`: archive, then one task
      per piece of TARISCOPE_TASK_BYTES) to a Celery worker of K processes started by the
      script, timed until every piece is stored;
  (a) the floor: copies the stored calls out to CSV, empties the table, and COPYs them back
      in (same indexes and constraints), timed.
Printed: calls/s of both and (b)/(a). Goals of the issue: (b) >= 25,000 calls/s and
(b) within 4x of (a).
"""
import argparse
import io
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from billing.models import Call, Node  # noqa: E402
from observers.delivery import profile_deliver  # noqa: E402
from observers.models import ObserverProfile  # noqa: E402
from observers.pipeline import profile_ingest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rating import cpu_model  # noqa: E402  (bench/rating.py: the machine's CPU, once)

MOBILE = ("50", "66", "67", "68", "93", "95", "96", "97", "98", "99", "63", "73")
ABROAD = ("48", "49", "44", "1", "33", "39", "420", "371", "90", "972")


def cdr_lines(count: int, seed: int) -> bytes:
    """`count` answered outgoing 3CX v18 lines from extensions 201-230 (the demo site's,
    tariscope/demo/site.py) over a month."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, 8)
    fmt = "%Y/%m/%d %H:%M:%S"
    out = io.StringIO()
    for n in range(count):
        begin = start + timedelta(seconds=n * 2592000 // count)
        answer = begin + timedelta(seconds=rng.randint(2, 20))
        talk = rng.randint(1, 900)
        pick = rng.random()
        if pick < 0.3:
            number = f"9044{rng.randint(0, 9999999):07d}"
        elif pick < 0.8:
            number = f"90{rng.choice(MOBILE)}{rng.randint(0, 9999999):07d}"
        else:
            number = f"900{rng.choice(ABROAD)}{rng.randint(0, 99999999):08d}"
        ext = str(201 + n % 30)
        out.write(
            f"Call {n},{n:016x}_1,{talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d},"
            f"{begin:{fmt}},{answer:{fmt}},{answer + timedelta(seconds=talk):{fmt}},"
            f"TerminatedBySrc,Ext.{ext},{number},{ext},10000,{number},,{number},10000,,,,,"
            f"Chain: Ext.{ext};{number};,Extension,Line,Line,Staff,{number},{number},\n")
    return out.getvalue().encode()


def _through_workers(profile, data: bytes, workers: int) -> tuple[dict, float]:
    """Deliver `data` as the collector does with a broker, to a Celery worker of `workers`
    processes started here; (the delivery's summary, seconds until every piece is stored)."""
    from tariscope.celery import app

    app.control.purge()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tariscope", "worker", "--pool", "prefork",
         "--concurrency", str(workers), "--loglevel", "WARNING", "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--hostname", f"bench{os.getpid()}@%h"],
        cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit("the Celery worker did not start")
        began = time.perf_counter()
        delivery = profile_deliver(profile=profile, data=data, source_name="bench.log")
        summary = delivery.get(timeout=3600)
        return summary, time.perf_counter() - began
    finally:
        worker.terminate()
        worker.wait(60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0,
                        help="Celery worker processes (needs CELERY_BROKER_URL); 0: in-process")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database (migrated)")
    if args.workers and settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("--workers needs a broker: set CELERY_BROKER_URL=redis://...")
    if not Node.objects.filter(name="Kyiv").exists():
        call_command("seed_demo", "--days", "1", "--cdr-dir", tempfile.mkdtemp())
    profile = ObserverProfile.objects.select_related("device").get(name="PBX1")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_call CASCADE")
    data = cdr_lines(args.calls, args.seed)
    print(f"Python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} CPUs; "
          f"{args.calls:,} 3CX lines ({len(data) / 1e6:.0f} MB)")

    if args.workers:
        summary, pipeline = _through_workers(profile, data, args.workers)
        how = f"{args.workers} worker processes"
    else:
        began = time.perf_counter()
        summary = profile_ingest(profile=profile, data=data, source_name="bench.log").as_dict()
        pipeline = time.perf_counter() - began
        how = "in this process"
    assert summary["calls"] == args.calls, summary
    priced = Call.objects.exclude(cost=None).count()

    columns = ", ".join(f.column for f in Call._meta.concrete_fields if not f.primary_key)
    dump = io.StringIO()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY (SELECT {columns} FROM billing_call) TO STDOUT",  # noqa: S608
                                  dump)
        cursor.execute("TRUNCATE billing_call CASCADE")
    dump.seek(0)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY billing_call ({columns}) FROM STDIN", dump)
    floor = time.perf_counter() - began

    print(f"(a) COPY of the rated rows:   {floor:7.2f} s {args.calls / floor:10,.0f} calls/s")
    print(f"(b) file -> rated calls:      {pipeline:7.2f} s {args.calls / pipeline:10,.0f} calls/s"
          f"  ({priced:,} priced; {how})")
    print(f"ratio (b)/(a) = {pipeline / floor:.2f}")
    print(f"goal (b) >= 25,000 calls/s: {'met' if args.calls / pipeline >= 25000 else 'MISSED'};"
          f" goal (b)/(a) <= 4: {'met' if pipeline / floor <= 4 else 'MISSED'}")


if __name__ == "__main__":
    main()
