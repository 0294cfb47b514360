"""Benchmark of restrictions and PBX control (R8, issue 15): collection with monthly limits
against collection without, same data, same run; the time from the call that crosses a
limit being stored to the PBX being told to close the extension; and the cost of one poll
of the call control with 500 calls in progress.

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/restrictions.py \
        [--calls 1000000 --subscribers 10000 --crossings 200 --parts 1,2,3]
    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... DEBUG=true \
        .venv/bin/python bench/restrictions.py --parts 2

The database of DATABASE_URL is used as it is (migrated beforehand); the script creates the
demo site there when it has none (`seed_demo --days 1`), and beside it, on the demo's node,
a site of its own that it deletes and makes again at the start of every run: the device
BENCHR (the demo PBX's dial plan, operator and plan), its observer profile, and
--subscribers subscribers each holding one extension (20000, 20001, ...) on it. The call
table and the month usage (billing.MonthUsage) are emptied (TRUNCATE), as the other
benchmarks empty the call table. The PBX is the fake 3CX of the tests
(tests/restrictions/fake3cx.py) on loopback, speaking v20 held to 3CX's XAPI description
(tests/restrictions/data/), with a user for every extension; the device's PBX control
(restrictions.PbxControl) has a v20 connector to it, closing by group ("No outbound").

The calls are bench/pipeline.py's 3CX lines (cdr_lines), moved to this month in the node's
zone (limits count the month now; the generator's lines are of October 2026) and spread at
random over the extensions. Tasks run in this process (the embedded default), also when
CELERY_BROKER_URL is set, except in part 2 (ii).

  1. --calls calls collected as pieces of TARISCOPE_TASK_BYTES (as a collector delivers a
     file; --pieces N: N equal pieces instead), with observers.pipeline.profile_ingest:
     (a) no limit; (b) the same calls again (the calls, the month usage and the charges
     emptied between) with a money limit on every subscriber, warning at 80 %: at the
     usage that 0.5 % of the subscribers reached in (a), so that few close, and for
     --low of them at 30 % of their own usage in (a), so that they close during the
     run. After each stored piece the limits of its subscribers are checked
     (restrictions.limits_check) and the closures' PBX changes made, in this process:
     the cost measured. Printed: calls/s of (a) and (b), (b)/(a) (goal >= 90 %), and
     the time (b) spent in the limits checks, with their queries.
  2. --crossings subscribers get a limit of 0.01, and one call of each is stored, one
     piece per call (each its own batch), back to back as fast as this process stores
     them (--gap S: S seconds apart). Measured per crossing: from the commit of its
     piece's transaction (and from Call.created_at, its insertion) to the fake 3CX
     receiving PATCH /xapi/v1/Users(<id>) for that user: p50, p99, max. (i) on the
     embedded default: the check and the PBX change run after the commit in this
     process; (ii) only when CELERY_BROKER_URL is set: a Celery worker (--pool solo)
     started here runs the check and the PBX change. Goal: p99 <= 2 s in both. Printed
     too: how fast the crossings came and how fast the PBX changes followed (back to
     back, a worker that makes fewer changes a second than the crossings come falls
     behind, and the delays grow with --crossings).
  3. The control loop: --active calls in progress on the fake (of known subscribers, to
     local, mobile and foreign numbers, each dialled with its caller's authorization code),
     every call-control rule on (max_call_cost, max_call_seconds, min_balance,
     require_auth_code, blocked_destinations) at values none of them breaks, and
     restrictions.control.control_poll timed over --polls polls after the first (in
     which every call is new and its longest duration is worked out): ms per poll (p50,
     max), SQL queries per poll, and apart: connector.active_calls() alone (the HTTP
     read, with the part of it that is the fake's own work: checking its answer against
     the description), and billing.calls.CallBuilder(device) alone (a poll builds one).

A request or an answer of the fake that breaks the XAPI description is printed and fails
the run.
"""
import argparse
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from pipeline import ABROAD, MOBILE, cdr_lines  # noqa: E402  (bench/pipeline.py's generator)
from rating import cpu_model  # noqa: E402

