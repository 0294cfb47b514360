"""R11.1: the operators' roles, as Django groups that the system keeps in step with its
permissions after every migrate: a user is given a role by joining its group (Settings ›
Administration › Users), and every page checks the permissions, never the group's name.

- Read-only operator: sees everything of the operator's pages, changes nothing.
- Billing operator: also keeps subscribers, their numbers, payments and recurring
  services, closes and reopens subscribers, and edits limits and authorization codes.
- Administrator: every permission of the system's own apps (not of Django's user
  accounts: making users and giving rights stays with superusers).
"""
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

APPS = ("billing", "tariffs", "observers", "restrictions", "scripts", "reports", "api")

READ_ONLY = "Read-only operator"
BILLING = "Billing operator"
ADMINISTRATOR = "Administrator"

# What a billing operator may change, besides seeing everything: (app, model) pairs.
BILLING_MODELS = (
    ("billing", "subscriber"), ("billing", "phonenumber"), ("billing", "payment"),
    ("billing", "recurringservice"), ("restrictions", "closure"), ("restrictions", "limit"),
    ("restrictions", "authcode"),
)


def _ours():
    return Permission.objects.filter(content_type__app_label__in=APPS)


def role_permissions() -> dict[str, set[int]]:
    """Each role's permissions (ids) as the system defines it now."""
    ours = _ours()
    views = set(ours.filter(codename__startswith="view_").values_list("pk", flat=True))
    changes = Q()
    for app, model in BILLING_MODELS:
        changes |= Q(content_type__app_label=app, content_type__model=model)
    billing = views | set(ours.filter(changes).exclude(codename__startswith="view_")
                          .values_list("pk", flat=True))
    return {READ_ONLY: views, BILLING: billing,
            ADMINISTRATOR: set(ours.values_list("pk", flat=True))}


def roles_sync(**_) -> None:
    """Make the three groups hold exactly their role's permissions (post_migrate)."""
    for name, permissions in role_permissions().items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
