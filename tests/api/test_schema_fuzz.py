"""R10: the OpenAPI schema is public and describes every method; schemathesis, generating
requests from it, finds no server error (5xx) in any API method."""
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tariscope.wsgi import application
from tests.api.conftest import bearer_of, make_user
from tests.factories import PhoneNumberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


# Read through the WSGI app when collected: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def _keep_connection():
    # Called through the WSGI app (not Django's test client), a request's start and end would close the
    # test's database connection and lose its transaction; the test client disconnects the
    # same handler.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def everything(db, _keep_connection):
    # Something for the ids to find: a subscriber with a number on a PBX.
    number = PhoneNumberFactory(subscriber=SubscriberFactory(id=1))
    # Called through the WSGI app, the header goes by its HTTP name.
    return number, {"Authorization": bearer_of(make_user(name="fuzzer"))["HTTP_AUTHORIZATION"]}


@schema.parametrize()
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_method_answers_a_server_error(case, everything):
    # given a token of a user with every right (an observer's token, made up, for the
    # observer methods)
    _, headers = everything
    if case.path.startswith("/api/observer"):
        headers = {"Authorization": "Bearer obs_not-a-real-token"}
    # when a request generated from the schema is sent; then it is answered below 500
    case.call_and_validate(app=application, headers=headers, checks=[not_a_server_error])


def test_schema_and_docs_page_are_public_and_offline(client):
    # when the schema and the docs page are asked for, without a token
    schema_response = client.get("/api/schema/")
    docs = client.get("/api/docs/")
    # then both are served; the schema names every method, and the page loads nothing
    # from elsewhere
    assert schema_response.status_code == 200 and docs.status_code == 200
    text = schema_response.content.decode()
    for path in ("/api/accounts/charges", "/api/subscriber/dnadd", "/api/subscribers/{id}",
                 "/api/calls", "/api/tariffs", "/api/observer/ingest", "bearer"):
        assert path in text
    page = docs.content.decode()
    assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
                      ).status_code == 200


@pytest.mark.parametrize("url", [
    "/api/accounts/charges?id=99999999999999999999&fromdate=2023-01-01&todate=2023-01-02",
    "/api/subscribers?departmentid=99999999999999999999",
    "/api/tariffs?planid=99999999999999999999",
    "/api/calls?fromdate=0001-01-01&todate=9999-12-31",
])
def test_ids_and_dates_out_of_range_answer_400_not_500(client, bearer, url):
    # when an id beyond 64 bits, or a period at the very ends of the calendar, is sent
    response = client.get(url, **bearer)
    # then 400 names the parameter
    assert response.status_code == 400
    assert "parameter '" in response.json()["message"]
