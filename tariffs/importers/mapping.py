"""R5.2: a column mapping and options applied to rows of cell values, giving validated code
rows or rejects `{row, reason}`. Pure: no database, no files (STYLE rule 1).

Call types and directions are written as the numbers of tariffs.models.CallType and
Direction (3-6, 0/1), the original's fixed codes, so that this module needs no Django.
"""
import datetime
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

FIELDS = ("code", "name", "rate", "tariff", "calltype", "category", "valid_from", "valid_to",
          "direction", "tariff_valid_from")

# tariffs.models.CallType: the original's fixed codes (R3.3).
CALL_TYPES = {"3": 3, "local": 3, "4": 4, "long-distance": 4, "long distance": 4,
              "longdistance": 4, "5": 5, "international": 5, "6": 6, "mobile": 6}
# tariffs.models.Direction.
DIRECTIONS = {"0": 0, "out": 0, "outgoing": 0, "1": 1, "in": 1, "incoming": 1}

NUL = "\x00"
MAX_RANGE = 10_000          # codes one range such as 38050-38059 may expand to
MAX_CODE_LENGTH = 32        # PhoneCode.code
MAX_NAME_LENGTH = 200       # PhoneCode.name, Tariff.name
MAX_CATEGORY_LENGTH = 100   # PhoneCode.category
RATE_PLACES = Decimal("0.000001")  # TariffPrice.price_per_minute: 6 places
MAX_RATE = Decimal("100000000")    # ... and 14 digits
EXCEL_EPOCH = datetime.date(1899, 12, 30)  # serial 1 = 1900-01-01 (Lotus leap-year bug included)


class MappingError(ValueError):
    """The mapping or the options cannot be applied to this file (nothing is imported)."""


@dataclass(frozen=True)
class ImportOptions:
    """R5.2 step 4: what to do with the rows."""

    operator: str
    plan: str
    currency: str
    codes_only: bool = False
    update: bool = False
    per_second: bool = False
    accounts_description: str = ""
    date_order: str = "dmy"         # for 01/02/2024: "dmy" (1 February) or "mdy" (2 January)
    has_header: bool = True
    rate_value: Decimal | None = None  # one rate for every row, when the file has none
    today: datetime.date = field(default_factory=datetime.date.today)


class CodeRow(NamedTuple):
    """One code of one row, validated. Several codes of one cell give several CodeRows
    with the same row number. A NamedTuple rather than a frozen dataclass: a deck makes
    hundreds of thousands of them and a tuple is built several times faster (the speed
    goal of the import, docs/benchmarks.md); it is as immutable."""

    row: int
    code: str
    name: str
    tariff: str
    rate: Decimal | None
    call_type: int | None
    category: str
    valid_from: datetime.date
    valid_to: datetime.date | None
    direction: int
    tariff_valid_from: datetime.date


@dataclass
class Mapped:
    rows: list[CodeRow]
    rejected: list[dict]  # {"row": n, "reason": "..."}


class RowError(ValueError):
    """One row cannot be imported; the message is the reason shown to the person."""


# The mapping ----------------------------------------------------------------------------

