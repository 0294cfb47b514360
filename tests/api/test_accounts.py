"""R10.3–R10.5, R10.8: charges and payments through the API, the seed document's examples
sent exactly as written."""
import json
from datetime import date
from decimal import Decimal

import pytest
import time_machine

from billing.accounts import payment_create
from billing.models import Charge, ChargeKind, Payment, PaymentType
from tests.api.conftest import CREDENTIALS
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def charge(subscriber, name, amount, seconds, start=date(2023, 5, 1), end=date(2023, 5, 31)):
    return Charge.objects.create(subscriber=subscriber, period_start=start, period_end=end,
                                 service_name=name, amount=Decimal(amount), count=seconds,
                                 currency="UAH", kind=ChargeKind.CALL)


def test_seed_example_charges_of_subscriber_6169_for_may_2023(client, bearer):
    # given subscriber 6169's charges of May and of April, charged on 1 June, and someone
    # else's of May
    subscriber = SubscriberFactory(id=6169)
    with time_machine.travel("2023-06-01 03:00Z", tick=False):
        charge(subscriber, "International calls", "12.34", 754)
        charge(subscriber, "Local calls", "3.50", 420)
        charge(subscriber, "Local calls", "9.99", 60, date(2023, 4, 1), date(2023, 4, 30))
        charge(SubscriberFactory(), "Local calls", "1.00", 60)
    # when: a GET with the user name and password in its body, as the seed document sends
    # every request
    response = client.generic(
        "GET", "/api/accounts/charges/?id=6169&fromdate=2023-05-01&todate=2023-05-31",
        data=json.dumps(CREDENTIALS), content_type="application/json", **bearer)
    # then May's two charges of 6169, as the seed document shows them
    assert response.status_code == 200
    assert response.json() == [
        {"id": 6169, "recdate": "2023-06-01", "fromdate": "2023-05-01", "todate": "2023-05-31",
         "servicename": "International calls", "charge": 12.34, "numberofservices": 754},
        {"id": 6169, "recdate": "2023-06-01", "fromdate": "2023-05-01", "todate": "2023-05-31",
         "servicename": "Local calls", "charge": 3.5, "numberofservices": 420},
    ]


def test_charges_read_json_and_form_bodies_and_any_case(client, bearer):
    # given a charge, and its query with names in mixed case
    subscriber = SubscriberFactory()
    charge(subscriber, "Local calls", "3.50", 420)
    query = {"ID": subscriber.pk, "FromDate": "2023-05-01", "ToDate": "2023-05-31"}
    # when it is asked for in the query string and in a JSON body
    as_query = client.get("/api/accounts/charges", query, **bearer)
    as_json = client.generic("GET", "/api/accounts/charges", json.dumps(query),
                             content_type="application/json", **bearer)
    # then both answer the same charge
    assert as_query.status_code == as_json.status_code == 200
    assert as_query.json() == as_json.json() and len(as_query.json()) == 1


@pytest.mark.parametrize(("query", "status", "message"), [
    ("fromdate=2023-05-01&todate=2023-05-31", 400, "parameter 'id': is required"),
    ("id=abc&fromdate=2023-05-01&todate=2023-05-31", 400, "parameter 'id': 'abc' is not a whole number"),
    ("id={id}&todate=2023-05-31", 400, "parameter 'fromdate': is required"),
    ("id={id}&fromdate=2023-05-01&todate=31.05.2023", 400,
     "parameter 'todate': '31.05.2023' is not a date yyyy-mm-dd"),
    ("id={id}&fromdate=2023-06-01&todate=2023-05-31", 400,
     "parameter 'todate': 2023-05-31 is before fromdate 2023-06-01"),
    ("id=999999&fromdate=2023-05-01&todate=2023-05-31", 404, "subscriber 999999 not found"),
])
def test_charges_errors(client, bearer, query, status, message):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when charges are asked for with a parameter missing or wrong
    response = client.get("/api/accounts/charges?" + query.format(id=subscriber.pk), **bearer)
    # then the status and the message say which and why
    assert response.status_code == status
    assert response.json() == {"message": message}


def test_seed_example_payment_of_370_via_invoice(client, bearer):
    # given subscriber 6193
    SubscriberFactory(id=6193)
    # when the seed document's payment is posted
    response = client.post("/api/accounts/payment/?id=6193&paymentday=2023-05-17&payment=370.00"
                           "&paymenttype=3&bank=ПриватБанк", CREDENTIALS,
                           content_type="application/json", **bearer)
    # then it is stored as sent, and answered with its id
    assert response.status_code == 200
    payment = Payment.objects.get()
    assert response.json() == {"subscriberid": 6193, "paymentid": payment.pk,
                               "paymentday": "2023-05-17"}
    assert (payment.amount, payment.type, payment.bank, payment.date) == (
        Decimal("370.00"), PaymentType.INVOICE, "ПриватБанк", date(2023, 5, 17))


def test_payment_as_form_fields_with_the_type_left_out(client, bearer):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when a payment is posted as form fields, without a type
    response = client.post("/api/accounts/payment", {"id": subscriber.pk, "paymentday": "2023-05-17",
                                                     "payment": "12.5"}, **bearer)
    # then it is stored, of the type "unspecified"
    assert response.status_code == 200
    assert Payment.objects.get().type == PaymentType.UNSPECIFIED


