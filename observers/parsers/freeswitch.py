"""FreeSWITCH `Master.csv`, as mod_cdr_csv writes it. Pure.

mod_cdr_csv fills a template per call leg; the option {"template": ...} names the one the
switch uses (cdr_csv.conf.xml's `default-template`):

- `example` (the default): caller_id_name, caller_id_number, destination_number, context,
  start_stamp, answer_stamp, end_stamp, duration, billsec, hangup_cause, uuid, bleg_uuid,
  accountcode, read_codec, write_codec. Lines of 13 fields (the module's built-in template,
  without the codecs) and of the `linksys` (17) and `snom` (20) templates, which start the
  same way, are read too.
- `asterisk`: accountcode, caller_id_number, destination_number, context, caller_id,
  channel_name, bridge_channel, last_app, last_arg, start_stamp, answer_stamp, end_stamp,
  duration, billsec, hangup_cause, amaflags, uuid, userfield.
- `opencdrrate`: uuid, signal_bond, direction, ani, destination_number, answer_stamp,
  end_stamp, billsec, accountcode, userfield, network_addr, the caller name's first letter,
  sip_gateway_name. It has no start time: the answer time stands for it, or the end time
  for a call never answered.

mod_cdr_csv quotes every field but does not escape quotes inside values (a caller ID such as
`"Bob" <100>` is written as is), so a line that is not valid CSV but is quoted fields joined
by `","` is split on that. Files re-saved by a spreadsheet lose the quotes and write dates
as `YYYY/M/D H:MM`: both are read. Times are the switch's local time.
"""
import csv
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime

from observers.parsers.base import (
    EARLIEST,
    MAX_NUMBER,
    MAX_SOURCE_KEY,
    MAX_TRUNK,
    CallRecord,
    ParseError,
    Reject,
    check_record,
    shown,
    split_lines,
    whole_seconds,
)

EXAMPLE = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp",
    "answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid",
    "accountcode", "read_codec", "write_codec",
)
ASTERISK = (
    "accountcode", "caller_id_number", "destination_number", "context", "caller_id",
    "channel_name", "bridge_channel", "last_app", "last_arg", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "amaflags", "uuid", "userfield",
)
OPENCDRRATE = (
    "uuid", "signal_bond", "direction", "ani", "destination_number", "answer_stamp",
    "end_stamp", "billsec", "accountcode", "userfield", "network_addr",
    "original_caller_id_name_initial", "sip_gateway_name",
)
TEMPLATES = {"example": EXAMPLE, "asterisk": ASTERISK, "opencdrrate": OPENCDRRATE}
# Field counts accepted per template: `example` also as the built-in default (13 fields),
# `linksys` (17) and `snom` (20), which share its first 13 fields.
_COUNTS = {"example": (13, 15, 17, 20), "asterisk": (18,), "opencdrrate": (13,)}
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M")
_QUOTED_SEPARATOR = re.compile(r'"\s*,\s*"')


def _fields(text: str) -> list[str]:
    """The fields of one line: CSV, or else mod_cdr_csv's unescaped `"a","b"` fields."""
    try:
        rows = list(csv.reader([text], strict=True, skipinitialspace=True))
        if len(rows) == 1:
            return rows[0]
    except csv.Error:
        pass
    line = text.strip()
    if len(line) >= 2 and line[0] == '"' and line[-1] == '"':
        return _QUOTED_SEPARATOR.split(line[1:-1])
    raise ParseError("the line is neither CSV nor quoted fields joined by commas")






def _time(value: str, name: str) -> datetime | None:
    if not value:
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ParseError(f"{name} {shown(value)} is not a date and time (YYYY-MM-DD HH:MM:SS)")


def _limited(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise ParseError(f"{name} is {len(value)} characters long, more than {limit}")
    return value


def gateway(channel: str) -> str:
    """The trunk a Sofia channel went through: the gateway of `sofia/gateway/<name>/...`,
    else the far host of `sofia/<profile>/<user>@<host>`."""
    channel = channel.strip()
    parts = channel.split("/")
    if len(parts) >= 3 and parts[1] == "gateway":
        return parts[2]
    user, at, host = parts[-1].rpartition("@")
    return host if at else channel


def parse_row(row: list[str], template: str = "example") -> CallRecord:
    """One Master.csv line written with `template`."""
    if len(row) not in _COUNTS[template]:
        counts = " or ".join(str(n) for n in _COUNTS[template])
        raise ParseError(f"expected {counts} fields (the {template} template), found {len(row)}")
    f = {name: value.strip() for name, value in zip(TEMPLATES[template], row, strict=False)}
    billsec = whole_seconds(f["billsec"], "billsec")
    answer = _time(f["answer_stamp"], "answer_stamp")
    end = _time(f["end_stamp"], "end_stamp")
    if answer is not None and answer < EARLIEST:
        # Old releases wrote the epoch (1970) for a call never answered.
        answer = None
    answered = answer is not None or billsec > 0
    if template == "opencdrrate":
        start, start_name = answer or end, "answer_stamp and end_stamp are both"
    else:
        start, start_name = _time(f["start_stamp"], "start_stamp"), "start_stamp is"
    if start is None:
        raise ParseError(f"{start_name} empty")
    # (calling number field, leaving trunk, incoming trunk) as each template has them.
    if template == "opencdrrate":
        caller_name, trunk, origin = "ani", f["sip_gateway_name"], ""
    elif template == "asterisk":
        caller_name, trunk, origin = ("caller_id_number", gateway(f["bridge_channel"]),
                                      gateway(f["channel_name"]))
    else:
        caller_name, trunk, origin = "caller_id_number", "", ""
    source_key = f["uuid"]
    if not source_key:
        # A spreadsheet may have lost it; the record's own digest is still stable.
        digest = hashlib.sha256("\x1f".join(f.values()).encode("utf-8", "surrogatepass"))
        source_key = f"sha256:{digest.hexdigest()[:32]}"
    return CallRecord(
        source_key=_limited(source_key, "uuid", MAX_SOURCE_KEY),
        start=start,
        duration=billsec if answered else 0,
        direction=None,
        extension=_limited(f[caller_name], caller_name, MAX_NUMBER),
        dialled=_limited(f["destination_number"], "destination_number", MAX_NUMBER),
        trunk=_limited(trunk, "the trunk (sip_gateway_name or bridge_channel)", MAX_TRUNK),
        answered=answered,
        origin_trunk=_limited(origin, "the gateway of channel_name", MAX_TRUNK),
    )


def _is_header(row: list[str], template: str) -> bool:
    """Column names (`billsec` or `${billsec}`), as a spreadsheet export puts them first."""
    position = TEMPLATES[template].index("billsec")
    return len(row) > position and row[position].strip().lower() in ("billsec", "${billsec}")


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every non-blank line of a FreeSWITCH Master.csv.
    Option: template, one of example (the default), asterisk, opencdrrate."""
    template = (options.get("template") if isinstance(options, Mapping) else None) or "example"
    for number, text in split_lines(data):
        try:
            if not isinstance(template, str) or template not in TEMPLATES:
                # A setting, not the data, is wrong: every line is kept with the reason.
                raise ParseError(f"the parser option template {shown(str(template))} is not one of "
                                 f"{', '.join(TEMPLATES)}")
            row = _fields(text)
            if _is_header(row, template):
                continue
            yield check_record(parse_row(row, template))
        except ParseError as exc:
            yield Reject(number, text, str(exc))
