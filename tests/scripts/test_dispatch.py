"""R9.2, R9.3: events are queued in the transaction of their change and the dispatcher hands
them to the bound scripts: every stored call once, mail through a real SMTP server, a
dispatcher killed mid-batch going on without doubling or skipping a call."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from billing.models import Call
from scripts.dispatch import Dispatcher
from scripts.events import Event, event_emit
from scripts.models import EventLogEntry, OutgoingMail, QueuedEvent, ScriptBinding
from tests.conftest import free_port, wait_for
from tests.observers.processes import ROOT, stop
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db(transaction=True)


def _calls(count: int, *, first: int = 1, **fields) -> list[str]:
    return [cdr_line(historyid=f"Call {n}", **fields) for n in range(first, first + count)]


def _international_saturday(key: str) -> str:
    return cdr_line(historyid=key, time_start="2024/06/22 12:00:00", duration="00:02:31",
                    to_no="00442071234567", dial_no="900442071234567",
                    final_number="00442071234567")


@pytest.fixture
def dispatcher():
    running = Dispatcher()
    yield running
    running.close()


def _script(settings, name: str, body: str) -> str:
    """A script file `name` in the scripts folder whose main() runs `body`."""
    settings.SCRIPTS_DIR.mkdir(parents=True, exist_ok=True)
    (settings.SCRIPTS_DIR / name).write_text(
        "class Script:\n    def init(self, host):\n        self.host = host\n\n"
        "    def main(self, params):\n" + textwrap.indent(textwrap.dedent(body), " " * 8))
    return name


@pytest.mark.embedded
def test_a_suspicious_call_reaches_the_mailbox_and_every_call_is_scripted_once(
        site, dispatcher, mailbox):
    # given fraud.py bound to the stored calls of the site's profile
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script="fraud")
    # when a file with a Saturday call to London and two ordinary calls is collected
    site.ingest(_international_saturday("Call 9001"), *_calls(2))
    # then one event waits for the three calls, in the same commit as they
    queued = QueuedEvent.objects.get()
    assert sorted(queued.params["ids"]) == sorted(Call.objects.values_list("pk", flat=True))
    # and once dispatched, each call was scripted once and the suspicious one mailed
    assert dispatcher.run_once() == 3
    suspicious = Call.objects.get(source_key__startswith="Call 9001|")
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
    assert f"Suspicious call detected. ID={suspicious.pk} " in mailbox.messages[0][2]
    assert sorted(EventLogEntry.objects.values_list("call_id", flat=True)) == sorted(
        Call.objects.values_list("pk", flat=True))
    assert not QueuedEvent.objects.exists()
    assert not OutgoingMail.objects.exists()


@pytest.mark.embedded
def test_calls_of_a_profile_without_bindings_queue_nothing(site):
    # given no script bound
    # when calls are collected
    site.ingest(*_calls(3))
    # then nothing is written for scripts
    assert Call.objects.count() == 3
    assert not QueuedEvent.objects.exists()


@pytest.mark.embedded
def test_a_source_event_reaches_its_script_with_its_params(site, dispatcher, settings):
    # given a script bound to "source_disconnected"
    name = _script(settings, "disconnect.py", 'self.host.log("gone: %s" % params["peer"])\n')
    ScriptBinding.objects.create(profile=site.profile, event="source_disconnected", script=name)
    # when a collector raises the event (and another, unbound, one)
    event_emit(Event.SOURCE_DISCONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    event_emit(Event.SOURCE_CONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    # then only the bound one is queued, and the dispatcher runs it
    assert list(QueuedEvent.objects.values_list("event", flat=True)) == ["source_disconnected"]
    assert dispatcher.run_once() == 1
    entry = EventLogEntry.objects.get()
    assert (entry.event, entry.script, entry.log, entry.error) == (
        "source_disconnected", name, ["gone: 10.0.0.5:5000"], "")


@pytest.mark.embedded
def test_mail_waits_while_the_mail_server_is_away_and_goes_when_it_is_back(
        site, dispatcher, settings, mailbox):
    # given fraud.py bound, and the mail server's port pointing nowhere
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script="fraud")
    real_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()
    site.ingest(_international_saturday("Call 9002"))
    # when the call is dispatched
    dispatcher.run_once()
    # then its mail waits, with the reason
    waiting = OutgoingMail.objects.get()
    assert waiting.attempts == 1 and "Connection refused" in waiting.last_error
    assert mailbox.messages == []
    # and when the server is back, it goes (the script is not run again)
    settings.EMAIL_PORT = real_port
    dispatcher._mail_retry_at = 0  # noqa: SLF001 (skip the back-off's wait)
    dispatcher.mail_send()
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
    assert not OutgoingMail.objects.exists()
    assert EventLogEntry.objects.count() == 1


@pytest.mark.embedded
def test_a_periodic_binding_runs_by_its_interval(site, dispatcher, settings):
    # given a script bound to "periodic" every hour
    name = _script(settings, "tick.py", 'self.host.log("tick")\n')
    ScriptBinding.objects.create(profile=site.profile, event="periodic", script=name,
                                 interval=3600)
    # when the dispatcher looks twice
    dispatcher.run_once()
    dispatcher.run_once()
    # then it ran once
    assert list(EventLogEntry.objects.values_list("log", flat=True)) == [["tick"]]


@pytest.mark.postgres
def test_a_dispatcher_killed_mid_batch_scripts_every_call_exactly_once(
        postgres, site, settings, tmp_path):
    # given a slow script bound to the stored calls, and 40 calls waiting for it
    name = _script(settings, "slow.py", 'import time\ntime.sleep(0.05)\n'
                                        'self.host.log("call %s" % params["id"])\n')
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script=name)
    site.ingest(*_calls(40))
    assert len(QueuedEvent.objects.get().params["ids"]) == 40
    database = postgres.settings_dict
    env = {**os.environ, "CELERY_BROKER_URL": "", "TARISCOPE_DATA_DIR": str(settings.DATA_DIR),
           "TARISCOPE_SCRIPTS_DIR": str(settings.SCRIPTS_DIR),
           "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
                           f"{database['PORT']}/{database['NAME']}"}

    def start():
        return subprocess.Popen([sys.executable, "manage.py", "dispatch_events"], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL,
                                stderr=(tmp_path / "dispatcher.err").open("a"),
                                start_new_session=True)

    dispatcher_process = start()
    try:
        # when the dispatcher is killed (kill -9) after some of them, and started again
        wait_for(lambda: EventLogEntry.objects.count() >= 10, timeout=60)
        stop(dispatcher_process, signal.SIGKILL)
        assert EventLogEntry.objects.count() < 40
        dispatcher_process = start()
        wait_for(lambda: not QueuedEvent.objects.exists(), timeout=120)
    finally:
        stop(dispatcher_process)
    # then every call was scripted exactly once
    per_call = dict(EventLogEntry.objects.values_list("call_id").annotate(n=Count("id")))
    assert sorted(per_call) == sorted(Call.objects.values_list("pk", flat=True))
    assert set(per_call.values()) == {1}


@pytest.mark.embedded
def test_alerts_of_a_period_are_printed_as_json(site, dispatcher, settings, capsys):
    # given a script raising a critical alert for each call, bound to the stored calls
    name = _script(settings, "alarm.py", 'self.host.alert("critical", "night burst", '
                                         'call_id=params["id"])\n')
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script=name)
    site.ingest(*_calls(2))
    dispatcher.run_once()
    today = timezone.localdate().isoformat()
    # when the alerts of today are asked for, then those of a level no alert has
    call_command("alerts", "--from", today, "--to", today)
    printed = json.loads(capsys.readouterr().out)
    call_command("alerts", "--from", today, "--to", today, "--level", "warning")
    # then both alerts are listed with their calls, and none of the other level
    assert sorted(alert["call_id"] for alert in printed) == sorted(
        Call.objects.values_list("pk", flat=True))
    assert {(alert["script"], alert["level"], alert["reason"]) for alert in printed} == {
        (name, "critical", "night burst")}
    assert json.loads(capsys.readouterr().out) == []
    # and a bad date is refused with its option named
    with pytest.raises(CommandError, match="--from takes a date YYYY-MM-DD"):
        call_command("alerts", "--from", "yesterday", "--to", today)
