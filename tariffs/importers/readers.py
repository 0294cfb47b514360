"""R5.2: one reader per file format. Each returns the names of the file's sheets (tables)
and the rows of one sheet as lists of cell values (str, int, float, date, datetime or None).

No database here: bytes in, rows out. Errors a person can fix (a wrong sheet name, a file
that is not what its extension says) are raised as ImportFileError with a message for them.
"""
import codecs
import csv
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

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
        return _mdb_tables(path)
    return _excel_sheet_names(path)


def read_rows(source, sheet: str | None = None) -> list[list]:
    """Every row of `sheet` (default: the first), the first row of the file first, so that
    index + 1 is the row number a spreadsheet or text editor shows."""
    path = _checked(source)
    kind = _kind(path)
    if kind == "csv":
        if sheet not in (None, path.stem):
            raise ImportFileError(f"{path.name}: a CSV file has no sheet {sheet!r}")
        return _csv_rows(path)
    if kind == "access":
        return _mdb_rows(path, sheet)
    return _excel_rows(path, sheet)


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
        counts = [len(row) - 1 for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or max(counts) == 0:
            continue
        common = max(set(counts), key=counts.count)
        score = (counts.count(common) if common else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(path: Path) -> list[list]:
    text = decode(path.read_bytes())
    delimiter = sniff_delimiter(text)
    return [list(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


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


def _calamine():
    try:
        import python_calamine
    except ImportError:  # the openpyxl fallback (xlsx only)
        return None
    return python_calamine


def _excel_sheet_names(path: Path) -> list[str]:
    _check_unpacked_size(path)
    calamine = _calamine()
    try:
        if calamine is not None:
            workbook = calamine.CalamineWorkbook.from_path(str(path))
            try:
                return list(workbook.sheet_names)
            finally:
                workbook.close()
        workbook = _openpyxl_open(path)
        try:
            return list(workbook.sheetnames)
        finally:
            workbook.close()
    except ImportFileError:
        raise
    except Exception as exc:  # every reader's own errors: the file is not a workbook
        raise ImportFileError(f"{path.name}: not a readable workbook ({exc})") from None


def _openpyxl_open(path: Path):
    if path.suffix.lower() == ".xls":
        raise ImportFileError(f"{path.name}: .xls files need python-calamine installed")
    import openpyxl  # uses defusedxml for the XML when it is installed

    return openpyxl.load_workbook(path, read_only=True, data_only=True)


def _excel_rows(path: Path, sheet: str | None) -> list[list]:
    names = _excel_sheet_names(path)
    if not names:
        raise ImportFileError(f"{path.name}: the workbook has no sheets")
    name = names[0] if sheet is None else sheet
    if name not in names:
        raise ImportFileError(f"{path.name}: no sheet {sheet!r}; the sheets are {', '.join(names)}")
    calamine = _calamine()
    try:
        if calamine is not None:
            workbook = calamine.CalamineWorkbook.from_path(str(path))
            try:
                # skip_empty_area=False keeps row numbers and column letters as Excel shows
                # them when the data does not start at A1.
                return workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
            finally:
                workbook.close()
        workbook = _openpyxl_open(path)
        try:
            return [list(row) for row in workbook[name].iter_rows(values_only=True)]
        finally:
            workbook.close()
    except ImportFileError:
        raise
    except Exception as exc:
        raise ImportFileError(f"{path.name}: sheet {name!r} cannot be read ({exc})") from None


# Access (mdbtools) ---------------------------------------------------------------------

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
    names = _mdb_tables(path)
    if not names:
        raise ImportFileError(f"{path.name}: the database has no tables")
    name = names[0] if table is None else table
    if name not in names:
        raise ImportFileError(f"{path.name}: no table {table!r}; the tables are {', '.join(names)}")
    # ISO dates, so that mapping.parse_date reads them whatever the locale.
    text = _mdb("mdb-export", "-D", "%Y-%m-%d", "-T", "%Y-%m-%d %H:%M:%S", str(path), name)
    return [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
