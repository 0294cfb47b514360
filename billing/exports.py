"""R11.2: calls as CSV and XLSX, written as they are read, for the calls page
(`/calls/?export=csv|xlsx`) and `manage.py export_calls`.

The columns, their order and their values are billing.tables.CallTable's (one definition
of a call row); the first columns are a contract (issue 3), new ones come after them.
Both writers take the calls one at a time and give the file out in pieces, so that a month
of a million calls is never held in memory:

- CSV: the values as text; a cost to the currency's minor unit (`12.50`, `150` JPY), the
  start in ISO 8601 with the device's offset.
- XLSX: numbers as numbers (the cost to the currency's minor unit, shown with as many
  decimals: 2 for UAH, EUR, USD), the start as a date-time cell in the device's zone
  (Excel has no zones), text as text. Written here as SpreadsheetML straight into a zip
  stream (the standard library's zipfile writes a zip to a stream it cannot seek), the
  first bytes leaving before the last call is read. openpyxl's write-only workbook was
  the alternative: it needs the whole file on disk before the first byte can go, and
  writes some 200 µs per call without lxml (a million calls: more than three minutes of
  silence, past a proxy's timeout), against some 15 µs here.

In both, a text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR at
its start) is escaped by tariffs.spreadsheets.cell_text, the rule of every file the system
writes; numbers (a refund's cost of -1.50) are values, never text, and stay numbers.
"""
import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from billing.tables import CallTable
from tariffs.spreadsheets import cell_text

# The first 15 are a contract (issue 3); CallTable adds its new columns after them.
CALL_COLUMNS = CallTable.export_columns()
# Rows read from the database at a time by the exports.
CHUNK_SIZE = 2000
# Bytes gathered before a piece of the file is given out.
PIECE_BYTES = 64 * 1024


def call_rows(calls) -> Iterator[list]:
    """Each call of the queryset `calls`, in its order, as its export values in
    CALL_COLUMNS' order; read CHUNK_SIZE at a time, as flat rows (CallTable.export_fields)."""
    values = CallTable.export_values()
    rows = calls.values_list(*CallTable.export_fields(), named=True)
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        yield [value(row) for value in values]


# -- CSV

