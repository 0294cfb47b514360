"""`manage.py export_config [--output FILE] [--format yaml|json]`: the site configuration."""
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tariscope.siteconfig.export import site_config_export
from tariscope.siteconfig.files import format_of, site_config_dump


class Command(BaseCommand):
    help = ("Write the configuration in the database in the format apply_config reads "
            "(YAML to stdout by default). The output holds observer passwords and secrets.")

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, help="File to write; default stdout.")
        parser.add_argument("--format", choices=["yaml", "json"],
                            help="Default: by the output file's extension, else yaml.")

    def handle(self, *args, output, format, **options):
        fmt = format or (format_of(output) if output else None) or "yaml"
        text = site_config_dump(site_config_export(), fmt)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            # Owner-only: the file carries FTP passwords and RADIUS secrets.
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
        except OSError as exc:
            raise CommandError(f"{output}: cannot be written: {exc}") from None
        self.stderr.write(f"configuration written to {output}")
