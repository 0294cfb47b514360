"""R2.7: the FreeSWITCH mod_cdr_csv parser (observers/parsers/freeswitch.py, pure): bytes in,
records or rejects."""
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers.base import CallRecord, Reject
from observers.parsers.freeswitch import ASTERISK, EXAMPLE, OPENCDRRATE, gateway, parse
from tests.conftest import TESTDATA
from tests.observers.parsing import (
    assert_records_or_rejects_in_line_order,
    field_text,
    records_and_rejects,
)

# Extension 1001 dials 0441234567 out through the gateway "kyivstar".
CALL = {
    "caller_id_name": "Ivan Petrenko", "caller_id_number": "1001",
    "destination_number": "0441234567", "context": "default",
    "start_stamp": "2024-06-17 10:00:00", "answer_stamp": "2024-06-17 10:00:05",
    "end_stamp": "2024-06-17 10:01:06", "duration": "66", "billsec": "61",
    "hangup_cause": "NORMAL_CLEARING", "uuid": "7f4de4bc-2c0a-11ef-9a3e-0242ac120002",
    "bleg_uuid": "7f4de5e8-2c0a-11ef-9a3e-0242ac120002", "accountcode": "",
    "read_codec": "PCMA", "write_codec": "PCMA",
    # the asterisk template
    "caller_id": '"Ivan Petrenko" <1001>', "channel_name": "sofia/internal/1001@10.0.0.5",
    "bridge_channel": "sofia/gateway/kyivstar/0441234567", "last_app": "bridge",
    "last_arg": "sofia/gateway/kyivstar/0441234567", "amaflags": "", "userfield": "",
    # the opencdrrate template
    "signal_bond": "", "direction": "inbound", "ani": "1001", "network_addr": "10.0.0.5",
    "original_caller_id_name_initial": "I", "sip_gateway_name": "kyivstar",
}


def cdr_line(names=EXAMPLE, **fields) -> str:
    """One line as mod_cdr_csv writes it: every value quoted, inner quotes NOT escaped."""
    values = {**CALL, **fields}
    return ",".join(f'"{values[name]}"' for name in names)


def cdr_file(*lines: str, newline: str = "\n", final_newline: bool = True) -> bytes:
    return (newline.join(lines) + (newline if final_newline else "")).encode("utf-8")


def parsed(data: bytes, options=None):
    return records_and_rejects(parse(data, options))


# --- templates -------------------------------------------------------------------------

def test_synthetic_example_file_gives_answered_unanswered_and_incoming_calls():
    # given a Master.csv in the default `example` template, written for the tests
    data = (TESTDATA / "freeswitch/example_Master.csv").read_bytes()
    # when parsed with no options
    records, rejects = parsed(data)
    # then each line is a call keyed by its uuid, with billsec as talk time
    assert rejects == []
    assert records == [
        CallRecord(source_key="7f4de4bc-2c0a-11ef-9a3e-0242ac120002",
                   start=datetime(2024, 6, 17, 10, 0, 0), duration=61, direction=None,
                   extension="1001", dialled="0441234567", answered=True),
        CallRecord(source_key="a1c2e3f4-2c0a-11ef-9a3e-0242ac120002",
                   start=datetime(2024, 6, 17, 10, 5, 0), duration=0, direction=None,
                   extension="1001", dialled="0671234567", answered=False),
        CallRecord(source_key="b2d3e4f5-2c0a-11ef-9a3e-0242ac120002",
                   start=datetime(2024, 6, 17, 11, 0, 0), duration=120, direction=None,
                   extension="+380501234567", dialled="1002", answered=True),
    ]


