"""R4.2: every rule of rate() as a worked example, and the laws that hold for all calls.

The arithmetic of each example is written beside it. Prices are per minute, so a price of
1.20 is 0.02 a second, which keeps the sums easy to follow.
"""
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import Call
from observers.pipeline import profile_ingest
from tariffs.choices import Direction
from tariffs.rating import Band, RateEntry, TariffIndex, billable_seconds, quantize_money, rate
from tests.factories import DeviceFactory, ObserverProfileFactory, priced_code
from tests.observers.threecx_cdr import cdr_file, cdr_line

OUT = Direction.OUTGOING
NUMBER = "380441234567"
# 2024-06-17 is a Monday; the week runs to Sunday 2024-06-23.
MON, TUE, FRI, SAT, SUN = (date(2024, 6, d) for d in (17, 18, 21, 22, 23))

PEAK = Band(1, "Peak", frozenset({1, 2, 3, 4, 5}), time(8), time(20))
# Runs past midnight: the part after midnight belongs to the weekday it started on.
OFF_PEAK = Band(2, "Off-peak", frozenset({1, 2, 3, 4, 5}), time(20), time(8))
WEEKEND = Band(3, "Weekend", frozenset({6, 7}), time(0), time(0))
HOLIDAYS = Band(4, "Holidays", frozenset(range(1, 8)), time(0), time(0), holidays=True)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second))


def entry(price: str | None = "1.20", *, code: str = "38044", first: int = 60, step: int = 60,
          fee: str = "0", currency: str = "UAH", free: int = 0, minimum: int = 0,
          band_prices: tuple = (), valid_from: date = date(2020, 1, 1),
          valid_to: date | None = None, direction: int = OUT, name: str = "Kyiv") -> RateEntry:
    return RateEntry(
        code=code, code_name=name, tariff_id=1, tariff_name=name, direction=direction,
        call_type=None, valid_from=valid_from, valid_to=valid_to,
        price_per_minute=None if price is None else Decimal(price),
        connection_fee=Decimal(fee), first_interval=first, next_interval=step,
        currency=currency, free_seconds=free, min_seconds=minimum,
        band_prices=tuple((band_id, Decimal(p), Decimal(f)) for band_id, p, f in band_prices),
    )


def rate_one(rate_entry: RateEntry, *, duration: int, start: date | datetime = MON,
             bands: tuple[Band, ...] = (), **kwargs):
    index = TariffIndex([rate_entry], operator="Kyivstar", plan="Basic", bands=bands)
    return rate(index, number=NUMBER, at=start, direction=OUT, duration=duration, **kwargs)


# --- increments ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("first", "step", "duration", "seconds", "cost"),
    [
        # whole minutes 60/60
        (60, 60, 1, 60, "1.20"),  # 1 s -> one minute: 1.20 * 60 / 60 = 1.20
        (60, 60, 59, 60, "1.20"),  # 59 s -> one minute: 1.20
        (60, 60, 60, 60, "1.20"),  # exactly one minute: 1.20
        (60, 60, 61, 120, "2.40"),  # 61 s -> two minutes: 1.20 * 120 / 60 = 2.40
        (60, 60, 3600, 3600, "72.00"),  # one hour: 1.20 * 60 = 72.00
        # per second 1/1
        (1, 1, 1, 1, "0.02"),  # 1.20 * 1 / 60 = 0.02
        (1, 1, 61, 61, "1.22"),  # 1.20 * 61 / 60 = 1.22
        # 30/6: the first 30 s whole, then 6 s steps
        (30, 6, 1, 30, "0.60"),  # 1 s -> 30 s: 1.20 * 30 / 60 = 0.60
        (30, 6, 31, 36, "0.72"),  # 31 s = 30 + 1 -> 30 + 6 = 36 s: 1.20 * 36 / 60 = 0.72
        (30, 6, 37, 42, "0.84"),  # 37 s = 30 + 7 -> 30 + 12 = 42 s: 0.84
        # 60/1: the first minute whole, then per second
        (60, 1, 30, 60, "1.20"),  # 30 s -> 60 s: 1.20
        (60, 1, 61, 61, "1.22"),  # 61 s -> 61 s: 1.20 * 61 / 60 = 1.22
        # a first interval longer than the call: the whole first interval is billed
        (120, 60, 45, 120, "2.40"),  # 45 s -> 120 s: 1.20 * 120 / 60 = 2.40
        (120, 60, 121, 180, "3.60"),  # 121 s = 120 + 1 -> 120 + 60 = 180 s: 3.60
    ],
)
def test_call_is_billed_in_first_then_next_increments(first, step, duration, seconds, cost):
    # given a code at 1.20/min with first/next increments
    rate_entry = entry(first=first, step=step)
    # when a call of `duration` seconds is rated
    decision = rate_one(rate_entry, duration=duration)
    # then the billed time is rounded up per increment and priced exactly
    assert decision.billable_seconds == seconds
    assert decision.cost == Decimal(cost)
    assert billable_seconds(duration, first, step) == seconds


