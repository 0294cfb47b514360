"""R12.2: a NUL character in a page's search answers 400 naming the parameter (it was a
server error on PostgreSQL, which refuses NUL in a query)."""
import pytest
from django.contrib.auth.models import User

from tests.factories import ObserverProfileFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(User.objects.create_user("operator", password="pw-operator-1"))
    return client


@pytest.mark.parametrize("page", ["/subscribers/?q=%00", "/subscribers/?q=Iv%00an&page=1",
                                  "/observers/{profile}/rejects?q=%00"])
def test_a_search_with_a_nul_character_is_a_400_naming_it(operator, page):
    # given a subscriber and an observer profile
    SubscriberFactory(full_name="Ivan Petrenko")
    profile = ObserverProfileFactory(name="PBX1")
    # when a page is searched with a NUL character
    response = operator.get(page.format(profile=profile.name))
    # then it answers 400 with what is wrong, not a server error
    assert response.status_code == 400
    assert response.content.decode() == "parameter 'q': contains a NUL character"


def test_a_search_without_one_is_served(operator):
    # given a subscriber
    SubscriberFactory(full_name="Ivan Petrenko")
    # when the subscribers page is searched for part of the name
    response = operator.get("/subscribers/?q=Petr")
    # then the page lists the subscriber
    assert response.status_code == 200
    assert "Ivan Petrenko" in response.content.decode()
