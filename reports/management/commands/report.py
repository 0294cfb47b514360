"""R11.3: `manage.py report NAME --from D --to D [--group G] [--device D] [--top N]
--format json|csv|xlsx|pdf --output F`: a report from the command line, the same as the
page's (its filters are checked by the page's form)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.models import Device, Node
from reports.catalogue import REPORTS
from reports.exports import export
from reports.forms import ReportFilterForm
from tariffs.choices import CallType, Direction

FORMATS = ("json", "csv", "xlsx", "pdf")


class Command(BaseCommand):
    help = "Run a report (R11.3) over a period and write it as JSON, CSV, XLSX or PDF."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The report: " + ", ".join(REPORTS))
        parser.add_argument("--from", dest="date_from", required=True,
                            help="First day, YYYY-MM-DD (each device's calendar).")
        parser.add_argument("--to", dest="date_to", required=True,
                            help="Last day, YYYY-MM-DD, included.")
        parser.add_argument("--node", help="A node's name.")
        parser.add_argument("--device", help="A device's name.")
        parser.add_argument("--group", help='A group: its name, or "name · node".')
        parser.add_argument("--subscriber", help='An account number, a name, or "name · account".')
        parser.add_argument("--call-type", help="A call type: " + ", ".join(
            t.label for t in CallType) + " (or its number).")
        parser.add_argument("--direction", help="outgoing, incoming or internal (or 0-2).")
        parser.add_argument("--top", type=int, help="How many rows a top-N report keeps.")
        parser.add_argument("--format", default="json", choices=FORMATS)
        parser.add_argument("--output", help="The file to write; JSON and CSV go to the "
                                             "standard output without it.")

    def handle(self, *args, name, **options):
        kind = REPORTS.get(name)
        if kind is None:
            raise CommandError(f"No report {name!r}. The reports: {', '.join(REPORTS)}.")
        fmt, output = options["format"], options["output"]
        if fmt in ("xlsx", "pdf") and not output:
            raise CommandError(f"A {fmt.upper()} report needs --output FILE.")
        data = {"date_from": options["date_from"], "date_to": options["date_to"],
                "group": options["group"] or "", "subscriber": options["subscriber"] or "",
                "node": _by_name(Node, "node", options["node"]),
                "device": _by_name(Device, "device", options["device"]),
                "call_type": _code(CallType, "call type", options["call_type"]),
                "direction": _code(Direction, "direction", options["direction"]),
                "top": "" if options["top"] is None else str(options["top"])}
        form = ReportFilterForm(data, kind=kind)
        for option in ("device", "call_type", "direction", "top"):
            if data[option] and option not in form.fields:
                raise CommandError(f"--{option.replace('_', '-')} does not apply to {name}.")
        if not form.is_valid():
            raise CommandError("; ".join(_option_error(field, errors)
                                         for field, errors in form.errors.items()))
        content = export(kind, kind.run(form.filters()), fmt, form.describe())
        if output:
            Path(output).write_bytes(content)
            self.stderr.write(f"{name}: written to {output}")
        else:
            self.stdout.write(content.decode("utf-8"), ending="")


_OPTIONS = {"date_from": "--from", "date_to": "--to", "call_type": "--call-type"}


def _option_error(field: str, errors) -> str:
    option = _OPTIONS.get(field, f"--{field}") if field != "__all__" else "filters"
    return f"{option}: {' '.join(errors)}"


def _by_name(model, what: str, name: str | None) -> str:
    if not name:
        return ""
    found = model.objects.filter(name=name).values_list("pk", flat=True).first()
    if found is None:
        known = ", ".join(model.objects.values_list("name", flat=True)[:20]) or "none"
        raise CommandError(f"--{what}: no {what} {name!r} (known: {known}).")
    return str(found)


def _code(codes, what: str, value: str | None) -> str:
    if not value:
        return ""
    for member in codes:
        if value in (str(member.value), member.label, member.name.lower()):
            return str(member.value)
    raise CommandError(f"No {what} {value!r}: one of " + ", ".join(m.label for m in codes) + ".")