def mapping_parse(text: str) -> dict[str, str]:
    """`code=A,name=Назва,rate=C` -> {"code": "A", "name": "Назва", "rate": "C"}."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key = key.strip().lower()
        if not sep or not column.strip():
            raise MappingError(f"{part.strip()!r} in the mapping is not FIELD=COLUMN")
        if key not in FIELDS:
            raise MappingError(f"unknown field {key!r} in the mapping; the fields are {', '.join(FIELDS)}")
        if key in mapping:
            raise MappingError(f"field {key!r} is mapped twice")
        mapping[key] = column.strip()
    return mapping


def column_letter_index(letters: str) -> int | None:
    """A -> 0, Z -> 25, AA -> 26; None when `letters` is not a column letter."""
    if not re.fullmatch(r"[A-Za-z]{1,3}", letters):
        return None
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def columns_resolve(mapping: dict[str, str], header: list | None, *,
                    options: ImportOptions) -> dict[str, int]:
    """Each mapped field's column index: a header's text (any language, case and spaces
    ignored) first, else a column letter."""
    required = ["code"]
    if not options.codes_only and options.rate_value is None:
        required.append("rate")
    missing = [f for f in required if f not in mapping]
    if missing:
        raise MappingError(f"the mapping has no {' and no '.join(missing)} column")
    if "rate" in mapping and options.rate_value is not None:
        raise MappingError("give either a rate column or a rate value, not both")
    names = {}
    for index, cell in enumerate(header or []):
        text = _text(cell).casefold()
        if text and text not in names:
            names[text] = index
    columns = {}
    for key, column in mapping.items():
        index = names.get(column.strip().casefold())
        if index is None:
            index = column_letter_index(column)
        if index is None:
            shown = ", ".join(_text(c) for c in header or [] if _text(c))
            raise MappingError(f"column {column!r} of {key} is neither a header nor a column letter"
                               + (f"; the headers are {shown}" if shown else ""))
        columns[key] = index
    return columns


# Cells ----------------------------------------------------------------------------------

def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_codes(value) -> list[str]:
    """`380, 38050-38052` -> ["380", "38050", "38051", "38052"]; a leading + and spaces
    inside a code are dropped."""
    text = _text(value)
    if not text:
        raise RowError("empty code")
    codes = []
    for part in text.split(","):
        part = part.replace(" ", "").replace("\u00a0", "").lstrip("+")
        if not part:
            continue
        first, sep, last = part.partition("-")
        if sep:
            if not (first.isdigit() and last.isdigit()) or len(first) != len(last) or first > last:
                raise RowError(f"code range {part!r} is not FROM-TO of equal lengths, FROM <= TO")
            count = int(last) - int(first) + 1
            if count > MAX_RANGE:
                raise RowError(f"code range {part!r} has {count} codes, more than {MAX_RANGE}")
            codes.extend(str(n).zfill(len(first)) for n in range(int(first), int(last) + 1))
        elif part.isdigit() and part.isascii():
            codes.append(part)
        else:
            raise RowError(f"code {part!r} is not digits in international form")
    if not codes:
        raise RowError("empty code")
    too_long = [c for c in codes if len(c) > MAX_CODE_LENGTH]
    if too_long:
        raise RowError(f"code {too_long[0]} is longer than {MAX_CODE_LENGTH} digits")
    return codes


def parse_rate(value) -> Decimal:
    if value is None or _text(value) == "":
        raise RowError("empty rate")
    if isinstance(value, bool):
        raise RowError(f"rate {value!r} is not a number")
    if isinstance(value, float):
        rate = Decimal(repr(value))  # the shortest decimal that is this float
    elif isinstance(value, int):
        rate = Decimal(value)
    else:
        text = str(value).strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
        try:
            rate = Decimal(text)
        except InvalidOperation:
            raise RowError(f"rate {str(value).strip()!r} is not a number") from None
    if not rate.is_finite():
        raise RowError(f"rate {_text(value)!r} is not a number")
    if rate < 0:
        raise RowError(f"rate {rate} is negative")
    if rate >= MAX_RATE:
        raise RowError(f"rate {rate} is too large")
    return rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def parse_call_type(value) -> int | None:
    text = _text(value).casefold()
    if not text:
        return None
    if text not in CALL_TYPES:
        raise RowError(f"unknown call type {_text(value)!r} (3 local, 4 long-distance, "
                       "5 international, 6 mobile)")
    return CALL_TYPES[text]


def parse_direction(value) -> int:
    text = _text(value).casefold()
    if not text:
        return 0
    if text not in DIRECTIONS:
        raise RowError(f"unknown direction {_text(value)!r} (0 or out, 1 or in)")
    return DIRECTIONS[text]


def parse_date(value, *, date_order: str = "dmy") -> datetime.date | None:
    """2024-01-31, 31.01.2024, 01/31/2024 (by `date_order`), an Excel serial number, or a
    date the reader already made; None when empty."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _serial(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        if re.fullmatch(r"\d+(\.0+)?", text) and len(text.split(".")[0]) <= 6:
            return _serial(float(text))
        match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?", text)
        if match:
            year, month, day = match.groups()
            return datetime.date(int(year), int(month), int(day))
        match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?: .*)?", text)
        if match:
            day, month, year = match.groups()
            return datetime.date(int(year), int(month), int(day))
        match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})(?: .*)?", text)
        if match:
            first, second, year = match.groups()
            day, month = (first, second) if date_order == "dmy" else (second, first)
            return datetime.date(int(year), int(month), int(day))
    except (ValueError, OverflowError):
        pass
    raise RowError(f"date {text!r} not understood")


