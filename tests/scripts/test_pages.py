"""R9, R11.1: the scripts' operator pages: a profile's Observer scripts (bind, edit, remove),
the event log and the alerts (searchable), and the mail settings with a test mail that
reaches a real SMTP server on loopback."""
import pytest
from django.contrib.auth.models import Permission, User

from scripts.mail import mail_config
from scripts.models import Alert, EventLogEntry, MailSettings, ScriptBinding
from tests.conftest import wait_for
from tests.factories import ObserverProfileFactory


def _user(client, name: str, *codenames: str):
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


@pytest.fixture
def admin_of_scripts(client, db):
    return _user(client, "scripts-admin", "add_scriptbinding", "change_scriptbinding",
                 "delete_scriptbinding", "change_mailsettings")


@pytest.fixture
def viewer(client, db):
    return _user(client, "viewer")


def test_a_script_is_bound_edited_and_removed_from_the_profiles_page(admin_of_scripts):
    # given a profile
    profile = ObserverProfileFactory(name="KyivPBX")
    # when fraud.py is bound to its stored calls
    response = admin_of_scripts.post("/observers/KyivPBX/scripts", {
        "event": "call_processed", "script": "fraud.py", "enabled": "on", "timeout": "10",
        "interval": "0"})
    # then the binding exists and is listed
    assert response.status_code == 302
    binding = ScriptBinding.objects.get(profile=profile)
    assert (binding.event, binding.script, binding.enabled) == ("call_processed", "fraud.py",
                                                                True)
    html = admin_of_scripts.get("/observers/KyivPBX/scripts").content.decode()
    assert "fraud.py" in html and "enabled" in html
    # and when it is disabled, then removed
    admin_of_scripts.post(f"/observers/KyivPBX/scripts/{binding.pk}/edit", {
        "event": "call_processed", "script": "fraud.py", "timeout": "20", "interval": "0"})
    binding.refresh_from_db()
    assert (binding.enabled, binding.timeout) == (False, 20)
    admin_of_scripts.post(f"/observers/KyivPBX/scripts/{binding.pk}/delete")
    assert not ScriptBinding.objects.exists()


def test_the_binding_form_says_what_is_wrong(admin_of_scripts):
    # given a profile with fraud.py bound already
    profile = ObserverProfileFactory(name="KyivPBX")
    ScriptBinding.objects.create(profile=profile, event="call_processed", script="fraud.py")
    # when the same binding, a periodic one without interval and an unknown script are sent
    twice = admin_of_scripts.post("/observers/KyivPBX/scripts", {
        "event": "call_processed", "script": "fraud.py", "timeout": "10", "interval": "0"})
    periodic = admin_of_scripts.post("/observers/KyivPBX/scripts", {
        "event": "periodic", "script": "notify_disconnect.py", "timeout": "10",
        "interval": "0"})
    unknown = admin_of_scripts.post("/observers/KyivPBX/scripts", {
        "event": "call_processed", "script": "../../etc/passwd", "timeout": "10",
        "interval": "0"})
    # then each is refused with its reason, and nothing more is bound
    assert "bound to this event already" in twice.content.decode()
    assert "a periodic binding needs an interval" in periodic.content.decode()
    assert "Select a valid choice" in unknown.content.decode()
    assert ScriptBinding.objects.count() == 1


def test_a_viewer_sees_the_bindings_but_cannot_change_them(viewer):
    # given a profile with a binding
    profile = ObserverProfileFactory(name="KyivPBX")
    binding = ScriptBinding.objects.create(profile=profile, event="call_processed",
                                           script="fraud.py")
    # when a user without the rights opens the page and tries each change
    html = viewer.get("/observers/KyivPBX/scripts").content.decode()
    viewer.post("/observers/KyivPBX/scripts", {"event": "periodic", "script": "fraud.py",
                                               "timeout": "10", "interval": "60"})
    edit = viewer.post(f"/observers/KyivPBX/scripts/{binding.pk}/edit", {
        "event": "call_processed", "script": "fraud.py", "timeout": "20", "interval": "0"})
    delete = viewer.post(f"/observers/KyivPBX/scripts/{binding.pk}/delete")
    # then the page lists it without the forms, and nothing changed
    assert "fraud.py" in html and "Bind a script" not in html and "Remove" not in html
    assert (edit.status_code, delete.status_code) == (403, 403)
    assert list(ScriptBinding.objects.values_list("event", "timeout")) == [
        ("call_processed", 10)]


