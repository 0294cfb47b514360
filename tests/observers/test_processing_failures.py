"""R2.4: a processing task outlives a database outage, however long; a piece that fails for
good is visible (Observers page, /health, an event). Real PostgreSQL, Redis and worker."""
import pytest
from django.contrib.auth.models import User
from django.db import connection

from billing.models import Call
from observers.delivery import profile_deliver
from observers.tasks import process_chunk
from scripts.events import Event, event_subscribe
from tests.conftest import wait_for

LINE = (
    "Call 9001,abc_1,00:01:05,2024/06/17 10:00:00,2024/06/17 10:00:05,2024/06/17 10:01:10,"
    "TerminatedBySrc,Ext.101,0501234567,101,10000,90501234567,,0501234567,10000,default,,,"
    ",Chain: Ext.101;0501234567;,Extension,Line,Line,Ivan,0501234567,0501234567,\n"
)


@pytest.fixture
def events():
    """The events raised in this process (the worker thread runs here), as (event, params)."""
    seen = []
    unsubscribe = event_subscribe(lambda event, params: seen.append((event, params)))
    yield seen
    unsubscribe()


@pytest.fixture
def refusing_database(postgres):
    """A switch that makes the test database refuse every new connection (and cuts those of
    other sessions, the worker's among them), as a restarting or failing-over server does;
    connections are allowed again at the end, whatever happens."""
    import psycopg2

    name = connection.settings_dict["NAME"]
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    admin = psycopg2.connect(**params)
    admin.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()

    def refuse(refused: bool):
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refused else "true"}')
            if refused:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = %s AND pid <> %s", [name, own_pid])
    try:
        yield refuse
    finally:
        refuse(False)
        admin.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_piece_waits_out_a_database_outage_longer_than_three_retries(
        redis_worker, refusing_database, site, events):
    # given a database that refuses connections
    site.priced_code(code="38050", price="1.20", call_type=6)
    refusing_database(True)
    # when a delivery reaches the worker, and the outage outlasts Celery's default of three
    # retries (1 + 2 + 4 s): a fourth try fails too
    delivery = profile_deliver(profile=site.profile, data=LINE.encode(), source_name="cdr.log")
    wait_for(lambda: sum(event == Event.DATABASE_ERROR for event, _ in events) >= 4, timeout=30)
    assert not delivery.ready()
    refusing_database(False)
    # then the piece is tried again once the database is back, and its call is stored once
    assert delivery.get(timeout=60) == {"received": 1, "calls": 1, "duplicates": 0,
                                        "rejected": 0}
    assert Call.objects.count() == 1
    # and each try while it was away raised the database error event, naming the piece
    tried = [params for event, params in events if event == Event.DATABASE_ERROR]
    assert {(p["profile_id"], p["source"]) for p in tried} == {(site.profile.pk, "cdr.log")}
    assert [p["retry_in"] for p in tried[:4]] == [1, 2, 4, 8]
    # and nothing counts as failed
    site.profile.refresh_from_db()
    assert site.profile.failures_total == 0


@pytest.mark.django_db(transaction=True)
def test_a_piece_that_cannot_be_processed_fails_at_once_and_is_shown(
        redis_worker, site, events, client, tmp_path):
    # given a piece whose archived bytes are gone (an archive folder lost or cleaned by hand)
    gone = tmp_path / "PBX_2024-06.cdr"
    # when its task runs on a worker
    result = process_chunk.apply_async((site.profile.pk, str(gone), 0, 230, "cdr.log", 0))
    # then it fails at once: no retry could bring the bytes back
    with pytest.raises(FileNotFoundError):
        result.get(timeout=30)
    assert not [event for event, _ in events if event == Event.DATABASE_ERROR]
    # and the failure is counted on the profile, with what went wrong (the worker records
    # it just after it stores the task's result, and raises the event last)
    wait_for(lambda: any(event == Event.PROCESSING_FAILED for event, _ in events))
    site.profile.refresh_from_db()
    assert site.profile.failures_total == 1
    assert site.profile.last_failure.startswith("FileNotFoundError")
    assert site.profile.last_failure_at is not None
    # and raised as an event, and written to the profile's log
    assert [(p["profile"], p["source"]) for event, p in events
            if event == Event.PROCESSING_FAILED] == [(site.profile.name, "cdr.log")]
    assert "processing failed" in site.profile.log_path.read_text()
    # and /health (to a logged-in user) and the Observers page show it
    client.force_login(User.objects.create_user("operator", password="pw-operator-1"))
    health = client.get("/health").json()
    shown = next(o for o in health["observers"] if o["name"] == site.profile.name)
    assert shown["failures_total"] == 1 and shown["last_failure"].startswith("FileNotFoundError")
    page = client.get("/observers/").content.decode()
    assert 'title="' in page and "FileNotFoundError" in page and "reprocess" in page