@pytest.mark.parametrize(("query", "status", "message"), [
    ("paymentday=2023-05-17&payment=1", 400, "parameter 'id': is required"),
    ("id={id}&payment=1", 400, "parameter 'paymentday': is required"),
    ("id={id}&paymentday=2023-05-17", 400, "parameter 'payment': is required"),
    ("id={id}&paymentday=2023-05-17&payment=abc", 400, "parameter 'payment': 'abc' is not a number"),
    ("id={id}&paymentday=2023-05-17&payment=-5", 400, "parameter 'payment': must be more than 0"),
    ("id={id}&paymentday=2023-05-17&payment=1.005", 400,
     "parameter 'payment': must have at most 2 decimal places and 12 digits"),
    ("id={id}&paymentday=2023-05-17&payment=1&paymenttype=7", 400,
     "parameter 'paymenttype': must be 0 (unspecified), 1 (cash), 2 (receipt) or 3 (invoice)"),
    ("id=999999&paymentday=2023-05-17&payment=1", 404, "subscriber 999999 not found"),
])
def test_payment_errors(client, bearer, query, status, message):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when a payment is posted with a parameter missing or wrong
    response = client.post("/api/accounts/payment?" + query.format(id=subscriber.pk), **bearer)
    # then the status and the message say which and why, and nothing is stored
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert not Payment.objects.exists()


def test_a_get_on_the_payment_method_is_not_allowed(client, bearer):
    # when the payment method is called with GET; then 405
    assert client.get("/api/accounts/payment?id=1", **bearer).status_code == 405


def make_payments(subscriber):
    return [payment_create(subscriber=subscriber, amount=Decimal(amount), day=day, type=3)
            for amount, day in (("100.00", date(2023, 3, 31)), ("370.00", date(2023, 4, 1)),
                                ("55.50", date(2023, 5, 31)), ("10.00", date(2023, 6, 1)))]


def test_seed_example_payments_with_a_cyrillic_e_in_paymentid(client, bearer):
    # given subscriber 6169's payments of 31 March, 1 April, 31 May and 1 June
    subscriber = SubscriberFactory(id=6169)
    _, april, may, _ = make_payments(subscriber)
    # when: the seed's URL, with "paymenеtid" spelt with a Cyrillic "е"
    response = client.generic(
        "GET", "/api/accounts/payments/?id=6169&fromdate=2023-04-01&todate=2023-05-31&paymenеtid=0",
        data=json.dumps(CREDENTIALS), content_type="application/json", **bearer)
    # then those of April and May, the parameter understood
    assert response.status_code == 200
    assert response.json() == [
        {"subscriberid": 6169, "paymentid": april.pk, "paymentday": "2023-04-01", "payment": 370.0},
        {"subscriberid": 6169, "paymentid": may.pk, "paymentday": "2023-05-31", "payment": 55.5},
    ]


@pytest.mark.parametrize("name", ["paymentid", "paymen\u0435tid", "PaymentId"])
def test_a_non_zero_paymentid_ignores_the_dates(client, bearer, name):
    # given four payments of 2023
    subscriber = SubscriberFactory()
    first, *_ = make_payments(subscriber)
    # when the first is asked for by its id, with a period of 2024, whatever the spelling
    response = client.get(f"/api/accounts/payments?id={subscriber.pk}&fromdate=2024-01-01"
                          f"&todate=2024-01-31&{name}={first.pk}", **bearer)
    # then it alone is answered
    assert response.status_code == 200
    assert [p["paymentid"] for p in response.json()] == [first.pk]


@pytest.mark.parametrize(("query", "status", "message"), [
    ("id={id}&paymentid={missing}", 404, "payment {missing} of subscriber {id} not found"),
    ("id={id}&paymentid={other}", 404, "payment {other} of subscriber {id} not found"),
    ("id={id}&paymentid=0", 400, "parameter 'fromdate': is required"),
    ("id={id}&fromdate=2023-04-01&todate=2023-05-31&paymentid=x", 400,
     "parameter 'paymentid': 'x' is not a whole number"),
    ("id=999999&fromdate=2023-04-01&todate=2023-05-31", 404, "subscriber 999999 not found"),
])
def test_payments_errors(client, bearer, query, status, message):
    # given a subscriber, and a payment of someone else's
    subscriber = SubscriberFactory()
    other = payment_create(subscriber=SubscriberFactory(), amount=Decimal(1), day=date(2023, 5, 1))
    values = {"id": subscriber.pk, "missing": other.pk + 100, "other": other.pk}
    # when payments are asked for with a parameter missing or wrong, or another's payment
    response = client.get("/api/accounts/payments?" + query.format(**values), **bearer)
    # then the status and the message say which and why
    assert response.status_code == status
    assert response.json() == {"message": message.format(**values)}


def test_payments_list_costs_a_fixed_number_of_queries(client, bearer, django_assert_max_num_queries):
    # given twelve payments
    subscriber = SubscriberFactory()
    for _ in range(3):
        make_payments(subscriber)
    # when they are listed; then three queries serve them: user, subscriber, payments
    with django_assert_max_num_queries(3):
        response = client.get(f"/api/accounts/payments?id={subscriber.pk}&fromdate=2023-01-01"
                              "&todate=2023-12-31", **bearer)
    assert len(response.json()) == 12
