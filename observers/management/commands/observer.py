"""`manage.py observer --name=NAME`: run one profile's collector in the foreground."""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from observers.models import ObserverProfile
from observers.runner import run_profile


class Command(BaseCommand):
    help = "Run the collector of one observer profile (as a system service would)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Observer profile name.")
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between polls.")

    def handle(self, *args, name, once, interval, **options):
        try:
            profile = ObserverProfile.objects.select_related("device").get(name=name)
        except ObserverProfile.DoesNotExist:
            raise CommandError(f"no observer profile named {name!r}") from None
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            run_profile(profile, once=once, stop=stop, interval=interval)
        except (LookupError, ValueError, FileNotFoundError, ImportError) as exc:
            raise CommandError(str(exc)) from None
