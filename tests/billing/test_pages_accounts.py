"""R7, R11.1: a subscriber's personal account in the browser: payments added (refused
under the amount when it is 0 or not a number, nothing stored) and removed once confirmed;
recurring services made, edited and ended; the running balance kept per currency, never
one sum of two; and the rights."""
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User

from billing.accounts import payment_create
from billing.models import Charge, ChargeKind, Payment, PaymentType, RecurringService
from billing.selectors import account_balances, account_currency, account_movements
from tariscope.roles import BILLING, READ_ONLY

pytestmark = pytest.mark.django_db

RIGHTS = ("add_payment", "delete_payment", "add_recurringservice", "change_recurringservice")


def login(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="billing"))
    client.force_login(user)
    return client


@pytest.fixture
def operator(client, db):
    return login(client, "olena", *RIGHTS)


@pytest.fixture
def viewer(client, db):
    return login(client, "viewer")


def field_errors(html: str, field: str) -> str:
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def charge(subscriber, *, month: date, name: str, amount: str, currency: str):
    return Charge.objects.create(subscriber=subscriber, period_start=month,
                                 period_end=month.replace(day=28), service_name=name,
                                 amount=Decimal(amount), count=60, currency=currency,
                                 kind=ChargeKind.CALL)


# -- payments

def test_a_payment_added_on_the_page_is_stored_with_its_fields(operator, site):
    # when a payment of 150.50 by receipt through PrivatBank on 3 June 2024 is sent
    response = operator.post(f"/subscribers/{site.subscriber.pk}/payments/new", {
        "day": "2024-06-03", "amount": "150.50", "type": "2", "bank": "PrivatBank"})
    # then it is Ivan's, with those fields, and his balance shows it
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.subscriber, payment.date, payment.amount, payment.type, payment.bank) == (
        site.subscriber, date(2024, 6, 3), Decimal("150.50"), PaymentType.RECEIPT, "PrivatBank")
    page = operator.get(f"/subscribers/{site.subscriber.pk}/").content.decode()
    assert 'id="balance">150.50<' in page


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "ten", "1.005", ""])
def test_a_payment_of_nothing_or_of_text_is_refused_under_the_amount(operator, site, amount):
    # when a payment with that amount is sent
    response = operator.post(f"/subscribers/{site.subscriber.pk}/payments/new", {
        "day": "2024-06-03", "amount": amount, "type": "0"})
    # then the amount says what is wrong, and no payment is stored
    assert response.status_code == 200
    assert field_errors(response.content.decode(), "amount")
    assert not Payment.objects.exists()


def test_a_payment_is_removed_once_confirmed(operator, site):
    # given two payments of Ivan
    kept = payment_create(subscriber=site.subscriber, amount=Decimal("5.00"), day=date(2024, 6, 1))
    wrong = payment_create(subscriber=site.subscriber, amount=Decimal("500.00"),
                           day=date(2024, 6, 2))
    url = f"/subscribers/{site.subscriber.pk}/payments/{wrong.pk}/delete"
    # when the removal of the second is asked for, then confirmed
    confirm = operator.get(url).content.decode()
    assert "500.00 UAH" in confirm and "2024-06-02" in confirm
    assert Payment.objects.count() == 2
    response = operator.post(url)
    # then only the first is left; a payment of another subscriber is not found under Ivan
    assert response.status_code == 302
    assert list(Payment.objects.all()) == [kept]
    other = payment_create(subscriber=site.colleague, amount=Decimal("1.00"), day=date(2024, 6, 1))
    assert operator.post(f"/subscribers/{site.subscriber.pk}/payments/{other.pk}/delete"
                         ).status_code == 404
    assert Payment.objects.filter(pk=other.pk).exists()


# -- recurring services

