"""R5.2: one reader per file format. Each returns the names of the file's sheets (tables)
and the rows of one sheet as lists of cell values (str, int, float, date, datetime or None).

No database here: bytes in, rows out. Errors a person can fix (a wrong sheet name, a file
that is not what its extension says) are raised as ImportFileError with a message for them.
"""
import codecs
import csv
import datetime
import io
import itertools
import logging
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

# An .xlsx is a zip of XML: refuse one that would unpack to more than this (a "zip bomb",
# or a deck far beyond any real carrier's) before any XML is parsed.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
# mdbtools is an external program: never wait for it forever.
MDB_TIMEOUT_SECONDS = 120

EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls")
ACCESS_EXTENSIONS = (".mdb", ".accdb")
CSV_EXTENSIONS = (".csv", ".txt")
EXTENSIONS = EXCEL_EXTENSIONS + ACCESS_EXTENSIONS + CSV_EXTENSIONS


class ImportFileError(ValueError):
    """The file cannot be read as asked (format, size, sheet, external program)."""


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in EXCEL_EXTENSIONS:
        return "excel"
    if suffix in ACCESS_EXTENSIONS:
        return "access"
    if suffix in CSV_EXTENSIONS:
        return "csv"
    raise ImportFileError(f"{path.name}: unknown file type {suffix or '(none)'}; "
                          f"expected one of {', '.join(EXTENSIONS)}")


def _checked(source) -> Path:
    path = Path(source)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    return path


def sheet_names(source) -> list[str]:
    """The sheets of a workbook, the tables of an Access database, or the one "sheet" of a
    CSV file (named after the file)."""
    path = _checked(source)
    kind = _kind(path)
    if kind == "csv":
        return [path.stem]
    if kind == "access":
        return _access_tables(path)
    return _excel_sheet_names(path)


def read_rows(source, sheet: str | None = None) -> list[list]:
    """Every row of `sheet` (default: the first), the first row of the file first, so that
    index + 1 is the row number a spreadsheet or text editor shows."""
    return list(rows_open(source, sheet).rows)


class SheetRows(NamedTuple):
    count: int                # how many rows `rows` gives
    rows: Iterator[list]      # read_rows's rows, one at a time


def rows_open(source, sheet: str | None = None) -> SheetRows:
    """read_rows, one row at a time: an Excel sheet's rows become Python values only as
    they are taken, so that an import can start on the first ones (and a large sheet is
    never in memory twice). The file is opened, and its errors raised, here."""
    path = _checked(source)
    kind = _kind(path)
    if kind == "csv":
        if sheet not in (None, path.stem):
            raise ImportFileError(f"{path.name}: a CSV file has no sheet {sheet!r}")
        return _csv_rows_open(path)
    elif kind == "access":
        rows = _access_rows(path, sheet)
    else:
        return _excel_rows(path, sheet)
    return SheetRows(len(rows), iter(rows))


# CSV -----------------------------------------------------------------------------------

