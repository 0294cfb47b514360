"""R8.1, R8.2 end to end, against the fake 3CX (a real HTTP server held to 3CX's API
description): stored calls push a subscriber over a money limit, the warning mail reaches a
real SMTP server first, the extension is closed on the PBX, and at 00:00 on the 1st in the
node's zone it is reopened to exactly its state before; a group limit closes every extension
of the subtree; a PBX that is down, answers 500 or drops the token is retried and nothing is
marked done before it confirmed; a close whose answer was lost is retried without taking the
closed state for the state before; a script's critical alert closes the extension too."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine

import scripts
from restrictions.models import Cause, Closure, Limit, PbxChange, PbxControl
from restrictions.pbx import pbx_changes_run
from restrictions.selectors import restrictions_status
from restrictions.services import closure_make, closure_reopen, limits_reopen_due
from scripts.dispatch import Dispatcher
from scripts.models import Alert, ScriptBinding
from tests.conftest import wait_for
from tests.factories import PhoneNumberFactory, SubscriberFactory, SubscriberGroupFactory
from tests.restrictions.test_limits import JUNE, collect, kyiv_call
from tests.scripts.conftest import mailbox  # noqa: F401 - the real SMTP server's fixture

pytestmark = pytest.mark.django_db

NO_OUTBOUND = "No outbound"  # the fake's group no outbound rule serves (v20_config's)


@pytest.fixture(autouse=True)
def _in_process(request, settings):
    """The limits' check and the PBX changes run where the calls were stored (with a broker
    they are a worker's tasks: the tests with a worker keep the broker)."""
    if "redis_worker" not in request.fixturenames:
        settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def pbx(site, fake3cx, v20_config):
    """The site's 3CX controlled through the v20 connector, closing by the group 'No
    outbound'. The fake's 101 (Bob, in Sales and Support, primary Support) is Ivan's
    extension, 102 (Carla, disabled) Olena's."""
    PbxControl.objects.create(device=site.device, connector=v20_config)
    return fake3cx


@pytest.fixture
def june():
    with time_machine.travel(JUNE, tick=False):
        yield


def groups_of(fake, number: str) -> list[str]:
    return sorted(group for group, _role in fake.memberships(number))


def closed_on_pbx(fake, number: str) -> bool:
    return groups_of(fake, number) == [NO_OUTBOUND]


def test_a_money_limit_mails_first_closes_the_extension_and_the_first_reopens_it(
        site, pbx, mailbox, django_capture_on_commit_callbacks):  # noqa: F811
    # given a limit of 5.00 UAH with a warning at 80 %, and the PBX as it was
    before = pbx.snapshot()
    Limit.objects.create(subscriber=site.subscriber, money=Decimal("5.00"), currency="UAH",
                         warn_percent=80)
    mail = Dispatcher()
    with time_machine.travel(JUNE, tick=False):
        # when 4.00 UAH of calls are stored, and the outbox is sent
        collect(site, django_capture_on_commit_callbacks, kyiv_call("a", 8))
        mail.mail_send()
        # then the warning has reached the mailbox and the extension is still open
        assert [m[2] for m in mailbox.messages if "Subject: Limit warning" in m[2]]
        assert not closed_on_pbx(pbx, "101")
        # when 1.00 more is stored
        collect(site, django_capture_on_commit_callbacks, kyiv_call("b", 2))
        mail.mail_send()
    # then the extension is in the closed group only, by one PATCH, confirmed
    assert closed_on_pbx(pbx, "101")
    change = PbxChange.objects.get()
    assert (change.action, change.status, change.extension) == ("close", "done", "101")
    assert change.previous_state["before"]["PrimaryGroupId"] == 3
    assert len(pbx.requests("v20", "PATCH", "/xapi/v1/Users(12)")) == 1
    subjects = [line for _, _, text in mailbox.messages for line in text.splitlines()
                if line.startswith("Subject: ")]
    assert subjects == ["Subject: Limit warning: Ivan Petrenko",
                        "Subject: Outgoing calls closed: Ivan Petrenko"]
    # and the others are untouched
    assert not closed_on_pbx(pbx, "100") and not closed_on_pbx(pbx, "102")
    # when it is 23:59 on 30 June in Kyiv, then 00:00 on 1 July
    with time_machine.travel(datetime(2024, 6, 30, 20, 59, tzinfo=UTC), tick=False):
        assert limits_reopen_due() == {"reopened": 0}
    assert closed_on_pbx(pbx, "101")
    with (time_machine.travel(datetime(2024, 6, 30, 21, 0, tzinfo=UTC), tick=False),
          django_capture_on_commit_callbacks(execute=True)):
        assert limits_reopen_due() == {"reopened": 1}
    # then the PBX is exactly as it was before the closure
    assert pbx.snapshot() == before
    reopen = PbxChange.objects.get(action="reopen")
    assert reopen.status == "done" and reopen.answer.startswith("restored")


