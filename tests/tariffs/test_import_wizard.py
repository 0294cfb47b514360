"""The tariff import wizard (R5.2): six steps in the web UI over the same importer as
`manage.py import_tariffs`."""
import csv
import datetime
import io
import time
from decimal import Decimal

import openpyxl
import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tariffs import views
from tariffs.importers.jobs import job_dir
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tests.conftest import needs, wait_for
from tests.factories import OperatorFactory, TariffPlanFactory
from tests.tariffs.test_import_bulk import refuse_code, refuse_code_undo

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2024, 6, 1, 12, tzinfo=datetime.UTC)
TODAY = datetime.date(2024, 6, 1)
DECK = [["Код", "Назва", "Ціна", "Тип"],
        ["380", "Україна", "1,5", "4"],
        ["38050-38052, 38067", "Мобільні", "2,25", "mobile"],
        ["381", "Сербія", "", "5"],
        ["382", "Чорногорія", "3.125", "satellite"]]
NEW_OPERATOR = {"new_operator": "Kyivstar", "currency": "UAH", "new_plan": "Standard",
                "round_to_minutes": "on", "date_order": "dmy"}


def csv_bytes(rows, delimiter=";"):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(sheets: dict[str, list[list]]):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def importer(client):
    user = User.objects.create_user("tariffs", password="pw-tariffs-1")
    user.user_permissions.add(Permission.objects.get(codename="add_tariff"))
    client.force_login(user)
    return client


def upload(client, name, content, file_type):
    return client.post(reverse("tariff_import"), {
        "file_type": file_type, "file": SimpleUploadedFile(name, content)})


