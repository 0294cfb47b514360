"""3CX CDR: the v16-v18 field set (27 comma-separated fields) and the v20 field set. Pure.

v16-v18 default order, as 3CX documents it: historyid, callid, duration, time-start,
time-answered, time-end, reason-terminated, from-no, to-no, from-dn, to-dn, dial-no,
reason-changed, final-number, final-dn, bill-code, bill-rate, bill-cost, bill-name, chain,
from-type, to-type, final-type, from-dispname, to-dispname, final-dispname, missed-queue-calls.

v20 field names are those of 3CX's `cdroutput` call-data table (3CX's "Call Detail Record
(CDR) complete guide" documents cdr_id, call_history_id and the participant fields; the full
column order is taken from that table's definition). 3CX does not publish which of them its
CDR file/socket service writes by default nor in which order, so FIELDS_V20 is the table order:
an installation that writes another selection names it with the "fields" option.

Options (the observer profile's settings["parser"]):
    {"fields": "v18" | "v20" | [names in the configured order]}
Without "fields" each line is recognised by itself: its first field a UUID (a v20 cdr_id,
such as 00000000-01db-aef6-c109-60ec0000004c) means the v20 default set; anything else is read
as the v18 default set ("Call <n>" first, 23-27 fields), which is what 3CX v20 itself still
writes until the new CDR output is selected. A header line (the field names) is skipped.
"""
import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from observers.parsers.base import MAX_DURATION, CallRecord, ParseError, Reject, check_record, split_lines
from tariffs.choices import Direction

FIELDS_V18 = (
    "historyid", "callid", "duration", "time-start", "time-answered", "time-end",
    "reason-terminated", "from-no", "to-no", "from-dn", "to-dn", "dial-no", "reason-changed",
    "final-number", "final-dn", "bill-code", "bill-rate", "bill-cost", "bill-name", "chain",
    "from-type", "to-type", "final-type", "from-dispname", "to-dispname", "final-dispname",
    "missed-queue-calls",
)
# The cdroutput columns in table order, without the table's own bookkeeping columns
# (processed, migrated, offload_id), which describe the database row, not the call.
FIELDS_V20 = (
    "cdr_id", "call_history_id",
    "source_participant_id", "source_entity_type", "source_dn_number", "source_dn_type",
    "source_dn_name", "source_participant_name", "source_participant_phone_number",
    "source_participant_trunk_did", "source_participant_is_incoming",
    "source_participant_is_already_connected", "source_participant_group_name",
    "source_participant_billing_suffix",
    "destination_participant_id", "destination_entity_type", "destination_dn_number",
    "destination_dn_type", "destination_dn_name", "destination_participant_name",
    "destination_participant_phone_number", "destination_participant_trunk_did",
    "destination_participant_is_incoming", "destination_participant_is_already_connected",
    "destination_participant_group_name", "destination_participant_billing_suffix",
    "base_cdr_id", "originating_cdr_id", "creation_method", "creation_forward_reason",
    "termination_reason", "terminated_by_participant_id", "continued_in_cdr_id",
    "cdr_started_at", "cdr_ended_at", "cdr_answered_at", "termination_reason_details",
    "main_call_history_id", "source_presentation",
)
FIELD_SETS = {"v18": FIELDS_V18, "v20": FIELDS_V20}

# What a configured field list must contain for the record to be built (the others are
# optional and read as empty). The pairs are alternatives: one of the two is enough.
REQUIRED = {
    "v18": ("time-start", "time-answered", "duration", "from-no", "to-no", "from-dn", "to-dn",
            "from-type", "to-type", ("historyid", "callid")),
    "v20": ("cdr_id", "cdr_started_at", "cdr_answered_at", "cdr_ended_at", "source_dn_number",
            "destination_dn_number", "source_participant_phone_number",
            "destination_participant_phone_number",
            ("source_entity_type", "source_dn_type"),
            ("destination_entity_type", "destination_dn_type")),
}

_EXTERNAL = {"Line", "External", "Trunk", "Bridge"}
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class FieldLayout:
    """Which field set a line follows and where each field is."""

    family: str  # "v18" or "v20": which mapping to CallRecord applies
    names: tuple[str, ...]  # field names in line order; unknown names are skipped columns
    configured: bool  # a list from the options: the line must have exactly len(names) fields


_DEFAULT = {family: FieldLayout(family, names, False) for family, names in FIELD_SETS.items()}


def _field_name(name: str) -> str:
    """The canonical spelling: v18 names with hyphens, v20 names with underscores (3CX's
    own screens and third-party guides write either)."""
    name = name.strip().lower()
    if name.replace("_", "-") in FIELDS_V18:
        return name.replace("_", "-")
    if name.replace("-", "_") in FIELDS_V20:
        return name.replace("-", "_")
    return name


