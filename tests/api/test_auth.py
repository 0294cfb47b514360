"""R10.1, R10.2: API users, `POST /api/auth`, tokens and rights per method."""
import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.core.management import CommandError, call_command

from api.auth import token_issue
from api.models import API_METHODS, ApiUser
from tests.api.conftest import CREDENTIALS, KEY, bearer_of, make_user

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/accounts/payments?id=1&fromdate=2023-01-01&todate=2023-12-31"
# One GET or POST per method, enough to get past authentication and rights.
METHODS = {
    "accounts.charges": ("get", "/api/accounts/charges?id=0&fromdate=2023-05-01&todate=2023-05-31"),
    "accounts.payment": ("post", "/api/accounts/payment?id=0&paymentday=2023-05-17&payment=1"),
    "accounts.payments": ("get", "/api/accounts/payments?id=0&fromdate=2023-05-01&todate=2023-05-31"),
    "subscriber.create": ("post", "/api/subscriber/create?fullname=X&departmentid=999999"),
    "subscriber.dnadd": ("post", "/api/subscriber/dnadd?subscriberid=0&dn=1&fromdate=2023-01-01&pbxid=0"),
    "subscriber.list": ("get", "/api/subscribers/999999"),
    "numbers.list": ("get", "/api/numbers?subscriberid=999999"),
    "calls.list": ("get", "/api/calls?fromdate=2023-05-01&todate=2023-05-31"),
    "tariffs.list": ("get", "/api/tariffs?date=2023-05-01"),
}
# What the request answers once past the rights check: the original's methods name ids that
# do not exist (404); the read methods answer empty lists.
ALLOWED = {"numbers.list": 200, "calls.list": 200, "tariffs.list": 200}


def test_auth_with_json_returns_a_six_hour_hs256_token(client, api_user):
    # given an API user, at noon
    now = datetime(2023, 6, 2, 12, tzinfo=UTC)
    # when it logs in with its name and password as JSON
    with time_machine.travel(now, tick=False):
        response = client.post("/api/auth", CREDENTIALS, content_type="application/json")
    # then it gets an HS256 token of its own, valid until 18:00
    assert response.status_code == 200
    body = response.json()
    assert body["expires"] == "2023-06-02T18:00:00Z"
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = jwt.decode(body["token"], KEY, algorithms=["HS256"],
                        options={"verify_exp": False})
    assert claims == {"sub": str(api_user.pk), "ver": api_user.token_version,
                      "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 6 * 3600}


@pytest.mark.parametrize("how", ["form", "query", "trailing slash", "upper-case names"])
def test_auth_accepts_form_query_and_the_originals_spellings(client, api_user, how):
    # given an API user
    # when it logs in with form fields, in the query, at /api/auth/ or with the original's
    # upper-case names
    if how == "form":
        response = client.post("/api/auth", CREDENTIALS)
    elif how == "query":
        response = client.post("/api/auth?username=integrator&password=s3cret-pass")
    elif how == "trailing slash":
        response = client.post("/api/auth/", CREDENTIALS, content_type="application/json")
    else:
        response = client.post("/api/auth", {"UserName": "integrator", "Password": "s3cret-pass"},
                               content_type="application/json")
    # then it gets a token either way
    assert response.status_code == 200
    assert set(response.json()) == {"token", "expires"}


@pytest.mark.parametrize(("username", "password"), [("integrator", "wrong"), ("nobody", "x")])
def test_wrong_credentials_answer_401(client, api_user, username, password):
    # given an API user
    # when someone logs in with a wrong password, or as a user that does not exist
    response = client.post("/api/auth", {"username": username, "password": password},
                           content_type="application/json")
    # then 401, without saying which was wrong
    assert response.status_code == 401
    assert response.json() == {"message": "wrong user name or password"}


def test_a_nul_character_in_a_parameter_is_a_clear_400(client, api_user):
    # given an API user
    # when a user name with a NUL character in it is sent (PostgreSQL refuses NUL in a
    # query: it must not reach the database; it gave a 500)
    response = client.post("/api/auth?username=inte%00grator&password=s3cret-pass")
    # then 400 names the parameter
    assert response.status_code == 400
    assert response.json() == {"message": "parameter 'username': contains a NUL character"}


def test_an_inactive_user_cannot_log_in(client, api_user):
    # given an API user made inactive
    ApiUser.objects.filter(pk=api_user.pk).update(active=False)
    # when it logs in with its right password
    response = client.post("/api/auth", CREDENTIALS)
    # then 401
    assert response.status_code == 401


def test_missing_credentials_answer_400_naming_the_parameter(client, db):
    # when someone logs in without a password
    response = client.post("/api/auth", {"username": "integrator"},
                           content_type="application/json")
    # then 400 names it
    assert response.status_code == 400
    assert "password" in response.json()["message"]


def test_repeated_failed_logins_are_throttled_but_successes_are_not(client, api_user, settings):
    # given three failed logins a minute allowed, and five good logins (not counted) and
    # three failed ones made
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"api_auth": "3/min"}}
    for _ in range(5):
        assert client.post("/api/auth", CREDENTIALS).status_code == 200
    for _ in range(3):
        assert client.post("/api/auth", {**CREDENTIALS, "password": "guess"}).status_code == 401
    # when the user logs in once more, with the right password
    response = client.post("/api/auth", CREDENTIALS)
    # then it is throttled: 429, with a message
    assert response.status_code == 429
    assert "message" in response.json()


