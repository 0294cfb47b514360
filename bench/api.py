"""Benchmark of the REST API (R10, issue 7): charges and payments requests at a steady rate
from a separate process, against PostgreSQL holding 1,000,000 calls and 10,000 subscribers.

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/api.py [--rate 100]
        [--seconds 30] [--calls 1000000] [--subscribers 10000]

The database of DATABASE_URL (migrated beforehand) is filled once: subscribers, calls
(COPY), the month's charges (charges_recalculate) and a payment per subscriber. Then the
script starts gunicorn (2 workers) on a free loopback port and a load process that sends
GET /api/accounts/charges, GET /api/accounts/payments and POST /api/accounts/payment
(1 in 10) at the given rate, each on its own keep-alive connection from a pool of threads,
and prints requests/s, errors, and p50/p99 latency. Goal of the issue: p99 < 50 ms at
100 requests/s.
"""
import argparse
import http.client
import io
import json
import multiprocessing
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")
os.environ.setdefault("API_JWT_KEY", "bench-only-api-key-" + "0" * 40)

MONTH = (date(2026, 10, 1), date(2026, 10, 31))
PERIOD = "fromdate=2026-10-01&todate=2026-10-31"


def fill(calls: int, subscribers: int) -> None:
    import django

    django.setup()
    from django.db import connection

    from api.models import API_METHODS, ApiUser
    from billing.accounts import charges_recalculate
    from billing.models import Call, Device, Node, Payment, Subscriber
    from tariffs.models import Operator, Tariff, TariffPlan

    if Subscriber.objects.filter(account_number="bench-1").exists():
        return
    node, _ = Node.objects.get_or_create(name="BenchNode")
    operator, _ = Operator.objects.get_or_create(name="BenchCarrier", defaults={"currency": "UAH"})
    plan, _ = TariffPlan.objects.get_or_create(name="BenchPlan")
    device, _ = Device.objects.get_or_create(name="BenchPBX", defaults={
        "node": node, "type": "3cx", "timezone": "Europe/Kyiv", "default_operator": operator,
        "default_plan": plan})
    tariffs = [Tariff.objects.get_or_create(operator=operator, name=name, defaults={
        "valid_from": date(2020, 1, 1), "account_description": description})[0]
        for name, description in (("Kyiv", "Local calls"), ("Mobile", "Mobile calls"),
                                  ("Poland", "International calls"))]
    Subscriber.objects.bulk_create(
        Subscriber(full_name=f"Bench subscriber {n}", account_number=f"bench-{n}", plan=plan)
        for n in range(1, subscribers + 1))
    ids = list(Subscriber.objects.filter(account_number__startswith="bench-")
               .values_list("id", flat=True))
    rng = random.Random(1)
    columns = ("device_id", "source_key", "start", "duration", "answered", "direction",
               "call_type", "extension", "subscriber_id", "dialled", "normalized", "trunk",
               "billable_seconds", "cost", "currency", "rating_note", "auth_code", "created_at",
               "code", "tariff_id", "operator_id", "plan_id")
    buffer = io.StringIO()
    now = datetime.now(UTC).isoformat()
    for n in range(calls):
        start = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 2591999))
        tariff = rng.choice(tariffs)
        seconds = rng.randint(1, 600)
        buffer.write("\t".join(str(v) for v in (
            device.pk, f"bench-{n}", start.isoformat(), seconds, "t", 0, 3, "101",
            rng.choice(ids), "90441234567", "380441234567", "10000", seconds,
            Decimal(seconds) / 100, "UAH", "bench", "", now, "38044", tariff.pk, operator.pk,
            plan.pk)) + "\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY billing_call ({', '.join(columns)}) FROM STDIN", buffer)
    charges_recalculate(period_start=MONTH[0], period_end=MONTH[1])
    Payment.objects.bulk_create(Payment(subscriber_id=i, date=date(2026, 10, 15),
                                        amount=Decimal("100.00"), type=3, bank="Bench")
                                for i in ids)
    user = ApiUser(name="bench")
    user.set_password("bench-password-1")
    user.set_rights(API_METHODS)
    user.save()
    print(f"filled: {Call.objects.count():,} calls, {len(ids):,} subscribers")


def load(port: int, rate: float, seconds: float, ids: list[int], out) -> None:
    """The load process: fixed-rate requests, latencies in seconds sent back through `out`."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("POST", "/api/auth", json.dumps(
        {"username": "bench", "password": "bench-password-1"}),
        {"Content-Type": "application/json"})
    token = json.loads(connection.getresponse().read())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    latencies, errors, lock = [], [0], threading.Lock()
    local = threading.local()
    rng = random.Random(2)

    def one(n: int):
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port)
        local.conn = conn
        subscriber = rng.choice(ids)
        if n % 10 == 9:
            method, path = "POST", (f"/api/accounts/payment?id={subscriber}&paymentday="
                                    f"2026-10-20&payment=10.00&paymenttype=1&bank=Bench")
        elif n % 2:
            method, path = "GET", f"/api/accounts/payments?id={subscriber}&{PERIOD}"
        else:
            method, path = "GET", f"/api/accounts/charges?id={subscriber}&{PERIOD}"
        began = time.perf_counter()
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status < 400
        except (OSError, http.client.HTTPException):
            local.conn = None
            ok = False
        took = time.perf_counter() - began
        with lock:
            latencies.append(took)
            errors[0] += 0 if ok else 1

    threads = []
    began = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one, args=(n,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    out.send((latencies, errors[0], time.perf_counter() - began))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=10_000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (migrated)")
    fill(args.calls, args.subscribers)
    from billing.models import Subscriber

    ids = list(Subscriber.objects.filter(account_number__startswith="bench-")
               .values_list("id", flat=True))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tariscope.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--log-level", "warning"], cwd=ROOT)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                time.sleep(0.2)
        receive, send = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(target=load, args=(port, args.rate, args.seconds,
                                                             ids, send))
        process.start()
        latencies, errors, elapsed = receive.recv()
        process.join()
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; gunicorn 2 workers")
    print(f"{len(latencies):,} requests in {elapsed:.1f} s = {len(latencies) / elapsed:.0f} req/s; "
          f"errors {errors}; p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"goal p99 < 50 ms at {args.rate:.0f} req/s: {'met' if p(0.99) < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
