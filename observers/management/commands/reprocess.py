"""`manage.py reprocess --profile NAME --from D --to D`: parse the raw archive again (R2.4)."""
import json

from django.core.management.base import BaseCommand, CommandError

from observers.models import ObserverProfile
from observers.pipeline import profile_reprocess
from tariffs.cli import iso_date


class Command(BaseCommand):
    help = ("Parse and store again the profile's raw archive files of a period; calls already "
            "stored are skipped. Prints {received, calls, duplicates, rejected}.")

    def add_arguments(self, parser):
        parser.add_argument("--profile", required=True)
        parser.add_argument("--from", dest="date_from", required=True, type=iso_date)
        parser.add_argument("--to", dest="date_to", required=True, type=iso_date)

    def handle(self, *args, profile, date_from, date_to, **options):
        if date_from > date_to:
            raise CommandError("--from is after --to")
        try:
            prof = ObserverProfile.objects.select_related("device").get(name=profile)
        except ObserverProfile.DoesNotExist:
            raise CommandError(f"no observer profile named {profile!r}") from None
        try:
            summary = profile_reprocess(profile=prof, date_from=date_from, date_to=date_to)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(summary.as_dict()))