def test_every_method_needs_a_token(client, db):
    # given no token; when each method is called; then 401, asking for a bearer token
    for verb, url in METHODS.values():
        response = getattr(client, verb)(url)
        assert response.status_code == 401, url
        assert response.json() == {"message": "a bearer token from /api/auth is required"}
        assert response["WWW-Authenticate"] == "Bearer"
    for url in ("/api/departments", "/api/rateplans", "/api/pbxs"):
        assert client.get(url).status_code == 401


def test_an_expired_token_answers_401(client, api_user):
    # given a token issued six hours and a second ago
    token, _ = token_issue(api_user, now=datetime.now(UTC) - timedelta(hours=6, seconds=1))
    # when it is used
    response = client.get(PAYMENTS, HTTP_AUTHORIZATION=f"Bearer {token}")
    # then 401 says it has expired
    assert response.status_code == 401
    assert response.json() == {"message": "the token has expired"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_tokens_answer_401(client, api_user):
    # given tokens unsigned, signed with another key or algorithm, without an expiry or an
    # issue time, or with another user put in; and one made right
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(api_user.pk), "ver": api_user.token_version, "iat": now,
              "exp": now + 3600}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    wrong_key = jwt.encode(claims, "another-key-" + "x" * 32, algorithm="HS256")
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, KEY, algorithm="HS256")
    no_iat = jwt.encode({k: v for k, v in claims.items() if k != "iat"}, KEY, algorithm="HS256")
    hs512 = jwt.encode(claims, KEY, algorithm="HS512")
    good = jwt.encode(claims, KEY, algorithm="HS256")
    header, payload, signature = good.split(".")
    other_user = f"{header}.{_b64({**claims, 'sub': str(api_user.pk + 1)})}.{signature}"
    # when each is used; then each but the right one answers 401, "not valid"
    for token in (unsigned, wrong_key, no_exp, no_iat, hs512, other_user, "garbage"):
        response = client.get(PAYMENTS, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, token
        assert response.json() == {"message": "the token is not valid"}
    assert client.get(PAYMENTS, HTTP_AUTHORIZATION=f"Bearer {good}").status_code == 404


def test_a_password_or_rights_change_revokes_older_tokens(client, api_user):
    # given a token, and then the user's password changed
    old = bearer_of(api_user)
    api_user.set_password("new-pass")
    api_user.save()
    # when the token is used
    response = client.get(PAYMENTS, **old)
    # then 401 says why
    assert response.status_code == 401
    assert "password or rights changed" in response.json()["message"]
    # and a newer token is refused too once the user's rights are set again
    newer = bearer_of(api_user)
    api_user.set_rights(API_METHODS)
    api_user.save()
    assert client.get(PAYMENTS, **newer).status_code == 401


def test_a_deactivated_users_token_stops_working(client, api_user):
    # given a token, and then its user deactivated
    headers = bearer_of(api_user)
    ApiUser.objects.filter(pk=api_user.pk).update(active=False)
    # when the token is used; then 401
    assert client.get(PAYMENTS, **headers).status_code == 401


@pytest.mark.parametrize("method", API_METHODS)
def test_a_method_needs_its_right(client, db, method):
    # given a user with every right but the method's, and one with only that right
    without = make_user("without", rights=[m for m in API_METHODS if m != method])
    only = make_user("only", rights=[method])
    verb, url = METHODS[method]
    # when each calls the method
    denied = getattr(client, verb)(url, **bearer_of(without))
    allowed = getattr(client, verb)(url, **bearer_of(only))
    # then the first is refused naming the right, the second gets past the rights check
    assert denied.status_code == 403
    assert denied.json() == {"message": f"the API user has no right to {method}"}
    assert allowed.status_code == ALLOWED.get(method, 404)


def test_without_a_key_the_api_answers_503(client, api_user, settings):
    # given no signing key configured
    settings.API_JWT_KEY = ""
    # when a user logs in
    response = client.post("/api/auth", CREDENTIALS)
    # then 503 names the missing setting
    assert response.status_code == 503
    assert "API_JWT_KEY" in response.json()["message"]


def test_observer_tokens_still_reach_the_observer_endpoints(client, db):
    # when an observer's token (obs_...) is sent to an observer endpoint
    response = client.get("/api/observer/profile", HTTP_AUTHORIZATION="Bearer obs_unknown")
    # then the observer endpoint judges it, not the API's JWT check
    assert response.status_code in (401, 403)


def test_create_api_user_command_creates_and_updates(db):
    # when the command creates user crm with every right; then it has them and its password
    call_command("create_api_user", "crm", "--password", "p1", "--rights", "all")
    user = ApiUser.objects.get(name="crm")
    assert user.rights == sorted(API_METHODS) and user.check_password("p1")
    version = user.token_version
    # when it is run again for crm with two rights and another password
    call_command("create_api_user", "crm", "--password", "p2",
                 "--rights", "accounts.charges,accounts.payments")
    # then the user is updated and its older tokens revoked
    user.refresh_from_db()
    assert user.rights == ["accounts.charges", "accounts.payments"]
    assert user.check_password("p2") and user.token_version > version
    # and an unknown right is refused
    with pytest.raises(CommandError, match="unknown API methods: accounts.delete"):
        call_command("create_api_user", "crm", "--password", "p", "--rights", "accounts.delete")
