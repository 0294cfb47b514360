"""`manage.py observer --name=NAME [--main=URL]`: run one profile's collector in the
foreground (as a system service would). With --main it runs on another host as a remote
observer (R2.6): no database, only the main server's URL and the profile's token."""
import os
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from observers.journal import JournalBusy
from observers.models import ObserverProfile
from observers.remote import MainServer, MainServerError, RemoteObserver
from observers.runner import run_profile


class Command(BaseCommand):
    help = "Run the collector of one observer profile, here or as a remote observer."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Observer profile name.")
        parser.add_argument("--once", action="store_true",
                            help="Folder sources: one pass, then exit.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between polls.")
        parser.add_argument("--main", metavar="URL",
                            help="The main server (https://billing.example.com): run as a "
                                 "remote observer and deliver to it over HTTP.")
        parser.add_argument("--token", default=os.environ.get("TARISCOPE_OBSERVER_TOKEN", ""),
                            help="The remote observer's token (default: the environment "
                                 "variable TARISCOPE_OBSERVER_TOKEN, which keeps it out of ps).")
        parser.add_argument("--spool", type=Path,
                            help="Remote: where batches wait for the main server "
                                 "(default <data dir>/spool/<name>).")

    def handle(self, *args, name, once, interval, main, token, spool, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if main:
            self._remote(name=name, main=main, token=token, spool=spool, interval=interval,
                         stop=stop)
            return
        try:
            profile = ObserverProfile.objects.select_related("device").get(name=name)
        except ObserverProfile.DoesNotExist:
            raise CommandError(f"no observer profile named {name!r}") from None
        try:
            run_profile(profile, once=once, stop=stop, interval=interval)
        except (LookupError, ValueError, FileNotFoundError, ImportError, JournalBusy) as exc:
            raise CommandError(str(exc)) from None

    def _remote(self, *, name, main, token, spool, interval, stop):
        if not token:
            raise CommandError("a remote observer needs its token: --token, or the environment "
                               "variable TARISCOPE_OBSERVER_TOKEN (issued on the observers page)")
        try:
            server = MainServer(main, token)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        observer = RemoteObserver(name=name, main=server, poll_interval=interval,
                                  spool_dir=spool or settings.SPOOL_DIR / name)
        self.stdout.write(f"observer {name}: collecting here, delivering to {main}")
        try:
            observer.run(stop)
        except MainServerError as exc:
            raise CommandError(str(exc)) from None