def test_a_recurring_service_is_made_edited_and_ended_on_the_page(operator, site):
    base = f"/subscribers/{site.subscriber.pk}/services"
    # when a monthly fee of 99.00 UAH from June 2024 is added
    made = operator.post(f"{base}/new", {"name": "Subscription", "amount": "99.00",
                                         "currency": "uah", "valid_from": "2024-06-01"})
    service = RecurringService.objects.get()
    assert made.status_code == 302
    assert (service.subscriber, service.plan, service.name, service.amount, service.currency,
            service.valid_from, service.valid_to) == (
        site.subscriber, None, "Subscription", Decimal("99.00"), "UAH", date(2024, 6, 1), None)
    # and then raised to 120.00, and ended on 31 December
    operator.post(f"{base}/{service.pk}/edit", {"name": "Subscription", "amount": "120.00",
                                                "currency": "UAH", "valid_from": "2024-06-01"})
    ended = operator.post(f"{base}/{service.pk}/end", {"valid_to": "2024-12-31"})
    # then it holds both changes, and Ivan's page lists it
    assert ended.status_code == 302
    service.refresh_from_db()
    assert (service.amount, service.valid_to) == (Decimal("120.00"), date(2024, 12, 31))
    page = operator.get(f"/subscribers/{site.subscriber.pk}/").content.decode()
    services = page[page.index('id="services"'):page.index('id="movements"')]
    assert "Subscription" in services and "120.00 UAH" in services and "2024-12-31" in services


def test_a_recurring_service_with_a_wrong_currency_or_end_is_refused(operator, site):
    base = f"/subscribers/{site.subscriber.pk}/services"
    # when a fee in "hryvnia" is sent, and one that ends before it begins
    currency = operator.post(f"{base}/new", {"name": "Fee", "amount": "10", "currency": "hr",
                                             "valid_from": "2024-06-01"})
    backwards = operator.post(f"{base}/new", {"name": "Fee", "amount": "10", "currency": "UAH",
                                              "valid_from": "2024-06-01",
                                              "valid_to": "2024-05-31"})
    # then each is refused under its field, and none is stored
    assert field_errors(currency.content.decode(), "currency")
    assert field_errors(backwards.content.decode(), "valid_to")
    assert not RecurringService.objects.exists()


# -- the balance per currency

def test_the_running_balance_is_kept_per_currency(site):
    # given charges of Ivan in UAH (30.00, 12.00) and in EUR (2.50, from another carrier),
    # and a payment of 100.00 (in the account's currency, UAH: most of its charges)
    charge(site.subscriber, month=date(2024, 4, 1), name="Local calls", amount="30.00",
           currency="UAH")
    charge(site.subscriber, month=date(2024, 4, 1), name="Roaming", amount="2.50",
           currency="EUR")
    charge(site.subscriber, month=date(2024, 5, 1), name="Local calls", amount="12.00",
           currency="UAH")
    payment_create(subscriber=site.subscriber, amount=Decimal("100.00"), day=date(2024, 5, 10))
    # when the account's movements are read
    currency = account_currency(site.subscriber)
    movements = account_movements(site.subscriber, currency=currency)
    # then each balance runs in its own currency, and none adds EUR to UAH
    assert currency == "UAH"
    assert [(m["text"], m["currency"], m["balance"]) for m in movements] == [
        ("Local calls", "UAH", Decimal("-30.00")),
        ("Roaming", "EUR", Decimal("-2.50")),
        ("Local calls", "UAH", Decimal("-42.00")),
        ("unspecified", "UAH", Decimal("58.00")),
    ]
    assert account_balances(movements, currency) == [
        {"currency": "UAH", "balance": Decimal("58.00")},
        {"currency": "EUR", "balance": Decimal("-2.50")}]


def test_the_subscribers_page_shows_a_balance_per_currency(client, site):
    # given the same account (UAH 100.00 - 42.00; EUR -2.50)
    charge(site.subscriber, month=date(2024, 4, 1), name="Local calls", amount="42.00",
           currency="UAH")
    charge(site.subscriber, month=date(2024, 4, 1), name="Roaming", amount="2.50",
           currency="EUR")
    payment_create(subscriber=site.subscriber, amount=Decimal("100.00"), day=date(2024, 5, 10))
    login(client, "viewer")
    # when his page is opened
    page = client.get(f"/subscribers/{site.subscriber.pk}/").content.decode()
    # then it shows 58.00 UAH and -2.50 EUR, never 55.50
    assert '<span id="balance">58.00</span> UAH' in page
    assert '<span id="balance-EUR">-2.50</span> EUR' in page
    assert "55.50" not in page


