"""The pure part of the tariff import (R5.2): cells and rows to code rows or rejects."""
import datetime
from decimal import Decimal

import pytest

from tariffs.importers.mapping import (
    ImportOptions,
    MappingError,
    RowError,
    column_letter,
    column_letter_index,
    columns_resolve,
    mapping_parse,
    parse_call_type,
    parse_codes,
    parse_date,
    parse_direction,
    parse_rate,
    rows_map,
)

TODAY = datetime.date(2024, 6, 1)


def options(**overrides):
    return ImportOptions(operator="Carrier", plan="Plan", currency="UAH", today=TODAY, **overrides)


@pytest.mark.parametrize(("cell", "codes"), [
    ("380", ["380"]),
    (380.0, ["380"]),
    (380, ["380"]),
    ("+44 20", ["4420"]),
    ("380, 381,382", ["380", "381", "382"]),
    ("38050-38052", ["38050", "38051", "38052"]),
    ("0098-0100", ["0098", "0099", "0100"]),
    ("7, 38067-38068", ["7", "38067", "38068"]),
])
def test_codes_split_on_commas_and_ranges_expand(cell, codes):
    assert parse_codes(cell) == codes


@pytest.mark.parametrize(("cell", "reason"), [
    ("", "empty code"),
    (None, "empty code"),
    (" , ", "empty code"),
    ("38A", "not digits"),
    ("38059-38050", "FROM <= TO"),
    ("380-3809", "equal lengths"),
    ("100000-999999", "more than"),
    ("1" * 33, "longer than"),
])
def test_bad_codes_say_why(cell, reason):
    with pytest.raises(RowError, match=reason):
        parse_codes(cell)


@pytest.mark.parametrize(("cell", "rate"), [
    ("1.5", Decimal("1.5")), ("1,5", Decimal("1.5")), (" 0,082 ", Decimal("0.082")),
    (0.1, Decimal("0.1")), (2, Decimal("2")), ("1 234,50", Decimal("1234.5")),
    ("0.12345678", Decimal("0.123457")),
])
def test_rates_accept_decimal_comma_and_round_to_six_places(cell, rate):
    assert parse_rate(cell) == rate


@pytest.mark.parametrize(("cell", "reason"), [
    ("", "empty rate"), (None, "empty rate"), ("abc", "not a number"), ("-1", "negative"),
    ("1e20", "too large"), ("NaN", "not a number"),
])
def test_bad_rates_say_why(cell, reason):
    with pytest.raises(RowError, match=reason):
        parse_rate(cell)


@pytest.mark.parametrize(("cell", "call_type"), [
    ("", None), (None, None), ("3", 3), (4.0, 4), ("International", 5), ("mobile", 6),
    ("long-distance", 4), ("LOCAL", 3),
])
def test_call_types_by_number_or_word(cell, call_type):
    assert parse_call_type(cell) == call_type


@pytest.mark.parametrize("cell", ["7", "premium", "2"])
def test_unknown_call_type_is_a_reject(cell):
    with pytest.raises(RowError, match="unknown call type"):
        parse_call_type(cell)


@pytest.mark.parametrize(("cell", "direction"), [
    ("", 0), (None, 0), ("0", 0), (1.0, 1), ("out", 0), ("IN", 1), ("incoming", 1)])
def test_directions(cell, direction):
    assert parse_direction(cell) == direction


def test_unknown_direction_is_a_reject():
    with pytest.raises(RowError, match="unknown direction"):
        parse_direction("both")


@pytest.mark.parametrize(("cell", "order", "day"), [
    ("2024-01-31", "dmy", datetime.date(2024, 1, 31)),
    ("2024-01-31 00:00:00", "dmy", datetime.date(2024, 1, 31)),
    ("31.01.2024", "dmy", datetime.date(2024, 1, 31)),
    ("01/31/2024", "mdy", datetime.date(2024, 1, 31)),
    ("31/01/2024", "dmy", datetime.date(2024, 1, 31)),
    ("01/02/2024", "dmy", datetime.date(2024, 2, 1)),
    ("01/02/2024", "mdy", datetime.date(2024, 1, 2)),
    (45322, "dmy", datetime.date(2024, 1, 31)),
    (45322.0, "dmy", datetime.date(2024, 1, 31)),
    ("45322", "dmy", datetime.date(2024, 1, 31)),
    (datetime.datetime(2024, 1, 31, 12), "dmy", datetime.date(2024, 1, 31)),
    (datetime.date(2024, 1, 31), "dmy", datetime.date(2024, 1, 31)),
    ("", "dmy", None),
    (None, "dmy", None),
])
def test_dates_in_common_layouts_and_excel_serials(cell, order, day):
    assert parse_date(cell, date_order=order) == day


@pytest.mark.parametrize("cell", ["31/01/2024x", "2024-02-30", "01/31/2024", "tomorrow", "0"])
def test_dates_that_do_not_parse_are_rejects(cell):
    with pytest.raises(RowError, match="date"):
        parse_date(cell, date_order="dmy")


