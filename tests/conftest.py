"""Shared fixtures. Tests needing an external program or server call `needs(...)`: on a
fresh machine that skips with a reason naming the package; under CI=true it fails."""
import os
from decimal import Decimal
from pathlib import Path

import pytest

from observers.pipeline import profile_ingest
from tariffs.models import TariffPrice
from tariffs.services import operator_rates_changed
from tests.factories import (
    DeviceFactory,
    NodeFactory,
    ObserverProfileFactory,
    OperatorFactory,
    PhoneNumberFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
    priced_code,
)
from tests.observers.threecx_cdr import cdr_file

TESTDATA = Path(__file__).resolve().parent / "data"


def _shared_testdata() -> Path | None:
    """The steering repository's `shared/testdata`: $TARISCOPE_SHARED_TESTDATA, or a
    `shared/testdata` folder beside this repository or beside one of its parents."""
    if os.environ.get("TARISCOPE_SHARED_TESTDATA"):
        return Path(os.environ["TARISCOPE_SHARED_TESTDATA"])
    for parent in Path(__file__).resolve().parents[1:]:
        candidate = parent / "shared" / "testdata"
        if candidate.is_dir():
            return candidate
    return None


SHARED_TESTDATA = _shared_testdata()


def needs(ok: bool, reason: str) -> None:
    """Skip when `ok` is false, or fail when CI=true (CI runs everything)."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


def shared_testdata(relative: str) -> Path:
    """A public sample from the steering repository's shared test data. Copyleft samples
    are read there, never copied into this repository. A clone made away from that
    repository (CI's clean clone in a temporary folder) has no such folder: then the test
    skips, even under CI=true, and every behaviour it checks is also checked on data
    written by the tests themselves."""
    path = (SHARED_TESTDATA or Path("shared/testdata")) / relative
    if not path.exists():
        pytest.skip(f"shared test data {relative} not found: set TARISCOPE_SHARED_TESTDATA")
    return path


def store_calls(*, device, records):
    """What the pipeline does with parsed records (observers.pipeline.piece_process): store
    them (billing.calls.calls_store), then rebuild the charges they change."""
    from billing.calls import calls_store
    from observers.pipeline import charges_update

    stored = calls_store(device=device, records=records)
    charges_update(stored=stored)
    return stored


class Site:
    """What most tests stand on: carrier Ukrtelecom (UAH) with its tariff plan Office; node
    Kyiv and its 3CX KyivPBX (Europe/Kyiv), whose dial plan has access code 9, national
    prefix 0, international prefix 00, country code 380, area code 44 and extensions of three
    digits, rating at that carrier in that plan: Kyiv 38044 at 0.50/min and the rest of
    Ukraine 380 at 1.00/min, both billed 60/60; department Sales, where Ivan Petrenko (the
    subscriber) holds 101 (the number) and Olena Koval (his colleague) 102; and the folder
    observer profile of the 3CX."""

    def __init__(self):
        self.operator = OperatorFactory(name="Ukrtelecom", currency="UAH")
        self.plan = TariffPlanFactory(name="Office")
        self.node = NodeFactory(name="Kyiv", country="UA")
        self.device = DeviceFactory(
            node=self.node, name="KyivPBX", type="3cx", timezone="Europe/Kyiv",
            access_code="9", national_prefix="0", international_prefix="00",
            country_code="380", area_code="44", extension_length=3,
            default_operator=self.operator, default_plan=self.plan)
        self.kyiv = self.priced_code(code="38044", price="0.50", name="Kyiv")
        self.ukraine = self.priced_code(code="380", price="1.00", name="Ukraine")
        self.sales = SubscriberGroupFactory(node=self.node, name="Sales")
        self.subscriber = SubscriberFactory(full_name="Ivan Petrenko", group=self.sales)
        self.number = PhoneNumberFactory(subscriber=self.subscriber, device=self.device, dn="101")
        self.colleague = SubscriberFactory(full_name="Olena Koval", group=self.sales)
        PhoneNumberFactory(subscriber=self.colleague, device=self.device, dn="102")
        self.profile = ObserverProfileFactory(device=self.device)

    def priced_code(self, **code):
        """A code of the site's carrier with its price in the site's plan
        (tests.factories.priced_code)."""
        return priced_code(operator=self.operator, plan=self.plan, **code)

    def set_price(self, phone_code, price: str) -> None:
        """The price per minute of `phone_code`'s tariff in the site's plan, as an edit of the
        carrier's rates."""
        TariffPrice.objects.filter(tariff=phone_code.tariff, plan=self.plan).update(
            price_per_minute=Decimal(price))
        operator_rates_changed(operator_ids=[self.operator.pk])

    def ingest(self, *lines: str, name: str = "cdr.csv"):
        """3CX CDR `lines` collected by the site's profile as one file `name`."""
        return profile_ingest(profile=self.profile, data=cdr_file(*lines), source_name=name)


@pytest.fixture
def site(db) -> Site:
    """The one site of the tests (Site); tests add what only they need to it."""
    return Site()


@pytest.fixture
def second_device(site):
    """A second 3CX of the site: LvivPBX on node Lviv (area code 32), at the same carrier and
    plan."""
    return DeviceFactory(node=NodeFactory(name="Lviv", country="UA"), name="LvivPBX",
                         area_code="32", default_operator=site.operator,
                         default_plan=site.plan)


@pytest.fixture(autouse=True)
def _data_dirs(settings, tmp_path):
    """Archives, logs and spools of each test go to its own temporary folder."""
    settings.DATA_DIR = tmp_path / "data"
    settings.ARCHIVE_DIR = settings.DATA_DIR / "archive"
    settings.LOG_DIR = settings.DATA_DIR / "logs"
    settings.SPOOL_DIR = settings.DATA_DIR / "spool"
    settings.SCRIPTS_DIR = settings.DATA_DIR / "scripts"


@pytest.fixture(autouse=True)
def plain_http(settings):
    """The tests talk plain HTTP; production would first redirect them to HTTPS."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _fresh_tariff_indexes():
    """Compiled tariff indexes are cached per process by (operator id, plan id, version);
    SQLite reuses ids after a test's rollback, so each test starts with an empty cache."""
    from tariffs.selectors import tariff_index_cache_clear

    tariff_index_cache_clear()
    yield
    tariff_index_cache_clear()


@pytest.fixture
def redis_worker(pipeline_worker):
    """A real Celery worker thread on a real Redis broker; skips (fails under CI) without."""
    from django.conf import settings

    needs(settings.CELERY_BROKER_URL.startswith("redis://"),
          "needs Redis (package redis-server): set CELERY_BROKER_URL=redis://...")
    return pipeline_worker


@pytest.fixture
def pipeline_worker():
    """A real Celery worker thread when a broker is configured (tasks go through it);
    nothing on the embedded default, where tasks run in-process anyway."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connection

    from tariscope.celery import app

    def close_connection(**_):
        # The worker thread's own connection must not outlive the test database.
        connection.close()

    task_postrun.connect(close_connection, weak=False)
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING") as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_connection)


@pytest.fixture
def postgres(db):
    """The test runs on PostgreSQL (as CI runs it), not on the embedded SQLite."""
    from django.db import connection

    needs(connection.vendor == "postgresql",
          "needs PostgreSQL (package postgresql): set DATABASE_URL=postgres://...")
    return connection


def wait_for(probe, *, timeout: float = 30.0, interval: float = 0.05):
    """Poll `probe` until it returns something truthy (work done by another thread or
    process, such as a Celery worker); fail with a clear message after `timeout`."""
    import time

    from django.db import OperationalError

    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except OperationalError:  # SQLite's shared test database, busy in another thread
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"nothing after {timeout} s waiting for {probe}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (just now)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def browser():
    """A headless Chromium driven through WebDriver (Debian's chromium and chromium-driver),
    for what only a browser does: the pages' scripts, file inputs, redirects it follows."""
    import shutil

    chromedriver = shutil.which("chromedriver")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                     "google-chrome"))), None)
    needs(bool(chromedriver and chromium),
          "needs a headless browser (packages chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # No sandbox: CI runs as root, where Chromium refuses to start with one.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1024"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def pg_connect():
    """A connection of its own to the test database (PostgreSQL), outside Django's: for
    tests of what two transactions at once do."""
    import psycopg2
    from django.db import connection

    settings = connection.settings_dict
    return psycopg2.connect(dbname=settings["NAME"], user=settings["USER"],
                            password=settings["PASSWORD"], host=settings["HOST"],
                            port=settings["PORT"] or 5432)


def pg_waiting_for_a_lock(pid: int) -> bool:
    """Whether the backend `pid` waits for a lock another transaction holds."""
    probe = pg_connect()
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
    finally:
        probe.close()
    return row is not None and row[0] == "Lock"


def pg_race(first: tuple[str, list], second: tuple[str, list]) -> str:
    """Two transactions at once on PostgreSQL: `first` (SQL, parameters) runs and stays
    uncommitted; `second` runs in another transaction, which must then wait for a lock of
    the first (else the test fails: nothing serialised them); the first commits. Returns
    what became of the second: "committed", or the SQLSTATE it failed with."""
    import threading

    import psycopg2

    holding, waiting = pg_connect(), pg_connect()
    outcome = []
    try:
        with holding.cursor() as cursor:
            cursor.execute(*first)
        waiting_pid = waiting.get_backend_pid()

        def run_second():
            try:
                with waiting.cursor() as cursor:
                    cursor.execute(*second)
                waiting.commit()
                outcome.append("committed")
            except psycopg2.Error as exc:
                outcome.append(exc.pgcode)

        thread = threading.Thread(target=run_second)
        thread.start()
        wait_for(lambda: pg_waiting_for_a_lock(waiting_pid), timeout=10)
        holding.commit()
        thread.join(30)
        assert not thread.is_alive(), "the second transaction never finished"
        return outcome[0]
    finally:
        holding.close()
        waiting.close()
