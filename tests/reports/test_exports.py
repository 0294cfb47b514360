"""R11.3: a report as XLSX (read back with openpyxl) and PDF (read back with pypdf)."""
import io
import zipfile
from datetime import datetime

from openpyxl import load_workbook
from pypdf import PdfReader

from reports.catalogue import REPORTS
from reports.exports import csv_bytes, pdf_bytes, xlsx_bytes
from reports.selectors import Report
from tests.reports.conftest import JANUARY


def _book(name, filters=JANUARY, lines=("Period: 2024-01-01 – 2024-01-31",)):
    kind = REPORTS[name]
    return load_workbook(io.BytesIO(xlsx_bytes(kind, kind.run(dict(filters)), list(lines))))


def _table(sheet, header_first: str):
    """The rows of the sheet from the header row (whose first cell is `header_first`) on."""
    values = list(sheet.iter_rows())
    start = next(i for i, row in enumerate(values) if row[0].value == header_first)
    return values[start], values[start + 1:]


def test_xlsx_has_numbers_as_numbers_dates_as_dates_and_the_totals(calls):
    # when the report by day is exported
    book = _book("by_day")
    sheet = book["Report"]
    head, body = _table(sheet, "Day")
    # then the title and filters come first, then the header
    assert [sheet["A1"].value, sheet["A2"].value] == ["By day", "Period: 2024-01-01 – 2024-01-31"]
    assert [c.value for c in head] == ["Day", "Calls", "Talk time, s", "Cost", "Currency"]
    first = body[0]
    # the day is a date cell, calls and seconds are numbers, the cost a number of 4 places
    assert isinstance(first[0].value, datetime) and first[0].value.date().isoformat() == "2024-01-10"
    assert first[0].number_format == "yyyy-mm-dd"
    assert [c.data_type for c in first[1:4]] == ["n", "n", "n"]
    assert [first[1].value, first[2].value, first[3].value, first[4].value] == [2, 180, 2.5, "UAH"]
    assert first[3].number_format == "#,##0.0000"
    # and the totals per currency close the table
    totals = [[c.value for c in row] for row in body if row[0].value == "Total"]
    assert totals == [["Total", 1, 200, 0, None], ["Total", 6, 305, 5.25, "UAH"],
                      ["Total", 3, 945, 2.1, "USD"]]


def test_xlsx_has_the_charts_data_on_a_sheet_with_a_chart(calls):
    # when the report by destination is exported
    book = _book("by_destination")
    data = book["Chart data"]
    # then the sheet has a column per series: the cost per currency, then the calls
    rows = [[c.value for c in row] for row in data.iter_rows()]
    assert rows == [
        ["Destination", "Cost, UAH", "Cost, USD", "Calls"],
        ["Kyiv", 1.75, 0, 3],
        ["Mobile", 1.5, 0, 2],
        ["Poland", 0, 2.1, 3],
        ["Ukraine", 2, 0, 1],
        ["not priced", 0, 0, 1],
    ]


def test_xlsx_file_holds_a_bar_chart_of_the_chart_data(calls):
    # when the report is exported, then the file has a bar chart (load_workbook drops
    # charts, so it is looked for in the file itself) over the chart data sheet
    kind = REPORTS["by_destination"]
    content = xlsx_bytes(kind, kind.run(dict(JANUARY)))
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        chart = archive.read(charts[0])
        assert b"<barChart>" in chart and b"'Chart data'!$B$2:$B$6" in chart


def test_xlsx_escapes_keys_that_a_spreadsheet_would_run(calls):
    # given a subscriber whose name starts like a formula
    calls.petro.full_name = "=HYPERLINK(\"http://x\")"
    calls.petro.save()
    # when the report by subscriber is exported, then the name is text, not a formula
    head, body = _table(_book("by_subscriber")["Report"], "Subscriber")
    names = [row[0] for row in body]
    cell = next(c for c in names if c.value and "HYPERLINK" in str(c.value))
    assert (cell.value, cell.data_type) == ("'=HYPERLINK(\"http://x\")", "s")
    assert b"'=HYPERLINK" in csv_bytes(REPORTS["by_subscriber"],
                                       REPORTS["by_subscriber"].run(dict(JANUARY)))


def test_xlsx_of_busiest_hours_and_of_months(calls):
    head, body = _table(_book("busiest_hours", {**JANUARY, "top": 1})["Report"], "Hour")
    assert [c.value for c in head][-2:] == ["Most at once", "Currency"]
    assert body[0][0].value == datetime(2024, 1, 10, 10) and body[0][0].number_format == \
        "yyyy-mm-dd hh:mm"
    assert body[0][4].value == 2


def test_pdf_has_the_table_the_totals_and_the_chart(calls):
    # when the report by subscriber is made as a PDF
    kind = REPORTS["by_subscriber"]
    content = pdf_bytes(kind, kind.run(dict(JANUARY)), ["Period: 2024-01-01 – 2024-01-31"])
    text = " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(content)).pages)
    # then it has the title, the filters, the rows (Cyrillic-capable font) and the totals per
    # currency, to the currency's minor unit
    assert "By subscriber" in text and "Period: 2024-01-01 – 2024-01-31" in text
    assert "Maria Shevchenko" in text
    assert "Total 6 305 5.25 UAH" in text and "Total 3 945 2.10 USD" in text
    # and the chart's legend names its series
    assert "Cost, UAH" in text and "Cost, USD" in text


def test_pdf_of_names_in_cyrillic_and_of_an_empty_report(calls):
    calls.maria.full_name = "Марія Шевченко"
    calls.maria.save()
    kind = REPORTS["by_subscriber"]
    content = pdf_bytes(kind, kind.run(dict(JANUARY)))
    assert "Марія Шевченко" in PdfReader(io.BytesIO(content)).pages[0].extract_text()
    empty = pdf_bytes(kind, Report("by_subscriber", [], []))
    assert "By subscriber" in PdfReader(io.BytesIO(empty)).pages[0].extract_text()
