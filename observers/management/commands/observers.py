"""`manage.py observers`: run every enabled local profile, one thread each, following the
profiles' `enabled` flags in the database (the UI starts and stops them)."""
import signal
import threading

from django.core.management.base import BaseCommand

from observers.supervisor import Supervisor


class Command(BaseCommand):
    help = "Run the collectors of all enabled local observer profiles (a system service)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=5.0,
                            help="Seconds between polls of folder sources.")
        parser.add_argument("--check-every", type=float, default=3.0,
                            help="Seconds between looks at the profiles in the database.")

    def handle(self, *args, interval, check_every, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("observers: running every enabled local profile; Ctrl-C stops")
        Supervisor(interval=interval, check_every=check_every).run(stop)
