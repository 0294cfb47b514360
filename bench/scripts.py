"""Benchmark of scripts (R9, issue 14): collection with the shipped fraud.py bound to the
stored calls (and fraud_behaviour.py, the behaviour model) against collection with no
script, same data, same run; how fast the
dispatcher scripts the calls; and the time from a call stored to its mail received.

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/scripts.py [--calls 20000]

The database of DATABASE_URL is used as it is (migrated beforehand); the script creates the
demo site there when it has none (`seed_demo --days 1`) and empties the call table. Tasks
run in this process (no broker): the calls are collected as `--pieces` deliveries of the
3CX lines of bench/pipeline.py (a fifth of them international, over a month, so that many
are long calls at night or at the weekend).

  (a) no script bound: the pieces are collected, timed;
  (b) the --scripts (default fraud.py and fraud_behaviour.py) bound to `call_processed` of
      the profile, and `manage.py dispatch_events`
      running in its own process (as in production, on the same two cores): the same pieces
      collected again, timed; then the time until every call has been scripted (the queue
      empty) and every mail has reached the SMTP server run here (aiosmtpd on loopback).

Printed: calls/s of (a) and (b) and (b)/(a) (goal >= 90 %); calls scripted per second
over (b), from its first piece to the queue empty (goal >= 2,000); mails received; and
for each mail the time from its call's insertion (Call.created_at) to its arrival at the
SMTP server: p50 and p99.
"""
import argparse
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")

import django  # noqa: E402

django.setup()

from aiosmtpd.controller import Controller  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from pipeline import cdr_lines  # noqa: E402  (bench/pipeline.py's generator)
from rating import cpu_model  # noqa: E402

from billing.models import Call, Node  # noqa: E402
from observers.models import ObserverProfile  # noqa: E402
from observers.pipeline import profile_ingest  # noqa: E402
from scripts.models import (  # noqa: E402
    Alert,
    EventLogEntry,
    OutgoingMail,
    QueuedEvent,
    ScriptBinding,
)

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
MAIL_ID = re.compile(rb"Suspicious call detected\. ID=(\d+)")


class Mailbox:
    def __init__(self):
        self.arrivals: dict[int, float] = {}  # call id -> arrival (epoch seconds)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        found = MAIL_ID.search(envelope.content)
        if found:
            self.arrivals.setdefault(int(found.group(1)), time.time())
        return "250 OK"


def pieces_of(data: bytes, count: int) -> list[bytes]:
    lines = data.splitlines(keepends=True)
    size = -(-len(lines) // count)
    return [b"".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def collect(profile, pieces) -> float:
    began = time.perf_counter()
    for number, piece in enumerate(pieces):
        profile_ingest(profile=profile, data=piece, source_name=f"bench-{number}.log")
    return time.perf_counter() - began


def reset(profile) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_call CASCADE")
    for model in (QueuedEvent, EventLogEntry, OutgoingMail, Alert):
        model.objects.all().delete()
    ScriptBinding.objects.filter(profile=profile).delete()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scripts", default="fraud,fraud_behaviour",
                        help="The shipped scripts bound to call_processed in (b), "
                             "comma-separated.")
    parser.add_argument("--timeout", type=float, default=900,
                        help="Seconds to wait for the scripts to finish.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database (migrated)")
    if not Node.objects.filter(name="Kyiv").exists():
        call_command("seed_demo", "--days", "1", "--cdr-dir", tempfile.mkdtemp())
    profile = ObserverProfile.objects.select_related("device").get(name="PBX1")
    pieces = pieces_of(cdr_lines(args.calls, args.seed), args.pieces)
    print(f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs; {args.calls:,} 3CX lines in {len(pieces)} pieces")

    reset(profile)
    without = collect(profile, pieces)

    reset(profile)
    scripts = [name.strip() for name in args.scripts.split(",") if name.strip()]
    for name in scripts:
        ScriptBinding.objects.create(profile=profile, event="call_processed", script=name)
    mailbox = Mailbox()
    with socket.socket() as probe:  # a free port (aiosmtpd needs one named)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    data_dir = tempfile.mkdtemp(prefix="bench-scripts-")
    dispatcher = subprocess.Popen(
        [sys.executable, "manage.py", "dispatch_events", "--interval", "0.05"], cwd=ROOT,
        env={**os.environ, "EMAIL_URL": f"smtp://127.0.0.1:{port}", "CELERY_BROKER_URL": "",
             "TARISCOPE_ALERT_EMAIL": "security@example.com", "TARISCOPE_DATA_DIR": data_dir})
    try:
        time.sleep(2)  # the dispatcher's start-up is not collection's cost
        began = time.perf_counter()
        with_scripts = collect(profile, pieces)
        deadline = time.monotonic() + args.timeout
        while QueuedEvent.objects.exists() or OutgoingMail.objects.exists():
            if time.monotonic() > deadline or dispatcher.poll() is not None:
                sys.exit("the dispatcher did not finish in time (or ended)")
            time.sleep(0.05)
        scripted = time.perf_counter() - began
    finally:
        dispatcher.terminate()
        dispatcher.wait(30)
        smtp.stop()
    entries = EventLogEntry.objects.count()
    errors = EventLogEntry.objects.exclude(error="").count()
    created = dict(Call.objects.filter(pk__in=list(mailbox.arrivals)).values_list(
        "pk", "created_at"))
    delays = [mailbox.arrivals[pk] - created[pk].timestamp() for pk in created]

    rate_a, rate_b = args.calls / without, args.calls / with_scripts
    calls_scripted = entries // len(scripts)
    print(f"(a) no script:        {without:7.1f} s  {rate_a:9,.0f} calls/s")
    print(f"(b) {' + '.join(scripts)} bound:")
    print(f"                      {with_scripts:7.1f} s  {rate_b:9,.0f} calls/s  "
          f"(b)/(a) = {rate_b / rate_a:.0%} (goal >= 90 %: "
          f"{'met' if rate_b / rate_a >= 0.9 else 'MISSED'})")
    print(f"scripted {calls_scripted:,} calls by {len(scripts)} scripts ({entries:,} runs, "
          f"{errors} errors) in {scripted:.1f} s from the first piece: "
          f"{calls_scripted / scripted:,.0f} calls/s (goal >= 2,000: "
          f"{'met' if calls_scripted / scripted >= 2000 else 'MISSED'})")
    if delays:
        print(f"{len(delays):,} mails received; stored -> mail received: p50 "
              f"{quantile(delays, 0.5):.2f} s, p99 {quantile(delays, 0.99):.2f} s, "
              f"max {max(delays):.2f} s")
    else:
        print("no mail received")
    alerts = Alert.objects.count()
    print(f"alerts raised: {alerts:,}")
    if entries != args.calls * len(scripts) or errors:
        sys.exit("not every call was scripted once without error")


if __name__ == "__main__":
    main()