import restrictions.services  # noqa: E402  (its limits_check is timed in place)
from billing.calls import CallBuilder  # noqa: E402
from billing.models import (  # noqa: E402
    Call,
    Charge,
    Device,
    MonthUsage,
    Node,
    PhoneNumber,
    Route,
    Subscriber,
    SubscriberGroup,
)
from observers.models import ObserverProfile, SourceType  # noqa: E402
from observers.pipeline import delivery_pieces, profile_ingest  # noqa: E402
from restrictions.control import control_memory_clear, control_poll  # noqa: E402
from restrictions.models import (  # noqa: E402
    AuthCode,
    Closure,
    ControlAction,
    Limit,
    LimitMonth,
    PbxChange,
    PbxControl,
)
from restrictions.pbx import connector_of  # noqa: E402
from scripts.events import Event, event_subscribe  # noqa: E402
from scripts.models import OutgoingMail, QueuedEvent  # noqa: E402
from tests.restrictions.fake3cx import Fake3CX, load_contract, spec_path  # noqa: E402

DEVICE = PROFILE = "BENCHR"
# The profile's log file is written as in production, but not echoed to the console (a line
# per piece); nor the note of each warning and closure that no one is mailed (no
# TARISCOPE_ALERT_EMAIL: their mails would be rows of the outbox).
logging.getLogger(f"tariscope.observer.{PROFILE}").propagate = False
logging.getLogger("restrictions.services").setLevel(logging.WARNING)
GROUP = "Bench restrictions"
NAME = "Bench R"  # subscribers are "Bench R 20000", ...
FIRST_DN, FIRST_USER_ID = 20_000, 100_000  # Fake3CX.add_users' defaults
FMT = "%Y/%m/%d %H:%M:%S"
PATCH_PATH = "/xapi/v1/Users("


# -- the fake PBX, with the time each request arrived ------------------------------------

class TimedLog(list):
    """The fake's request log, each entry stamped (epoch seconds) as the fake takes it."""

    def append(self, entry):
        entry.received = time.time()
        super().append(entry)


class TimedFake3CX(Fake3CX):
    """The tests' fake 3CX, which logs no times: stamped here rather than edited there; and
    the time it spends on each v20 request (its handler and the check of its answer
    against the description), as `entry.served`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = TimedLog()

    def _xapi(self, h, entry, *args, **kwargs):
        began = time.perf_counter()
        try:
            return super()._xapi(h, entry, *args, **kwargs)
        finally:
            entry.served = time.perf_counter() - began

    def users_reset(self, count: int) -> None:
        """Every bench extension as a user again (in its own group, none closed), and the
        log emptied."""
        with self.lock:
            self.add_users(count, first_id=FIRST_USER_ID, first_number=FIRST_DN)
            self.log.clear()

    def patches(self) -> dict[int, float]:
        """user id -> when the first PATCH of that user arrived."""
        seen: dict[int, float] = {}
        for entry in self.requests(api="v20", method="PATCH", path=PATCH_PATH):
            user_id = int(entry.path[len(PATCH_PATH):].rstrip(")"))
            seen.setdefault(user_id, entry.received)
        return seen


# -- the site ------------------------------------------------------------------------------

class Site:
    def __init__(self, device, profile, group, subscribers, archive):
        self.device, self.profile, self.group = device, profile, group
        self.subscribers = subscribers  # [(subscriber id, extension)], by extension
        self.archive = archive

    @property
    def dns(self) -> list[str]:
        return [dn for _, dn in self.subscribers]


def site_delete() -> None:
    """What an earlier run made (the calls and month usage go with the TRUNCATE)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_call, billing_monthusage CASCADE")
    OutgoingMail.objects.filter(script="restrictions", subject__contains=NAME).delete()
    for profile in ObserverProfile.objects.filter(name=PROFILE):
        profile.log_path.unlink(missing_ok=True)
        if profile.archive_dir and Path(profile.archive_dir).name.startswith("bench-restr"):
            shutil.rmtree(profile.archive_dir, ignore_errors=True)
        profile.delete()
    PbxChange.objects.filter(device__name=DEVICE).delete()
    Subscriber.objects.filter(group__name=GROUP).delete()  # limits, closures, numbers, ...
    SubscriberGroup.objects.filter(name=GROUP).delete()
    Device.objects.filter(name=DEVICE).delete()  # its PBX control, actions, routes


