"""R2.3, R2.7: the RADIUS accounting parser (observers/parsers/radius.py, pure): the JSON lines
of Stop packets that the RADIUS source writes, in; calls (one per call) or rejects, out."""
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from observers.parsers.base import CallRecord, Reject
from observers.parsers.radius import parse, parse_record
from observers.sources.radius import radius_dictionary
from tests.observers.parsing import records_and_rejects

CONF_ID = "4F1C6E9A 8B5611D4 8020E09D 8B2F0F50"
# A Cisco voice gateway's Stop of the outgoing (originate) leg: 1001 called 0441234567 and
# talked 61 s. Attribute names are those of dictionary.cisco; values as IOS writes them.
ORIGINATE = {
    "Acct-Status-Type": "Stop",
    "Acct-Session-Id": "0000002B",
    "NAS-IP-Address": "192.0.2.10",
    "NAS-Port-Type": "Async",
    "User-Name": "1001",
    "Calling-Station-Id": "1001",
    "Called-Station-Id": "0441234567",
    "Acct-Session-Time": 61,
    "Acct-Delay-Time": 0,
    "Acct-Input-Octets": 96400,
    "Acct-Output-Octets": 97600,
    "h323-gw-id": "h323-gw-id=gw1.example.net",
    "h323-conf-id": f"h323-conf-id={CONF_ID}",
    "h323-call-origin": "h323-call-origin=originate",
    "h323-call-type": "h323-call-type=Telephony",
    "h323-setup-time": "h323-setup-time=*10:15:33.123 UTC Mon Jun 17 2024",
    "h323-connect-time": "h323-connect-time=*10:15:38.456 UTC Mon Jun 17 2024",
    "h323-disconnect-time": "h323-disconnect-time=*10:16:39.456 UTC Mon Jun 17 2024",
    "h323-disconnect-cause": "h323-disconnect-cause=10",
    "h323-voice-quality": "h323-voice-quality=0",
    "h323-remote-address": "h323-remote-address=192.0.2.50",
    "Cisco-AVPair": [f"h323-incoming-conf-id={CONF_ID}", "subscriber=Unknown",
                     "gw-rxd-cdn=ton:0,npi:1,#:0441234567", "release-source=4"],
    "_received": "2024-06-17T10:16:40.020+00:00",
    "_peer": "192.0.2.10",
}
# The incoming (answer) leg of the same call: same conf id, its own session, a little earlier.
ANSWER = {
    **ORIGINATE,
    "Acct-Session-Id": "0000002A",
    "h323-call-origin": "h323-call-origin=answer",
    "h323-call-type": "h323-call-type=VoIP",
    "h323-setup-time": "h323-setup-time=*10:15:33.101 UTC Mon Jun 17 2024",
    "Acct-Session-Time": 62,
    "Called-Station-Id": "90441234567",
    "_received": "2024-06-17T10:16:40.010+00:00",
}
CALL = CallRecord(
    source_key=f"192.0.2.10|conf|{CONF_ID}",
    start=datetime(2024, 6, 17, 10, 15, 33, tzinfo=UTC),
    duration=61, direction=None, extension="1001", dialled="0441234567",
    trunk="192.0.2.10", answered=True, origin_trunk="192.0.2.10",
)

# A Ribbon SBC 1000/2000's two legs of one call (vendor NET; attribute names of
# dictionary.net): the ingress leg (session 0) and the egress leg (session 5), linked by
# Acct-Multi-Session-Id; times are Unix seconds as in Ribbon's published sample record.
RIBBON_INGRESS = {
    "Acct-Status-Type": "Stop",
    "Acct-Session-Id": "0",
    "Acct-Multi-Session-Id": "13201689112",
    "Acct-Session-Time": 120,
    "NAS-IP-Address": "198.51.100.7",
    "NET-Session-Ingress-CallId": 0,
    "NET-Session-Egress-CallId": 5,
    "NET-Ingress-Signaling-Group": 1,
    "NET-Egress-Signaling-Group": 3,
    "NET-Call-Origin": 1,
    "NET-Calling-Number": "sip:4009@pbx.example.net",
    "NET-Called-Number": "0501234567",
    "NET-Setup-Time": "1718619300",
    "NET-Connect-Time": "1718619305",
    "NET-Disconnect-Time": "1718619425",
    "NET-Firmware-Version": "12.1.1",
    "_received": "2024-06-17T10:17:05.500+00:00",
    "_peer": "198.51.100.7",
}
RIBBON_EGRESS = {**RIBBON_INGRESS, "Acct-Session-Id": "5", "NET-Call-Origin": 0,
                 "NET-Called-Number": "+380501234567", "NET-Setup-Time": "1718619301"}


