"""R8.2: the classes and the PBX changes; prints JSON."""
import json

from django.core.management.base import BaseCommand

from restrictions.selectors import restrictions_status


class Command(BaseCommand):
    help = ("Print the closed subscribers and groups (with why and since when), the PBX "
            "changes not made yet, and each controlled PBX's last contact, as JSON.")

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(restrictions_status(), indent=2, default=str))