@pytest.mark.parametrize(("letters", "index"), [("A", 0), ("Z", 25), ("AA", 26), ("ab", 27)])
def test_column_letters(letters, index):
    assert column_letter_index(letters) == index
    assert column_letter(index) == letters.upper()


def test_mapping_text_is_parsed_and_checked():
    assert mapping_parse("code=A, name=Назва ,rate=C") == {"code": "A", "name": "Назва", "rate": "C"}
    with pytest.raises(MappingError, match="unknown field"):
        mapping_parse("code=A,price=B")
    with pytest.raises(MappingError, match="twice"):
        mapping_parse("code=A,code=B")
    with pytest.raises(MappingError, match="FIELD=COLUMN"):
        mapping_parse("code")


def test_columns_are_headers_in_any_language_or_letters():
    header = ["Код", "Назва", "Ціна"]
    columns = columns_resolve({"code": "код", "name": "B", "rate": "Ціна"}, header,
                              options=options())
    assert columns == {"code": 0, "name": 1, "rate": 2}


def test_a_column_that_is_neither_header_nor_letter_is_refused_naming_the_headers():
    with pytest.raises(MappingError, match="the headers are Код, Ціна"):
        columns_resolve({"code": "Code", "rate": "Ціна"}, ["Код", "Ціна"], options=options())


def test_rate_column_is_required_unless_codes_only_or_a_rate_value():
    with pytest.raises(MappingError, match="no rate column"):
        columns_resolve({"code": "A"}, None, options=options())
    assert columns_resolve({"code": "A"}, None, options=options(codes_only=True)) == {"code": 0}
    assert columns_resolve({"code": "A"}, None, options=options(rate_value=Decimal(1))) == {"code": 0}


def test_rows_map_numbers_rows_as_the_spreadsheet_and_rejects_the_later_duplicate():
    rows = [
        ["code", "name", "rate", "type"],
        ["380", "Ukraine", "1,5", ""],
        ["", "", "", ""],
        ["38050-38051", "Mobile", "2", "mobile"],
        ["38051", "Mobile again", "2", ""],
        ["", "Nameless", "1", ""],
        ["44", "UK", "x", ""],
        ["45", "DK", "1", "satellite"],
        ["46", "SE", "1", "", "extra"],
    ]
    mapped = rows_map(rows, mapping={"code": "code", "name": "name", "rate": "rate",
                                     "calltype": "type"}, options=options())
    assert [(r.row, r.code, r.tariff, r.rate, r.call_type, r.valid_from) for r in mapped.rows] == [
        (2, "380", "Ukraine", Decimal("1.5"), None, TODAY),
        (4, "38050", "Mobile", Decimal("2"), 6, TODAY),
        (4, "38051", "Mobile", Decimal("2"), 6, TODAY),
        (9, "46", "SE", Decimal("1"), None, TODAY),
    ]
    assert mapped.rejected == [
        {"row": 5, "reason": "code 38051 is already in row 4"},
        {"row": 6, "reason": "empty code"},
        {"row": 7, "reason": "rate 'x' is not a number"},
        {"row": 8, "reason": "unknown call type 'satellite' (3 local, 4 long-distance, "
                            "5 international, 6 mobile)"},
    ]


def test_same_code_in_both_directions_is_not_a_duplicate():
    rows = [["380", "UA", "1", "out"], ["380", "UA in", "0.5", "in"]]
    mapped = rows_map(rows, mapping={"code": "A", "name": "B", "rate": "C", "direction": "D"},
                      options=options(has_header=False))
    assert [(r.row, r.code, r.direction) for r in mapped.rows] == [(1, "380", 0), (2, "380", 1)]


def test_a_code_twice_in_one_cell_rejects_the_row():
    mapped = rows_map([["380,380", "UA", "1"]], mapping={"code": "A", "name": "B", "rate": "C"},
                      options=options(has_header=False))
    assert mapped.rejected == [{"row": 1, "reason": "code 380 is twice in this row"}]


def test_dates_of_a_row_are_checked():
    rows = [["c", "from", "to", "r"], ["380", "2024-02-01", "2024-01-01", "1"],
            ["381", "soon", "", "1"], ["382", "01.02.2024", "29.02.2024", "1"]]
    mapped = rows_map(rows, mapping={"code": "c", "valid_from": "from", "valid_to": "to",
                                     "rate": "r"}, options=options())
    assert mapped.rejected == [
        {"row": 2, "reason": "valid to 2024-01-01 is before valid from 2024-02-01"},
        {"row": 3, "reason": "date 'soon' not understood"},
    ]
    (row,) = mapped.rows
    assert (row.valid_from, row.valid_to, row.tariff) == (
        datetime.date(2024, 2, 1), datetime.date(2024, 2, 29), "382")


def test_tariff_name_defaults_to_the_name_and_rate_value_applies_to_all():
    mapped = rows_map([["UA", "380"]], mapping={"code": "B", "name": "A"},
                      options=options(has_header=False, rate_value=Decimal("0.5")))
    (row,) = mapped.rows
    assert (row.name, row.tariff, row.rate) == ("UA", "UA", Decimal("0.5"))