def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1251 (which decodes any byte string)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def sniff_delimiter(text: str) -> str:
    """`;`, tab or `,`: the one found the same number of times (at least once, outside
    quotes) on most of the first lines; names such as "Korea, Republic of" make commas
    uneven, so a consistent candidate wins over a merely frequent one."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", (-1, -1)
    for delimiter in (";", "\t", ","):
        try:
            counts = [len(row) - 1 for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:  # a field over the limit: _csv_scan says where
            continue
        if not counts or max(counts) == 0:
            continue
        common = max(set(counts), key=counts.count)
        score = (counts.count(common) if common else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows_open(path: Path) -> SheetRows:
    """A CSV deck's rows as a stream: memory stays bounded whatever the file's size (a
    deck read whole took some 48 times its size). A first pass settles the encoding as
    decode() would (a BOM: UTF-8; else UTF-8 if the whole file is, else Windows-1251) and
    counts the rows, so that a field csv cannot read is reported here, before any import;
    the rows are then read again as they are taken."""
    with path.open("rb") as raw:
        bom = raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    encoding, errors = ("utf-8-sig", "replace") if bom else ("utf-8", "strict")
    try:
        delimiter, count = _csv_scan(path, encoding, errors)
    except UnicodeDecodeError:
        encoding, errors = "cp1251", "replace"
        delimiter, count = _csv_scan(path, encoding, errors)

    def rows() -> Iterator[list]:
        with path.open(encoding=encoding, errors=errors, newline="") as text:
            yield from (list(row) for row in _csv_reader(path, text, delimiter))
    return SheetRows(count, rows())


def _csv_scan(path: Path, encoding: str, errors: str) -> tuple[str, int]:
    """(delimiter, number of rows) of the file read with `encoding`."""
    with path.open(encoding=encoding, errors=errors, newline="") as text:
        delimiter = sniff_delimiter("".join(itertools.islice(text, 50)))
        text.seek(0)
        return delimiter, sum(1 for _ in _csv_reader(path, text, delimiter))


def _csv_reader(path: Path, text, delimiter: str) -> Iterator[list]:
    reader = csv.reader(text, delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit (128 KiB)
        raise ImportFileError(f"{path.name}: line {reader.line_num}: {exc}; no rate deck "
                              "holds such a field: is this the right file?") from None


# Excel ----------------------------------------------------------------------------------

def _check_unpacked_size(path: Path) -> None:
    if path.suffix.lower() == ".xls":
        return  # not a zip: an OLE file, read by calamine without unpacking
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportFileError(f"{path.name}: not an Excel workbook (not a zip file)") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ImportFileError(f"{path.name}: unpacks to {unpacked // (1024 * 1024)} MB, more than "
                              f"the {MAX_UNPACKED_BYTES // (1024 * 1024)} MB allowed")


EXCEL_READER_VARIABLE = "TARISCOPE_EXCEL_READER"
EXCEL_READERS = ("auto", "calamine", "openpyxl")


def _calamine():
    """python-calamine, or None when Excel files are read with openpyxl (xlsx only): when
    TARISCOPE_EXCEL_READER (read at each call) is `openpyxl`, or is `auto` (the default)
    and python-calamine is not installed."""
    wanted = os.environ.get(EXCEL_READER_VARIABLE, "").strip().lower() or "auto"
    if wanted not in EXCEL_READERS:
        raise ImportFileError(f"{EXCEL_READER_VARIABLE} is {wanted!r}; it must be one of "
                              f"{', '.join(EXCEL_READERS)}")
    if wanted == "openpyxl":
        return None
    try:
        import python_calamine
    except ImportError:
        if wanted == "calamine":
            raise ImportFileError("reading Excel files with calamine needs the Python package "
                                  "python-calamine") from None
        return None
    return python_calamine


def _excel_sheet_names(path: Path) -> list[str]:
    workbook, names, _calamine_read = _excel_open(path)
    workbook.close()
    return names


def _excel_open(path: Path):
    """The workbook open (calamine's, or openpyxl's read-only one), its sheets' names, and
    whether it is calamine's."""
    _check_unpacked_size(path)
    calamine = _calamine()
    try:
        if calamine is not None:
            workbook = calamine.CalamineWorkbook.from_path(str(path))
            return workbook, list(workbook.sheet_names), True
        workbook = _openpyxl_open(path)
        return workbook, list(workbook.sheetnames), False
    except ImportFileError:
        raise
    except Exception as exc:  # every reader's own errors: the file is not a workbook
        raise ImportFileError(f"{path.name}: not a readable workbook ({exc})") from None


def _openpyxl_open(path: Path):
    if path.suffix.lower() == ".xls":
        raise ImportFileError(f"{path.name}: .xls files need python-calamine installed")
    import openpyxl  # uses defusedxml for the XML when it is installed

    return openpyxl.load_workbook(path, read_only=True, data_only=True)


def _excel_rows(path: Path, sheet: str | None) -> SheetRows:
    workbook, names, calamine_read = _excel_open(path)  # opened once; closed after its rows
    try:
        if not names:
            raise ImportFileError(f"{path.name}: the workbook has no sheets")
        name = names[0] if sheet is None else sheet
        if name not in names:
            raise ImportFileError(f"{path.name}: no sheet {sheet!r}; the sheets are "
                                  f"{', '.join(names)}")
        try:
            if calamine_read:
                return _calamine_rows(path, name, workbook, workbook.get_sheet_by_name(name))
            return SheetRows(workbook[name].max_row or 0, _openpyxl_rows(path, name, workbook))
        except ImportFileError:
            raise
        except Exception as exc:
            raise ImportFileError(f"{path.name}: sheet {name!r} cannot be read ({exc})") from None
    except BaseException:
        workbook.close()
        raise


