"""The web login (/accounts/login/): failed attempts are limited per account and per client
address; it had no limit (30 wrong passwords, then the right one, worked)."""
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(settings):
    settings.LOGIN_FAILURES_RATE = "5/min"
    cache.clear()  # the failures counted by other tests
    yield User.objects.create_user("operator", password="pw-operator-1")
    cache.clear()


def _login(client, password, *, username="operator", address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, operator):
    # when 30 wrong passwords are tried
    codes = [_login(client, "guess").status_code for _ in range(30)]
    # then five are checked (the form again, 200) and the rest refused
    assert codes == [200] * 5 + [429] * 25
    # and the right password is refused too while the limit holds, with a message
    response = _login(client, "pw-operator-1")
    assert response.status_code == 429
    assert "Too many failed logins. Try again in" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_account_is_limited_from_every_address(client, operator):
    # when the account's password is guessed from many addresses
    for n in range(5):
        _login(client, "guess", address=f"10.0.1.{n}")
    # then a sixth address is refused for that account
    assert _login(client, "pw-operator-1", address="10.0.2.1").status_code == 429


def test_below_the_limit_the_right_password_logs_in(client, operator):
    # given four wrong passwords
    for _ in range(4):
        _login(client, "guess")
    # when the right one follows
    response = _login(client, "pw-operator-1")
    # then the operator is logged in
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)
