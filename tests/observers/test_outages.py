"""R2.4: a broker that is away is not a bad file. A folder collector (a real `manage.py
observer` process) whose Redis is stopped keeps the file and delivers it once Redis is
back, however many polls that takes; a real worker then stores its call."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from billing.models import Call
from tests.conftest import wait_for
from tests.observers.processes import ROOT, processes_env, start_worker
from tests.observers.threecx_cdr import cdr_file, cdr_line


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_file_waits_in_its_folder_while_the_broker_is_away(postgres, own_redis, site, tmp_path):
    # given a folder profile of the site, its broker stopped
    folder = tmp_path / "cdr"
    folder.mkdir()
    site.profile.settings = {"path": str(folder), "settle_seconds": 0}
    site.profile.save()
    env = processes_env(own_redis)
    collector = subprocess.Popen(
        [sys.executable, "manage.py", "observer", "--name", site.profile.name, "--interval", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "collector.err").open("w"))
    worker = None
    try:
        # when a CDR file arrives, and the collector polls it many more times than the five
        # failures after which a bad file is set aside
        (folder / "cdr.log").write_bytes(cdr_file(cdr_line()))
        log = Path(settings.DATA_DIR) / "logs" / "observer" / f"{site.profile.name}.log"
        wait_for(lambda: (folder / "failed").exists()
                 or (log.exists() and log.read_text().count("poll failed") >= 8), timeout=90)
        # then the file is still waiting in the folder, not set aside in failed/
        assert (folder / "cdr.log").exists()
        assert not (folder / "failed").exists()
        # when the broker is back, with a worker on it
        own_redis.start()
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tariscope", "worker", "--pool", "solo",
             "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip",
             "--without-mingle", "--hostname", f"outage{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # then the file is delivered and its call stored, once
        wait_for(lambda: (folder / "done" / "cdr.log").exists(), timeout=60)
        wait_for(lambda: Call.objects.exists(), timeout=60)
        time.sleep(0.5)
        assert Call.objects.count() == 1
        # and the raw archive holds it once, not once per failed poll
        archived = b"".join(path.read_bytes() for path in site.profile.archive_path.glob("*.cdr"))
        assert archived == cdr_file(cdr_line())
    finally:
        for process in (collector, worker):
            if process is not None:
                process.terminate()
                process.wait(20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_work_of_a_killed_worker_is_done_again_by_another(postgres, own_redis, site):
    # given a broker and a worker, configured to give a dead worker's tasks to another after
    # 3 s unacknowledged, looked for every second (in production: 180 s and 10 s)
    import psycopg2

    own_redis.start()
    env = {**processes_env(own_redis), "CELERY_VISIBILITY_TIMEOUT": "3",
           "CELERY_RESTORE_INTERVAL": "1"}
    locker = psycopg2.connect(**connection.get_connection_params())
    workers = []
    try:
        # and the call table locked, so that a worker storing a call waits in the middle
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE billing_call IN SHARE ROW EXCLUSIVE MODE")
        workers.append(start_worker(env, "doomed"))
        # when a collector on another process delivers a CDR line
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from observers.models import ObserverProfile; from observers.delivery import "
             "profile_deliver; profile_deliver(profile=ObserverProfile.objects.get(pk="
             f"{site.profile.pk}), data={cdr_file(cdr_line())!r}, source_name='cdr.log', "
             "keep_result=False)"],
            cwd=ROOT, env=env, check=True, capture_output=True)

        def storing():
            with locker.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND wait_event_type = 'Lock' "
                               "AND pid <> pg_backend_pid()")
                return cursor.fetchone()[0]

        # and its worker is killed (kill -9, every process of it) while storing the call
        wait_for(storing, timeout=60)
        os.killpg(workers[0].pid, 9)
        workers[0].wait(10)
        locker.rollback()  # the lock is released; the killed worker never acknowledged
        began = time.monotonic()
        workers.append(start_worker(env, "heir"))
        # then another worker stores the call, once, within the timeout and a sweep or two
        wait_for(lambda: Call.objects.exists(), timeout=60)
        waited = time.monotonic() - began
        time.sleep(1)
        assert Call.objects.count() == 1
        assert waited < 30
    finally:
        locker.close()
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, 15)
                worker.wait(20)
