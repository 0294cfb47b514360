"""R4: `manage.py rate` explains a price as one JSON object."""
import json
from datetime import date, time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import Holiday
from tariffs.models import TariffPrice, TimeBand
from tariffs.services import operator_rates_changed
from tests.factories import PhoneNumberFactory, TariffPlanFactory

KEYS = ["dialled", "normalized", "direction", "call_type", "operator", "plan", "code", "tariff",
        "billable_seconds", "cost", "currency", "rule"]

pytestmark = pytest.mark.usefixtures("mobile")


def explain(**options) -> dict:
    out = StringIO()
    call_command("rate", stdout=out, **options)
    return json.loads(out.getvalue())


@pytest.fixture
def mobile(site):
    """Beside the site's codes, Vodafone UA 38050, of the tariff UA mobile at 1.50/min."""
    return site.priced_code(code="38050", name="Vodafone UA", tariff_name="UA mobile",
                            price="1.50", call_type=6)


def test_explains_a_dialled_number_with_every_key(site):
    # given a mobile tariff of 1.50/min in whole minutes
    # when a 61 s call to 0501234567 dialled through the access code is explained
    result = explain(device=site.device.name, number="90501234567", duration=61,
                     at="2024-06-17T10:00")
    # then: 61 s -> 120 s, 1.50 * 120 / 60 = 3.00
    assert list(result)[:len(KEYS)] == KEYS
    assert result == {
        "dialled": "90501234567", "normalized": "380501234567", "direction": "out",
        "call_type": 6, "operator": site.operator.name, "plan": site.plan.name,
        "code": "38050", "tariff": "UA mobile", "billable_seconds": 120, "cost": "3.00",
        "currency": "UAH",
        "rule": "code 38050 (Vodafone UA), tariff UA mobile; 61s billed as 120s (whole minutes "
                "60/60) at 1.5 UAH/min; = 3.00 UAH (rounded half up)",
    }


def test_unmatched_number_answers_null_cost_with_the_reason(site):
    # given no code for the UK
    # when a UK number is explained
    result = explain(device=site.device.name, number="900442071234567", duration=30,
                     at="2024-06-17T10:00")
    # then the same keys come back, cost null, and the rule says why
    assert (result["cost"], result["code"], result["call_type"]) == (None, None, 5)
    assert result["rule"] == (f"no code of {site.operator.name} valid on 2024-06-17 "
                              "matches 442071234567")


def test_subscriber_plan_and_holiday_band_are_applied(site):
    # given a subscriber on plan VIP (0.90/min), a holiday band (0.30/min) in that plan and
    # a custom holiday of the node on 2024-06-18
    vip = TariffPlanFactory(name="VIP")
    tariff = site.operator.tariffs.get(name="UA mobile")
    TariffPrice.objects.create(tariff=tariff, plan=vip, price_per_minute="0.90")
    band = TimeBand.objects.create(operator=site.operator, name="Holiday",
                                   holidays=True, start_time=time(0), end_time=time(0))
    TariffPrice.objects.create(tariff=tariff, plan=vip, band=band, price_per_minute="0.30")
    operator_rates_changed(operator_ids=[site.operator.pk])
    Holiday.objects.create(node=site.node, date=date(2024, 6, 18), name="Company day")
    number = PhoneNumberFactory(device=site.device, dn="120", subscriber__plan=vip)
    # when the same call is explained on a working day and on the holiday
    workday = explain(device=site.device.name, number="90501234567", duration=60,
                      at="2024-06-17T10:00", subscriber="120")
    holiday = explain(device=site.device.name, number="90501234567", duration=60,
                      at="2024-06-18T10:00", subscriber="120")
    # then VIP's base price applies on the working day (0.90) and the holiday band on the
    # holiday (0.30 * 60 / 60 = 0.30), and the rule names the band
    assert (workday["plan"], workday["cost"]) == ("VIP", "0.90")
    assert workday["subscriber"] == number.subscriber.full_name
    assert holiday["cost"] == "0.30"
    assert "holiday band Holiday" in holiday["rule"]


def test_time_with_an_offset_is_read_in_the_device_zone(site):
    # given a code valid only from 2024-06-18 (Kyiv's date)
    site.priced_code(code="3805012", tariff_name="New", price="9.00",
                     valid_from=date(2024, 6, 18))
    # when a call at 2024-06-17 21:30 UTC (00:30 on the 18th in Kyiv) is explained
    result = explain(device=site.device.name, number="90501234567", duration=60,
                     at="2024-06-17T21:30:00+00:00")
    # then the new code applies, as on the device's date
    assert (result["code"], result["cost"]) == ("3805012", "9.00")


@pytest.mark.parametrize(("options", "message"), [
    ({"device": "Nope"}, "no device named 'Nope'"),
    ({"at": "yesterday"}, "is not an ISO 8601 date and time"),
    ({"duration": -1}, "must not be negative"),
])
def test_bad_options_are_clear_errors(site, options, message):
    # given a wrong option; when explained; then a command error says what is wrong
    args = {"device": site.device.name, "number": "90501234567", "duration": 60,
            "at": "2024-06-17T10:00"} | options
    with pytest.raises(CommandError, match=message):
        explain(**args)
