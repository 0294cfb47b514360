"""RADIUS accounting Stop records, as the RADIUS source writes them (one JSON object a line:
attribute name -> value or list of values, plus "_received" and "_peer";
observers/sources/radius.py). Pure. R2.3, R2.7; docs/formats.md says the same for users.

One call per call (R2.3). Gateways account every leg of a call on its own and send a Stop for
each; the legs of one call share an identifier:
- Cisco IOS gateways (and gateways that copy them, such as AudioCodes): `h323-conf-id`, the
  same on the incoming ("answer") and outgoing ("originate") leg, distinguished by
  `h323-call-origin`. The originate leg, toward the called party, is the call; answer legs
  give nothing. A call refused before the gateway set up an outgoing leg therefore leaves no
  call (its Stop stays in the raw archive).
- Ribbon SBC 1000/2000 ("SBC Edge", vendor NET, 177): Ribbon documents that each leg is
  accounted separately and that the legs of a call are linked by `Acct-Multi-Session-Id`.
  Each record carries both `NET-Session-Ingress-CallId` and `NET-Session-Egress-CallId`;
  Ribbon's published sample record has `Acct-Session-Id` equal to the ingress call id on the
  ingress leg. From that (an inference, not a documented rule) the ingress leg is recognised as
  `Acct-Session-Id == NET-Session-Ingress-CallId` while the egress call id names another leg;
  it gives nothing, and the egress leg, toward the called party, is the call.
- Anything else: `Acct-Multi-Session-Id` when present, else `Acct-Session-Id`.

The source key is `<NAS>|<kind>|<id>`. An answered leg is keyed by the call's shared id, so
even legs this parser cannot tell apart give one call (the first one stored); an unanswered leg
is keyed by the shared id plus its own Acct-Session-Id, so that a failed first route (a reroute,
a fork) never takes the place of the answered leg of the same call: such attempts stay as
unanswered calls next to it.

Times: `h323-setup-time` (Cisco's `10:15:33.123 UTC Mon Jun 17 2024`, a leading `*` or `.`
marking a clock not synchronised) or Ribbon's `NET-Setup-Time` (Unix seconds), else the
connect time, else Event-Timestamp minus Acct-Session-Time, else the time received minus
Acct-Delay-Time and Acct-Session-Time. A Cisco time in UTC/GMT is kept aware (UTC); one in
another zone name is taken as the device's local time. Duration: Acct-Session-Time, else
disconnect minus connect time. Numbers: Calling-/Called-Station-Id, else Ribbon's
NET-Calling-/NET-Called-Number; a SIP or tel URI gives its user part. The trunk (and origin
trunk) is the gateway: NAS-IP-Address, else NAS-IPv6-Address, NAS-Identifier, the sender.
The direction is left to the dial plan.
"""
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from observers.parsers.base import (
    MAX_DURATION,
    CallRecord,
    ParseError,
    Reject,
    check_record,
    split_lines,
)

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# Cisco's NTP-style time: [*|.]hh:mm:ss[.mmm] ZONE Www Mmm dd yyyy
_CISCO_TIME = re.compile(
    r"[*.]?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s+(\S+)\s+[A-Za-z]{3}\s+([A-Za-z]{3})\s+"
    r"(\d{1,2})\s+(\d{4})")
_UTC_NAMES = {"UTC", "GMT", "Z", "UT"}
# Ribbon's NET-Session-Egress-CallId when the call has no egress leg (yet).
_NO_LEG = {"", "65535"}
_URI = re.compile(r"(?:sips?|tel):([^@;>]*)", re.IGNORECASE)


class _Attributes:
    """The attributes of one line: case-insensitive names, values as stripped strings. Cisco
    writes its VSAs as `name=value` (h323-conf-id = "h323-conf-id=…"): the name is removed.
    A `Cisco-AVPair` "name=value" supplies an attribute the line does not have by name."""

    def __init__(self, record: Mapping):
        self.values: dict[str, list[str]] = {}
        for name, value in record.items():
            items = value if isinstance(value, list) else [value]
            self.values.setdefault(name.lower(), []).extend(
                str(item).strip() for item in items
                if isinstance(item, str | int | float) and not isinstance(item, bool))
        for pair in self.values.get("cisco-avpair", []):
            name, sep, value = pair.partition("=")
            if sep and name.strip():
                self.values.setdefault(name.strip().lower(), [value.strip()])

    def get(self, name: str) -> str:
        for value in self.values.get(name.lower(), []):
            if value.lower().startswith(name.lower() + "="):
                value = value[len(name) + 1:].strip()
            if value:
                return value
        return ""


def _integer(value: str, name: str) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ParseError(f"{name} {value!r} is not a whole number") from None
    if number < 0:
        raise ParseError(f"{name} {number} is negative")
    return number


def _cisco_time(value: str, name: str) -> datetime | None:
    """Cisco's `[*.]10:15:33.123 UTC Mon Jun 17 2024`: aware (UTC) when the zone is UTC/GMT,
    else naive, the device's time."""
    if not value:
        return None
    match = _CISCO_TIME.fullmatch(value.strip())
    if match is None:
        raise ParseError(f"{name} {value!r} is not a time like '10:15:33.123 UTC Mon Jun 17 2024'")
    hour, minute, second, _, zone, month, day, year = match.groups()
    if month.lower() not in _MONTHS:
        raise ParseError(f"{name} {value!r} has an unknown month {month!r}")
    try:
        moment = datetime(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute),
                          int(second))
    except ValueError:
        raise ParseError(f"{name} {value!r} is not a valid date and time") from None
    return moment.replace(tzinfo=UTC) if zone.upper() in _UTC_NAMES else moment


