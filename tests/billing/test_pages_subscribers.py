"""R6, R11.1: subscribers and their numbers in the browser, rendered for real: a subscriber
made and edited with every R6.1 field (the personal account number its id when not
given), refusals shown under their field with nothing stored, the removal's confirmation
naming the calls, charges and payments it touches, numbers given and ended with their
validity (another holder's period refused, naming the holder), and the rights: a
read-only user sees no button and every change of his is refused."""
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User

from billing.accounts import payment_create
from billing.models import Call, Charge, Payment, PhoneNumber, Subscriber
from tests.factories import (
    NodeFactory,
    PhoneNumberFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
)
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

RIGHTS = ("add_subscriber", "change_subscriber", "delete_subscriber", "add_phonenumber",
          "change_phonenumber", "delete_phonenumber")


def login(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="billing"))
    client.force_login(user)
    return client


@pytest.fixture
def operator(client, db):
    """A billing operator: every right over subscribers and numbers."""
    return login(client, "olena", *RIGHTS)


@pytest.fixture
def viewer(client, db):
    """A read-only operator."""
    return login(client, "viewer")


def field_errors(html: str, field: str) -> str:
    """The error list Django renders under a form's field ("" when there is none)."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


EVERY_FIELD = {
    "full_name": "JSC Sunny Shore", "type": "1", "connection_date": "2024-02-01",
    "contract_number": "K-17/2024", "contract_date": "2024-01-25", "account_number": "",
    "personal_code": "1234567890", "edrpou": "30123456", "tax_code": "301234526599",
    "bank_code": "305299", "bank_name": "PrivatBank", "bank_account": "UA213052990000026007",
    "email": "office@sunny.example",
}


# -- create and edit

def test_a_subscriber_made_on_the_page_has_every_field_and_its_id_as_account(operator, site):
    # given the site's group Sales and plan Office
    # when a legal entity is sent with every field and no account number
    response = operator.post("/subscribers/new", {
        **EVERY_FIELD, "group": "Sales · Kyiv", "plan": site.plan.pk})
    # then it is stored as sent, its account number is its id, and its page opens
    made = Subscriber.objects.get(full_name="JSC Sunny Shore")
    assert response.status_code == 302 and response["Location"] == f"/subscribers/{made.pk}/"
    assert (made.group, made.plan, made.type, made.connection_date, made.contract_number,
            made.contract_date, made.personal_code, made.edrpou, made.tax_code, made.bank_code,
            made.bank_name, made.bank_account, made.email) == (
        site.sales, site.plan, 1, date(2024, 2, 1), "K-17/2024", date(2024, 1, 25),
        "1234567890", "30123456", "301234526599", "305299", "PrivatBank",
        "UA213052990000026007", "office@sunny.example")
    assert made.account_number == str(made.pk)
    page = operator.get(f"/subscribers/{made.pk}/").content.decode()
    assert f'id="account">{made.pk}<' in page and "PrivatBank" in page


def test_a_given_account_number_is_kept_and_one_in_use_is_refused_on_its_field(operator, site):
    # given Ivan with account number A-1
    site.subscriber.account_number = "A-1"
    site.subscriber.save()
    # when a subscriber is sent with A-2, and another with Ivan's A-1
    operator.post("/subscribers/new", {**EVERY_FIELD, "account_number": "A-2"})
    taken = operator.post("/subscribers/new", {**EVERY_FIELD, "full_name": "Twin",
                                               "account_number": "A-1"})
    # then the first has A-2; the second is refused under the account number, not stored
    assert Subscriber.objects.get(full_name="JSC Sunny Shore").account_number == "A-2"
    assert taken.status_code == 200
    assert field_errors(taken.content.decode(), "account_number") == (
        "<li>Account number A-1 belongs to another subscriber.</li>")
    assert not Subscriber.objects.filter(full_name="Twin").exists()


def test_invalid_input_is_shown_under_its_field_and_nothing_is_stored(operator, site):
    # given a group Sales on a second node too
    SubscriberGroupFactory(node=NodeFactory(name="Lviv"), name="Sales")
    # when a subscriber without a name, with a date, an e-mail and a group that are not, is
    # sent, and one in "Sales" (two nodes have one)
    response = operator.post("/subscribers/new", {
        **EVERY_FIELD, "full_name": "  ", "contract_date": "yesterday", "email": "office@",
        "group": "Marketing"})
    ambiguous = operator.post("/subscribers/new", {**EVERY_FIELD, "group": "Sales"})
    # then each field says what is wrong, and no subscriber more exists
    html = response.content.decode()
    assert response.status_code == 200
    assert field_errors(html, "full_name") and field_errors(html, "contract_date")
    assert field_errors(html, "email")
    assert field_errors(html, "group") == "<li>No group matches “Marketing”.</li>"
    assert "More than one group matches “Sales”" in field_errors(ambiguous.content.decode(),
                                                                   "group")
    assert Subscriber.objects.count() == 2


def test_a_subscriber_edited_on_the_page_is_stored(operator, site):
    # given Ivan, with no plan, in Sales
    other_plan = TariffPlanFactory(name="Home")
    # when his page's form is sent with another name, type, plan, contract and e-mail
    form = operator.get(f"/subscribers/{site.subscriber.pk}/edit").content.decode()
    assert 'value="Ivan Petrenko"' in form and 'value="Sales · Kyiv"' in form
    assert 'data-lookup="/lookup/groups"' in form
    response = operator.post(f"/subscribers/{site.subscriber.pk}/edit", {
        "full_name": "Ivan Petrenko-Koval", "group": "", "type": "4", "plan": other_plan.pk,
        "contract_number": "C-9", "account_number": site.subscriber.account_number,
        "email": "ivan@example.com"})
    # then the row holds them (no group now), and the account number is unchanged
    assert response.status_code == 302
    ivan = Subscriber.objects.get(pk=site.subscriber.pk)
    assert (ivan.full_name, ivan.group, ivan.type, ivan.plan, ivan.contract_number,
            ivan.email) == ("Ivan Petrenko-Koval", None, 4, other_plan, "C-9",
                            "ivan@example.com")
    assert ivan.account_number == site.subscriber.account_number


def test_an_edit_that_takes_anothers_account_number_changes_nothing(operator, site):
    # given Olena's account number
    olena = site.colleague.account_number
    # when Ivan is sent with it and a new name
    response = operator.post(f"/subscribers/{site.subscriber.pk}/edit", {
        "full_name": "Renamed", "type": "0", "account_number": olena})
    # then it is refused under the field, and Ivan keeps his name and number
    assert olena in field_errors(response.content.decode(), "account_number")
    ivan = Subscriber.objects.get(pk=site.subscriber.pk)
    assert (ivan.full_name, ivan.account_number) == ("Ivan Petrenko", str(ivan.pk))


# -- delete

def test_the_removal_says_how_many_calls_charges_and_payments_it_touches(operator, site):
    # given two rated calls of Ivan to Kyiv (one charge of June) and two payments
    site.ingest(cdr_line(historyid="c1"), cdr_line(historyid="c2", callid="x2"))
    payment_create(subscriber=site.subscriber, amount=Decimal("10.00"), day=date(2024, 6, 1))
    payment_create(subscriber=site.subscriber, amount=Decimal("5.00"), day=date(2024, 6, 2))
    assert Call.objects.filter(subscriber=site.subscriber).count() == 2
    assert Charge.objects.filter(subscriber=site.subscriber).count() == 1  # both to Kyiv
    # when the removal is asked for
    page = operator.get(f"/subscribers/{site.subscriber.pk}/delete").content.decode()
    # then it names each kind of row with its count and what becomes of it
    impact = dict(re.findall(r'<li data-relation="(\w+)">\s*(.*?)\s*</li>', page, re.S))
    assert impact["calls"] == "2 calls: kept, without it"
    assert impact["charges"] == "1 charge: removed with it"
    assert impact["payments"] == "2 payments: removed with it"
    assert impact["numbers"] == "1 phone number: removed with it"
    # and when it is confirmed, Ivan and his account are gone and his calls are kept
    response = operator.post(f"/subscribers/{site.subscriber.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/subscribers/"
    assert not Subscriber.objects.filter(pk=site.subscriber.pk).exists()
    assert not Payment.objects.exists() and not Charge.objects.exists()
    assert Call.objects.filter(subscriber__isnull=True).count() == 2


# -- numbers

def test_a_number_given_on_the_page_is_stored_with_its_period(operator, site):
    # when Ivan is given 105 of KyivPBX for March 2024, and 106 from April on
    march = operator.post(f"/subscribers/{site.subscriber.pk}/numbers/new", {
        "device": site.device.pk, "dn": "105", "valid_from": "2024-03-01",
        "valid_to": "2024-03-31", "description": "temporary desk"})
    april = operator.post(f"/subscribers/{site.subscriber.pk}/numbers/new", {
        "device": site.device.pk, "dn": "106", "valid_from": "2024-04-01"})
    # then both are his, with those periods, and his page lists them
    assert (march.status_code, april.status_code) == (302, 302)
    rows = {n.dn: (n.subscriber, n.valid_from, n.valid_to, n.description)
            for n in PhoneNumber.objects.filter(dn__in=["105", "106"])}
    assert rows == {"105": (site.subscriber, date(2024, 3, 1), date(2024, 3, 31),
                            "temporary desk"),
                    "106": (site.subscriber, date(2024, 4, 1), None, "")}
    page = operator.get(f"/subscribers/{site.subscriber.pk}/").content.decode()
    numbers = page[page.index('id="numbers"'):page.index('id="services"')]
    assert "<td>105</td>" in numbers and "2024-03-31" in numbers and "temporary desk" in numbers


def test_a_number_another_holds_in_that_period_is_refused_naming_the_holder(operator, site):
    # given Olena holds 102 from 2020 on, and 107 in May 2024
    PhoneNumberFactory(subscriber=site.colleague, device=site.device, dn="107",
                       valid_from=date(2024, 5, 1), valid_to=date(2024, 5, 31))
    # when Ivan is given 102 from 2024, and 107 for 20 April to 10 May
    held = operator.post(f"/subscribers/{site.subscriber.pk}/numbers/new", {
        "device": site.device.pk, "dn": "102", "valid_from": "2024-01-01"})
    overlapping = operator.post(f"/subscribers/{site.subscriber.pk}/numbers/new", {
        "device": site.device.pk, "dn": "107", "valid_from": "2024-04-20",
        "valid_to": "2024-05-10"})
    # then each is refused under the number, naming Olena and her period; nothing is stored
    assert field_errors(held.content.decode(), "dn") == (
        "<li>102 is held by Olena Koval from 2020-01-01 on; the periods of one number cannot "
        "overlap.</li>")
    assert "107 is held by Olena Koval from 2024-05-01 to 2024-05-31" in field_errors(
        overlapping.content.decode(), "dn")
    assert not PhoneNumber.objects.filter(subscriber=site.subscriber).exclude(dn="101").exists()


def test_a_number_is_ended_with_its_last_day_and_a_day_before_its_first_is_refused(
        operator, site):
    # given Ivan's 101 (from 2020-01-01, open)
    url = f"/subscribers/{site.subscriber.pk}/numbers/{site.number.pk}/edit"
    # when it is ended on a day before its first, then on 30 June 2024
    wrong = operator.post(url, {"valid_to": "2019-12-31", "description": ""})
    assert field_errors(wrong.content.decode(), "valid_to")
    site.number.refresh_from_db()
    assert site.number.valid_to is None
    ended = operator.post(url, {"valid_to": "2024-06-30", "description": "moved out"})
    # then it ends that day, and Olena may be given it from 1 July
    assert ended.status_code == 302
    site.number.refresh_from_db()
    assert (site.number.valid_to, site.number.description) == (date(2024, 6, 30), "moved out")
    given = operator.post(f"/subscribers/{site.colleague.pk}/numbers/new", {
        "device": site.device.pk, "dn": "101", "valid_from": "2024-07-01"})
    assert given.status_code == 302
    assert PhoneNumber.objects.get(dn="101", valid_from=date(2024, 7, 1)).subscriber == (
        site.colleague)


def test_reopening_a_number_someone_holds_later_is_refused(operator, site):
    # given Ivan's 101 ended on 30 June 2024 and given to Olena from 1 July
    site.number.valid_to = date(2024, 6, 30)
    site.number.save()
    PhoneNumberFactory(subscriber=site.colleague, device=site.device, dn="101",
                       valid_from=date(2024, 7, 1))
    # when Ivan's holding is made open again
    response = operator.post(
        f"/subscribers/{site.subscriber.pk}/numbers/{site.number.pk}/edit",
        {"valid_to": "", "description": ""})
    # then it is refused under the last day, naming Olena; it still ends on 30 June
    assert "held by Olena Koval from 2024-07-01 on" in field_errors(
        response.content.decode(), "valid_to")
    site.number.refresh_from_db()
    assert site.number.valid_to == date(2024, 6, 30)


# -- rights and the pages' cost

def test_a_read_only_user_sees_no_button_and_every_change_is_refused(viewer, site):
    # given the site; Ivan's page and the list, as a user with no right
    ivan = site.subscriber.pk
    pages = viewer.get(f"/subscribers/{ivan}/").content.decode() + viewer.get(
        "/subscribers/").content.decode()
    # then no page offers a change
    for link in ("/subscribers/new", f"/subscribers/{ivan}/edit", f"/subscribers/{ivan}/delete",
                 f"/subscribers/{ivan}/numbers/new", f"/numbers/{site.number.pk}/edit",
                 f"/numbers/{site.number.pk}/delete"):
        assert link not in pages
    # and each change, opened or sent, is refused, and nothing changes
    for url in ("/subscribers/new", f"/subscribers/{ivan}/edit", f"/subscribers/{ivan}/delete",
                f"/subscribers/{ivan}/numbers/new",
                f"/subscribers/{ivan}/numbers/{site.number.pk}/edit",
                f"/subscribers/{ivan}/numbers/{site.number.pk}/delete"):
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, {**EVERY_FIELD, "device": site.device.pk, "dn": "109",
                                 "valid_from": "2024-01-01",
                                 "valid_to": "2024-01-02"}).status_code == 403, url
    assert Subscriber.objects.count() == 2 and PhoneNumber.objects.count() == 2
    assert Subscriber.objects.get(pk=ivan).full_name == "Ivan Petrenko"


def test_an_operator_sees_the_buttons_of_his_rights(operator, site):
    ivan = site.subscriber.pk
    page = operator.get(f"/subscribers/{ivan}/").content.decode()
    for link in (f"/subscribers/{ivan}/edit", f"/subscribers/{ivan}/delete",
                 f"/subscribers/{ivan}/numbers/new", f"/numbers/{site.number.pk}/edit"):
        assert link in page
    assert "/subscribers/new" in operator.get("/subscribers/").content.decode()


def test_the_list_and_a_subscribers_page_cost_a_fixed_number_of_queries(
        operator, site, django_assert_max_num_queries):
    # given 60 subscribers with a number each, and Ivan with 20 numbers and 10 payments
    for n in range(60):
        PhoneNumberFactory(subscriber=SubscriberFactory(group=site.sales), device=site.device,
                           dn=str(200 + n))
    for n in range(20):
        PhoneNumberFactory(subscriber=site.subscriber, device=site.device, dn=str(500 + n))
    for n in range(10):
        payment_create(subscriber=site.subscriber, amount=Decimal("1.00"), day=date(2024, 1, n + 1))
    # then the list (a page of 50) and Ivan's page each cost a bounded number of queries
    with django_assert_max_num_queries(6):
        assert operator.get("/subscribers/").status_code == 200
    with django_assert_max_num_queries(10):
        assert operator.get(f"/subscribers/{site.subscriber.pk}/").status_code == 200
