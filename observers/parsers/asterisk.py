"""Asterisk `Master.csv`, as the cdr_csv backend writes it. Pure.

One record per line: accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp,
lastdata, start, answer, end, duration, billsec, disposition, amaflags (16 fields), then, as
cdr.conf's `[csv]` section turns them on, uniqueid (`loguniqueid`), userfield
(`loguserfield`) and peeraccount, linkedid, sequence (`newcdrcolumns`). The layout is told
by the field count: 16, 17, 18, 19, 20 or 21. With 17 or 20 the one optional field is either
uniqueid or userfield: the options `loguniqueid` / `loguserfield` say which; without them it
is taken for a uniqueid when it looks like one (`1231977075.0`, or `host-1231977075.0` with a
system name).

Strings are quoted with inner quotes doubled; numbers are not quoted; an unanswered call has
an empty answer time. Times are `YYYY-MM-DD HH:MM:SS` in the PBX's zone, or in UTC with
`usegmtime` (then `start` is aware UTC): the option {"usegmtime": true} says so.
"""
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from observers.parsers.base import (
    MAX_NUMBER,
    MAX_TRUNK,
    CallRecord,
    ParseError,
    Reject,
    check_record,
    csv_fields,
    shown,
    split_lines,
    whole_seconds,
)

FIELDS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
NEW_COLUMNS = ("peeraccount", "linkedid", "sequence")  # newcdrcolumns=yes
_BILLSEC = FIELDS.index("billsec")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# ast_channel_uniqueid: "<epoch>.<counter>", after "<systemname>-" when one is set.
_UNIQUEID = re.compile(r"(?:.+-)?[0-9]{9,}\.[0-9]+")
# The per-channel suffix Asterisk appends to a peer's name: "-00000001", and ";1" on Local.
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(;[0-9]+)?$")
_CLID_NUMBER = re.compile(r"<([^<>]*)>\s*$")
_TRUE = {"1", "true", "yes", "on", "y"}




def _flag(options: Mapping, name: str) -> bool | None:
    """A yes/no option as cdr.conf spells it (yes, true, 1, on), or None when not given."""
    if name not in options:
        return None
    value = options[name]
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def layout(row: list[str], options: Mapping) -> tuple[str, ...]:
    """The field names of a row, told by its field count and the options."""
    extra = len(row) - len(FIELDS)
    if not 0 <= extra <= 5:
        raise ParseError(f"expected 16 to 21 fields (the layouts of cdr_csv), found {len(row)}")
    new_columns = NEW_COLUMNS if extra >= 3 else ()
    optional = extra - len(new_columns)
    if optional == 2:
        return FIELDS + ("uniqueid", "userfield") + new_columns
    if optional == 0:
        return FIELDS + new_columns
    uniqueid = _flag(options, "loguniqueid")
    if uniqueid is None:
        userfield = _flag(options, "loguserfield")
        uniqueid = (not userfield if userfield is not None
                    else bool(_UNIQUEID.fullmatch(row[len(FIELDS)].strip())))
    return FIELDS + ("uniqueid" if uniqueid else "userfield",) + new_columns


def peer(channel: str) -> str:
    """The trunk or peer a channel belongs to: `SIP/trunk-00000001` → `trunk`,
    `PJSIP/provider-0000000a` → `provider`; DAHDI keeps its technology (`DAHDI/1-1` →
    `DAHDI/1`), since a bare channel number names nothing."""
    channel = channel.strip().split("<", 1)[0]  # "<ZOMBIE>" and the like, after masquerades
    technology, slash, rest = channel.partition("/")
    if not slash:
        return channel
    rest = _CHANNEL_SUFFIX.sub("", rest)
    if technology.upper() in ("DAHDI", "ZAP"):
        return f"{technology}/{rest.split('/', 1)[0]}"
    return rest






def _time(value: str, name: str, gmt: bool) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        raise ParseError(
            f"{name} {shown(value)} is not a date and time (YYYY-MM-DD HH:MM:SS)") from None
    return moment.replace(tzinfo=UTC) if gmt else moment


def _limited(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise ParseError(f"{name} is {len(value)} characters long, more than {limit}")
    return value


def _source_key(f: dict[str, str]) -> str:
    """uniqueid with sequence (which Asterisk documents as identifying a CDR together with
    uniqueid and linkedid). Without a sequence, one channel's several CDRs (forks,
    transfers, retries of Dial) share a uniqueid, so a digest of the record keeps them apart;
    without any id, the digest alone."""
    uniqueid, sequence = f.get("uniqueid", ""), f.get("sequence", "")
    if sequence and (uniqueid or f.get("linkedid")):
        return f"{uniqueid or f['linkedid']}/{sequence}"
    digest = hashlib.sha256("\x1f".join(f.values()).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{uniqueid}/{digest[:16]}" if uniqueid else f"sha256:{digest[:32]}"


def parse_row(row: list[str], options: Mapping) -> CallRecord:
    """One Master.csv line."""
    names = layout(row, options)
    f = {name: value.strip() for name, value in zip(names, row, strict=True)}
    gmt = bool(_flag(options, "usegmtime"))
    start = _time(f["start"], "start", gmt)
    if start is None:
        raise ParseError("start is empty")
    _time(f["answer"], "answer", gmt)  # a malformed answer time is a malformed line
    billsec = whole_seconds(f["billsec"], "billsec")
    answered = f["disposition"].upper() == "ANSWERED"
    caller = f["src"]
    if not caller:
        # Some channels set only the caller ID text: `"Name" <number>`.
        match = _CLID_NUMBER.search(f["clid"])
        caller = match.group(1).strip() if match else ""
    return CallRecord(
        source_key=_source_key(f),
        start=start,
        # Talk time: billsec counts from the answer; a call not ANSWERED has none.
        duration=billsec if answered else 0,
        direction=None,
        extension=_limited(caller, "src", MAX_NUMBER),
        dialled=_limited(f["dst"], "dst", MAX_NUMBER),
        trunk=_limited(peer(f["dstchannel"]), "the peer of dstchannel", MAX_TRUNK),
        answered=answered,
        origin_trunk=_limited(peer(f["channel"]), "the peer of channel", MAX_TRUNK),
    )


def _is_header(row: list[str]) -> bool:
    """Column names, as a spreadsheet export or a hand-made file puts them first."""
    return len(row) > _BILLSEC and row[_BILLSEC].strip().lower() == "billsec"


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every non-blank line of a Master.csv. Options:
    usegmtime, loguniqueid, loguserfield (booleans, or yes/no as cdr.conf writes them)."""
    options = options if isinstance(options, Mapping) else {}
    for number, text in split_lines(data):
        try:
            row = csv_fields(text)
            if _is_header(row):
                continue
            yield check_record(parse_row(row, options))
        except ParseError as exc:
            yield Reject(number, text, str(exc))
