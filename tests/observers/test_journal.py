"""R2.4 for streams: a TCP or RADIUS collector appends what arrives to the raw archive at
once and hands it to processing from there (observers/journal.py), so that a collector
killed, or stopped while the broker is away, loses nothing it read.

The first tests drive the journal in this process (real archive, real database; on the
Redis pass a real worker thread); the last ones run real `manage.py observer` collectors
and Celery workers on a Redis of the test's own, and kill them."""
import json
import signal
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.conf import settings
from django.utils import timezone

from billing.models import Call
from observers import journal as journal_module
from observers.archive import archive_chunk_append, archive_file_name
from observers.journal import ArchiveJournal, JournalBusy, JournalSettings
from observers.logs import profile_logger
from tests.conftest import free_port, wait_for
from tests.factories import DeviceFactory, ObserverProfileFactory
from tests.observers.processes import processes_env, start_collector, start_worker, stop
from tests.observers.threecx_cdr import INCOMING, INTERNAL, OUTGOING, cdr_line


def calls(count: int, first: int = 1) -> list[bytes]:
    """`count` 3CX CDR lines, each a call of its own."""
    bases = (OUTGOING, INCOMING, INTERNAL)
    return [(cdr_line(bases[n % 3], historyid=f"Call {n}") + "\n").encode()
            for n in range(first, first + count)]


def journal_of(profile, **config) -> ArchiveJournal:
    return ArchiveJournal(profile, log=profile_logger(profile),
                          config=JournalSettings(**{"retry_min": 0.05, "retry_max": 0.2,
                                                    **config}))


def archived(profile) -> bytes:
    """Everything in the profile's raw archive."""
    folder = profile.archive_path
    if not folder.is_dir():
        return b""
    return b"".join(path.read_bytes() for path in sorted(folder.glob(f"{profile.name}_*.cdr")))


@pytest.fixture
def tasks():
    """The processing tasks that start: (archive file, offset, length) of each."""
    started = []

    def record(sender=None, args=None, **_):
        if sender is not None and sender.name == "observers.process_chunk":
            started.append(tuple(args[1:4]))

    task_prerun.connect(record, weak=False)
    yield started
    task_prerun.disconnect(record)


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_lines_are_archived_at_once_and_stored_from_the_archive(site, pipeline_worker):
    # given a journal that gathers lines for up to half a second
    lines = calls(3)
    with journal_of(site.profile, flush_seconds=0.5) as journal:
        # when a source writes three lines
        journal.write(b"".join(lines), "tcp:192.0.2.1:5000")
        # then they are in the raw archive before anything is processed
        assert archived(site.profile) == b"".join(lines)
        # and they are stored from there, the cursor then at the archive's end
        wait_for(lambda: Call.objects.count() == 3)
        cursor_file = site.profile.archive_path / f".{site.profile.name}.sent"
        wait_for(lambda: json.loads(cursor_file.read_text())["offset"] == len(archived(site.profile)))
    assert json.loads(cursor_file.read_text())["file"] == archive_file_name(
        site.profile.name, site.profile.archive_period, timezone.localdate())


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_lines_written_one_by_one_go_together_in_tasks_of_at_most_flush_lines(
        site, pipeline_worker, tasks):
    # given a journal handing on at most 4 lines a task, gathered for up to 0.5 s
    lines = calls(10)
    with journal_of(site.profile, flush_lines=4, flush_seconds=0.5) as journal:
        # when ten lines are written one at a time, as ten reads brought them
        for line in lines:
            journal.write(line, "tcp:192.0.2.1:5000")
        wait_for(lambda: Call.objects.count() == 10)
    # then they went as three tasks of 4, 4 and 2 lines, in order, covering the archive
    data = archived(site.profile)
    assert [data[offset:offset + length].count(b"\n") for _, offset, length in tasks] == [4, 4, 2]
    assert b"".join(data[offset:offset + length] for _, offset, length in tasks) == data


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_closing_hands_on_what_still_waits(site, pipeline_worker):
    # given a journal that would gather for 30 s
    journal = journal_of(site.profile, flush_seconds=30).open()
    journal.write(b"".join(calls(2)), "tcp:192.0.2.1:5000")
    # when the collector stops
    journal.close()
    # then the lines are handed on before it returns
    wait_for(lambda: Call.objects.count() == 2, timeout=30)
    assert journal.pending_lines == 0


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_what_a_killed_collector_archived_is_handed_on_at_the_next_start(site, pipeline_worker):
    # given a daily archive: a collector stopped cleanly yesterday; it was restarted, killed
    # with kill -9 after archiving two more lines yesterday and one today, not handed on
    site.profile.archive_period = "day"
    site.profile.save()
    folder, name = site.profile.archive_path, site.profile.name
    yesterday = timezone.now() - timedelta(days=1)
    first = archive_chunk_append(folder=folder, profile_name=name, period="day",
                                 data=b"".join(calls(1)), now=yesterday)
    (folder / f".{name}.sent").write_text(json.dumps({"file": first.path.name,
                                                      "offset": first.length}))
    archive_chunk_append(folder=folder, profile_name=name, period="day",
                         data=b"".join(calls(2, first=2)), now=yesterday)
    archive_chunk_append(folder=folder, profile_name=name, period="day",
                         data=b"".join(calls(1, first=4)))
    # when the collector starts again
    with journal_of(site.profile):
        # then the three lines after the cursor are stored, and the one before it is not
        # handed on again
        wait_for(lambda: Call.objects.count() == 3)
    time.sleep(0.3)
    assert sorted(key.split("|")[0] for key in Call.objects.values_list("source_key", flat=True)) \
        == ["Call 2", "Call 3", "Call 4"]


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_second_collector_of_the_same_profile_is_refused(site, monkeypatch):
    # given a collector holding the profile's journal
    monkeypatch.setattr(journal_module, "LOCK_WAIT_SECONDS", 0.3)
    # when a second one starts for the same profile
    # then it is refused with a clear message
    with (journal_of(site.profile, flush_seconds=30),
          pytest.raises(JournalBusy, match="another collector of this profile is running")):
        journal_of(site.profile).open()


