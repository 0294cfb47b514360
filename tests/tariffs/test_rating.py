"""R4: the rating core (tariffs/rating.py, pure) and the index built from the database."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffs.choices import CallType, Direction
from tariffs.models import Tariff, TariffPrice
from tariffs.rating import RateEntry, TariffIndex, billable_seconds, quantize_money, rate
from tariffs.selectors import tariff_index_build
from tests.factories import OperatorFactory, TariffPlanFactory, priced_code

DAY = date(2024, 6, 17)


def entry(code, price="1.00", *, direction=Direction.OUTGOING, valid_from=date(2020, 1, 1),
          valid_to=None, first=60, step=60, fee="0", currency="UAH", call_type=None,
          tariff_id=1, name=""):
    return RateEntry(
        code=code, code_name=name, tariff_id=tariff_id, tariff_name=name or f"T{code}",
        direction=direction, call_type=call_type, valid_from=valid_from, valid_to=valid_to,
        price_per_minute=Decimal(price), connection_fee=Decimal(fee), first_interval=first,
        next_interval=step, currency=currency,
    )


# --- matching ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("number", "expected_code"),
    [
        ("380441234567", "380441"),  # the longest of three nested codes
        ("380449999999", "38044"),
        ("380501234567", "380"),
        ("442071234567", None),  # no code prefixes it
        ("38", None),  # shorter than every code
        ("", None),
    ],
)
def test_longest_prefix_wins_over_shorter_code(number, expected_code):
    # given nested codes 380, 38044 and 380441
    index = TariffIndex([entry("380"), entry("38044"), entry("380441")])
    # when a number is matched
    match = index.match(number, DAY, Direction.OUTGOING)
    # then the longest code that prefixes it is chosen
    assert (match.code if match else None) == expected_code


@pytest.mark.parametrize(
    ("day", "matches"),
    [
        (date(2023, 12, 31), False),  # the day before valid_from
        (date(2024, 1, 1), True),  # valid_from itself is inside
        (date(2024, 6, 30), True),  # valid_to itself is inside
        (date(2024, 7, 1), False),  # the day after valid_to
    ],
)
def test_code_validity_is_inclusive_on_both_days(day, matches):
    # given a code valid from 2024-01-01 to 2024-06-30
    index = TariffIndex([entry("380", valid_from=date(2024, 1, 1), valid_to=date(2024, 6, 30))])
    # when a call on `day` is matched
    match = index.match("380441234567", day, Direction.OUTGOING)
    # then it matches exactly inside the period, both ends included
    assert (match is not None) is matches


def test_expired_longer_code_falls_back_to_the_valid_shorter_one():
    # given 38044 that ended on 2024-05-31 and 380 valid throughout
    index = TariffIndex([
        entry("380", "2.00"),
        entry("38044", "0.50", valid_to=date(2024, 5, 31)),
    ])
    # when a Kyiv number is matched in June
    match = index.match("380441234567", DAY, Direction.OUTGOING)
    # then the expired code is ignored and the shorter valid code applies
    assert match.code == "380"
    assert match.price_per_minute == Decimal("2.00")


def test_future_code_is_ignored_until_it_starts():
    # given a code that starts on 2024-07-01
    index = TariffIndex([entry("38044", valid_from=date(2024, 7, 1))])
    # when matched before and on the start day
    before = index.match("380441234567", date(2024, 6, 30), Direction.OUTGOING)
    on = index.match("380441234567", date(2024, 7, 1), Direction.OUTGOING)
    # then only the call on or after the start is priced
    assert before is None
    assert on is not None and on.code == "38044"


def test_newer_price_of_the_same_code_replaces_the_older_from_its_start():
    # given code 380 at 1.00 from 2020 (open-ended) and at 1.20 from 2024-06-01
    index = TariffIndex([
        entry("380", "1.00", valid_from=date(2020, 1, 1)),
        entry("380", "1.20", valid_from=date(2024, 6, 1)),
    ])
    # when calls before and after the change are matched
    may = index.match("380501234567", date(2024, 5, 31), Direction.OUTGOING)
    june = index.match("380501234567", date(2024, 6, 1), Direction.OUTGOING)
    # then each gets the price in force on its day
    assert may.price_per_minute == Decimal("1.00")
    assert june.price_per_minute == Decimal("1.20")


@pytest.mark.parametrize(
    ("direction", "expected_price"),
    [(Direction.OUTGOING, Decimal("1.00")), (Direction.INCOMING, Decimal("0.10"))],
)
def test_direction_selects_its_own_tariff(direction, expected_price):
    # given code 380 priced for outgoing and, separately, for incoming calls
    index = TariffIndex([
        entry("380", "1.00", direction=Direction.OUTGOING),
        entry("380", "0.10", direction=Direction.INCOMING, tariff_id=2),
    ])
    # when matched in each direction
    match = index.match("380501234567", DAY, direction)
    # then the entry of that direction is used
    assert match.price_per_minute == expected_price


def test_code_priced_only_for_outgoing_does_not_match_an_incoming_call():
    # given only an outgoing tariff for 380
    index = TariffIndex([entry("380", direction=Direction.OUTGOING)])
    # when an incoming call is matched; then nothing matches
    assert index.match("380501234567", DAY, Direction.INCOMING) is None


# --- increments and cost -------------------------------------------------------------

@pytest.mark.parametrize(
    ("duration", "first", "step", "expected"),
    [
        (0, 60, 60, 0),
        (-5, 60, 60, 0),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (61, 60, 60, 120),  # whole minutes: 61 s is two minutes
        (121, 60, 60, 180),
        (1, 1, 1, 1),
        (61, 1, 1, 61),  # per second
        (1, 30, 6, 30),  # 30/6: the first 30 s are billed whole
        (30, 30, 6, 30),
        (31, 30, 6, 36),  # then 6-second steps
        (36, 30, 6, 36),
        (37, 30, 6, 42),
        (61, 60, 1, 61),  # first minute whole, then per second
    ],
)
def test_billable_seconds_follow_the_increments(duration, first, step, expected):
    # given a duration and a first/next increment; when billed; then rounded up per step
    assert billable_seconds(duration, first, step) == expected


@pytest.mark.parametrize(
    ("price", "first", "step", "fee", "duration", "seconds", "cost"),
    [
        # 60/60: 61 s -> 120 s; 1.50 * 120 / 60 = 3.00
        ("1.50", 60, 60, "0", 61, 120, Decimal("3.00")),
        # 1/1: 61 s; 0.90 * 61 / 60 = 0.915 -> 0.92 (half up)
        ("0.90", 1, 1, "0", 61, 61, Decimal("0.92")),
        # 30/6: 31 s -> 36 s; 1.20 * 36 / 60 = 0.72
        ("1.20", 30, 6, "0", 31, 36, Decimal("0.72")),
        # 30/6: 10 s -> 30 s; 1.20 * 30 / 60 = 0.60
        ("1.20", 30, 6, "0", 10, 30, Decimal("0.60")),
        # connection fee: 1.00 * 60 / 60 + 0.25 = 1.25
        ("1.00", 60, 60, "0.25", 10, 60, Decimal("1.25")),
        # zero duration: nothing billed, no connection fee: 0.00
        ("1.00", 60, 60, "0.25", 0, 0, Decimal("0.00")),
        # free tariff: 0.00
        ("0", 60, 60, "0", 300, 300, Decimal("0.00")),
    ],
)
def test_rate_prices_billable_seconds_and_fee(price, first, step, fee, duration, seconds, cost):
    # given one code with a price, increments and a connection fee
    index = TariffIndex([entry("380", price, first=first, step=step, fee=fee)])
    # when a call of `duration` seconds is rated
    decision = rate(index, number="380501234567", at=DAY, direction=Direction.OUTGOING,
                    duration=duration)
    # then the exact cost is the billed minutes at the price plus the fee
    assert decision.billable_seconds == seconds
    assert decision.cost == cost
    assert str(decision.cost) == str(cost)  # two places, not 3 or 3.0000
    assert decision.currency == "UAH"


def test_rate_explains_code_increments_price_and_fee():
    # given a named code with a fee
    index = TariffIndex([entry("38044", "0.50", fee="0.25", name="Kyiv")])
    # when rated
    decision = rate(index, number="380441234567", at=DAY, direction=Direction.OUTGOING,
                    duration=61)
    # then the rule names the code, the increments, the price and the fee
    assert decision.rule == ("code 38044 (Kyiv), tariff Kyiv; 61s billed as 120s (whole minutes "
                             "60/60) at 0.5 UAH/min; connection fee 0.25; = 1.25 UAH (rounded "
                             "half up)")
    # 0.50 * 120 / 60 + 0.25 = 1.25
    assert decision.cost == Decimal("1.25")


def test_number_matching_nothing_has_no_cost_and_a_reason():
    # given an index of one operator with only a Ukrainian code
    index = TariffIndex([entry("380")], operator="Kyivstar")
    # when a UK number is rated
    decision = rate(index, number="442071234567", at=DAY, direction=Direction.OUTGOING,
                    duration=61)
    # then it has no cost (not zero) and the reason says why
    assert decision.cost is None
    assert decision.entry is None
    assert decision.billable_seconds == 0
    assert decision.rule == "no code of Kyivstar valid on 2024-06-17 matches 442071234567"


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "UAH", "0.13"),  # half up, not half even (0.12)
        ("0.124", "UAH", "0.12"),
        ("0.135", "EUR", "0.14"),
        ("3", "UAH", "3.00"),
        ("2.5", "JPY", "3"),  # no minor unit; half up
        ("2.4", "jpy", "2"),  # currency code in any case
        ("1.2345", "KWD", "1.235"),  # three places; half up (half even: 1.234)
        ("1.2344", "KWD", "1.234"),
        ("0", "KWD", "0.000"),
    ],
)
def test_quantize_money_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    # given an exact amount; when quantised for a currency; then rounded to its minor unit
    assert str(quantize_money(Decimal(amount), currency)) == expected


def test_cost_in_a_currency_without_minor_unit_is_whole():
    # given a JPY code at 10/min, per second
    index = TariffIndex([entry("81", "10", first=1, step=1, currency="JPY")])
    # when a 45 s call is rated: 10 * 45 / 60 = 7.5 -> 8
    decision = rate(index, number="81312345678", at=DAY, direction=Direction.OUTGOING,
                    duration=45)
    # then the cost is whole yen
    assert str(decision.cost) == "8"


# --- laws ------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
increments = st.sampled_from([(60, 60), (1, 1), (30, 6), (60, 1), (30, 30)])


@settings(max_examples=300, deadline=None)
@given(price=money, fee=money, inc=increments, duration=st.integers(0, 36_000),
       currency=st.sampled_from(["UAH", "JPY", "KWD"]))
def test_cost_is_never_negative_and_billed_time_covers_the_call(price, fee, inc, duration,
                                                                currency):
    # given any non-negative price and fee and any increments
    first, step = inc
    index = TariffIndex([entry("3", str(price), fee=str(fee), first=first, step=step,
                               currency=currency)])
    # when a call of any length is rated
    decision = rate(index, number="380", at=DAY, direction=Direction.OUTGOING,
                    duration=duration)
    # then the cost is not negative, is the quantised exact amount, and billed time
    # covers the call by less than one increment
    assert decision.cost >= 0
    assert decision.billable_seconds >= duration
    assert decision.billable_seconds - duration < max(first, step)
    exact = price * decision.billable_seconds / 60 + (fee if duration > 0 else 0)
    assert decision.cost == quantize_money(exact, currency)


codes = st.text(alphabet="0123", min_size=1, max_size=4)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2024, 1, 20))


@st.composite
def rate_entries(draw):
    code = draw(codes)
    valid_from = draw(days)
    length = draw(st.one_of(st.none(), st.integers(0, 10)))
    valid_to = None if length is None else valid_from + timedelta(days=length)
    direction = draw(st.sampled_from([Direction.OUTGOING, Direction.INCOMING]))
    return entry(code, direction=direction, valid_from=valid_from, valid_to=valid_to)


def reference_match(entries, number, day, direction):
    """Brute force: every valid code that prefixes the number; the longest, then the newest."""
    candidates = [e for e in entries
                  if number.startswith(e.code) and e.direction == direction and e.valid_on(day)]
    return max(candidates, key=lambda e: (len(e.code), e.valid_from), default=None)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(rate_entries(), max_size=25,
                     unique_by=lambda e: (e.code, e.direction, e.valid_from)),
    number=st.text(alphabet="0123", max_size=7),
    day=days,
    direction=st.sampled_from([Direction.OUTGOING, Direction.INCOMING]),
)
def test_match_agrees_with_a_brute_force_scan(entries, number, day, direction):
    # given any set of codes with validity periods and directions
    index = TariffIndex(entries)
    # when a number is matched
    found = index.match(number, day, direction)
    # then it is the longest valid code (the newest of that code) a full scan finds
    assert found == reference_match(entries, number, day, direction)


# --- the index built from the database (R4.1, R4.3) -----------------------------------

@pytest.mark.django_db
def test_index_prices_codes_in_the_given_plan():
    # given one tariff priced 1.00 in the basic plan and 0.80 in the business plan
    operator = OperatorFactory(name="Kyivstar")
    basic, business = TariffPlanFactory(name="Basic"), TariffPlanFactory(name="Business")
    code = priced_code(operator=operator, plan=basic, code="38044", price="1.00", name="Kyiv")
    TariffPrice.objects.create(tariff=code.tariff, plan=business, price_per_minute="0.80")
    # when each plan's index rates the same 61 s call
    basic_cost = rate(tariff_index_build(operator=operator, plan=basic), number="380441234567",
                      at=DAY, direction=Direction.OUTGOING, duration=61).cost
    business_cost = rate(tariff_index_build(operator=operator, plan=business),
                         number="380441234567", at=DAY, direction=Direction.OUTGOING,
                         duration=61).cost
    # then each uses its own price: 1.00 * 120 / 60 = 2.00; 0.80 * 120 / 60 = 1.60
    assert basic_cost == Decimal("2.00")
    assert business_cost == Decimal("1.60")


@pytest.mark.django_db
def test_index_leaves_out_tariffs_without_a_price_in_the_plan():
    # given a code priced only in another plan
    operator = OperatorFactory()
    other, mine = TariffPlanFactory(), TariffPlanFactory()
    priced_code(operator=operator, plan=other, code="380", price="1.00")
    # when the index of my plan is built
    index = tariff_index_build(operator=operator, plan=mine)
    # then it is empty and the call is not priced
    assert len(index) == 0
    assert index.match("380501234567", DAY, Direction.OUTGOING) is None


@pytest.mark.django_db
def test_index_prices_a_code_only_while_its_tariff_is_valid():
    # given a code valid indefinitely whose tariff ended on 2024-05-31
    operator, plan = OperatorFactory(), TariffPlanFactory()
    code = priced_code(operator=operator, plan=plan, code="38044", price="1.00")
    Tariff.objects.filter(pk=code.tariff_id).update(valid_to=date(2024, 5, 31))
    # when the index is built and calls on the last day and the day after are matched
    index = tariff_index_build(operator=operator, plan=plan)
    # then the code stops being priced with its tariff
    assert index.match("380441234567", date(2024, 5, 31), Direction.OUTGOING) is not None
    assert index.match("380441234567", date(2024, 6, 1), Direction.OUTGOING) is None


@pytest.mark.django_db
def test_index_carries_currency_fee_increments_and_call_type():
    # given a mobile code of a EUR operator, per-second with a connection fee
    operator, plan = OperatorFactory(currency="EUR"), TariffPlanFactory()
    priced_code(operator=operator, plan=plan, code="38050", price="0.60", fee="0.05",
                first=1, step=1, call_type=CallType.MOBILE)
    # when a 90 s call is rated
    decision = rate(tariff_index_build(operator=operator, plan=plan), number="380501234567",
                    at=DAY, direction=Direction.OUTGOING, duration=90)
    # then 0.60 * 90 / 60 + 0.05 = 0.95 EUR, and the code's call type comes along
    assert decision.cost == Decimal("0.95")
    assert decision.currency == "EUR"
    assert decision.entry.call_type == CallType.MOBILE
