"""R2.7: the Asterisk Master.csv parser (observers/parsers/asterisk.py, pure): bytes in,
records or rejects."""
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers.asterisk import FIELDS, NEW_COLUMNS, parse, peer
from observers.parsers.base import CallRecord, Reject
from tests.conftest import TESTDATA, shared_testdata
from tests.observers.parsing import (
    assert_records_or_rejects_in_line_order,
    field_text,
    records_and_rejects,
)

# Extension 101 dials 9 044 123 45 67 out through the PJSIP trunk "kyivstar".
CALL = {
    "accountcode": "", "src": "101", "dst": "90441234567", "dcontext": "from-internal",
    "clid": '"Ivan Petrenko" <101>', "channel": "PJSIP/101-00000001",
    "dstchannel": "PJSIP/kyivstar-00000002", "lastapp": "Dial",
    "lastdata": "PJSIP/0441234567@kyivstar,60", "start": "2024-06-17 10:00:00",
    "answer": "2024-06-17 10:00:05", "end": "2024-06-17 10:01:06", "duration": 66,
    "billsec": 61, "disposition": "ANSWERED", "amaflags": "DOCUMENTATION",
    "uniqueid": "1718607600.1", "userfield": "", "peeraccount": "",
    "linkedid": "1718607600.1", "sequence": 7,
}
UNIQUEID = ("uniqueid",)
USERFIELD = ("userfield",)
BOTH = ("uniqueid", "userfield")
# The layouts of cdr_csv by the [csv] options loguniqueid, loguserfield, newcdrcolumns.
LAYOUTS = {
    16: FIELDS, 17: FIELDS + UNIQUEID, 18: FIELDS + BOTH, 19: FIELDS + NEW_COLUMNS,
    20: FIELDS + UNIQUEID + NEW_COLUMNS, 21: FIELDS + BOTH + NEW_COLUMNS,
}


def cdr_line(names=LAYOUTS[18], **fields) -> str:
    """One line as cdr_csv writes it: strings quoted (quotes doubled), numbers bare, an
    absent time as an empty unquoted field."""
    values = {**CALL, **fields}

    def written(name):
        value = values[name]
        if isinstance(value, int):
            return str(value)
        if name in ("start", "answer", "end") and not value:
            return ""
        return '"' + value.replace('"', '""') + '"'

    return ",".join(written(name) for name in names)


def cdr_file(*lines: str, newline: str = "\n", final_newline: bool = True) -> bytes:
    return (newline.join(lines) + (newline if final_newline else "")).encode("utf-8")


def parsed(data: bytes, options=None):
    return records_and_rejects(parse(data, options))


# --- real samples ----------------------------------------------------------------------

def test_real_testsuite_master_csv_is_two_answered_console_calls():
    # given the Asterisk testsuite's Master.csv (18 fields: uniqueid and userfield)
    data = shared_testdata("asterisk/testsuite_Master.csv").read_bytes()
    # when parsed
    records, rejects = parsed(data)
    # then two answered 7 s calls from the console to extension 1, in local time
    assert rejects == []
    assert [(r.start, r.duration, r.answered, r.extension, r.dialled, r.origin_trunk)
            for r in records] == [
        (datetime(2010, 4, 2, 0, 26, 32), 7, True, "", "1", "dsp"),
        (datetime(2010, 4, 2, 0, 34, 2), 7, True, "", "1", "dsp"),
    ]
    assert [r.source_key.split("/")[0] for r in records] == ["1270167992.0", "1270168442.0"]


def test_real_testsuite_dispositions_give_answered_and_unanswered_calls():
    # given five lines of one channel: ANSWERED twice, FAILED, NO ANSWER, BUSY, with the
    # caller ID `"Test User" <test>` written with doubled quotes
    data = shared_testdata("asterisk/testsuite_good.csv").read_bytes()
    # when parsed
    records, rejects = parsed(data)
    # then only ANSWERED calls are answered and have talk time (billsec)
    assert rejects == []
    assert [(r.answered, r.duration) for r in records] == [
        (True, 5), (True, 7), (False, 0), (False, 0), (False, 0)]
    assert {(r.extension, r.dialled, r.origin_trunk) for r in records} == {("test", "100", "test")}
    # and, though they share one uniqueid, each record keeps its own key (else the
    # pipeline would drop four of them as duplicates)
    assert len({r.source_key for r in records}) == 5
    assert all(r.source_key.startswith("1231977075.0/") for r in records)


