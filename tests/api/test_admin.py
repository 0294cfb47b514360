"""R11.1: API users, charges, payments and holidays are managed in the admin."""
import pytest

from api.models import ApiUser
from tests.api.conftest import make_user
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_an_api_user_is_created_with_a_password_and_rights_in_the_admin(admin_client, client):
    # when an administrator adds an API user with two rights
    response = admin_client.post("/admin/api/apiuser/add/", {
        "name": "erp", "active": "on", "new_password": "erp-password-1",
        "method_rights": ["accounts.charges", "accounts.payments"]})
    # then it exists with those rights, and can log in to the API with that password
    assert response.status_code == 302, response.content.decode()[:2000]
    user = ApiUser.objects.get(name="erp")
    assert user.rights == ["accounts.charges", "accounts.payments"]
    login = client.post("/api/auth", {"username": "erp", "password": "erp-password-1"},
                        content_type="application/json")
    assert login.status_code == 200 and "token" in login.json()


def test_changing_rights_in_the_admin_ends_older_tokens(admin_client):
    # given an API user
    user = make_user("crm", password="crm-password-1", rights=["accounts.charges"])
    version = user.token_version
    # when its rights change in the admin (password left empty)
    admin_client.post(f"/admin/api/apiuser/{user.pk}/change/", {
        "name": "crm", "active": "on", "new_password": "",
        "method_rights": ["accounts.charges", "subscriber.create"]})
    # then the rights are new, the password unchanged, and the token version moved on
    user.refresh_from_db()
    assert user.rights == ["accounts.charges", "subscriber.create"]
    assert user.check_password("crm-password-1") and user.token_version > version


@pytest.mark.parametrize("url", ["/admin/billing/charge/", "/admin/billing/payment/",
                                 "/admin/billing/holiday/", "/admin/api/apiuser/",
                                 "/admin/billing/device/add/"])
def test_admin_pages_open(admin_client, url):
    # given a subscriber; when the page is opened; then it answers
    SubscriberFactory()
    assert admin_client.get(url).status_code == 200
