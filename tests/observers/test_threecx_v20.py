"""R2.7: the 3CX v20 field set, configured field orders and auto-detection (threecx.py, pure).

The v20 lines are written for these tests from 3CX's description of its call data: one row per
leg of a call flow, ids such as 00000000-01db-aef6-c109-60ec0000004c (4 zero bytes, a time
stamp, a counter), participants typed extension / external_line / queue, and PostgreSQL-style
UTC times ("2025-04-01 08:00:05.250000+00").
"""
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers.base import CallRecord, Reject
from observers.parsers.threecx import FIELDS_V18, FIELDS_V20, parse, validate_options
from tariffs.choices import Direction
from tests.observers.parsing import records_and_rejects
from tests.observers.threecx_cdr import INCOMING as V18_INCOMING
from tests.observers.threecx_cdr import cdr_line

# Extension 101 calls 0441234567 out over the line whose DN is 10000.
OUT = dict.fromkeys(FIELDS_V20, "") | {
    "cdr_id": "00000000-01db-aef6-c109-60ec0000004c",
    "call_history_id": "00000000-01db-aef6-ba9a-df6b0000000b",
    "main_call_history_id": "00000000-01db-aef6-ba9a-df6b0000000b",
    "source_participant_id": "00000000-01db-aef6-ba9b-33830000004d",
    "source_entity_type": "extension", "source_dn_number": "101", "source_dn_type": "extension",
    "source_dn_name": "Ivan Petrenko", "source_participant_name": "Ivan Petrenko",
    "source_participant_phone_number": "101", "source_participant_is_incoming": "false",
    "destination_participant_id": "00000000-01db-aef6-ba9b-33830000004e",
    "destination_entity_type": "external_line", "destination_dn_number": "10000",
    "destination_dn_type": "provider", "destination_dn_name": "Kyivstar SIP",
    "destination_participant_phone_number": "0441234567",
    "destination_participant_is_incoming": "false",
    "creation_method": "call_init", "termination_reason": "src_participant_terminated",
    "cdr_started_at": "2025-04-01 08:00:00.100000+00",
    "cdr_answered_at": "2025-04-01 08:00:05.250000+00",
    "cdr_ended_at": "2025-04-01 08:01:06.000000+00",
}
# +380501234567 calls in on line 10000 and extension 102 answers.
IN = OUT | {
    "cdr_id": "00000000-01db-aef6-c109-60ec0000004d",
    "source_entity_type": "external_line", "source_dn_number": "10000",
    "source_dn_type": "provider", "source_participant_phone_number": "+380501234567",
    "source_participant_trunk_did": "0443334455", "source_participant_is_incoming": "true",
    "destination_entity_type": "extension", "destination_dn_number": "102",
    "destination_dn_type": "extension", "destination_participant_phone_number": "102",
}
# 101 calls 102.
INTERNAL = OUT | {
    "cdr_id": "00000000-01db-aef6-c109-60ec0000004e",
    "destination_entity_type": "extension", "destination_dn_number": "102",
    "destination_dn_type": "extension", "destination_participant_phone_number": "102",
}
# The queue 800 hands an outside caller to agent 103, who answers.
QUEUE_TO_AGENT = IN | {
    "cdr_id": "00000000-01db-aef6-c109-60ec0000004f",
    "source_entity_type": "queue", "source_dn_number": "800", "source_dn_type": "queue",
    "destination_dn_number": "103", "destination_participant_phone_number": "103",
    "creation_method": "route_to", "creation_forward_reason": "polling",
}


def v20_line(base: dict = OUT, **fields: str) -> str:
    values = dict(base)
    for name, value in fields.items():
        assert name in values, f"not a 3CX v20 field: {name}"
        values[name] = value
    return ",".join(values[name] for name in FIELDS_V20)


def parsed(data: bytes | str, options=None):
    if isinstance(data, str):
        data = (data + "\n").encode("utf-8")
    return records_and_rejects(parse(data, options))


# --- the v20 default set ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("base", "direction", "extension", "dialled", "trunk"),
    [
        (OUT, Direction.OUTGOING, "101", "0441234567", "10000"),
        (IN, Direction.INCOMING, "102", "+380501234567", "10000"),
        (INTERNAL, Direction.INTERNAL, "101", "102", ""),
    ],
)
def test_v20_leg_gives_direction_parties_trunk_and_talk_time(base, direction, extension, dialled,
                                                             trunk):
    # given one v20 leg between an extension and a line, or two extensions
    line = v20_line(base)
    # when parsed without options
    records, rejects = parsed(line)
    # then the participant types give the direction, the line's DN is the trunk, and the talk
    # time is answered to ended (60.75 s rounds to 61)
    assert rejects == []
    (record,) = records
    assert (record.direction, record.extension, record.dialled, record.trunk) == (
        direction, extension, dialled, trunk)
    assert record.duration == 61
    assert record.answered is True
    assert record.source_key == base["cdr_id"]
    assert record.start == datetime(2025, 4, 1, 8, 0, 0, tzinfo=UTC)


