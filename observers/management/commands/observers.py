"""`manage.py observers`: run every enabled local profile, one thread each."""
import logging
import signal
import threading

from django.core.management.base import BaseCommand

from observers.models import ObserverProfile
from observers.runner import run_profile

logger = logging.getLogger(__name__)


def _run_logged(*, profile, **kwargs):
    """A profile that cannot run (no parser, no folder) is logged; the others go on."""
    try:
        run_profile(profile, **kwargs)
    except Exception:
        logger.exception("observer %s stopped", profile.name)


def start_local_observers(stop: threading.Event, *, interval: float = 5.0) -> list[threading.Thread]:
    """Start a thread per enabled, local profile whose source can run here."""
    threads = []
    profiles = ObserverProfile.objects.select_related("device").filter(
        enabled=True, remote=False)
    for profile in profiles:
        thread = threading.Thread(
            target=_run_logged, kwargs={"profile": profile, "stop": stop, "interval": interval},
            name=f"observer-{profile.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


class Command(BaseCommand):
    help = "Run the collectors of all enabled local observer profiles."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between polls.")

    def handle(self, *args, interval, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        threads = start_local_observers(stop, interval=interval)
        self.stdout.write(f"{len(threads)} observer(s) running: "
                          + ", ".join(t.name.removeprefix("observer-") for t in threads))
        for thread in threads:
            while thread.is_alive():
                thread.join(1)
