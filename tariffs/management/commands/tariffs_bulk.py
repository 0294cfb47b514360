"""`manage.py tariffs_bulk set-description|move-date|delete ...` (R5.4): the original's
raw-SQL bulk operations on all tariffs valid from a date."""
import json

from django.core.management.base import BaseCommand, CommandError

from tariffs.cli import iso_date
from tariffs.models import Operator
from tariffs.selectors import tariff_valid_from_counts
from tariffs.services import (
    tariffs_delete_valid_from,
    tariffs_move_valid_from,
    tariffs_set_account_description,
)


class Command(BaseCommand):
    help = "Bulk operations on all tariffs valid from a date. Each prints one JSON line."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        describe = sub.add_parser("set-description",
                                  help="Set the description for personal accounts.")
        describe.add_argument("--valid-from", dest="valid_from", required=True, type=iso_date)
        describe.add_argument("--text", required=True)
        move = sub.add_parser("move-date", help="Move the valid-from date (and the codes').")
        move.add_argument("--from", dest="old", required=True, type=iso_date)
        move.add_argument("--to", dest="new", required=True, type=iso_date)
        delete = sub.add_parser("delete", help="Delete the tariffs with their prices and codes.")
        delete.add_argument("--valid-from", dest="valid_from", required=True, type=iso_date)
        delete.add_argument("--yes", action="store_true",
                            help="Really delete; without it, only count what would go.")
        for each in (describe, move, delete):
            each.add_argument("--operator", help="Only this operator's tariffs (default: all).")

    def handle(self, *args, operation, operator, **options):
        op = None
        if operator:
            try:
                op = Operator.objects.get(name=operator)
            except Operator.DoesNotExist:
                raise CommandError(f"no operator named {operator!r}") from None
        out = {"operation": operation, "operator": operator}
        try:
            if operation == "set-description":
                out["valid_from"] = options["valid_from"].isoformat()
                out["tariffs"] = tariffs_set_account_description(
                    valid_from=options["valid_from"], description=options["text"], operator=op)
            elif operation == "move-date":
                out["from"], out["to"] = options["old"].isoformat(), options["new"].isoformat()
                out["tariffs"] = tariffs_move_valid_from(old=options["old"], new=options["new"],
                                                         operator=op)
            else:
                out["valid_from"] = options["valid_from"].isoformat()
                if not options["yes"]:
                    out.update(tariff_valid_from_counts(valid_from=options["valid_from"],
                                                        operator=op), deleted=False)
                    self.stdout.write(json.dumps(out))
                    raise CommandError("nothing deleted: add --yes to delete these tariffs")
                out["tariffs"] = tariffs_delete_valid_from(valid_from=options["valid_from"],
                                                           operator=op)
                out["deleted"] = True
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(out))
