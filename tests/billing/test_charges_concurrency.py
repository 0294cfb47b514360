"""R7.1 with several Celery workers: deliveries stored side by side charge the same
subscriber's month, and the month's charge must hold every call of both (real PostgreSQL,
two connections in two threads)."""
import threading
from datetime import datetime
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction

from billing.models import Charge
from observers.parsers.base import CallRecord
from tariffs.choices import Direction
from tests.conftest import store_calls
from tests.factories import DeviceFactory, PhoneNumberFactory, SubscriberFactory, priced_code


def _record(key: str, day: int) -> CallRecord:
    # 61 s to a Kyiv number: billed as 120 s at 0.50/min = 1.00
    return CallRecord(source_key=key, start=datetime(2023, 5, day, 10), duration=61,
                      direction=Direction.OUTGOING, extension="101", dialled="90441234567")


@pytest.mark.postgres
def test_two_deliveries_committed_side_by_side_charge_every_call_once(postgres,
                                                                       transactional_db):
    # given a subscriber on 101 whose calls to Kyiv cost 1.00 each
    device = DeviceFactory()
    priced_code(operator=device.default_operator, plan=device.default_plan, code="38044",
                price="0.50", name="Kyiv")
    alice = SubscriberFactory()
    PhoneNumberFactory(subscriber=alice, device=device, dn="101")
    # when two workers each store a delivery of three calls of May in their own
    # transaction, both inserting before either has summed the month's charges
    both_inserted = threading.Barrier(2, timeout=30)
    errors = []

    def worker(prefix: str):
        try:
            with transaction.atomic():
                both_inserted.wait()
                store_calls(device=device, records=[_record(f"{prefix}{n}", 10 + n)
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
    charges = list(Charge.objects.filter(subscriber=alice).values_list("amount", "count"))
    assert charges == [(Decimal("6.00"), 720)]
