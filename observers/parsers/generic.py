"""A configurable parser for PBXs without one of their own: delimited (CSV-like) or fixed-width
SMDR lines, laid out by the observer profile's settings["parser"] (R2.7). Pure.

The options schema (docs/formats.md has examples):

    preset            name of a ready-made layout in PRESETS; the other keys override its keys
                      ("columns" key by key)
    layout            "delimited" or "fixed" (required)
    delimiter         delimited: one character, default ","
    quote             delimited: one character, or "" for none; default '"'
    header_lines      lines at the top of each delivered file to skip, default 0; with a
                      delimited layout the first of them names the columns, and a later line
                      equal to it (files joined together) is skipped too
    encoding          any Python text codec ("utf-8", "cp1251", ...); default: UTF-8, and
                      Windows-1251 for a line that is not valid UTF-8
    columns           where each call field is (a column reference, below):
                        start (required): a column, or {"date": column, "time": column};
                        or, for a PBX that prints when the call ended, end instead of start
                        (the start is then the end less the talk time)
                        duration (required): talk time
                        extension (required): the subscriber's side
                        dialled (required): the other side (the caller on incoming calls)
                        trunk, origin_trunk, direction, answered: optional
                        key: a column or a list of them; their values joined with "|" are the
                             source key
    columns_by_direction
                      {"in" | "out" | "internal": {field: column or null}}: where extension,
                      dialled, trunk and origin_trunk are for calls of that direction
    start_format      strptime format of a single start (or end) column (default
                      "%Y-%m-%d %H:%M:%S"),
                      or "iso" (ISO 8601), or "epoch" (Unix seconds, UTC)
    date_format, time_format
                      strptime formats of a split start or end (defaults "%Y-%m-%d",
                      "%H:%M:%S")
    duration_format   "seconds" (default), "hh:mm:ss", "mm:ss" or "minutes_decimal"
    direction_values  {raw value: "in" | "out" | "internal"}, required with a direction column;
                      a value not listed leaves the direction to the dial plan
    answered_values   {raw value: true | false}, required with an answered column
    extract           {field: regular expression with one group}: the group is the value
                      (e.g. "^E(\\d+)$" turns "E201" into "201"); a value it does not match is
                      kept as it is
    skip_if           a rule or a list of rules {"column": column, "equals": [values]} or
                      {"column": column, "matches": regex}: a line any rule fits is skipped

A column reference is, in a delimited layout, a 0-based field index or (with header_lines >= 1)
a header name, matched without regard to case; in a fixed layout, [start, end] character
positions, 0-based with the end excluded (Python slicing: columns 1-8 of a printout are
[0, 8]). `key` and `direction` also take a list of references, whose values are joined with
"|" (so {"O|1": "internal"} can read a direction and an is-internal flag together).

Source key: without "key", "sha1:" and the SHA-1 of the line with its outer blanks removed.
SMDR has no call id (or one that restarts with the PBX), so the line itself is the identity:
the same line delivered twice is the same call, and two calls never print the same line
(the start time and the parties are on it).

Without a direction column the direction is None and the device's dial plan decides it from
which ends are extensions (`extension` is then the calling and `dialled` the called number).
"""
import csv
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from observers.parsers.base import MAX_DURATION, CallRecord, ParseError, Reject, check_record, split_lines
from tariffs.choices import Direction

