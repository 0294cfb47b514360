"""R2.7: the 3CX CDR parser (observers/parsers/threecx.py, pure): bytes in, records or rejects."""
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers import parser_for
from observers.parsers.base import CallRecord, Reject
from observers.parsers.threecx import parse
from tariffs.choices import Direction
from tests.conftest import shared_testdata
from tests.observers.parsing import (
    assert_records_or_rejects_in_line_order,
    field_text,
    records_and_rejects,
)
from tests.observers.threecx_cdr import INCOMING, INTERNAL, OUTGOING, cdr_file, cdr_line


def parsed(data: bytes):
    return records_and_rejects(parse(data))


def test_real_3cx_sample_is_one_outgoing_call():
    # given the real 3CX CDR file (one call, then a blank line)
    data = shared_testdata("3cx/cdr-240617055949.288831.log.old.csv").read_bytes()
    # when parsed
    records, rejects = parsed(data)
    # then it is exactly one outgoing call from 10016 to +46703014082 over line 10020
    assert rejects == []
    assert records == [CallRecord(
        source_key="Call 288831|4cc2c72490010000_26808",
        start=datetime(2024, 6, 17, 5, 59, 49),
        duration=25,
        direction=Direction.OUTGOING,
        extension="10016",
        dialled="+46703014082",
        trunk="10020",
        answered=True,
    )]


@pytest.mark.parametrize(
    ("base", "direction", "extension", "dialled", "trunk", "duration"),
    [
        # extension 101 dials 9 044 123 45 67 out through line 10000
        (OUTGOING, Direction.OUTGOING, "101", "90441234567", "10000", 61),
        # a mobile calls in on line 10000 and extension 102 answers
        (INCOMING, Direction.INCOMING, "102", "+380501234567", "10000", 120),
        # 101 calls 102: no line involved
        (INTERNAL, Direction.INTERNAL, "101", "102", "", 30),
    ],
)
def test_line_gives_direction_parties_trunk_and_duration(base, direction, extension, dialled,
                                                         trunk, duration):
    # given one CDR line of each kind
    data = cdr_file(cdr_line(base))
    # when parsed
    records, rejects = parsed(data)
    # then the record says who called whom, over which line, for how long
    assert rejects == []
    (record,) = records
    assert (record.direction, record.extension, record.dialled, record.trunk, record.duration) \
        == (direction, extension, dialled, trunk, duration)
    assert record.start == datetime(2024, 6, 17, 10, 0, 0)
    assert record.source_key == f"{base['historyid']}|{base['callid']}"


def test_call_forwarded_outside_is_paid_by_the_extension_that_forwarded_it():
    # given a call coming in on line 10000 to 102, which forwards it to a mobile over 10001
    line = cdr_line(INCOMING, final_type="Line", final_number="+380671234567",
                    final_dn="10001",
                    chain="Chain: +380501234567;Ext.102;+380671234567;")
    # when parsed
    (record,) = parsed(cdr_file(line))[0]
    # then the outside leg is an outgoing call of 102 to the mobile, over the second line
    assert (record.direction, record.extension, record.dialled, record.trunk) == (
        Direction.OUTGOING, "102", "+380671234567", "10001")


def test_unanswered_call_has_zero_duration():
    # given a call that rang for 12 s and was never answered
    data = cdr_file(cdr_line(duration="00:00:12", time_answered="",
                             reason_terminated="TerminatedBySrc"))
    # when parsed
    (record,) = parsed(data)[0]
    # then its talk time is 0, and it is marked unanswered (no connection fee)
    assert (record.duration, record.answered) == (0, False)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:00:00", 0), ("00:00:59", 59), ("00:01:00", 60), ("01:02:03", 3723), ("7", 7),
     ("", 0)],
)
def test_duration_is_read_as_hh_mm_ss(value, seconds):
    # given an answered call with a duration field
    data = cdr_file(cdr_line(duration=value))
    # when parsed; then the duration is in seconds
    (record,) = parsed(data)[0]
    assert record.duration == seconds


