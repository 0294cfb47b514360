"""`manage.py import_tariffs FILE --operator NAME --plan NAME --currency CUR --map ...` (R5.3)."""
import json
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from tariffs.importers.mapping import FIELDS, ImportOptions, MappingError, mapping_parse
from tariffs.importers.service import TariffImportError, tariffs_import


class Command(BaseCommand):
    help = ("Import a carrier's rate deck (.xlsx, .xls, .csv, .mdb, .accdb) into an operator's "
            "codes, tariffs and prices in one transaction. Prints one JSON object.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--operator", required=True, help="Created (with --currency) if missing.")
        parser.add_argument("--plan", required=True, help="Tariff plan of the prices; created if missing.")
        parser.add_argument("--currency", required=True,
                            help="ISO 4217; must be the operator's currency when it exists.")
        parser.add_argument("--sheet", help="Sheet (or Access table); default: the first.")
        parser.add_argument("--map", required=True, dest="mapping",
                            help="FIELD=COLUMN,... where COLUMN is a header or a letter (A = first); "
                                 f"fields: {', '.join(FIELDS)}.")
        parser.add_argument("--codes-only", action="store_true",
                            help="Import codes only, into tariffs that already exist.")
        parser.add_argument("--update", action="store_true",
                            help="Give existing tariffs the file's rate as a new validity period.")
        parser.add_argument("--per-second", action="store_true",
                            help="New tariffs bill per second (1/1) instead of whole minutes (60/60).")
        parser.add_argument("--accounts-description", default="",
                            help="Description for personal accounts of the new tariffs.")
        parser.add_argument("--date-order", choices=["dmy", "mdy"], default="dmy",
                            help="How to read dates such as 01/02/2024 (default dmy).")
        parser.add_argument("--no-header", action="store_true",
                            help="The first row is data: columns are given by letter only.")
        parser.add_argument("--rate-value", help="One rate for every row, when the file has no rate column.")
        parser.add_argument("--dry-run", action="store_true", help="Report, but change nothing.")

    def handle(self, *args, **o):
        rate_value = None
        if o["rate_value"] is not None:
            try:
                rate_value = Decimal(o["rate_value"].replace(",", "."))
            except InvalidOperation:
                raise CommandError(f"--rate-value {o['rate_value']!r} is not a number") from None
            if not rate_value.is_finite() or rate_value < 0:
                raise CommandError("--rate-value must be a number, 0 or more")
        try:
            mapping = mapping_parse(o["mapping"])
        except MappingError as exc:
            raise CommandError(str(exc)) from None
        options = ImportOptions(
            operator=o["operator"], plan=o["plan"], currency=o["currency"],
            codes_only=o["codes_only"], update=o["update"], per_second=o["per_second"],
            accounts_description=o["accounts_description"], date_order=o["date_order"],
            has_header=not o["no_header"], rate_value=rate_value)
        try:
            result = tariffs_import(source=o["file"], sheet=o["sheet"], mapping=mapping,
                                    options=options, dry_run=o["dry_run"])
        except TariffImportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
        if result.accepted == 0:
            raise CommandError("nothing could be imported"
                               + (f": all {len(result.rejected)} rows were rejected"
                                  if result.rejected else ": no data rows"))
