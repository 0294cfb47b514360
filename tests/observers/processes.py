"""Real processes for the tests of outages (tests/observers/test_outages.py,
test_journal.py): a Redis server of the test's own that it stops and starts, Celery workers
and `manage.py observer` collectors, each in a process group of its own so that `kill -9`
takes every process of it."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


class OwnRedis:
    """A Redis server of this test's own, on a free loopback port, that it stops and starts."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.process = free_port(), folder, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                        capture_output=True, text=True).stdout.strip() == "PONG",
                 timeout=10)

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def processes_env(redis: OwnRedis) -> dict:
    """The environment of the collector and worker processes: this test's database (its
    rows are committed: a transaction test) and data folder, the test's own Redis."""
    database = connection.settings_dict
    return {**os.environ, "CELERY_BROKER_URL": redis.url, "CELERY_RESULT_BACKEND": redis.url,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
                            f"/{database['NAME']}",
            "TARISCOPE_DATA_DIR": str(settings.DATA_DIR)}


def start_worker(env: dict, name: str) -> subprocess.Popen:
    """A real Celery worker (prefork, two processes) in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tariscope", "worker", "--pool", "prefork",
         "--concurrency", "2", "--loglevel", "WARNING", "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--hostname", f"{name}{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)


def start_collector(env: dict, profile_name: str, errors: Path) -> subprocess.Popen:
    """`manage.py observer --name <profile>` in a process group of its own; its standard
    error goes to `errors` (appended: a restarted collector adds to it)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "observer", "--name", profile_name, "--interval", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors.open("a"),
        start_new_session=True)


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to the process's group and wait for it (nothing if it already ended)."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(30)
