"""R8.1: check every limit now; prints JSON {"limits", "warned", "closed", "pbx"}."""
import json

from django.core.management.base import BaseCommand

from restrictions.pbx import pbx_changes_run
from restrictions.services import limits_enforce


class Command(BaseCommand):
    help = ("Check every enabled limit against this month's usage: warn, and close what "
            "reached its limit (what storing calls does for the subscribers concerned).")

    def handle(self, *args, **options):
        summary = limits_enforce()
        summary["pbx"] = pbx_changes_run()
        self.stdout.write(json.dumps(summary))