def test_a_group_limit_closes_every_extension_of_the_subtree_and_no_other(
        site, pbx, june, django_capture_on_commit_callbacks):
    # given a team under Sales whose member holds 103, someone outside holding 100, and a
    # limit of 3.00 on Sales
    team = SubscriberGroupFactory(node=site.node, name="Sales team", parent=site.sales)
    PhoneNumberFactory(subscriber=SubscriberFactory(full_name="Taras", group=team),
                       device=site.device, dn="103")
    PhoneNumberFactory(subscriber=SubscriberFactory(full_name="Outside", group=None),
                       device=site.device, dn="100")
    Limit.objects.create(group=site.sales, money=Decimal("3.00"), currency="UAH")
    # when 101 and 103 each call Kyiv for 3 minutes
    collect(site, django_capture_on_commit_callbacks, kyiv_call("s", 3),
            kyiv_call("t", 3, extension="103"))
    # then 101, 102 and 103 are closed on the PBX, and 100 is not
    assert [n for n in ("100", "101", "102", "103") if closed_on_pbx(pbx, n)] == [
        "101", "102", "103"]
    assert set(PbxChange.objects.values_list("extension", "status")) == {
        ("101", "done"), ("102", "done"), ("103", "done")}


def test_a_pbx_that_is_down_then_fails_is_retried_and_nothing_is_done_before_it_confirms(
        site, pbx, django_capture_on_commit_callbacks):
    # given the PBX down
    pbx.fail("down")
    # when an operator closes Ivan
    with django_capture_on_commit_callbacks(execute=True):
        closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="no budget",
                     by="operator olena")
    # then the change waits, with its error, shown as pending; the device shows the error
    change = PbxChange.objects.get()
    assert (change.status, change.attempts) == ("pending", 1) and change.last_error
    assert [(c["extension"], c["status"]) for c in restrictions_status()["pbx_changes"]] == [
        ("101", "pending")]
    control = PbxControl.objects.get()
    assert control.last_error and control.last_contact_at is None
    # when the next try comes before its time: nothing is tried
    assert pbx_changes_run()["retry"] == 0
    # when the PBX answers 500 at the next try
    pbx.heal()
    pbx.fail("status", status=500, path="/xapi/v1/Users")
    later = change.next_try_at + timedelta(seconds=1)
    assert pbx_changes_run(now=later)["retry"] == 1
    change.refresh_from_db()
    assert change.status == "pending" and change.attempts == 2
    assert not closed_on_pbx(pbx, "101")
    # when it is back, and its token was revoked meanwhile
    pbx.heal()
    pbx.revoke_tokens()
    assert pbx_changes_run(now=change.next_try_at + timedelta(seconds=1))["done"] == 1
    # then it is closed, confirmed, and the device is in contact again
    change.refresh_from_db()
    assert change.status == "done" and closed_on_pbx(pbx, "101")
    control.refresh_from_db()
    assert control.last_contact_at and not control.last_error


def test_a_close_whose_answer_was_lost_keeps_the_state_before_its_first_attempt(
        site, pbx, django_capture_on_commit_callbacks):
    # given a PBX that makes the change but whose answer is lost (a 503 after the PATCH)
    before = pbx.snapshot()
    pbx.corrupt("UpdateUser", lambda status, payload: (
        503, {"error": {"code": "503", "message": "lost on the way back"}}))
    with django_capture_on_commit_callbacks(execute=True):
        closure = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR,
                               reason="r", by="o")
    change = PbxChange.objects.get()
    assert change.status == "pending" and closed_on_pbx(pbx, "101")
    # when it is tried again (the PBX finds the extension closed already)
    assert pbx_changes_run(now=change.next_try_at + timedelta(seconds=1))["done"] == 1
    # then what it recorded is the extension before the first attempt
    change.refresh_from_db()
    assert change.status == "done"
    assert change.previous_state["changed"] is True
    assert change.previous_state["before"]["PrimaryGroupId"] == 3
    # and the reopen restores it exactly
    with django_capture_on_commit_callbacks(execute=True):
        closure_reopen(closure=closure, by="o", reason="r")
    assert pbx.snapshot() == before


