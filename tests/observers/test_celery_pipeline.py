"""R12.1: with a broker, a delivery is archived by the collector and processed by a Celery
worker that reads the archived bytes (real Redis, real worker)."""

import pytest
from django.conf import settings as django_settings

from billing.models import Call
from observers.services import profile_deliver
from tests.conftest import needs
from tests.factories import ObserverProfileFactory, priced_code

LINE = (
    "Call 9001,abc_1,00:01:05,2024/06/17 10:00:00,2024/06/17 10:00:05,2024/06/17 10:01:10,"
    "TerminatedBySrc,Ext.101,0501234567,101,10000,90501234567,,0501234567,10000,default,,,"
    ",Chain: Ext.101;0501234567;,Extension,Line,Line,Ivan,0501234567,0501234567,\n"
)


@pytest.fixture
def redis_worker(pipeline_worker):
    needs(django_settings.CELERY_BROKER_URL.startswith("redis://"),
          "needs Redis (package redis-server): set CELERY_BROKER_URL=redis://...")


@pytest.mark.django_db(transaction=True)
def test_delivery_is_processed_by_a_worker_through_the_broker(redis_worker):
    # given a 3CX profile whose operator prices Ukrainian mobiles at 1.20/min
    profile = ObserverProfileFactory()
    device = profile.device
    priced_code(operator=device.default_operator, plan=device.default_plan, code="38050",
                price="1.20", call_type=6)
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