def line(record: dict) -> str:
    return json.dumps(record)


def data(*records) -> bytes:
    return "\n".join(r if isinstance(r, str) else line(r) for r in records).encode() + b"\n"


def parsed(raw: bytes):
    return records_and_rejects(parse(raw))


def test_cisco_originate_leg_is_the_call():
    # given the Stop of the originate leg
    # when parsed
    records, rejects = parsed(data(ORIGINATE))
    # then it is the call: setup time in UTC, session time, the gateway as trunk
    assert rejects == []
    assert records == [CALL]


def test_cisco_answer_leg_alone_gives_nothing():
    assert parsed(data(ANSWER)) == ([], [])


@pytest.mark.parametrize("legs", [(ANSWER, ORIGINATE), (ORIGINATE, ANSWER)],
                         ids=["answer first", "originate first"])
def test_both_leg_orders_give_one_call_with_the_same_values(legs):
    # given the two legs of one call, in either order (as received, possibly apart)
    # when each is parsed on its own, as deliveries are
    records = [r for leg in legs for r in parse(data(leg))]
    # then there is one call, the same whichever came first
    assert records == [CALL]


def test_redelivered_leg_keeps_its_source_key():
    # given the same Stop received twice, a minute apart (the NAS retried after a failure)
    again = {**ORIGINATE, "_received": "2024-06-17T10:17:40.000+00:00"}
    # then both give the same call (the second is a duplicate to the pipeline)
    assert parsed(data(ORIGINATE))[0] == parsed(data(again))[0]


def test_failed_route_does_not_take_the_place_of_the_answered_call():
    # given a first outgoing leg refused by the carrier, then a second route that answered
    failed = {**ORIGINATE, "Acct-Session-Id": "0000002C", "Acct-Session-Time": 0,
              "h323-disconnect-cause": "h323-disconnect-cause=22"}
    del failed["h323-connect-time"]
    # when both are parsed
    records, _ = parsed(data(failed, ORIGINATE))
    # then the answered leg is the call, and the failed attempt a separate unanswered one
    assert records[1] == CALL
    assert records[0].answered is False and records[0].duration == 0
    assert records[0].source_key == f"192.0.2.10|conf|{CONF_ID}|0000002C"


def test_vsas_without_the_name_prefix_and_in_capitals_are_read_alike():
    # given the same leg as other gateways write it: bare values, "Originate" capitalised
    bare = {**ORIGINATE, "h323-conf-id": CONF_ID, "h323-call-origin": "Originate",
            "h323-setup-time": "*10:15:33.123 UTC Mon Jun 17 2024"}
    assert parsed(data(bare))[0] == [CALL]
    assert parsed(data({**ANSWER, "h323-call-origin": "Answer"})) == ([], [])


def test_cisco_avpair_supplies_a_missing_attribute():
    # given the conf id and setup time only inside Cisco-AVPair
    record = {key: value for key, value in ORIGINATE.items()
              if key not in ("h323-conf-id", "h323-setup-time")}
    record["Cisco-AVPair"] = [f"h323-conf-id={CONF_ID}",
                              "h323-setup-time=10:15:33.123 UTC Mon Jun 17 2024"]
    assert parsed(data(record))[0] == [CALL]


@pytest.mark.parametrize(("value", "start"), [
    ("10:15:33.123 UTC Mon Jun 17 2024", datetime(2024, 6, 17, 10, 15, 33, tzinfo=UTC)),
    ("*10:15:33.123 UTC Mon Jun 17 2024", datetime(2024, 6, 17, 10, 15, 33, tzinfo=UTC)),
    (".10:15:33.123 GMT Mon Jun 17 2024", datetime(2024, 6, 17, 10, 15, 33, tzinfo=UTC)),
    ("9:05:07 UTC Tue Jan 2 2024", datetime(2024, 1, 2, 9, 5, 7, tzinfo=UTC)),
    # a zone other than UTC: the device's local time (its time zone is applied later)
    ("13:15:33.123 EEST Mon Jun 17 2024", datetime(2024, 6, 17, 13, 15, 33)),
])
def test_cisco_time_formats(value, start):
    record = {**ORIGINATE, "h323-setup-time": f"h323-setup-time={value}"}
    (call,), _ = parsed(data(record))
    assert call.start == start