def _serial(number: float) -> datetime.date:
    if not 1 <= number < 2_958_466:  # 1900-01-01 .. 9999-12-31
        raise RowError(f"date {number!r} is not an Excel serial number")
    return EXCEL_EPOCH + datetime.timedelta(days=int(number))


def _limited(text: str, limit: int, what: str) -> str:
    if len(text) > limit:
        raise RowError(f"{what} is {len(text)} characters long, more than {limit}")
    if NUL in text:  # no database text can hold it
        raise RowError(f"{what} contains a NUL character")
    return text


# Rows -----------------------------------------------------------------------------------

def rows_map(rows: Iterable[list], *, mapping: dict[str, str], options: ImportOptions) -> Mapped:
    """Every data row of a sheet, mapped: CodeRows for the good rows, `{row, reason}` for
    the others. Row numbers are as a spreadsheet shows them (header, if any, = row 1).
    Entirely empty rows are passed over silently. A code (per direction) that a row above
    already had rejects the later row, naming the earlier one."""
    mapped: list[CodeRow] = []
    rejected: list[dict] = []
    for chunk in rows_map_chunks(rows, mapping=mapping, options=options):
        mapped.extend(chunk.rows)
        rejected.extend(chunk.rejected)
    return Mapped(rows=mapped, rejected=rejected)


def rows_map_chunks(rows: Iterable[list], *, mapping: dict[str, str], options: ImportOptions,
                    size: int = 5000) -> Iterator[Mapped]:
    """rows_map, `size` rows at a time (taken from `rows` as they are needed), so that an
    import can write one chunk while the next is read and mapped. The mapping and the
    header are checked before the first chunk (MappingError); a duplicate code is found
    across chunks as within one."""
    rows = iter(rows)
    header = next(rows, None) if options.has_header else None
    columns = columns_resolve(mapping, header, options=options)
    number = 1 if options.has_header else 0  # of the last row taken, as a spreadsheet shows it
    # Per direction (0 out, 1 in): code -> the row that had it first.
    seen: tuple[dict[str, int], dict[str, int]] = ({}, {})
    row_map = _RowMapper(columns, options)
    while batch := list(itertools.islice(rows, size)):
        mapped: list[CodeRow] = []
        rejected: list[dict] = []
        for cells in batch:
            number += 1
            try:
                row_codes = row_map(cells, number)
            except RowError as exc:
                rejected.append({"row": number, "reason": str(exc)})
                continue
            if row_codes is None:  # an empty row
                continue
            reason = _seen_check(row_codes, seen[row_codes[0].direction], number)
            if reason is None:
                mapped.extend(row_codes)
            else:
                rejected.append({"row": number, "reason": reason})
        yield Mapped(rows=mapped, rejected=rejected)


def _seen_check(row_codes: list[CodeRow], codes_seen: dict[str, int], number: int) -> str | None:
    """Why the codes of row `number` cannot be imported after the rows above (None: they
    can, and are now seen)."""
    if len(row_codes) == 1:
        code = row_codes[0].code
        earlier = codes_seen.get(code)
        if earlier is not None:
            return f"code {code} is already in row {earlier}"
        codes_seen[code] = number
        return None
    for r in row_codes:
        if r.code in codes_seen:
            return f"code {r.code} is already in row {codes_seen[r.code]}"
    inside = {}
    for r in row_codes:
        if r.code in inside:
            return f"code {r.code} is twice in this row"
        inside[r.code] = number
    codes_seen.update(inside)
    return None


# Cells whose parsed value depends on the value alone, so that it is parsed once per distinct
# value (a deck repeats its rates, call types and dates on thousands of rows). Not bool:
# True == 1 would share 1's entry although it parses differently.
_CACHED = (str, float, int)
_NOTHING = object()


