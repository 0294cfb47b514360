"""What every parser returns: call records, or rejects with a reason (R2.7). Pure."""
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished call as the PBX described it, before normalisation and rating."""

    source_key: str  # stable identity at the source: the same record always has the same key
    start: datetime  # naive: in the CDR's time zone (the device's unless configured)
    duration: int  # talk time, seconds
    direction: int  # tariffs.models.Direction
    extension: str  # the subscriber's side: caller on outgoing, answering extension on incoming
    dialled: str  # the other side as recorded: the number dialled, or the caller on incoming
    trunk: str = ""  # route / gateway / line the call used, as the PBX names it


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that could not be parsed, kept with its raw text."""

    line_number: int | None
    raw: str
    reason: str


class ParseError(ValueError):
    """A record is malformed; the message is the reason shown in the rejects list."""


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
