"""R2.7: the Cisco CUCM CDR parser (observers/parsers/cucm.py, pure): bytes in, records or rejects."""
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers.base import CallRecord, Reject
from observers.parsers.cucm import HEADERLESS_MIN_FIELDS, STANDARD_FIELDS, parse
from tests.conftest import TESTDATA
from tests.observers.parsing import (
    assert_records_or_rejects_in_line_order,
    field_text,
    records_and_rejects,
)

# A plausible answered call: extension 1001 dials 0441234567 out through gateway GW-KYIV.
CALL = {
    **dict.fromkeys(STANDARD_FIELDS, 0),
    "cdrRecordType": 1, "globalCallID_callManagerId": 1, "globalCallID_callId": 5001,
    "origLegCallIdentifier": 20001, "destLegIdentifier": 20002,
    "dateTimeOrigination": 1718618400,  # 2024-06-17 10:00:00 UTC
    "dateTimeConnect": 1718618405, "dateTimeDisconnect": 1718618466, "duration": 61,
    "callingPartyNumber": "1001", "originalCalledPartyNumber": "90441234567",
    "finalCalledPartyNumber": "0441234567", "pkid": "11111111-2222-3333-4444-555555555555",
    "origDeviceName": "SEP001122334455", "destDeviceName": "GW-KYIV",
    "comment": "", "globalCallId_ClusterID": "StandAloneCluster",
}


def cdr_row(base: dict = CALL, names=STANDARD_FIELDS, **fields) -> str:
    """One CDR line: integers bare, strings quoted (quotes doubled), as CUCM writes them."""
    values = {**base, **fields}
    return ",".join(str(v) if isinstance(v, int) else '"' + v.replace('"', '""') + '"'
                    for v in (values[name] for name in names))


def header_lines(names=STANDARD_FIELDS) -> list[str]:
    """The two header lines: quoted names, then types (only INTEGER and VARCHAR matter)."""
    types = ("VARCHAR(50)" if isinstance(CALL.get(name, 0), str) else "INTEGER" for name in names)
    return [",".join(f'"{name}"' for name in names), ",".join(types)]


def cdr_file(*rows: str, header: bool = True, newline: str = "\n", final_newline: bool = False,
             names=STANDARD_FIELDS) -> bytes:
    """A flat file as CDR Management sends it: headers, rows, no final newline."""
    lines = [*(header_lines(names) if header else []), *rows]
    return (newline.join(lines) + (newline if final_newline else "")).encode("utf-8")


def parsed(data: bytes, options=None):
    items = list(parse(data, options))
    assert all(isinstance(i, CallRecord | Reject) for i in items)
    return records_and_rejects(items)


# --- the real sample -------------------------------------------------------------------

def test_real_cucm_sample_is_two_recording_legs_and_one_onnet_call():
    # given the real CDR flat file of a test cluster (two header lines, three records,
    # no final newline)
    data = (TESTDATA / "cucm/cdr.txt").read_bytes()
    # when parsed
    records, rejects = parsed(data)
    # then all three records are calls: two unconnected recording legs (kept: they are
    # real CDRs, their calling number is the recorder's non-digit id) and one 11 s call
    # between two phones, with times in UTC
    assert rejects == []
    assert records == [
        CallRecord(source_key="bde20536-1250-4382-af5b-3107ef569ae3",
                   start=datetime(2025, 4, 18, 16, 32, 10, tzinfo=UTC), duration=0,
                   direction=None, extension="b002179144511001", dialled="5030079981",
                   trunk="", answered=False, origin_trunk="SEPCC7F750586B7"),
        CallRecord(source_key="0a649c5c-7d37-4bb4-a50f-b8b87c109d0f",
                   start=datetime(2025, 4, 18, 16, 32, 10, tzinfo=UTC), duration=0,
                   direction=None, extension="b002179144411001", dialled="5030079981",
                   trunk="", answered=False, origin_trunk="SEPCC8E7148AD29"),
        CallRecord(source_key="ed56fecd-bd2d-48d4-ae03-7ee3766d6048",
                   start=datetime(2025, 4, 18, 16, 32, 8, tzinfo=UTC), duration=11,
                   direction=None, extension="5033466594", dialled="5033466593",
                   trunk="SEPCC8E7148AD29", answered=True, origin_trunk="SEPCC7F750586B7"),
    ]


