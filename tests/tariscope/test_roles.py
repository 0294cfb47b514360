"""R11.1: the operators' roles (tariscope/roles.py) as groups kept in step after migrate,
and what each lets its members do on the pages."""
import pytest
from django.contrib.auth.models import Group, User

from restrictions.models import Closure
from tariscope.roles import ADMINISTRATOR, BILLING, READ_ONLY, roles_sync

pytestmark = pytest.mark.django_db


def member(client, role: str):
    user = User.objects.create_user(role.split()[0].lower(), password="pw-role-1")
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def test_the_three_roles_exist_after_migrate_with_their_permissions():
    # given the test database, migrated
    groups = {group.name: {f"{p.content_type.app_label}.{p.codename}"
                           for p in group.permissions.select_related("content_type")}
              for group in Group.objects.filter(name__in=(READ_ONLY, BILLING, ADMINISTRATOR))}
    # then each role holds what it says, and no role touches Django's user accounts
    assert {"billing.view_call", "restrictions.view_closure"} <= groups[READ_ONLY]
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_"))
                   for p in groups[READ_ONLY])
    assert {"billing.change_subscriber", "billing.add_payment", "restrictions.add_closure",
            "restrictions.change_limit"} <= groups[BILLING]
    assert "tariffs.change_tariff" not in groups[BILLING]
    assert {"tariffs.change_tariff", "observers.change_observerprofile",
            "scripts.change_mailsettings"} <= groups[ADMINISTRATOR]
    assert not any(p.startswith("auth.") for role in groups.values() for p in role)


def test_a_role_changed_by_hand_is_set_back_by_the_next_migrate():
    # given a permission an administrator added to the read-only role by hand
    group = Group.objects.get(name=READ_ONLY)
    group.permissions.add(*Group.objects.get(name=ADMINISTRATOR).permissions.all()[:1])
    # when the roles are synced (as after a migrate)
    roles_sync()
    # then the role holds views only again
    assert not group.permissions.exclude(codename__startswith="view_").exists()


def test_a_read_only_operator_sees_the_pages_and_cannot_close_anyone(client, site):
    viewer = member(client, READ_ONLY)
    assert viewer.get("/restrictions/").status_code == 200
    assert viewer.get("/calls/").status_code == 200
    response = viewer.post("/restrictions/close", {"subscriber": site.subscriber.full_name,
                                                   "reason": "test"})
    assert response.status_code == 403 and not Closure.objects.exists()


def test_a_billing_operator_closes_a_subscriber(client, site):
    operator = member(client, BILLING)
    operator.post("/restrictions/close", {"subscriber": site.subscriber.account_number,
                                          "reason": "no payment"})
    assert Closure.objects.get().subscriber == site.subscriber
