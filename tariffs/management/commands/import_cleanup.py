"""`manage.py import_cleanup [--older-than HOURS] [--dry-run]`: the uploads and results
of import wizards left unfinished (R5.2), as the hourly beat task removes them."""
import datetime
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tariffs.importers.jobs import jobs_cleanup


class Command(BaseCommand):
    help = ("Remove the uploads (and results) of tariff import wizards not touched for a "
            "while; imports queued or running are kept. Prints one JSON object.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, metavar="HOURS",
                            help="age in hours (fractions allowed); default: the setting "
                                 "TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS")
        parser.add_argument("--dry-run", action="store_true",
                            help="list what would be removed, remove nothing")

    def handle(self, *args, older_than, dry_run, **options):
        hours = settings.TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS if older_than is None else older_than
        if not 0 <= hours < 1_000_000:
            raise CommandError(f"--older-than {older_than} is not an age: give 0 or more hours")
        report = jobs_cleanup(older_than=datetime.timedelta(hours=hours), dry_run=dry_run)
        self.stdout.write(json.dumps(report, ensure_ascii=False))