def test_unanswered_leg_has_no_talk_time():
    # given an outgoing leg the far end never answered
    line = v20_line(cdr_answered_at="", termination_reason="cancelled")
    # when parsed
    (record,) = parsed(line)[0]
    # then it is a call of 0 s, marked unanswered
    assert (record.duration, record.answered) == (0, False)


def test_times_without_a_zone_stay_in_the_pbx_zone():
    # given times written without a zone
    line = v20_line(cdr_started_at="2025-04-01 10:00:00", cdr_answered_at="2025-04-01 10:00:04",
                    cdr_ended_at="2025-04-01 10:00:34")
    # when parsed
    (record,) = parsed(line)[0]
    # then the start is naive (the device's zone applies) and the talk time is 30 s
    assert (record.start, record.duration) == (datetime(2025, 4, 1, 10, 0, 0), 30)


def test_iso_times_with_t_and_z_are_read_as_utc():
    # given ISO 8601 times in another spelling
    line = v20_line(cdr_started_at="2025-04-01T08:00:00Z", cdr_answered_at="2025-04-01T10:00:02+02:00",
                    cdr_ended_at="2025-04-01T08:00:12Z")
    # when parsed
    (record,) = parsed(line)[0]
    # then all are the same instants in UTC
    assert (record.start, record.duration) == (datetime(2025, 4, 1, 8, 0, 0, tzinfo=UTC), 10)


def test_answered_service_to_extension_leg_leaves_the_direction_to_the_dial_plan():
    # given a queue handing an outside caller to agent 103, who answers
    line = v20_line(QUEUE_TO_AGENT)
    # when parsed
    (record,) = parsed(line)[0]
    # then it is the caller and the agent, without a direction: the dial plan sees an
    # outside caller reaching an extension (incoming), or an inside one (internal)
    assert (record.direction, record.extension, record.dialled, record.trunk) == (
        None, "+380501234567", "103", "")


@pytest.mark.parametrize(
    "fields",
    [
        # agent 104 polled by the queue, never answered
        {"destination_dn_number": "104", "cdr_answered_at": "",
         "cdr_id": "00000000-01db-aef6-c109-60ec00000050"},
        # the outside caller reaching the queue (the queue answers with music)
        {"source_entity_type": "external_line", "source_dn_number": "10000",
         "destination_entity_type": "queue", "destination_dn_number": "800"},
        # an extension dialling the voicemail
        {"source_entity_type": "extension", "source_dn_number": "101",
         "destination_entity_type": "voicemail", "destination_dn_number": "999"},
    ],
)
def test_routing_step_legs_give_no_record(fields):
    # given a leg into a PBX service, or an unanswered poll of an agent
    line = v20_line(QUEUE_TO_AGENT, **fields)
    # when parsed
    records, rejects = parsed(line)
    # then it is neither a call nor a reject
    assert (records, rejects) == ([], [])


def test_leg_forwarded_out_over_a_second_line_is_kept_without_a_direction():
    # given an outside call on line 10000 forwarded out to a mobile over line 10001
    line = v20_line(IN, destination_entity_type="external_line", destination_dn_number="10001",
                    destination_dn_type="provider", destination_participant_phone_number="+380671234567",
                    creation_method="divert")
    # when parsed
    (record,) = parsed(line)[0]
    # then the leg that costs is kept: out over 10001, in over 10000, the dial plan decides
    assert (record.direction, record.extension, record.dialled, record.trunk,
            record.origin_trunk) == (None, "+380501234567", "+380671234567", "10001", "10000")


def test_entity_type_falls_back_to_the_dn_type():
    # given a leg whose entity types are empty but whose DN types say extension and provider
    line = v20_line(source_entity_type="", destination_entity_type="")
    # when parsed
    (record,) = parsed(line)[0]
    # then it is still the outgoing call of 101
    assert (record.direction, record.extension) == (Direction.OUTGOING, "101")


# --- auto-detection -----------------------------------------------------------------------

def test_v18_and_v20_lines_are_recognised_line_by_line():
    # given a file from a PBX upgraded mid-file: a v18 line, then a v20 line
    data = (cdr_line(V18_INCOMING) + "\n" + v20_line(OUT) + "\n").encode("utf-8")
    # when parsed without options
    records, rejects = parsed(data)
    # then each is read in its own field set
    assert rejects == []
    assert [(r.source_key, r.direction) for r in records] == [
        (f"{V18_INCOMING['historyid']}|{V18_INCOMING['callid']}", Direction.INCOMING),
        (OUT["cdr_id"], Direction.OUTGOING)]


