"""R9.1, R9.3: the script host (scripts/host.py): each script in a process of its own, the
host API served to it, and the limits that keep a bad script from hurting anything.
Scripts are real files; mail goes to a real SMTP server on loopback (aiosmtpd)."""
import datetime as datetime_module
import json
import textwrap
import time
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.models import Call
from scripts.host import ScriptProcess
from tests.conftest import wait_for
from tests.observers.threecx_cdr import cdr_line

# 101 calls a Kyiv number on Monday 17 June 2024 at 10:00 Kyiv time (07:00 UTC).
LINE = cdr_line()


@pytest.fixture
def script(tmp_path):
    """write(body) -> the path of a script file holding the class `Script` with `body` as
    its main(self, params); the host object is self.host."""
    def write(body: str, *, name: str = "probe.py", header: str = "") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(header) + "\nclass Script:\n    def init(self, host):\n"
                        "        self.host = host\n\n    def main(self, params):\n"
                        + textwrap.indent(textwrap.dedent(body), " " * 8) + "\n")
        return path
    return write


@pytest.fixture
def call(site) -> Call:
    site.ingest(LINE)
    return Call.objects.get()


def run(path, params=None, **limits):
    process = ScriptProcess(path, **limits)
    try:
        return process.run(params or {"event": "call_processed"})
    finally:
        process.close()


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_reads_its_call_from_v_calls_in_the_devices_local_time(call, script):
    # given a script that reads the call as fraud.cs does, and logs it
    path = script("""
        rows = self.host.query("SELECT id, originator, dialnumber, calldatetime, callseconds, "
                               "calltype, cost, subscriber, device FROM v_calls WHERE id = %s",
                               [params["id"]])
        self.host.log(repr(sorted(rows[0].items())))
        self.host.log(repr(self.host.call(params["id"])["group"]))
    """)
    # when it runs for the stored call
    outcome = run(path, {"event": "call_processed", "id": call.pk})
    # then it saw the call with its start in Kyiv time, and the host's call() agrees
    assert outcome.error is None
    # our own repr of the row's values (datetime, Decimal, plain ones)
    row = dict(eval(outcome.log[0], {"datetime": datetime_module, "Decimal": Decimal}))  # noqa: S307
    assert row["calldatetime"] == datetime(2024, 6, 17, 10, 0)
    assert call.local_start.replace(tzinfo=None) == datetime(2024, 6, 17, 10, 0)
    assert (row["id"], row["originator"], row["dialnumber"], row["callseconds"]) == (
        call.pk, "101", call.dialled, call.duration)
    assert (row["calltype"], row["subscriber"], row["device"]) == (
        call.call_type, "Ivan Petrenko", "KyivPBX")
    assert isinstance(row["cost"], Decimal) and row["cost"] == call.cost
    assert outcome.log[1] == "'Sales'"


@pytest.mark.embedded
@pytest.mark.django_db
def test_mail_with_no_recipient_goes_to_the_alert_address(call, script, mailbox):
    # given a script mailing "" (the configured address) and one given address
    path = script("""
        self.host.send_mail("", "Fraud Detection system", "Suspicious call detected. ID=%s"
                            % params["id"])
        self.host.send_mail("noc@example.com", "copy", "second")
    """)
    # when it runs
    outcome = run(path, {"event": "call_processed", "id": call.pk})
    # then both mails reach the SMTP server, the first at TARISCOPE_ALERT_EMAIL
    assert outcome.error is None
    wait_for(lambda: len(mailbox.messages) == 2, timeout=10)
    recipients = [to for _, to, _ in mailbox.messages]
    assert recipients == [["security@example.com"], ["noc@example.com"]]
    assert f"Suspicious call detected. ID={call.pk}" in mailbox.messages[0][2]
    assert [mail["to"] for mail in outcome.mail] == recipients