def test_real_unterminated_quote_is_rejected_and_good_lines_around_it_still_parse():
    # given the testsuite's malformed line (it ends inside a quote) between good lines
    good = shared_testdata("asterisk/testsuite_good.csv").read_bytes().splitlines()
    buggy = shared_testdata("asterisk/testsuite_buggy.csv").read_bytes().rstrip(b"\n")
    data = b"\n".join([good[0], buggy, good[1]]) + b"\n"
    # when parsed
    records, rejects = parsed(data)
    # then the good lines are calls and the buggy one a reject on line 2, saying why
    assert [r.duration for r in records] == [5, 7]
    assert rejects == [Reject(2, buggy.decode(),
                              "a quoted field is not closed before the end of the line")]


# --- layouts ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("count", "key"),
    [
        (16, "sha256:"),  # no id at all: a digest of the record
        (17, "1718607600.1/"),  # uniqueid: it plus a digest
        (18, "1718607600.1/"),
        (19, "1718607600.1/7"),  # linkedid and sequence
        (20, "1718607600.1/7"),  # uniqueid and sequence
        (21, "1718607600.1/7"),
    ],
)
def test_every_cdr_csv_layout_is_told_by_its_field_count(count, key):
    # given a line in each layout cdr.conf's [csv] options give
    line = cdr_line(LAYOUTS[count])
    # when parsed
    (record,) = parsed(cdr_file(line))[0]
    # then the call is read the same, and the key uses what ids the layout has
    assert (record.extension, record.dialled, record.trunk, record.origin_trunk,
            record.duration, record.answered) == ("101", "90441234567", "kyivstar", "101", 61,
                                                  True)
    assert record.source_key.startswith(key)
    if key.endswith("/7"):
        assert record.source_key == key


def test_seventeen_fields_ending_in_a_user_field_are_not_taken_for_a_uniqueid():
    # given 17 fields whose last is a userfield (loguserfield without loguniqueid)
    line = cdr_line(FIELDS + USERFIELD, userfield="project-42")
    # when parsed; then there is no uniqueid: the key is a digest
    (record,) = parsed(cdr_file(line))[0]
    assert record.source_key.startswith("sha256:")


@pytest.mark.parametrize(
    ("options", "uniqueid"),
    [({"loguniqueid": True}, True), ({"loguniqueid": "no"}, False),
     ({"loguserfield": "yes"}, False), ({"loguserfield": False}, True)],
)
def test_options_say_what_the_seventeenth_field_is(options, uniqueid):
    # given 17 fields whose last could be either, and the [csv] options of the PBX
    line = cdr_line(FIELDS + UNIQUEID, uniqueid="ABC")
    # when parsed with those options
    (record,) = parsed(cdr_file(line), options)[0]
    # then the field is a uniqueid (in the key) exactly when the options say so
    assert record.source_key.startswith("ABC/") is uniqueid


def test_usegmtime_gives_aware_utc_start_and_local_time_otherwise():
    # given one line; when parsed with and without usegmtime
    data = cdr_file(cdr_line())
    (utc,) = parsed(data, {"usegmtime": True})[0]
    (local,) = parsed(data)[0]
    # then the same wall time is UTC (aware) or the PBX's local time (naive)
    assert utc.start == datetime(2024, 6, 17, 10, 0, 0, tzinfo=UTC)
    assert local.start == datetime(2024, 6, 17, 10, 0, 0)


