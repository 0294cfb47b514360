"""R10.2: failed logins at /api/auth are limited per client address and per account; a
forged X-Forwarded-For does not escape the limit (it used to: each new header was a new
address)."""
import random

import pytest

from tests.api.conftest import CREDENTIALS


@pytest.fixture
def three_a_minute(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"api_auth": "3/min"}}


def _guess(client, *, forwarded=None, address="10.0.0.1", username="integrator"):
    headers = {"REMOTE_ADDR": address}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post("/api/auth", {"username": username, "password": "guess"}, **headers)


def _random_address() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


def test_a_forged_forwarded_for_header_does_not_escape_the_limit(client, api_user, three_a_minute):
    # given a server not behind a proxy
    # when 60 wrong passwords come from one address, each with another X-Forwarded-For
    codes = [_guess(client, forwarded=_random_address()).status_code for _ in range(60)]
    # then three are checked, and the rest refused without hashing a password
    assert codes == [401] * 3 + [429] * 57


def test_one_account_is_limited_whatever_the_address(client, api_user, three_a_minute):
    # when an account's password is guessed from many addresses
    codes = [_guess(client, address=_random_address()).status_code for _ in range(10)]
    # then the account is limited after three, and its right password waits too
    assert codes == [401] * 3 + [429] * 7
    response = client.post("/api/auth", CREDENTIALS, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 429
    assert response.json()["message"].startswith("too many failed logins; try again in ")
    assert 0 < int(response["Retry-After"]) <= 60


def test_one_address_is_limited_whatever_the_account(client, api_user, three_a_minute):
    # when one address tries many user names
    codes = [_guess(client, username=f"user{n}").status_code for n in range(6)]
    # then it is limited after three
    assert codes == [401] * 3 + [429] * 3


def test_behind_a_proxy_the_address_the_proxy_saw_counts(client, api_user, three_a_minute,
                                                         settings):
    # given a server behind one proxy, which appends the address it saw
    # (BEHIND_PROXY=true, PROXY_COUNT=1 give DRF's NUM_PROXIES=1: settings.py)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # when guesses come through it from one client that forges the start of the header,
    # each time with another user name
    codes = [_guess(client, forwarded=f"{_random_address()}, 203.0.113.7", address="10.0.0.1",
                    username=f"user{n}").status_code for n in range(5)]
    # then the client (203.0.113.7) is limited
    assert codes == [401] * 3 + [429] * 2
    # and another client behind the same proxy is not
    assert _guess(client, forwarded="198.51.100.1", username="someone").status_code == 401