@pytest.mark.parametrize("count", [13, 15, 17, 20])
def test_example_template_and_those_sharing_its_start_are_read(count):
    # given a line of the built-in default (13 fields), example (15), linksys (17) or
    # snom (20) template: the same first 13 fields
    names = (EXAMPLE + ("sip_user_agent", "x", "y", "z", "w"))[:count]
    line = cdr_line(names, sip_user_agent="Yealink", x="", y="", z="", w="")
    # when parsed
    (record,) = parsed(cdr_file(line))[0]
    # then the call is read from those 13 fields
    assert (record.source_key, record.extension, record.dialled, record.duration) == (
        CALL["uuid"], "1001", "0441234567", 61)


def test_asterisk_template_gives_the_gateways_in_and_out():
    # given a line of the `asterisk` template, whose caller_id holds unescaped quotes
    line = cdr_line(ASTERISK)
    # when parsed with that template
    records, rejects = parsed(cdr_file(line), {"template": "asterisk"})
    # then the trunk is the bridged gateway and the origin the caller's host
    assert rejects == []
    assert records == [CallRecord(
        source_key=CALL["uuid"], start=datetime(2024, 6, 17, 10, 0, 0), duration=61,
        direction=None, extension="1001", dialled="0441234567", trunk="kyivstar",
        answered=True, origin_trunk="10.0.0.5")]


def test_opencdrrate_template_starts_at_the_answer_or_else_the_end():
    # given two `opencdrrate` lines (no start time in this template): one answered, one not
    answered = cdr_line(OPENCDRRATE)
    missed = cdr_line(OPENCDRRATE, uuid="u-2", answer_stamp="", billsec="0")
    # when parsed with that template
    records, rejects = parsed(cdr_file(answered, missed), {"template": "opencdrrate"})
    # then the answered call starts when answered, the missed one when it ended
    assert rejects == []
    assert [(r.source_key, r.start, r.duration, r.answered, r.extension, r.trunk)
            for r in records] == [
        (CALL["uuid"], datetime(2024, 6, 17, 10, 0, 5), 61, True, "1001", "kyivstar"),
        ("u-2", datetime(2024, 6, 17, 10, 1, 6), 0, False, "1001", "kyivstar"),
    ]


def test_unknown_template_rejects_every_line_with_the_reason():
    # given a profile set to a template this parser does not know
    data = cdr_file(cdr_line(), cdr_line(uuid="u-2"))
    # when parsed; then every line is kept as a reject saying which setting is wrong
    records, rejects = parsed(data, {"template": "snom"})
    assert records == []
    assert [(r.line_number, r.reason) for r in rejects] == [
        (n, "the parser option template 'snom' is not one of example, asterisk, opencdrrate")
        for n in (1, 2)]


def test_line_of_another_template_is_rejected_not_misread():
    # given an `asterisk` template line read as `example`
    line = cdr_line(ASTERISK)
    # when parsed with the default template; then it is a reject naming the count
    (reject,) = parsed(cdr_file(line))[1]
    assert reject.reason == "expected 13 or 15 or 17 or 20 fields (the example template), found 18"


# --- fields ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("answer", "billsec", "answered", "duration"),
    [
        ("2024-06-17 10:00:05", "61", True, 61),
        ("", "0", False, 0),
        ("2024-06-17 10:00:05", "0", True, 0),  # answered and hung up within the second
        ("1970-01-01 03:00:00", "0", False, 0),  # old releases: the epoch for "never"
        ("", "12", True, 12),  # answer time lost (a spreadsheet), talk time kept
    ],
)
def test_answered_when_there_is_an_answer_time_or_talk_time(answer, billsec, answered, duration):
    # given a line with these answer_stamp and billsec
    line = cdr_line(answer_stamp=answer, billsec=billsec)
    # when parsed
    (record,) = parsed(cdr_file(line))[0]
    # then answered and talk time follow them
    assert (record.answered, record.duration) == (answered, duration)


def test_unescaped_quotes_in_the_caller_name_do_not_break_the_line():
    # given a caller name with quotes, written as is (mod_cdr_csv does not escape them)
    line = cdr_line(caller_id_name='Bob "the boss" Smith')
    # when parsed
    records, rejects = parsed(cdr_file(line))
    # then the fields are still found
    assert rejects == []
    assert [(r.extension, r.dialled) for r in records] == [("1001", "0441234567")]