# Ready-made layouts, selectable with {"preset": name}. Only formats whose field layout the
# vendor documents publicly are here; see docs/formats.md for the sources.
PRESETS = {
    # Avaya IP Office SMDR (IP Office Manager / Web Manager "SMDR Fields"): CSV, no header,
    # no quoting, CR LF. 0 Call Start (YYYY/MM/DD HH:MM:SS), 1 Connected Time (HH:MM:SS, talk
    # time), 2 Ring Time, 3 Caller, 4 Direction (I/O), 5 Called Number, 6 Dialled Number,
    # 7 Account, 8 Is Internal (1/0), 9 Call ID, 10 Continuation, 11 Party1Device (E<ext> for
    # an extension), 12 Party1Name, 13 Party2Device, 14 Party2Name ("LINE 5.1": line 5,
    # channel 1), 15 Hold Time, 16 Park Time, then authorisation and charge fields.
    "avaya_ip_office_smdr": {
        "layout": "delimited",
        "delimiter": ",",
        "quote": "",
        "columns": {
            "start": 0, "duration": 1, "direction": [4, 8],
            "extension": 3, "dialled": 5, "trunk": 14,
        },
        "columns_by_direction": {
            # Inbound: Caller is the outside CLI and Party1 the answering (or rung) extension.
            "in": {"extension": 11, "dialled": 3},
            "internal": {"trunk": None},
        },
        "start_format": "%Y/%m/%d %H:%M:%S",
        "duration_format": "hh:mm:ss",
        # "Internal calls are represented as O for outbound" with Is Internal 1.
        "direction_values": {"I|0": "in", "O|0": "out", "O|1": "internal"},
        "extract": {"extension": r"^E(\d+)$", "trunk": r"(?i)^line\s*(\d+)"},
    },
}

OPTION_KEYS = ("preset", "layout", "delimiter", "quote", "header_lines", "encoding", "columns",
               "columns_by_direction", "start_format", "date_format", "time_format",
               "duration_format", "direction_values", "answered_values", "extract", "skip_if")
TIME_COLUMNS = ("start", "end")  # exactly one of them
REQUIRED_COLUMNS = ("duration", "extension", "dialled")
OPTIONAL_COLUMNS = ("trunk", "origin_trunk", "direction", "answered", "key")
CALL_FIELDS = TIME_COLUMNS + REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MULTI_COLUMNS = ("key", "direction")  # may name several columns, joined with "|"
PER_DIRECTION = ("extension", "dialled", "trunk", "origin_trunk")
DURATION_FORMATS = ("seconds", "hh:mm:ss", "mm:ss", "minutes_decimal")
DIRECTIONS = {"in": Direction.INCOMING, "out": Direction.OUTGOING, "internal": Direction.INTERNAL}
DEFAULT_START_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_TIME_FORMAT = "%H:%M:%S"


# --- options ------------------------------------------------------------------------------

def resolve_options(options) -> dict:
    """The options with their preset filled in (the options' own keys win)."""
    options = dict(options or {})
    name = options.get("preset")
    if not isinstance(name, str) or name not in PRESETS:
        return options
    preset = PRESETS[name]
    merged = {**preset, **options}
    if isinstance(options.get("columns"), Mapping):
        merged["columns"] = {**preset.get("columns", {}), **options["columns"]}
    return merged


def validate_options(options) -> list[str]:
    """Every problem with the options, each message starting with the key it is about.
    An empty list: parse() will accept them."""
    if not isinstance(options, Mapping):
        return [f"options: must be a mapping, not {type(options).__name__}"]
    errors = []
    preset = options.get("preset")
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        errors.append(f"preset: {preset!r} is not one of {', '.join(sorted(PRESETS))}")
    options = resolve_options(options)
    errors += [f"{key}: unknown option (known: {', '.join(OPTION_KEYS)})"
               for key in options if key not in OPTION_KEYS]
    layout = options.get("layout")
    if layout not in ("delimited", "fixed"):
        errors.append(f"layout: must be 'delimited' or 'fixed', not {layout!r}")
        return errors  # every column reference depends on it
    errors += _check_text_options(options, layout)
    header_lines = options.get("header_lines", 0)
    named = layout == "delimited" and isinstance(header_lines, int) and header_lines >= 1
    columns = options.get("columns")
    if not isinstance(columns, Mapping):
        errors.append("columns: must be a mapping of call fields to columns")
        columns = {}
    for name in columns:
        if name not in CALL_FIELDS:
            errors.append(f"columns.{name}: not a call field (known: {', '.join(CALL_FIELDS)})")
    if isinstance(options.get("columns"), Mapping):
        errors += [f"columns.{name}: required" for name in REQUIRED_COLUMNS if name not in columns]
        if "start" not in columns and "end" not in columns:
            errors.append("columns.start: required (or columns.end, for a PBX that prints when "
                          "the call ended)")
        elif "start" in columns and "end" in columns:
            errors.append("columns.end: give the start or the end of the call, not both")
    for name, ref in columns.items():
        if name in TIME_COLUMNS and isinstance(ref, Mapping):
            errors += _check_split_time(name, ref, layout, named)
        elif name in CALL_FIELDS:
            errors += _check_ref(f"columns.{name}", ref, layout, named, multi=name in MULTI_COLUMNS)
    errors += _check_formats(options, columns)
    errors += _check_values(options, columns)
    errors += _check_by_direction(options.get("columns_by_direction"), columns, layout, named)
    errors += _check_extract(options.get("extract"))
    errors += _check_skip(options.get("skip_if"), layout, named)
    return errors


