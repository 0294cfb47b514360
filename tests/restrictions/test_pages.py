"""R8, R11.1: the operator's Restrictions pages, rendered for real: limits made, edited and
removed through their form (and refused with the reason on the field), the month's usage
as a bar in the target's zone, closing and reopening by hand with the history and the PBX
changes they plan, authorization codes shown masked, the suggestions of the subscriber
field, the rights (a viewer sees no buttons and every change of his is refused) and no
connector's credentials on any page. No PBX: a change that reaches one stays pending."""
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from billing.models import PhoneNumber, Subscriber
from restrictions.models import (
    AuthCode,
    Cause,
    ClassChange,
    Closure,
    ControlAction,
    Limit,
    LimitMonth,
    PbxChange,
    PbxControl,
)
from restrictions.services import closure_make
from tests.factories import PhoneNumberFactory, SubscriberFactory
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

# Mid-June 2024 in Kyiv: the calls of cdr_line() (17 June) are this month's.
JUNE = datetime(2024, 6, 20, 9, 0, tzinfo=UTC)
OPERATOR_RIGHTS = ("view_closure", "add_closure", "change_closure", "add_limit", "change_limit",
                   "delete_limit", "add_authcode", "change_authcode", "delete_authcode")
# What the connector of the controlled PBX holds that no page may show.
SECRETS = ("s3cret-of-the-client", "pw-of-the-v18-admin", "pw-in-the-url")


def _user(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="restrictions"))
    client.force_login(user)
    return client


@pytest.fixture
def operator(client, db):
    """A user with every right of the Restrictions pages."""
    return _user(client, "olena", *OPERATOR_RIGHTS)


@pytest.fixture
def viewer(client, db):
    """A user who may look, and change nothing."""
    return _user(client, "viewer", "view_closure")


@pytest.fixture
def june():
    with time_machine.travel(JUNE, tick=False):
        yield


@pytest.fixture
def controlled(site):
    """The site's 3CX under control (a connector that reaches nothing: its changes stay
    pending), with an error that quotes its secret and a sync behind it."""
    return PbxControl.objects.create(
        device=site.device,
        connector={"type": "3cx-v20", "url": "http://admin:pw-in-the-url@127.0.0.1:9/xapi",
                   "client_id": "tariscope", "client_secret": "s3cret-of-the-client",
                   "password": "pw-of-the-v18-admin", "close_by": "group",
                   "closed_group": "No outbound"},
        last_error="401 Unauthorized: client_secret=s3cret-of-the-client refused",
        last_error_at=JUNE, last_contact_at=JUNE, last_poll_at=JUNE, last_sync_at=JUNE,
        last_sync={"created": 2, "updated": 1, "ended": 0, "unchanged": 40})


def kyiv_call(key: str, minutes: int, *, extension: str = "101") -> str:
    """A call of `minutes` to Kyiv (0.50 a minute) on 17 June 2024."""
    return cdr_line(historyid=key, from_no=f"Ext.{extension}", from_dn=extension,
                    duration=f"00:{minutes:02d}:00", time_end="2024/06/17 11:00:00")


def row_of(html: str, text: str) -> str:
    """The table row of a page that holds `text` (the test fails when there is none)."""
    rows = [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if text in row]
    assert len(rows) == 1, f"{len(rows)} rows hold {text!r}"
    return rows[0]