# -- real collectors, killed ----------------------------------------------------------------

@pytest.fixture
def tcp_profile(site):
    """A TCP server profile of the site's 3CX on a free port, gathering for 30 s (so that,
    without the journal, lines would sit in the collector's memory)."""
    return ObserverProfileFactory(device=site.device, source="tcp_server",
                                  settings={"port": free_port(), "host": "127.0.0.1",
                                            "flush_seconds": 30})


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as pbx:
        pbx.sendall(data)


def _lines_archived(profile, count: int) -> bool:
    return archived(profile).count(b"\n") >= count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_tcp_collector_killed_mid_stream_keeps_every_line_it_read(
        postgres, own_redis, tcp_profile, tmp_path):
    # given a TCP collector with a broker and a worker
    own_redis.start()
    env = processes_env(own_redis)
    errors = tmp_path / "collector.err"
    worker = start_worker(env, "journal")
    collector = start_collector(env, tcp_profile.name, errors)
    port = tcp_profile.settings["port"]
    try:
        wait_for(lambda: subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True,
                                        text=True).stdout.count("LISTEN"), timeout=30)
        # when the PBX streams 200 calls and the collector is killed (kill -9) as soon as it
        # has read them, long before its 30 s gathering would have handed them on
        _send(port, b"".join(calls(200)))
        wait_for(lambda: _lines_archived(tcp_profile, 200), timeout=30)
        stop(collector, signal.SIGKILL)
        assert Call.objects.count() == 0
        # and it is started again
        collector = start_collector(env, tcp_profile.name, errors)
        # then every call is stored, once
        wait_for(lambda: Call.objects.count() >= 200, timeout=60)
        time.sleep(1)
        assert Call.objects.count() == 200
        assert "were not handed on before the last stop" in _log(tcp_profile)
    finally:
        stop(collector)
        stop(worker)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_tcp_collector_stopped_while_the_broker_is_away_loses_nothing(
        postgres, own_redis, tcp_profile, tmp_path):
    # given a TCP collector whose broker is away
    env = processes_env(own_redis)
    errors = tmp_path / "collector.err"
    tcp_profile.settings["flush_seconds"] = 0.2
    tcp_profile.save()
    collector = start_collector(env, tcp_profile.name, errors)
    port = tcp_profile.settings["port"]
    worker = None
    try:
        wait_for(lambda: subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True,
                                        text=True).stdout.count("LISTEN"), timeout=30)
        # when the PBX sends 50 calls, the hand-over fails a few times, and the collector is
        # stopped (SIGTERM, as a service manager stops it)
        _send(port, b"".join(calls(50)))
        wait_for(lambda: _lines_archived(tcp_profile, 50), timeout=30)
        wait_for(lambda: "they wait in the raw archive" in _log(tcp_profile), timeout=60)
        stop(collector)
        assert "not handed on yet; they are in the raw archive" in _log(tcp_profile)
        # and later the broker is back, with a worker, and the collector starts again
        own_redis.start()
        worker = start_worker(env, "journal")
        collector = start_collector(env, tcp_profile.name, errors)
        # then all 50 calls are stored, once
        wait_for(lambda: Call.objects.count() >= 50, timeout=60)
        time.sleep(1)
        assert Call.objects.count() == 50
    finally:
        stop(collector)
        stop(worker)


def _log(profile) -> str:
    path = settings.LOG_DIR / "observer" / f"{profile.name}.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_radius_stop_is_answered_while_the_broker_is_away_and_stored_once_it_is_back(
        postgres, own_redis, tmp_path):
    # given a RADIUS collector for a gateway, its broker away
    from tests.observers.test_radius_source import ORIGINATE_LEG, SECRET, request

    port = free_port()
    profile = ObserverProfileFactory(device=DeviceFactory(type="radius"), source="radius",
                                     settings={"secret": SECRET, "port": port,
                                               "host": "127.0.0.1"})
    env = processes_env(own_redis)
    errors = tmp_path / "collector.err"
    collector = start_collector(env, profile.name, errors)
    worker = None
    try:
        # when the gateway sends the Stop of a call (again and again until answered, as a
        # NAS does)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
            gateway.settimeout(1)
            packet = request(ORIGINATE_LEG)

            def answered():
                gateway.sendto(packet, ("127.0.0.1", port))
                try:
                    return gateway.recv(4096)
                except TimeoutError:
                    return None

            answer = wait_for(answered, timeout=60)
        # then it is answered (Accounting-Response) as soon as it is archived
        assert answer[0] == 5 and answer[1] == packet[1]
        assert b'"Acct-Session-Id":"00000002"' in archived(profile)
        # and when the collector is stopped, the broker comes back with a worker and the
        # collector starts again, the call is stored, once
        stop(collector)
        own_redis.start()
        worker = start_worker(env, "journal")
        collector = start_collector(env, profile.name, errors)
        wait_for(lambda: Call.objects.filter(device=profile.device).exists(), timeout=60)
        time.sleep(1)
        assert Call.objects.filter(device=profile.device).count() == 1
    finally:
        stop(collector)
        stop(worker)
