"""Fixtures of the REST API tests: a signing key, a clean throttle cache, API users."""
import pytest
from django.core.cache import cache

from api.auth import token_issue
from api.models import API_METHODS, ApiUser

PASSWORD = "s3cret-pass"
KEY = "test-only-api-jwt-key-" + "0123456789abcdef" * 4


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


@pytest.fixture
def bearer(api_user):
    """Authorization header of a token for `api_user` (all rights)."""
    token, _ = token_issue(api_user)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def bearer_of(user: ApiUser) -> dict:
    token, _ = token_issue(user)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