def test_without_setup_or_connect_time_start_is_event_time_minus_session_time():
    record = {key: value for key, value in ORIGINATE.items()
              if not key.startswith("h323-") or key == "h323-conf-id"}
    record["Event-Timestamp"] = 1718619400  # 2024-06-17 10:16:40 UTC
    (call,), _ = parsed(data(record))
    assert call.start == datetime(2024, 6, 17, 10, 15, 39, tzinfo=UTC)
    assert (call.duration, call.answered) == (61, True)


def test_without_any_time_start_is_received_minus_delay_and_session_time():
    # given a plain NAS record: no VSAs, no Event-Timestamp, sent 5 s late
    record = {"Acct-Status-Type": "Stop", "Acct-Session-Id": "s-77", "NAS-IP-Address": "192.0.2.9",
              "Calling-Station-Id": "2002", "Called-Station-Id": "0501112233",
              "Acct-Session-Time": 20, "Acct-Delay-Time": 5,
              "_received": "2024-06-17T10:00:25.700+00:00", "_peer": "192.0.2.9"}
    (call,), _ = parsed(data(record))
    assert call == CallRecord(
        source_key="192.0.2.9|session|s-77", start=datetime(2024, 6, 17, 10, 0, 0, tzinfo=UTC),
        duration=20, direction=None, extension="2002", dialled="0501112233",
        trunk="192.0.2.9", answered=True, origin_trunk="192.0.2.9")


def test_without_session_time_duration_is_disconnect_minus_connect():
    record = {key: value for key, value in ORIGINATE.items() if key != "Acct-Session-Time"}
    (call,), _ = parsed(data(record))
    assert call.duration == 61


def test_unanswered_call_has_no_connect_time_and_no_session_time():
    record = {**ORIGINATE, "Acct-Session-Time": 0,
              "h323-disconnect-cause": "h323-disconnect-cause=13"}
    del record["h323-connect-time"]
    (call,), _ = parsed(data(record))
    assert (call.answered, call.duration) == (False, 0)
    assert call.start == datetime(2024, 6, 17, 10, 15, 33, tzinfo=UTC)


@pytest.mark.parametrize("legs", [(RIBBON_INGRESS, RIBBON_EGRESS), (RIBBON_EGRESS, RIBBON_INGRESS)],
                         ids=["ingress first", "egress first"])
def test_ribbon_legs_give_one_call_from_the_egress_leg(legs):
    records = [r for leg in legs for r in parse(data(leg))]
    assert records == [CallRecord(
        source_key="198.51.100.7|multi|13201689112",
        start=datetime(2024, 6, 17, 10, 15, 1, tzinfo=UTC), duration=120, direction=None,
        extension="4009", dialled="+380501234567", trunk="198.51.100.7", answered=True,
        origin_trunk="198.51.100.7")]


def test_ribbon_ingress_leg_without_an_egress_leg_is_the_call():
    # given a call refused by the SBC's routing: only the ingress leg, no egress call id
    refused = {**RIBBON_INGRESS, "NET-Session-Egress-CallId": 65535, "Acct-Session-Time": 0,
               "NET-Connect-Time": "0", "NET-Disconnect-Time": "1718619302"}
    (call,), rejects = parsed(data(refused))
    assert rejects == []
    assert (call.answered, call.dialled) == (False, "0501234567")
    assert call.source_key == "198.51.100.7|multi|13201689112|0"


@pytest.mark.parametrize(("value", "number"), [
    ("sip:+380501234567@carrier.example;user=phone", "+380501234567"),
    ("<sip:4009@pbx.example.net>", "4009"),
    ("tel:+380441234567", "+380441234567"),
    ("0441234567", "0441234567"),
])
def test_uri_numbers_give_their_user_part(value, number):
    (call,), _ = parsed(data({**ORIGINATE, "Called-Station-Id": value}))
    assert call.dialled == number


