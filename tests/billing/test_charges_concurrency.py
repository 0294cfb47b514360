"""R7.1 with several Celery workers: deliveries stored side by side charge the same
subscriber's month, and the month's charge must hold every call of both (real PostgreSQL,
two connections in two threads)."""
import threading
from datetime import datetime
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction

from billing.models import Charge
from tests.conftest import store_calls
from tests.factories import call_record


@pytest.mark.postgres
def test_two_deliveries_committed_side_by_side_charge_every_call_once(postgres,
                                                                       transactional_db, site):
    # given the site's subscriber on 101, whose 61 s calls to Kyiv are billed as 120 s at
    # 0.50/min: 1.00 each
    # when two workers each store a delivery of three calls of May in their own
    # transaction, both inserting before either has summed the month's charges
    both_inserted = threading.Barrier(2, timeout=30)
    errors = []

    def worker(prefix: str):
        try:
            with transaction.atomic():
                both_inserted.wait()
                store_calls(device=site.device, records=[
                    call_record(f"{prefix}{n}", datetime(2023, 5, 10 + n, 10), "90441234567", 61)
                    for n in range(3)])
        except Exception as exc:  # reported below, with the thread's name
            errors.append(f"{prefix}: {exc!r}")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then neither failed, and May has one charge of all six calls: 6 x 1.00, 6 x 120 s
    assert errors == []
    charges = list(Charge.objects.filter(subscriber=site.subscriber).values_list("amount", "count"))
    assert charges == [(Decimal("6.00"), 720)]