def _csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return cell_text(value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def csv_pieces(header: Iterable[str], rows: Iterable[list]) -> Iterator[str]:
    """A CSV file (a header row, then `rows`) in pieces of some PIECE_BYTES."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cell_text(name) for name in header])
    for values in rows:
        writer.writerow([_csv_text(value) for value in values])
        if buffer.tell() >= PIECE_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_calls_csv(calls, stream) -> int:
    """Write the queryset `calls` as CSV with the header row to a text stream; return how
    many."""
    counted = _Counted(call_rows(calls))
    for piece in csv_pieces(CALL_COLUMNS, counted):
        stream.write(piece)
    return counted.count


class _Counted:
    """An iterable that counts what was taken from it."""

    def __init__(self, items):
        self._items = items
        self.count = 0

    def __iter__(self):
        for item in self._items:
            self.count += 1
            yield item


# -- XLSX (Office Open XML SpreadsheetML, ECMA-376)

# Excel's limit of rows in a sheet, the header included: the rows after it go to the next
# sheet ("Calls 2", ...), as they would be lost in Excel. A sheet also ends after some
# 1 GiB of XML, far below the 2 GiB that a zip member without Zip64 may hold (Zip64 is
# avoided: some spreadsheet programs do not read it in a streamed zip).
XLSX_MAX_ROWS = 1_048_576
XLSX_SHEET_BYTES = 1 << 30

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Every .xml part is a worksheet unless named otherwise, so that this part, which readers
# look for first, can be written before it is known how many sheets follow.
_CONTENT_TYPES = (
    _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '</Types>')
_ROOT_RELS = (
    _HEAD + f'<Relationships xmlns="{_PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    '</Relationships>')
# Cell styles (the s="" of a cell): 1 the header (bold), 2 a date and time, 3 a date,
# 4 + n a number with n decimals (0 to 4).
_STYLE_HEADER, _STYLE_DATETIME, _STYLE_DATE, _STYLE_DECIMALS = 1, 2, 3, 4
_STYLES = (
    _HEAD + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="5">'
    '<numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="166" formatCode="0.0"/>'
    '<numFmt numFmtId="167" formatCode="0.000"/>'
    '<numFmt numFmtId="168" formatCode="0.0000"/>'
    '</numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="9">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    + "".join(f'<xf numFmtId="{fmt}" fontId="0" fillId="0" borderId="0" xfId="0" '
              'applyNumberFormat="1"/>' for fmt in (164, 165, 1, 166, 2, 167, 168))
    + '</cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')
# Characters XML 1.0 cannot hold at all; a CR is kept as a reference (a parser would
# read a bare one as a line feed).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES = {"\r": "&#13;"}
# What makes a text need more than to be copied (most cells do not).
_XML_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|^\\s|\\s$")
_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system (its leap-year bug included)
# Column widths in characters, so that a date-time is not shown as ####.
_WIDTHS = {"start": 20, "subscriber": 24, "dialled": 18, "normalized": 16, "tariff": 20,
           "operator": 16, "group": 18}


def _column_letters(count: int) -> list[str]:
    letters = []
    for number in range(1, count + 1):
        name = ""
        while number:
            number, rest = divmod(number - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def _xlsx_row(number: int, letters: list[str], values) -> str:
    """One row of a sheet. A million of them make an export: the common cells (a plain
    text, a whole number) take the shortest path."""
    n = str(number)
    cells = [f'<row r="{n}">']
    for letter, value in zip(letters, values, strict=True):
        kind = type(value)
        if kind is str:
            if value:
                value = cell_text(value)
                if _XML_SPECIAL.search(value) is None:
                    cells.append(f'<c r="{letter}{n}" t="inlineStr"><is><t>{value}</t></is></c>')
                else:
                    cells.append(_xlsx_text(letter + n, value))
        elif kind is int:
            cells.append(f'<c r="{letter}{n}"><v>{value}</v></c>')
        elif value is not None:
            cells.append(_xlsx_value(letter + n, value))
    cells.append("</row>")
    return "".join(cells)


def _xlsx_value(ref: str, value) -> str:
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if isinstance(value, Decimal):
        places = min(max(-value.as_tuple().exponent, 0), 4)
        return f'<c r="{ref}" s="{_STYLE_DECIMALS + places}"><v>{value:f}</v></c>'
    if isinstance(value, float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, datetime):
        # The wall-clock time of the value's own zone (the device's): Excel has no zones.
        serial = (value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400
        return f'<c r="{ref}" s="{_STYLE_DATETIME}"><v>{serial!r}</v></c>'
    if isinstance(value, date):
        serial = (value - _EPOCH.date()).days
        return f'<c r="{ref}" s="{_STYLE_DATE}"><v>{serial}</v></c>'
    text = cell_text(str(value))
    return _xlsx_text(ref, text) if text else ""


def _xlsx_text(ref: str, text: str, style: int = 0) -> str:
    styled = f' s="{style}"' if style else ""
    if _XML_SPECIAL.search(text) is None:
        return f'<c r="{ref}"{styled} t="inlineStr"><is><t>{text}</t></is></c>'
    text = escape(_NOT_XML.sub("", text), _ESCAPES)
    return (f'<c r="{ref}"{styled} t="inlineStr"><is><t xml:space="preserve">{text}</t></is>'
            '</c>')


class _Pieces:
    """Where the zip writes: what it wrote is taken out piece by piece (it cannot seek)."""

    def __init__(self):
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self):
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def xlsx_pieces(header: Iterable[str], rows: Iterable[list], *,
                sheet_name: str = "Calls") -> Iterator[bytes]:
    """An XLSX workbook (a header row, then `rows`, in as many sheets as Excel's row limit
    needs) in pieces, each given out as soon as some PIECE_BYTES of it are written."""
    header = list(header)
    letters = _column_letters(len(header))
    cols = "".join(f'<col min="{n}" max="{n}" width="{_WIDTHS.get(name, 13)}" customWidth="1"/>'
                   for n, name in enumerate(header, start=1))
    sheet_head = (
        _HEAD + f'<worksheet xmlns="{_MAIN}"><sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        f'</sheetView></sheetViews><cols>{cols}</cols><sheetData>'
        '<row r="1">' + "".join(_xlsx_text(f"{letter}1", cell_text(name), _STYLE_HEADER)
                                for letter, name in zip(letters, header, strict=True))
        + "</row>").encode()
    out = _Pieces()
    rows = iter(rows)
    pending = next(rows, None)
    names = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/styles.xml", _STYLES)
        while True:
            names.append(sheet_name if not names else f"{sheet_name} {len(names) + 1}")
            with book.open(f"xl/worksheets/sheet{len(names)}.xml", "w") as part:
                part.write(sheet_head)
                number, size, buffer = 1, 0, []
                while pending is not None and number < XLSX_MAX_ROWS \
                        and size < XLSX_SHEET_BYTES:
                    number += 1
                    buffer.append(_xlsx_row(number, letters, pending))
                    pending = next(rows, None)
                    if len(buffer) >= 200:
                        data = "".join(buffer).encode()
                        buffer.clear()
                        size += len(data)
                        part.write(data)
                        if out.size >= PIECE_BYTES:
                            yield out.take()
                buffer.append("</sheetData></worksheet>")
                part.write("".join(buffer).encode())
            yield out.take()
            if pending is None:
                break
        sheets = "".join(f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
                         for n, name in enumerate(names, start=1))
        book.writestr("xl/workbook.xml", _HEAD + f'<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}">'
                      f"<sheets>{sheets}</sheets></workbook>")
        links = "".join(f'<Relationship Id="rId{n}" Type="{_RELS}/worksheet" '
                        f'Target="worksheets/sheet{n}.xml"/>' for n in range(1, len(names) + 1))
        book.writestr("xl/_rels/workbook.xml.rels", _HEAD + f'<Relationships xmlns="{_PACKAGE_RELS}">'
                      f'{links}<Relationship Id="rId{len(names) + 1}" Type="{_RELS}/styles" '
                      'Target="styles.xml"/></Relationships>')
    yield out.take()


def write_calls_xlsx(calls, path) -> int:
    """Write the queryset `calls` as an XLSX workbook to the file `path`; return how many."""
    counted = _Counted(call_rows(calls))
    with open(path, "wb") as stream:
        for piece in xlsx_pieces(CALL_COLUMNS, counted):
            stream.write(piece)
    return counted.count
