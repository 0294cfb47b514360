"""R10.1: `manage.py create_api_user NAME --password P --rights all|m1,m2`: create an API
user, or change an existing one's password and rights (its older tokens stop working)."""
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api.models import API_METHODS, ApiUser


def _rights(value: str) -> list[str]:
    if value.strip().lower() == "all":
        return list(API_METHODS)
    rights = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(rights) - set(API_METHODS))
    if unknown:
        raise CommandError(f"unknown API methods: {', '.join(unknown)} "
                           f"(known: {', '.join(API_METHODS)}, or all)")
    return rights


class Command(BaseCommand):
    help = "Create or update a REST API user with rights to methods."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--password", required=True)
        parser.add_argument("--rights", default="",
                            help=f"all, or a comma-separated list of: {', '.join(API_METHODS)}")

    def handle(self, *args, name, password, rights, **options):
        if not password:
            raise CommandError("the password may not be empty")
        methods = _rights(rights)
        with transaction.atomic():
            user = ApiUser.objects.select_for_update().filter(name=name).first()
            created = user is None
            user = user or ApiUser(name=name)
            user.set_password(password)
            user.set_rights(methods)
            user.active = True
            user.save()
        verb = "created" if created else "updated"
        self.stdout.write(f"API user {user.name} {verb}; rights: {', '.join(user.rights) or 'none'}")
