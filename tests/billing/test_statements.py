"""R7.3: a subscriber's statement: opening balance, charges, payments, closing balance."""
import io
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from pypdf import PdfReader

from billing.accounts import payment_create
from billing.models import Charge, ChargeKind, PaymentType
from billing.statements import statement_build, statement_pdf
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    # April: charged 30.00, paid 50.00; May: charged 12.34 + 5.00, paid 370.00 by invoice
    subscriber = SubscriberFactory(full_name="JSC ABC", account_number="6169")
    for start, name, amount in ((date(2023, 4, 1), "Local calls", "30.00"),
                                (date(2023, 5, 1), "Local calls", "12.34"),
                                (date(2023, 5, 1), "International calls", "5.00")):
        Charge.objects.create(subscriber=subscriber, period_start=start,
                              period_end=start.replace(day=28), service_name=name,
                              amount=Decimal(amount), count=60, currency="UAH",
                              kind=ChargeKind.CALL)
    payment_create(subscriber=subscriber, amount=Decimal("50.00"), day=date(2023, 4, 10))
    payment_create(subscriber=subscriber, amount=Decimal("370.00"), day=date(2023, 5, 17),
                   type=PaymentType.INVOICE, bank="PrivatBank")
    return subscriber


def test_statement_carries_the_balance_over_and_adds_the_periods_movements(account):
    # when May's statement is built
    built = statement_build(subscriber=account, period_start=date(2023, 5, 1),
                            period_end=date(2023, 5, 31))
    # then opening = 50.00 - 30.00 = 20.00; closing = 20.00 + 370.00 - 17.34 = 372.66
    assert built.opening == Decimal("20.00")
    assert [c.service_name for c in built.charges] == ["International calls", "Local calls"]
    assert built.closing == Decimal("372.66")


def test_statement_page_and_pdf(client, account):
    # given an operator
    client.force_login(User.objects.create_user("op", password="pw-op-12345"))
    url = f"/subscribers/{account.pk}/statement?date_from=2023-05-01&date_to=2023-05-31"
    # when the statement is opened, and downloaded as PDF
    page = client.get(url).content.decode()
    pdf = client.get(url + "&format=pdf")
    # then the page shows the balances, and the PDF is a PDF named after the account
    assert 'id="opening">20.00<' in page and 'id="closing">372.66<' in page
    assert "PrivatBank" in page
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert "statement-6169-20230501-20230531.pdf" in pdf["Content-Disposition"]


def test_a_period_that_ends_before_it_starts_is_an_error(client, account):
    client.force_login(User.objects.create_user("op", password="pw-op-12345"))
    response = client.get(f"/subscribers/{account.pk}/statement?date_from=2023-05-31"
                          "&date_to=2023-05-01")
    assert response.status_code == 400
    assert "The period ends before it starts." in response.content.decode()


def test_subscriber_page_shows_numbers_balance_and_movements(client, account):
    # given an operator
    client.force_login(User.objects.create_user("op", password="pw-op-12345"))
    # when the subscriber's page is opened, and the list searched by account
    page = client.get(f"/subscribers/{account.pk}/").content.decode()
    found = client.get("/subscribers/?q=6169").content.decode()
    # then the balance is 420.00 - 47.34 = 372.66, with April's charge before its payment
    assert 'id="balance">372.66<' in page
    assert page.index("-30.00") < page.index(">50.00<")
    assert "JSC ABC" in found and f"/subscribers/{account.pk}/" in found


def test_subscriber_list_queries_stay_bounded(client, django_assert_max_num_queries):
    client.force_login(User.objects.create_user("op", password="pw-op-12345"))
    SubscriberFactory.create_batch(30)
    with django_assert_max_num_queries(6):
        assert client.get("/subscribers/").status_code == 200


def test_the_pdf_writes_cyrillic_names_and_services_as_they_are(account):
    # given a subscriber and a service named in Ukrainian
    account.full_name = "ТОВ «Сонячний берег»"
    account.save()
    Charge.objects.filter(service_name="Local calls").update(service_name="Місцеві дзвінки")
    # when May's statement is printed
    pdf = statement_pdf(statement_build(subscriber=account, period_start=date(2023, 5, 1),
                                        period_end=date(2023, 5, 31)))
    # then its text, read back from the PDF, holds them (with the font shipped with the code,
    # whatever fonts the machine has)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "ТОВ «Сонячний берег»" in text
    assert "Місцеві дзвінки" in text
    assert b"DejaVuSans" in pdf