def test_v20_id_with_the_wrong_number_of_fields_says_to_configure_the_order():
    # given a v20 line (its id first) written with a shorter, custom selection of fields
    line = ",".join([OUT["cdr_id"], "2025-04-01 08:00:00+00", "101", "0441234567"])
    # when parsed without options
    records, rejects = parsed(line)
    # then it is rejected, and the reason points at the 'fields' option
    assert records == []
    assert rejects[0].reason == ("expected 39 fields (the 3CX v20 default set), found 4; name the "
                                 "configured order in the parser option 'fields'")


@pytest.mark.parametrize("names", [FIELDS_V20, FIELDS_V18, [n.replace("-", "_") for n in FIELDS_V18]])
def test_header_line_is_skipped(names):
    # given a file that starts with its field names (as a CSV export does)
    data = ",".join(names) + "\n" + v20_line(OUT)
    # when parsed
    records, rejects = parsed(data)
    # then the header is neither a call nor a reject
    assert rejects == []
    assert [r.source_key for r in records] == [OUT["cdr_id"]]


# --- options ------------------------------------------------------------------------------

def test_fields_v20_reads_the_default_order_and_rejects_v18_lines():
    # given the v20 set chosen explicitly, and a v18 line among v20 lines
    data = v20_line(OUT) + "\n" + cdr_line(V18_INCOMING)
    # when parsed
    records, rejects = parsed(data, {"fields": "v20"})
    # then the v20 line is a call, and the v18 line is not guessed at
    assert [r.source_key for r in records] == [OUT["cdr_id"]]
    assert [(r.line_number, r.reason.split(";")[0]) for r in rejects] == [
        (2, "expected 39 fields (the 3CX v20 default set), found 27")]


def test_fields_v18_rejects_v20_lines():
    # given the v18 set chosen explicitly and a v20 line
    records, rejects = parsed(v20_line(OUT), {"fields": "v18"})
    # then the line is rejected by the v18 field count
    assert records == []
    assert rejects[0].reason == "expected 27 fields, found 39"


CUSTOM_V20 = ["cdr_started_at", "cdr_answered_at", "cdr_ended_at", "cdr_id",
              "source_entity_type", "source_dn_number", "source_participant_phone_number",
              "destination_entity_type", "destination_dn_number",
              "destination_participant_phone_number", "termination_reason"]


def test_custom_v20_field_order_from_options():
    # given the admin chose eleven fields in their own order
    values = {**IN, "cdr_answered_at": "2025-04-01 08:00:02+00", "cdr_ended_at": "2025-04-01 08:02:02+00"}
    line = ",".join(values[name] for name in CUSTOM_V20)
    # when parsed with that order
    records, rejects = parsed(line, {"fields": CUSTOM_V20})
    # then the fields are read by name, wherever they are
    assert rejects == []
    (record,) = records
    assert (record.source_key, record.direction, record.extension, record.dialled, record.trunk,
            record.duration) == (IN["cdr_id"], Direction.INCOMING, "102", "+380501234567",
                                 "10000", 120)


def test_custom_v20_order_rejects_a_line_of_another_length():
    # given the eleven-field order and a line with ten fields
    line = ",".join(IN[name] for name in CUSTOM_V20[:10])
    # when parsed
    rejects = parsed(line, {"fields": CUSTOM_V20})[1]
    # then it is rejected: a shifted field would put a number in a time
    assert rejects[0].reason == "expected 11 fields (the configured field list), found 10"


def test_custom_v18_order_with_underscores_and_unknown_columns():
    # given a v18 selection written as 3CX's screens show the names (underscores), reordered,
    # with a column this parser does not know
    names = ["callid", "historyid", "time_start", "time_answered", "duration", "from_type",
             "to_type", "from_no", "to_no", "from_dn", "to_dn", "dial_no", "site"]
    values = {n.replace("_", "-"): v for n, v in V18_INCOMING.items()} | {"site": "Kyiv"}
    line = ",".join(values[n.replace("_", "-")] for n in names)
    # when parsed with that order
    records, rejects = parsed(line, {"fields": names})
    # then it is the same incoming call the default order gives
    assert rejects == []
    (record,) = records
    assert (record.direction, record.extension, record.dialled, record.trunk, record.duration) == (
        Direction.INCOMING, "102", "+380501234567", "10000", 120)
    assert record.source_key == f"{V18_INCOMING['historyid']}|{V18_INCOMING['callid']}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fields": "v19"}, "fields: 'v19' is not a field set"),
        ({"fields": []}, "fields: must be 'v18', 'v20' or a non-empty list"),
        ({"fields": ["cdr_id", ""]}, "fields: every field name must be a non-empty string"),
        ({"fields": ["historyid", "cdr_id"]}, "fields: mixes v18 names (historyid) with v20 names"),
        ({"fields": ["colour", "size"]}, "fields: names no 3CX CDR field"),
        ({"fields": ["cdr_id", "cdr_started_at"]}, "fields: the v20 list must include cdr_answered_at"),
        ({"fields": ["time-start", "duration"]}, "fields: the v18 list must include time-answered"),
        ({"fields": [*CUSTOM_V20, "cdr_id"]}, "fields: cdr_id named more than once"),
        ({"field": "v20"}, "unknown option 'field'"),
        (["v20"], "parser options must be a mapping"),
    ],
)
def test_bad_options_are_refused_before_any_data_is_read(options, message):
    # given options that cannot work
    # when validated, and when parsing starts
    # then each problem is named, and parse() refuses at once with the same message
    assert any(error.startswith(message) for error in validate_options(options)), \
        validate_options(options)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(b"", options)