def test_the_event_log_is_searchable_by_text_event_script_and_errors(viewer):
    # given entries of two scripts, one failed
    EventLogEntry.objects.create(event="call_processed", profile="KyivPBX", script="fraud.py",
                                 call_id=7, summary="fraud.py: 1 mail, 0 alerts",
                                 log=["New call processing, ID= 7"])
    EventLogEntry.objects.create(event="periodic", profile="KyivPBX", script="tick.py",
                                 summary="tick.py: failed", error="ZeroDivisionError: boom")
    # when the log is searched in several ways
    def listed(query):
        html = viewer.get("/scripts/log" + query).content.decode()
        return [name for name in ("fraud.py", "tick.py") if f"<td>{name}</td>" in html]
    # then each search finds what it should
    assert listed("") == ["fraud.py", "tick.py"]
    assert listed("?q=ID%3D+7") == ["fraud.py"]          # in the script's log lines
    assert listed("?q=zerodivision") == ["tick.py"]      # in the error
    assert listed("?event=periodic") == ["tick.py"]
    assert listed("?errors=on") == ["tick.py"]
    assert listed("?call=7") == ["fraud.py"]
    assert listed("?since=2000-01-01&until=2000-01-02") == []
    # and a bad filter is said, not a 500
    bad = viewer.get("/scripts/log?since=yesterday")
    assert bad.status_code == 200 and "Enter a valid date" in bad.content.decode()


def test_alerts_are_listed_by_level_with_links_to_the_call(viewer):
    # given a critical and a warning alert
    Alert.objects.create(script="fraud_rules.py", level="critical", reason="call to +882",
                         call_id=41, subscriber_id=3)
    Alert.objects.create(script="fraud_rules.py", level="warning", reason="night call")
    # when the alerts are filtered by level
    critical = viewer.get("/scripts/alerts?level=critical").content.decode()
    everything = viewer.get("/scripts/alerts").content.decode()
    # then only the critical one is shown, with its call and subscriber
    assert "call to +882" in critical and "night call" not in critical
    assert "/calls/41/" in critical and "/subscribers/3/" in critical
    assert "night call" in everything


def test_mail_settings_are_saved_over_the_environments_and_the_password_is_kept(
        admin_of_scripts, settings):
    # given the environment's sender
    settings.DEFAULT_FROM_EMAIL = "tariscope@localhost"
    # when the page saves a server with a password, then is saved again without one
    form = {"action": "save", "host": "smtp.example.com", "port": "587",
            "security": "starttls", "username": "alerts", "password": "s3cret",
            "sender": "Tariscope <billing@example.com>", "alert_email": "a@example.com, "
            "b@example.com"}
    admin_of_scripts.post("/settings/mail", form)
    page = admin_of_scripts.get("/settings/mail").content.decode()
    admin_of_scripts.post("/settings/mail", {**form, "password": ""})
    # then the settings in force are the page's, and the password stayed stored, never shown
    config = mail_config(fresh=True)
    assert (config.host, config.port, config.security, config.sender, config.recipients) == (
        "smtp.example.com", 587, "starttls", "Tariscope <billing@example.com>",
        ["a@example.com", "b@example.com"])
    assert MailSettings.objects.get().password == "s3cret"
    assert "s3cret" not in page and "A password is stored" in page
    # and a wrong address is refused
    bad = admin_of_scripts.post("/settings/mail", {**form, "alert_email": "security@"})
    assert "is not a mail address" in bad.content.decode()


def test_the_test_mail_reaches_the_mailbox_or_says_why_not(admin_of_scripts, mailbox,
                                                           settings):
    # given the environment's SMTP server (the test's) and its default recipient
    # when a test mail is sent to the default recipient
    response = admin_of_scripts.post("/settings/mail", {"action": "test", "to": ""},
                                     follow=True)
    # then it arrives, and the page says so
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
    assert mailbox.messages[0][1] == ["security@example.com"]
    assert "Tariscope test mail" in mailbox.messages[0][2]
    assert "Test mail sent to security@example.com" in response.content.decode()
    # and with a server that refuses, the page says what happened
    MailSettings.objects.create(pk=1, host="127.0.0.1", port=9, security="none")
    failed = admin_of_scripts.post("/settings/mail", {"action": "test", "to": "x@example.com"},
                                   follow=True)
    assert "was not sent: ConnectionRefusedError" in failed.content.decode()


def test_a_viewer_cannot_open_the_mail_settings(viewer):
    assert viewer.get("/settings/mail").status_code == 403