def _check_text_options(options, layout) -> list[str]:
    errors = []
    if layout == "delimited":
        delimiter = options.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n":
            errors.append(f"delimiter: must be one character (not a line end), not {delimiter!r}")
        quote = options.get("quote", '"')
        if not isinstance(quote, str) or len(quote) > 1 or quote in ("\r", "\n"):
            errors.append(f"quote: must be one character or '' for none, not {quote!r}")
        elif quote and quote == delimiter:
            errors.append("quote: must differ from the delimiter")
    else:
        errors += [f"{key}: only for the 'delimited' layout" for key in ("delimiter", "quote")
                   if key in options]
    header_lines = options.get("header_lines", 0)
    if not isinstance(header_lines, int) or isinstance(header_lines, bool) or header_lines < 0:
        errors.append(f"header_lines: must be a whole number 0 or more, not {header_lines!r}")
    if "encoding" in options:
        encoding = options["encoding"]
        try:
            if not isinstance(encoding, str):
                raise LookupError
            # Not b"": that decodes to "" without looking the codec up. Refuses unknown names
            # and non-text codecs (hex, rot13) alike.
            b"\0\0\0\0".decode(encoding)
        except UnicodeError:
            pass  # a text codec these bytes do not suit
        except LookupError:
            errors.append(f"encoding: {encoding!r} is not a text encoding Python knows")
    return errors


def _check_ref(path, ref, layout, named, *, multi=False) -> list[str]:
    if multi and _is_multi(ref, layout):
        if not ref:
            return [f"{path}: an empty list of columns"]
        return [error for i, one in enumerate(ref) for error in _check_ref(f"{path}[{i}]", one,
                                                                          layout, named)]
    if layout == "fixed":
        if (isinstance(ref, list | tuple) and len(ref) == 2
                and all(isinstance(p, int) and not isinstance(p, bool) for p in ref)
                and 0 <= ref[0] < ref[1]):
            return []
        return [f"{path}: in a fixed layout a column is [start, end] character positions "
                f"(0-based, end excluded, start < end), not {ref!r}"]
    if isinstance(ref, int) and not isinstance(ref, bool):
        return [] if ref >= 0 else [f"{path}: a column index is 0 or more, not {ref}"]
    if isinstance(ref, str) and ref.strip():
        return [] if named else [f"{path}: the column name {ref!r} needs header_lines of 1 or more"]
    return [f"{path}: a column is a 0-based index or a header name, not {ref!r}"]


def _is_multi(ref, layout) -> bool:
    if not isinstance(ref, list | tuple):
        return False
    # In a fixed layout a single column is itself a pair of numbers.
    return layout == "delimited" or all(isinstance(one, list | tuple) for one in ref)


