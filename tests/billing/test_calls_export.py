"""R11.2: the calls page's exports (/calls/?export=csv|xlsx) and `manage.py export_calls`:
the columns of billing.tables.CallTable (a contract's first 15, new ones after), the page's
filters and sort, numbers as numbers and dates as dates in XLSX, formula escaping in both
(also tests/billing/test_export_formulas.py), a 400 with the errors for a wrong filter, and
the file streamed in constant memory."""
import csv
import io
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime

import openpyxl
import pytest
from django.core.management import call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.utils import timezone

from billing import exports
from billing.models import Call
from tariffs.choices import CallType, Direction
from tests.billing.test_calls_page import Calls, _calls_for_query_count, make_call, viewer
from tests.factories import DeviceFactory, OperatorFactory, SubscriberFactory

# The contract (issue 3): these names in this order, first; new columns come after them.
CONTRACT = ("start,device,subscriber,extension,dialled,normalized,direction,call_type,"
            "duration,billable_seconds,operator,code,tariff,cost,currency")
HEADER = CONTRACT + ",id,group,route"


@pytest.fixture
def operator_client(client, django_user_model):
    return viewer(client, django_user_model, "view_call")


@pytest.fixture
def calls(site, second_device):
    return Calls(site, second_device)


def body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response).decode())))


def workbook(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data))


