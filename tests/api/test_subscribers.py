"""R10.6, R10.7, R10.8: subscribers and numbers through the API (the seed document's
examples sent exactly as written), and the discovery lists of the ids they take."""
from datetime import date

import pytest

from billing.models import PhoneNumber, Subscriber, SubscriberType
from tests.api.conftest import bearer_of, make_user
from tests.factories import (
    DeviceFactory,
    PhoneNumberFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
)

pytestmark = pytest.mark.django_db

SEED_CREATE = ("/api/subscriber/create/?fullname=JSC ABC&departmentid=419&subscribertype=1"
               "&connectiondate=2023-06-02&contractnumber=247-23&contractdate=2023-06-01"
               "&accountnumber=8640-fo&personalcode=&edrpou=55667788&taxcode=&bankcode=361234"
               "&bankname=Кредобанк&bankaccount=UA125438790123456&rateplanid=43")


@pytest.fixture
def seed_ids(db):
    return SubscriberGroupFactory(id=419), TariffPlanFactory(id=43, name="Базовый")


@pytest.mark.parametrize("spelling", ["contractnumber", "contactnumber"])
def test_seed_example_creates_jsc_abc_with_all_its_fields(client, bearer, seed_ids, spelling):
    # given department 419 and rate plan 43 of the seed document
    group, plan = seed_ids
    # when its subscriber is created as it sends it (contract number spelt either way)
    response = client.post(SEED_CREATE.replace("contractnumber", spelling), **bearer)
    # then JSC ABC is there with every field it was sent
    assert response.status_code == 200
    subscriber = Subscriber.objects.get()
    assert response.json() == {"id": subscriber.pk, "accountnumber": "8640-fo",
                               "fullname": "JSC ABC"}
    assert (subscriber.group, subscriber.plan, subscriber.type) == (
        group, plan, SubscriberType.LEGAL_ENTITY)
    assert (subscriber.connection_date, subscriber.contract_number, subscriber.contract_date) == (
        date(2023, 6, 2), "247-23", date(2023, 6, 1))
    assert (subscriber.edrpou, subscriber.personal_code, subscriber.tax_code) == ("55667788", "", "")
    assert (subscriber.bank_code, subscriber.bank_name, subscriber.bank_account) == (
        "361234", "Кредобанк", "UA125438790123456")


def test_create_with_json_and_no_account_number_numbers_the_account_by_id(client, bearer):
    # when a subscriber is created from JSON with only a name
    response = client.post("/api/subscriber/create", {"FullName": "Ivan Petrenko"},
                           content_type="application/json", **bearer)
    # then its account number is its id; it is an individual in no department
    assert response.status_code == 200
    body = response.json()
    assert body["accountnumber"] == str(body["id"]) and body["fullname"] == "Ivan Petrenko"
    subscriber = Subscriber.objects.get()
    assert subscriber.group is None and subscriber.type == SubscriberType.INDIVIDUAL


@pytest.mark.parametrize(("query", "status", "message"), [
    ("departmentid=419", 400, "parameter 'fullname': is required"),
    ("fullname=X&subscribertype=9", 400, "parameter 'subscribertype': must be 0 (individual), "
                                         "1 (legal entity), 2 (service), 3 (budget) or 4 (privileged)"),
    ("fullname=X&connectiondate=2023-13-01", 400,
     "parameter 'connectiondate': '2023-13-01' is not a date yyyy-mm-dd"),
    ("fullname=X&departmentid=x", 400, "parameter 'departmentid': 'x' is not a whole number"),
    ("fullname=X&departmentid=999999", 404, "department 999999 not found"),
    ("fullname=X&rateplanid=999999", 404, "rate plan 999999 not found"),
    ("fullname=X&accountnumber=taken", 409, "account number 'taken' belongs to another subscriber"),
])
def test_create_errors(client, bearer, seed_ids, query, status, message):
    # given a subscriber holding the account number "taken"
    SubscriberFactory(account_number="taken")
    # when a subscriber is created with a parameter missing or wrong
    response = client.post("/api/subscriber/create?" + query, **bearer)
    # then the status and the message say which and why, and nobody is created
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert Subscriber.objects.count() == 1


def test_seed_example_adds_number_2001_on_pbx_292(client, bearer):
    # given subscriber 7334 and PBX 292 of the seed document
    subscriber, device = SubscriberFactory(id=7334), DeviceFactory(id=292)
    # when its number is added as it sends it
    response = client.post("/api/subscriber/dnadd/?SubscriberId=7334&DN=2001&description="
                           "&fromdate=2023-06-02&pbxid=292", **bearer)
    # then 7334 holds 2001 on 292 from 2 June 2023 on
    assert response.status_code == 200
    number = PhoneNumber.objects.get()
    assert response.json() == {"id": number.pk, "subscriberid": 7334, "pbxid": 292, "dn": "2001"}
    assert (number.subscriber, number.device, number.valid_from, number.valid_to) == (
        subscriber, device, date(2023, 6, 2), None)