@pytest.mark.embedded
@pytest.mark.django_db
def test_mail_without_any_recipient_is_an_error_the_script_sees(script, settings):
    # given no alert address configured
    settings.TARISCOPE_ALERT_EMAIL = ""
    path = script("""
        try:
            self.host.send_mail("", "subject", "body")
        except Exception as exc:
            self.host.log("refused: %s" % exc)
    """)
    # when a script mails without a recipient
    outcome = run(path)
    # then it is told why, and nothing is sent
    assert outcome.mail == []
    assert outcome.log == ["refused: ValueError: no recipient: the script gave none and "
                           "TARISCOPE_ALERT_EMAIL is not set"]


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_that_raises_is_reported_and_runs_again_next_time(script):
    # given a script that fails on its first event only
    path = script("""
        self.host.log("event %s" % params["n"])
        if params["n"] == 1:
            raise RuntimeError("boom")
    """)
    process = ScriptProcess(path)
    try:
        # when it gets two events
        first, second = process.run({"n": 1}), process.run({"n": 2})
    finally:
        process.close()
    # then the first outcome carries the traceback, and the second ran normally
    assert "RuntimeError: boom" in first.error and "Traceback" in first.error
    assert first.log == ["event 1"]
    assert (second.error, second.log) == (None, ["event 2"])


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_that_hangs_is_stopped_at_its_timeout_and_started_again(script):
    # given a script that sleeps for a minute on its first event
    path = script("""
        import time
        if params["n"] == 1:
            time.sleep(60)
        self.host.log("done %s" % params["n"])
    """)
    process = ScriptProcess(path, timeout=1)
    try:
        # when it gets two events
        started = time.monotonic()
        first = process.run({"n": 1})
        waited = time.monotonic() - started
        second = process.run({"n": 2})
    finally:
        process.close()
    # then the first is stopped at the timeout, the second runs in a new process
    assert first.error == "stopped after 1 s (the binding's timeout)"
    assert waited < 30
    assert (second.error, second.log) == (None, ["done 2"])


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_that_eats_memory_fails_with_memory_error(script):
    # given a script that allocates 2 GiB, in a process limited to 200 MiB
    path = script("""
        hog = bytearray(2 * 1024 ** 3)
        self.host.log(str(len(hog)))
    """)
    # when it runs
    outcome = run(path, memory_mb=200)
    # then it fails with MemoryError and nothing else happens
    assert "MemoryError" in outcome.error
    assert outcome.log == []


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_with_a_syntax_error_is_reported_with_its_line(tmp_path):
    # given a script that does not compile
    path = tmp_path / "broken.py"
    path.write_text("class Script:\n    def main(self, params)\n        pass\n")
    # when it is run
    outcome = run(path)
    # then the outcome says it could not be loaded, and where
    assert "broken.py could not be loaded" in outcome.error
    assert "SyntaxError" in outcome.error and "line 2" in outcome.error


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_cannot_reach_the_database_or_its_credentials(call, script, settings):
    # given a script that looks for the database's password and the secret key, tries to
    # load the project's settings, and reads and writes other tables through host.query
    path = script("""
        import os
        self.host.log("env: " + ",".join(sorted(k for k in os.environ
                                                 if k in ("DATABASE_URL", "SECRET_KEY",
                                                          "PGPASSWORD"))))
        try:
            import tariscope.settings
            self.host.log("settings: imported")
        except Exception as exc:
            self.host.log("settings: " + type(exc).__name__)
        for sql in ("SELECT password FROM auth_user", "DELETE FROM billing_call",
                    "SELECT id FROM v_calls; DELETE FROM billing_call"):
            try:
                self.host.query(sql, [])
                self.host.log("allowed: " + sql)
            except Exception as exc:
                self.host.log("refused: " + sql)
    """)
    # when it runs
    outcome = run(path)
    # then it found no credentials, could not import the settings, and every query was
    # refused; the call is still there
    assert outcome.error is None
    assert outcome.log[0] == "env: "
    assert outcome.log[1] in ("settings: ModuleNotFoundError", "settings: ImproperlyConfigured")
    assert [line.split(":")[0] for line in outcome.log[2:]] == ["refused"] * 3
    assert Call.objects.filter(pk=call.pk).exists()


@pytest.mark.embedded
@pytest.mark.django_db
def test_an_edited_script_is_loaded_again(script):
    # given a script process that ran once
    path = script('self.host.log("first version")')
    process = ScriptProcess(path)
    try:
        assert process.run({}).log == ["first version"]
        # when the file is edited
        time.sleep(0.01)
        script('self.host.log("second version")')
        # then the next event runs the new version
        assert process.run({}).log == ["second version"]
    finally:
        process.close()


@pytest.mark.embedded
@pytest.mark.django_db
def test_run_script_prints_what_the_script_did_as_json(call, script, capsys, mailbox):
    # given a script that logs, mails, raises an alert and prints
    path = script("""
        self.host.log("checking %s" % params["id"])
        print("a printed line")
        self.host.alert("critical", "test alert", call_id=params["id"])
        self.host.send_mail("", "subject", "body")
    """)
    # when run_script runs it for the call, with --dry-run
    call_command("run_script", str(path), "--event", "call_processed", "--call", str(call.pk),
                 "--dry-run")
    printed = json.loads(capsys.readouterr().out)
    # then the JSON lists all of it, and no mail was sent
    assert printed["error"] is None
    assert printed["log"] == [f"checking {call.pk}", "a printed line"]
    assert printed["alerts"] == [{"level": "critical", "reason": "test alert",
                                  "call_id": call.pk, "subscriber_id": None}]
    assert printed["mail"] == [{"to": ["security@example.com"], "subject": "subject",
                                "body": "body"}]
    assert mailbox.messages == []


