"""R6.1: subscribers and their personal account numbers."""
import pytest

from billing.models import Subscriber
from billing.subscribers import Conflict, subscriber_create

pytestmark = pytest.mark.django_db


def test_a_subscriber_without_an_account_number_gets_its_id():
    alice = subscriber_create(full_name="Alice")
    assert alice.account_number == str(alice.pk)


def test_an_id_given_by_hand_to_someone_else_is_not_generated_twice():
    # given a subscriber, and the next one given by hand the number the one after will
    # get as its id (ids come one after another here)
    first = subscriber_create(full_name="First")
    taken = str(first.pk + 2)
    bob = subscriber_create(full_name="Bob", account_number=taken)
    # when a subscriber is created without a number
    carol = subscriber_create(full_name="Carol")
    # then it is not refused, and its number is its id with a suffix
    assert carol.pk == first.pk + 2
    assert carol.account_number == f"{carol.pk}-1"
    assert Subscriber.objects.get(pk=bob.pk).account_number == taken


def test_an_account_number_in_use_is_refused():
    subscriber_create(full_name="Alice", account_number="A-100")
    with pytest.raises(Conflict, match="account number 'A-100' belongs to another subscriber"):
        subscriber_create(full_name="Bob", account_number="A-100")