def test_real_cmr_file_gives_no_calls_and_no_rejects():
    # given the real CMR (call diagnostics) file of the same call
    data = (TESTDATA / "cucm/cmr.txt").read_bytes()
    # when parsed; then nothing: CMR rows are not calls, and not errors either
    assert list(parse(data)) == []


# --- fields ----------------------------------------------------------------------------

def test_answered_call_gives_parties_gateways_talk_time_and_utc_start():
    # given one answered call out through a gateway
    data = cdr_file(cdr_row())
    # when parsed
    (record,) = parsed(data)[0]
    # then the calling number is the extension, the final called number what was dialled,
    # the gateway the trunk, the phone the origin, the duration field the talk time
    assert record == CallRecord(
        source_key="11111111-2222-3333-4444-555555555555",
        start=datetime(2024, 6, 17, 10, 0, 0, tzinfo=UTC), duration=61, direction=None,
        extension="1001", dialled="0441234567", trunk="GW-KYIV", answered=True,
        origin_trunk="SEP001122334455")


def test_call_never_connected_is_unanswered_with_no_talk_time():
    # given a call that rang and was abandoned: no connect time (and a stray counter)
    data = cdr_file(cdr_row(dateTimeConnect=0, duration=3))
    # when parsed
    (record,) = parsed(data)[0]
    # then it is unanswered, with 0 s of talk time (no connection fee is charged)
    assert (record.answered, record.duration) == (False, 0)


def test_called_number_is_the_original_one_when_the_final_one_is_empty():
    # given a record whose finalCalledPartyNumber is empty
    data = cdr_file(cdr_row(finalCalledPartyNumber=""))
    # when parsed; then the originally called number stands in
    (record,) = parsed(data)[0]
    assert record.dialled == "90441234567"


def test_without_pkid_the_key_is_the_global_call_id_legs_and_origination_time():
    # given two legs of one call in a file without pkid values
    data = cdr_file(cdr_row(pkid=""), cdr_row(pkid="", destLegIdentifier=20003))
    # when parsed
    records, rejects = parsed(data)
    # then each has its own key, made of the ids that tell CDRs apart
    assert rejects == []
    assert [r.source_key for r in records] == ["1-5001-20001-20002-1718618400",
                                               "1-5001-20001-20003-1718618400"]


def test_parsing_twice_gives_the_same_keys():
    # given a file with three records
    data = cdr_file(cdr_row(), cdr_row(pkid="a"), cdr_row(pkid=""))
    # when parsed twice; then the keys are the same, and all different
    first, second = parsed(data)[0], parsed(data)[0]
    assert [r.source_key for r in first] == [r.source_key for r in second]
    assert len({r.source_key for r in first}) == 3


def test_records_that_are_not_end_of_call_records_are_skipped_without_a_reject():
    # given a CMR row (type 2) and a start record (type 0) between two calls
    data = cdr_file(cdr_row(pkid="a"), cdr_row(cdrRecordType=2), cdr_row(cdrRecordType=0),
                    cdr_row(pkid="b"))
    # when parsed
    records, rejects = parsed(data)
    # then only the two calls come out, and nothing is rejected
    assert ([r.source_key for r in records], rejects) == (["a", "b"], [])


# --- header lines ----------------------------------------------------------------------

def test_fields_are_read_by_name_whatever_their_order_and_number():
    # given a file of another version: fewer fields, in another order, plus an unknown one
    # (cdrRecordType stays first: it is how CUCM, and this parser, know a header line)
    names = ("cdrRecordType", "pkid", "duration", "destDeviceName", "callingPartyNumber",
             "dateTimeOrigination", "finalCalledPartyNumber", "dateTimeConnect",
             "origDeviceName", "newFieldOfVersion99")
    base = {**CALL, "newFieldOfVersion99": "x"}
    data = cdr_file(cdr_row(base, names), names=names)
    # when parsed
    (record,) = parsed(data)[0]
    # then every value comes from the field of its name
    assert (record.source_key, record.extension, record.dialled, record.trunk,
            record.origin_trunk, record.duration) == (
        CALL["pkid"], "1001", "0441234567", "GW-KYIV", "SEP001122334455", 61)


