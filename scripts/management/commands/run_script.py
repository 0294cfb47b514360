"""`manage.py run_script SCRIPT --event call_processed --call ID`: run one script once, in
the foreground, and print what it did as JSON {"log", "mail", "alerts", "error"} (R9.1):
for trying a script before binding it to a profile's event."""
import json

from django.core.management.base import BaseCommand, CommandError

from billing.models import Call
from scripts.events import Event
from scripts.files import script_path
from scripts.host import ScriptProcess


class Command(BaseCommand):
    help = "Run a script once for one event and print its log, mails, alerts and error as JSON."

    def add_arguments(self, parser):
        parser.add_argument("script", help="A script file, or the name of one in "
                                           "TARISCOPE_SCRIPTS_DIR or among the shipped scripts.")
        parser.add_argument("--event", default=Event.CALL_PROCESSED.value,
                            choices=[event.value for event in Event],
                            help="The event (default call_processed).")
        parser.add_argument("--call", type=int, metavar="ID",
                            help="call_processed: the id of the stored call.")
        parser.add_argument("--profile", default="",
                            help="The observer profile named in the event's params (default: "
                                 "the first profile of the call's device).")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                            help="More params for main(), repeatable.")
        parser.add_argument("--timeout", type=float, default=10.0,
                            help="Seconds main() may take (default 10).")
        parser.add_argument("--memory-mb", type=int, default=256,
                            help="The script process's memory limit in MiB (default 256).")
        parser.add_argument("--dry-run", action="store_true",
                            help="List the mails the script sends without sending them.")

    def handle(self, *args, script, event, call, profile, param, timeout, memory_mb, dry_run,
               **options):
        try:
            path = script_path(script)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        params = {"event": event, "profile": profile}
        if event == Event.CALL_PROCESSED:
            if call is None:
                raise CommandError("--event call_processed needs --call ID")
            found = Call.objects.filter(pk=call).select_related("device").first()
            if found is None:
                raise CommandError(f"no call with id {call}")
            params["id"] = call
            if not profile:
                first = found.device.observers.order_by("pk").first()
                params["profile"] = first.name if first else ""
        for item in param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--param takes KEY=VALUE, not {item!r}")
            params[key] = value
        process = ScriptProcess(path, timeout=timeout, memory_mb=memory_mb,
                                send_mails=not dry_run)
        try:
            outcome = process.run(params)
        finally:
            process.close()
        self.stdout.write(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2))