def _calamine_rows(path: Path, name: str, workbook, loaded) -> SheetRows:
    # The rows as Excel numbers them (row 1 first) and the cells as its column letters do
    # (column A first), also when the data starts further down or right: calamine's
    # iter_rows gives every row from the first, but each from the first used column
    # (python-calamine 0.9, pinned; tests/tariffs/test_import_readers.py checks it).
    if loaded.start is None:  # an empty sheet
        workbook.close()
        return SheetRows(0, iter(()))
    count, left = loaded.end[0] + 1, loaded.start[1]

    def rows():
        try:
            if left:
                pad = [""] * left
                for row in loaded.iter_rows():
                    yield pad + row
            else:
                yield from loaded.iter_rows()
        except Exception as exc:
            raise ImportFileError(f"{path.name}: sheet {name!r} cannot be read ({exc})") from None
        finally:
            workbook.close()

    return SheetRows(count, rows())


def _openpyxl_rows(path: Path, name: str, workbook) -> Iterator[list]:
    try:
        for row in workbook[name].iter_rows(values_only=True):
            yield list(row)
    except Exception as exc:
        raise ImportFileError(f"{path.name}: sheet {name!r} cannot be read ({exc})") from None
    finally:
        workbook.close()


# Access (mdbtools, else access-parser) -------------------------------------------------

ACCESS_READER_VARIABLE = "TARISCOPE_ACCESS_READER"
ACCESS_READERS = ("auto", "mdbtools", "access-parser")
# The file header's format number (offset 0x14), as access-parser 0.0.6 knows them: Jet 3
# (Access 97), Jet 4 (2000-2003), ACE 12 (2007). Access 2010 writes 0x0103 and 2016 or later
# 5 or 6, which it misreads, so such files are refused before it is asked.
ACCESS_PARSER_FORMATS = {0: "Access 97", 1: "Access 2000-2003", 2: "Access 2007"}
ACCESS_FORMAT_NAMES = {0x0103: "Access 2010", 3: "Access 2010", 5: "Access 2016", 6: "Access 2019"}


def access_reader() -> str:
    """"mdbtools" or "access-parser": the reader that Access files are read with now.

    TARISCOPE_ACCESS_READER (read at each call, so a test or an admin can switch it) is
    `auto` (default: mdbtools when mdb-tables and mdb-export are on the PATH, else the
    access-parser package), `mdbtools` or `access-parser`. mdbtools comes first: it reads
    every Access format; access-parser only those up to Access 2007."""
    wanted = os.environ.get(ACCESS_READER_VARIABLE, "").strip().lower() or "auto"
    if wanted not in ACCESS_READERS:
        raise ImportFileError(f"{ACCESS_READER_VARIABLE} is {wanted!r}; it must be one of "
                              f"{', '.join(ACCESS_READERS)}")
    if wanted != "auto":
        return wanted
    if shutil.which("mdb-tables") and shutil.which("mdb-export"):
        return "mdbtools"
    if _access_parser() is not None:
        return "access-parser"
    raise ImportFileError("reading Access files needs mdbtools (mdb-tables and mdb-export, the "
                          "Debian package mdbtools) or the Python package access-parser")


def _access_tables(path: Path) -> list[str]:
    if access_reader() == "access-parser":
        return _ap_tables(_ap_open(path))
    return _mdb_tables(path)


def _access_rows(path: Path, table: str | None) -> list[list]:
    if access_reader() == "access-parser":
        return _ap_rows(path, table)
    return _mdb_rows(path, table)


def _table_chosen(path: Path, names: list[str], table: str | None) -> str:
    if not names:
        raise ImportFileError(f"{path.name}: the database has no tables")
    name = names[0] if table is None else table
    if name not in names:
        raise ImportFileError(f"{path.name}: no table {table!r}; the tables are {', '.join(names)}")
    return name


