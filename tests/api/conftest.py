"""Fixtures of the REST API tests: a signing key, a clean throttle cache, API users."""
import pytest
from django.core.cache import cache

from api.auth import token_issue
from api.models import API_METHODS, ApiUser

PASSWORD = "s3cret-pass"
KEY = "test-only-api-jwt-key-" + "0123456789abcdef" * 4
# What `api_user` logs in with; the seed document sends them in the body of every request.
CREDENTIALS = {"username": "integrator", "password": PASSWORD}


@pytest.fixture(autouse=True)
def _api_settings(settings):
    settings.API_JWT_KEY = KEY
    cache.clear()
    yield
    cache.clear()


def make_user(name="integrator", password=PASSWORD, rights=API_METHODS) -> ApiUser:
    user = ApiUser(name=name)
    user.set_password(password)
    user.set_rights(rights)
    user.save()
    return user


@pytest.fixture
def api_user(db):
    return make_user()


def bearer_of(user: ApiUser) -> dict:
    """The Authorization header of a fresh token for `user`, as the test client takes it."""
    token, _ = token_issue(user)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def bearer(api_user):
    """The Authorization header of a token for `api_user` (all rights)."""
    return bearer_of(api_user)