def test_synthetic_newcdrcolumns_file_gives_outgoing_unanswered_incoming_and_internal():
    # given a 21-field Master.csv written for the tests: an outgoing call over the trunk,
    # an unanswered one, an incoming one from the trunk, and an internal one
    data = (TESTDATA / "asterisk/newcdrcolumns_Master.csv").read_bytes()
    # when parsed
    records, rejects = parsed(data)
    # then each is the caller, the called, the trunk out and the trunk in, as recorded
    assert rejects == []
    assert [(r.source_key, r.extension, r.dialled, r.trunk, r.origin_trunk, r.duration,
             r.answered) for r in records] == [
        ("1718607600.1/7", "101", "90441234567", "kyivstar", "101", 61, True),
        ("1718607900.3/8", "101", "90671234567", "kyivstar", "101", 0, False),
        ("1718611200.5/9", "+380501234567", "102", "102", "kyivstar", 120, True),
        ("1718614800.7/10", "101", "102", "102", "101", 30, True),
    ]


# --- fields ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("channel", "name"),
    [
        ("SIP/trunk-00000001", "trunk"),
        ("PJSIP/kyivstar-0000000a", "kyivstar"),
        ("PJSIP/office-b-0000000a", "office-b"),
        ("IAX2/provider-1234", "provider"),
        ("DAHDI/1-1", "DAHDI/1"),
        ("DAHDI/i1/0441234567-1a", "DAHDI/i1"),
        ("Local/100@from-internal-00000001;2", "100@from-internal"),
        ("SIP/trunk-00000001<ZOMBIE>", "trunk"),
        ("Console/dsp", "dsp"),
        ("", ""),
    ],
)
def test_channel_names_give_the_peer_or_trunk(channel, name):
    # given a channel name; when its peer is taken; then it is the trunk or peer name
    assert peer(channel) == name


def test_unanswered_call_has_no_talk_time_and_an_empty_answer_time():
    # given a NO ANSWER line: empty answer time, billsec 0
    line = cdr_line(answer="", billsec=0, disposition="NO ANSWER")
    # when parsed
    (record,) = parsed(cdr_file(line))[0]
    # then it is unanswered with 0 s
    assert (record.answered, record.duration) == (False, 0)


def test_caller_number_comes_from_the_caller_id_when_src_is_empty():
    # given a line whose src is empty but whose clid has the number
    line = cdr_line(src="", clid='"Olena" <+380501234567>')
    # when parsed; then the caller is the number in the caller ID
    (record,) = parsed(cdr_file(line))[0]
    assert record.extension == "+380501234567"


def test_header_line_of_column_names_is_skipped():
    # given a file with a header line of the column names, as a spreadsheet export has
    data = cdr_file(",".join(LAYOUTS[18]), cdr_line())
    # when parsed; then the header is neither a call nor a reject
    records, rejects = parsed(data)
    assert (len(records), rejects) == (1, [])


def test_parsing_twice_gives_the_same_keys():
    # given lines without a sequence (digest keys); when parsed twice; then same keys
    data = cdr_file(cdr_line(), cdr_line(billsec=5), cdr_line(LAYOUTS[16]))
    first, second = parsed(data)[0], parsed(data)[0]
    assert [r.source_key for r in first] == [r.source_key for r in second]
    assert len({r.source_key for r in first}) == 3


# --- bad lines among good ones ---------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('"","101","102"', "expected 16 to 21 fields (the layouts of cdr_csv), found 3"),
        (cdr_line() + ',"x","y","z","w"', "expected 16 to 21 fields (the layouts of cdr_csv), "
                                          "found 22"),
        (cdr_line(start="17.06.2024 10:00"),
         "start '17.06.2024 10:00' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        (cdr_line(start=""), "start is empty"),
        (cdr_line(answer="soon"), "answer 'soon' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        (cdr_line(billsec="12.5"), "billsec '12.5' is not a whole number of seconds"),
        (cdr_line(dst="9" * 65), "dst is 65 characters long, more than 64"),
        (cdr_line(src="1" * 65), "src is 65 characters long, more than 64"),
        (cdr_line(dstchannel="SIP/" + "t" * 101 + "-00000001"),
         "the peer of dstchannel is 101 characters long, more than 100"),
        (cdr_line(channel="SIP/" + "t" * 101 + "-00000001"),
         "the peer of channel is 101 characters long, more than 100"),
        (cdr_line(start="2099-01-01 00:00:00"),
         "start 2099-01-01 00:00:00 is before 1990 or in the future"),
        (cdr_line(start="1989-12-31 23:59:59"),
         "start 1989-12-31 23:59:59 is before 1990 or in the future"),
        (cdr_line(billsec=24 * 3600 + 1), "duration 86401 s is out of range"),
        (cdr_line(billsec="9" * 5000), f"billsec {'9' * 40 + '…'!r} is out of range"),
        (cdr_line().replace('"Dial"', '"Di"al"'), "a closing quote is not followed by a comma"),
    ],
)
def test_malformed_line_is_rejected_with_its_line_number_and_reason(line, reason):
    # given a malformed line between two good ones
    data = cdr_file(cdr_line(uniqueid="1.1"), line, cdr_line(uniqueid="3.3"))
    # when parsed
    records, rejects = parsed(data)
    # then the good ones are calls and the bad one a reject on line 2 that names the field
    assert [r.source_key.split("/")[0] for r in records] == ["1.1", "3.3"]
    assert rejects == [Reject(2, line, reason)]