def _check_split_time(name, ref, layout, named) -> list[str]:
    errors = [f"columns.{name}.{key}: not part of a split {name} (use 'date' and 'time')"
              for key in ref if key not in ("date", "time")]
    for part in ("date", "time"):
        if part not in ref:
            errors.append(f"columns.{name}.{part}: required when the {name} is split")
        else:
            errors += _check_ref(f"columns.{name}.{part}", ref[part], layout, named)
    return errors


def _time_column(columns) -> tuple[str, object]:
    """("start" or "end", its reference): the one moment of the call the layout names."""
    name = "start" if "start" in columns else "end"
    return name, columns.get(name)


def _check_formats(options, columns) -> list[str]:
    errors = []
    split = isinstance(_time_column(columns)[1], Mapping)
    for key in ("start_format", "date_format", "time_format"):
        if key not in options:
            continue
        value = options[key]
        if key == "start_format" and split:
            errors.append("start_format: the call's time is split; use date_format and time_format")
        elif key != "start_format" and not split:
            errors.append(f"{key}: only for a split start or end ({{'date': ..., 'time': ...}})")
        elif not (key == "start_format" and value in ("iso", "epoch")) and not _usable_format(value):
            errors.append(f"{key}: must be a strptime format such as '%d.%m.%Y %H:%M:%S'"
                          + (" or 'iso' or 'epoch'" if key == "start_format" else "")
                          + f", not {value!r}")
    duration_format = options.get("duration_format", "seconds")
    if duration_format not in DURATION_FORMATS:
        errors.append(f"duration_format: must be one of {', '.join(DURATION_FORMATS)}, "
                      f"not {duration_format!r}")
    return errors


def _usable_format(fmt) -> bool:
    """A format with a directive that reads back what it writes (catches '%Q', a lone '%')."""
    if not isinstance(fmt, str) or "%" not in fmt:
        return False
    try:
        sample = datetime(2024, 6, 17, 10, 5, 30)
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError:
        return False
    return True


def _check_values(options, columns) -> list[str]:
    errors = []
    for key, column, describe in (("direction_values", "direction", "'in', 'out' or 'internal'"),
                                  ("answered_values", "answered", "true or false")):
        values = options.get(key)
        if column in columns and values is None:
            errors.append(f"{key}: required with a {column} column")
        elif values is not None and column not in columns:
            errors.append(f"{key}: there is no {column} column (columns.{column})")
        elif values is not None and (not isinstance(values, Mapping) or not values):
            errors.append(f"{key}: must be a non-empty mapping of column values to {describe}")
        elif values is not None:
            errors += [f"{key}.{raw}: must be {describe}, not {value!r}"
                       for raw, value in values.items() if not _allowed(value, column)]
    return errors


def _allowed(value, column: str) -> bool:
    if column == "answered":
        return isinstance(value, bool)
    return isinstance(value, str) and value in DIRECTIONS


def _check_by_direction(by_direction, columns, layout, named) -> list[str]:
    if by_direction is None:
        return []
    if not isinstance(by_direction, Mapping):
        return ["columns_by_direction: must be a mapping of 'in', 'out', 'internal' to columns"]
    errors = [] if "direction" in columns else [
        "columns_by_direction: needs a direction column (columns.direction)"]
    for direction, overrides in by_direction.items():
        path = f"columns_by_direction.{direction}"
        if direction not in DIRECTIONS:
            errors.append(f"{path}: not a direction (use 'in', 'out' or 'internal')")
        elif not isinstance(overrides, Mapping):
            errors.append(f"{path}: must be a mapping of call fields to columns")
        else:
            for name, ref in overrides.items():
                if name not in PER_DIRECTION:
                    errors.append(f"{path}.{name}: only {', '.join(PER_DIRECTION)} can differ by "
                                  "direction")
                elif ref is not None:
                    errors += _check_ref(f"{path}.{name}", ref, layout, named)
    return errors


