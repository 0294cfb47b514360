"""R8.10: sync subscribers and numbers with the PBX's extensions now; prints JSON.

    manage.py pbx_sync --device KyivPBX [--dry-run]  ->  {"created": 2, "ended": 0, ...}
    manage.py pbx_sync [--dry-run]                   ->  {"KyivPBX": {...}, "LvivPBX": {...}}

A device without a connector, or whose PBX cannot be reached or refuses, is an error (exit
status 1); without --device the others are synced and printed first."""
import json

from django.core.management.base import BaseCommand, CommandError

from billing.models import Device
from billing.subscribers import Conflict
from restrictions.connectors import ConnectorError
from restrictions.models import PbxControl
from restrictions.sync import NoConnector, SyncRefused, pbx_sync


class Command(BaseCommand):
    help = ("Create and update subscribers and their numbers from the PBX's extension list, and "
            "end the numbers of extensions that are gone (R8.10). Prints what it did as JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--device", help="The device's name; without it, every device "
                                             "with a PBX connector.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Work out what a sync would do, and change nothing.")

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        if options["device"]:
            device = Device.objects.filter(name=options["device"]).first()
            if device is None:
                raise CommandError(f"no device named {options['device']!r}")
            self.stdout.write(json.dumps(self._sync(device, dry_run), sort_keys=True))
            return
        devices = [control.device for control in PbxControl.objects.exclude(connector={})
                   .select_related("device").order_by("device__name")]
        if not devices:
            raise CommandError("no device has a PBX connector")
        results, errors = {}, []
        for device in devices:
            try:
                results[device.name] = self._sync(device, dry_run)
            except CommandError as error:
                errors.append(str(error))
        self.stdout.write(json.dumps(results, sort_keys=True))
        if errors:
            raise CommandError("; ".join(errors))

    @staticmethod
    def _sync(device: Device, dry_run: bool) -> dict:
        try:
            return pbx_sync(device=device, dry_run=dry_run)
        except (NoConnector, SyncRefused, Conflict) as error:
            raise CommandError(str(error)) from None
        except ConnectorError as error:
            raise CommandError(f"device {device.name}: the PBX could not be synced: {error}"
                               ) from None
