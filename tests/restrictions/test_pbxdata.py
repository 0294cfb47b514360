"""R8.8, R8.9: queue calls and call legs imported from the fake 3CX's reports over HTTP, each
stored once; legs linked to the stored call they belong to, and the call's cost shared
between them exactly.

The fake's call log (tests/restrictions/fake3cx.py) has, on 10 March 2025, call 9001: an
outside caller 0441234567 answered by 100 for 60 s, then transferred to 101 for 150 s;
on 11 March call 9002, 102 calling out unanswered; on 14 March call 9003. The site holds
101 (Ivan Petrenko) and 102 (Olena Koval) on KyivPBX (Europe/Kyiv, UTC+2 in March)."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Call
from restrictions.connectors import NotSupported, Period
from restrictions.models import CallLeg, PbxControl, QueueCall
from restrictions.pbxdata import call_legs_import, cost_shares, pbx_data_due, queue_calls_import
from tests.observers.threecx_cdr import INCOMING, cdr_line

MARCH_10_11 = Period(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 12, tzinfo=UTC))
MARCH_13 = Period(datetime(2025, 3, 13, tzinfo=UTC), datetime(2025, 3, 14, tzinfo=UTC))


@pytest.fixture
def v20_control(site, v20_config):
    return PbxControl.objects.create(device=site.device, connector=v20_config)


def legs(device, pbx_call_id=None):
    rows = CallLeg.objects.filter(device=device).order_by("pbx_call_id", "started_at", "leg_id")
    if pbx_call_id:
        rows = rows.filter(pbx_call_id=pbx_call_id)
    return rows


def transferred_call(site, fake3cx, *, talks=(10, 10, 10, 40), start="2025-03-13T10:00:00Z",
                     call_id=9101):
    """Call `call_id` in the fake's log: 101 calls 0441234567 (Kyiv, 0.50 a minute), and the
    call is handed on 102 -> 103 -> 104, talking `talks` seconds each (2 s of ringing first)."""
    parties = ["101", "102", "103", "104"][:len(talks)]
    fake3cx.add_call_log(call_id, start, [(p, "0441234567", t) for p, t in zip(parties, talks,
                                                                                strict=True)])


def store_cdr(site, *, start="2025/03/13 12:00:00", seconds=70, caller="101", historyid="Call 1",
              **fields):
    """The CDR's one record of the whole call: from `caller` to 0441234567 at `start` (Kyiv),
    `seconds` in all."""
    started = datetime.strptime(start, "%Y/%m/%d %H:%M:%S")
    answered, ended = started + timedelta(seconds=2), started + timedelta(seconds=2 + seconds)
    site.ingest(cdr_line(historyid=historyid, from_dn=caller, time_start=start,
                         time_answered=answered.strftime("%Y/%m/%d %H:%M:%S"),
                         time_end=ended.strftime("%Y/%m/%d %H:%M:%S"),
                         duration=f"00:{seconds // 60:02d}:{seconds % 60:02d}", **fields))
    return Call.objects.get(device=site.device, source_key__startswith=f"{historyid}|")


# -- the cost shared between legs (pure) ------------------------------------------------------
@pytest.mark.parametrize(
    ("cost", "seconds", "shares"),
    [
        # 1/7 each is 0.142857…: the three short legs get 0.1428, the longest the rest
        ("1.0000", [10, 10, 10, 40], ["0.1428", "0.1428", "0.1428", "0.5716"]),
        ("2.0000", [60, 150], ["0.5714", "1.4286"]),
        # equal legs: the first of the longest carries the remainder
        ("1.0000", [30, 30, 30], ["0.3334", "0.3333", "0.3333"]),
        ("0.0002", [1, 1, 1, 1], ["0.0002", "0.0000", "0.0000", "0.0000"]),
        # no talk at all: the first leg carries the cost
        ("0.5000", [0, 0], ["0.5000", "0.0000"]),
        ("3.1400", [200], ["3.1400"]),
        ("0.0000", [5, 7], ["0.0000", "0.0000"]),
    ],
)
def test_the_cost_is_shared_by_talk_time_with_the_remainder_on_the_longest_leg(cost, seconds, shares):
    assert cost_shares(Decimal(cost), seconds) == [Decimal(s) for s in shares]


@given(cost=st.decimals(min_value=0, max_value=100_000, places=4),
       seconds=st.lists(st.integers(min_value=0, max_value=86_400), min_size=1, max_size=12))
def test_shares_sum_to_the_cost_exactly_and_none_is_negative(cost, seconds):
    shares = cost_shares(cost, seconds)
    assert sum(shares) == cost
    assert all(share >= 0 and share == share.quantize(Decimal("0.0001")) for share in shares)
    total = sum(seconds)
    if total:  # each within the rounding of all the legs of its exact share
        for share, s in zip(shares, seconds, strict=True):
            assert abs(share - cost * s / total) < Decimal("0.0001") * len(seconds)


# -- R8.8: queue calls -------------------------------------------------------------------------
def test_queue_calls_are_imported_once(site, v20_control):
    # when the queue calls of 10-11 March are imported twice
    first = queue_calls_import(device=site.device, period=MARCH_10_11)
    again = queue_calls_import(device=site.device, period=MARCH_10_11)
    # then the two answered and the abandoned call are stored, once each
    assert first == {"read": 3, "created": 3, "updated": 0, "unchanged": 0, "skipped": 0}
    assert again == {"read": 3, "created": 0, "updated": 0, "unchanged": 3, "skipped": 0}
    rows = QueueCall.objects.filter(device=site.device).order_by("started_at")
    assert [(q.queue, q.queue_name, q.caller, q.answered, q.agent, q.wait_seconds, q.ring_seconds)
            for q in rows] == [
        ("800", "Sales queue", "0441234567", True, "100", 25, 5),
        ("801", "Support queue", "0501112233", True, "102", 20, 12),
        ("800", "Sales queue", "0447654321", False, "100", 42, None),
    ]
    assert rows[0].started_at == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    assert rows[0].answered_at == datetime(2025, 3, 10, 9, 0, 25, tzinfo=UTC)
    assert rows[2].pbx_call_id == "00000001A2B3C4D5"


def test_a_queue_call_changed_on_the_pbx_is_updated_not_doubled(site, v20_control, fake3cx):
    # given the queue calls imported
    queue_calls_import(device=site.device, period=MARCH_10_11)
    # when the PBX reports another ring time for one of them, and the period is imported again
    fake3cx.queue_answered[0]["RingTime"] = "PT7S"
    counts = queue_calls_import(device=site.device, period=MARCH_10_11)
    # then that one is updated
    assert (counts["updated"], counts["unchanged"]) == (1, 2)
    assert QueueCall.objects.filter(device=site.device).count() == 3
    assert QueueCall.objects.get(caller="0441234567").ring_seconds == 7


def test_a_v18_pbx_has_no_queue_data(site, v18_config):
    PbxControl.objects.create(device=site.device, connector=v18_config)
    with pytest.raises(NotSupported):
        queue_calls_import(device=site.device, period=MARCH_10_11)


# -- R8.9: call legs ---------------------------------------------------------------------------
def test_legs_are_imported_once_with_their_extension_and_its_subscriber(site, v20_control):
    # when the legs of 10-11 March are imported twice
    first = call_legs_import(device=site.device, period=MARCH_10_11)
    again = call_legs_import(device=site.device, period=MARCH_10_11)
    # then the three legs are stored once each, none linked (no call is stored)
    assert first == {"read": 3, "created": 3, "updated": 0, "unchanged": 0, "linked": 0,
                     "unlinked": 2}
    assert again == {"read": 3, "created": 0, "updated": 0, "unchanged": 3, "linked": 0,
                     "unlinked": 2}
    # and each has its internal party and who held it that day: the transfer's 101 is Ivan's,
    # 100 nobody's, the outgoing leg's party its source 102 (Olena's)
    assert [(leg.pbx_call_id, leg.source, leg.destination, leg.extension, leg.subscriber_id,
             leg.talk_seconds, leg.call_id, leg.cost) for leg in legs(site.device)] == [
        ("9001", "0441234567", "100", "100", None, 60, None, None),
        ("9001", "100", "101", "101", site.subscriber.pk, 150, None, None),
        ("9002", "102", "0501112233", "102", site.colleague.pk, 0, None, None),
    ]


def test_the_legs_of_a_transferred_call_share_its_cost_exactly(site, v20_control, fake3cx):
    # given a call of 70 s in the CDR (2 minutes to Kyiv: 1.00), which was four legs on the PBX
    call = store_cdr(site)
    assert (call.duration, call.cost) == (70, Decimal("1.0000"))
    transferred_call(site, fake3cx)
    # when its legs are imported
    counts = call_legs_import(device=site.device, period=MARCH_13)
    # then they are linked to the call, and share its cost by talk time, exactly
    assert (counts["created"], counts["linked"], counts["unlinked"]) == (4, 1, 0)
    rows = list(legs(site.device, "9101"))
    assert [(leg.extension, leg.talk_seconds, leg.call_id, leg.cost) for leg in rows] == [
        ("101", 10, call.pk, Decimal("0.1428")),
        ("102", 10, call.pk, Decimal("0.1428")),
        ("103", 10, call.pk, Decimal("0.1428")),
        ("104", 40, call.pk, Decimal("0.5716")),
    ]
    assert sum(leg.cost for leg in rows) == call.cost
    assert [leg.subscriber_id for leg in rows] == [site.subscriber.pk, site.colleague.pk, None, None]
    # and importing again changes nothing
    assert call_legs_import(device=site.device, period=MARCH_13)["unchanged"] == 4


def test_legs_read_before_their_call_are_linked_on_the_next_import(site, v20_control, fake3cx):
    # given the legs of a call imported before the CDR brought it
    transferred_call(site, fake3cx)
    first = call_legs_import(device=site.device, period=MARCH_13)
    assert (first["linked"], first["unlinked"]) == (0, 1)
    assert {(leg.call_id, leg.cost) for leg in legs(site.device, "9101")} == {(None, None)}
    # when the call is stored and the period imported again
    call = store_cdr(site)
    again = call_legs_import(device=site.device, period=MARCH_13)
    # then the legs are linked and share its cost
    assert again == {"read": 4, "created": 0, "updated": 4, "unchanged": 0, "linked": 1,
                     "unlinked": 0}
    assert [(leg.call_id, leg.cost) for leg in legs(site.device, "9101")] == [
        (call.pk, Decimal("0.1428"))] * 3 + [(call.pk, Decimal("0.5716"))]


def test_a_transferred_incoming_call_is_linked_by_its_outside_caller(site, v20_control):
    # given 9001 in the CDR: from +380441234567 (the PBX's log writes 0441234567) at 11:00 in
    # Kyiv, 210 s in all, ending at 101
    site.ingest(cdr_line(INCOMING, historyid="Call 7", from_no="+380441234567", to_dn="100",
                         final_dn="101", time_start="2025/03/10 11:00:00",
                         time_answered="2025/03/10 11:00:05", time_end="2025/03/10 11:03:35",
                         duration="00:03:30"))
    call = Call.objects.get(device=site.device)
    # when the legs are imported
    call_legs_import(device=site.device, period=MARCH_10_11)
    # then 9001's legs are that call's; 9002 has none (its call is not stored)
    assert {(leg.pbx_call_id, leg.call_id) for leg in legs(site.device)} == {
        ("9001", call.pk), ("9002", None)}
    # and an incoming call that cost nothing (no incoming tariff here) gives no shares
    assert call.cost is None
    assert [leg.cost for leg in legs(site.device)] == [None, None, None]


@pytest.mark.parametrize(
    ("what", "cdr"),
    [
        ("another caller", {"caller": "102"}),
        ("another start", {"start": "2025/03/13 12:00:30"}),
        ("another length", {"seconds": 90}),
    ],
)
def test_a_stored_call_that_differs_is_not_taken_for_the_pbx_call(site, v20_control, fake3cx,
                                                                   what, cdr):
    # given a stored call that is not call 9101 (another caller, start or length)
    call = store_cdr(site, **cdr)
    transferred_call(site, fake3cx)
    # when the legs are imported
    counts = call_legs_import(device=site.device, period=MARCH_13)
    # then they stay unlinked
    assert (counts["linked"], counts["unlinked"]) == (0, 1), what
    assert not CallLeg.objects.filter(call=call).exists()


def test_between_two_calls_that_fit_the_historyid_decides(site, v20_control, fake3cx):
    # given two stored calls alike in caller, start and length: "Call 9101" and another
    other = store_cdr(site, historyid="Call 55")
    same = store_cdr(site, historyid="Call 9101", callid="00000000c0ffee09_1")
    transferred_call(site, fake3cx)
    # when the legs of PBX call 9101 are imported
    call_legs_import(device=site.device, period=MARCH_13)
    # then they are the call whose historyid names 9101
    assert {leg.call_id for leg in legs(site.device, "9101")} == {same.pk}
    assert not CallLeg.objects.filter(call=other).exists()


def test_a_stored_call_is_the_call_of_one_pbx_call_only(site, v20_control, fake3cx):
    # given one stored call, and two PBX calls that would both fit it
    call = store_cdr(site)
    transferred_call(site, fake3cx, call_id=9101)
    transferred_call(site, fake3cx, call_id=9102, start="2025-03-13T10:00:01Z")
    # when the legs are imported
    counts = call_legs_import(device=site.device, period=MARCH_13)
    # then one of them is linked to it, the other stays unlinked
    assert (counts["linked"], counts["unlinked"]) == (1, 1)
    assert len({leg.pbx_call_id for leg in CallLeg.objects.filter(call=call)}) == 1


# -- periodically ------------------------------------------------------------------------------
def test_due_imports_read_the_last_hours_and_skip_connectors_without_reports(
        site, v20_control, second_device, v18_config):
    # given KyivPBX on the v20 fake and LvivPBX on a v18, which offers no reports
    PbxControl.objects.create(device=second_device, connector=v18_config)
    # when the due imports run at noon on 10 March (UTC)
    result = pbx_data_due(now=datetime(2025, 3, 10, 12, 0, tzinfo=UTC))
    # then KyivPBX's queue call and legs of that morning are imported; LvivPBX is skipped
    assert result["KyivPBX"]["queue_calls"]["created"] == 1
    assert result["KyivPBX"]["call_legs"]["created"] == 2
    assert result["LvivPBX"] == {"skipped": "3cx-v18 offers neither queue calls nor call legs"}
    assert QueueCall.objects.count() == 1 and CallLeg.objects.count() == 2
    assert PbxControl.objects.get(device=second_device).last_error == ""


def test_a_failing_due_import_is_recorded(site, v20_control, fake3cx):
    # given a PBX that answers 500 to its reports
    fake3cx.fail("status", status=500, path="/xapi/v1/Report")
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    # when the due imports run
    result = pbx_data_due(now=now)
    # then both imports' errors are reported and recorded on the device
    assert "HTTP 500" in result["KyivPBX"]["queue_calls"]["error"]
    assert "HTTP 500" in result["KyivPBX"]["call_legs"]["error"]
    v20_control.refresh_from_db()
    assert "HTTP 500" in v20_control.last_error and v20_control.last_error_at == now


def test_the_call_page_shows_the_legs_and_their_shares(site, v20_control, fake3cx, admin_client):
    # given the four legs of a transferred call imported
    call = store_cdr(site)
    transferred_call(site, fake3cx)
    call_legs_import(device=site.device, period=MARCH_13)
    # when its page is opened
    page = admin_client.get(f"/calls/{call.pk}/").content.decode()
    # then each leg is listed with its extension, its subscriber and its share of the cost
    assert "Legs (from the PBX's call data)" in page
    assert page.count("0.14") == 3 and "0.57" in page
    assert "Olena Koval" in page