def test_duration_in_plain_seconds_over_a_minute_is_accepted():
    # given a duration written as plain seconds, which the parser accepts ("7" above)
    data = cdr_file(cdr_line(duration="75"))
    # when parsed
    records, rejects = parsed(data)
    # then 75 s is 75 s: a plain-seconds value is not an hh:mm:ss "seconds" field
    assert rejects == []
    assert [r.duration for r in records] == [75]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024/06/17 10:00:00", datetime(2024, 6, 17, 10, 0, 0)),
        ("2024-06-17 10:00:00", datetime(2024, 6, 17, 10, 0, 0)),
        ("17.06.2024 10:00:00", datetime(2024, 6, 17, 10, 0, 0)),
    ],
)
def test_start_time_formats_are_read(value, expected):
    # given a start time in one of the formats 3CX writes
    data = cdr_file(cdr_line(time_start=value))
    # when parsed; then the start is the naive local time of the PBX
    (record,) = parsed(data)[0]
    assert record.start == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Call 9,abc,00:00:10", "expected 27 fields, found 3"),
        # two records run together on one line are not guessed apart
        (cdr_line() + cdr_line(), "expected 27 fields, found 53"),
        (cdr_line(time_start="yesterday"), "time-start 'yesterday' is not a date and time"),
        (cdr_line(time_start=""), "time-start is empty"),
        (cdr_line(time_answered="2024/13/45 10:00:00"),
         "time-answered '2024/13/45 10:00:00' is not a date and time"),
        (cdr_line(duration="1:xx"), "duration '1:xx' is not hh:mm:ss"),
        (cdr_line(duration="00:75:00"), "duration '00:75:00' is out of range"),
        (cdr_line(historyid="", callid=""), "historyid and callid are both empty"),
    ],
)
def test_malformed_line_is_rejected_with_its_reason(line, reason):
    # given one malformed line
    data = cdr_file(line)
    # when parsed
    records, rejects = parsed(data)
    # then it is a reject carrying its line number, raw text and reason
    assert records == []
    assert rejects == [Reject(1, line, reason)]


def test_unterminated_quote_is_rejected():
    # given a line whose calling number opens a quote that never closes
    line = cdr_line(from_no='"Ext.101')
    # when parsed
    records, rejects = parsed(cdr_file(line))
    # then the line is a reject, not a call with shifted fields
    assert records == []
    assert [(r.line_number, r.raw) for r in rejects] == [(1, line)]
    assert "CSV" in rejects[0].reason or "fields" in rejects[0].reason


def test_malformed_lines_are_rejected_and_the_others_still_parse():
    # given five lines: good, too few fields, blank, bad duration, good
    good_1 = cdr_line(historyid="Call 1")
    short = "Call 2,abc"
    bad_duration = cdr_line(historyid="Call 4", duration="ten")
    good_5 = cdr_line(INCOMING, historyid="Call 5")
    data = cdr_file(good_1, short, "", bad_duration, good_5)
    # when parsed
    records, rejects = parsed(data)
    # then the good lines are records and the bad ones rejects with their file line numbers
    assert [r.source_key.split("|")[0] for r in records] == ["Call 1", "Call 5"]
    assert [(r.line_number, r.raw) for r in rejects] == [(2, short), (4, bad_duration)]
    assert rejects[0].reason == "expected 27 fields, found 2"
    assert rejects[1].reason == "duration 'ten' is not hh:mm:ss"


def test_bom_and_crlf_line_ends_are_removed():
    # given a file written on Windows: UTF-8 BOM and CRLF line ends
    data = b"\xef\xbb\xbf" + cdr_file(cdr_line(historyid="Call 1"),
                                      cdr_line(INCOMING, historyid="Call 2"), newline="\r\n")
    # when parsed
    records, rejects = parsed(data)
    # then the first id has no BOM and the last field no CR
    assert rejects == []
    assert [r.source_key for r in records] == [
        f"Call 1|{OUTGOING['callid']}", f"Call 2|{INCOMING['callid']}"]
    assert [r.extension for r in records] == ["101", "102"]


