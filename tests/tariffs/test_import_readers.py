"""Readers of rate-deck files (R5.2): real files of each format, written by the tests."""
import datetime
import zipfile

import openpyxl
import pytest
import xlwt

from tariffs.importers import readers
from tariffs.importers.readers import ImportFileError, read_rows, sheet_names
from tests.conftest import TESTDATA, shared_testdata


def test_xlsx_sheets_and_rows_keep_spreadsheet_positions(tmp_path):
    path = tmp_path / "deck.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Rates")
    sheet["B2"], sheet["C2"], sheet["D2"] = "Код", "Назва", "Ціна"
    sheet["B3"], sheet["C3"], sheet["D3"] = 380, "Україна", 1.5
    sheet["E3"] = datetime.date(2024, 1, 31)
    book.save(path)

    assert sheet_names(path) == ["Notes", "Rates"]
    rows = read_rows(path, "Rates")

    # Row 2 of the sheet is rows[1]; column B is index 1.
    assert rows[1][1:4] == ["Код", "Назва", "Ціна"]
    assert rows[2][1:4] == [380, "Україна", 1.5] or rows[2][1:4] == [380.0, "Україна", 1.5]
    assert rows[2][4] in (datetime.date(2024, 1, 31), datetime.datetime(2024, 1, 31))


def test_xls_is_read(tmp_path):
    path = tmp_path / "deck.xls"
    book = xlwt.Workbook()
    sheet = book.add_sheet("Тарифи")
    for col, value in enumerate(["code", "name", "rate"]):
        sheet.write(0, col, value)
    for col, value in enumerate([44, "UK", 0.012]):
        sheet.write(1, col, value)
    book.save(str(path))

    assert sheet_names(path) == ["Тарифи"]
    assert read_rows(path) == [["code", "name", "rate"], [44.0, "UK", 0.012]]


def test_unknown_sheet_is_refused_naming_the_sheets(tmp_path):
    path = tmp_path / "deck.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(ImportFileError, match="no sheet 'Rates'; the sheets are Sheet"):
        read_rows(path, "Rates")


def test_an_xlsx_that_unpacks_to_an_absurd_size_is_refused_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b" " * 2_000_000)
    monkeypatch.setattr(readers, "MAX_UNPACKED_BYTES", 1_000_000)
    with pytest.raises(ImportFileError, match="unpacks to"):
        sheet_names(path)


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path):
    path = tmp_path / "deck.xlsx"
    path.write_text("code,rate\n")
    with pytest.raises(ImportFileError, match="not an Excel workbook"):
        read_rows(path)


def test_unknown_extension_and_missing_file_are_refused(tmp_path):
    with pytest.raises(ImportFileError, match="no such file"):
        read_rows(tmp_path / "none.csv")
    (tmp_path / "deck.pdf").write_bytes(b"%PDF")
    with pytest.raises(ImportFileError, match="unknown file type .pdf"):
        read_rows(tmp_path / "deck.pdf")