def validate_options(options) -> list[str]:
    """What is wrong with the 3CX parser options, one message per problem naming the key."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [f"parser options must be a mapping, not {type(options).__name__}"]
    errors = [f"unknown option {key!r}: the 3CX parser reads only 'fields'"
              for key in options if key != "fields"]
    if "fields" not in options:
        return errors
    fields = options["fields"]
    if isinstance(fields, str):
        if fields not in FIELD_SETS:
            errors.append(f"fields: {fields!r} is not a field set; use 'v18', 'v20' or a list of "
                          "field names")
        return errors
    if not isinstance(fields, list | tuple) or not fields:
        return [*errors, "fields: must be 'v18', 'v20' or a non-empty list of field names"]
    if not all(isinstance(name, str) and name.strip() for name in fields):
        return [*errors, "fields: every field name must be a non-empty string"]
    names = [_field_name(name) for name in fields]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.append(f"fields: {', '.join(duplicates)} named more than once")
    v18 = [name for name in names if name in FIELDS_V18]
    v20 = [name for name in names if name in FIELDS_V20]
    if v18 and v20:
        errors.append(f"fields: mixes v18 names ({', '.join(v18[:3])}) with v20 names "
                      f"({', '.join(v20[:3])})")
        return errors
    if not v18 and not v20:
        errors.append("fields: names no 3CX CDR field (e.g. 'historyid' for v18, 'cdr_id' for v20)")
        return errors
    family = "v20" if v20 else "v18"
    for need in REQUIRED[family]:
        alternatives = need if isinstance(need, tuple) else (need,)
        if not any(name in names for name in alternatives):
            errors.append(f"fields: the {family} list must include {' or '.join(alternatives)}")
    return errors


def field_layout(options) -> FieldLayout | None:
    """The layout the options name, or None: recognise each line by itself."""
    fields = (options or {}).get("fields")
    if fields is None:
        return None
    if isinstance(fields, str):
        return _DEFAULT[fields]
    names = tuple(_field_name(name) for name in fields)
    family = "v20" if any(name in FIELDS_V20 for name in names) else "v18"
    return FieldLayout(family, names, True)


_V18_TIME = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d")


def _time(value: str, name: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    if _V18_TIME.fullmatch(value):
        # 3CX's own `YYYY/MM/DD hh:mm:ss`, read without strptime (ten times faster).
        try:
            return datetime.fromisoformat(value.replace("/", "-"))
        except ValueError:
            pass  # e.g. 2024/13/45: strptime below gives the reason
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ParseError(f"{name} {value!r} is not a date and time")


def _timestamp(value: str, name: str) -> datetime | None:
    """A v20 time: ISO 8601 (`2025-04-01 08:00:05.123456+00`, `...T...Z`), or a v18 format.
    A time with a zone is returned in UTC and stays aware; one without is the PBX's time."""
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _time(value, name)
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


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
    """One CDR row in the v18 default field order."""
    record = _row_record(row, _DEFAULT["v18"])
    assert record is not None  # only v20 rows can be routing steps
    return record


def _row_record(row: list[str], layout: FieldLayout) -> CallRecord | None:
    """The record of one row in `layout`, or None for a v20 routing step (see _record_v20)."""
    if layout.configured:
        if len(row) != len(layout.names):
            raise ParseError(f"expected {len(layout.names)} fields (the configured field list), "
                             f"found {len(row)}")
    elif layout.family == "v18":
        if not 23 <= len(row) <= len(FIELDS_V18):
            # Fewer: a cut line; more: two records run together. Neither is guessed at.
            raise ParseError(f"expected {len(FIELDS_V18)} fields, found {len(row)}")
    elif len(row) != len(FIELDS_V20):
        raise ParseError(f"expected {len(FIELDS_V20)} fields (the 3CX v20 default set), found "
                         f"{len(row)}; name the configured order in the parser option 'fields'")
    f = dict(zip(layout.names, map(str.strip, row), strict=False))
    if layout.configured or len(row) < len(layout.names):
        for name in FIELD_SETS[layout.family]:  # the fields the line does not have: empty
            f.setdefault(name, "")
    return _record_v18(f) if layout.family == "v18" else _record_v20(f)


def _record_v18(f: dict[str, str]) -> CallRecord:
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


_EXT, _LINE, _OTHER = "extension", "line", "other"
# Entity types (and DN types) that stand for the PBX's outside lines. `outbound_rule` is seen
# as the destination of outgoing legs in some v20 builds; `provider` is the DN type of a trunk.
_LINE_TYPES = {"external_line", "outbound_rule", "provider", "line"}


def _kind(entity_type: str, dn_type: str) -> str:
    value = (entity_type or dn_type).strip().lower().replace(" ", "_").replace("-", "_")
    if value == "extension":
        return _EXT
    return _LINE if value in _LINE_TYPES else _OTHER