def test_windows_1251_display_names_are_read():
    # given a line whose display names are Cyrillic in Windows-1251, next to a UTF-8 one
    cp1251 = cdr_line(historyid="Call 1", from_dispname="Іван Петренко").encode("cp1251")
    utf8 = cdr_line(INCOMING, historyid="Call 2", to_dispname="Олена").encode("utf-8")
    data = cp1251 + b"\n" + utf8 + b"\n"
    # when parsed
    records, rejects = parsed(data)
    # then both are calls with their numbers intact
    assert rejects == []
    assert [(r.extension, r.dialled) for r in records] == [
        ("101", "90441234567"), ("102", "+380501234567")]


def test_reject_keeps_the_windows_1251_text_readable():
    # given a malformed line with a Windows-1251 display name
    line = cdr_line(time_start="вчора", from_dispname="Іван Петренко")
    # when parsed
    rejects = parsed(line.encode("cp1251") + b"\n")[1]
    # then the raw text kept for the operator is the Cyrillic, not mojibake
    assert [r.raw for r in rejects] == [line]
    assert rejects[0].reason == "time-start 'вчора' is not a date and time"


def test_empty_and_blank_input_gives_nothing():
    # given no data, or only blank lines; when parsed; then no records and no rejects
    assert list(parse(b"")) == []
    assert list(parse(b"\r\n  \n\n")) == []


def test_3cx_devices_get_this_parser_and_unknown_types_a_clear_error():
    # given device types; when a parser is looked up
    # then 3CX has this one, and a type without a parser says so by name
    assert parser_for("3cx") is parse
    with pytest.raises(LookupError, match="no CDR parser for device type 'mitel'"):
        parser_for("mitel")


# --- laws ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parser_never_raises_on_arbitrary_bytes(data):
    # given any bytes at all
    # when parsed
    items = list(parse(data))
    # then every item is a record or a reject, at most one per line, in line order
    assert_records_or_rejects_in_line_order(items, data)


@settings(max_examples=200, deadline=None)
@given(st.lists(field_text, min_size=0, max_size=30))
def test_parser_never_raises_on_arbitrary_fields(fields):
    # given a line of any number of arbitrary comma-separated fields
    data = ",".join(fields).encode("utf-8")
    # when parsed; then it gives one record or one reject, never an exception
    items = list(parse(data))
    assert len(items) <= 1 + data.count(b"\n")
    assert all(isinstance(i, CallRecord | Reject) for i in items)


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 12, 31)),
    seconds=st.integers(0, 24 * 3600),
    base=st.sampled_from([OUTGOING, INCOMING, INTERNAL]),
)
def test_start_and_duration_round_trip(start, seconds, base):
    # given a well-formed answered call with any past start and any duration up to 24 h
    start = start.replace(microsecond=0)
    hh, rest = divmod(seconds, 3600)
    duration = f"{hh:02d}:{rest // 60:02d}:{rest % 60:02d}"
    line = cdr_line(base, time_start=f"{start:%Y/%m/%d %H:%M:%S}",
                    time_answered=f"{start + timedelta(seconds=1):%Y/%m/%d %H:%M:%S}",
                    duration=duration)
    # when parsed
    (record,) = list(parse(line.encode()))
    # then start and duration are exactly those written
    assert isinstance(record, CallRecord)
    assert (record.start, record.duration) == (start, seconds)


@pytest.mark.parametrize("field,value,reason", [
    ("duration", "24:00:01", "longer than 24 hours"),
    ("time-start", "1989/12/31 23:59:59", "before 1990 or in the future"),
    ("time-start", "2099/01/01 00:00:00", "before 1990 or in the future"),
    ("dial-no", "9" * 65, "dialled is 65 characters long"),
])
def test_values_the_call_table_cannot_hold_or_believe_are_rejected(field, value, reason):
    # given an otherwise good line with one implausible value
    line = cdr_line(OUTGOING, **{field.replace("-", "_"): value})
    # when parsed
    (item,) = list(parse(line.encode()))
    # then it is a reject that says why
    assert isinstance(item, Reject)
    assert reason in item.reason