def _check_extract(extract) -> list[str]:
    if extract is None:
        return []
    if not isinstance(extract, Mapping):
        return ["extract: must be a mapping of call fields to regular expressions"]
    errors = []
    for name, pattern in extract.items():
        if name not in PER_DIRECTION + ("key",):
            errors.append(f"extract.{name}: only {', '.join(PER_DIRECTION)} and key can be "
                          "extracted")
            continue
        try:
            if not isinstance(pattern, str):
                raise re.error("not a string")
            if re.compile(pattern).groups < 1:
                errors.append(f"extract.{name}: the expression needs a group ( ) to keep")
        except re.error as exc:
            errors.append(f"extract.{name}: not a regular expression ({exc})")
    return errors


def _check_skip(skip_if, layout, named) -> list[str]:
    if skip_if is None:
        return []
    rules = skip_if if isinstance(skip_if, list) else [skip_if]
    errors = []
    for i, rule in enumerate(rules):
        path = "skip_if" if not isinstance(skip_if, list) else f"skip_if[{i}]"
        if not isinstance(rule, Mapping):
            errors.append(f"{path}: a rule is {{'column': ..., 'equals': [...]}} or "
                          "{'column': ..., 'matches': '...'}")
            continue
        errors += [f"{path}.{key}: not part of a skip rule" for key in rule
                   if key not in ("column", "equals", "matches")]
        if "column" not in rule:
            errors.append(f"{path}.column: required")
        else:
            errors += _check_ref(f"{path}.column", rule["column"], layout, named)
        if ("equals" in rule) == ("matches" in rule):
            errors.append(f"{path}: give one of 'equals' or 'matches'")
        elif "equals" in rule:
            equals = rule["equals"]
            if not (isinstance(equals, str) or (isinstance(equals, list)
                                                and all(isinstance(v, str) for v in equals))):
                errors.append(f"{path}.equals: must be a value or a list of values (strings)")
        else:
            try:
                if not isinstance(rule["matches"], str):
                    raise re.error("not a string")
                re.compile(rule["matches"])
            except re.error as exc:
                errors.append(f"{path}.matches: not a regular expression ({exc})")
    return errors


# --- the layout, compiled once per parse --------------------------------------------------

@dataclass
class _Layout:
    fixed: bool
    delimiter: str
    quote: str
    header_lines: int
    encoding: str | None
    columns: dict
    by_direction: dict
    start_format: str
    date_format: str
    time_format: str
    duration_format: str
    direction_values: dict
    answered_values: dict
    extract: dict
    skip: list
    names: dict[str, int] = field(default_factory=dict)  # header name (lower case) -> index
    header: str | None = None  # the header line's text, to skip its repeats

    @classmethod
    def from_options(cls, options: dict) -> "_Layout":
        skip = options.get("skip_if") or []
        skip = skip if isinstance(skip, list) else [skip]
        return cls(
            fixed=options["layout"] == "fixed",
            delimiter=options.get("delimiter", ","),
            quote=options.get("quote", '"'),
            header_lines=options.get("header_lines", 0),
            encoding=options.get("encoding"),
            columns=dict(options["columns"]),
            by_direction={d: dict(v) for d, v in (options.get("columns_by_direction") or {}).items()},
            start_format=options.get("start_format", DEFAULT_START_FORMAT),
            date_format=options.get("date_format", DEFAULT_DATE_FORMAT),
            time_format=options.get("time_format", DEFAULT_TIME_FORMAT),
            duration_format=options.get("duration_format", "seconds"),
            direction_values={str(k).strip(): DIRECTIONS[v]
                              for k, v in (options.get("direction_values") or {}).items()},
            answered_values={str(k).strip(): v
                             for k, v in (options.get("answered_values") or {}).items()},
            extract={k: re.compile(v) for k, v in (options.get("extract") or {}).items()},
            skip=[(rule["column"],
                   [rule["equals"]] if isinstance(rule.get("equals"), str) else rule.get("equals"),
                   re.compile(rule["matches"]) if "matches" in rule else None) for rule in skip],
        )

    def split(self, text: str) -> list[str] | str:
        """The fields of a delimited line, or the line itself for a fixed layout."""
        if self.fixed:
            return text
        reader = csv.reader([text], delimiter=self.delimiter, quotechar=self.quote or None,
                            quoting=csv.QUOTE_MINIMAL if self.quote else csv.QUOTE_NONE, strict=True)
        rows = list(reader)
        if len(rows) != 1:
            raise ParseError("not one delimited record")
        return rows[0]

    def value(self, fields: list[str] | str, ref) -> str:
        """One column's value, stripped of blanks."""
        if self.fixed:
            start, end = ref
            return fields[start:end].strip()
        if isinstance(ref, str):
            index = self.names.get(ref.strip().lower())
            if index is None:
                raise ParseError(f"the header has no column named {ref!r}")
        else:
            index = ref
        if index >= len(fields):
            raise ParseError(f"column {ref!r} is missing: the line has {len(fields)} fields")
        return fields[index].strip()

    def values(self, fields, ref) -> str:
        if _is_multi(ref, "fixed" if self.fixed else "delimited"):
            return "|".join(self.value(fields, one) for one in ref)
        return self.value(fields, ref)