# --- connection fee ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("duration", "answered", "cost", "fee"),
    [
        (10, None, "1.45", "0.25"),  # answered by default: 10 s -> 60 s: 1.20 + 0.25 = 1.45
        (10, True, "1.45", "0.25"),
        (0, True, "0.25", "0.25"),  # answered, no talk time: the fee alone, 0.25
        (0, None, "0.00", "0"),  # 0 s defaults to unanswered: nothing
        (0, False, "0.00", "0"),
        # unanswered with a duration (ringing time some PBXs report): the time, no fee
        (10, False, "1.20", "0"),  # 1.20 * 60 / 60 = 1.20, no fee
    ],
)
def test_connection_fee_applies_only_to_answered_calls(duration, answered, cost, fee):
    # given a code at 1.20/min, 60/60, with a connection fee of 0.25
    rate_entry = entry(fee="0.25")
    # when a call is rated answered or not
    decision = rate_one(rate_entry, duration=duration, answered=answered)
    # then the fee is charged exactly when the call was answered
    assert decision.cost == Decimal(cost)
    assert decision.fee == Decimal(fee)


# --- free time and minimum ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("duration", "seconds", "cost"),
    [
        (1, 0, "0.00"),  # within the 5 s free time: nothing, not even the fee
        (5, 0, "0.00"),  # the free time includes its last second
        (6, 60, "1.45"),  # past it, the whole call is billed: 60 s * 0.02 + 0.25 = 1.45
        (61, 120, "2.65"),  # 120 s * 0.02 + 0.25 = 2.65
    ],
)
def test_calls_within_the_free_time_cost_nothing(duration, seconds, cost):
    # given a code at 1.20/min, 60/60, fee 0.25, with 5 s free time
    rate_entry = entry(fee="0.25", free=5)
    # when an answered call is rated
    decision = rate_one(rate_entry, duration=duration)
    # then a call within the free time is free, fee included; a longer one is billed whole
    assert decision.billable_seconds == seconds
    assert decision.cost == Decimal(cost)


def test_free_time_covers_the_fee_of_an_answered_call_of_no_seconds_too():
    # given a code with a connection fee of 0.25 and 5 s free time, and one without free time
    with_grace = entry(fee="0.25", free=5)
    without = entry(fee="0.25")
    # when answered calls of 0 s and 1 s are rated
    # then under free time both are free (a 0 s call never costs more than a 1 s one), and
    # without it the 0 s answered call pays the fee (docs/rating.md)
    assert rate_one(with_grace, duration=0, answered=True).cost == Decimal("0.00")
    assert rate_one(with_grace, duration=1, answered=True).cost == Decimal("0.00")
    assert rate_one(without, duration=0, answered=True).cost == Decimal("0.25")


@pytest.mark.parametrize(
    ("first", "step", "duration", "seconds", "cost"),
    [
        (1, 1, 10, 120, "2.40"),  # 10 s -> the 120 s minimum: 120 * 0.02 = 2.40
        (1, 1, 120, 120, "2.40"),
        (1, 1, 121, 121, "2.42"),  # above the minimum, per second: 121 * 0.02 = 2.42
        (60, 60, 61, 120, "2.40"),  # 61 s -> 120 s by increments, which is also the minimum
        (60, 60, 121, 180, "3.60"),  # 121 s -> 180 s: 3.60
        (30, 6, 31, 120, "2.40"),  # 31 s -> 36 s by increments, raised to 120 s
    ],
)
def test_billed_call_is_billed_at_least_the_minimum(first, step, duration, seconds, cost):
    # given a code at 1.20/min with a minimum of 120 s
    rate_entry = entry(first=first, step=step, minimum=120)
    # when a call is rated
    decision = rate_one(rate_entry, duration=duration)
    # then the billed time is the larger of the increments and the minimum
    assert decision.billable_seconds == seconds
    assert decision.cost == Decimal(cost)


