"""R7.1: `manage.py charges_recalculate --month 2023-05 [--subscriber ID]`: rebuild the call
charges of a month from the rated calls (run after the month's calls are in; safe to run
again: charges are corrected, never doubled)."""
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.accounts import charges_recalculate, month_bounds
from billing.models import Subscriber


class Command(BaseCommand):
    help = "Rebuild the call charges of a month from the rated calls."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="yyyy-mm")
        parser.add_argument("--subscriber", type=int, help="only this subscriber's id")

    def handle(self, *args, month, subscriber, **options):
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise CommandError(f"--month {month!r} is not yyyy-mm") from None
        holder = None
        if subscriber is not None:
            holder = Subscriber.objects.filter(pk=subscriber).first()
            if holder is None:
                raise CommandError(f"no subscriber {subscriber}")
        start, end = month_bounds(first)
        count = charges_recalculate(subscriber=holder, period_start=start, period_end=end)
        self.stdout.write(f"{count} call charges for {start:%Y-%m}")