class _RowMapper:
    """One import's mapping of a row to its CodeRows (or None for an empty row; RowError
    for a bad one). The checks, their order and their messages are those of the parse_*
    functions above; what is done once here rather than per row is the column lookup, and
    the parsing of a rate, call type, direction or date already seen in an earlier row."""

    def __init__(self, columns: dict[str, int], options: ImportOptions):
        self.options = options
        self.width = max(columns.values()) + 1
        self.code = columns["code"]
        self.name, self.tariff, self.rate = (columns.get(k) for k in ("name", "tariff", "rate"))
        self.call_type, self.category = columns.get("calltype"), columns.get("category")
        self.valid_from, self.valid_to = columns.get("valid_from"), columns.get("valid_to")
        self.direction = columns.get("direction")
        self.tariff_valid_from = columns.get("tariff_valid_from")
        self.rates: dict = {}
        self.call_types: dict = {}
        self.directions: dict = {}
        self.dates: dict = {}

    def __call__(self, cells: list, number: int) -> list[CodeRow] | None:
        options = self.options
        if len(cells) < self.width:  # a short line of a CSV file: the missing cells are empty
            cells = list(cells) + [None] * (self.width - len(cells))
        value = cells[self.code]
        if (type(value) is str and value.isdigit() and value.isascii()
                and len(value) <= MAX_CODE_LENGTH):  # the usual cell, first
            codes = (value,)
        else:
            codes = _one_code(value)
            if codes is None:
                if not any(_text(c) for c in cells):
                    return None
                codes = parse_codes(value)
        value = None if self.name is None else cells[self.name]
        name = value.strip() if type(value) is str else _text(value)
        if len(name) > MAX_NAME_LENGTH or NUL in name:
            _limited(name, MAX_NAME_LENGTH, "the name")
        tariff = _cell_text(cells, self.tariff) or name
        if len(tariff) > MAX_NAME_LENGTH or NUL in tariff:
            _limited(tariff, MAX_NAME_LENGTH, "the tariff name")
        if not tariff:
            if options.codes_only:
                raise RowError("no tariff name (and no name) to attach the code to")
            tariff = codes[0] if len(codes) == 1 else f"{codes[0]}-{codes[-1]}"
        if options.codes_only:
            rate = None
        elif options.rate_value is not None:
            rate = options.rate_value
        else:
            value = cells[self.rate]
            # Zero is not cached: 0.0 and -0.0 are one key but different Decimals.
            if type(value) in _CACHED and (value or type(value) is str):
                rate = self.rates.get(value)
                if rate is None:
                    rate = self.rates[value] = parse_rate(value)
            else:
                rate = parse_rate(value)
        call_type = (None if self.call_type is None else
                     self._cached(cells[self.call_type], self.call_types, parse_call_type))
        category = _cell_text(cells, self.category)
        if len(category) > MAX_CATEGORY_LENGTH or NUL in category:
            _limited(category, MAX_CATEGORY_LENGTH, "the category")
        today = options.today
        valid_from = (today if self.valid_from is None else
                      self._cached(cells[self.valid_from], self.dates, self._date) or today)
        valid_to = (None if self.valid_to is None else
                    self._cached(cells[self.valid_to], self.dates, self._date))
        if valid_to is not None and valid_to < valid_from:
            raise RowError(f"valid to {valid_to} is before valid from {valid_from}")
        direction = (0 if self.direction is None else
                     self._cached(cells[self.direction], self.directions, parse_direction))
        tariff_from = (today if self.tariff_valid_from is None else
                       self._cached(cells[self.tariff_valid_from], self.dates, self._date) or today)
        if len(codes) == 1:
            return [CodeRow(number, codes[0], name, tariff, rate, call_type, category, valid_from,
                            valid_to, direction, tariff_from)]
        return [CodeRow(number, code, name, tariff, rate, call_type, category, valid_from,
                        valid_to, direction, tariff_from) for code in codes]

    def _date(self, value) -> datetime.date | None:
        return parse_date(value, date_order=self.options.date_order)

    @staticmethod
    def _cached(value, cache: dict, parse):
        if type(value) not in _CACHED:
            return parse(value)
        result = cache.get(value, _NOTHING)
        if result is _NOTHING:
            result = cache[value] = parse(value)  # not reached when parse raises RowError
        return result


def _one_code(value) -> tuple[str] | None:
    """The happy path of parse_codes: a cell holding one code (text or a whole number);
    None for anything else (a list, a range, an empty or bad cell), which parse_codes
    then handles or rejects."""
    kind = type(value)
    if kind is str:
        if value.isdigit() and value.isascii() and len(value) <= MAX_CODE_LENGTH:
            return (value,)
        return None
    if (kind is int or (kind is float and value.is_integer())) and value >= 0:
        text = str(int(value))
        if len(text) <= MAX_CODE_LENGTH:
            return (text,)
    return None


def _cell_text(cells: list, index: int | None) -> str:
    if index is None:
        return ""
    value = cells[index]
    return value.strip() if type(value) is str else _text(value)
