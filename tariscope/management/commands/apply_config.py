"""`manage.py apply_config FILE`: make the database hold the site configuration in FILE."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tariscope.siteconfig.apply import site_config_apply
from tariscope.siteconfig.files import site_config_load
from tariscope.siteconfig.schema import SiteConfigError


class Command(BaseCommand):
    help = ("Create or update operators, plans, nodes, devices, routes, observer profiles, "
            "groups, subscribers and numbers from a YAML or JSON file (docs/config.md). "
            "An invalid file changes nothing; rows not in the file are kept.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="A .yaml, .yml or .json file.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Validate and count what would change, then roll back.")

    def handle(self, *args, file, dry_run, **options):
        try:
            counts = site_config_apply(data=site_config_load(file), dry_run=dry_run)
        except SiteConfigError as exc:
            lines = exc.errors
            raise CommandError(f"{file}: not applied, {len(lines)} error(s):\n"
                               + "\n".join(lines)) from None
        summary = {"dry_run": True, **counts} if dry_run else counts
        self.stdout.write(json.dumps(summary, separators=(",", ":")))