def test_file_re_saved_by_a_spreadsheet_is_read():
    # given a line without quotes and with a spreadsheet's short dates, after a header
    header = ",".join(EXAMPLE)
    line = ("Ivan Petrenko,1001,0441234567,default,2020/2/10 22:41,2020/2/10 22:41,"
            "2020/2/10 22:43,125,118,NORMAL_CLEARING,5b8f3c2e-4c3a-11ea-b77f-2e728ce88125,,,"
            "PCMA,PCMA")
    # when parsed
    records, rejects = parsed(cdr_file(header, line))
    # then the header is skipped and the call read, to the minute
    assert rejects == []
    assert [(r.start, r.duration, r.source_key) for r in records] == [
        (datetime(2020, 2, 10, 22, 41), 118, "5b8f3c2e-4c3a-11ea-b77f-2e728ce88125")]


def test_template_variables_as_header_are_skipped():
    # given a header line of the template's variables, `${...}` and all
    header = ",".join(f'"${{{name}}}"' for name in EXAMPLE)
    # when parsed; then only the call comes out
    records, rejects = parsed(cdr_file(header, cdr_line()))
    assert (len(records), rejects) == (1, [])


def test_record_without_uuid_gets_a_stable_digest_key():
    # given two different lines whose uuid was lost
    data = cdr_file(cdr_line(uuid=""), cdr_line(uuid="", billsec="5"))
    # when parsed twice
    first, second = parsed(data)[0], parsed(data)[0]
    # then each has its own key, the same every time
    assert [r.source_key for r in first] == [r.source_key for r in second]
    assert len({r.source_key for r in first}) == 2
    assert all(r.source_key.startswith("sha256:") for r in first)


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        ("sofia/gateway/kyivstar/0441234567", "kyivstar"),
        ("sofia/external/0441234567@sip.provider.net", "sip.provider.net"),
        ("sofia/internal/1001@10.0.0.5", "10.0.0.5"),
        ("loopback/1001-a", "loopback/1001-a"),
        ("", ""),
    ],
)
def test_channel_names_give_the_gateway_or_far_host(channel, name):
    # given a Sofia channel name; when its gateway is taken; then it is the trunk name
    assert gateway(channel) == name


# --- bad lines among good ones ---------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('"a","b","c"', "expected 13 or 15 or 17 or 20 fields (the example template), found 3"),
        (cdr_line(start_stamp="yesterday"),
         "start_stamp 'yesterday' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        (cdr_line(start_stamp=""), "start_stamp is empty"),
        (cdr_line(answer_stamp="10:00"),
         "answer_stamp '10:00' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        (cdr_line(end_stamp="2024-13-01 00:00:00"),
         "end_stamp '2024-13-01 00:00:00' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        (cdr_line(billsec="-3"), "billsec '-3' is not a whole number of seconds"),
        (cdr_line(destination_number="9" * 65),
         "destination_number is 65 characters long, more than 64"),
        (cdr_line(caller_id_number="1" * 65), "caller_id_number is 65 characters long, more than 64"),
        (cdr_line(start_stamp="2099-01-01 00:00:00"),
         "start 2099-01-01 00:00:00 is before 1990 or in the future"),
        (cdr_line(billsec=str(24 * 3600 + 1)), "duration 86401 s is out of range"),
        (cdr_line(billsec="9" * 5000), f"billsec {'9' * 40 + '…'!r} is out of range"),
        (cdr_line(uuid="u" * 201), "uuid is 201 characters long, more than 200"),
        ('"unclosed,1001', "the line is neither CSV nor quoted fields joined by commas"),
    ],
)
def test_malformed_line_is_rejected_with_its_line_number_and_reason(line, reason):
    # given a malformed line between two good ones
    data = cdr_file(cdr_line(uuid="u-1"), line, cdr_line(uuid="u-3"))
    # when parsed
    records, rejects = parsed(data)
    # then the good ones are calls and the bad one a reject on line 2 naming the field
    assert [r.source_key for r in records] == ["u-1", "u-3"]
    assert rejects == [Reject(2, line, reason)]