def field_errors(html: str, field: str) -> str:
    """The error list Django renders under a form's field."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


# -- limits

def test_a_limit_made_on_the_page_is_stored_with_its_fields(operator, site):
    # given the site (Ivan Petrenko, account number of his id, in Sales of node Kyiv)
    # when a money limit of Ivan's and a seconds limit of Sales are sent, as suggested
    money = operator.post("/restrictions/limits/new", {
        "subscriber": f"Ivan Petrenko · {site.subscriber.account_number}", "money": "500.00",
        "currency": "uah", "call_types": ["5", "6"], "warn_percent": "80", "enabled": "on"})
    seconds = operator.post("/restrictions/limits/new", {
        "group": "Sales · Kyiv", "seconds": "3600", "enabled": "on"})
    # then both exist with what was sent, and the list shows them
    assert (money.status_code, seconds.status_code) == (302, 302)
    by_money, by_seconds = Limit.objects.order_by("pk")
    assert (by_money.subscriber, by_money.group, by_money.money, by_money.currency,
            by_money.seconds, by_money.call_types, by_money.warn_percent, by_money.enabled) == (
        site.subscriber, None, Decimal("500.00"), "UAH", None, [5, 6], 80, True)
    assert (by_seconds.subscriber, by_seconds.group, by_seconds.money, by_seconds.currency,
            by_seconds.seconds, by_seconds.call_types, by_seconds.warn_percent) == (
        None, site.sales, None, "", 3600, [], None)
    html = operator.get("/restrictions/limits/").content.decode()
    assert "international, mobile" in row_of(html, "500.00 UAH")
    assert "group Sales" in row_of(html, "3600 s")


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"subscriber": "Ivan Petrenko", "money": "5.00"}, "currency",
     "A limit in money needs its currency."),
    ({"subscriber": "Ivan Petrenko", "money": "5.00", "currency": "UAH", "warn_percent": "150"},
     "warn_percent", "A percentage from 1 to 99."),
    ({"money": "5.00", "currency": "UAH"}, "subscriber",
     "A limit is of a subscriber or of a group: name one."),
    ({"subscriber": "Ivan Petrenko", "group": "Sales", "seconds": "60"}, "group",
     "A limit is of a subscriber or of a group, not both."),
    ({"subscriber": "Ivan Petrenko", "money": "5.00", "currency": "UAH", "seconds": "60"},
     "seconds", "A limit is in money or in seconds, not both."),
    ({"subscriber": "Ivan Petrenko"}, "money", "A limit needs an amount"),
    ({"subscriber": "Nobody Known", "seconds": "60"}, "subscriber", "No subscriber “Nobody Known”"),
])
def test_the_limit_form_says_what_is_wrong_on_the_field_and_stores_nothing(
        operator, site, form, field, message):
    # given the site
    # when a limit with this mistake is sent
    response = operator.post("/restrictions/limits/new", {"enabled": "on", **form})
    # then the form comes back with the reason under the field, and no limit is stored
    html = response.content.decode()
    assert response.status_code == 200
    assert message in field_errors(html, field), html
    assert not Limit.objects.exists()


def test_a_limit_is_edited_and_removed_after_a_confirmation(operator, site):
    # given a limit of 5.00 UAH of Ivan's
    limit = Limit.objects.create(subscriber=site.subscriber, money=Decimal("5.00"),
                                 currency="UAH")
    # when its edit page is opened and it is raised to 7.50 with a warning at 90 %
    page = operator.get(f"/restrictions/limits/{limit.pk}/edit").content.decode()
    operator.post(f"/restrictions/limits/{limit.pk}/edit", {
        "subscriber": "Ivan Petrenko", "money": "7.50", "currency": "UAH",
        "warn_percent": "90", "enabled": "on"})
    # then the form showed it as it was, and it is saved as sent
    assert f'value="Ivan Petrenko · {site.subscriber.account_number}"' in page
    assert 'value="5.00"' in page
    limit.refresh_from_db()
    assert (limit.money, limit.warn_percent) == (Decimal("7.50"), 90)
    # and when it is removed, a confirmation comes first
    confirm = operator.get(f"/restrictions/limits/{limit.pk}/delete")
    assert "Remove the limit of" in confirm.content.decode() and Limit.objects.exists()
    operator.post(f"/restrictions/limits/{limit.pk}/delete")
    assert not Limit.objects.exists()


def test_a_limit_set_below_this_months_usage_closes_once_saved(
        operator, site, june, settings, django_capture_on_commit_callbacks):
    # given Ivan's 4.00 UAH of calls this month (the check runs where the page saved)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    site.ingest(kyiv_call("a", 8))
    # when a limit of 3.00 UAH is set on the page, and committed
    with django_capture_on_commit_callbacks(execute=True):
        operator.post("/restrictions/limits/new", {
            "subscriber": "Ivan Petrenko", "money": "3.00", "currency": "UAH",
            "enabled": "on"})
    # then he is closed by it
    closure = Closure.objects.get()
    assert (closure.subscriber, closure.cause, closure.limit) == (
        site.subscriber, Cause.LIMIT, Limit.objects.get())


def test_a_reached_limit_raised_on_the_page_closes_again_at_its_new_amount(
        operator, site, june, settings, django_capture_on_commit_callbacks):
    # given Ivan closed by his limit of 3.00 UAH at 4.00, and reopened by the operator
    settings.CELERY_TASK_ALWAYS_EAGER = True
    site.ingest(kyiv_call("a", 8))
    with django_capture_on_commit_callbacks(execute=True):
        operator.post("/restrictions/limits/new", {
            "subscriber": "Ivan Petrenko", "money": "3.00", "currency": "UAH",
            "enabled": "on"})
    limit = Limit.objects.get()
    operator.post(f"/restrictions/closures/{Closure.objects.get().pk}/reopen",
                  {"reason": "approved by the director"})
    # when the limit is raised to 5.00, then 2 minutes more (1.00 UAH) are collected
    with django_capture_on_commit_callbacks(execute=True):
        operator.post(f"/restrictions/limits/{limit.pk}/edit", {
            "subscriber": "Ivan Petrenko", "money": "5.00", "currency": "UAH",
            "enabled": "on"})
    after_raise = (LimitMonth.objects.get(limit=limit).reached_at,
                   Closure.objects.filter(reopened_at__isnull=True).count())
    with django_capture_on_commit_callbacks(execute=True):
        site.ingest(kyiv_call("b", 2), name="more.csv")
    # then the raise let him call, and reaching 5.00 closed him again
    assert after_raise == (None, 0)
    assert Closure.objects.filter(reopened_at__isnull=True).get().reason.startswith(
        "monthly limit reached: 5.00 of 5.00 UAH (100 %)")


def test_the_usage_bar_shows_this_months_share_in_the_targets_zone(viewer, site):
    # given Ivan's 8 minutes to Kyiv on 17 June (4.00 UAH), and limits of his and of Sales
    with time_machine.travel(JUNE, tick=False):
        site.ingest(kyiv_call("a", 8))
    Limit.objects.create(subscriber=site.subscriber, money=Decimal("5.00"), currency="UAH",
                         warn_percent=80)
    Limit.objects.create(group=site.sales, money=Decimal("16.00"), currency="UAH")
    Limit.objects.create(subscriber=site.subscriber, seconds=960)
    Limit.objects.create(subscriber=site.subscriber, seconds=600, call_types=[5])
    # when the limits are listed in June, and at 00:30 on 1 July in Kyiv (still June in UTC,
    # the server's zone)
    with time_machine.travel(JUNE, tick=False):
        june = viewer.get("/restrictions/limits/").content.decode()
    with time_machine.travel(datetime(2024, 6, 30, 21, 30, tzinfo=UTC), tick=False):
        july = viewer.get("/restrictions/limits/").content.decode()
    # then June's bars are the shares of June's usage, and July's start empty
    ivan = row_of(june, "5.00 UAH")
    assert 'value="80"' in ivan and "80 %" in ivan and "4.00 of 5.00 UAH" in ivan
    assert 'value="25"' in row_of(june, "16.00 UAH")
    assert "480 of 960 seconds (50 %)" in row_of(june, "960 s")
    assert 'value="0"' in row_of(june, "600 s")  # international calls only: none
    assert 'value="0"' in row_of(july, "5.00 UAH") and "2024-07" in row_of(july, "5.00 UAH")


def test_the_limits_page_reads_a_bounded_number_of_rows(viewer, site, django_assert_max_num_queries):
    # given 10 limits of 10 subscribers
    for n in range(10):
        subscriber = SubscriberFactory(full_name=f"Worker {n}", group=site.sales)
        PhoneNumberFactory(subscriber=subscriber, device=site.device, dn=f"2{n:02d}")
        Limit.objects.create(subscriber=subscriber, money=Decimal("5.00"), currency="UAH")
    # when the list is shown, then each limit costs its zone and its usage, no more
    with django_assert_max_num_queries(8 + 2 * 10):
        response = viewer.get("/restrictions/limits/")
    assert len(re.findall(r"<td class=\"num\">5.00 UAH</td>", response.content.decode())) == 10


def test_the_overview_and_the_history_read_as_many_rows_for_many_closures(
        viewer, site, controlled, django_assert_max_num_queries):
    # given 12 subscribers on the controlled 3CX, each closed (a pending change each)
    for n in range(12):
        subscriber = SubscriberFactory(full_name=f"Worker {n}", group=site.sales)
        PhoneNumberFactory(subscriber=subscriber, device=site.device, dn=f"2{n:02d}")
        closure_make(subscriber=subscriber, cause=Cause.OPERATOR, reason=f"audit {n}", by="olena")
    # when the overview and the history are shown, then their queries do not grow with them
    with django_assert_max_num_queries(10):
        overview = viewer.get("/restrictions/").content.decode()
    with django_assert_max_num_queries(7):
        history = viewer.get("/restrictions/history/").content.decode()
    assert overview.count("audit ") == 12 and history.count("close 2") == 12


# -- closing and reopening by hand

def test_closing_and_reopening_by_hand_keeps_the_history_and_plans_the_pbx_changes(
        operator, site, controlled):
    # given the site's 3CX under control
    # when Ivan is closed on the page
    response = operator.post("/restrictions/close", {
        "subscriber": f"Ivan Petrenko · {site.subscriber.account_number}",
        "reason": "left for a competitor"}, follow=True)
    # then he is closed by the operator, and 101 waits to be closed on the PBX
    closure = Closure.objects.get()
    assert (closure.subscriber, closure.cause, closure.closed_by, closure.reason) == (
        site.subscriber, Cause.OPERATOR, "olena", "left for a competitor")
    assert list(ClassChange.objects.values_list("new_class", "by", "cause")) == [
        ("closed", "olena", "operator")]
    close = PbxChange.objects.get()
    assert (close.extension, close.action, close.status, close.closure) == (
        "101", "close", "pending", closure)
    html = response.content.decode()
    assert "Ivan Petrenko closed: 1 extension(s) to close on the PBX." in html
    assert "left for a competitor" in row_of(html, "Reopen")
    assert "KyivPBX" in row_of(html, "<td>101</td>")
    # and when the PBX has made it, and he is reopened without a reason, then with one
    PbxChange.objects.filter(pk=close.pk).update(
        status="done", attempts=1, answer="moved to group No outbound",
        previous_state={"groups": ["DEFAULT"]})
    no_reason = operator.post(f"/restrictions/closures/{closure.pk}/reopen", {"reason": ""})
    assert "Say why it is reopened." in no_reason.content.decode()
    assert Closure.objects.get().is_open
    operator.post(f"/restrictions/closures/{closure.pk}/reopen", {"reason": "came back"})
    # then he is open again, 101 waits to be reopened, and the history says it all
    closure.refresh_from_db()
    assert (closure.is_open, closure.reopened_by, closure.reopen_reason) == (
        False, "olena", "came back")
    assert list(ClassChange.objects.order_by("pk").values_list("new_class", "by")) == [
        ("closed", "olena"), ("open", "olena")]
    assert list(PbxChange.objects.order_by("pk").values_list("action", "status")) == [
        ("close", "done"), ("reopen", "pending")]
    history = operator.get("/restrictions/history/").content.decode()
    assert "close 101 on KyivPBX" in row_of(history, "left for a competitor")
    assert "done</span> — moved to group No outbound" in row_of(history, "left for a competitor")
    assert "reopen 101 on KyivPBX" in row_of(history, "came back")
    assert "pending" in row_of(history, "came back")


def test_a_group_is_closed_by_hand_with_its_members_and_not_twice(operator, site, controlled,
                                                                 second_device):
    # given Sales (101 and 102 on the controlled 3CX), and Taras on a PBX without a connector
    taras = SubscriberFactory(full_name="Taras Shevchuk", group=None)
    PhoneNumberFactory(subscriber=taras, device=second_device, dn="301")
    # when Sales is closed, then closed again, and Taras is closed
    operator.post("/restrictions/close", {"group": "Sales · Kyiv", "reason": "audit"})
    again = operator.post("/restrictions/close", {"group": "Sales", "reason": "audit"})
    response = operator.post("/restrictions/close", {"subscriber": "Taras Shevchuk",
                                                     "reason": "audit"}, follow=True)
    # then Sales' extensions wait to be closed, the second closure is refused with its
    # reason, and Taras is closed with no PBX change
    assert sorted(PbxChange.objects.values_list("extension", flat=True)) == ["101", "102"]
    assert "Sales is closed already" in again.content.decode()
    assert list(Closure.objects.order_by("pk").values_list("group__name", "subscriber__full_name")
                ) == [("Sales", None), (None, "Taras Shevchuk")]
    assert "no extension of it is on a PBX the system controls" in response.content.decode()
    assert ClassChange.objects.count() == 2


def test_the_close_form_names_what_is_missing(operator, site):
    # when a closure without a target, and one without a reason, are sent
    nobody = operator.post("/restrictions/close", {"reason": "audit"}).content.decode()
    no_reason = operator.post("/restrictions/close", {"subscriber": "Ivan Petrenko"})
    # then each says what is missing, and no one is closed
    assert "Close a subscriber or a group: name one." in field_errors(nobody, "subscriber")
    assert "This field is required." in field_errors(no_reason.content.decode(), "reason")
    assert not Closure.objects.exists()


def test_history_and_actions_are_filtered(viewer, site, second_device):
    # given a closure by an operator and one by a script, and actions on two devices
    closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="by hand", by="olena")
    closure_make(subscriber=site.colleague, cause=Cause.SCRIPT, reason="fraud", by="fraud.py")
    ControlAction.objects.create(device=site.device, pbx_call_id="c1", rule="max_call_seconds",
                                 reason="longer than 3600 s", dropped=True)
    ControlAction.objects.create(device=second_device, pbx_call_id="c2", rule="auth_code",
                                 reason="no valid code")
    # when the history and the actions are filtered
    def listed(url, *texts):
        html = viewer.get(url).content.decode()
        return [text for text in texts if text in html]
    # then each filter keeps what it names
    assert listed("/restrictions/history/", "by hand", "fraud") == ["by hand", "fraud"]
    assert listed("/restrictions/history/?q=koval", "by hand", "fraud") == ["fraud"]
    assert listed("/restrictions/history/?cause=operator", "by hand", "fraud") == ["by hand"]
    assert listed(f"/restrictions/actions/?device={second_device.pk}", "longer than 3600 s",
                  "no valid code") == ["no valid code"]
    assert listed("/restrictions/actions/?rule=max_call_seconds", "longer than 3600 s",
                  "no valid code") == ["longer than 3600 s"]
    # and the overview shows the latest actions
    assert listed("/restrictions/", "longer than 3600 s", "no valid code") == [
        "longer than 3600 s", "no valid code"]


# -- authorization codes

def test_authorization_codes_are_kept_masked_and_edited(operator, site):
    # when a code of Ivan's is made on the page
    operator.post("/restrictions/codes/new", {
        "code": "482916", "subscriber": "Ivan Petrenko", "description": "desk phone",
        "enabled": "on"})
    code = AuthCode.objects.get()
    # then it is stored, and listed only by its last two digits
    assert (code.code, code.subscriber, code.enabled) == ("482916", site.subscriber, True)
    listed = operator.get("/restrictions/codes/").content.decode()
    assert "••••16" in row_of(listed, "desk phone") and "482916" not in listed
    # and edited without the code, it keeps it; the edit page never shows it
    edit = operator.get(f"/restrictions/codes/{code.pk}/edit").content.decode()
    operator.post(f"/restrictions/codes/{code.pk}/edit", {
        "code": "", "subscriber": "Olena Koval", "description": "moved"})
    code.refresh_from_db()
    assert "482916" not in edit
    assert (code.code, code.subscriber, code.enabled, code.description) == (
        "482916", site.colleague, False, "moved")
    # and a code in use, or not digits, is refused with the reason
    taken = operator.post("/restrictions/codes/new", {"code": "482916",
                                                      "subscriber": "Ivan Petrenko"})
    letters = operator.post("/restrictions/codes/new", {"code": "12ab",
                                                        "subscriber": "Ivan Petrenko"})
    assert "This code is in use already" in field_errors(taken.content.decode(), "code")
    assert "digits only" in field_errors(letters.content.decode(), "code")
    assert AuthCode.objects.count() == 1
    # and removed after a confirmation
    assert "Remove code ••••16" in operator.get(
        f"/restrictions/codes/{code.pk}/delete").content.decode()
    operator.post(f"/restrictions/codes/{code.pk}/delete")
    assert not AuthCode.objects.exists()


# -- suggestions

def test_the_lookup_suggests_the_matching_subscribers_only(viewer, site):
    # given Ivan Petrenko (101) and Olena Koval (102) of Sales, with accounts that hold
    # neither number
    Subscriber.objects.filter(pk=site.subscriber.pk).update(account_number="IP-7")
    Subscriber.objects.filter(pk=site.colleague.pk).update(account_number="OK-8")
    # when the subscriber field asks for "petr", for the number 102, and for nothing
    by_name = viewer.get("/restrictions/lookup/subscribers?q=petr").content.decode()
    by_number = viewer.get("/restrictions/lookup/subscribers?q=102").content.decode()
    empty = viewer.get("/restrictions/lookup/subscribers?q=").content.decode()
    groups = viewer.get("/restrictions/lookup/groups?q=sal").content.decode()
    # then each answer holds the matches only, as the field accepts them back
    assert 'value="Ivan Petrenko · IP-7"' in by_name and "Olena" not in by_name
    assert 'value="Olena Koval · OK-8"' in by_number
    assert "Ivan" not in by_number
    assert "<option" not in empty
    assert 'value="Sales · Kyiv"' in groups


def test_the_subscriber_field_is_a_search_not_a_list_of_every_row(operator, site):
    # given the limit form
    page = operator.get("/restrictions/limits/new").content.decode()
    html = page[page.index("<main"):]  # the header has the language's drop-down
    # then its subscriber and group are text fields with suggestions, not drop-downs
    assert 'data-lookup="/restrictions/lookup/subscribers"' in html
    assert 'data-lookup="/restrictions/lookup/groups"' in html
    assert "<select" not in html and "Olena Koval" not in html


# -- rights and secrets

def test_a_viewer_sees_no_buttons_and_every_change_of_his_is_refused(viewer, site):
    # given a closure, a limit and a code
    closure = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="audit",
                           by="olena")
    limit = Limit.objects.create(subscriber=site.subscriber, money=Decimal("5.00"),
                                 currency="UAH")
    code = AuthCode.objects.create(code="4829", subscriber=site.subscriber)
    # when a viewer opens the pages
    overview = viewer.get("/restrictions/").content.decode()
    limits = viewer.get("/restrictions/limits/").content.decode()
    codes = viewer.get("/restrictions/codes/").content.decode()
    # then he sees what there is, without a button to change it
    assert "audit" in overview and "Reopen" not in overview and "Close a subscriber" not in overview
    assert "5.00 UAH" in limits and "New limit" not in limits and "/edit" not in limits
    assert "••29" in codes and "New code" not in codes and "/edit" not in codes
    # and every change he sends is refused, and nothing changes
    refused = [viewer.post(url, data).status_code for url, data in [
        ("/restrictions/close", {"subscriber": "Olena Koval", "reason": "x"}),
        (f"/restrictions/closures/{closure.pk}/reopen", {"reason": "x"}),
        ("/restrictions/limits/new", {"subscriber": "Olena Koval", "seconds": "60"}),
        (f"/restrictions/limits/{limit.pk}/edit", {"subscriber": "Olena Koval", "seconds": "60"}),
        (f"/restrictions/limits/{limit.pk}/delete", {}),
        ("/restrictions/codes/new", {"code": "1111", "subscriber": "Olena Koval"}),
        (f"/restrictions/codes/{code.pk}/edit", {"code": "2222", "subscriber": "Olena Koval"}),
        (f"/restrictions/codes/{code.pk}/delete", {}),
    ]]
    assert refused == [403] * 8
    assert (Closure.objects.get().is_open, Limit.objects.get().seconds,
            AuthCode.objects.get().code) == (True, None, "4829")


def test_without_the_view_right_or_a_login_the_pages_are_closed(client, site):
    # given a user without any right of the restrictions, and no one logged in
    anonymous = [client.get(url).status_code for url in ("/restrictions/", "/restrictions/limits/")]
    _user(client, "nobody")
    # when they open the pages, then they are sent to log in, or refused
    assert anonymous == [302, 302]
    assert [client.get(url).status_code for url in (
        "/restrictions/", "/restrictions/limits/", "/restrictions/history/",
        "/restrictions/actions/", "/restrictions/codes/",
        "/restrictions/lookup/subscribers?q=ivan")] == [403] * 6


def test_no_page_shows_a_connectors_credentials(operator, site, controlled):
    # given the controlled 3CX, a closure with its pending change, a limit and a code
    closure = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="audit",
                           by="olena")
    limit = Limit.objects.create(subscriber=site.subscriber, seconds=600)
    code = AuthCode.objects.create(code="4829", subscriber=site.subscriber)
    # when every page of the area is opened
    pages = {url: operator.get(url) for url in (
        "/restrictions/", "/restrictions/limits/", "/restrictions/limits/new",
        f"/restrictions/limits/{limit.pk}/edit", f"/restrictions/limits/{limit.pk}/delete",
        "/restrictions/close", f"/restrictions/closures/{closure.pk}/reopen",
        "/restrictions/history/", "/restrictions/actions/", "/restrictions/codes/",
        "/restrictions/codes/new", f"/restrictions/codes/{code.pk}/edit",
        "/restrictions/lookup/subscribers?q=a")}
    # then none shows a secret, and the overview shows the connector's state without them
    assert {url: r.status_code for url, r in pages.items()} == dict.fromkeys(pages, 200)
    for url, response in pages.items():
        html = response.content.decode()
        assert not [secret for secret in SECRETS if secret in html], url
    state = row_of(pages["/restrictions/"].content.decode(), "3cx-v20")
    assert "<code>http://127.0.0.1:9/xapi</code>" in state
    assert "401 Unauthorized: client_secret=••• refused" in state
    assert "created 2, ended 0, unchanged 40, updated 1" in state


def _billing_rights(client):
    user = User.objects.get(username="olena")
    for codename in ("add_subscriber", "change_subscriber", "add_phonenumber",
                     "change_phonenumber"):
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="billing"))
    return client


def test_sync_extensions_now_creates_the_pbxs_new_extensions_as_subscribers(
        operator, site, fake3cx, v20_config):
    # given the site's 3CX under control (the fake's 100-103; the site holds 101 and 102)
    PbxControl.objects.create(device=site.device, connector=v20_config)
    _billing_rights(operator)
    # when the button is pressed
    assert "Sync extensions" in operator.get("/restrictions/").content.decode()
    response = operator.post(f"/restrictions/pbx/{site.device.pk}/sync", follow=True)
    # then 100 and 103 are subscribers with their numbers, and the page says what was done
    page = response.content.decode()
    assert "KyivPBX: extensions synced: 2 created" in page
    assert set(PhoneNumber.objects.filter(device=site.device).values_list("dn", flat=True)) == {
        "100", "101", "102", "103"}


def test_sync_extensions_now_needs_the_rights_to_change_subscribers(operator, site, controlled):
    # given an operator of the restrictions without rights on subscribers
    # when the sync is asked for
    response = operator.post(f"/restrictions/pbx/{site.device.pk}/sync")
    # then it is refused, and the button is not offered
    assert response.status_code == 403
    assert "Sync extensions" not in operator.get("/restrictions/").content.decode()


def test_a_sync_that_cannot_reach_the_pbx_says_so_without_its_secret(operator, site, controlled):
    # given a PBX that cannot be reached
    _billing_rights(operator)
    # when the sync is asked for
    page = operator.post(f"/restrictions/pbx/{site.device.pk}/sync",
                         follow=True).content.decode()
    # then the page says it was not done, and shows no credential
    assert "KyivPBX: the extensions were not synced" in page
    assert not [secret for secret in SECRETS if secret in page]
