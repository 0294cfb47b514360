"""R6.2: one number of one device is held by one subscriber at a time, whoever writes the
periods (number_add, the admin, two requests at once, SQL): migration billing 0005."""
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import PhoneNumber
from tests.conftest import pg_race
from tests.factories import DeviceFactory, PhoneNumberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_periods_one_after_another_are_allowed():
    device = DeviceFactory()
    PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 1, 1),
                       valid_to=date(2024, 1, 31))
    PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 2, 1))
    # the same number on another device, and another number, at the same time
    PhoneNumberFactory(device=DeviceFactory(), dn="101", valid_from=date(2024, 1, 1))
    PhoneNumberFactory(device=device, dn="102", valid_from=date(2024, 1, 1))
    assert PhoneNumber.objects.count() == 4


@pytest.mark.parametrize(("valid_from", "valid_to"), [
    (date(2024, 1, 31), None),                   # starts on its last day
    (date(2023, 12, 1), date(2024, 1, 1)),       # ends on its first day
    (date(2024, 1, 10), date(2024, 1, 20)),      # inside it
    (date(2023, 1, 1), None),                    # around it, open
])
def test_a_period_overlapping_another_is_refused_by_the_database(valid_from, valid_to):
    # given 101 held through January 2024
    device = DeviceFactory()
    PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 1, 1),
                       valid_to=date(2024, 1, 31))
    # when another holding of 101 overlapping January is written past number_add
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.create(subscriber=SubscriberFactory(), device=device, dn="101",
                                   valid_from=valid_from, valid_to=valid_to)
    # then it is not there
    assert PhoneNumber.objects.count() == 1


def test_a_period_stretched_over_the_next_one_is_refused():
    device = DeviceFactory()
    january = PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 1, 1),
                                 valid_to=date(2024, 1, 31))
    PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 2, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.filter(pk=january.pk).update(valid_to=None)
    assert PhoneNumber.objects.get(pk=january.pk).valid_to == date(2024, 1, 31)


@pytest.mark.postgres
def test_a_number_given_to_two_subscribers_at_once_is_held_by_the_first(postgres,
                                                                        transactional_db):
    # given a number nobody holds, and a transaction that has given it to Alice from
    # January (uncommitted)
    device = DeviceFactory()
    alice, bob = SubscriberFactory(), SubscriberFactory()
    insert = ("INSERT INTO billing_phonenumber (subscriber_id, device_id, dn, description, "
              "valid_from) VALUES (%s, %s, '101', '', %s)")
    # when another gives it to Bob from February, it waits for the first; once that is
    # committed, it is refused
    outcome = pg_race((insert, [alice.pk, device.pk, date(2024, 1, 1)]),
                      (insert, [bob.pk, device.pk, date(2024, 2, 1)]))
    # then Alice holds it
    assert outcome == "23P01"  # exclusion_violation
    assert list(PhoneNumber.objects.filter(dn="101").values_list("subscriber", flat=True)) == [
        alice.pk]


def test_a_form_is_told_whose_period_a_new_one_overlaps():
    # given 101 held by Alice from January 2024
    device = DeviceFactory()
    PhoneNumberFactory(device=device, dn="101", valid_from=date(2024, 1, 1),
                       subscriber=SubscriberFactory(full_name="Alice"))
    # when a holding from March is checked as the admin's form checks it
    holding = PhoneNumber(subscriber=SubscriberFactory(), device=device, dn="101",
                          valid_from=date(2024, 3, 1))
    with pytest.raises(ValidationError) as refused:
        holding.full_clean()
    # then the message names the holder and the period
    assert refused.value.messages == [
        "101 is held by Alice from 2024-01-01 on; periods of one number cannot overlap."]
    # and after Alice's period ends in February, it is fine
    PhoneNumber.objects.filter(dn="101").update(valid_to=date(2024, 2, 29))
    holding.full_clean()