# --- parsing ------------------------------------------------------------------------------

def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject (with its file line number) for every non-blank line;
    header lines and lines a skip rule fits give nothing.

    Raises ValueError at once, before reading any data, when the options are invalid: the
    message joins validate_options()'s messages. Bad options are a configuration error to fix
    in the observer profile, not bad records to keep one by one in the rejects list.
    """
    errors = validate_options(options if options is not None else {})
    if errors:
        raise ValueError("invalid generic parser options: " + "; ".join(errors))
    return _parse(data, _Layout.from_options(resolve_options(options)))


def _lines(data: bytes, encoding: str | None):
    if encoding is None:
        yield from split_lines(data)
        return
    text = data.decode(encoding, errors="replace").removeprefix("\ufeff")
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _parse(data: bytes, layout: _Layout):
    header_missing: str | None = None
    seen = 0
    for number, text in _lines(data, layout.encoding):
        seen += 1
        if seen <= layout.header_lines:
            if seen == 1 and not layout.fixed:
                layout.header = text
                try:
                    names = layout.split(text)
                except (ParseError, csv.Error) as exc:
                    header_missing = f"the header line is not a delimited record ({exc})"
                    yield Reject(number, text, header_missing)
                    continue
                layout.names = {name.strip().lower(): i for i, name in enumerate(names)}
            continue
        if layout.header is not None and text == layout.header:
            continue  # the header of a file joined on after the first
        if header_missing:
            yield Reject(number, text, header_missing)
            continue
        try:
            fields = layout.split(text)
            if _skipped(layout, fields):
                continue
            yield check_record(_record(layout, fields, text))
        except csv.Error as exc:
            yield Reject(number, text, f"not a delimited record: {exc}")
        except ParseError as exc:
            yield Reject(number, text, str(exc))


def _skipped(layout: _Layout, fields) -> bool:
    for ref, equals, pattern in layout.skip:
        value = layout.value(fields, ref)
        if (equals is not None and value in equals) or (pattern is not None and pattern.search(value)):
            return True
    return False


def _record(layout: _Layout, fields, text: str) -> CallRecord:
    columns = layout.columns
    direction = None
    if "direction" in columns:
        direction = layout.direction_values.get(layout.values(fields, columns["direction"]))
    by_direction = {}
    if direction is not None:
        by_direction = layout.by_direction.get(
            next(k for k, v in DIRECTIONS.items() if v == direction), {})

    def get(name: str) -> str:
        ref = by_direction[name] if name in by_direction else columns.get(name)
        if ref is None:
            return ""
        value = layout.values(fields, ref)
        pattern = layout.extract.get(name)
        if pattern is not None and (match := pattern.search(value)):
            value = match.group(1) or ""
        return value

    name, ref = _time_column(columns)
    moment = _moment(layout, fields, name, ref)
    duration = _duration(layout.value(fields, columns["duration"]), layout.duration_format)
    try:
        start = moment - timedelta(seconds=duration) if name == "end" else moment
    except OverflowError:  # an end in year 1 (strptime reads "0001")
        raise ParseError(f"end {moment.isoformat(sep=' ')} less the talk time is before year 1") from None
    answered = None
    if "answered" in columns:
        answered = layout.answered_values.get(layout.value(fields, columns["answered"]))
    if "key" in columns:
        key = get("key")
        if not key.strip("|"):
            raise ParseError("the key columns are empty")
    else:
        key = "sha1:" + hashlib.sha1(text.strip().encode("utf-8"), usedforsecurity=False).hexdigest()
    extension = get("extension")
    if not extension:
        raise ParseError("extension is empty")
    return CallRecord(
        source_key=key,
        start=start,
        duration=duration,
        direction=direction,
        extension=extension,
        dialled=get("dialled"),
        trunk=get("trunk"),
        answered=answered,
        origin_trunk=get("origin_trunk"),
    )


def _moment(layout: _Layout, fields, name: str, ref) -> datetime:
    """The call's start or end (`name`) as the layout reads it."""
    if isinstance(ref, Mapping):
        date, time = layout.value(fields, ref["date"]), layout.value(fields, ref["time"])
        if not date or not time:
            raise ParseError(f"{name} {'date' if not date else 'time'} is empty")
        try:
            return datetime.strptime(f"{date} {time}", f"{layout.date_format} {layout.time_format}")
        except ValueError:
            raise ParseError(f"{name} {date!r} {time!r} does not match "
                             f"{layout.date_format!r} {layout.time_format!r}") from None
    value = layout.value(fields, ref)
    if not value:
        raise ParseError(f"{name} is empty")
    fmt = layout.start_format
    try:
        if fmt == "iso":
            moment = datetime.fromisoformat(value)
            return moment.astimezone(UTC) if moment.tzinfo is not None else moment
        if fmt == "epoch":
            return datetime.fromtimestamp(float(value), UTC)
        return datetime.strptime(value, fmt)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"{name} {value!r} does not match {fmt!r}") from None