@pytest.mark.parametrize(("text", "reason"), [
    ("not json at all", "not JSON"),
    ("[1, 2, 3]", "not a JSON object but list"),
    ('"Stop"', "not a JSON object but str"),
    (line({k: v for k, v in ORIGINATE.items() if k != "Acct-Status-Type"}), "no Acct-Status-Type"),
    (line({**ORIGINATE, "Acct-Status-Type": "Start"}), "only Stop records are calls"),
    (line({k: v for k, v in ORIGINATE.items() if k not in ("h323-conf-id", "Acct-Session-Id")}
          | {"Cisco-AVPair": []}),
     "cannot be told apart"),
    (line({k: v for k, v in ORIGINATE.items() if k != "Called-Station-Id"}),
     "needs the called number"),
    (line({**ORIGINATE, "Acct-Session-Time": "abc"}), "Acct-Session-Time 'abc' is not a whole"),
    (line({**ORIGINATE, "Acct-Session-Time": -5}), "is negative"),
    (line({**ORIGINATE, "Acct-Session-Time": 90000}), "longer than 24 hours"),
    (line({**ORIGINATE, "h323-setup-time": "yesterday"}), "h323-setup-time 'yesterday' is not"),
    (line({**ORIGINATE, "h323-setup-time": "10:15:33 UTC Mon Foo 17 2024"}), "unknown month"),
    (line({**ORIGINATE, "h323-setup-time": "10:15:33 UTC Mon Feb 31 2024"}), "not a valid date"),
    (line({**ORIGINATE, "h323-setup-time": "10:15:33 UTC Mon Jun 17 2099"}), "in the future"),
    (line({k: v for k, v in ORIGINATE.items() if not k.startswith("h323-") and k != "_received"}
          | {"Acct-Session-Id": "x"}),
     "no start time"),
    (line({**RIBBON_EGRESS, "NET-Setup-Time": "soon"}), "NET-Setup-Time 'soon' is not Unix"),
    (line({**ORIGINATE, "Called-Station-Id": "1" * 65}), "dialled is 65 characters long"),
])
def test_bad_records_are_rejected_with_a_reason(text, reason):
    records, rejects = parsed(text.encode() + b"\n")
    assert records == []
    (reject,) = rejects
    assert reason in reject.reason
    assert (reject.line_number, reject.raw) == (1, text)


def test_a_bad_line_does_not_stop_the_others():
    records, rejects = parsed(data(ORIGINATE, "garbage", ANSWER, RIBBON_EGRESS))
    assert [r.source_key for r in records] == [CALL.source_key, "198.51.100.7|multi|13201689112"]
    assert [r.line_number for r in rejects] == [2]


def test_every_attribute_the_parser_reads_is_in_the_source_dictionary():
    # The parser reads names the source writes: they must be the dictionary's names.
    dictionary = radius_dictionary()
    read = ["Acct-Status-Type", "Acct-Session-Id", "Acct-Multi-Session-Id", "Acct-Session-Time",
            "Acct-Delay-Time", "Event-Timestamp", "NAS-IP-Address", "NAS-IPv6-Address",
            "NAS-Identifier", "Calling-Station-Id", "Called-Station-Id", "Cisco-AVPair",
            "h323-conf-id", "h323-call-origin", "h323-setup-time", "h323-connect-time",
            "h323-disconnect-time", "NET-Session-Ingress-CallId", "NET-Session-Egress-CallId",
            "NET-Setup-Time", "NET-Connect-Time", "NET-Disconnect-Time", "NET-Calling-Number",
            "NET-Called-Number"]
    assert [name for name in read if name not in dictionary] == []
    assert parse_record(ORIGINATE) == CALL


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text):
    for item in parse(text.encode("utf-8", "surrogatepass")):
        assert isinstance(item, CallRecord | Reject)


_NAMES = st.sampled_from(sorted(set(ORIGINATE) | set(RIBBON_INGRESS) | {"Event-Timestamp"}))
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40),
                    st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=3),
                    st.sampled_from(["Stop", "answer", "originate", "65535", "0",
                                     "10:15:33.123 UTC Mon Jun 17 2024", "1718619300"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_NAMES, _VALUES), st.booleans())
def test_arbitrary_attribute_values_never_raise(changes, from_ribbon):
    # given a real record with any attributes replaced by any JSON values
    record = {**(RIBBON_EGRESS if from_ribbon else ORIGINATE), **changes}
    # then parsing gives a call, a reject, or nothing: never an exception
    for item in parse(data(record)):
        assert isinstance(item, CallRecord | Reject)


@pytest.mark.parametrize(("called", "reason"), [
    ("044\x001234567", "holds a control character or bytes that are not text"),
    ("0x3044ff1234", "the called number is not text (bytes that are not UTF-8"),
])
def test_a_called_number_that_is_not_text_is_rejected_not_priced(called, reason):
    # given a Stop whose Called-Station-Id holds a NUL, or bytes that are not UTF-8 (which
    # the RADIUS source writes as their hex)
    # when it is parsed
    records, rejects = parsed(data({**ORIGINATE, "Called-Station-Id": called}))
    # then it is a reject with the reason, not a call to the digits it happens to hold
    assert records == []
    assert [reason in reject.reason for reject in rejects] == [True]