def test_data_without_header_lines_is_read_in_the_standard_order():
    # given rows without the two header lines: the full current field set, and the
    # shortest row that still reaches destDeviceName (an older version's prefix)
    full = cdr_row(pkid="full")
    short = ",".join(cdr_row(pkid="short").split(",")[:HEADERLESS_MIN_FIELDS])
    data = cdr_file(full, short, header=False)
    # when parsed
    records, rejects = parsed(data)
    # then both are read by position
    assert rejects == []
    assert [(r.source_key, r.extension, r.trunk) for r in records] == [
        ("full", "1001", "GW-KYIV"), ("short", "1001", "GW-KYIV")]


def test_headerless_row_too_short_for_the_standard_order_is_rejected():
    # given a header-less row cut before destDeviceName
    row = ",".join(cdr_row().split(",")[:40])
    # when parsed
    (reject,) = parsed(cdr_file(row, header=False))[1]
    # then the reason says what a header-less row needs
    assert reject == Reject(1, row, f"a record without a header line needs at least "
                                    f"{HEADERLESS_MIN_FIELDS} fields in the standard CUCM order, "
                                    f"found 40")


def test_a_second_header_starts_a_new_field_set():
    # given two files run together: the full field set, then a shorter one
    names = ("cdrRecordType", "pkid", "dateTimeOrigination", "dateTimeConnect", "duration",
             "callingPartyNumber", "finalCalledPartyNumber")
    data = cdr_file(cdr_row(pkid="a"), final_newline=True) + cdr_file(
        cdr_row(names=names, pkid="b", callingPartyNumber="2002"), names=names)
    # when parsed
    records, rejects = parsed(data)
    # then each row is read with its own file's header
    assert rejects == []
    assert [(r.source_key, r.extension, r.trunk) for r in records] == [
        ("a", "1001", "GW-KYIV"), ("b", "2002", "")]


def test_header_without_a_needed_field_rejects_its_rows_with_the_field_name():
    # given a header without dateTimeConnect
    names = ("cdrRecordType", "pkid", "dateTimeOrigination", "duration", "callingPartyNumber",
             "finalCalledPartyNumber")
    row = cdr_row(names=names)
    # when parsed
    (reject,) = parsed(cdr_file(row, names=names))[1]
    # then the row is rejected naming the missing field
    assert reject == Reject(3, row, "the header line has no dateTimeConnect field")


# --- bad records among good ones -------------------------------------------------------

@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (cdr_row(dateTimeOrigination="yesterday"),
         "dateTimeOrigination 'yesterday' is not a time in epoch seconds"),
        (cdr_row(dateTimeOrigination=0), "dateTimeOrigination is empty"),
        (cdr_row(duration="ten"), "duration 'ten' is not a whole number"),
        (cdr_row(cdrRecordType="x"), "cdrRecordType 'x' is not a number"),
        (cdr_row(pkid="", globalCallID_callId=""),
         "pkid and globalCallID_callId are both empty: the record cannot be told apart "
         "from others"),
        (cdr_row() + ",0", f"expected {len(STANDARD_FIELDS)} fields as in the header line, "
                           f"found {len(STANDARD_FIELDS) + 1}"),
        (cdr_row().replace('"GW-KYIV"', '"GW"KYIV"'), "a closing quote is not followed by a comma"),
        (cdr_row() + ',"', "a quoted field is not closed before the end of the line"),
    ],
)
def test_malformed_record_is_rejected_with_its_line_number_and_reason(row, reason):
    # given a malformed record between two good ones
    data = cdr_file(cdr_row(pkid="a"), row, cdr_row(pkid="b"))
    # when parsed
    records, rejects = parsed(data)
    # then the good ones are calls and the bad one a reject on its file line (after headers)
    assert [r.source_key for r in records] == ["a", "b"]
    assert rejects == [Reject(4, row, reason)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"callingPartyNumber": "1" * 65}, "callingPartyNumber is 65 characters long, more than 64"),
        ({"finalCalledPartyNumber": "9" * 65},
         "finalCalledPartyNumber is 65 characters long, more than 64"),
        ({"destDeviceName": "G" * 101}, "destDeviceName is 101 characters long, more than 100"),
        ({"origDeviceName": "S" * 101}, "origDeviceName is 101 characters long, more than 100"),
        ({"dateTimeOrigination": 4102444800, "dateTimeConnect": 0},  # 2100-01-01
         "start 2100-01-01 00:00:00 is before 1990 or in the future"),
        ({"dateTimeOrigination": 599616000, "dateTimeConnect": 0},  # 1989-01-01
         "start 1989-01-01 00:00:00 is before 1990 or in the future"),
        ({"dateTimeOrigination": 99999999999999999999}, "dateTimeOrigination "
                                                        "'99999999999999999999' is out of range"),
        ({"duration": 24 * 3600 + 1}, "duration 86401 s is out of range"),
        # thousands of digits: refused before int() is asked, and shown cut short
        ({"duration": "1" * 5000}, f"duration {'1' * 40 + '…'!r} is out of range"),
    ],
)
def test_values_the_call_table_cannot_hold_or_believe_are_rejected(fields, reason):
    # given an otherwise good record with one implausible value
    row = cdr_row(**fields)
    # when parsed
    records, rejects = parsed(cdr_file(row))
    # then it is a reject that names the field
    assert records == []
    assert rejects == [Reject(3, row, reason)]