def _mdb(program: str, *args: str) -> str:
    executable = shutil.which(program)
    if executable is None:
        raise ImportFileError(f"reading Access files needs {program} (the mdbtools package)")
    try:
        done = subprocess.run([executable, *args], capture_output=True, timeout=MDB_TIMEOUT_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ImportFileError(f"{program} took more than {MDB_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip()
        raise ImportFileError(f"{program} failed: {message or f'exit status {done.returncode}'}")
    return decode(done.stdout)


def _mdb_tables(path: Path) -> list[str]:
    return [line for line in _mdb("mdb-tables", "-1", str(path)).splitlines() if line.strip()]


def _mdb_rows(path: Path, table: str | None) -> list[list]:
    name = _table_chosen(path, _mdb_tables(path), table)
    # ISO dates, so that mapping.parse_date reads them whatever the locale.
    text = _mdb("mdb-export", "-D", "%Y-%m-%d", "-T", "%Y-%m-%d %H:%M:%S", str(path), name)
    return [list(row) for row in csv.reader(io.StringIO(text, newline=""))]


def _access_parser():
    try:
        import access_parser
    except ImportError:
        return None
    return access_parser


def _ap_open(path: Path):
    module = _access_parser()
    if module is None:
        raise ImportFileError("reading Access files without mdbtools needs the Python package "
                              "access-parser")
    with path.open("rb") as file:
        header = file.read(0x18)
    if len(header) < 0x18 or header[:4] != b"\x00\x01\x00\x00" or b"Standard" not in header:
        raise ImportFileError(f"{path.name}: not an Access database")
    version = int.from_bytes(header[0x14:0x18], "little")
    if version not in ACCESS_PARSER_FORMATS:
        shown = ACCESS_FORMAT_NAMES.get(version, "an unknown Access format")
        raise ImportFileError(
            f"{path.name}: {shown} file (format {version:#06x}); access-parser reads only "
            f"{', '.join(ACCESS_PARSER_FORMATS.values())} files: install mdbtools (Debian package "
            f"mdbtools) to import it, or save it from Access as an Access 2002-2003 .mdb file")
    # access-parser logs each oddity of a file at ERROR and goes on; its result is checked here.
    logging.getLogger("access_parser").setLevel(logging.CRITICAL)
    try:
        return module.AccessParser(str(path))
    except Exception as exc:  # its own errors: the file is damaged or of a kind it cannot read
        raise ImportFileError(f"{path.name}: access-parser cannot read this database ({exc!r})") from None


def _ap_tables(parser) -> list[str]:
    # MSysObjects and, in .accdb files, MSysComplexType_* and MSysNavPane* are system tables
    # that access-parser lists; mdb-tables leaves them out, and so does this.
    return [name for name in parser.catalog if not name.lower().startswith("msys")]


def _ap_rows(path: Path, table: str | None) -> list[list]:
    """The header and the rows in column order, values as the other readers give them:
    text, int, float (Double, as Excel's numbers), Currency and Decimal as exact decimal
    text, Date/Time as datetime, None for NULL."""
    parser = _ap_open(path)
    name = _table_chosen(path, _ap_tables(parser), table)
    try:
        access_table = parser.get_table(name)
        columns = [column for _, column in sorted(access_table.columns.items())]
        # Currency columns with a display format ("$", "Fixed") would come back rounded to
        # cents as formatted text: the stored value is wanted, not the displayed one.
        for column in columns:
            column.extra_props = None
        parsed = access_table.parse()
    except Exception as exc:
        raise ImportFileError(f"{path.name}: access-parser cannot read table {name!r} ({exc!r})") from None
    values = []
    for column in columns:
        cells = parsed.get(column.col_name_str)
        values.append(cells if isinstance(cells, list) else [])
    count = max((len(cells) for cells in values), default=0)
    if any(len(cells) != count for cells in values):
        raise ImportFileError(f"{path.name}: access-parser could not read every row of table {name!r} "
                              "(columns of different lengths); install mdbtools to import it")
    rows: list[list] = [[column.col_name_str for column in columns]]
    for index in range(count):
        rows.append([_ap_value(column, cells[index]) for column, cells in zip(columns, values, strict=True)])
    return rows


AP_MONEY, AP_FLOAT32, AP_DATETIME, AP_NUMERIC = 5, 6, 8, 16  # access_parser.utils TYPE_*


def _ap_value(column, value):
    if value is None:
        return None
    kind = column.type
    if kind == AP_MONEY and isinstance(value, int):
        return str(Decimal(value).scaleb(-4))  # stored as an integer of 1/10,000
    if kind == AP_NUMERIC and isinstance(value, str):
        scale = int((column.get("various") or {}).get("scale", 0) or 0)
        if scale and "." not in value:
            # access-parser 0.0.6 leaves out the point when there are no more digits than
            # the scale (0.0500 at scale 4 comes as "500").
            return str(Decimal(value).scaleb(-scale))
        return value
    if kind == AP_FLOAT32 and isinstance(value, float):
        return float(f"{value:.7g}")  # a Single holds 7 digits; 0.1 is not 0.10000000149
    if kind == AP_DATETIME and isinstance(value, str):
        if value == "(Empty Date)":  # the stored 0: Access's day zero
            return datetime.datetime(1899, 12, 30)
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value  # "(Invalid Date)": the row is rejected if the column is mapped
        # access-parser adds the day's fraction as microseconds: round to the second, as
        # Access shows it and mdb-export prints it.
        return (moment + datetime.timedelta(microseconds=500_000)).replace(microsecond=0)
    return value