def _international(site, *, start: str, duration: str, key: str) -> Call:
    """101 dials London (00 44 20 ...) through access code 9."""
    site.ingest(cdr_line(historyid=key, **{"time_start": start, "duration": duration,
                                           "to_no": "00442071234567",
                                           "dial_no": "900442071234567",
                                           "final_number": "00442071234567"}))
    return Call.objects.get(source_key__startswith=f"{key}|")


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_shipped_fraud_script_mails_a_long_international_call_on_saturday(
        site, mailbox, capsys):
    # given a 151-second call to London on Saturday noon, and one on a Monday morning
    saturday = _international(site, start="2024/06/22 12:00:00", duration="00:02:31",
                              key="Call 7001")
    monday = _international(site, start="2024/06/17 10:00:00", duration="00:02:31",
                            key="Call 7002")
    assert saturday.call_type == 5
    # when the shipped fraud.py runs for each, through run_script
    outcomes = []
    for call in (saturday, monday):
        call_command("run_script", "fraud", "--call", str(call.pk))
        outcomes.append(json.loads(capsys.readouterr().out))
    # then the Saturday call reaches the security officer's mailbox, the Monday one does not
    assert [outcome["error"] for outcome in outcomes] == [None, None]
    assert outcomes[0]["log"] == [f"New call processing, ID= {saturday.pk}"]
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
    _, recipients, content = mailbox.messages[0]
    assert recipients == ["security@example.com"]
    assert "Subject: Fraud Detection system" in content
    assert (f"Suspicious call detected. ID={saturday.pk} CallDateTime=2024-06-22 12:00:00 "
            "Call duration=151") in content
    assert outcomes[1]["mail"] == []


@pytest.mark.embedded
@pytest.mark.django_db
def test_holidays_are_the_nodes_calendar_its_countrys_and_its_own(site, script):
    # given a Ukrainian node with a day of its own (2021: since 2022 martial law has
    # suspended Ukraine's public holidays, and the calendar says so)
    from billing.models import Holiday

    Holiday.objects.create(node=site.node, date=datetime_module.date(2021, 3, 11),
                           name="Company day")
    path = script("""
        days = self.host.holidays(2021, params["device_id"])
        self.host.log(" ".join(day.isoformat() for day in days if day.month <= 3))
        try:
            self.host.holidays(2021, 999999)
        except Exception as exc:
            self.host.log(str(exc))
    """)
    # when a script asks for 2021
    outcome = run(path, {"event": "periodic", "device_id": site.device.pk})
    # then it gets New Year's Day, Christmas, the day off moved to 8 January, Women's Day
    # and the node's own day, as dates
    assert outcome.error is None
    assert outcome.log == ["2021-01-01 2021-01-07 2021-01-08 2021-03-08 2021-03-11",
                           "ValueError: no device 999999"]


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_closes_a_subscriber_through_the_restrictions(site, script):
    # given a script that closes the subscriber of its event, twice
    from restrictions.models import Closure

    path = script("""
        for _ in range(2):
            self.host.log(self.host.close_subscriber(params["subscriber_id"], "fraud"))
        try:
            self.host.close_subscriber(999999, "fraud")
        except Exception as exc:
            self.host.log(str(exc))
    """, name="closer.py")
    # when it runs
    outcome = run(path, {"event": "alert", "subscriber_id": site.subscriber.pk})
    # then the subscriber is closed once, by the script, and an unknown one is an error
    assert outcome.error is None
    assert outcome.log == ["closed", "closed already", "ValueError: no subscriber 999999"]
    closure = Closure.objects.get()
    assert (closure.subscriber, closure.cause, closure.closed_by) == (
        site.subscriber, "script", "closer.py")
    assert closure.reason == "fraud (script closer.py)"


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_script_that_keeps_failing_to_load_is_started_again_with_back_off(script, tmp_path):
    # given a script whose loading fails, counting each attempt in a file
    loads = tmp_path / "loads.txt"
    path = script("pass", header=f"""
        with open({str(loads)!r}, "a") as counter:
            counter.write("load\\n")
        raise RuntimeError("the database of my script is down")
    """)
    process = ScriptProcess(path)
    try:
        # when three events come at once
        outcomes = [process.run({"event": "call_processed", "id": n}) for n in range(3)]
        # then it was loaded twice (a loss is retried at once), and the third event was
        # not run, saying when the next start is and why
        assert loads.read_text().count("load") == 2
        assert "the database of my script is down" in outcomes[0].error
        assert "not run: its process was lost 2 times in a row; next start in" in \
            outcomes[2].error
        assert "the database of my script is down" in outcomes[2].error
        # and an edit of the file is tried at once (what its loading prints is logged)
        path.write_text(path.read_text().replace("raise RuntimeError", "print"))
        fixed = process.run({"event": "call_processed", "id": 4})
        assert (fixed.error, fixed.log) == (None, ["the database of my script is down"])
        assert loads.read_text().count("load") == 3
    finally:
        process.close()


