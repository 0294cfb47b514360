"""R3.2: a record whose format gives no direction gets one from the device's dial plan."""
from datetime import datetime

import pytest

from billing.calls import CallBuilder
from tariffs.choices import Direction
from tests.factories import DeviceFactory, PhoneNumberFactory, RouteFactory, call_record


@pytest.fixture
def device(db):
    device = DeviceFactory(extension_length=4, access_code="")
    PhoneNumberFactory(device=device, dn="2001")
    RouteFactory(device=device, name="GW-OUT")
    RouteFactory(device=device, name="GW-IN")
    return device


def record(caller, called):
    """A CUCM-like record: the calling and the called number, no direction."""
    return call_record("k", datetime(2024, 6, 17, 10), called, 30, extension=caller,
                       direction=None, trunk="GW-OUT", origin_trunk="GW-IN")


@pytest.mark.parametrize(("caller", "called", "direction", "extension", "dialled", "trunk"), [
    ("2001", "0441234567", Direction.OUTGOING, "2001", "0441234567", "GW-OUT"),
    ("0441234567", "2001", Direction.INCOMING, "2001", "0441234567", "GW-IN"),
    ("2001", "2002", Direction.INTERNAL, "2001", "2002", ""),
    ("0441234567", "0509876543", Direction.OUTGOING, "0441234567", "0509876543", "GW-OUT"),
])
def test_direction_is_decided_by_which_ends_are_extensions(device, caller, called, direction,
                                                          extension, dialled, trunk):
    # given a CUCM-like record: calling and called numbers, no direction
    # when it is built into a call
    call = CallBuilder(device).build(record(caller, called))
    # then the direction, the subscriber's side and the route follow the dial plan
    assert (call.direction, call.extension, call.dialled) == (direction, extension, dialled)
    assert (call.route.name if call.route else "") == (trunk if direction != Direction.INTERNAL
                                                       else "")


def test_a_dialled_field_that_is_no_number_is_not_priced(site):
    # given the site's carrier pricing Kyiv (38044) at 0.50/min, and a record whose dialled
    # "number" is a spreadsheet formula whose digits, 10, would make a Kyiv number
    hostile = call_record("x", datetime(2024, 6, 17, 10), "=1+cmd|' /C calc'!A0", 60)
    # when it is built into a call
    call = CallBuilder(site.device).build(hostile)
    # then it is kept as dialled, not normalised, not priced, and says why
    assert (call.dialled, call.normalized, call.cost) == ("=1+cmd|' /C calc'!A0", "", None)
    assert call.call_type == 0  # unknown
    assert call.rating_note.startswith("not a telephone number")