def test_gateway_name_too_long_is_rejected():
    # given an opencdrrate line whose gateway name is longer than a trunk can be
    line = cdr_line(OPENCDRRATE, sip_gateway_name="g" * 101)
    # when parsed; then it is a reject naming the trunk
    (reject,) = parsed(cdr_file(line), {"template": "opencdrrate"})[1]
    assert reject.reason == ("the trunk (sip_gateway_name or bridge_channel) is 101 characters "
                             "long, more than 100")


# --- bytes -----------------------------------------------------------------------------

@pytest.mark.parametrize("final_newline", [True, False])
def test_bom_crlf_and_missing_final_newline_are_accepted(final_newline):
    # given a file saved on Windows: UTF-8 BOM, CRLF, with or without a last line end
    data = b"\xef\xbb\xbf" + cdr_file(cdr_line(uuid="u-1"), cdr_line(uuid="u-2"),
                                      newline="\r\n", final_newline=final_newline)
    # when parsed
    records, rejects = parsed(data)
    # then the first field has no BOM and the last no CR
    assert rejects == []
    assert [(r.source_key, r.extension) for r in records] == [("u-1", "1001"), ("u-2", "1001")]


def test_windows_1251_caller_name_is_read_next_to_utf8():
    # given a Windows-1251 caller name on one line and a UTF-8 one on the next
    cp1251 = cdr_line(uuid="u-1", caller_id_name="Іван Петренко").encode("cp1251")
    utf8 = cdr_line(uuid="u-2", caller_id_name="Олена").encode("utf-8")
    # when parsed
    records, rejects = parsed(cp1251 + b"\n" + utf8 + b"\n")
    # then both are calls
    assert rejects == []
    assert [r.source_key for r in records] == ["u-1", "u-2"]


def test_empty_and_blank_input_gives_nothing():
    # given no data or only blank lines; when parsed; then nothing
    assert list(parse(b"")) == []
    assert list(parse(b"\r\n  \n")) == []


# --- laws ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600),
       st.sampled_from([None, "not a mapping", {"template": "asterisk"}, {"template": "opencdrrate"},
                        {"template": ["not", "a", "name"]}]))
def test_parser_never_raises_on_arbitrary_bytes(data, options):
    # given any bytes at all, with any template; when parsed
    items = list(parse(data, options))
    # then every item is a record or a reject, at most one per line, in line order
    assert_records_or_rejects_in_line_order(items, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(field_text, min_size=11, max_size=21), st.booleans(),
       st.sampled_from(["example", "asterisk", "opencdrrate"]))
def test_parser_never_raises_on_arbitrary_fields(fields, quoted, template):
    # given a line of arbitrary fields, quoted mod_cdr_csv's way or bare
    line = ",".join(f'"{f}"' if quoted else f for f in fields)
    # when parsed; then records or rejects, never an exception
    items = list(parse(line.encode("utf-8"), {"template": template}))
    assert all(isinstance(i, CallRecord | Reject) for i in items)


@settings(max_examples=100, deadline=None)
@given(start=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 12, 31)),
       seconds=st.integers(0, 24 * 3600))
def test_start_and_billsec_round_trip(start, seconds):
    # given an answered call with any past start and any talk time up to 24 h
    start = start.replace(microsecond=0)
    line = cdr_line(start_stamp=f"{start:%Y-%m-%d %H:%M:%S}", billsec=str(seconds))
    # when parsed
    (record,) = list(parse(line.encode()))
    # then start and talk time are exactly those written
    assert isinstance(record, CallRecord)
    assert (record.start, record.duration) == (start, seconds)
