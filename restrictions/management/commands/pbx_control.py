"""`manage.py pbx_control [--once] [--interval SECONDS] [--device NAME]`: the call control
of R8.3-R8.7 in the foreground, as a system service would run it (restrictions/control.py):
the active calls of the controlled PBXs read, the calls that break a rule dropped, and the
PBX changes made, until SIGTERM or SIGINT; with --once one round, its summary printed."""
import json
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from restrictions.control import control_loop, control_run_once


class Command(BaseCommand):
    help = ("Watch the active calls of the controlled PBXs and drop those that break a "
            "call-control rule, until stopped.")

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true",
                            help="One round (the devices due, or the one named), its summary "
                                 "printed as JSON, then exit.")
        parser.add_argument("--interval", type=float, default=2.0,
                            help="Seconds between rounds (at most the smallest poll_seconds "
                                 "of the connectors); default 2.")
        parser.add_argument("--device", metavar="NAME",
                            help="Only this device (polled at once with --once).")

    def handle(self, *args, once, interval, device, **options):
        if interval <= 0:
            raise CommandError("--interval must be a number of seconds above 0")
        if once:
            try:
                summary = control_run_once(device=device)
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps(summary, sort_keys=True, indent=2, default=str))
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"call control of {device or 'every controlled device'}: running until "
                          "SIGTERM or Ctrl-C")
        try:
            control_loop(stop, interval=interval, device=device)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("call control stopped")