@pytest.mark.parametrize(
    ("duration", "seconds", "cost"),
    [
        (3, 0, "0.00"),  # free time wins over the minimum
        (6, 60, "1.20"),  # billed, raised to the 60 s minimum: 60 * 0.02 = 1.20
    ],
)
def test_free_time_is_checked_before_the_minimum(duration, seconds, cost):
    # given 1/1 increments, 5 s free time and a 60 s minimum
    rate_entry = entry(first=1, step=1, free=5, minimum=60)
    # when a call is rated
    decision = rate_one(rate_entry, duration=duration)
    # then a call within the free time is free, and a billed one pays the minimum
    assert (decision.billable_seconds, decision.cost) == (seconds, Decimal(cost))


# --- time bands -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("band", "moment", "inside"),
    [
        (PEAK, at(MON, 8), True),  # the start hour is inside
        (PEAK, at(MON, 19, 59, 59), True),
        (PEAK, at(MON, 20), False),  # the end hour is not
        (PEAK, at(MON, 7, 59, 59), False),
        (PEAK, at(SAT, 10), False),  # not a weekday of the band
        (OFF_PEAK, at(MON, 20), True),
        (OFF_PEAK, at(FRI, 23), True),
        (OFF_PEAK, at(SAT, 3), True),  # Friday night, after midnight
        (OFF_PEAK, at(TUE, 3), True),  # Monday night
        (OFF_PEAK, at(MON, 3), False),  # Sunday night: Sunday is not in 12345
        (OFF_PEAK, at(MON, 8), False),  # the end is exclusive
        (OFF_PEAK, at(SAT, 20), False),  # Saturday evening: Saturday is not in 12345
        (OFF_PEAK, at(MON, 12), False),
        (WEEKEND, at(SAT, 0), True),  # 00:00-00:00 is the whole day
        (WEEKEND, at(SUN, 23, 59, 59), True),
        (WEEKEND, at(MON, 0), False),
        (WEEKEND, at(FRI, 23, 59, 59), False),
    ],
)
def test_band_contains_its_weekdays_and_hours(band, moment, inside):
    # given a band; when asked about a moment; then the part after midnight of a band that
    # runs past midnight belongs to the day it started on
    assert band.contains(moment) is inside


BANDS = (PEAK, OFF_PEAK, WEEKEND)
# Base 1.20; peak 1.80; off-peak 0.60 with its own fee; no own price at weekends.
BANDED = entry(band_prices=((PEAK.id, "1.80", "0"), (OFF_PEAK.id, "0.60", "0.10")))


@pytest.mark.parametrize(
    ("start", "duration", "cost", "band_name"),
    [
        (at(MON, 10), 60, "1.80", "Peak"),  # 1.80 * 60 / 60 = 1.80
        (at(MON, 22), 60, "0.70", "Off-peak"),  # 0.60 * 60 / 60 + 0.10 = 0.70
        (at(FRI, 23), 60, "0.70", "Off-peak"),
        (at(SAT, 3), 60, "0.70", "Off-peak"),  # Friday's night, before the weekend band
        (at(MON, 3), 60, "1.20", None),  # Sunday's night: no band, base 1.20
        (at(SAT, 12), 60, "1.20", None),  # the weekend band has no own price: base 1.20
        # the band at the start prices the whole call: 19:59 + 10 min is peak throughout,
        # 1.80 * 600 / 60 = 18.00 (not 1 min peak + 9 min off-peak)
        (at(MON, 19, 59), 600, "18.00", "Peak"),
        # and the other way: 07:55 + 10 min stays off-peak, 0.60 * 10 + 0.10 = 6.10
        (at(TUE, 7, 55), 600, "6.10", "Off-peak"),
    ],
)
def test_band_in_force_at_the_start_prices_the_call(start, duration, cost, band_name):
    # given peak, off-peak and weekend bands, and a tariff priced in peak and off-peak
    # when a call starting at `start` is rated
    decision = rate_one(BANDED, duration=duration, start=start, bands=BANDS)
    # then the band at the start sets the price, or the base price where it has none
    assert decision.cost == Decimal(cost)
    assert (decision.band.name if decision.band else None) == band_name


