"""R2.5: keeps one collector thread per enabled local profile, following the database.

The UI starts and stops a local profile by setting its `enabled` flag; the supervisor
(`manage.py observers`, or the embedded `manage.py start`) notices within one check, starts
or stops the thread, and restarts a collector that died, with back-off.
"""
import logging
import threading
import time
from dataclasses import dataclass, field

from django.db import close_old_connections, connections

from observers.backoff import backoff
from observers.models import ObserverProfile
from observers.runner import run_profile

logger = logging.getLogger(__name__)

# Seconds between restarts of a collector that died: 5 s, 10 s, 20 s ... up to 5 minutes.
RESTART_MIN, RESTART_MAX = 5.0, 300.0


@dataclass
class _Running:
    thread: threading.Thread
    stop: threading.Event
    settings_seen: tuple
    failures: int = 0
    retry_at: float = 0.0


@dataclass
class Supervisor:
    interval: float = 5.0  # folder polling interval
    check_every: float = 3.0  # seconds between looks at the database
    running: dict[str, _Running] = field(default_factory=dict)
    _failed: dict[str, tuple[int, float]] = field(default_factory=dict)

    def _desired(self) -> dict[str, ObserverProfile]:
        close_old_connections()
        return {p.name: p for p in ObserverProfile.objects.select_related("device").filter(
            enabled=True, remote=False)}

    def _start(self, profile: ObserverProfile) -> None:
        stop = threading.Event()
        name = profile.name

        def target():
            try:
                run_profile(profile, stop=stop, interval=self.interval)
            except Exception:
                logger.exception("observer %s stopped with an error", name)
                failures, _ = self._failed.get(name, (0, 0.0))
                delay = backoff(failures, RESTART_MIN, RESTART_MAX)
                self._failed[name] = (failures + 1, time.monotonic() + delay)
            finally:
                # The thread's own database connection ends with it (Django keeps one per
                # thread; left open, every restart would leave one behind on the server).
                connections.close_all()

        thread = threading.Thread(target=target, name=f"observer-{name}", daemon=True)
        self.running[name] = _Running(thread, stop, _signature(profile))
        thread.start()

    def reconcile(self) -> None:
        """Start what should run, stop what should not, restart what died or changed."""
        desired = self._desired()
        for name, running in list(self.running.items()):
            profile = desired.get(name)
            changed = profile is not None and _signature(profile) != running.settings_seen
            if profile is None or changed or not running.thread.is_alive():
                running.stop.set()
                running.thread.join(timeout=5)
                del self.running[name]
        now = time.monotonic()
        for name, profile in desired.items():
            if name in self.running:
                continue
            failures, retry_at = self._failed.get(name, (0, 0.0))
            if now < retry_at:
                continue
            self._start(profile)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.reconcile()
            except Exception:  # the database may be away; try again at the next check
                logger.exception("observer supervisor: check failed")
            stop.wait(self.check_every)
        for running in self.running.values():
            running.stop.set()
        for running in self.running.values():
            running.thread.join(timeout=5)


def _signature(profile: ObserverProfile) -> tuple:
    """What, when changed, needs the collector restarted."""
    return (profile.source, repr(sorted(profile.settings.items())), profile.device_id,
            profile.archive_dir, profile.archive_period, profile.log_level)