def site_make(count: int, fake: TimedFake3CX) -> Site:
    if not Node.objects.filter(name="Kyiv").exists():
        call_command("seed_demo", "--days", "1", "--cdr-dir", tempfile.mkdtemp())
    site_delete()
    demo = Device.objects.select_related("node").get(name="PBX1")
    device = Device.objects.create(
        node=demo.node, name=DEVICE, type=demo.type, timezone=demo.timezone,
        access_code=demo.access_code, national_prefix=demo.national_prefix,
        international_prefix=demo.international_prefix, country_code=demo.country_code,
        area_code=demo.area_code, extension_length=len(str(FIRST_DN + count - 1)),
        service_numbers=demo.service_numbers, default_operator=demo.default_operator,
        default_plan=demo.default_plan)
    for route in demo.routes.all():
        Route.objects.create(device=device, name=route.name, kind=route.kind,
                             operator=route.operator)
    archive = tempfile.mkdtemp(prefix="bench-restr-")
    profile = ObserverProfile.objects.create(name=PROFILE, device=device,
                                             source=SourceType.FOLDER,
                                             settings={"path": archive}, archive_dir=archive)
    group = SubscriberGroup.objects.create(node=demo.node, name=GROUP)
    since = datetime.now(UTC).date().replace(day=1) - timedelta(days=40)
    dns = [str(FIRST_DN + n) for n in range(count)]
    made = Subscriber.objects.bulk_create(
        [Subscriber(full_name=f"{NAME} {dn}", group=group, account_number=f"BR{dn}",
                    connection_date=since) for dn in dns], batch_size=2000)
    PhoneNumber.objects.bulk_create(
        [PhoneNumber(subscriber=s, device=device, dn=dn, valid_from=since)
         for s, dn in zip(made, dns, strict=True)], batch_size=2000)
    PbxControl.objects.create(device=device, call_control={}, connector={
        "type": "3cx-v20", "url": fake.url, "client_id": fake.client_id,
        "client_secret": fake.client_secret, "close_by": "group",
        "closed_group": "No outbound", "poll_seconds": 2, "sync_minutes": 0, "timeout": 10})
    fake.users_reset(count)
    return Site(device, profile, group, [(s.pk, dn) for s, dn in zip(made, dns, strict=True)],
                archive)


