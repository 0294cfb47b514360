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


@pytest.mark.embedded
def test_the_mail_of_a_batch_goes_over_one_connection(site, dispatcher, mailbox):
    # given fraud.py bound, and three suspicious calls in one file
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script="fraud")
    site.ingest(*(_international_saturday(f"Call 93{n}") for n in range(3)))
    # when they are dispatched
    dispatcher.run_once()
    # then three mails reached the server, over a single SMTP session
    wait_for(lambda: len(mailbox.messages) == 3, timeout=10)
    assert len(set(mailbox.sessions)) == 1


@pytest.mark.embedded
def test_a_script_reads_its_call_from_the_batch_and_other_queries_from_the_database(
        site, dispatcher, settings):
    # given a script that reads its call three ways, and an aliased query that the
    # row sent with the event cannot answer
    name = _script(settings, "reads.py", """
        by_id = self.host.query("SELECT id, cost, calltype FROM v_calls WHERE id = %s",
                                [params["id"]])
        aliased = self.host.query("SELECT id AS n FROM v_calls WHERE id = %s", [params["id"]])
        row = self.host.call(params["id"])
        self.host.log("%s %s %s %s" % (by_id[0]["id"], by_id[0]["cost"], row["dialnumber"],
                                       aliased))
    """)
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script=name)
    site.ingest(*_calls(2, to_no="0442345678", dial_no="90442345678"))
    # when dispatched
    assert dispatcher.run_once() == 2
    # then each script saw its own call, with the values the database holds
    for entry in EventLogEntry.objects.all():
        call = Call.objects.get(pk=entry.call_id)
        assert entry.error == ""
        assert entry.log == [f"{call.pk} {call.cost} {call.dialled} [{{'n': {call.pk}}}]"]


@pytest.mark.embedded
def test_the_row_sent_with_the_event_answers_without_asking_the_database(tmp_path):
    # given a script that queries its call by id, and a row sent with the event that the
    # database does not hold (id 424242)
    from scripts.host import ScriptProcess

    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent("""
        class Probe:
            def init(self, host):
                self.host = host

            def main(self, params):
                rows = self.host.query(
                    "select id, dialnumber from v_calls where id = %s", [params["id"]])
                self.host.log(repr(rows))
                self.host.log(repr(self.host.call(params["id"])))
    """))
    process = ScriptProcess(path)
    try:
        # when it runs with the row, then with "not found" (None)
        found = process.run({"event": "call_processed", "id": 424242},
                            call={"id": 424242, "dialnumber": "882161234", "cost": None})
        missing = process.run({"event": "call_processed", "id": 424243}, call=None)
    finally:
        process.close()
    # then the answers came from what was sent
    assert found.log == ["[{'id': 424242, 'dialnumber': '882161234'}]",
                         "{'id': 424242, 'dialnumber': '882161234', 'cost': None}"]
    assert missing.log == ["[]", "None"]


@pytest.mark.embedded
def test_an_alert_is_an_event_of_its_own_and_its_scripts_alerts_raise_no_more(
        site, dispatcher, settings):
    # given a script that alerts on every call, and one bound to "alert" that alerts too
    caller = _script(settings, "alerting.py", """
        self.host.alert("critical", "call %s is odd" % params["id"], call_id=params["id"])
    """)
    echo = _script(settings, "echo.py", """
        self.host.log("%s %s %s" % (params["level"], params["reason"], params["script"]))
        self.host.alert("warning", "echoed " + params["reason"])
    """)
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script=caller)
    ScriptBinding.objects.create(profile=site.profile, event="alert", script=echo)
    site.ingest(*_calls(1))
    call = Call.objects.get()
    # when dispatched until nothing waits
    while dispatcher.run_once():
        pass
    # then the alert ran the alert script once, and its own alert raised no event
    from scripts.models import Alert

    assert sorted(Alert.objects.values_list("script", "reason")) == [
        ("alerting.py", f"call {call.pk} is odd"), ("echo.py", f"echoed call {call.pk} is odd")]
    entry = EventLogEntry.objects.get(event="alert")
    assert entry.log == [f"critical call {call.pk} is odd alerting.py"]
    assert not QueuedEvent.objects.exists()


@pytest.mark.embedded
def test_a_scripts_bindings_share_one_process_so_periodic_work_serves_its_calls(
        site, dispatcher, settings):
    # given a script that learns on "periodic" and uses what it learnt on each call
    name = _script(settings, "learner.py", """
        if params["event"] == "periodic":
            self.learnt = "profiles built"
        else:
            self.host.log(getattr(self, "learnt", "nothing learnt"))
    """)
    ScriptBinding.objects.create(profile=site.profile, event="periodic", script=name,
                                 interval=3600, timeout=60)
    ScriptBinding.objects.create(profile=site.profile, event="call_processed", script=name)
    dispatcher.run_once()  # the periodic run
    # when a call is stored and dispatched
    site.ingest(*_calls(1))
    dispatcher.run_once()
    # then the call's run saw what the periodic run built (one process for both bindings)
    assert EventLogEntry.objects.get(event="call_processed").log == ["profiles built"]


@pytest.mark.embedded
def test_the_dispatcher_and_its_scripts_yield_to_collection(site, settings):
    # given a script that logs its own CPU priority, bound to a source event
    import threading

    settings.TARISCOPE_SCRIPT_NICE = 7
    name = _script(settings, "nice.py", 'import os\nself.host.log("nice %s" % os.nice(0))\n')
    ScriptBinding.objects.create(profile=site.profile, event="source_connected", script=name)
    event_emit(Event.SOURCE_CONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    base = os.nice(0)
    # when the dispatcher runs as a service (a thread, as in `manage.py start`)
    stop_event = threading.Event()
    thread = threading.Thread(target=Dispatcher().run, args=(stop_event,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: EventLogEntry.objects.exists(), timeout=20)
    finally:
        stop_event.set()
        thread.join(20)
    # then the script ran at the lower priority, and this (the server's) thread did not move
    assert EventLogEntry.objects.get().log == [f"nice {max(base, 7)}"]
    assert os.nice(0) == base
