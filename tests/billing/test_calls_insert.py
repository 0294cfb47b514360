"""R2.4: the bulk insert of calls never fails on, nor doubles, a call stored meanwhile."""
from datetime import datetime

from billing.calls import CallBuilder, calls_insert
from billing.models import Call
from tests.factories import DeviceFactory, call_record


def _record(key: str):
    return call_record(key, datetime(2024, 6, 17, 10), "90441234567", 42)


def test_a_call_stored_by_a_concurrent_delivery_is_skipped_and_the_rest_inserted(db):
    # given a device, and one call already stored by another delivery
    device = DeviceFactory()
    builder = CallBuilder(device)
    first = calls_insert([builder.build(_record("k1"))])
    # when a batch holding that call and two new ones is inserted
    inserted = calls_insert([builder.build(_record(key)) for key in ("k0", "k1", "k2")])
    # then the new ones are stored, and the old one once
    assert sorted(Call.objects.values_list("source_key", flat=True)) == ["k0", "k1", "k2"]
    # and each insert said which ids it stored
    assert first == [Call.objects.get(source_key="k1").pk]
    assert sorted(inserted) == sorted(Call.objects.filter(source_key__in=["k0", "k2"])
                                      .values_list("pk", flat=True))
    stored = Call.objects.get(source_key="k2")
    assert (stored.duration, stored.device, stored.created_at is not None) == (42, device, True)