@pytest.mark.parametrize("options", [None, {}, {"fields": "v18"}, {"fields": "v20"},
                                     {"fields": CUSTOM_V20}])
def test_good_options_validate_clean(options):
    assert validate_options(options) == []


# --- rejects ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"cdr_id": ""}, "cdr_id is empty"),
        ({"cdr_started_at": ""}, "cdr_started_at is empty"),
        ({"cdr_started_at": "yesterday"}, "cdr_started_at 'yesterday' is not a date and time"),
        ({"cdr_ended_at": ""}, "cdr_ended_at is empty but the call was answered"),
        ({"cdr_ended_at": "2025-04-01 08:00:01+00"}, "cdr_ended_at is before cdr_answered_at"),
        ({"cdr_ended_at": "2025-04-01 08:01:06"},
         "cdr_answered_at and cdr_ended_at are not both with or without a zone"),
        ({"cdr_ended_at": "2025-04-03 08:00:06+00"}, "talk time 172801 s is longer than 24 hours"),
        ({"destination_participant_phone_number": ""},
         "destination_participant_phone_number is empty on a leg to an outside line"),
        ({"cdr_started_at": "2099-01-01 00:00:00+00", "cdr_answered_at": "", "cdr_ended_at": ""},
         "start 2099-01-01 00:00:00 is before 1990 or in the future"),
    ],
)
def test_malformed_v20_line_is_rejected_with_its_reason(fields, reason):
    # given a v20 line with one bad value
    line = v20_line(**fields)
    # when parsed as the v20 set
    records, rejects = parsed(line, {"fields": "v20"})
    # then it is a reject with its line number, raw text and reason
    assert records == []
    assert rejects == [Reject(1, line, reason)]


def test_bad_v20_lines_are_rejected_and_the_good_ones_still_parse():
    # given good, bad, good
    good_1 = v20_line(OUT)
    bad = v20_line(OUT, cdr_id="00000000-01db-aef6-c109-60ec00000099", cdr_answered_at="soon")
    good_3 = v20_line(IN)
    records, rejects = parsed("\n".join([good_1, bad, good_3]))
    # then the good lines are calls and the bad one a reject on line 2
    assert [r.source_key for r in records] == [OUT["cdr_id"], IN["cdr_id"]]
    assert [(r.line_number, r.reason) for r in rejects] == [
        (2, "cdr_answered_at 'soon' is not a date and time")]


# --- laws ---------------------------------------------------------------------------------

field_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(options=st.sampled_from([None, {"fields": "v20"}, {"fields": CUSTOM_V20}]),
       fields=st.lists(field_text, min_size=0, max_size=45),
       uuid_first=st.booleans())
def test_v20_parser_never_raises_on_arbitrary_fields(options, fields, uuid_first):
    # given a line of arbitrary fields, sometimes led by a v20 id so auto-detection picks v20
    if uuid_first:
        fields = [OUT["cdr_id"], *fields]
    data = ",".join(fields).encode("utf-8")
    # when parsed; then each line gives at most one record or reject, never an exception
    items = list(parse(data, options))
    assert len(items) <= data.count(b"\n") + 1
    assert all(isinstance(i, CallRecord | Reject) for i in items)


@settings(max_examples=100, deadline=None)
@given(st.permutations(CUSTOM_V20))
def test_any_configured_order_reads_the_same_call(order):
    # given the same call written in any order the admin may configure
    line = ",".join(OUT[name] for name in order)
    # when parsed with that order; then it is the same record
    (record,) = parsed(line, {"fields": list(order)})[0]
    assert (record.source_key, record.direction, record.extension, record.dialled,
            record.duration) == (OUT["cdr_id"], Direction.OUTGOING, "101", "0441234567", 61)
