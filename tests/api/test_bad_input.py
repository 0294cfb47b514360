"""R10.8, R12.2: input that used to get a server error, or to slip through, answers 400 with
a message naming the parameter, and writes nothing."""
import pytest

from billing.models import Payment
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_a_payment_too_large_to_quantise_is_refused_not_a_server_error(client, bearer):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when a payment of 1e26 is posted (29 digits with its cents: past Decimal's precision)
    response = client.post(f"/api/accounts/payment?id={subscriber.pk}&paymentday=2024-06-01"
                           "&payment=1e26", **bearer)
    # then it is refused, naming the parameter, and no payment is written
    assert response.status_code == 400
    assert response.json() == {"message": "parameter 'payment': must have at most 2 decimal "
                                          "places and 12 digits"}
    assert not Payment.objects.exists()


@pytest.mark.parametrize("query", [
    "id={id}&fromdate=2024-06-01&todate=2024-06-30&id=0",
    "id={id}&fromdate=2024-06-01&todate=2024-06-30&ID={id}",
])
def test_a_parameter_given_twice_is_refused_naming_it(client, bearer, query):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when a request names `id` twice (in any spelling of the name)
    response = client.get("/api/accounts/charges?" + query.format(id=subscriber.pk), **bearer)
    # then it is refused rather than answered for one of the two
    assert response.status_code == 400
    assert response.json() == {"message": "parameter 'id': is given more than once; give it once"}


def test_a_form_field_given_twice_is_refused_naming_it(client, bearer):
    # given a subscriber
    subscriber = SubscriberFactory()
    # when a payment's form names the amount twice
    response = client.post("/api/accounts/payment", data={
        "id": subscriber.pk, "paymentday": "2024-06-01", "payment": ["10", "1000"]}, **bearer)
    # then it is refused, and nothing is written
    assert response.status_code == 400
    assert response.json()["message"] == "parameter 'payment': is given more than once; give it once"
    assert not Payment.objects.exists()


def test_a_nul_character_in_a_query_parameter_is_refused(client, bearer):
    # when a list is asked for with a NUL in a parameter
    response = client.get("/api/accounts/charges?id=1%00&fromdate=2024-06-01&todate=2024-06-30",
                          **bearer)
    # then the answer is 400 in the API's shape, naming the parameter
    assert response.status_code == 400
    assert response.json() == {"message": "parameter 'id': contains a NUL character"}


def test_the_remote_observer_methods_answer_errors_as_message(client):
    # when a remote observer's call comes without a token
    response = client.post("/api/observer/ingest", data=b"x",
                           content_type="application/octet-stream")
    # then the error has the API's documented shape
    assert response.status_code == 401
    assert set(response.json()) == {"message"}