def test_first_matching_band_wins_where_bands_overlap():
    # given off-peak listed before weekend, both containing Saturday 03:00
    index = TariffIndex([BANDED], bands=(OFF_PEAK, WEEKEND))
    # when the band at that moment is asked for
    band = index.band_at(at(SAT, 3))
    # then the first in order (priority) is used
    assert band == OFF_PEAK


@pytest.mark.parametrize(
    ("start", "cost"),
    [
        (at(MON, 10), "1.80"),  # peak: 1.80 * 60 / 60
        (at(SAT, 10), None),  # weekend: no band price, no base price
        (at(MON, 22), None),  # off-peak: no price for this tariff
    ],
)
def test_tariff_with_band_prices_only_has_no_cost_outside_its_bands(start, cost):
    # given a tariff priced only in the peak band (no base price)
    rate_entry = entry(None, band_prices=((PEAK.id, "1.80", "0"),))
    # when a call is rated in and out of the band
    decision = rate_one(rate_entry, duration=60, start=start, bands=BANDS)
    # then outside it there is no cost (not zero), and the reason says why
    if cost is None:
        assert decision.cost is None
        assert decision.entry is not None
        assert decision.billable_seconds == 0
        assert decision.rule == ("tariff Kyiv has no base price in plan Basic and no price for "
                                 "the time of the call")
    else:
        assert decision.cost == Decimal(cost)


def test_call_rated_on_a_date_is_banded_at_its_midnight():
    # given the bands; when a call is rated with a date (no time): Tuesday 00:00 is Monday's
    # off-peak night, 0.60 * 60 / 60 + 0.10 = 0.70
    decision = rate_one(BANDED, duration=60, start=TUE, bands=BANDS)
    # then it is priced as a call at 00:00 of that day
    assert decision.band == OFF_PEAK
    assert decision.cost == Decimal("0.70")


# --- holidays ---------------------------------------------------------------------------

HOLIDAY_PRICED = entry(band_prices=((PEAK.id, "1.80", "0"), (HOLIDAYS.id, "0.30", "0")))


@pytest.mark.parametrize(
    ("holiday", "cost", "band"),
    [
        (True, "0.30", HOLIDAYS),  # 0.30 * 60 / 60, whatever the weekday and hour
        (False, "1.80", PEAK),  # the same Monday 10:00 as a working day: peak
    ],
)
def test_holiday_selects_the_holiday_band(holiday, cost, band):
    # given peak, off-peak and a holiday band; a tariff priced in peak and on holidays
    # when a Monday 10:00 call is rated on a holiday or not
    decision = rate_one(HOLIDAY_PRICED, duration=60, start=at(MON, 10),
                        bands=(PEAK, OFF_PEAK, HOLIDAYS), holiday=holiday)
    # then a holiday is priced in the holiday band
    assert decision.cost == Decimal(cost)
    assert decision.band == band


def test_holiday_without_any_band_uses_the_base_price_and_says_so():
    # given an operator without bands
    # when a call on a holiday is rated: 1.20 * 60 / 60 = 1.20
    decision = rate_one(entry(), duration=60, start=at(MON, 10), holiday=True)
    # then the base price applies and the rule says there was no holiday band
    assert decision.cost == Decimal("1.20")
    assert decision.band is None
    assert "holiday (no band: base price)" in decision.rule


def test_holiday_band_without_a_price_for_the_tariff_uses_the_base_price():
    # given a holiday band, and a tariff with no price in it
    rate_entry = entry(band_prices=((PEAK.id, "1.80", "0"),))
    # when a call on a holiday is rated: 1.20 * 60 / 60 = 1.20
    decision = rate_one(rate_entry, duration=60, start=at(MON, 10),
                        bands=(PEAK, HOLIDAYS), holiday=True)
    # then the base price applies, not the peak price of that hour
    assert decision.cost == Decimal("1.20")
    assert decision.band is None


def test_rule_never_calls_an_ordinary_band_a_holiday_band():
    # given peak and off-peak bands but no holiday band; a tariff priced 1.80 in peak
    rate_entry = entry(band_prices=((PEAK.id, "1.80", "0"),))
    # when a Monday 10:00 call on a holiday is rated
    decision = rate_one(rate_entry, duration=60, start=at(MON, 10), bands=(PEAK, OFF_PEAK),
                        holiday=True)
    # then the rule does not present Peak as the holiday band, and says why Peak applied
    assert "holiday band Peak" not in decision.rule
    assert "time band Peak (a holiday, but no holiday band)" in decision.rule