# --- bytes -----------------------------------------------------------------------------

@pytest.mark.parametrize("final_newline", [True, False])
def test_bom_crlf_and_missing_final_newline_are_accepted(final_newline):
    # given a file saved on Windows: UTF-8 BOM, CRLF, with or without a last line end
    data = b"\xef\xbb\xbf" + cdr_file(cdr_row(pkid="a"), cdr_row(pkid="b"), newline="\r\n",
                                      final_newline=final_newline)
    # when parsed
    records, rejects = parsed(data)
    # then the header is still recognised and the last field has no CR
    assert rejects == []
    assert [(r.source_key, r.origin_trunk) for r in records] == [
        ("a", "SEP001122334455"), ("b", "SEP001122334455")]


def test_windows_1251_and_utf8_text_fields_are_read():
    # given a record with a Windows-1251 comment next to one with a UTF-8 comment
    headers = "\n".join(header_lines()).encode()
    cp1251 = cdr_row(pkid="a", comment="Дзвінок директора").encode("cp1251")
    utf8 = cdr_row(pkid="b", comment="Дзвінок директора").encode("utf-8")
    # when parsed
    records, rejects = parsed(headers + b"\n" + cp1251 + b"\n" + utf8)
    # then both are calls with their numbers intact
    assert rejects == []
    assert [(r.source_key, r.extension) for r in records] == [("a", "1001"), ("b", "1001")]


def test_empty_and_header_only_data_gives_nothing():
    # given no data, blank lines, or only the two header lines
    # when parsed; then no records and no rejects
    assert list(parse(b"")) == []
    assert list(parse(b"\r\n \n")) == []
    assert list(parse(cdr_file())) == []


# --- laws ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=800))
def test_parser_never_raises_on_arbitrary_bytes(data):
    # given any bytes at all; when parsed
    items = list(parse(data))
    # then every item is a record or a reject, at most one per line, in line order
    assert_records_or_rejects_in_line_order(items, data)


@settings(max_examples=200, deadline=None)
@given(st.lists(field_text, max_size=140), st.booleans())
def test_parser_never_raises_on_arbitrary_fields_with_or_without_headers(fields, header):
    # given a line of arbitrary comma-separated fields, after the header lines or not
    data = cdr_file(",".join(fields), header=header)
    # when parsed; then it gives at most one record or reject, never an exception
    items = list(parse(data))
    assert len(items) <= 1 + ",".join(fields).count("\n")
    assert all(isinstance(i, CallRecord | Reject) for i in items)


@settings(max_examples=100, deadline=None)
@given(origination=st.integers(631152000, 1735689600),  # 1990-01-01 .. 2025-01-01
       seconds=st.integers(0, 24 * 3600))
def test_start_and_duration_round_trip(origination, seconds):
    # given an answered call with any plausible origination time and duration
    data = cdr_file(cdr_row(dateTimeOrigination=origination, dateTimeConnect=origination + 1,
                            duration=seconds))
    # when parsed
    (record,) = list(parse(data))
    # then the start is that instant in UTC and the duration exactly that
    assert isinstance(record, CallRecord)
    assert record.start == datetime.fromtimestamp(origination, tz=UTC)
    assert record.duration == seconds