def sheet_rows(sheet) -> list[dict]:
    """The rows of a sheet under their header, as cells (value, type and format)."""
    rows = list(sheet.iter_rows())
    header = [cell.value for cell in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


# -- CSV

def test_csv_export_has_the_contract_header_and_one_row_per_call(operator_client, calls):
    # given five calls
    # when exported
    response = operator_client.get("/calls/", {"export": "csv"})
    # then it is a CSV attachment: the header (the contract's columns first), one row a call
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="calls.csv"'
    text = body(response).decode()
    assert text.splitlines()[0] == HEADER
    rows = {row["dialled"]: row for row in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 5
    # and each row shows the call in its device's zone, cost to the minor unit
    assert rows["900442071234567"] == {
        "start": "2024-06-12T13:00:00+03:00", "device": "KyivPBX", "subscriber": "Olena Koval",
        "extension": "102", "dialled": "900442071234567", "normalized": "442071234567",
        "direction": "outgoing", "call_type": "5", "duration": "115",
        "billable_seconds": "120", "operator": calls.operator.name, "code": "44",
        "tariff": "United Kingdom", "cost": "12.50", "currency": "UAH",
        "id": str(calls.c2.pk), "group": "Support", "route": "",
    }
    # not priced: empty, not 0; a number in E.164 is no formula and stays as it is
    assert rows["+380501234567"]["cost"] == ""
    assert rows["+380501234567"]["subscriber"] == ""


def test_the_export_columns_are_the_tables_with_the_contract_first():
    # the one definition of a call row: the page's table's columns, under their names
    assert ",".join(exports.CALL_COLUMNS) == HEADER
    assert ",".join(exports.CALL_COLUMNS[:15]) == CONTRACT


@pytest.mark.parametrize(
    ("currency", "stored", "exported"),
    [("UAH", "1.0000", "1.00"), ("JPY", "150.0000", "150"), ("KWD", "1.2345", "1.235")],
)
def test_csv_cost_is_formatted_to_the_currency_minor_unit(operator_client, db, currency,
                                                          stored, exported):
    # given a call costed in `currency`
    device = DeviceFactory()
    make_call(device=device, key="x", start=datetime(2024, 6, 17, tzinfo=UTC), cost=stored,
              currency=currency, operator=OperatorFactory(currency=currency))
    # when exported
    (row,) = csv_rows(operator_client.get("/calls/", {"export": "csv"}))
    # then the cost has the currency's minor unit, rounded half up
    assert (row["cost"], row["currency"]) == (exported, currency)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_export_follows_the_pages_filters_and_sort(operator_client, calls, fmt):
    # given five calls
    # when the Lviv device's calls are exported, dearest first
    response = operator_client.get("/calls/", {"export": fmt, "device": calls.lviv.pk,
                                               "sort": "-cost", "page": "2"})
    # then the file holds its three calls (all of them, not a page) in that order
    if fmt == "csv":
        dialled = [row["dialled"] for row in csv_rows(response)]
    else:
        dialled = [row["dialled"].value for row in sheet_rows(workbook(body(response)).active)]
    unpriced = "+380501234567"
    priced = ["90322345678", "90671234567"]
    # (PostgreSQL sorts an unpriced call first when descending, SQLite last)
    assert dialled in (priced + [unpriced], [unpriced] + priced)


def test_a_refunds_negative_cost_stays_a_number(operator_client, db):
    # given a refund: a call whose cost is -1.50, from an extension written "-15"
    device = DeviceFactory()
    make_call(device=device, key="r", start=datetime(2024, 6, 17, tzinfo=UTC), cost="-1.5",
              currency="UAH", extension="-15", dialled="-1+2")
    # when exported as CSV and XLSX
    (row,) = csv_rows(operator_client.get("/calls/", {"export": "csv"}))
    (cells,) = sheet_rows(workbook(body(operator_client.get("/calls/", {"export": "xlsx"}))).active)
    # then the cost is a plain negative number in both (no apostrophe), and a text that
    # would be a formula is escaped while a plain number's text is not
    assert (row["cost"], row["extension"], row["dialled"]) == ("-1.50", "-15", "'-1+2")
    assert (cells["cost"].data_type, cells["cost"].value) == ("n", -1.5)
    assert (cells["extension"].data_type, cells["extension"].value) == ("s", "-15")
    assert cells["dialled"].value == "'-1+2"


# -- XLSX

def test_xlsx_export_writes_numbers_as_numbers_and_dates_as_dates(operator_client, calls):
    # given five calls
    # when exported as XLSX
    response = operator_client.get("/calls/", {"export": "xlsx"})
    # then it is a workbook attachment
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert response["Content-Disposition"] == 'attachment; filename="calls.xlsx"'
    book = workbook(body(response))
    assert book.sheetnames == ["Calls"]
    sheet = book.active
    # with the CSV's header, bold, frozen above the rows
    assert ",".join(cell.value for cell in sheet[1]) == HEADER
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"
    rows = {row["dialled"].value: row for row in sheet_rows(sheet)}
    c2 = rows["900442071234567"]
    # and the start a date-time in the device's zone (Kyiv: 10:00 UTC is 13:00), no zone
    assert c2["start"].is_date and c2["start"].value == datetime(2024, 6, 12, 13, 0)
    assert c2["start"].number_format == "yyyy-mm-dd hh:mm:ss"
    # the counts and codes are whole numbers, the cost a number shown with 2 decimals
    assert {name: c2[name].value for name in ("call_type", "duration", "billable_seconds",
                                               "id")} == {
        "call_type": 5, "duration": 115, "billable_seconds": 120, "id": calls.c2.pk}
    assert all(c2[name].data_type == "n" for name in ("call_type", "duration", "id", "cost"))
    assert (c2["cost"].value, c2["cost"].number_format) == (12.5, "0.00")
    # and the rest is text
    assert {name: (c2[name].data_type, c2[name].value) for name in (
        "device", "subscriber", "extension", "normalized", "direction", "tariff", "currency",
        "group")} == {
        "device": ("s", "KyivPBX"), "subscriber": ("s", "Olena Koval"),
        "extension": ("s", "102"), "normalized": ("s", "442071234567"),
        "direction": ("s", "outgoing"), "tariff": ("s", "United Kingdom"),
        "currency": ("s", "UAH"), "group": ("s", "Support")}
    # an unpriced call's cost and an empty text are empty cells, not 0
    c3 = rows["+380501234567"]
    assert (c3["cost"].value, c3["subscriber"].value, c3["start"].value) == (
        None, None, datetime(2024, 6, 16, 2, 30))  # Lviv is in Kyiv's zone too
    # the E.164 number is text, not a number that would lose its "+"
    assert c3["dialled"].data_type == "s"


@pytest.mark.parametrize(("currency", "stored", "value", "shown"), [
    ("JPY", "150.0000", 150, "0"), ("KWD", "1.2345", 1.235, "0.000"),
    ("EUR", "0.1250", 0.13, "0.00"),
])
def test_xlsx_cost_has_the_currency_minor_unit(operator_client, db, currency, stored, value,
                                               shown):
    # given a call costed in `currency`
    make_call(device=DeviceFactory(), key="x", start=datetime(2024, 6, 17, tzinfo=UTC),
              cost=stored, currency=currency)
    # when exported as XLSX
    (row,) = sheet_rows(workbook(body(operator_client.get("/calls/", {"export": "xlsx"}))).active)
    # then the cost is rounded half up to the minor unit and shown with as many decimals
    assert (row["cost"].value, row["cost"].number_format) == (value, shown)


def test_xlsx_holds_text_that_xml_cannot(operator_client, db):
    # given a subscriber whose name holds a control character, markup and a CR
    device = DeviceFactory()
    odd = SubscriberFactory(full_name="A\x01B <i>&amp;</i>\r\nC ")
    make_call(device=device, key="x", start=datetime(2024, 6, 17, tzinfo=UTC), subscriber=odd)
    # when exported as XLSX
    (row,) = sheet_rows(workbook(body(operator_client.get("/calls/", {"export": "xlsx"}))).active)
    # then the workbook opens, the name is kept but for what XML cannot hold at all
    assert row["subscriber"].value == "AB <i>&amp;</i>\r\nC "


def test_xlsx_goes_on_to_a_second_sheet_past_the_row_limit(operator_client, calls, monkeypatch):
    # given a sheet limit of 3 rows (the header and two calls; Excel's is 1,048,576)
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)
    # when five calls are exported
    book = workbook(body(operator_client.get("/calls/", {"export": "xlsx", "sort": "start"})))
    # then they fill three sheets, each with the header, none lost
    assert book.sheetnames == ["Calls", "Calls 2", "Calls 3"]
    keys = []
    for sheet in book:
        assert ",".join(cell.value for cell in sheet[1]) == HEADER
        keys += [row["id"].value for row in sheet_rows(sheet)]
    assert keys == [c.pk for c in (calls.c1, calls.c2, calls.c3, calls.c4, calls.c5)]


def test_an_empty_export_is_a_header_alone(operator_client, db):
    # given no calls; when exported
    csv_text = body(operator_client.get("/calls/", {"export": "csv"})).decode()
    book = workbook(body(operator_client.get("/calls/", {"export": "xlsx"})))
    # then each file holds the header only
    assert csv_text == HEADER + "\r\n"
    assert [[cell.value for cell in row] for row in book.active.iter_rows()] == [
        HEADER.split(",")]


def test_the_xlsx_is_a_well_formed_package(operator_client, calls):
    # given five calls; when exported as XLSX
    data = body(operator_client.get("/calls/", {"export": "xlsx"}))
    # then it is a zip whose first part says the content types, and every part is sound
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.namelist()[0] == "[Content_Types].xml"
        assert package.testzip() is None
        assert {"xl/workbook.xml", "xl/styles.xml", "xl/worksheets/sheet1.xml",
                "_rels/.rels", "xl/_rels/workbook.xml.rels"} <= set(package.namelist())


def test_an_export_reads_the_calls_in_one_query_whatever_their_number(
        operator_client, calls, django_assert_max_num_queries):
    # given five calls, then 500 more of many subscribers
    counts = []
    for more in (0, 500):
        if more:
            _calls_for_query_count(more)
        # when exported as CSV; then session, user, rights (2) and the calls do it
        with django_assert_max_num_queries(5) as queries:
            text = body(operator_client.get("/calls/", {"export": "csv"})).decode()
        counts.append(len(queries))
        assert len(text.splitlines()) == 1 + 5 + more
    assert counts[0] == counts[1]


# -- wrong requests

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_with_a_wrong_filter_is_refused_with_the_errors(operator_client, calls, fmt):
    # given five calls
    # when an export is asked for a period given backwards and a negative cost
    response = operator_client.get("/calls/", {"export": fmt, "date_from": "2024-06-20",
                                               "date_to": "2024-06-10", "cost_min": "-1"})
    # then the answer is 400 with the page and its errors, not a file
    assert response.status_code == 400
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "Content-Disposition" not in response
    html = response.content.decode()
    assert "The period ends before it starts." in html
    assert "Ensure this value is greater than or equal to 0." in html


def test_an_unknown_export_format_is_refused(operator_client, db):
    # when a PDF is asked for; then 400, naming the format
    response = operator_client.get("/calls/", {"export": "pdf"})
    assert response.status_code == 400
    assert response.content.decode() == "Unknown export format: pdf."
    # as plain text: what was asked for is never markup
    assert response["Content-Type"] == "text/plain; charset=utf-8"


# -- manage.py export_calls

def test_export_calls_writes_the_columns_numbers_and_dates(calls, tmp_path):
    # given five calls in June
    # when June is exported by the command, as CSV and as XLSX
    for fmt in ("csv", "xlsx"):
        call_command("export_calls", "--from", "2024-06-01", "--to", "2024-06-30",
                     "--format", fmt, "--output", str(tmp_path / f"calls.{fmt}"))
    # then the CSV has the page's columns, oldest first
    text = (tmp_path / "calls.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [str(c.pk) for c in (
        calls.c1, calls.c2, calls.c3, calls.c4, calls.c5)]
    assert rows[0]["start"] == "2024-06-10T13:00:00+03:00"
    # and the workbook holds the start as a date and the cost as a number (not as text)
    (first, *_) = sheet_rows(openpyxl.load_workbook(tmp_path / "calls.xlsx").active)
    assert (first["start"].value, first["start"].is_date) == (datetime(2024, 6, 10, 13), True)
    assert (first["cost"].value, first["cost"].data_type) == (1, "n")
    assert (first["duration"].value, first["call_type"].value) == (60, 3)


