"""What every parser returns: call records, or rejects with a reason (R2.7). Pure."""
import csv
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished call as the PBX described it, before normalisation and rating."""

    source_key: str  # stable identity at the source: the same record always has the same key
    start: datetime  # naive: in the CDR's time zone (the device's); aware when the CDR says
    duration: int  # talk time, seconds
    # tariffs.choices.Direction, or None when the format does not say: then `extension` is
    # the calling and `dialled` the called number, and the device's dial plan decides.
    direction: int | None
    extension: str  # the subscriber's side: caller on outgoing, answering extension on incoming
    dialled: str  # the other side as recorded: the number dialled, or the caller on incoming
    trunk: str = ""  # route / gateway / line the call used (leaving, when direction is None)
    answered: bool | None = None  # None: answered when duration > 0
    origin_trunk: str = ""  # with direction None: the route / gateway the call came in on


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that could not be parsed, kept with its raw text."""

    line_number: int | None
    raw: str
    reason: str


class ParseError(ValueError):
    """A record is malformed; the message is the reason shown in the rejects list."""


# Column sizes of billing.models.Call (a test keeps the two in step).
MAX_NUMBER = 64
MAX_TRUNK = 100
MAX_SOURCE_KEY = 200
# 24 hours: longer is a broken counter, not a call.
MAX_DURATION = 24 * 3600
EARLIEST = datetime(1990, 1, 1)


# A day of slack for "in the future": the CDR's zone may be ahead of this server's.
# A NUL or another control character, or text that was bytes no decoder could read (U+FFFD,
# lone surrogates): no telephone number holds one, and a number made of its digits would
# be priced (R12.2).
_NOT_NUMBER_TEXT = re.compile("[\x00-\x1f\x7f\ufffd\ud800-\udfff]")
_SLACK = timedelta(days=1)
_latest = [0.0, EARLIEST]  # (time.time(), local now + slack) at the last look at the clock


def _latest_local() -> datetime:
    """The local time a day from now, worked out again only when the clock has moved by a
    second or more, either way (a CDR file has many records; a second of slack more or less
    changes nothing)."""
    now = time.time()
    if abs(now - _latest[0]) >= 1.0:
        _latest[:] = [now, datetime.now() + _SLACK]
    return _latest[1]


def check_record(record: CallRecord, *, now: datetime | None = None) -> CallRecord:
    """Refuse what a parser produced but the call table cannot hold or should not believe."""
    if (len(record.extension) > MAX_NUMBER or len(record.dialled) > MAX_NUMBER
            or len(record.trunk) > MAX_TRUNK or len(record.origin_trunk) > MAX_TRUNK
            or len(record.source_key) > MAX_SOURCE_KEY):  # the rare case: say which
        for name, limit in (("extension", MAX_NUMBER), ("dialled", MAX_NUMBER),
                            ("trunk", MAX_TRUNK), ("origin_trunk", MAX_TRUNK),
                            ("source_key", MAX_SOURCE_KEY)):
            value = getattr(record, name)
            if len(value) > limit:
                raise ParseError(f"{name} is {len(value)} characters long, more than {limit}")
    for name in ("extension", "dialled"):
        value = getattr(record, name)
        if _NOT_NUMBER_TEXT.search(value):
            raise ParseError(f"{name} {value!r} holds a control character or bytes that are "
                             "not text: not a telephone number")
    if not 0 <= record.duration <= MAX_DURATION:
        raise ParseError(f"duration {record.duration} s is out of range")
    start = record.start
    if start.tzinfo is not None:  # e.g. CUCM's epoch seconds, UTC
        start = start.astimezone(UTC).replace(tzinfo=None)
        latest = (now or datetime.now(UTC).replace(tzinfo=None)) + _SLACK
    else:
        latest = (now + _SLACK) if now else _latest_local()
    if start < EARLIEST or start > latest:
        raise ParseError(f"start {start:%Y-%m-%d %H:%M:%S} is before 1990 or in the future")
    return record


def decode_line(raw: bytes) -> str:
    """CDR text is UTF-8 in modern PBXs, Windows-1251 in older ones seen in the wild."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251", errors="replace")


def split_lines(data: bytes):
    """(line number, text) for every non-blank line, BOM and CR removed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = decode_line(raw).rstrip("\r")
        if text.strip():
            yield number, text


def csv_fields(text: str) -> list[str]:
    """The fields of one CSV line; a ParseError with a clear reason when it is not one."""
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        message = str(exc)
        if "unexpected end of data" in message:
            raise ParseError("a quoted field is not closed before the end of the line") from None
        if "new-line" in message:
            raise ParseError("the line has a carriage return inside a field") from None
        if "expected after" in message:
            raise ParseError("a closing quote is not followed by a comma") from None
        raise ParseError(f"the line is not valid CSV ({message})") from None
    if len(rows) != 1:
        raise ParseError("the line is not one CSV record")
    return rows[0]


def shown(value: str) -> str:
    """A value quoted in a reason, cut short: a reason is read by a person."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


_DIGITS = re.compile(r"[0-9]+")


def whole_seconds(value: str, name: str) -> int:
    """A count of seconds written as digits; a ParseError naming the field otherwise."""
    if not _DIGITS.fullmatch(value):
        raise ParseError(f"{name} {shown(value)} is not a whole number of seconds")
    if len(value) > 18:  # int() of thousands of digits is slow, or refused
        raise ParseError(f"{name} {shown(value)} is out of range")
    return int(value)