@pytest.mark.embedded
@pytest.mark.django_db
def test_events_written_ahead_keep_their_order_and_a_hung_one_does_not_take_the_rest(script):
    # given a script that logs each event's number, asks the host something on each (so
    # the events written ahead wait behind a reply), and hangs at number 2
    from scripts.host import Batch, scripts_run

    path = script("""
        self.host.log("n=%s holidays=%s" % (params["n"], len(self.host.holidays(2021,
                                                                           params["device"]))))
        if params["n"] == 2:
            import time
            time.sleep(30)
    """)
    from billing.models import Device
    from tests.factories import DeviceFactory

    device = Device.objects.first() or DeviceFactory()
    process = ScriptProcess(path)
    try:
        # when six events are run as one batch with a 1 s timeout
        (runs,) = scripts_run([Batch(process, [({"n": n, "device": device.pk}, None)
                                               for n in range(6)], 1)])
    finally:
        process.close()
    # then each outcome is its own event's, in order; the hung one was stopped, and the
    # events after it ran in a new process
    assert [run.log[0].split()[0] if run.log else None for run in runs] == [
        "n=0", "n=1", "n=2", "n=3", "n=4", "n=5"]
    assert [run.error for run in runs[:2] + runs[3:]] == [None] * 5
    assert runs[2].error == "stopped after 1 s (the binding's timeout)"


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_scripts_of_a_batch_run_side_by_side(script, tmp_path):
    # given two scripts that, at each event, each leave a mark and wait for the other's
    # (run one after the other, the first would wait in vain)
    from scripts.host import Batch, scripts_run

    meet = f"""
        import pathlib, time
        folder = pathlib.Path({str(tmp_path)!r})
        (folder / f"{{ME}}-{{params['n']}}").touch()
        for _ in range(500):
            if (folder / f"{{OTHER}}-{{params['n']}}").exists():
                self.host.log(f"{{params['n']}} {{ME}} met {{OTHER}}")
                break
            time.sleep(0.01)
        else:
            self.host.log(f"{{params['n']}} {{ME}} alone")
    """
    first = script(meet, name="first.py", header="ME, OTHER = 'first', 'second'")
    second = script(meet, name="second.py", header="ME, OTHER = 'second', 'first'")
    processes = [ScriptProcess(first), ScriptProcess(second)]
    try:
        # when both are given the same four events in one run
        items = [({"n": n}, None) for n in range(4)]
        runs = scripts_run([Batch(process, items) for process in processes])
    finally:
        for process in processes:
            process.close()
    # then at every event each met the other: they ran at the same time
    assert [[run.log for run in batch] for batch in runs] == [
        [[f"{n} first met second"] for n in range(4)],
        [[f"{n} second met first"] for n in range(4)]]


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_querys_time_parameters_compare_as_times_on_either_database(call, script):
    # given the call of 17 June 2024 at 07:00 UTC (10:00 in Kyiv), and a script that
    # queries around it with datetime parameters
    path = script("""
        import datetime
        utc = datetime.timezone.utc
        def found(sql, moment):
            return len(self.host.query(sql, [moment]))
        self.host.log(repr([
            found("SELECT id FROM v_calls WHERE calldatetime_utc >= %s",
                  datetime.datetime(2024, 6, 17, 7, 0, tzinfo=utc)),
            found("SELECT id FROM v_calls WHERE calldatetime_utc >= %s",
                  datetime.datetime(2024, 6, 17, 7, 0, 1, tzinfo=utc)),
            found("SELECT id FROM v_calls WHERE calldatetime >= %s",
                  datetime.datetime(2024, 6, 17, 10, 0)),
            found("SELECT id FROM v_calls WHERE calldatetime < %s",
                  datetime.datetime(2024, 6, 17, 10, 0)),
        ]))
        row = self.host.query("SELECT calldatetime_utc FROM v_calls", [])[0]
        self.host.log(repr(row["calldatetime_utc"].utcoffset()))
    """)
    # when it runs
    outcome = run(path)
    # then the boundaries hold to the second, and the UTC start is an aware time
    assert outcome.error is None, outcome.error
    assert outcome.log == ["[1, 0, 1, 0]", "datetime.timedelta(0)"]