def test_export_calls_to_stdout_and_of_one_device(calls, capsys):
    # when the Kyiv device's calls are written to stdout
    call_command("export_calls", "--from", "2024-06-01", "--to", "2024-06-30",
                 "--device", "KyivPBX", "--output", "-")
    # then stdout holds them, stderr says how many
    out, err = capsys.readouterr()
    assert [row["dialled"] for row in csv.DictReader(io.StringIO(out))] == [
        "92345678", "900442071234567"]
    assert "2 calls written to -" in err


# -- constant memory

MANY = 200_000
# Peak memory growth allowed while a whole export is streamed (some 3.5 MiB: a chunk of
# rows read and a few pieces of the file). The files of MANY calls are some 21 MiB (CSV)
# and 15 MiB (XLSX, compressed); their rows held at once, many times that.
MEMORY_BOUND = 8 * 1024 * 1024


def _many_calls(device, subscriber, n):
    """n calls of `device`, every other one `subscriber`'s, some of them refunds (-1.00 to
    8.99), inserted by the database itself (INSERT ... SELECT over a counter) in a second
    rather than the ORM's half minute. The other columns get their fields' defaults."""
    varying = {
        "source_key": ("'m' || CAST(i AS TEXT)", []),
        "subscriber_id": ("CASE WHEN i %% 2 = 1 THEN %s END", [subscriber.pk]),
        "extension": ("CAST(100 + i %% 900 AS TEXT)", []),
        "dialled": ("'90' || CAST(670000000 + i AS TEXT)", []),
        "normalized": ("'380' || CAST(670000000 + i AS TEXT)", []),
        "duration": ("i %% 600", []),
        "cost": ("(i %% 1000 - 100) / 100.0", []),
    }
    given = {"device_id": device.pk, "start": datetime(2024, 6, 1, tzinfo=UTC),
             "created_at": timezone.now(), "direction": Direction.OUTGOING,
             "call_type": CallType.MOBILE, "billable_seconds": 60, "currency": "UAH"}
    columns, values, params = [], [], []
    for field in Call._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in varying:
            sql, more = varying[field.attname]
            values.append(sql)
            params += more
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(given.get(field.attname, field.get_default()),
                                                 connection))
    with connection.cursor() as cursor:
        # Names from the model, numbers from here: nothing from outside goes into the SQL.
        cursor.execute(
            f"INSERT INTO {Call._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
            f"SELECT {', '.join(values)} FROM n", [n - 1, *params])
    assert Call.objects.count() == n


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_of_many_calls_streams_in_constant_memory(operator_client, site, fmt, request):
    # (XLSX writes some twice the Python objects a row that CSV does: under tracemalloc,
    # which traces each, 200,000 rows take some 40 s on SQLite, 25 s on PostgreSQL.)
    if fmt == "xlsx":
        request.getfixturevalue("postgres")
    # given 200,000 calls
    _many_calls(site.device, site.subscriber, MANY)
    response = operator_client.get("/calls/", {"export": fmt})
    # when the whole file is taken from the response, piece by piece
    started = time.monotonic()
    tracemalloc.start()
    size = pieces = largest = 0
    for piece in response.streaming_content:
        size += len(piece)
        pieces += 1
        largest = max(largest, len(piece))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.monotonic() - started
    print(f"{fmt}: {size / 2**20:.1f} MiB in {pieces} pieces, peak {peak / 2**20:.1f} MiB, "
          f"{elapsed:.1f} s")
    # then it came in many small pieces (not built first and given at once), and the
    # memory it took stayed within a bound that the file held at once would break
    assert pieces > 50 and largest < 1024 * 1024
    assert peak < MEMORY_BOUND < size / 1.5
