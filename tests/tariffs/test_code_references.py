"""R4.1: a code's references (its tariff, its operator) hold in the database itself, for
any writer, although they are checked per statement by triggers rather than by foreign
keys (tariffs.models.PhoneCode says why; migration 0003 has the triggers)."""
import datetime

import pytest
from django.db import IntegrityError, connection, transaction

from tariffs.models import Operator, PhoneCode, Tariff
from tests.conftest import pg_race
from tests.factories import OperatorFactory, TariffFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2024, 1, 1)


def insert_code(code: str, *, operator_id: int, tariff_id: int) -> None:
    """A code written in SQL, as another program (or a careless script) would."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO tariffs_phonecode (operator_id, code, name, tariff_id, "
                       "category, valid_from) VALUES (%s, %s, '', %s, '', %s)",
                       [operator_id, code, tariff_id, DAY])


def test_a_code_of_an_existing_tariff_of_its_operator_is_written():
    tariff = TariffFactory()
    insert_code("380", operator_id=tariff.operator_id, tariff_id=tariff.pk)
    assert PhoneCode.objects.get(code="380").tariff == tariff


def test_a_code_whose_tariff_does_not_exist_is_refused():
    # given an operator and no tariff 999999
    operator = OperatorFactory()
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_code("380", operator_id=operator.pk, tariff_id=999_999)
    assert not PhoneCode.objects.exists()


def test_a_code_whose_tariff_is_another_operators_is_refused():
    # given a tariff of Kyivstar and the operator Vodafone
    tariff = TariffFactory(operator=OperatorFactory(name="Kyivstar"))
    vodafone = OperatorFactory(name="Vodafone")
    # when a code of Vodafone names Kyivstar's tariff, through the ORM or in SQL
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneCode.objects.create(operator=vodafone, code="380", tariff=tariff, valid_from=DAY)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_code("381", operator_id=vodafone.pk, tariff_id=tariff.pk)
    # then neither is written
    assert not PhoneCode.objects.exists()


def test_a_code_cannot_be_moved_to_another_operators_tariff():
    # given a code of Kyivstar and a tariff of Vodafone
    kyivstar_tariff = TariffFactory(operator=OperatorFactory(name="Kyivstar"))
    vodafone_tariff = TariffFactory(operator=OperatorFactory(name="Vodafone"))
    code = PhoneCode.objects.create(operator_id=kyivstar_tariff.operator_id, code="380",
                                    tariff=kyivstar_tariff, valid_from=DAY)
    # when it is moved to Vodafone's tariff without its operator / then it is refused
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneCode.objects.filter(pk=code.pk).update(tariff=vodafone_tariff)
    # and moved with its operator, it is allowed
    PhoneCode.objects.filter(pk=code.pk).update(tariff=vodafone_tariff,
                                                operator=vodafone_tariff.operator_id)
    assert PhoneCode.objects.get(pk=code.pk).tariff == vodafone_tariff


def test_a_tariff_with_codes_cannot_move_to_another_operator():
    # given a tariff of Kyivstar with a code, an empty tariff, and the operator Vodafone
    tariff = TariffFactory(operator=OperatorFactory(name="Kyivstar"))
    empty = TariffFactory(operator=tariff.operator)
    vodafone = OperatorFactory(name="Vodafone")
    insert_code("380", operator_id=tariff.operator_id, tariff_id=tariff.pk)
    # when / then: the one with a code cannot move, the empty one can
    with pytest.raises(IntegrityError), transaction.atomic():
        Tariff.objects.filter(pk=tariff.pk).update(operator=vodafone)
    Tariff.objects.filter(pk=empty.pk).update(operator=vodafone)
    assert Tariff.objects.get(pk=tariff.pk).operator.name == "Kyivstar"
    assert Tariff.objects.get(pk=empty.pk).operator == vodafone


def test_a_tariff_deleted_in_sql_takes_its_codes_with_it():
    # given two tariffs with two codes each
    first, second = TariffFactory(), TariffFactory()
    for tariff, codes in ((first, ("380", "381")), (second, ("44", "45"))):
        for code in codes:
            insert_code(code, operator_id=tariff.operator_id, tariff_id=tariff.pk)
    # when the first is deleted in SQL, bypassing the ORM's cascade
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tariffs_tariff WHERE id = %s", [first.pk])
    # then its codes went with it, and no others
    assert sorted(PhoneCode.objects.values_list("code", flat=True)) == ["44", "45"]


def test_an_operator_deleted_through_the_orm_takes_its_tariffs_and_codes():
    tariff = TariffFactory()
    insert_code("380", operator_id=tariff.operator_id, tariff_id=tariff.pk)
    Operator.objects.filter(pk=tariff.operator_id).delete()
    assert not Tariff.objects.exists()
    assert not PhoneCode.objects.exists()


# Concurrency (PostgreSQL): what the foreign keys' row locks did --------------------------

ADD_CODE = ("INSERT INTO tariffs_phonecode (operator_id, code, name, tariff_id, category, "
            "valid_from) VALUES (%s, '380', '', %s, '', %s)")


@pytest.mark.postgres
def test_a_tariff_deleted_while_codes_are_added_to_it_takes_them_too(postgres, transactional_db):
    # given a committed tariff, and a transaction that has added a code to it (uncommitted)
    tariff = TariffFactory()
    adding = (ADD_CODE, [tariff.operator_id, tariff.pk, DAY])
    # when another transaction deletes the tariff, it waits for the first (the code's check
    # locked the tariff); once the code is committed, the delete goes on
    outcome = pg_race(adding, ("DELETE FROM tariffs_tariff WHERE id = %s", [tariff.pk]))
    # then it took the code with it
    assert outcome == "committed"
    assert not Tariff.objects.filter(pk=tariff.pk).exists()
    assert not PhoneCode.objects.filter(tariff_id=tariff.pk).exists()


@pytest.mark.postgres
def test_codes_added_to_a_tariff_being_deleted_are_refused(postgres, transactional_db):
    # given a committed tariff, and a transaction that has deleted it (uncommitted)
    tariff = TariffFactory()
    deleting = ("DELETE FROM tariffs_tariff WHERE id = %s", [tariff.pk])
    # when another transaction adds a code to it, it waits for the delete; once that is
    # committed, the code is refused
    outcome = pg_race(deleting, (ADD_CODE, [tariff.operator_id, tariff.pk, DAY]))
    # then
    assert outcome == "23503"  # foreign_key_violation
    assert not PhoneCode.objects.filter(tariff_id=tariff.pk).exists()