# --- bytes -----------------------------------------------------------------------------

@pytest.mark.parametrize("final_newline", [True, False])
def test_bom_crlf_and_missing_final_newline_are_accepted(final_newline):
    # given a file saved on Windows: UTF-8 BOM, CRLF, with or without a last line end
    data = b"\xef\xbb\xbf" + cdr_file(cdr_line(uniqueid="1.1"), cdr_line(uniqueid="2.2"),
                                      newline="\r\n", final_newline=final_newline)
    # when parsed
    records, rejects = parsed(data)
    # then the first field has no BOM and the last no CR
    assert rejects == []
    assert [(r.source_key.split("/")[0], r.extension) for r in records] == [
        ("1.1", "101"), ("2.2", "101")]
    assert parsed(data)[0] == records


def test_windows_1251_caller_id_is_read_next_to_utf8():
    # given a Windows-1251 caller ID name on one line and a UTF-8 one on the next
    cp1251 = cdr_line(uniqueid="1.1", clid='"Іван Петренко" <101>').encode("cp1251")
    utf8 = cdr_line(uniqueid="2.2", clid='"Олена" <102>', src="102").encode("utf-8")
    # when parsed
    records, rejects = parsed(cp1251 + b"\n" + utf8 + b"\n")
    # then both are calls with their numbers intact
    assert rejects == []
    assert [r.extension for r in records] == ["101", "102"]


def test_empty_and_blank_input_gives_nothing():
    # given no data or only blank lines; when parsed; then nothing
    assert list(parse(b"")) == []
    assert list(parse(b"\r\n  \n")) == []


# --- laws ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([None, "not a mapping", {"usegmtime": True},
                                                  {"loguniqueid": "no"}]))
def test_parser_never_raises_on_arbitrary_bytes(data, options):
    # given any bytes at all; when parsed
    items = list(parse(data, options))
    # then every item is a record or a reject, at most one per line, in line order
    assert_records_or_rejects_in_line_order(items, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(field_text, min_size=14, max_size=23))
def test_parser_never_raises_on_arbitrary_fields(fields):
    # given a line of arbitrary fields, about as many as a Master.csv line has
    data = ",".join(fields).encode("utf-8")
    # when parsed; then records or rejects, never an exception
    items = list(parse(data))
    assert all(isinstance(i, CallRecord | Reject) for i in items)


@settings(max_examples=100, deadline=None)
@given(start=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 12, 31)),
       seconds=st.integers(0, 24 * 3600), count=st.sampled_from(sorted(LAYOUTS)))
def test_start_and_billsec_round_trip_in_every_layout(start, seconds, count):
    # given an answered call with any past start and any talk time up to 24 h
    start = start.replace(microsecond=0)
    line = cdr_line(LAYOUTS[count], start=f"{start:%Y-%m-%d %H:%M:%S}", billsec=seconds)
    # when parsed
    (record,) = list(parse(line.encode()))
    # then start and talk time are exactly those written
    assert isinstance(record, CallRecord)
    assert (record.start, record.duration) == (start, seconds)