def test_holiday_without_a_holiday_band_is_priced_like_any_other_day():
    # given peak and off-peak bands but no holiday band; a tariff priced 1.80 in peak
    # (docs/rating.md: on a holiday the holiday band applies, otherwise the ordinary bands)
    rate_entry = entry(band_prices=((PEAK.id, "1.80", "0"),))
    # when a Monday 10:00 call on a holiday is rated
    decision = rate_one(rate_entry, duration=60, start=at(MON, 10), bands=(PEAK, OFF_PEAK),
                        holiday=True)
    # then the band in force at that hour prices it: 1.80 * 60 / 60 = 1.80
    assert decision.cost == Decimal("1.80")


# --- rounding ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "UAH", "0.13"),  # exactly half: up
        ("0.124999", "UAH", "0.12"),  # just under half: down
        ("0.115", "UAH", "0.12"),  # half up, where half even would give 0.12 too
        ("0.105", "UAH", "0.11"),  # half up; half even would give 0.10
        ("7.5", "JPY", "8"),  # no minor unit
        ("0.4999", "JPY", "0"),
        ("0.0005", "KWD", "0.001"),  # three places
        ("0.00049", "KWD", "0.000"),
    ],
)
def test_money_is_rounded_half_up_at_the_minor_unit(amount, currency, expected):
    # given an exact amount; when quantised; then half up at the currency's minor unit
    assert str(quantize_money(Decimal(amount), currency)) == expected


@pytest.mark.parametrize(
    ("price", "fee", "currency", "duration", "cost"),
    [
        # 0.0333 * 61 / 60 = 0.033855 -> 0.03
        ("0.0333", "0", "UAH", 61, "0.03"),
        # 0.0333 * 61 / 60 + 0.004 = 0.037855 -> 0.04; rounding the parts first would give
        # 0.03 + 0.00 = 0.03
        ("0.0333", "0.004", "UAH", 61, "0.04"),
        # 0.015 * 120 / 60 = 0.03; rounding each minute would give 0.02 + 0.02 = 0.04
        ("0.015", "0", "UAH", 120, "0.03"),
        # 0.30 * 25 / 60 = 0.125 -> 0.13 (exactly half: up)
        ("0.30", "0", "UAH", 25, "0.13"),
        # JPY: 7 * 30 / 60 = 3.5 -> 4
        ("7", "0", "JPY", 30, "4"),
        # KWD: 0.1234 * 61 / 60 = 0.125456... -> 0.125
        ("0.1234", "0", "KWD", 61, "0.125"),
        # KWD: 0.0004 * 60 / 60 + 0.0004 = 0.0008 -> 0.001 (parts rounded: 0.000 + 0.000)
        ("0.0004", "0.0004", "KWD", 60, "0.001"),
    ],
)
def test_cost_is_rounded_once_at_the_end(price, fee, currency, duration, cost):
    # given a per-second code
    rate_entry = entry(price, fee=fee, first=1, step=1, currency=currency)
    # when a call is rated
    decision = rate_one(rate_entry, duration=duration)
    # then the exact amount, fee included, is rounded once, half up, to the minor unit
    assert str(decision.cost) == cost


# --- the explanation --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("rate_entry", "kwargs", "mentions"),
    [
        (BANDED, {"start": at(MON, 10), "bands": BANDS, "duration": 60}, "time band Peak"),
        (HOLIDAY_PRICED, {"start": at(MON, 10), "bands": (PEAK, HOLIDAYS), "duration": 60,
                          "holiday": True}, "holiday band Holidays"),
        (entry(), {"duration": 60, "holiday": True}, "holiday (no band: base price)"),
        (entry(free=5), {"duration": 3}, "3s is within the 5s free time: no charge"),
        (entry(first=1, step=1, minimum=120), {"duration": 10},
         "10s billed as 120s (per second 1/1, minimum 120s)"),
        (entry(first=30, step=6), {"duration": 31}, "31s billed as 36s (increments 30/6)"),
        (entry(fee="0.25"), {"duration": 61}, "connection fee 0.25; = 2.65 UAH"),
    ],
)
def test_rule_names_what_applied(rate_entry, kwargs, mentions):
    # given a call where a band, a holiday, the free time or the minimum applied
    # when it is rated
    decision = rate_one(rate_entry, **kwargs)
    # then the explanation says so
    assert mentions in decision.rule


