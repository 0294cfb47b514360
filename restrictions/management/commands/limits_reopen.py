"""R8.2: reopen the closures made by limits in months before --month (default: this month).
Prints JSON {"reopened", "pbx"}."""
import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from restrictions.pbx import pbx_changes_run
from restrictions.services import limits_reopen, limits_reopen_due


def _month(text: str) -> date:
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise CommandError(f"--month: {text!r} is not a month YYYY-MM") from None


class Command(BaseCommand):
    help = ("Reopen what limits closed in months before the given one (what runs at 00:00 on "
            "the 1st in each node's zone). Without --month: every closure whose month has "
            "ended in its subscriber's zone.")

    def add_arguments(self, parser):
        parser.add_argument("--month", type=_month, help="YYYY-MM: reopen closures of months "
                                                         "before this one.")

    def handle(self, *args, month=None, **options):
        summary = (limits_reopen(month=month) if month else
                   limits_reopen_due(now=timezone.now()))
        summary["pbx"] = pbx_changes_run()
        self.stdout.write(json.dumps(summary))
