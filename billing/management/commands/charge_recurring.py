"""`manage.py charge_recurring [--month YYYY-MM]`: the month's subscription fees (R7.1)."""
import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.accounts import recurring_charges_create


class Command(BaseCommand):
    help = "Charge the recurring services (subscription fees) of a month; running it again updates."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM; default: the current month.")

    def handle(self, *args, month, **options):
        if month:
            try:
                first = date.fromisoformat(f"{month}-01")
            except ValueError:
                raise CommandError(f"--month {month!r} is not YYYY-MM") from None
        else:
            first = timezone.localdate().replace(day=1)
        written = recurring_charges_create(month=first)
        self.stdout.write(json.dumps({"month": f"{first:%Y-%m}", "charges": written}))