@pytest.mark.parametrize(
    ("rate_entry", "kwargs", "absent"),
    [
        (BANDED, {"start": at(SAT, 12), "bands": BANDS, "duration": 60}, "band"),
        (entry(), {"duration": 60}, "holiday"),
        (entry(free=5), {"duration": 6}, "free time"),
        (entry(first=1, step=1, minimum=120), {"duration": 121}, "minimum"),
    ],
)
def test_rule_does_not_mention_what_did_not_apply(rate_entry, kwargs, absent):
    # given a call where no band, holiday, free time or minimum applied
    # when it is rated; then the explanation does not claim it did
    assert absent not in rate_one(rate_entry, **kwargs).rule


# --- laws -------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
increments = st.sampled_from([(60, 60), (1, 1), (30, 6), (60, 1), (30, 30), (120, 60)])


@st.composite
def banded_entries(draw):
    """Any tariff: increments, fee, free time, minimum, and maybe band prices."""
    first, step = draw(increments)
    band_prices = draw(st.lists(
        st.tuples(st.sampled_from([PEAK.id, OFF_PEAK.id, HOLIDAYS.id]), money, money),
        max_size=3, unique_by=lambda p: p[0]))
    return RateEntry(
        code="380", code_name="", tariff_id=1, tariff_name="T", direction=OUT, call_type=None,
        valid_from=date(2020, 1, 1), valid_to=None, price_per_minute=draw(money),
        connection_fee=draw(money), first_interval=first, next_interval=step,
        currency=draw(st.sampled_from(["UAH", "JPY", "KWD"])),
        free_seconds=draw(st.sampled_from([0, 0, 3, 10])),
        min_seconds=draw(st.sampled_from([0, 0, 30, 60, 120])),
        band_prices=tuple(band_prices),
    )


starts = st.datetimes(min_value=at(MON, 0), max_value=at(SUN, 23, 59, 59))
LAW_BANDS = (PEAK, OFF_PEAK, WEEKEND, HOLIDAYS)


@settings(max_examples=300, deadline=None)
@given(rate_entry=banded_entries(), duration=st.integers(0, 7200), start=starts,
       holiday=st.booleans(), answered=st.one_of(st.none(), st.booleans()))
def test_billed_time_covers_the_call_in_whole_increments(rate_entry, duration, start, holiday,
                                                          answered):
    # given any tariff and any call
    index = TariffIndex([rate_entry], bands=LAW_BANDS)
    # when it is rated
    decision = rate(index, number=NUMBER, at=start, direction=OUT, duration=duration,
                    holiday=holiday, answered=answered)
    # then the cost is never negative
    assert decision.cost is not None and decision.cost >= 0
    first, step = rate_entry.first_interval, rate_entry.next_interval
    billed = decision.billable_seconds
    if duration <= rate_entry.free_seconds:
        # a call within the free time (or of no seconds) is not billed
        assert billed == 0
        return
    # a billed call is billed at least its length and at least the minimum
    assert billed >= duration
    assert billed >= rate_entry.min_seconds
    if rate_entry.min_seconds == 0:
        # and in whole increments: the first interval, then whole steps
        assert billed == first or (billed > first and (billed - first) % step == 0)


@settings(max_examples=300, deadline=None)
@given(rate_entry=banded_entries(), durations=st.tuples(st.integers(0, 7200),
                                                       st.integers(0, 7200)),
       start=starts, holiday=st.booleans())
def test_longer_call_never_costs_less(rate_entry, durations, start, holiday):
    # given any tariff, and two calls starting at the same moment (so in the same band)
    shorter, longer = sorted(durations)
    index = TariffIndex([rate_entry], bands=LAW_BANDS)
    # when both are rated
    costs = [rate(index, number=NUMBER, at=start, direction=OUT, duration=d,
                  holiday=holiday).cost for d in (shorter, longer)]
    # then the longer one does not cost less
    assert costs[0] <= costs[1]


# Matching: random decks of overlapping codes, some expired, some not yet valid.
TODAY = date(2024, 6, 17)
deck_codes = st.text(alphabet="3804", min_size=1, max_size=6)


@st.composite
def deck_entries(draw):
    valid_from = TODAY + timedelta(days=draw(st.integers(-30, 10)))  # future ones too
    length = draw(st.one_of(st.none(), st.integers(0, 40)))  # expired ones too
    return entry(code=draw(deck_codes), valid_from=valid_from,
                 valid_to=None if length is None else valid_from + timedelta(days=length),
                 direction=draw(st.sampled_from([Direction.OUTGOING, Direction.INCOMING])),
                 price=str(draw(money)))


