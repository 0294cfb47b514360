"""R12.1: with a broker, a delivery is archived by the collector and processed by a Celery
worker that reads the archived bytes (real Redis, real worker)."""

import pytest

from billing.models import Call
from observers.delivery import profile_deliver
from tests.conftest import wait_for

LINE = (
    "Call 9001,abc_1,00:01:05,2024/06/17 10:00:00,2024/06/17 10:00:05,2024/06/17 10:01:10,"
    "TerminatedBySrc,Ext.101,0501234567,101,10000,90501234567,,0501234567,10000,default,,,"
    ",Chain: Ext.101;0501234567;,Extension,Line,Line,Ivan,0501234567,0501234567,\n"
)


@pytest.fixture
def profile(site):
    """The site's 3CX profile, its carrier pricing Ukrainian mobiles 38050 at 1.20/min."""
    site.priced_code(code="38050", price="1.20", call_type=6)
    return site.profile


@pytest.mark.django_db(transaction=True)
def test_delivery_is_processed_by_a_worker_through_the_broker(redis_worker, profile):
    # given a 3CX profile whose operator prices Ukrainian mobiles at 1.20/min
    # when the collector delivers a CDR line (archive, then enqueue on Redis)
    result = profile_deliver(profile=profile, data=LINE.encode(), source_name="cdr.log")
    # then a worker stores the rated call: 65 s billed as 120 s at 1.20/min = 2.40
    assert result.get(timeout=30) == {"received": 1, "calls": 1, "duplicates": 0, "rejected": 0}
    call = Call.objects.get()
    assert call.cost is not None and str(call.cost.normalize()) == "2.4"
    # and delivering the same bytes again (a collector retry) adds nothing
    again = profile_deliver(profile=profile, data=LINE.encode(), source_name="cdr.log")
    assert again.get(timeout=30)["duplicates"] == 1
    assert Call.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_large_delivery_goes_to_the_workers_as_pieces(redis_worker, profile, settings):
    # given pieces of about 1 kB (a line is some 230 bytes) and 40 outgoing calls, the 23rd line
    # of which is broken
    settings.TARISCOPE_TASK_BYTES = 1000
    lines = [LINE.replace("Call 9001,abc_1", f"Call {n},abc_{n}") for n in range(40)]
    lines[22] = "Call 22,abc_22,not a 3CX line\n"
    data = "".join(lines).encode()
    # when the collector delivers it: the archive holds it once, the workers get pieces
    delivery = profile_deliver(profile=profile, data=data, source_name="big.log")
    assert len(delivery.results) >= 8
    # then the whole delivery's summary adds up the pieces
    assert delivery.get(timeout=60) == {"received": 40, "calls": 39, "duplicates": 0,
                                        "rejected": 1}
    assert Call.objects.count() == 39
    # and the broken line is rejected with its line number in the file, not in its piece
    reject = profile.rejects.get()
    assert (reject.line_number, reject.source_name) == (23, "big.log")
    # and a repeat of the delivery stores nothing twice
    assert profile_deliver(profile=profile, data=data, source_name="big.log").get(
        timeout=60)["duplicates"] == 39


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_piece_whose_database_connection_is_cut_is_tried_again(postgres, redis_worker,
                                                                   profile):
    # given the call table locked by another session, so that the worker's insert waits
    import psycopg2
    from django.db import connection

    params = connection.get_connection_params()
    locker = psycopg2.connect(**params)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE billing_call IN SHARE ROW EXCLUSIVE MODE")
        # when a delivery reaches the worker, and its connection is cut while it waits
        delivery = profile_deliver(profile=profile, data=LINE.encode(), source_name="cdr.log")

        def waiting_worker():
            with locker.cursor() as cursor:
                # (a transaction sees one snapshot of the activity unless it asks anew)
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                               "current_database() AND wait_event_type = 'Lock' "
                               "AND pid <> pg_backend_pid()")
                return [pid for (pid,) in cursor.fetchall()]

        pids = wait_for(waiting_worker)
        with locker.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [pids])
        locker.rollback()  # the lock is released
    finally:
        locker.close()
    # then the piece is tried again on a new connection and its call is stored, once
    assert delivery.get(timeout=60) == {"received": 1, "calls": 1, "duplicates": 0,
                                        "rejected": 0}
    assert Call.objects.count() == 1
