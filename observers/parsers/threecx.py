"""3CX CDR (the v16-v18 default field set, 27 comma-separated fields). Pure.

Field order as 3CX documents it: historyid, callid, duration, time-start, time-answered,
time-end, reason-terminated, from-no, to-no, from-dn, to-dn, dial-no, reason-changed,
final-number, final-dn, bill-code, bill-rate, bill-cost, bill-name, chain, from-type,
to-type, final-type, from-dispname, to-dispname, final-dispname, missed-queue-calls.
"""
import csv
from collections.abc import Mapping
from datetime import datetime

from observers.parsers.base import MAX_DURATION, CallRecord, ParseError, Reject, check_record, split_lines
from tariffs.models import Direction

FIELDS_V18 = (
    "historyid", "callid", "duration", "time-start", "time-answered", "time-end",
    "reason-terminated", "from-no", "to-no", "from-dn", "to-dn", "dial-no", "reason-changed",
    "final-number", "final-dn", "bill-code", "bill-rate", "bill-cost", "bill-name", "chain",
    "from-type", "to-type", "final-type", "from-dispname", "to-dispname", "final-dispname",
    "missed-queue-calls",
)
_EXTERNAL = {"Line", "External", "Trunk", "Bridge"}
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S")


def _time(value: str, name: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ParseError(f"{name} {value!r} is not a date and time")


def _duration(value: str) -> int:
    value = value.strip()
    if not value:
        return 0
    if value.isdigit():
        total = int(value)
    else:
        parts = value.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            hours, minutes, seconds = (int(p) for p in parts)
        except ValueError:
            raise ParseError(f"duration {value!r} is not hh:mm:ss") from None
        if hours < 0 or not 0 <= minutes < 60 or not 0 <= seconds < 60:
            raise ParseError(f"duration {value!r} is out of range")
        total = hours * 3600 + minutes * 60 + seconds
    if total > MAX_DURATION:
        raise ParseError(f"duration {value!r} is longer than {MAX_DURATION // 3600} hours")
    return total


def _first_extension(chain: str) -> str:
    """The first `Ext.NNN` in a 3CX chain such as `Chain: 10000;Ext.105;+380501234567;`."""
    for part in chain.removeprefix("Chain:").split(";"):
        part = part.strip()
        if part.startswith("Ext."):
            return part[4:]
    return ""


def parse_row(row: list[str]) -> CallRecord:
    """One CDR row in the default field order."""
    if not 23 <= len(row) <= len(FIELDS_V18):
        # Fewer: a cut line; more: two records run together. Neither is guessed at.
        raise ParseError(f"expected {len(FIELDS_V18)} fields, found {len(row)}")
    f = dict(zip(FIELDS_V18, (v.strip() for v in row), strict=False))
    if not f["historyid"] and not f["callid"]:
        raise ParseError("historyid and callid are both empty")
    start = _time(f["time-start"], "time-start")
    if start is None:
        raise ParseError("time-start is empty")
    answered = _time(f["time-answered"], "time-answered")
    duration = _duration(f["duration"]) if answered else 0
    from_external = f["from-type"] in _EXTERNAL
    to_type = f["final-type"] or f["to-type"]
    to_external = to_type in _EXTERNAL or f["to-type"] in _EXTERNAL
    if from_external and not to_external:
        direction = Direction.INCOMING
        extension = f["final-dn"] or f["to-dn"]
        other = f["from-no"]
        trunk = f["from-dn"]
    elif to_external and not from_external:
        direction = Direction.OUTGOING
        extension = f["from-dn"] or f["from-no"]
        other = f["dial-no"] or f["to-no"] or f["final-number"]
        trunk = f["to-dn"] if f["to-type"] in _EXTERNAL else f["final-dn"]
    elif from_external and to_external:
        # Forwarded to an outside number: the external leg is what costs money, and the
        # extension that forwarded it (the first one in the chain) is who pays.
        direction = Direction.OUTGOING
        extension = _first_extension(f["chain"]) or f["from-dn"]
        other = f["final-number"] or f["to-no"]
        trunk = f["final-dn"] or f["to-dn"]
    else:
        direction = Direction.INTERNAL
        extension = f["from-dn"] or f["from-no"]
        other = f["final-dn"] or f["to-dn"] or f["dial-no"]
        trunk = ""
    return CallRecord(
        source_key=f"{f['historyid']}|{f['callid']}",
        start=start,
        duration=duration,
        direction=direction,
        extension=extension.removeprefix("Ext."),
        dialled=other,
        trunk=trunk,
        answered=answered is not None,
    )


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every non-blank line of a 3CX CDR file or stream.
    No options are read yet."""
    for number, text in split_lines(data):
        try:
            rows = list(csv.reader([text], strict=True))
            if len(rows) != 1:
                raise ParseError("not one CSV record")
            yield check_record(parse_row(rows[0]))
        except csv.Error as exc:
            yield Reject(number, text, f"not a CSV record: {exc}")
        except ParseError as exc:
            yield Reject(number, text, str(exc))