def test_csv_utf8_with_bom_and_semicolons(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_bytes("Код;Назва;Ціна\r\n380;Україна;1,5\r\n".encode("utf-8-sig"))
    assert read_rows(path) == [["Код", "Назва", "Ціна"], ["380", "Україна", "1,5"]]


def test_csv_windows_1251_with_semicolons(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_bytes("Код;Назва;Ціна\n38044;Київ;0,25\n".encode("cp1251"))
    assert read_rows(path) == [["Код", "Назва", "Ціна"], ["38044", "Київ", "0,25"]]


def test_csv_tabs_and_quoted_commas(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_text("code\tname\trate\n82\tKorea, Republic of\t0.1\n")
    assert read_rows(path)[1] == ["82", "Korea, Republic of", "0.1"]


def test_csv_commas_win_when_names_hold_semicolons_unevenly(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_text('code,name,rate\n1,"A;B",1\n2,C,2\n3,D,3\n')
    assert read_rows(path)[1] == ["1", "A;B", "1"]


def test_cdr_stats_deck_is_read_as_comma_separated():
    rows = read_rows(TESTDATA / "import" / "cdr_stats_import_carrier_rates.txt")
    assert rows[2] == ["44", " 0.012"]
    assert len(rows) == 5


def test_asterisell_prefixes_are_read_as_semicolon_separated():
    rows = read_rows(shared_testdata("rates/asterisell/new_world_prefixes.csv"))
    assert len(rows) == 10063
    assert rows[4] == ["Afghanistan Mobile AWCC", "93708996", "", ""]


def test_access_without_mdbtools_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "deck.accdb"
    path.write_bytes(b"\0" * 64)
    # mdbtools chosen, and not on this PATH
    monkeypatch.setenv("TARISCOPE_ACCESS_READER", "mdbtools")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImportFileError, match="needs mdb-tables \\(the mdbtools package\\)"):
        sheet_names(path)


# The two Excel readers: python-calamine, and openpyxl where calamine is absent or unwanted

def _workbook_off_a1(path):
    """Two sheets; the rates start at C4, below a title and beside a column of notes."""
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active["A1"] = "see Rates"
    sheet = book.create_sheet("Rates")
    sheet["A1"] = "Rates of 2024"
    sheet["C4"], sheet["D4"], sheet["E4"] = "Код", "Назва", "Ціна"
    rows = [(380, "Україна", 1.5), ("38050-38052", "Мобільні", 2.25), (44, "UK", None)]
    for number, row in enumerate(rows, start=5):
        for column, value in zip("CDE", row, strict=True):
            sheet[f"{column}{number}"] = value
    sheet["B7"] = "no rate yet"
    book.save(path)
    return path


def _plain(rows):
    """Cells as the mapping sees them: a number is its value, an empty cell is None."""
    return [[None if cell in ("", None) else float(cell) if isinstance(cell, int | float)
             else cell for cell in row] for row in rows]


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_each_excel_reader_numbers_rows_and_columns_as_excel_does(tmp_path, monkeypatch, reader):
    monkeypatch.setenv("TARISCOPE_EXCEL_READER", reader)
    rows = _plain(read_rows(_workbook_off_a1(tmp_path / "deck.xlsx"), "Rates"))
    # Row 4 of the sheet is rows[3], column C is index 2; trailing empty cells do not count.
    assert rows[0][0] == "Rates of 2024"
    assert rows[3][2:5] == ["Код", "Назва", "Ціна"]
    assert rows[4][2:5] == [380.0, "Україна", 1.5]
    assert rows[6][1:4] == ["no rate yet", 44.0, "UK"]
    assert len(rows) == 7


def test_both_excel_readers_give_the_same_rows(tmp_path, monkeypatch):
    path = _workbook_off_a1(tmp_path / "deck.xlsx")
    read = {}
    for reader in ("calamine", "openpyxl"):
        monkeypatch.setenv("TARISCOPE_EXCEL_READER", reader)
        read[reader] = _plain(read_rows(path, "Rates"))
    width = max(len(row) for rows in read.values() for row in rows)
    padded = {k: [row + [None] * (width - len(row)) for row in rows] for k, rows in read.items()}
    assert padded["calamine"] == padded["openpyxl"]


def test_an_unknown_excel_reader_is_refused_naming_the_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("TARISCOPE_EXCEL_READER", "libreoffice")
    with pytest.raises(ImportFileError, match="TARISCOPE_EXCEL_READER is 'libreoffice'; it must "
                                              "be one of auto, calamine, openpyxl"):
        read_rows(_workbook_off_a1(tmp_path / "deck.xlsx"))


def test_xls_needs_calamine(tmp_path, monkeypatch):
    path = tmp_path / "deck.xls"
    book = xlwt.Workbook()
    book.add_sheet("Rates").write(0, 0, "code")
    book.save(str(path))
    monkeypatch.setenv("TARISCOPE_EXCEL_READER", "openpyxl")
    with pytest.raises(ImportFileError, match=".xls files need python-calamine"):
        read_rows(path)
