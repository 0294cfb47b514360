"""R11.3, R11.1: the reports pages: the list, a report with its filters, table, totals and
chart data, its downloads, the rights, the suggestions of the typed fields, the query
counts, and a long period run as a job behind a progress page."""
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from openpyxl import load_workbook
from pypdf import PdfReader

from billing.models import Call
from reports.models import JobState, ReportJob
from tariffs.choices import CallType
from tests.conftest import wait_for
from tests.reports.conftest import _call

JANUARY = "date_from=2024-01-01&date_to=2024-01-31"


def _user(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


@pytest.fixture
def operator(client, db):
    """May see calls (billing.view_call), not the accounts' charges and payments."""
    return _user(client, "reports-operator", "view_call")


@pytest.fixture
def accountant(client, db):
    return _user(client, "reports-accountant", "view_call", "view_charge", "view_payment")


def chart_of(html: str) -> dict:
    """The chart's data, as the page's json_script holds them for reports/chart.js."""
    found = re.search(r'<script id="report-chart-data" type="application/json">(.*?)</script>',
                      html, re.S)
    assert found, "no chart data on the page"
    return json.loads(found.group(1))


def table_rows(html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_list_groups_the_reports_the_user_may_run(db):
    # when an operator and an accountant open the list
    as_operator = _user(Client(), "op", "view_call").get("/reports/").content.decode()
    as_accountant = _user(Client(), "accountant", "view_call", "view_charge",
                          "view_payment").get("/reports/").content.decode()
    # then both see the sections and the reports over calls; only the accountant sees the
    # provider's charges and payments
    for html in (as_operator, as_accountant):
        assert "Cost and duration" in html and "Busiest hours" in html
        assert 'href="/reports/by_group/"' in html and 'href="/reports/top_destinations/"' in html
    assert 'href="/reports/charges_payments/"' not in as_operator
    assert 'href="/reports/charges_payments/"' in as_accountant


def test_reports_need_the_right_to_see_calls(client, db):
    # given no login, then a user without billing.view_call
    anonymous = client.get("/reports/by_day/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    _user(client, "nobody")
    # then every page is refused
    for url in ("/reports/", "/reports/by_day/", f"/reports/by_day/?{JANUARY}&format=xlsx",
                "/reports/lookup/groups?q=S"):
        assert client.get(url).status_code == 403, url


def test_charges_and_payments_need_the_accounts_rights(operator):
    assert operator.get("/reports/charges_payments/").status_code == 403
    assert operator.get("/reports/no_such_report/").status_code == 404


def test_a_report_page_has_the_table_totals_and_chart_data(operator, calls):
    # when the January report by destination is opened
    response = operator.get(f"/reports/by_destination/?{JANUARY}")
    html = response.content.decode()
    # then the table has a row per destination and currency, amounts to the minor unit
    assert response.status_code == 200
    assert table_rows(html) == [
        ["Kyiv", "3", "155", "1.75", "UAH"],
        ["Mobile", "2", "60", "1.50", "UAH"],
        ["Poland", "3", "945", "2.10", "USD"],
        ["Ukraine", "1", "90", "2.00", "UAH"],
        ["not priced", "1", "200", "0.00", "not priced"],
    ]
    # and the totals per currency
    totals = re.search(r'<ul class="totals">(.*?)</ul>', html, re.S).group(1)
    assert [" ".join(re.sub(r"<[^>]+>", "", li).split()) for li in re.findall(
        r"<li>(.*?)</li>", totals, re.S)] == [
        "not priced · Calls 1 · Talk time, s 200 · Cost 0.00",
        "UAH · Calls 6 · Talk time, s 305 · Cost 5.25",
        "USD · Calls 3 · Talk time, s 945 · Cost 2.10"]
    # and the chart's data (for Chart.js, served from the project's files)
    chart = chart_of(html)
    assert chart["labels"] == ["Kyiv", "Mobile", "Poland", "Ukraine", "not priced"]
    assert [(d["label"], d["axis"], d["data"]) for d in chart["datasets"]] == [
        ("Cost, UAH", "money", ["1.7500", "1.5000", "0.0000", "2.0000", "0.0000"]),
        ("Cost, USD", "money", ["0.0000", "0.0000", "2.1000", "0.0000", "0.0000"]),
        ("Calls", "count", [3, 2, 3, 1, 1]),
    ]
    assert "/static/vendor/chart.umd.min.js" in html and "/static/reports/chart.js" in html
    assert "cdn" not in html.lower()
    # and links to the same report as XLSX and PDF
    query = JANUARY.replace("&", "&amp;")
    assert f"?{query}&amp;format=xlsx" in html and f"?{query}&amp;format=pdf" in html


def test_the_group_tree_is_shown_with_its_levels(operator, calls):
    html = operator.get(f"/reports/by_group/?{JANUARY}").content.decode()
    assert '<td class="level-2">Sales / Inside / Key accounts</td>' in html
    assert chart_of(html)["labels"][:3] == ["Sales", "Sales / Inside", "Sales / Inside / Key accounts"]


def test_filters_typed_as_text_narrow_the_report(operator, calls):
    # when the report by subscriber is narrowed to a group typed as its suggestion, a
    # subscriber typed by name, and a device picked
    by_group = operator.get(f"/reports/by_subscriber/?{JANUARY}&group=Inside+%C2%B7+Kyiv")
    by_name = operator.get(f"/reports/by_subscriber/?{JANUARY}&subscriber=olena+koval")
    by_device = operator.get(f"/reports/by_subscriber/?{JANUARY}&device={calls.london.pk}")
    # then each has only the subscribers it names
    def names(response):
        return sorted({row[0] for row in table_rows(response.content.decode())})
    assert names(by_group) == ["Maria Shevchenko", "Petro Bondar"]
    assert names(by_name) == ["Olena Koval"]
    assert names(by_device) == ["Taras Melnyk"]
    # and the typed fields keep what was typed, with their suggestions' list
    html = by_group.content.decode()
    assert 'value="Inside · Kyiv"' in html and 'list="id_group-suggestions"' in html
    assert 'hx-get="/reports/lookup/groups"' in html


def test_wrong_filters_are_said_under_their_fields_and_nothing_is_counted(operator, calls):
    # when the period ends before it starts and the group does not exist
    response = operator.get("/reports/by_day/?date_from=2024-02-01&date_to=2024-01-01"
                            "&group=Nowhere&top=5")
    html = response.content.decode()
    # then each error is under its field, and no table or chart is shown
    assert response.status_code == 200
    assert re.search(r'id="id_date_to-errors">The period ends before it starts\.', html)
    assert re.search(r'id="id_group-errors">No group Nowhere\.', html)
    assert "<table" not in html and "report-chart-data" not in html
    # and an unknown format is a 404, not the page
    assert operator.get(f"/reports/by_day/?{JANUARY}&format=docx").status_code == 404


def test_the_page_opens_with_this_month(operator, site, time_machine):
    time_machine.move_to(datetime(2024, 5, 17, 12, tzinfo=UTC))
    html = operator.get("/reports/by_day/").content.decode()
    assert 'value="2024-05-01"' in html and 'value="2024-05-17"' in html
    assert 'name="top"' not in html
    top = operator.get("/reports/busiest_hours/").content.decode()
    assert re.search(r'name="top" value="10"', top)


def test_the_downloads_are_the_same_filtered_report(operator, calls):
    # when the filtered report is downloaded as XLSX, PDF and CSV
    query = f"/reports/by_subscriber/?{JANUARY}&group=Inside"
    xlsx = operator.get(query + "&format=xlsx")
    pdf = operator.get(query + "&format=pdf")
    csv = operator.get(query + "&format=csv")
    # then each is a file of the narrowed report
    assert xlsx["Content-Disposition"] == \
        'attachment; filename="by_subscriber_20240101-20240131.xlsx"'
    sheet = load_workbook(io.BytesIO(xlsx.content))["Report"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert ["Petro Bondar", 1, 90, 2, "UAH"] in values
    assert ["Group (with the groups below it): Inside · Kyiv", None, None, None, None] in values
    text = " ".join(PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text().split())
    assert pdf["Content-Type"] == "application/pdf" and "Total 1 600 1.25 USD" in text
    assert csv.content.decode().splitlines()[1] == "Maria Shevchenko,1,600,1.2500,USD"


def test_the_charges_and_payments_page(accountant, calls):
    response = accountant.get(f"/reports/charges_payments/?{JANUARY}")
    html = response.content.decode()
    assert response.status_code == 200
    # no filters of calls on it
    assert 'name="device"' not in html and 'name="call_type"' not in html
    assert "No calls match these filters." in html


def test_the_suggestions_of_the_group_and_subscriber_fields(operator, calls):
    # when a part of a group's name, of a subscriber's name and of a number are typed
    groups = operator.get("/reports/lookup/groups", {"group": "ins"}).content.decode()
    people = operator.get("/reports/lookup/subscribers", {"subscriber": "olen"}).content.decode()
    by_number = operator.get("/reports/lookup/subscribers", {"q": "104"}).content.decode()
    # then the matches are offered in the form the fields accept back
    assert groups.strip() == '<option value="Inside · Kyiv"></option>'
    assert f'value="Olena Koval · {calls.site.colleague.account_number}"' in people
    assert "Maria Shevchenko" in by_number and "Olena" not in by_number


def _many_calls(site, n: int, first: int = 1000):
    start = datetime(2024, 1, 5, 8, tzinfo=UTC)
    Call.objects.bulk_create([
        _call(first + i, site.device, start + timedelta(minutes=i), 60, CallType.LOCAL,
              subscriber=site.subscriber if i % 2 else site.colleague, tariff=site.kyiv.tariff,
              operator=site.operator, cost="0.5000", currency="UAH")
        for i in range(n)])


@pytest.mark.parametrize("name", ["by_subscriber", "by_group", "by_day", "busiest_hours",
                                  "top_destinations"])
def test_a_report_page_makes_the_same_queries_whatever_the_number_of_calls(
        operator, site, name, django_assert_num_queries):
    # given a few calls, then many more
    _many_calls(site, 5)
    url = f"/reports/{name}/?{JANUARY}&group=Sales"
    operator.get(url)  # the session and the permission caches are warm from here on
    with django_assert_num_queries(QUERIES[name]) as few:
        assert operator.get(url).status_code == 200
    _many_calls(site, 200, first=5000)
    # then the page is made with the same number of queries
    with django_assert_num_queries(QUERIES[name]) as many:
        html = operator.get(url).content.decode()
    assert len(few.captured_queries) == len(many.captured_queries)
    assert "205" in html  # the calls of both lots are counted


# Session, user, permissions (2), the group typed, the node and device choices of the
# form; then the report's own: the devices' zones (the cut of days), the group subtree,
# the rows (by_group: and the groups; by_day and busiest_hours: and the zones of the
# buckets); the totals are added up from the rows where these share out the calls, else
# asked for (top-N, busiest hours, which also asks for the calls at once).
QUERIES = {"by_subscriber": 10, "by_group": 11, "by_day": 11, "busiest_hours": 13,
           "top_destinations": 11}


@pytest.mark.django_db(transaction=True)
def test_a_long_period_runs_as_a_job_behind_a_progress_page(
        operator, calls, settings, pipeline_worker, client):
    # given reports longer than 20 days computed by a worker (a Celery worker over the
    # broker when there is one, else in-process after the request's commit)
    settings.REPORTS_SYNC_DAYS = 20
    # when January by day is asked for
    response = operator.get(f"/reports/by_day/?{JANUARY}&device={calls.london.pk}")
    # then the page sends the operator to the job, which gets done
    job = ReportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/jobs/{job.pk}/"
    job = wait_for(lambda: ReportJob.objects.filter(pk=job.pk, state=JobState.DONE).first())
    assert (job.name, job.state, job.params) == ("by_day", JobState.DONE, {
        "date_from": "2024-01-01", "date_to": "2024-01-31", "device": str(calls.london.pk)})
    status = operator.get(f"/reports/jobs/{job.pk}/status").json()
    assert (status["state"], status["done"], status["next"]) == ("done", True,
                                                                f"/reports/jobs/{job.pk}/")
    # and its page shows the result, with its chart, and downloads it
    html = operator.get(f"/reports/jobs/{job.pk}/").content.decode()
    assert table_rows(html) == [["2024-01-10", "1", "45", "0.10", "USD"]]
    assert chart_of(html)["labels"] == ["2024-01-10"]
    xlsx = operator.get(f"/reports/jobs/{job.pk}/?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content))["Report"]
    assert [c.value for c in sheet[sheet.max_row]] == ["Total", 1, 45, 0.1, "USD"]
    # and another user does not see it
    _user(client, "someone-else", "view_call")
    assert client.get(f"/reports/jobs/{job.pk}/").status_code == 404


def test_a_job_waiting_for_a_worker_shows_its_progress(operator, calls, settings):
    # given a job not run yet (a broker's worker has not taken it)
    job = ReportJob.objects.create(name="by_day", params={"date_from": "2024-01-01",
                                                          "date_to": "2024-01-31"},
                                   user=User.objects.get(username="reports-operator"))
    # when its page is opened, then it shows the progress and polls the status
    html = operator.get(f"/reports/jobs/{job.pk}/").content.decode()
    assert "<progress" in html and "waiting for a worker" in html
    assert f'data-url="/reports/jobs/{job.pk}/status"' in html
    assert operator.get(f"/reports/jobs/{job.pk}/?format=xlsx").status_code == 404
    # and when the worker has run it, the result is there
    from reports.tasks import report_run_job

    assert report_run_job(job.pk) == {"job": job.pk, "state": "done"}
    assert "<progress" not in operator.get(f"/reports/jobs/{job.pk}/").content.decode()


def test_a_long_report_asked_again_while_it_waits_is_not_started_twice(operator, calls, settings):
    # given reports longer than 20 days go to a worker, which has not taken the first yet
    settings.REPORTS_SYNC_DAYS = 20
    first = operator.get(f"/reports/by_group/?{JANUARY}")
    # when the page is reloaded
    again = operator.get(f"/reports/by_group/?{JANUARY}")
    # then both lead to the one job
    assert first["Location"] == again["Location"]
    assert ReportJob.objects.get().state == JobState.PENDING


def test_subscribers_link_to_their_page_for_those_who_may_see_it(operator, calls, client):
    # given one operator who may see subscribers and one who may not
    html = operator.get(f"/reports/by_subscriber/?{JANUARY}").content.decode()
    both = _user(Client(), "both", "view_call", "view_subscriber")
    linked = both.get(f"/reports/by_subscriber/?{JANUARY}").content.decode()
    # then only the first sees the names as links to the subscribers' pages
    link = f'<a href="/subscribers/{calls.petro.pk}/">Petro Bondar</a>'
    assert link in linked and link not in html and "<td>Petro Bondar</td>" in html


def test_a_job_whose_filters_no_longer_hold_fails_with_the_reason(operator, calls):
    # given a job for a group that has been removed since it was asked for
    job = ReportJob.objects.create(name="by_group", params={
        "date_from": "2024-01-01", "date_to": "2024-01-31", "group": "Gone"},
        user=User.objects.get(username="reports-operator"))
    # when the worker runs it
    from reports.jobs import report_job_run

    report_job_run(job_id=job.pk)
    # then it failed, and its page says why
    job.refresh_from_db()
    assert (job.state, job.result) == (JobState.FAILED, None)
    html = operator.get(f"/reports/jobs/{job.pk}/").content.decode()
    assert "The report failed:" in html and "No group Gone." in html
    assert operator.get(f"/reports/jobs/{job.pk}/status").json()["done"] is True