def _epoch(value: str, name: str) -> datetime | None:
    """Unix seconds (Event-Timestamp, Ribbon's NET-*-Time); 0 means "never"."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ParseError(f"{name} {value!r} is not Unix seconds") from None
    if seconds == 0:
        return None
    if not 0 < seconds < 4_102_444_800:  # before 2100
        raise ParseError(f"{name} {value!r} is out of range")
    return datetime.fromtimestamp(int(seconds), UTC)


def _received(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"_received {value!r} is not an ISO time") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(value: str, name: str = "number") -> str:
    """A number as recorded; the user part of a SIP or tel URI. The RADIUS source writes a
    value that is not UTF-8 text as its bytes in hex (`0x…`): not a number."""
    if value.startswith("0x") and len(value) > 2:
        raise ParseError(f"{name} is not text (bytes that are not UTF-8: {value[:40]}): not a "
                         "telephone number")
    value = value.strip().strip("<>")
    match = _URI.match(value)
    return match.group(1) if match else value


def _seconds_between(first: datetime | None, last: datetime | None) -> int | None:
    if first is None or last is None or (first.tzinfo is None) != (last.tzinfo is None):
        return None
    return max(0, round((last - first).total_seconds()))


def _leg_given_elsewhere(a: _Attributes) -> bool:
    """The leg toward the caller, when its call has a leg toward the called party (module
    docstring): that other leg is the call."""
    if a.get("h323-call-origin").lower() == "answer":
        return True
    ingress, egress = a.get("NET-Session-Ingress-CallId"), a.get("NET-Session-Egress-CallId")
    session = a.get("Acct-Session-Id")
    return bool(ingress) and session == ingress and egress not in _NO_LEG and egress != ingress


def _call_id(a: _Attributes) -> tuple[str, str]:
    for kind, name in (("conf", "h323-conf-id"), ("multi", "Acct-Multi-Session-Id"),
                       ("session", "Acct-Session-Id")):
        value = a.get(name)
        if value:
            return kind, value
    raise ParseError("no h323-conf-id, Acct-Multi-Session-Id nor Acct-Session-Id: the call "
                     "cannot be told apart from others")


def parse_record(record: Mapping) -> CallRecord | None:
    """The call of one Stop record, or None for a leg whose call is given by another leg."""
    a = _Attributes(record)
    status = a.get("Acct-Status-Type")
    if not status:
        raise ParseError("no Acct-Status-Type")
    if status.lower() not in ("stop", "2"):
        raise ParseError(f"Acct-Status-Type is {status}: only Stop records are calls")
    if _leg_given_elsewhere(a):
        return None
    kind, call_id = _call_id(a)
    nas = (a.get("NAS-IP-Address") or a.get("NAS-IPv6-Address") or a.get("NAS-Identifier")
           or a.get("_peer"))

    setup = (_cisco_time(a.get("h323-setup-time"), "h323-setup-time")
             or _epoch(a.get("NET-Setup-Time"), "NET-Setup-Time"))
    cisco_connect = _cisco_time(a.get("h323-connect-time"), "h323-connect-time")
    net_connect = _epoch(a.get("NET-Connect-Time"), "NET-Connect-Time")
    session_time = _integer(a.get("Acct-Session-Time"), "Acct-Session-Time")
    if session_time is not None:
        duration = session_time
    else:
        duration = (_seconds_between(cisco_connect, _cisco_time(a.get("h323-disconnect-time"),
                                                                "h323-disconnect-time"))
                    or _seconds_between(net_connect, _epoch(a.get("NET-Disconnect-Time"),
                                                            "NET-Disconnect-Time"))
                    or 0)
    if duration > MAX_DURATION:
        raise ParseError(f"duration {duration} s is longer than {MAX_DURATION // 3600} hours")
    start = setup or cisco_connect or net_connect
    if start is None:
        event = _epoch(a.get("Event-Timestamp"), "Event-Timestamp")
        if event is None:
            received = _received(a.get("_received"))
            delay = _integer(a.get("Acct-Delay-Time"), "Acct-Delay-Time") or 0
            event = received - timedelta(seconds=delay) if received else None
        if event is None:
            raise ParseError("no start time: none of h323-setup-time, NET-Setup-Time, a connect "
                             "time, Event-Timestamp, _received")
        start = event - timedelta(seconds=duration)
    answered = duration > 0 or cisco_connect is not None or net_connect is not None

    called = _number(a.get("Called-Station-Id") or a.get("NET-Called-Number"), "the called number")
    if not called:
        raise ParseError("no Called-Station-Id (nor NET-Called-Number): a call needs the "
                         "called number")
    calling = _number(a.get("Calling-Station-Id") or a.get("NET-Calling-Number"),
                      "the calling number")
    key = f"{nas}|{kind}|{call_id}"
    if not answered:
        session = a.get("Acct-Session-Id")
        if session and not (kind == "session" and session == call_id):
            key += f"|{session}"
    return CallRecord(
        source_key=key,
        start=start.replace(microsecond=0),
        duration=duration,
        direction=None,
        extension=calling,
        dialled=called,
        trunk=nas,
        answered=answered,
        origin_trunk=nas,
    )


def parse_line(text: str) -> CallRecord | None:
    """One JSON line; None for a leg whose call is given by another leg."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ParseError(f"not a JSON object but {type(record).__name__}: a RADIUS line is an "
                         "object of attributes")
    try:
        return parse_record(record)
    except OverflowError:  # e.g. an Acct-Delay-Time of centuries
        raise ParseError("a time or delay is out of range") from None


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every non-blank line (legs whose call is given by
    another leg yield nothing). No options are read."""
    for number, text in split_lines(data):
        try:
            record = parse_line(text)
            if record is not None:
                yield check_record(record)
        except ParseError as exc:
            yield Reject(number, text, str(exc))