def test_payments_count_in_the_currency_of_most_charges_and_on_a_tie_in_the_default(site):
    # given an account charged once in EUR and once in UAH, then twice more in EUR
    charge(site.subscriber, month=date(2024, 4, 1), name="Roaming", amount="1", currency="EUR")
    charge(site.subscriber, month=date(2024, 4, 1), name="Local", amount="1", currency="UAH")
    tie = account_currency(site.subscriber)
    charge(site.subscriber, month=date(2024, 5, 1), name="Roaming", amount="1", currency="EUR")
    # then payments count in UAH on the tie, and in EUR once most charges are in EUR
    assert (tie, account_currency(site.subscriber)) == ("UAH", "EUR")


def test_an_account_without_charges_counts_payments_in_the_default_currency(site):
    payment_create(subscriber=site.subscriber, amount=Decimal("7.00"), day=date(2024, 5, 10))
    currency = account_currency(site.subscriber)
    assert account_balances(account_movements(site.subscriber, currency=currency), currency) == [
        {"currency": "UAH", "balance": Decimal("7.00")}]


# -- rights

def test_a_read_only_user_sees_no_account_button_and_every_change_is_refused(viewer, site):
    # given a payment and a recurring service of Ivan
    payment = payment_create(subscriber=site.subscriber, amount=Decimal("5.00"),
                             day=date(2024, 6, 1))
    service = RecurringService.objects.create(subscriber=site.subscriber, name="Fee",
                                              amount=Decimal("10"), valid_from=date(2024, 1, 1))
    base = f"/subscribers/{site.subscriber.pk}"
    urls = (f"{base}/payments/new", f"{base}/payments/{payment.pk}/delete",
            f"{base}/services/new", f"{base}/services/{service.pk}/edit",
            f"{base}/services/{service.pk}/end")
    # then his page offers none of these
    page = viewer.get(f"{base}/").content.decode()
    assert not [url for url in urls if url in page]
    # and each, opened or sent, is refused; nothing changes
    for url in urls:
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, {"day": "2024-06-03", "amount": "1", "type": "0",
                                 "name": "X", "currency": "UAH", "valid_from": "2024-01-01",
                                 "valid_to": "2024-01-31"}).status_code == 403, url
    assert list(Payment.objects.all()) == [payment]
    service.refresh_from_db()
    assert (RecurringService.objects.count(), service.valid_to, service.name) == (1, None, "Fee")


def test_an_operator_sees_the_account_buttons(operator, site):
    payment = payment_create(subscriber=site.subscriber, amount=Decimal("5.00"),
                             day=date(2024, 6, 1))
    base = f"/subscribers/{site.subscriber.pk}"
    page = operator.get(f"{base}/").content.decode()
    for url in (f"{base}/payments/new", f"{base}/payments/{payment.pk}/delete",
                f"{base}/services/new"):
        assert url in page


def test_a_billing_operator_records_a_payment_and_a_read_only_operator_cannot(client, site):
    # given a member of each role (tariscope/roles.py)
    billing = User.objects.create_user("billing", password="pw-billing-1")
    billing.groups.add(Group.objects.get(name=BILLING))
    viewer = User.objects.create_user("reader", password="pw-reader-1")
    viewer.groups.add(Group.objects.get(name=READ_ONLY))
    payment = {"day": "2024-06-03", "amount": "10.00", "type": "1"}
    url = f"/subscribers/{site.subscriber.pk}/payments/new"
    # when each records a payment
    client.force_login(viewer)
    refused = client.post(url, payment)
    client.force_login(billing)
    made = client.post(url, payment)
    # then only the billing operator's is stored
    assert (refused.status_code, made.status_code) == (403, 302)
    assert Payment.objects.get().amount == Decimal("10.00")
