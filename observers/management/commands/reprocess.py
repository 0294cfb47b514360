"""`manage.py reprocess --profile NAME --from D --to D`: parse the raw archive again (R2.4)."""
import json

from django.core.management.base import BaseCommand, CommandError

from observers.models import ObserverProfile
from observers.pipeline import profile_reprocess
from tariffs.cli import iso_date


class Command(BaseCommand):
    help = ("Parse and store again the profile's raw archive files of a period; calls already "
            "stored are skipped. The archive is kept by the day the data was received, so by "
            "default --from/--to pick the files received in the period (November's calls "
            "collected on 1 December are in December's); with --call-dates they are the "
            "calls' start days instead. Prints {received, calls, duplicates, rejected}.")

    def add_arguments(self, parser):
        parser.add_argument("--profile", required=True)
        parser.add_argument("--from", dest="date_from", required=True, type=iso_date,
                            help="First day (YYYY-MM-DD) the data was received, or with "
                                 "--call-dates the first day calls started.")
        parser.add_argument("--to", dest="date_to", required=True, type=iso_date,
                            help="Last day, likewise.")
        parser.add_argument("--call-dates", action="store_true",
                            help="The period is of the calls' start days (in the device's "
                                 "zone): the files received from --from to --late-days after "
                                 "--to are read, and only calls that started in it are stored.")
        parser.add_argument("--late-days", type=int, default=31,
                            help="With --call-dates: how many days after the period a call may "
                                 "have been received (default 31).")

    def handle(self, *args, profile, date_from, date_to, call_dates, late_days, **options):
        if date_from > date_to:
            raise CommandError("--from is after --to")
        if late_days < 0:
            raise CommandError("--late-days must be 0 or more")
        try:
            prof = ObserverProfile.objects.select_related("device").get(name=profile)
        except ObserverProfile.DoesNotExist:
            raise CommandError(f"no observer profile named {profile!r}") from None
        try:
            summary = profile_reprocess(profile=prof, date_from=date_from, date_to=date_to,
                                        by_call_date=call_dates, late_days=late_days)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(summary.as_dict()))