_CLOCK = re.compile(r"(\d+):([0-5]\d)[:'.]([0-5]\d)")  # Panasonic prints 00:01'05
_MINUTES = re.compile(r"(\d+)[:'.]([0-5]\d)")


def _duration(value: str, fmt: str) -> int:
    if not value:
        raise ParseError("duration is empty")
    if fmt == "seconds":
        if not value.isdigit():
            raise ParseError(f"duration {value!r} is not whole seconds")
        seconds = int(value)
    elif fmt == "hh:mm:ss":
        match = _CLOCK.fullmatch(value)
        if not match:
            raise ParseError(f"duration {value!r} is not hh:mm:ss")
        hours, minutes, secs = (int(g) for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    elif fmt == "mm:ss":
        match = _MINUTES.fullmatch(value)
        if not match:
            raise ParseError(f"duration {value!r} is not mm:ss")
        seconds = int(match.group(1)) * 60 + int(match.group(2))
    else:
        try:
            minutes = Decimal(value.replace(",", "."))
            if not minutes.is_finite() or minutes < 0:
                raise InvalidOperation
        except InvalidOperation:
            raise ParseError(f"duration {value!r} is not a decimal number of minutes") from None
        if minutes > MAX_DURATION:  # before multiplying: 1e999999 would take forever to round
            raise ParseError(f"duration {value!r} is longer than {MAX_DURATION // 3600} hours")
        seconds = int((minutes * 60).to_integral_value(rounding=ROUND_HALF_UP))
    if seconds > MAX_DURATION:
        raise ParseError(f"duration {value!r} is longer than {MAX_DURATION // 3600} hours")
    return seconds
