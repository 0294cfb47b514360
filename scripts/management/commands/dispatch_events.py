"""`manage.py dispatch_events`: run the scripts bound to observer profiles' events (R9),
in the foreground, as a system service would (scripts/dispatch.py)."""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from scripts.dispatch import Dispatcher, DispatcherBusy
from scripts.files import shipped_scripts_install


class Command(BaseCommand):
    help = "Hand queued events and stored calls to the scripts bound to them, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5,
                            help="Seconds between looks at the queue when it is empty.")
        parser.add_argument("--once", action="store_true",
                            help="Dispatch what waits now, send the mail, and exit.")

    def handle(self, *args, interval, once, **options):
        shipped_scripts_install()
        dispatcher = Dispatcher()
        if once:
            try:
                dispatcher.lock()
                self.stdout.write(f"{dispatcher.run_once()} event(s) dispatched")
            except DispatcherBusy as exc:
                raise CommandError(str(exc)) from None
            finally:
                dispatcher.close()
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            dispatcher.run(stop, interval=interval)
        except DispatcherBusy as exc:
            raise CommandError(str(exc)) from None