def state_reset(site: Site, fake: TimedFake3CX, *, keep_limits: bool = False) -> None:
    """Back to no calls: the calls, the month usage, the charges, the closures and their
    PBX changes gone (and the limits, unless kept); the PBX's users as they were."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_call, billing_monthusage CASCADE")
    PbxChange.objects.filter(device=site.device).delete()
    ControlAction.objects.filter(device=site.device).delete()
    Closure.objects.filter(subscriber__group=site.group).delete()  # and the class history
    LimitMonth.objects.filter(limit__subscriber__group=site.group).delete()
    if not keep_limits:
        Limit.objects.filter(subscriber__group=site.group).delete()
    Charge.objects.filter(subscriber__group=site.group).delete()
    QueuedEvent.objects.filter(profile=site.profile).delete()
    OutgoingMail.objects.filter(script="restrictions", subject__contains=NAME).delete()
    fake.users_reset(len(site.subscribers))


# -- the calls -----------------------------------------------------------------------------

def _second_of_day(stamp: str) -> int:
    return int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])


def lines_for(count: int, seed: int, extension_of, start: datetime, span: int) -> bytes:
    """bench/pipeline.py's `count` lines, each from the extension `extension_of(n)`, the
    calls beginning evenly over `span` seconds from `start` (local, naive) with their ring
    and talk times kept."""
    out = []
    for n, line in enumerate(cdr_lines(count, seed).decode().splitlines()):
        f = line.split(",")
        ring = (_second_of_day(f[4]) - _second_of_day(f[3])) % 86400
        hours, minutes, seconds = f[2].split(":")
        talk = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
        begin = start + timedelta(seconds=n * span // count)
        answer = begin + timedelta(seconds=ring)
        f[3], f[4], f[5] = (format(begin, FMT), format(answer, FMT),
                            format(answer + timedelta(seconds=talk), FMT))
        dn = extension_of(n)
        f[7], f[9], f[19] = f"Ext.{dn}", dn, f"Chain: Ext.{dn};{f[8]};"
        out.append(",".join(f))
    return ("\n".join(out) + "\n").encode()


def local_now(site: Site) -> datetime:
    return datetime.now(zoneinfo.ZoneInfo(site.device.timezone)).replace(tzinfo=None)


def pieces_of(data: bytes, count: int) -> list[bytes]:
    if count <= 0:  # as a collector cuts a delivery
        return [data[offset:offset + length]
                for offset, length, _ in delivery_pieces(data, settings.TARISCOPE_TASK_BYTES)]
    lines = data.splitlines(keepends=True)
    size = -(-len(lines) // count)
    return [b"".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def collect(profile, pieces) -> float:
    began = time.perf_counter()
    for number, piece in enumerate(pieces):
        profile_ingest(profile=profile, data=piece, source_name=f"bench-{number}.log")
    return time.perf_counter() - began


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LimitsCheckTimer:
    """restrictions.services.limits_check timed where it runs (it is looked up by name when
    a stored piece's commit calls it): its seconds, runs and SQL queries; and apart, the
    PBX changes its closures made (restrictions.services.pbx_changes_run, looked up the
    same way), whose time includes the fake PBX's answers, given in this process."""

    def __init__(self):
        self.seconds, self.runs, self.queries = 0.0, 0, 0
        self.pbx_seconds, self.pbx_runs = 0.0, 0

    def _count(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        self.originals = check, pbx = (restrictions.services.limits_check,
                                       restrictions.services.pbx_changes_run)

        def timed_check(**arguments):
            began = time.perf_counter()
            try:
                with connection.execute_wrapper(self._count):
                    return check(**arguments)
            finally:
                self.seconds += time.perf_counter() - began
                self.runs += 1

        def timed_pbx(**arguments):
            began = time.perf_counter()
            try:
                return pbx(**arguments)
            finally:
                self.pbx_seconds += time.perf_counter() - began
                self.pbx_runs += 1
        restrictions.services.limits_check = timed_check
        restrictions.services.pbx_changes_run = timed_pbx
        return self

    def __exit__(self, *exc):
        restrictions.services.limits_check, restrictions.services.pbx_changes_run = \
            self.originals

    def text(self, total: float | None = None) -> str:
        share = f" ({self.seconds / total:.0%} of it)" if total else ""
        text = (f"limits checks: {self.runs} runs, {self.seconds:.2f} s{share}, "
                f"{self.queries:,} queries")
        if self.pbx_runs:
            text += (f"; of which PBX changes: {self.pbx_runs} runs, {self.pbx_seconds:.2f} s"
                     f" (the fake PBX answering in this process)")
        return text


# -- 1. collection with limits on and off --------------------------------------------------

def part_collection(args, site: Site, fake: TimedFake3CX) -> None:
    now = local_now(site)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max(int((now - timedelta(minutes=30) - month_start).total_seconds()), 3600)
    rng = random.Random(args.seed)
    dns = site.dns
    picks = [dns[rng.randrange(len(dns))] for _ in range(args.calls)]
    data = lines_for(args.calls, args.seed, picks.__getitem__, month_start, span)
    pieces = pieces_of(data, args.pieces)
    print(f"1. collection: {args.calls:,} 3CX lines ({len(data) / 1e6:.0f} MB) in "
          f"{len(pieces)} pieces, over {len(dns):,} extensions, {month_start:%Y-%m-%d} to "
          f"{month_start + timedelta(seconds=span):%Y-%m-%d %H:%M} (local)")

    state_reset(site, fake)
    with LimitsCheckTimer() as checks_a:
        without = collect(site.profile, pieces)
    stored = Call.objects.filter(device=site.device).count()
    if stored != args.calls:
        sys.exit(f"(a) stored {stored:,} calls of {args.calls:,}")
    currency = site.device.default_operator.currency
    used = dict(MonthUsage.objects.filter(subscriber__group=site.group, currency=currency)
                .values("subscriber_id").annotate(total=Sum("cost"))
                .values_list("subscriber_id", "total"))
    usages = [used.get(pk) or Decimal(0) for pk, _ in site.subscribers]
    cent = Decimal("0.01")
    high = max(quantile(usages, 0.995), cent).quantize(cent, ROUND_CEILING)
    spenders = [pk for pk, _ in site.subscribers if used.get(pk)]
    low = set(random.Random(args.seed + 1).sample(spenders, min(args.low, len(spenders))))
    state_reset(site, fake)
    Limit.objects.bulk_create(
        [Limit(subscriber_id=pk, currency=currency, warn_percent=80,
               money=(max(used[pk] * Decimal("0.3"), cent).quantize(cent, ROUND_CEILING)
                      if pk in low else high)) for pk, _ in site.subscribers],
        batch_size=2000)
    with LimitsCheckTimer() as checks_b:
        with_limits = collect(site.profile, pieces)
    stored = Call.objects.filter(device=site.device).count()
    if stored != args.calls:
        sys.exit(f"(b) stored {stored:,} calls of {args.calls:,}")
    closed = Closure.objects.filter(subscriber__group=site.group, reopened_at=None)
    closed_low = closed.filter(subscriber_id__in=low).count()
    warned = LimitMonth.objects.filter(limit__subscriber__group=site.group,
                                       warned_at__isnull=False).count()
    done = PbxChange.objects.filter(device=site.device, status=PbxChange.Status.DONE).count()
    other = (PbxChange.objects.filter(device=site.device)
             .exclude(status=PbxChange.Status.DONE).count())

    rate_a, rate_b = args.calls / without, args.calls / with_limits
    print(f"   (a) no limit:            {without:7.1f} s {rate_a:9,.0f} calls/s")
    print(f"       {checks_a.text()}")
    print(f"   (b) a limit per subscriber ({high} {currency} for all but {len(low)}, "
          f"warning at 80 %):")
    print(f"                            {with_limits:7.1f} s {rate_b:9,.0f} calls/s   "
          f"(b)/(a) = {rate_b / rate_a:.0%} (goal >= 90 %: "
          f"{'met' if rate_b / rate_a >= 0.9 else 'MISSED'})")
    print(f"       {checks_b.text(with_limits)}")
    print(f"       queries per limits check: {checks_b.queries / max(checks_b.runs, 1):,.0f} "
          f"for {len(site.subscribers):,} subscribers with a limit")
    print(f"       closed {closed.count()} ({closed_low} of the {len(low)} set low), warned "
          f"{warned}; PBX changes done {done}, not done {other}")


# -- 2. crossing a limit to the PBX change -------------------------------------------------

class CommitClock:
    """When the transaction that stored a piece of the bench profile committed: the
    piece's CALL_PROCESSED event marks the transaction, and the connection's commit is
    stamped (by the bench, on this connection only)."""

    def __init__(self):
        self.marked = False
        self.at: float | None = None

    def _event(self, event, params):
        if event == Event.CALL_PROCESSED and params.get("profile") == PROFILE:
            self.marked = True

    def __enter__(self):
        target = connections["default"]
        original = target.commit

        def commit():
            original()
            if self.marked:
                self.at, self.marked = time.time(), False
        target.commit = commit  # on this connection object only; removed on exit
        self._target = target
        self._unsubscribe = event_subscribe(self._event)
        return self

    def __exit__(self, *exc):
        self._unsubscribe()
        del self._target.commit


def _worker_start():
    from tariscope.celery import app

    app.control.purge()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--quiet", "-A", "tariscope", "worker", "--pool", "solo",
         "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip",
         "--without-mingle", "--hostname", f"benchrestr{os.getpid()}@%h"], cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"})  # not a line per task
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.terminate()
            sys.exit("the Celery worker did not start")
    return worker


def crossings_measure(args, site: Site, fake: TimedFake3CX, label: str) -> list[float]:
    """Store one crossing call per piece for the first --crossings subscribers; print and
    return the delays commit -> PATCH."""
    state_reset(site, fake)
    crossers = site.subscribers[:args.crossings]
    currency = site.device.default_operator.currency
    Limit.objects.bulk_create([Limit(subscriber_id=pk, currency=currency,
                                     money=Decimal("0.01")) for pk, _ in crossers])
    now = local_now(site)
    data = lines_for(len(crossers), args.seed, lambda n: crossers[n][1],
                     now - timedelta(minutes=40), 600)
    lines = data.splitlines(keepends=True)
    committed: dict[int, float] = {}  # user id -> commit
    with CommitClock() as clock:
        for (_pk, dn), line in zip(crossers, lines, strict=True):
            clock.at = None
            profile_ingest(profile=site.profile, data=line, source_name=f"crossing-{dn}.log")
            if clock.at is None:
                sys.exit(f"the piece of {dn} was not committed (no call stored?)")
            committed[FIRST_USER_ID + int(dn) - FIRST_DN] = clock.at
            if args.gap:
                time.sleep(args.gap)
    deadline = time.monotonic() + args.timeout
    while len(set(committed) & set(fake.patches())) < len(committed) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    patched = fake.patches()
    inserted = {FIRST_USER_ID + int(ext) - FIRST_DN: at.timestamp() for ext, at in
                Call.objects.filter(device=site.device).values_list("extension", "created_at")}
    delays = [patched[user] - at for user, at in committed.items() if user in patched]
    from_insert = [patched[user] - inserted[user] for user in committed
                   if user in patched and user in inserted]
    missing = len(committed) - len(delays)
    closures = Closure.objects.filter(subscriber__group=site.group).count()
    print(f"   ({label}) {len(committed)} crossings, {closures} closures, "
          f"{len(delays)} PATCHes received{f', {missing} MISSING' if missing else ''}")
    if delays:
        p99 = quantile(delays, 0.99)
        print(f"       commit -> PATCH at the PBX: p50 {quantile(delays, 0.5) * 1000:7.1f} ms, "
              f"p99 {p99 * 1000:7.1f} ms, max {max(delays) * 1000:7.1f} ms "
              f"(goal p99 <= 2 s: {'met' if p99 <= 2 and not missing else 'MISSED'})")
        print(f"       insert (Call.created_at) -> PATCH: p50 "
              f"{quantile(from_insert, 0.5) * 1000:7.1f} ms, p99 "
              f"{quantile(from_insert, 0.99) * 1000:7.1f} ms, max "
              f"{max(from_insert) * 1000:7.1f} ms")
        stored_in = max(committed.values()) - min(committed.values())
        changed_in = max(patched[user] for user in committed if user in patched) \
            - min(committed.values())
        print(f"       the crossings committed over {stored_in:.2f} s "
              f"({len(committed) / max(stored_in, 1e-9):,.1f}/s), the last PATCH "
              f"{changed_in:.2f} s after the first commit "
              f"({len(delays) / max(changed_in, 1e-9):,.1f} PBX changes/s)")
    return delays


def part_latency(args, site: Site, fake: TimedFake3CX) -> None:
    print(f"2. a limit crossed -> the PBX change: {args.crossings} subscribers with a limit "
          f"of 0.01, one call each, one piece per call"
          f"{f', {args.gap} s apart' if args.gap else ', back to back'}")
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        crossings_measure(args, site, fake, "i: embedded default, in this process")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        print("   (ii: with a broker) skipped: set CELERY_BROKER_URL=redis://... to run it")
        return
    worker = _worker_start()
    try:
        crossings_measure(args, site, fake, "ii: a Celery worker, --pool solo")
    finally:
        worker.terminate()
        worker.wait(60)


# -- 3. the control loop's poll ------------------------------------------------------------

def _external(rng: random.Random) -> str:
    """A number as an extension dials it (the access code first), of pipeline.py's mix."""
    pick = rng.random()
    if pick < 0.3:
        return f"9044{rng.randint(0, 9999999):07d}"
    if pick < 0.8:
        return f"90{rng.choice(MOBILE)}{rng.randint(0, 9999999):07d}"
    return f"900{rng.choice(ABROAD)}{rng.randint(0, 99999999):08d}"


def part_control(args, site: Site, fake: TimedFake3CX) -> None:
    state_reset(site, fake)
    rng = random.Random(args.seed)
    callers = [site.subscribers[n % len(site.subscribers)] for n in range(args.active)]
    codes = {}
    for n, (pk, _) in enumerate(dict.fromkeys(callers)):
        codes[pk] = f"{1000 + n:04d}"
    AuthCode.objects.bulk_create([AuthCode(code=code, subscriber_id=pk)
                                  for pk, code in codes.items()])
    Device.objects.filter(pk=site.device.pk).update(auth_code_position="after",
                                                    auth_code_length=4)
    control = PbxControl.objects.get(device=site.device)
    control.call_control = {"max_call_cost": "500.00", "max_call_seconds": 7200,
                            "min_balance": "-1000000.00", "require_auth_code": True,
                            "blocked_destinations": ["882", "979"]}
    control.save(update_fields=["call_control"])
    now = datetime.now(UTC)
    with fake.lock:
        fake.active_calls.clear()
        for n, (pk, dn) in enumerate(callers):
            since = (now - timedelta(seconds=rng.randint(5, 120))).strftime("%Y-%m-%dT%H:%M:%SZ")
            fake.active_calls[50_000 + n] = {
                "Id": 50_000 + n, "Caller": f"{dn} User {int(dn) - FIRST_DN}",
                "Callee": _external(rng) + codes[pk], "Status": "Talking",
                "EstablishedAt": since, "LastChangeStatus": since}
    print(f"3. the call control: {args.active} active calls of {len(codes)} subscribers, "
          f"every rule on (none broken); {args.polls} polls after the first")
    try:
        control_memory_clear()
        connector = connector_of(control)
        connector.active_calls()  # signed in: the token is not the poll's cost
        polls, queries, counts = [], [], None
        for n in range(args.polls + 1):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                counts = control_poll(control)
                polls.append(time.perf_counter() - began)
            queries.append(len(captured))
            if n == 0 and counts["dropped"] + counts["failed"] + counts["refused"]:
                print(f"   the first poll dropped calls: {counts}")
        first, polls = polls[0], polls[1:]
        reads, served = [], []
        for _ in range(args.polls):
            began = time.perf_counter()
            connector.active_calls()
            reads.append(time.perf_counter() - began)
            served.append(fake.requests(api="v20", method="GET",
                                        path="/xapi/v1/ActiveCalls")[-1].served)
        builds = []
        for _ in range(args.polls):
            began = time.perf_counter()
            CallBuilder(site.device)
            builds.append(time.perf_counter() - began)
    finally:
        Device.objects.filter(pk=site.device.pk).update(auth_code_position="",
                                                        auth_code_length=0)
        with fake.lock:
            fake.active_calls.clear()

    def ms(values):
        return (f"p50 {quantile(values, 0.5) * 1000:7.1f} ms, "
                f"max {max(values) * 1000:7.1f} ms")
    print(f"   first poll (every call new):  {first * 1000:7.1f} ms, {queries[0]} queries; "
          f"counts {counts}")
    print(f"   poll:                         {ms(polls)}; queries per poll "
          f"{min(queries[1:])}-{max(queries[1:])}")
    print(f"   of which, apart: active_calls() (HTTP read): {ms(reads)}")
    print(f"                    the fake's own part of it:  {ms(served)}")
    print(f"                    CallBuilder(device) ({len(site.subscribers):,} numbers): "
          f"{ms(builds)}")


# -- the run ---------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--crossings", type=int, default=200)
    parser.add_argument("--pieces", type=int, default=0,
                        help="Part 1's pieces; 0: pieces of TARISCOPE_TASK_BYTES, as a "
                             "collector cuts a delivery.")
    parser.add_argument("--low", type=int, default=10,
                        help="Part 1 (b): subscribers whose limit is set low (they close).")
    parser.add_argument("--active", type=int, default=500,
                        help="Part 3: calls in progress on the PBX.")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.0,
                        help="Part 2: seconds between two crossings (0: back to back).")
    parser.add_argument("--timeout", type=float, default=60,
                        help="Part 2: seconds to wait for the last PATCH.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parts", default="1,2,3", help="Which parts to run: 1, 2, 3.")
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if not parts <= {"1", "2", "3"}:
        parser.error("--parts: a comma-separated selection of 1, 2, 3")
    if args.crossings > args.subscribers:
        parser.error("--crossings cannot exceed --subscribers")
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database (migrated)")
    path = spec_path()
    if path is None:
        sys.exit("3CX's XAPI description is missing (tests/restrictions/data/); the fake 3CX "
                 "is held to it")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    print(f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, PostgreSQL {server}; {args.subscribers:,} subscribers; "
          f"broker: {'none' if settings.CELERY_TASK_ALWAYS_EAGER else 'yes'}")
    fake = TimedFake3CX(load_contract(str(path))).start()
    site = None
    try:
        site = site_make(args.subscribers, fake)
        if "1" in parts:
            with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
                part_collection(args, site, fake)
        if "2" in parts:
            part_latency(args, site, fake)
        if "3" in parts:
            part_control(args, site, fake)
    finally:
        fake.stop()
        if site is not None:
            shutil.rmtree(site.archive, ignore_errors=True)
    if fake.violations:
        print(f"the fake 3CX saw {len(fake.violations)} breaches of the XAPI description:")
        for violation in fake.violations[:50]:
            print(f"  {violation}")
        sys.exit(1)
    print("the fake 3CX: no request or answer broke the XAPI description")


if __name__ == "__main__":
    main()