def import_id_of(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return response.url.split("/")[-3]


def step(name, import_id):
    return reverse(f"tariff_import_{name}", kwargs={"import_id": import_id})


def to_options(client, name, content, file_type, *, columns, sheet=None, has_header=True):
    """Steps 1-3; the import's id."""
    import_id = import_id_of(upload(client, name, content, file_type))
    sheets = client.session["tariff_imports"][import_id]["sheets"]
    response = client.post(step("sheet", import_id), {"sheet": sheet or sheets[0]})
    assert response.status_code == 302
    data = {"action": "next", **columns}
    if has_header:
        data["has_header"] = "on"
    response = client.post(step("mapping", import_id), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response.url == step("options", import_id)
    return import_id


def result_counts(response) -> dict:
    page = response.content.decode()
    return {key: int(page.split(f'id="{key}">')[1].split("<")[0])
            for key in ("codes-added", "tariffs-added", "updated", "skipped", "rejected")}


# Access ---------------------------------------------------------------------------------

def test_anonymous_visitor_is_sent_to_the_login_page(client):
    # when
    response = client.get(reverse("tariff_import"))
    # then
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_user_without_the_add_tariff_permission_gets_403(client, tmp_path):
    # given a user who may log in but not add tariffs
    client.force_login(User.objects.create_user("viewer", password="pw-viewer-1"))
    # when
    page = client.get(reverse("tariff_import"))
    posted = upload(client, "deck.csv", csv_bytes(DECK), "csv")
    # then nothing is saved
    assert page.status_code == 403 and posted.status_code == 403
    assert not job_dir("0" * 32).parent.exists()


def test_the_tariffs_area_has_the_import_tariffs_link(importer):
    # when a page, then the Tariffs area, is opened
    page = importer.get(reverse("home")).content.decode()
    area = importer.get(reverse("tariffs")).content.decode()
    # then the navigation leads to the area, and the area to the import
    assert f'href="{reverse("tariffs")}">Tariffs' in page
    assert f'href="{reverse("tariff_import")}">Import tariffs' in area


def test_a_step_of_an_import_this_session_does_not_have_is_404(importer):
    assert importer.get(step("mapping", "a" * 32)).status_code == 404


# The whole walk -------------------------------------------------------------------------

@time_machine.travel(NOW, tick=False)
def test_csv_deck_walks_all_steps_and_writes_codes_tariffs_and_exact_prices(importer):
    # given a CSV deck with a bad rate and an unknown call type
    import_id = to_options(importer, "deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "name": "B", "rate": "C", "calltype": "D"})
    # when the options are sent (step 5 runs in the request: no broker)
    response = importer.post(step("options", import_id), NEW_OPERATOR)
    # then the result page counts and lists the rejected rows
    assert response.status_code == 302 and response.url == step("result", import_id)
    page = importer.get(response.url)
    assert result_counts(page) == {"codes-added": 5, "tariffs-added": 2, "updated": 0,
                                   "skipped": 0, "rejected": 2}
    html = page.content.decode()
    assert "<td class=\"num\">4</td><td>empty rate</td>" in html
    assert "unknown call type &#x27;satellite&#x27;" in html
    assert step("rejects", import_id) in html and "Download rejects as CSV" in html
    # and the database has the operator, plan, tariffs, codes and exact prices
    operator = Operator.objects.get(name="Kyivstar")
    assert operator.currency == "UAH"
    plan = TariffPlan.objects.get(name="Standard")
    assert sorted(PhoneCode.objects.filter(operator=operator).values_list("code", flat=True)) == [
        "380", "38050", "38051", "38052", "38067"]
    prices = {p.tariff.name: p.price_per_minute
              for p in TariffPrice.objects.filter(plan=plan).select_related("tariff")}
    assert prices == {"Україна": Decimal("1.500000"), "Мобільні": Decimal("2.250000")}
    mobile = Tariff.objects.get(name="Мобільні")
    assert (mobile.call_type, mobile.first_interval, mobile.next_interval, mobile.valid_from) == (
        6, 60, 60, TODAY)


@time_machine.travel(NOW, tick=False)
def test_xlsx_deck_from_openpyxl_on_its_second_sheet_imports_per_second(importer):
    # given a workbook whose deck is on its second sheet, headers in English, dates as cells
    content = xlsx_bytes({
        "Notes": [["nothing here"]],
        "Rates": [["Prefix", "Destination", "Price", "From"],
                  ["44", "United Kingdom", 0.0425, datetime.datetime(2024, 5, 1)],
                  ["4420-4421", "London", 0.031, datetime.datetime(2024, 5, 1)]]})
    import_id = to_options(importer, "rates.xlsx", content, "xlsx", sheet="Rates",
                           columns={"code": "A", "name": "B", "rate": "C", "tariff_valid_from": "D"})
    assert importer.session["tariff_imports"][import_id]["sheets"] == ["Notes", "Rates"]
    # when it is imported per second into an existing operator and plan
    operator = OperatorFactory(name="BT", currency="GBP")
    plan = TariffPlanFactory(name="Business")
    response = importer.post(step("options", import_id), {
        "operator": "BT", "plan": "Business", "date_order": "dmy"})
    # then
    assert response.status_code == 302
    assert result_counts(importer.get(response.url)) == {
        "codes-added": 3, "tariffs-added": 2, "updated": 0, "skipped": 0, "rejected": 0}
    london = Tariff.objects.get(operator=operator, name="London")
    assert (london.first_interval, london.next_interval, london.valid_from) == (
        1, 1, datetime.date(2024, 5, 1))
    assert TariffPrice.objects.get(tariff=london, plan=plan).price_per_minute == Decimal("0.031000")
    assert TariffPrice.objects.get(tariff__name="United Kingdom", plan=plan).price_per_minute == (
        Decimal("0.042500"))
    assert sorted(PhoneCode.objects.values_list("code", flat=True)) == ["44", "4420", "4421"]


@time_machine.travel(NOW, tick=False)
def test_preview_shows_the_first_20_rows_as_mapped_and_writes_nothing(importer):
    # given a deck of 30 rows, the second with a range and a decimal comma
    rows = [DECK[0], ["38050-38051", "Мобільні", "2,25", "mobile"]]
    rows += [[str(700 + n), f"Dest {n}", "1", "5"] for n in range(28)]
    rows.append(["999", "Beyond the preview", "1", "5"])
    import_id = import_id_of(upload(importer, "deck.csv", csv_bytes(rows), "csv"))
    importer.post(step("sheet", import_id), {"sheet": "deck"})
    # when "Preview" is pressed
    response = importer.post(step("mapping", import_id), {
        "action": "preview", "has_header": "on", "code": "A", "name": "B", "rate": "C",
        "calltype": "D"})
    # then the page shows the rows as mapped, and stays on step 3
    assert response.status_code == 200
    html = response.content.decode()
    assert "<td>38050</td><td>Мобільні</td><td>Мобільні</td>" in html
    assert "<td>38051</td>" in html and "2.250000" in html and "<td>mobile</td>" in html
    assert "<td>2024-06-01</td>" in html and "<td>outgoing</td>" in html
    assert "Dest 18" in html and "Dest 19" not in html and "Beyond the preview" not in html
    # and the selects list the file's letters and headers, the choice kept
    assert '<option value="C" selected>C: Ціна</option>' in html
    # and nothing was written
    assert Operator.objects.count() == 0 and PhoneCode.objects.count() == 0
    assert "mapping" not in importer.session["tariff_imports"][import_id]


def test_preview_lists_the_rows_that_would_be_rejected(importer):
    # given
    import_id = import_id_of(upload(importer, "deck.csv", csv_bytes(DECK), "csv"))
    importer.post(step("sheet", import_id), {"sheet": "deck"})
    # when
    response = importer.post(step("mapping", import_id), {
        "action": "preview", "has_header": "on", "code": "A", "rate": "C", "calltype": "D"})
    # then
    html = response.content.decode()
    assert "<td class=\"num\">4</td><td>empty rate</td>" in html
    assert "unknown call type" in html


def test_preview_queries_stay_bounded(importer, django_assert_max_num_queries):
    # given
    import_id = import_id_of(upload(importer, "deck.csv", csv_bytes(DECK), "csv"))
    importer.post(step("sheet", import_id), {"sheet": "deck"})
    # when / then: the session, the user and the permission check only
    with django_assert_max_num_queries(5):
        importer.post(step("mapping", import_id), {
            "action": "preview", "has_header": "on", "code": "A", "rate": "C"})


# Step 6: result, rejects as CSV, cleanup ----------------------------------------------------

def imported(client, rows=DECK, columns=None):
    import_id = to_options(client, "deck.csv", csv_bytes(rows), "csv",
                           columns=columns or {"code": "A", "name": "B", "rate": "C",
                                               "calltype": "D"})
    response = client.post(step("options", import_id), NEW_OPERATOR)
    assert response.status_code == 302 and response.url == step("result", import_id)
    return import_id


def test_rejected_rows_download_as_csv_with_row_and_reason(importer):
    # given
    import_id = imported(importer)
    # when
    response = importer.get(step("rejects", import_id))
    # then
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["row", "reason"], ["4", "empty rate"],
        ["5", "unknown call type 'satellite' (3 local, 4 long-distance, 5 international, 6 mobile)"]]


def test_the_upload_is_deleted_after_the_import_and_the_session_keeps_only_the_result(importer):
    # given
    import_id = to_options(importer, "../../etc/deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "rate": "C"})
    state = importer.session["tariff_imports"][import_id]
    saved = job_dir(import_id) / "deck.csv"
    assert state["file"] == str(saved) and saved.read_bytes() == csv_bytes(DECK)
    # when
    importer.post(step("options", import_id), NEW_OPERATOR)
    importer.get(step("result", import_id))
    # then the upload is gone, only the outcome is left, and the session forgets the path
    assert [p.name for p in job_dir(import_id).iterdir()] == ["outcome.json"]
    assert importer.session["tariff_imports"][import_id] == {"name": "deck.csv", "finished": True}
    # and the finished import cannot be run again through its steps
    assert importer.post(step("options", import_id), NEW_OPERATOR).url == step("result", import_id)
    assert PhoneCode.objects.count() == 6


def test_closing_an_import_removes_its_folder_and_session_state(importer):
    # given
    import_id = imported(importer)
    # when
    response = importer.post(step("discard", import_id))
    # then
    assert response.status_code == 302 and response.url == reverse("tariff_import")
    assert not job_dir(import_id).exists()
    assert import_id not in importer.session["tariff_imports"]
    assert importer.get(step("result", import_id)).status_code == 404


def test_result_page_queries_stay_bounded(importer, django_assert_max_num_queries):
    # given
    import_id = imported(importer)
    importer.get(step("result", import_id))
    # when / then: the result is read from the job's folder, not the database
    with django_assert_max_num_queries(4):
        assert importer.get(step("result", import_id)).status_code == 200


def test_update_on_gives_an_existing_tariff_the_new_rate_as_a_new_period(importer):
    # given a deck imported a week ago
    with time_machine.travel(datetime.datetime(2024, 5, 25, 12, tzinfo=datetime.UTC), tick=False):
        imported(importer, [["code", "name", "rate"], ["380", "Ukraine", "1.5"]],
                 columns={"code": "A", "name": "B", "rate": "C"})
    # when the same deck with a new rate is imported with "update" on
    with time_machine.travel(NOW, tick=False):
        import_id = to_options(importer, "deck.csv",
                               csv_bytes([["code", "name", "rate"], ["380", "Ukraine", "1.75"]]),
                               "csv", columns={"code": "A", "name": "B", "rate": "C"})
        response = importer.post(step("options", import_id), {
            "operator": "Kyivstar", "plan": "Standard", "update": "on", "round_to_minutes": "on",
            "date_order": "dmy"})
        page = importer.get(response.url)
    # then the old period ends the day before, the new one has the new rate
    assert result_counts(page)["updated"] == 1
    periods = [(t.valid_from, t.valid_to, t.prices.get().price_per_minute)
               for t in Tariff.objects.order_by("valid_from")]
    assert periods == [(datetime.date(2024, 5, 25), datetime.date(2024, 5, 31), Decimal("1.500000")),
                       (TODAY, None, Decimal("1.750000"))]


# Bad inputs -----------------------------------------------------------------------------

def test_no_file_is_an_error_next_to_the_file_field(importer):
    # when
    response = importer.post(reverse("tariff_import"), {"file_type": "csv"})
    # then
    assert response.status_code == 200
    assert response.context["form"].errors == {"file": ["This field is required."]}
    assert '<ul class="errorlist"' in response.content.decode()


@pytest.mark.parametrize(("name", "file_type"), [("deck.csv", "xlsx"), ("deck.pdf", "csv"),
                                                 ("deck", "csv")])
def test_a_file_of_another_type_than_chosen_is_refused(importer, name, file_type):
    # when
    response = upload(importer, name, csv_bytes(DECK), file_type)
    # then
    assert response.status_code == 200
    assert f"is not a .{file_type} file" in response.context["form"].errors["file"][0]
    assert not any(job_dir("0" * 32).parent.glob("*"))


def test_an_unknown_file_type_choice_is_an_error_next_to_it(importer):
    response = upload(importer, "deck.pdf", b"%PDF", "pdf")
    assert "file_type" in response.context["form"].errors


def test_a_file_over_the_size_limit_is_refused(importer, settings):
    # given
    settings.TARISCOPE_MAX_FILE_BYTES = 10
    # when
    response = upload(importer, "deck.csv", csv_bytes(DECK), "csv")
    # then
    assert "more than the limit of 10" in response.context["form"].errors["file"][0]


def test_an_unreadable_workbook_shows_the_readers_message_on_step_1(importer):
    # when
    response = upload(importer, "deck.xlsx", b"this is not a zip file", "xlsx")
    # then the reader's message is next to the file, and nothing is kept
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "deck.xlsx: not an Excel workbook (not a zip file)"]
    assert "tariff_imports" not in importer.session
    assert not any(job_dir("0" * 32).parent.glob("*"))


def test_a_mapping_without_the_code_column_is_an_error_next_to_it(importer):
    # given
    import_id = import_id_of(upload(importer, "deck.csv", csv_bytes(DECK), "csv"))
    importer.post(step("sheet", import_id), {"sheet": "deck"})
    # when
    response = importer.post(step("mapping", import_id), {
        "action": "next", "has_header": "on", "name": "B", "rate": "C"})
    # then
    assert response.status_code == 200
    assert response.context["form"].errors == {"code": ["Choose the column of the codes."]}


def test_a_mapping_without_the_rate_column_imports_only_as_codes_only(importer):
    # given a mapping with no rate column
    import_id = to_options(importer, "deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "name": "B"})
    # when
    response = importer.post(step("options", import_id), NEW_OPERATOR)
    # then the error is next to "codes only", and nothing is written
    assert response.status_code == 200
    assert response.context["form"].errors["codes_only"][0].startswith(
        "The mapping has no rate column")
    assert Operator.objects.count() == 0


def test_options_errors_are_next_to_their_fields(importer):
    # given an operator keeping its rates in USD
    OperatorFactory(name="Carrier", currency="USD")
    import_id = to_options(importer, "deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "rate": "C"})
    # when
    response = importer.post(step("options", import_id), {
        "operator": "Carrier", "currency": "EUR", "date_order": "dmy"})
    # then
    assert response.context["form"].errors == {
        "currency": ["Carrier keeps its rates in USD."],
        "new_plan": ["Choose a plan or type a new one's name."]}


def test_a_failed_import_leaves_the_database_unchanged_and_shows_the_error(importer):
    # given
    import_id = to_options(importer, "deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "rate": "C"})
    # when the import fails half-way: the database refuses the last code (a rule of the
    # test's own), after the first ones were written
    refuse_code("38067")
    response = importer.post(step("options", import_id), NEW_OPERATOR)
    # then the error is shown on step 4, nothing is written, and the upload is kept
    assert response.status_code == 200
    assert "The import failed and nothing was written" in response.content.decode()
    assert "the database refused the import" in response.context["error"]
    assert (Operator.objects.count(), Tariff.objects.count(), PhoneCode.objects.count()) == (0, 0, 0)
    assert (job_dir(import_id) / "deck.csv").exists()
    # and the form comes back with the choices made
    form = importer.get(step("options", import_id)).context["form"]
    assert (form["new_operator"].value(), form["currency"].value(), form["new_plan"].value()) == (
        "Kyivstar", "UAH", "Standard")
    # and once the database takes it, it can be tried again
    refuse_code_undo()
    response = importer.post(step("options", import_id), NEW_OPERATOR)
    assert response.url == step("result", import_id) and PhoneCode.objects.count() == 6


def test_unknown_call_types_are_rejected_rows_not_a_failure(importer):
    # given a deck whose every row has an unknown call type but one
    rows = [["code", "rate", "type"], ["380", "1", "local"], ["381", "1", "pigeon"],
            ["382", "1", "9"]]
    import_id = imported(importer, rows, columns={"code": "A", "rate": "B", "calltype": "C"})
    # when
    page = importer.get(step("result", import_id))
    # then
    assert result_counts(page)["rejected"] == 2
    rejected = page.context["result"]["rejected"]
    assert [r["row"] for r in rejected] == [3, 4]
    assert all(r["reason"].startswith("unknown call type") for r in rejected)
    assert list(PhoneCode.objects.values_list("code", flat=True)) == ["380"]


def test_a_deck_whose_every_row_is_rejected_writes_nothing(importer):
    # given
    import_id = imported(importer, [["code", "rate"], ["380", "x"]], columns={"code": "A", "rate": "B"})
    # when
    page = importer.get(step("result", import_id))
    # then
    assert "Nothing could be imported" in page.content.decode()
    assert Operator.objects.count() == 0 and TariffPlan.objects.count() == 0


# Step 5 with a broker: a task and a progress page ----------------------------------------

@pytest.fixture
def worker_importer(client, pipeline_worker, monkeypatch):
    """A logged-in importer, a broker and a Celery worker, and every file counted as large
    (imported by the worker behind the progress page)."""
    needs(not django_settings.CELERY_TASK_ALWAYS_EAGER,
          "needs Redis (package redis-server): set CELERY_BROKER_URL=redis://...")
    monkeypatch.setattr(views, "BACKGROUND_BYTES", 0)
    user = User.objects.create_user("tariffs", password="pw-tariffs-1")
    user.user_permissions.add(Permission.objects.get(codename="add_tariff"))
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_a_worker_imports_the_file_behind_the_progress_page(worker_importer):
    # given a broker and a Celery worker, and every file counted as large
    client = worker_importer
    import_id = to_options(client, "deck.csv", csv_bytes(DECK), "csv",
                           columns={"code": "A", "name": "B", "rate": "C", "calltype": "D"})
    # when the options are sent
    response = client.post(step("options", import_id), NEW_OPERATOR)
    # then the progress page polls the status, and the worker imports the deck
    assert response.url == step("progress", import_id)
    assert step("status", import_id) in client.get(response.url).content.decode()
    status = wait_for(lambda: (s := client.get(step("status", import_id)).json())["done"] and s)
    assert (status["state"], status["error"]) == ("SUCCESS", None)
    assert result_counts(client.get(step("result", import_id)))["codes-added"] == 5
    assert PhoneCode.objects.count() == 5
    assert not (job_dir(import_id) / "deck.csv").exists()


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_the_status_reports_the_rows_written_so_far(worker_importer):
    # given a broker, a Celery worker and a deck of 100,000 codes
    client = worker_importer
    deck = [["code", "name", "rate"]] + [[str(1_000_000 + i), f"Dest {i // 100}", "0.5"]
                                         for i in range(100_000)]
    import_id = to_options(client, "big.csv", csv_bytes(deck), "csv",
                           columns={"code": "A", "name": "B", "rate": "C"})
    # when it is imported, and its status polled meanwhile
    assert client.post(step("options", import_id), NEW_OPERATOR).url == step("progress", import_id)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(step("status", import_id)).json()
        if status["done"]:
            break
        if status["progress"] is not None:
            seen.append((status["progress"]["rows_done"], status["progress"]["rows"]))
        time.sleep(0.01)
    # then it said, while running, how many of the 100,000 rows were written, never less
    # than before, and it ended well
    assert status["state"] == "SUCCESS"
    assert seen, "no progress was reported while the import ran"
    assert all(total == 100_000 and 0 < done <= total for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert PhoneCode.objects.count() == 100_000


def test_a_csv_field_too_long_for_a_deck_is_reported_next_to_the_sheet(importer):
    # given a CSV deck whose third line holds a 1 MB field
    content = ("Code;Name;Rate\n380;Ukraine;1.5\n381;" + "x" * 1_000_000 + ";2\n").encode()
    import_id = import_id_of(upload(importer, "deck.csv", content, "csv"))
    # when its sheet is chosen (its rows are read there)
    response = importer.post(step("sheet", import_id), {"sheet": "deck"})
    # then the reader's message is next to the choice, not a server error
    assert response.status_code == 200
    (message,) = response.context["form"].errors["sheet"]
    assert "deck.csv: line 3: field larger than field limit" in message
