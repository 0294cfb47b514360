"""R10.3–R10.5, R10.8: charges and payments through the API, the seed document's examples
sent exactly as written."""
import json
from datetime import date
from decimal import Decimal

import pytest
import time_machine

from billing.accounts import payment_create
from billing.models import Charge, ChargeKind, Payment, PaymentType
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

# The seed document sends the API user's name and password in the body of every request.
CREDENTIALS = {"username": "integrator", "password": "s3cret-pass"}


def charge(subscriber, name, amount, seconds, start=date(2023, 5, 1), end=date(2023, 5, 31)):
    return Charge.objects.create(subscriber=subscriber, period_start=start, period_end=end,
                                 service_name=name, amount=Decimal(amount), count=seconds,
                                 currency="UAH", kind=ChargeKind.CALL)


def test_seed_example_charges_of_subscriber_6169_for_may_2023(client, bearer):
    # given
    subscriber = SubscriberFactory(id=6169)
    with time_machine.travel("2023-06-01 03:00Z", tick=False):
        charge(subscriber, "International calls", "12.34", 754)
        charge(subscriber, "Local calls", "3.50", 420)
        charge(subscriber, "Local calls", "9.99", 60, date(2023, 4, 1), date(2023, 4, 30))
        charge(SubscriberFactory(), "Local calls", "1.00", 60)
    # when: a GET with the user name and password in its body, as the seed sends it
    response = client.generic(
        "GET", "/api/accounts/charges/?id=6169&fromdate=2023-05-01&todate=2023-05-31",
        data=json.dumps(CREDENTIALS), content_type="application/json", **bearer)
    # then
    assert response.status_code == 200
    assert response.json() == [
        {"id": 6169, "recdate": "2023-06-01", "fromdate": "2023-05-01", "todate": "2023-05-31",
         "servicename": "International calls", "charge": 12.34, "numberofservices": 754},
        {"id": 6169, "recdate": "2023-06-01", "fromdate": "2023-05-01", "todate": "2023-05-31",
         "servicename": "Local calls", "charge": 3.5, "numberofservices": 420},
    ]


def test_charges_read_json_and_form_bodies_and_any_case(client, bearer):
    subscriber = SubscriberFactory()
    charge(subscriber, "Local calls", "3.50", 420)
    query = {"ID": subscriber.pk, "FromDate": "2023-05-01", "ToDate": "2023-05-31"}

    as_query = client.get("/api/accounts/charges", query, **bearer)
    as_json = client.generic("GET", "/api/accounts/charges", json.dumps(query),
                             content_type="application/json", **bearer)

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
    subscriber = SubscriberFactory()
    response = client.get("/api/accounts/charges?" + query.format(id=subscriber.pk), **bearer)
    assert response.status_code == status
    assert response.json() == {"message": message}


def test_seed_example_payment_of_370_via_invoice(client, bearer):
    SubscriberFactory(id=6193)

    response = client.post("/api/accounts/payment/?id=6193&paymentday=2023-05-17&payment=370.00"
                           "&paymenttype=3&bank=ПриватБанк", CREDENTIALS,
                           content_type="application/json", **bearer)

    assert response.status_code == 200
    payment = Payment.objects.get()
    assert response.json() == {"subscriberid": 6193, "paymentid": payment.pk,
                               "paymentday": "2023-05-17"}
    assert (payment.amount, payment.type, payment.bank, payment.date) == (
        Decimal("370.00"), PaymentType.INVOICE, "ПриватБанк", date(2023, 5, 17))


def test_payment_as_form_fields_with_the_type_left_out(client, bearer):
    subscriber = SubscriberFactory()
    response = client.post("/api/accounts/payment", {"id": subscriber.pk, "paymentday": "2023-05-17",
                                                     "payment": "12.5"}, **bearer)
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
    subscriber = SubscriberFactory()
    response = client.post("/api/accounts/payment?" + query.format(id=subscriber.pk), **bearer)
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert not Payment.objects.exists()


def test_a_get_on_the_payment_method_is_not_allowed(client, bearer):
    assert client.get("/api/accounts/payment?id=1", **bearer).status_code == 405


def make_payments(subscriber):
    return [payment_create(subscriber=subscriber, amount=Decimal(amount), day=day, type=3)
            for amount, day in (("100.00", date(2023, 3, 31)), ("370.00", date(2023, 4, 1)),
                                ("55.50", date(2023, 5, 31)), ("10.00", date(2023, 6, 1)))]


def test_seed_example_payments_with_a_cyrillic_e_in_paymentid(client, bearer):
    # given
    subscriber = SubscriberFactory(id=6169)
    _, april, may, _ = make_payments(subscriber)
    # when: the seed's URL, with "paymenеtid" spelt with a Cyrillic "е"
    response = client.generic(
        "GET", "/api/accounts/payments/?id=6169&fromdate=2023-04-01&todate=2023-05-31&paymenеtid=0",
        data=json.dumps(CREDENTIALS), content_type="application/json", **bearer)
    # then
    assert response.status_code == 200
    assert response.json() == [
        {"subscriberid": 6169, "paymentid": april.pk, "paymentday": "2023-04-01", "payment": 370.0},
        {"subscriberid": 6169, "paymentid": may.pk, "paymentday": "2023-05-31", "payment": 55.5},
    ]


@pytest.mark.parametrize("name", ["paymentid", "paymen\u0435tid", "PaymentId"])
def test_a_non_zero_paymentid_ignores_the_dates(client, bearer, name):
    subscriber = SubscriberFactory()
    first, *_ = make_payments(subscriber)

    response = client.get(f"/api/accounts/payments?id={subscriber.pk}&fromdate=2024-01-01"
                          f"&todate=2024-01-31&{name}={first.pk}", **bearer)

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
    subscriber = SubscriberFactory()
    other = payment_create(subscriber=SubscriberFactory(), amount=Decimal(1), day=date(2023, 5, 1))
    values = {"id": subscriber.pk, "missing": other.pk + 100, "other": other.pk}
    response = client.get("/api/accounts/payments?" + query.format(**values), **bearer)
    assert response.status_code == status
    assert response.json() == {"message": message.format(**values)}


def test_payments_list_costs_a_fixed_number_of_queries(client, bearer, django_assert_max_num_queries):
    subscriber = SubscriberFactory()
    for _ in range(3):
        make_payments(subscriber)
    # user, subscriber, payments
    with django_assert_max_num_queries(3):
        response = client.get(f"/api/accounts/payments?id={subscriber.pk}&fromdate=2023-01-01"
                              "&todate=2023-12-31", **bearer)
    assert len(response.json()) == 12