def _record_v20(f: dict[str, str]) -> CallRecord | None:
    """One v20 CDR: one leg of a call flow, from a source participant to a destination.

    The extension/outside-line pairs map directly. A leg from a queue, ring group, IVR or
    other PBX service to an extension that was answered is delivered with direction None
    (the caller's number and the extension), so the dial plan tells an outside caller from
    an inside one; a leg from any of them out over a line is kept as the call that costs.
    Legs into a PBX service, and unanswered service-to-extension legs (agents polled by a
    queue, members rung by a ring group), are routing steps and give no record.
    """
    if not f["cdr_id"]:
        raise ParseError("cdr_id is empty")
    start = _timestamp(f["cdr_started_at"], "cdr_started_at")
    if start is None:
        raise ParseError("cdr_started_at is empty")
    answered = _timestamp(f["cdr_answered_at"], "cdr_answered_at")
    ended = _timestamp(f["cdr_ended_at"], "cdr_ended_at")
    duration = 0
    if answered is not None:
        if ended is None:
            raise ParseError("cdr_ended_at is empty but the call was answered")
        if (answered.tzinfo is None) != (ended.tzinfo is None):
            raise ParseError("cdr_answered_at and cdr_ended_at are not both with or without a zone")
        talk = (ended - answered).total_seconds()
        if talk < 0:
            raise ParseError("cdr_ended_at is before cdr_answered_at")
        if talk > MAX_DURATION:
            raise ParseError(f"talk time {talk:.0f} s is longer than {MAX_DURATION // 3600} hours")
        duration = int(talk + 0.5)
    source = _kind(f["source_entity_type"], f["source_dn_type"])
    target = _kind(f["destination_entity_type"], f["destination_dn_type"])
    caller = f["source_participant_phone_number"] or f["source_dn_number"]
    called = f["destination_participant_phone_number"]
    origin_trunk = ""
    if source == _EXT and target == _EXT:
        direction, extension, other, trunk = (Direction.INTERNAL, f["source_dn_number"],
                                              f["destination_dn_number"], "")
    elif source == _LINE and target == _EXT:
        direction, extension, other, trunk = (Direction.INCOMING, f["destination_dn_number"],
                                              f["source_participant_phone_number"],
                                              f["source_dn_number"])
    elif target == _LINE:
        if not called:
            raise ParseError("destination_participant_phone_number is empty on a leg to an "
                             "outside line")
        if source == _EXT:
            direction, extension = Direction.OUTGOING, f["source_dn_number"]
        else:
            # Passing through (forwarded or overflowed outside): the dial plan and the route
            # decide, as for other formats that do not say.
            direction, extension = None, caller
            origin_trunk = f["source_dn_number"] if source == _LINE else ""
        other, trunk = called, f["destination_dn_number"]
    elif target == _EXT and source == _OTHER and answered is not None:
        direction, extension, other, trunk = None, caller, f["destination_dn_number"], ""
    else:
        return None
    return CallRecord(
        source_key=f["cdr_id"],
        start=start.replace(microsecond=0),
        duration=duration,
        direction=direction,
        extension=extension,
        dialled=other,
        trunk=trunk,
        answered=answered is not None,
        origin_trunk=origin_trunk,
    )


_HEADER_FIRST = {"historyid", "cdr_id", "cdr-id", "history-id", "history_id"}


def _is_header(row: list[str]) -> bool:
    if not row or row[0].strip().lower() not in _HEADER_FIRST:
        return False  # every record starts with its id, never with a field name
    names = [_field_name(value) for value in row if value.strip()]
    return bool(names) and names[0] in ("historyid", "cdr_id") and all(
        name in FIELDS_V18 or name in FIELDS_V20 for name in names)


def _line_layout(row: list[str]) -> FieldLayout:
    """Auto-detection: a UUID first (a v20 cdr_id) is the v20 default set, else v18."""
    return _DEFAULT["v20" if row and _UUID.fullmatch(row[0].strip()) else "v18"]


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every non-blank line of a 3CX CDR file or stream
    (v20 routing-step legs and header lines give nothing).

    Raises ValueError at once, before reading any data, when the options themselves are
    wrong (the messages of validate_options): that is a configuration error, not bad data.
    """
    errors = validate_options(options)
    if errors:
        raise ValueError("; ".join(errors))
    return _parse(data, field_layout(options))


def _parse(data: bytes, layout: FieldLayout | None):
    for number, text in split_lines(data):
        try:
            if '"' in text or "\r" in text or "\0" in text:
                rows = list(csv.reader([text], strict=True))
                if len(rows) != 1:
                    raise ParseError("not one CSV record")
                row = rows[0]
            else:  # no quoting: the csv module would only split at the commas
                row = text.split(",")
            if _is_header(row):
                continue
            record = _row_record(row, layout or _line_layout(row))
            if record is not None:
                yield check_record(record)
        except csv.Error as exc:
            yield Reject(number, text, f"not a CSV record: {exc}")
        except ParseError as exc:
            yield Reject(number, text, str(exc))
