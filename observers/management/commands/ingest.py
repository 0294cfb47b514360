"""`manage.py ingest --profile NAME FILE...`: push files through the collection pipeline."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from observers.models import ObserverProfile
from observers.pipeline import IngestSummary, profile_ingest


class Command(BaseCommand):
    help = "Archive, parse, rate and store CDR files as the profile's collector would."

    def add_arguments(self, parser):
        parser.add_argument("--profile", required=True, help="Observer profile name.")
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, profile, files, **options):
        try:
            prof = ObserverProfile.objects.select_related("device").get(name=profile)
        except ObserverProfile.DoesNotExist:
            raise CommandError(f"no observer profile named {profile!r}") from None
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CommandError(f"not a readable file: {', '.join(missing)}")
        total = IngestSummary()
        for path in files:
            try:
                total.add(profile_ingest(profile=prof, data=path.read_bytes(), source_name=path.name))
            except LookupError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(total.as_dict()))