def test_a_reopen_while_the_close_waits_cancels_it_and_the_pbx_sees_neither(
        site, pbx, django_capture_on_commit_callbacks):
    # given the PBX down while Ivan is closed
    pbx.fail("down")
    with django_capture_on_commit_callbacks(execute=True):
        closure = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR,
                               reason="r", by="o")
    # when he is reopened before the PBX came back, then it comes back
    with django_capture_on_commit_callbacks(execute=True):
        closure_reopen(closure=closure, by="o", reason="a mistake")
    pbx.heal()
    pbx_changes_run(now=datetime.now(UTC) + timedelta(hours=1))
    # then the PBX was never changed, and the history says why
    assert not pbx.requests("v20", "PATCH")
    assert list(PbxChange.objects.values_list("action", "status")) == [("close", "cancelled")]
    assert not closed_on_pbx(pbx, "101")


def test_a_refused_change_fails_with_the_pbxs_answer_and_is_not_retried(
        site, pbx, django_capture_on_commit_callbacks):
    # given Ivan's number is one the PBX does not know
    site.number.dn = "199"
    site.number.save()
    # when he is closed
    with django_capture_on_commit_callbacks(execute=True):
        closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="r", by="o")
    # then the change failed, saying why, and a later run does not try it again
    change = PbxChange.objects.get()
    assert change.status == "failed" and "199" in change.last_error
    asked = len(pbx.log)
    pbx_changes_run(now=datetime.now(UTC) + timedelta(hours=1))
    assert len(pbx.log) == asked
    assert Closure.objects.get().is_open  # the class is closed; the PBX refused to follow


@pytest.mark.django_db(transaction=True)
def test_a_critical_alert_of_fraud_rules_closes_the_extension_on_the_pbx(
        site, pbx, settings, mailbox):  # noqa: F811
    # given the shipped fraud_rules.py, edited to close on a critical alert and to take any
    # local or international call over 2.00 for a critical one, bound to the stored calls
    shipped = Path(scripts.__file__).parent / "shipped" / "fraud_rules.py"
    text = shipped.read_text()
    edits = {"\nCLOSE_ON_CRITICAL = False\n": "\nCLOSE_ON_CRITICAL = True\n",
             "\nMAX_CALL_COST = None\n": "\nMAX_CALL_COST = 2\n",
             "\nINTERNATIONAL_CALLTYPES = (5,)\n": "\nINTERNATIONAL_CALLTYPES = (3, 5)\n"}
    for shipped_line, edited in edits.items():
        assert shipped_line in text
        text = text.replace(shipped_line, edited)
    settings.SCRIPTS_DIR.mkdir(parents=True, exist_ok=True)
    (settings.SCRIPTS_DIR / "fraud_rules_closing.py").write_text(text)
    ScriptBinding.objects.create(profile=site.profile, event="call_processed",
                                 script="fraud_rules_closing.py")
    dispatcher = Dispatcher()
    try:
        # when a call of 4.00 is stored and dispatched
        with time_machine.travel(JUNE, tick=False):
            site.ingest(kyiv_call("dear", 8))
        dispatcher.run_once()
    finally:
        dispatcher.close()
    # then the alert is critical, Ivan is closed by the script, and the PBX followed
    assert Alert.objects.get().level == "critical"
    closure = Closure.objects.get()
    assert (closure.subscriber, closure.cause) == (site.subscriber, Cause.SCRIPT)
    assert closed_on_pbx(pbx, "101")
    assert PbxChange.objects.get().status == "done"
    # and the security officer's mail says so
    wait_for(lambda: any("closed on the PBX" in text for _, _, text in mailbox.messages),
             timeout=10)


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_a_worker_makes_the_change(site, pbx, redis_worker):
    # given tasks that go through the broker to a worker
    # when an operator closes Ivan
    closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="r", by="o")
    # then the worker closes the extension on the PBX
    wait_for(lambda: PbxChange.objects.get().status == "done", timeout=20)
    assert closed_on_pbx(pbx, "101")
