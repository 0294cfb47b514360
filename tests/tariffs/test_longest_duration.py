"""R8.4: the longest duration a call can last within a budget (tariffs.rating.longest_duration),
worked out by hand on tariffs with increments, connection fees, free time, minimums and
rounding, and held to `rate` itself for any tariff."""
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffs.choices import Direction
from tariffs.rating import Band, RateEntry, TariffIndex, longest_duration, rate

DAY = date(2025, 3, 10)  # a Monday
AT = datetime.combine(DAY, time(9, 0))
KYIV = "380441234567"


def entry(price="1.20", *, code="38044", first=60, step=60, fee="0", free=0, minimum=0,
          currency="UAH", band_prices=()):
    return RateEntry(
        code=code, code_name="Kyiv", tariff_id=1, tariff_name="Kyiv", direction=Direction.OUTGOING,
        call_type=None, valid_from=date(2020, 1, 1), valid_to=None,
        price_per_minute=None if price is None else Decimal(price), connection_fee=Decimal(fee),
        first_interval=first, next_interval=step, currency=currency, free_seconds=free,
        min_seconds=minimum, band_prices=band_prices,
    )


def longest(index, budget, *, number=KYIV, at=AT, holiday=False, limit=86400):
    return longest_duration(index, number=number, at=at, direction=Direction.OUTGOING,
                            budget=Decimal(budget), holiday=holiday, limit=limit)


def cost(index, duration, *, at=AT, holiday=False):
    return rate(index, number=KYIV, at=at, direction=Direction.OUTGOING, duration=duration,
                holiday=holiday).cost


@pytest.mark.parametrize(
    ("tariff", "budget", "expected"),
    [
        # 60/60 at 1.20/min with a 0.30 fee: 0.30 + 1.20 a started minute. Three minutes cost
        # 3.90, a fourth started one 5.10 > 5.00: 180 s.
        (entry("1.20", fee="0.30"), "5.00", 180),
        # 30/6 at 1.20/min (0.02/s) with a 0.30 fee: 0.30 + 0.02 * billed, within 5.00 while
        # billed <= 235; billed is 30 + 6k: 234 (4.98) fits, 240 (5.10) does not: 234 s.
        (entry("1.20", first=30, step=6, fee="0.30"), "5.00", 234),
        # The same without the fee: billed <= 250, 30 + 6 * 36 = 246 (4.92); 252 is 5.04.
        (entry("1.20", first=30, step=6), "5.00", 246),
        # 30/6, a call of 1..30 s is billed 30 s = 0.60: a budget of 0.59 allows none of it.
        (entry("1.20", first=30, step=6), "0.59", 0),
        # Per second at 0.60/min (0.01/s), 10 s free, 0.50 fee: beyond the free time the whole
        # call is billed, 0.50 + 0.01 * d <= 1.00 while d <= 50: 50 s (exactly 1.00).
        (entry("0.60", first=1, step=1, fee="0.50", free=10), "1.00", 50),
        # The same with a budget below the fee: only the free 10 s cost nothing.
        (entry("0.60", first=1, step=1, fee="0.50", free=10), "0.40", 10),
        # Per second at 0.60/min with a 60 s minimum: any call pays at least 0.60, so 0.50
        # allows nothing; 0.70 allows 70 s (0.01 * 70).
        (entry("0.60", first=1, step=1, minimum=60), "0.50", 0),
        (entry("0.60", first=1, step=1, minimum=60), "0.70", 70),
        # A 0.30 fee over a 0.20 budget: not a second.
        (entry("1.20", fee="0.30"), "0.20", 0),
        # Rounding half up: per second at 0.70/min, 9 s cost exactly 0.105, which is 0.11
        # (half even would say 0.10 and allow it); 8 s cost 0.0933 = 0.09: 8 s.
        (entry("0.70", first=1, step=1), "0.10", 8),
        # Whole yen, per second at 10 JPY/min (d / 6 yen): 20 s is 3.33, rounded to 3; 21 s
        # is 3.5, rounded up to 4: within 3 yen, 20 s.
        (entry("10", first=1, step=1, currency="JPY"), "3", 20),
    ],
)
def test_longest_duration_counts_as_rate_counts(tariff, budget, expected):
    # given a tariff worked out by hand
    index = TariffIndex([tariff])
    # when the longest duration within the budget is asked for
    seconds = longest(index, budget)
    # then it is the hand-worked figure: that long fits the budget, a second more does not
    assert seconds == expected
    assert cost(index, seconds) <= Decimal(budget)
    assert cost(index, seconds + 1) > Decimal(budget)


def test_no_matching_code_gives_none():
    # given a tariff for Kyiv only
    index = TariffIndex([entry()])
    # when a London number is asked for
    # then there is no answer: nothing prices it
    assert longest(index, "5.00", number="442071234567") is None


def test_a_tariff_without_a_price_for_the_time_gives_none():
    # given a tariff priced only in an evening band, asked about a morning call
    evening = Band(id=7, name="evening", weekdays=frozenset(range(1, 8)), start=time(18),
                   end=time(23))
    index = TariffIndex([entry(None, band_prices=((7, Decimal("0.60"), Decimal(0)),))],
                        bands=[evening])
    # then nothing prices it
    assert longest(index, "5.00") is None


def test_a_budget_never_reached_gives_the_limit():
    # given 0.01 a minute and a budget of 1,000.00
    index = TariffIndex([entry("0.01")])
    # then the day's limit, or the one given
    assert longest(index, "1000.00") == 86400
    assert longest(index, "1000.00", limit=3600) == 3600


def test_the_band_of_the_call_start_and_the_holiday_band_are_used():
    # given 1.20/min by day, 0.60/min in a holiday band
    holidays = Band(id=8, name="holidays", weekdays=frozenset(), start=time(0), end=time(0),
                    holidays=True)
    index = TariffIndex([entry("1.20", band_prices=((8, Decimal("0.60"), Decimal(0)),))],
                        bands=[holidays])
    # when 3.00 is the budget on a working day and on a holiday
    # then 2 minutes (2.40) on a working day, 5 minutes (3.00) on a holiday
    assert longest(index, "3.00") == 120
    assert longest(index, "3.00", holiday=True) == 300


# --- the law: longest_duration and rate never disagree ----------------------------------

money = st.decimals(min_value=0, max_value=5, places=2, allow_nan=False, allow_infinity=False)
increments = st.sampled_from([(60, 60), (1, 1), (30, 6), (60, 1), (30, 30)])


@settings(max_examples=200, deadline=None)
@given(price=money, fee=money, inc=increments, free=st.sampled_from([0, 3, 10]),
       minimum=st.sampled_from([0, 30, 60]),
       budget=st.decimals(min_value=0, max_value=50, places=2, allow_nan=False,
                          allow_infinity=False))
def test_the_longest_duration_fits_and_one_second_more_does_not(price, fee, inc, free, minimum,
                                                                budget):
    # given any tariff and budget
    first, step = inc
    index = TariffIndex([entry(str(price), first=first, step=step, fee=str(fee), free=free,
                               minimum=minimum)])
    # when the longest duration within the budget is asked for, up to an hour
    seconds = longest(index, budget, limit=3600)
    # then rate prices it within the budget, and one second more over it (unless the hour)
    assert 0 <= seconds <= 3600
    assert cost(index, seconds) <= budget
    if seconds < 3600:
        assert cost(index, seconds + 1) > budget
