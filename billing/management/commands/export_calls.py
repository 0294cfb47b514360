"""`manage.py export_calls --from D --to D --format csv|xlsx --output F`: the calls page's
columns (billing.tables.CallTable, written by billing.exports), oldest first; in XLSX the
numbers are numbers and the start a date-time in the device's zone."""
import sys

from django.core.management.base import BaseCommand, CommandError

from billing.exports import write_calls_csv, write_calls_xlsx
from billing.models import Device
from billing.selectors import call_list
from tariffs.cli import iso_date


class Command(BaseCommand):
    help = ("Write the calls of a period (whole days in each device's time zone, both inclusive) "
            "to a file.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, type=iso_date)
        parser.add_argument("--to", dest="date_to", required=True, type=iso_date)
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--output", required=True, help="File to write; - for stdout (csv).")
        parser.add_argument("--device", help="Only this device's calls.")

    def handle(self, *args, date_from, date_to, format, output, device, **options):
        if date_from > date_to:
            raise CommandError("--from is after --to")
        # Whole days as each device's calendar shows them, like the `start` column.
        filters = {"day_from": date_from, "day_to": date_to}
        if device:
            try:
                filters["device"] = Device.objects.get(name=device).pk
            except Device.DoesNotExist:
                raise CommandError(f"no device named {device!r}") from None
        calls = call_list(filters=filters).order_by("start", "id")
        if format == "csv":
            if output == "-":
                count = write_calls_csv(calls, sys.stdout)
            else:
                with open(output, "w", newline="", encoding="utf-8") as stream:
                    count = write_calls_csv(calls, stream)
        else:
            if output == "-":
                raise CommandError("xlsx cannot be written to stdout; give --output FILE")
            count = write_calls_xlsx(calls, output)
        self.stderr.write(f"{count} calls written to {output}")