def reference_match(entries, number, day, direction):
    """A plain scan: every entry whose code prefixes the number, of the direction, valid on
    the day; the longest code, and among equal codes the latest valid_from."""
    best = None
    for candidate in entries:
        if not (number.startswith(candidate.code) and candidate.direction == direction
                and candidate.valid_from <= day
                and (candidate.valid_to is None or day <= candidate.valid_to)):
            continue
        if best is None or (len(candidate.code), candidate.valid_from) > (len(best.code),
                                                                           best.valid_from):
            best = candidate
    return best


@st.composite
def decks_and_numbers(draw):
    entries = draw(st.lists(deck_entries(), max_size=40,
                            unique_by=lambda e: (e.code, e.direction, e.valid_from)))
    # mostly numbers that start with a code of the deck, sometimes anything
    if entries and draw(st.integers(0, 3)):
        prefix = draw(st.sampled_from(entries)).code
        number = prefix + draw(st.text(alphabet="3804", max_size=6))
    else:
        number = draw(st.text(alphabet="3804", max_size=9))
    return entries, number


@settings(max_examples=400, deadline=None)
@given(deck=decks_and_numbers(), day=st.integers(-20, 40).map(lambda d: TODAY + timedelta(days=d)),
       direction=st.sampled_from([Direction.OUTGOING, Direction.INCOMING]))
def test_compiled_index_agrees_with_a_plain_scan(deck, day, direction):
    # given a deck of overlapping, expired and future codes
    entries, number = deck
    index = TariffIndex(entries)
    # when a number is matched and rated
    found = index.match(number, day, direction)
    decision = rate(index, number=number, at=day, direction=direction, duration=61)
    # then both pick what a scan of every entry picks
    expected = reference_match(entries, number, day, direction)
    assert found == expected
    assert decision.entry == expected


# --- the call's day is its day in the device's zone (through the pipeline) -------------------

@pytest.mark.django_db
@time_machine.travel(datetime(2024, 7, 2, 12, 0, tzinfo=UTC), tick=False)
def test_code_changes_at_local_midnight_of_the_device():
    # given a Kyiv device (UTC+3 in summer) whose 38044 code at 0.50 ends on 2024-06-30 and
    # is followed by 38044 at 0.80 from 2024-07-01
    device = DeviceFactory(timezone="Europe/Kyiv")
    operator, plan = device.default_operator, device.default_plan
    old = priced_code(operator=operator, plan=plan, code="38044", price="0.50",
                      name="Kyiv", tariff_name="Kyiv until June", valid_to=date(2024, 6, 30))
    new = priced_code(operator=operator, plan=plan, code="38044", price="0.80",
                      name="Kyiv", tariff_name="Kyiv from July", valid_from=date(2024, 7, 1))
    profile = ObserverProfileFactory(device=device)
    # when two 61 s calls are ingested, one second before and at local midnight (both on
    # 2024-06-30 in UTC: 20:59:59 and 21:00:00)
    data = cdr_file(
        cdr_line(historyid="Call 2001", callid="00000000c0ffee21_1", duration="00:01:01",
                 time_start="2024/06/30 23:59:59", time_answered="2024/06/30 23:59:59",
                 time_end="2024/07/01 00:01:00"),
        cdr_line(historyid="Call 2002", callid="00000000c0ffee22_1", duration="00:01:01",
                 time_start="2024/07/01 00:00:00", time_answered="2024/07/01 00:00:00",
                 time_end="2024/07/01 00:01:01"),
    )
    summary = profile_ingest(profile=profile, data=data, source_name="cdr.csv")
    # then the first is priced by the expiring code and the second by its successor:
    # 61 s -> 120 s; 0.50 * 2 = 1.00 and 0.80 * 2 = 1.60
    assert summary.as_dict()["calls"] == 2
    before, after = Call.objects.order_by("start")
    assert before.start == datetime(2024, 6, 30, 20, 59, 59, tzinfo=UTC)
    assert after.start == datetime(2024, 6, 30, 21, 0, 0, tzinfo=UTC)
    assert (before.code, before.tariff_id, before.cost) == ("38044", old.tariff_id,
                                                            Decimal("1.00"))
    assert (after.code, after.tariff_id, after.cost) == ("38044", new.tariff_id,
                                                         Decimal("1.60"))