def test_a_number_given_to_someone_later_ends_the_day_before(client, bearer):
    # given 2001 held by others until 31 May and again from 1 September
    subscriber, device = SubscriberFactory(), DeviceFactory()
    PhoneNumberFactory(device=device, dn="2001", valid_from=date(2023, 1, 1),
                       valid_to=date(2023, 5, 31))
    PhoneNumberFactory(device=device, dn="2001", valid_from=date(2023, 9, 1))
    # when it is given to a subscriber from 2 June
    response = client.post("/api/subscriber/dnadd", {"subscriberid": subscriber.pk, "dn": "2001",
                                                     "fromdate": "2023-06-02", "pbxid": device.pk},
                           content_type="application/json", **bearer)
    # then the holding ends on 31 August, the day before the next one
    assert response.status_code == 200
    assert PhoneNumber.objects.get(pk=response.json()["id"]).valid_to == date(2023, 8, 31)


@pytest.mark.parametrize(("query", "status", "message"), [
    ("dn=2001&fromdate=2023-06-02&pbxid={pbx}", 400, "parameter 'subscriberid': is required"),
    ("subscriberid={sub}&fromdate=2023-06-02&pbxid={pbx}", 400, "parameter 'dn': is required"),
    ("subscriberid={sub}&dn=20a1&fromdate=2023-06-02&pbxid={pbx}", 400,
     "parameter 'dn': '20a1' is not a phone number (digits, *, # or +, at most 32)"),
    ("subscriberid={sub}&dn=2001&pbxid={pbx}", 400, "parameter 'fromdate': is required"),
    ("subscriberid={sub}&dn=2001&fromdate=2023-06-02", 400, "parameter 'pbxid': is required"),
    ("subscriberid=999999&dn=2001&fromdate=2023-06-02&pbxid={pbx}", 404,
     "subscriber 999999 not found"),
    ("subscriberid={sub}&dn=2001&fromdate=2023-06-02&pbxid=999999", 404, "PBX 999999 not found"),
    ("subscriberid={sub}&dn=3001&fromdate=2023-06-02&pbxid={pbx}", 409,
     "number 3001 of {device} is held by subscriber {holder} on 2023-06-02"),
])
def test_number_add_errors(client, bearer, query, status, message):
    # given a subscriber, a PBX, and 3001 on it held by someone else
    subscriber, device = SubscriberFactory(), DeviceFactory()
    held = PhoneNumberFactory(device=device, dn="3001", valid_from=date(2023, 1, 1))
    values = {"sub": subscriber.pk, "pbx": device.pk, "device": device.name,
              "holder": held.subscriber_id}
    # when a number is added with a parameter missing or wrong, or one that is held
    response = client.post("/api/subscriber/dnadd?" + query.format(**values), **bearer)
    # then the status and the message say which and why, and no number is added
    assert response.status_code == status
    assert response.json() == {"message": message.format(**values)}
    assert PhoneNumber.objects.count() == 1


def test_discovery_lists_the_ids_subscriber_create_and_dnadd_take(client, bearer):
    # given a department, a rate plan and a PBX
    group = SubscriberGroupFactory(name="Sales")
    plan = TariffPlanFactory(name="Базовый")
    device = DeviceFactory(name="PBX-Kyiv")
    # when the departments, rate plans and PBXs are listed
    departments = client.get("/api/departments", **bearer).json()
    plans = client.get("/api/rateplans/", **bearer).json()
    pbxs = client.get("/api/pbxs", **bearer).json()
    # then each is there with its id and what tells it apart

    assert {"id": group.pk, "name": "Sales", "parentid": None, "nodeid": group.node_id,
            "node": group.node.name} in departments
    assert {"id": plan.pk, "name": "Базовый", "description": ""} in plans
    assert {"id": device.pk, "name": "PBX-Kyiv", "type": "3cx", "timezone": "Europe/Kyiv",
            "nodeid": device.node_id, "node": device.node.name} in pbxs


def test_discovery_needs_a_valid_token_but_no_right(client, db):
    # given a user without rights
    headers = bearer_of(make_user("reader", rights=[]))
    # when it lists departments, rate plans and PBXs, and when someone without a valid
    # token does; then the user is answered and the other is not
    for url in ("/api/departments", "/api/rateplans", "/api/pbxs"):
        assert client.get(url, **headers).status_code == 200
        assert client.get(url, HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401
