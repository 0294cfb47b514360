"""R3: numbers to international form and call classification (billing/numbering.py, pure)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.numbering import (
    DialPlan,
    Kind,
    classify,
    digits_of,
    normalize,
    parse_number,
    split_auth_code,
)
from tariffs.choices import CallType, Direction
from tests.factories import DeviceFactory

# The Kyiv 3CX of tests/factories.py: access code 9, extensions of three digits.
KYIV = DialPlan(
    access_code="9", national_prefix="0", international_prefix="00", country_code="380",
    area_code="44", extension_length=3,
    service_numbers=frozenset({"101", "102", "103", "104", "112", "911"}),
)
# Extensions 1000-8999, so that neither service numbers nor "9..." are extensions.
KYIV_4 = DialPlan(
    access_code="9", national_prefix="0", international_prefix="00", country_code="380",
    area_code="44", extension_pattern=r"[1-8]\d{3}", service_numbers=frozenset({"101", "112"}),
)
# A plan that does not know its own country: nothing can be called local or international.
NO_COUNTRY = DialPlan(access_code="", country_code="", area_code="", extension_length=3)


@pytest.mark.parametrize(
    ("dialled", "plan", "expected"),
    [
        # access code stripped, then the national prefix becomes the country code
        ("90441234567", KYIV, "380441234567"),
        # national number dialled without the access code
        ("0501234567", KYIV, "380501234567"),
        # access code + international prefix: the rest is already international
        ("900442071234567", KYIV, "442071234567"),
        ("00442071234567", KYIV, "442071234567"),
        # a bare local number gets country and area code
        ("2345678", KYIV, "380442345678"),
        ("92345678", KYIV, "380442345678"),
        # `+` numbers are international already; punctuation is dropped
        ("+46703014082", KYIV, "46703014082"),
        ("+380 (44) 123-45-67", KYIV, "380441234567"),
        # extensions are kept as they are
        ("123", KYIV, "123"),
        ("1234", KYIV_4, "1234"),
        # service numbers are kept, with or without the access code
        ("112", KYIV_4, "112"),
        ("9112", KYIV_4, "112"),
        ("101", KYIV_4, "101"),
        # nothing dialled
        ("", KYIV, ""),
        ("anonymous", KYIV, ""),
    ],
)
def test_normalize_gives_the_international_form(dialled, plan, expected):
    # given a number as the PBX recorded it and the device's dial plan
    # when it is normalised
    result = normalize(dialled, plan)
    # then it is in international form, or kept as an internal/service number
    assert result == expected


# Three-digit extensions and no access code: 103 is both an extension and a service number.
NO_ACCESS = DialPlan(access_code="", country_code="380", area_code="44", extension_length=3,
                     service_numbers=frozenset({"103"}))


@pytest.mark.parametrize(
    ("dialled", "plan", "expected"),
    [
        # an emergency number that nobody holds as an extension is the service, with or
        # without the access code
        ("103", KYIV, ("103", Kind.SERVICE)),
        ("9103", KYIV, ("103", Kind.SERVICE)),
        # a number shaped like an extension that is no service number is an extension
        ("105", KYIV, ("105", Kind.EXTENSION)),
        ("90441234567", KYIV, ("380441234567", Kind.EXTERNAL)),
        ("+103", KYIV, ("103", Kind.EXTERNAL)),
        ("", KYIV, ("", Kind.EXTERNAL)),
        # without an access code the service number wins over the extension pattern
        ("103", NO_ACCESS, ("103", Kind.SERVICE)),
        ("104", NO_ACCESS, ("104", Kind.EXTENSION)),
        ("2345678", NO_ACCESS, ("380442345678", Kind.EXTERNAL)),
    ],
)
def test_parse_number_says_what_kind_of_number_was_dialled(dialled, plan, expected):
    # given a number as recorded; when parsed under the dial plan
    # then it comes back normalised with its kind
    assert parse_number(dialled, plan) == expected


def test_a_number_someone_holds_is_an_extension_even_where_it_is_a_service_number():
    # given 103, an emergency number in Ukraine, held as an extension on the device
    held = {"101", "103"}
    # when 103 is dialled without and with the access code
    # then without it is the extension, with it the emergency service
    assert parse_number("103", KYIV, held) == ("103", Kind.EXTENSION)
    assert parse_number("9103", KYIV, held) == ("103", Kind.SERVICE)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(None, CallType.SERVICE), (Kind.SERVICE, CallType.SERVICE),
     (Kind.EXTENSION, CallType.INTERNAL)],
)
def test_classify_follows_the_kind_parse_number_gave(kind, expected):
    # given an outgoing call to 103, an emergency number that is also an extension on KYIV
    # when classified with the kind parse_number found (None: guessed from the digits)
    call_type = classify(direction=Direction.OUTGOING, normalized="103", plan=KYIV,
                         code_call_type=None, kind=kind)
    # then extension 103 dialled without the access code is internal, and otherwise service
    assert call_type == expected


def test_access_code_alone_is_not_stripped_to_nothing():
    # given a plan whose access code is 9 and a one-digit number "9"
    # when it is normalised
    result = normalize("9", KYIV)
    # then the digit is treated as a local number, not swallowed as the access code
    assert result == "380449"


@pytest.mark.parametrize(
    ("direction", "normalized", "plan", "code_call_type", "expected"),
    [
        # internal: by direction, or because the other side is an extension
        (Direction.INTERNAL, "380441234567", KYIV, None, CallType.INTERNAL),
        (Direction.OUTGOING, "123", KYIV, None, CallType.INTERNAL),
        # incoming wins over whatever the code says
        (Direction.INCOMING, "380501234567", KYIV, CallType.MOBILE, CallType.INCOMING),
        # local: the device's own country and area
        (Direction.OUTGOING, "380442345678", KYIV, None, CallType.LOCAL),
        # long distance: own country, another area
        (Direction.OUTGOING, "380322345678", KYIV, None, CallType.LONG_DISTANCE),
        # international: another country
        (Direction.OUTGOING, "442071234567", KYIV, None, CallType.INTERNATIONAL),
        # mobile only comes from the matched code
        (Direction.OUTGOING, "380501234567", KYIV, CallType.MOBILE, CallType.MOBILE),
        # the code's type wins over the dial-plan guess
        (Direction.OUTGOING, "380442345678", KYIV, CallType.INTERNATIONAL, CallType.INTERNATIONAL),
        # service numbers, even when a code would price them otherwise
        (Direction.OUTGOING, "112", KYIV_4, None, CallType.SERVICE),
        (Direction.OUTGOING, "112", KYIV_4, CallType.LOCAL, CallType.SERVICE),
        # nothing to go on
        (Direction.OUTGOING, "", KYIV, None, CallType.UNKNOWN),
        (Direction.OUTGOING, "442071234567", NO_COUNTRY, None, CallType.UNKNOWN),
    ],
)
def test_classify_gives_the_call_type(direction, normalized, plan, code_call_type, expected):
    # given a direction, a normalised number, a dial plan and the matched code's type
    # when the call is classified
    call_type = classify(direction=direction, normalized=normalized, plan=plan,
                         code_call_type=code_call_type)
    # then it has the documented code (R3.3: 3 local, 4 long-distance, 5 international, 6 mobile)
    assert call_type == expected


@pytest.mark.parametrize(
    ("call_type", "code"),
    [(CallType.UNKNOWN, 0), (CallType.INTERNAL, 1), (CallType.INCOMING, 2), (CallType.LOCAL, 3),
     (CallType.LONG_DISTANCE, 4), (CallType.INTERNATIONAL, 5), (CallType.MOBILE, 6),
     (CallType.SERVICE, 7)],
)
def test_call_type_codes_are_fixed(call_type, code):
    # given the call types; when read as numbers; then 3-6 are the original's, the rest ours
    assert int(call_type) == code


@pytest.mark.parametrize(
    ("plan", "number", "expected"),
    [
        (KYIV, "123", True),
        (KYIV, "1234", False),
        (KYIV, "12a", False),
        (KYIV, "", False),
        (DialPlan(extension_pattern=r"2\d{3}"), "2001", True),
        (DialPlan(extension_pattern=r"2\d{3}"), "3001", False),
        # a pattern wins over a length
        (DialPlan(extension_pattern=r"2\d{3}", extension_length=3), "123", False),
        (DialPlan(), "123", False),
    ],
)
def test_is_extension_follows_the_pattern_or_the_length(plan, number, expected):
    # given a dial plan with an extension pattern or length
    # when a number is checked; then only the device's internal numbers are extensions
    assert plan.is_extension(number) is expected


def test_dial_plan_from_device_reads_the_service_numbers_list():
    # given a device whose service numbers list has spaces and empty items
    device = DeviceFactory.build(service_numbers=" 112, 911 ,,103", access_code="8",
                                 extension_length=4, extension_pattern="")
    # when its dial plan is built
    plan = DialPlan.from_device(device)
    # then the list is clean and the other settings are carried over
    assert plan.service_numbers == frozenset({"112", "911", "103"})
    assert (plan.access_code, plan.country_code, plan.area_code) == ("8", "380", "44")
    assert plan.extension_length == 4


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+-() #*x", max_size=20))
def test_normalized_number_is_digits_only(dialled):
    # given any text a PBX might record
    # when it is normalised
    result = normalize(dialled, KYIV)
    # then the result is digits only, and empty whenever no digit was dialled
    assert result == digits_of(result)
    if not digits_of(dialled):
        assert result == ""


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=15))
def test_plus_number_is_its_digits_whatever_the_plan(digits):
    # given a number written with a leading + (already international)
    # when it is normalised under a plan with access code and prefixes
    result = normalize("+" + digits, KYIV)
    # then no prefix is stripped or added
    assert result == digits


@settings(max_examples=200, deadline=None)
@given(
    direction=st.sampled_from(list(Direction)),
    normalized=st.text(alphabet="0123456789", max_size=14),
    code_call_type=st.one_of(st.none(), st.sampled_from(list(CallType))),
)
def test_classify_always_gives_a_known_call_type(direction, normalized, code_call_type):
    # given any direction, number and code type
    # when classified
    result = classify(direction=direction, normalized=normalized, plan=KYIV,
                      code_call_type=code_call_type)
    # then the result is one of the call types, and incoming calls are always "incoming"
    # unless the other side is an extension
    assert result in set(CallType)
    if direction == Direction.INCOMING and not KYIV.is_extension(normalized):
        assert result == CallType.INCOMING


# --- authorization codes (R8.6) ---------------------------------------------------------

# Users dial 9, then a four-digit authorization code, then the number.
AUTH_BEFORE = DialPlan(access_code="9", auth_code_position="before", auth_code_length=4)
# Users dial the number, then the code at the end.
AUTH_AFTER = DialPlan(access_code="9", auth_code_position="after", auth_code_length=4)


@pytest.mark.parametrize(
    ("dialled", "plan", "expected"),
    [
        # before: right after the access code, which stays on the number
        ("912340441234567", AUTH_BEFORE, ("90441234567", "1234")),
        # separators between the parts are dropped with the code
        ("9#1234#0441234567", AUTH_BEFORE, ("90441234567", "1234")),
        ("9*1234*0441234567", AUTH_BEFORE, ("90441234567", "1234")),
        # dialled without the access code: the code is the first digits
        ("12340441234567", AUTH_BEFORE, ("0441234567", "1234")),
        # a `+` number keeps its `+`
        ("+1234380441234567", AUTH_BEFORE, ("+380441234567", "1234")),
        # after: the last digits
        ("904412345671234", AUTH_AFTER, ("90441234567", "1234")),
        ("90441234567#1234", AUTH_AFTER, ("90441234567", "1234")),
        ("+380441234567#1234", AUTH_AFTER, ("+380441234567", "1234")),
        # too short to hold a code and a number: left alone (an extension dialled directly)
        ("91234", AUTH_BEFORE, ("91234", "")),
        ("9123", AUTH_BEFORE, ("9123", "")),
        ("1234", AUTH_AFTER, ("1234", "")),
        ("102", AUTH_AFTER, ("102", "")),
        ("", AUTH_AFTER, ("", "")),
        # no position or no length in the dial plan: nothing is split, blanks are trimmed
        (" 912340441234567 ", DialPlan(auth_code_length=4), ("912340441234567", "")),
        ("912340441234567", DialPlan(auth_code_position="before"), ("912340441234567", "")),
    ],
)
def test_split_auth_code_takes_the_code_where_the_dial_plan_says(dialled, plan, expected):
    # given a number dialled with an authorization code and the device's dial plan
    # when the code is split off
    result = split_auth_code(dialled, plan)
    # then the number and the code come apart where the plan says, separators dropped
    assert result == expected


def test_auth_code_before_a_plus_number_may_start_with_the_access_digit():
    # given codes before the number after access code 9, and a `+` number (dialled without
    # an access code) under code 9876
    # when the code is split off
    result = split_auth_code("+9876380441234567", AUTH_BEFORE)
    # then the code is the first four digits, as it is for any other code
    assert result == ("+380441234567", "9876")


digit_strings = st.text(alphabet="0123456789", max_size=4)


@st.composite
def dial_plans(draw):
    """Any dial plan a device may have: digit-only prefixes and codes, any extension rule."""
    return DialPlan(
        access_code=draw(st.sampled_from(["", "0", "9", "8", "00"])),
        national_prefix=draw(st.sampled_from(["", "0", "8", "1"])),
        international_prefix=draw(st.sampled_from(["", "00", "810", "011"])),
        country_code=draw(digit_strings),
        area_code=draw(digit_strings),
        extension_length=draw(st.one_of(st.none(), st.integers(1, 6))),
        extension_pattern=draw(st.sampled_from(["", r"[1-8]\d{3}", r"\d{3}", r"2\d*"])),
        service_numbers=frozenset(draw(st.lists(st.text(alphabet="0123456789", min_size=1,
                                                        max_size=4), max_size=4))),
        auth_code_position=draw(st.sampled_from(["", "before", "after"])),
        auth_code_length=draw(st.integers(0, 6)),
    )


@settings(max_examples=300, deadline=None)
@given(plan=dial_plans(), digits=st.text(alphabet="0123456789", max_size=18),
       plus=st.booleans(), known=st.lists(st.text(alphabet="0123456789", max_size=4),
                                          max_size=3))
def test_parse_number_gives_digits_only_for_any_digits_and_plan(plan, digits, plus, known):
    # given any digit string (maybe with a leading +), any dial plan and held extensions
    dialled = ("+" if plus else "") + digits
    # when it is parsed (never raising)
    number, kind = parse_number(dialled, plan, set(known))
    # then the number is digits only and the kind is one of the three
    assert number == digits_of(number)
    assert kind in {Kind.EXTENSION, Kind.SERVICE, Kind.EXTERNAL}


@settings(max_examples=300, deadline=None)
@given(plan=dial_plans(), dialled=st.text(alphabet="0123456789#*+ ", max_size=20))
def test_split_auth_code_loses_no_digit(plan, dialled):
    # given anything dialled under any dial plan
    # when the authorization code is split off
    number, code = split_auth_code(dialled, plan)
    # then either nothing is split, or the code has the plan's length and the digits of the
    # number and the code together are the digits dialled, in order
    if not code:
        assert number == dialled.strip()
        return
    assert len(code) == plan.auth_code_length and code.isdigit()
    digits = digits_of(dialled)
    if plan.auth_code_position == "after":
        assert digits_of(number) + code == digits
    else:
        access = plan.access_code if digits.startswith(plan.access_code) else ""
        assert access + code + digits_of(number)[len(access):] == digits


@pytest.mark.parametrize("dialled", [
    "=1+cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?x=1","44")', "0441234567abc",
    "@SUM(1+1)", "s",
])
def test_text_that_is_no_number_is_not_made_into_one(dialled):
    # given what a CDR field may hold that no telephone number does
    # when it is parsed as a dialled number
    # then it is not a number: no digits of it are put together into one to be priced
    assert parse_number(dialled, KYIV) == ("", Kind.NOT_A_NUMBER)
    assert classify(direction=Direction.OUTGOING, normalized="", plan=KYIV, code_call_type=None,
                    kind=Kind.NOT_A_NUMBER) == CallType.UNKNOWN


@pytest.mark.parametrize(("dialled", "expected"), [
    ("+380 (44) 123-45-67", "380441234567"),
    ("9 044 123.45.67", "380441234567"),
    ("+380-44-123-45-67", "380441234567"),
])
def test_numbers_written_with_separators_are_still_numbers(dialled, expected):
    # given numbers as people and PBXs write them; when normalised; then their digits count
    assert parse_number(dialled, KYIV)[0] == expected
