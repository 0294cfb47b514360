"""R8.10: subscribers and numbers synced from the 3CX extension list, through the connectors
against the fake 3CX over HTTP (v20 and v18), and the `pbx_sync` command.

The site (tests/conftest.py) holds 101 (Ivan Petrenko) and 102 (Olena Koval) on KyivPBX in
department Sales; the fake 3CX has 100 Ann Lee (Sales), 101 Bob O'Brien (Support, primary),
102 Carla Diaz (Support, disabled) and 103 Dan Wu (DEFAULT)."""
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Call, PhoneNumber, Subscriber, SubscriberGroup
from restrictions.connectors import PbxUnavailable
from restrictions.management.commands.pbx_sync import Command as PbxSyncCommand
from restrictions.models import PbxControl
from restrictions.sync import NoConnector, SyncRefused, pbx_sync, pbx_sync_due
from tests.factories import PhoneNumberFactory, SubscriberFactory
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

# 10 March 2025, noon in Kyiv (UTC+2): "today" of the syncs, unless a test moves on.
NOW = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)


@pytest.fixture
def v20_control(site, v20_config):
    return PbxControl.objects.create(device=site.device, connector=v20_config)


@pytest.fixture
def v18_control(site, v18_config):
    return PbxControl.objects.create(device=site.device, connector=v18_config)


def numbers(device):
    """(number, holder, from, to) of every number of `device`."""
    return sorted((n.dn, n.subscriber.full_name, n.valid_from, n.valid_to)
                  for n in PhoneNumber.objects.filter(device=device).select_related("subscriber"))


def holder(device, dn, day=TODAY) -> Subscriber:
    return PhoneNumber.objects.select_related("subscriber__group").get(
        device=device, dn=dn, valid_from__lte=day).subscriber


# -- v20 ---------------------------------------------------------------------------------------
def test_v20_creates_new_extensions_and_updates_the_holders_of_known_numbers(site, v20_control):
    # given the site's 101 and 102, and the fake's 100-103
    ivan = site.subscriber
    # when the extensions are synced
    counts = pbx_sync(device=site.device, now=NOW)
    # then 100 and 103 are new subscribers from today, 101 and 102 keep their holders, renamed
    assert counts == {"created": 2, "updated": 2, "ended": 0, "unchanged": 0}
    assert numbers(site.device) == [
        ("100", "Ann Lee", TODAY, None),
        ("101", "Bob O'Brien", date(2020, 1, 1), None),
        ("102", "Carla Diaz", date(2020, 1, 1), None),
        ("103", "Dan Wu", TODAY, None),
    ]
    assert holder(site.device, "101").pk == ivan.pk
    # and each has the PBX's e-mail and department, a group of the device's node
    ann, bob, dan = (holder(site.device, dn) for dn in ("100", "101", "103"))
    assert (ann.email, ann.group) == ("ann@example.com", site.sales)  # the existing Sales
    assert (bob.email, bob.group.name, bob.group.node) == ("bob@example.com", "Support", site.node)
    assert (dan.group.name, dan.group.node) == ("DEFAULT", site.node)
    assert holder(site.device, "102").group == bob.group
    # and what it did is recorded on the device's PBX control
    v20_control.refresh_from_db()
    assert (v20_control.last_sync, v20_control.last_sync_at) == (counts, NOW)
    assert v20_control.last_contact_at == NOW


def test_a_second_sync_changes_nothing(site, v20_control):
    # given a first sync
    pbx_sync(device=site.device, now=NOW)
    before = (numbers(site.device), sorted(Subscriber.objects.values_list(
        "pk", "full_name", "email", "group_id")), SubscriberGroup.objects.count())
    # when the extensions are synced again, an hour later
    counts = pbx_sync(device=site.device, now=NOW + timedelta(hours=1))
    # then every extension is unchanged, and so is every row
    assert counts == {"created": 0, "updated": 0, "ended": 0, "unchanged": 4}
    assert (numbers(site.device), sorted(Subscriber.objects.values_list(
        "pk", "full_name", "email", "group_id")), SubscriberGroup.objects.count()) == before


def test_a_change_on_the_pbx_updates_only_that_subscriber(site, v20_control, fake3cx):
    # given a first sync
    pbx_sync(device=site.device, now=NOW)
    # when an administrator renames 100 and moves her to Support
    fake3cx.admin_change("100", DisplayName="Ann Lee-Smith", EmailAddress="ann.smith@example.com",
                         groups=[(3, "users")])
    counts = pbx_sync(device=site.device, now=NOW)
    # then she alone is updated
    assert counts == {"created": 0, "updated": 1, "ended": 0, "unchanged": 3}
    ann = holder(site.device, "100")
    assert (ann.full_name, ann.email, ann.group.name) == (
        "Ann Lee-Smith", "ann.smith@example.com", "Support")


def test_an_extension_closed_into_the_closed_group_keeps_its_department(site, v20_control, fake3cx):
    # given a first sync, Ann in Sales
    pbx_sync(device=site.device, now=NOW)
    # when she is closed by moving her into the connector's closed group ("No outbound")
    fake3cx.admin_change("100", groups=[(9, "users")])
    counts = pbx_sync(device=site.device, now=NOW)
    # then that is no change of department: she stays in Sales, no such group is made
    assert counts == {"created": 0, "updated": 0, "ended": 0, "unchanged": 4}
    assert holder(site.device, "100").group == site.sales
    assert not SubscriberGroup.objects.filter(name="No outbound").exists()


def test_a_dry_run_returns_the_same_counts_and_writes_nothing(site, v20_control):
    # given the database as it is
    before = (numbers(site.device), list(Subscriber.objects.values_list("pk", "full_name", "email",
                                                                        "group_id")),
              list(SubscriberGroup.objects.values_list("pk", "name")))
    # when a dry run is made
    counts = pbx_sync(device=site.device, dry_run=True, now=NOW)
    # then it says what a sync would do, and nothing changed, its record neither
    assert counts == {"created": 2, "updated": 2, "ended": 0, "unchanged": 0}
    assert (numbers(site.device), list(Subscriber.objects.values_list("pk", "full_name", "email",
                                                                      "group_id")),
            list(SubscriberGroup.objects.values_list("pk", "name"))) == before
    v20_control.refresh_from_db()
    assert (v20_control.last_sync_at, v20_control.last_sync) == (None, {})
    # and the real sync that follows does what the dry run said
    assert pbx_sync(device=site.device, now=NOW) == counts


def test_a_removed_extension_ends_its_number_and_keeps_its_history(
        site, v20_control, fake3cx, second_device):
    # given a call of 101 on 9 March, a 101 on another device, and a first sync
    site.ingest(cdr_line(historyid="Call 1", from_dn="101", time_start="2025/03/09 10:00:00",
                         time_answered="2025/03/09 10:00:05", time_end="2025/03/09 10:01:06"))
    call = Call.objects.get(device=site.device)
    assert call.subscriber_id == site.subscriber.pk
    lviv = PhoneNumberFactory(device=second_device, dn="101", subscriber=SubscriberFactory())
    pbx_sync(device=site.device, now=NOW)
    # when 101 is deleted on the PBX and the sync runs the next day
    fake3cx.remove_user("101")
    counts = pbx_sync(device=site.device, now=NOW + timedelta(days=1))
    # then 101 ends yesterday (10 March); its subscriber and its call stay as they were
    assert counts == {"created": 0, "updated": 0, "ended": 1, "unchanged": 3}
    number = PhoneNumber.objects.get(device=site.device, dn="101")
    assert (number.subscriber_id, number.valid_to) == (site.subscriber.pk, TODAY)
    call.refresh_from_db()
    assert call.subscriber_id == site.subscriber.pk
    assert Subscriber.objects.filter(pk=site.subscriber.pk).exists()
    # and the other device's 101 is untouched
    lviv.refresh_from_db()
    assert lviv.valid_to is None
    # and a further sync finds nothing to end
    assert pbx_sync(device=site.device, now=NOW + timedelta(days=2))["ended"] == 0


def test_a_number_given_today_and_removed_today_ends_today(site, v20_control, fake3cx):
    # given 100 created by this morning's sync
    pbx_sync(device=site.device, now=NOW)
    # when it is deleted on the PBX and the sync runs again today
    fake3cx.remove_user("100")
    counts = pbx_sync(device=site.device, now=NOW + timedelta(hours=2))
    # then it ends today (its last day cannot be before its first), and stays ended
    assert counts["ended"] == 1
    assert PhoneNumber.objects.get(device=site.device, dn="100").valid_to == TODAY
    assert pbx_sync(device=site.device, now=NOW + timedelta(hours=3))["ended"] == 0


def test_an_extension_added_again_gets_its_number_back_on_the_same_subscriber(
        site, v20_control, fake3cx):
    # given Dan Wu's 103, ended after he was deleted on the PBX
    pbx_sync(device=site.device, now=NOW)
    dan = holder(site.device, "103")
    fake3cx.remove_user("103")
    pbx_sync(device=site.device, now=NOW + timedelta(days=1))
    # when he is added again and the sync runs a week later
    fake3cx.add_user(14, "103", "Dan", "Wu")
    counts = pbx_sync(device=site.device, now=NOW + timedelta(days=7))
    # then the same subscriber holds 103 again from that day
    assert counts["created"] == 1
    assert [(n.subscriber_id, n.valid_from, n.valid_to) for n in PhoneNumber.objects.filter(
        device=site.device, dn="103").order_by("valid_from")] == [
        (dan.pk, TODAY, TODAY), (dan.pk, date(2025, 3, 17), None)]


def test_a_subscriber_with_two_extensions_takes_the_lower_one_s_data_and_settles(site, v20_control):
    # given Olena holding 102 and 103 on the device
    PhoneNumberFactory(subscriber=site.colleague, device=site.device, dn="103")
    # when the extensions are synced
    first = pbx_sync(device=site.device, now=NOW)
    # then she is Carla Diaz (102), not Dan Wu (103)
    assert first == {"created": 1, "updated": 2, "ended": 0, "unchanged": 1}
    site.colleague.refresh_from_db()
    assert site.colleague.full_name == "Carla Diaz"
    # and a second sync changes nothing (the two extensions do not rename her in turn)
    assert pbx_sync(device=site.device, now=NOW) == {
        "created": 0, "updated": 0, "ended": 0, "unchanged": 4}


def test_what_the_pbx_leaves_empty_is_kept(site, v20_control, fake3cx):
    # given Ivan's e-mail entered here, and 101 with neither e-mail nor group on the PBX
    site.subscriber.email = "ivan@tariscope.example"
    site.subscriber.save()
    fake3cx.admin_change("101", EmailAddress="", groups=[])
    # when the extensions are synced
    pbx_sync(device=site.device, now=NOW)
    # then he takes the PBX's name, and keeps his e-mail and department
    ivan = holder(site.device, "101")
    assert (ivan.full_name, ivan.email, ivan.group) == (
        "Bob O'Brien", "ivan@tariscope.example", site.sales)


# -- v18 ---------------------------------------------------------------------------------------
def test_v18_creates_and_updates_and_leaves_departments_alone(site, v18_control, fake3cx_v18):
    # when the extensions are synced from a v18 PBX (its API lists no departments)
    counts = pbx_sync(device=site.device, now=NOW)
    # then the same subscribers and numbers come, and the groups stay as they are
    assert counts == {"created": 2, "updated": 2, "ended": 0, "unchanged": 0}
    assert numbers(site.device) == [
        ("100", "Ann Lee", TODAY, None),
        ("101", "Bob O'Brien", date(2020, 1, 1), None),
        ("102", "Carla Diaz", date(2020, 1, 1), None),
        ("103", "Dan Wu", TODAY, None),
    ]
    assert holder(site.device, "101").group == site.sales
    assert holder(site.device, "100").group is None
    assert holder(site.device, "103").email == "dan@example.com"
    # and a second sync changes nothing; a deleted extension ends the next day
    assert pbx_sync(device=site.device, now=NOW)["unchanged"] == 4
    fake3cx_v18.remove_user("102")
    assert pbx_sync(device=site.device, now=NOW + timedelta(days=1)) == {
        "created": 0, "updated": 0, "ended": 1, "unchanged": 3}
    assert PhoneNumber.objects.get(device=site.device, dn="102").valid_to == TODAY


# -- refusals and errors -----------------------------------------------------------------------
def test_an_empty_extension_list_ends_nothing(site, v20_control, fake3cx):
    # given a PBX that lists no users (an API client without access to them)
    fake3cx.users.clear()
    # when the extensions are synced
    with pytest.raises(SyncRefused, match="lists no extensions"):
        pbx_sync(device=site.device, now=NOW)
    # then the numbers are as they were
    assert [n[3] for n in numbers(site.device)] == [None, None]


def test_an_unreachable_pbx_raises_the_connector_s_error_and_changes_nothing(
        site, v20_control, fake3cx):
    # given a PBX that closes every connection
    fake3cx.fail("down")
    # when the extensions are synced
    with pytest.raises(PbxUnavailable):
        pbx_sync(device=site.device, now=NOW)
    # then nothing was written, the record neither
    assert len(numbers(site.device)) == 2
    v20_control.refresh_from_db()
    assert v20_control.last_sync_at is None


def test_a_device_without_a_connector_is_refused(site):
    with pytest.raises(NoConnector, match="KyivPBX has no PBX connector"):
        pbx_sync(device=site.device, now=NOW)


# -- periodically ------------------------------------------------------------------------------
def test_due_syncs_run_every_sync_minutes(site, v20_control, fake3cx):
    # given a device synced every 60 minutes, never synced yet
    # when the due syncs run now, half an hour later and an hour later
    first = pbx_sync_due(now=NOW)
    early = pbx_sync_due(now=NOW + timedelta(minutes=30))
    later = pbx_sync_due(now=NOW + timedelta(minutes=60))
    # then it was synced the first and the third time only
    assert first == {"KyivPBX": {"created": 2, "updated": 2, "ended": 0, "unchanged": 0}}
    assert early == {}
    assert later == {"KyivPBX": {"created": 0, "updated": 0, "ended": 0, "unchanged": 4}}
    v20_control.refresh_from_db()
    assert v20_control.last_sync_at == NOW + timedelta(minutes=60)


def test_due_syncs_skip_a_device_whose_sync_minutes_are_zero(site, v20_control, fake3cx):
    # given a device whose extensions are synced by hand only
    v20_control.connector = {**v20_control.connector, "sync_minutes": 0}
    v20_control.save()
    # when the due syncs run
    result = pbx_sync_due(now=NOW)
    # then its PBX is not asked
    assert result == {}
    assert fake3cx.requests("v20") == []


def test_a_wrong_sync_minutes_is_reported_as_the_device_s_configuration_error(site, v20_control):
    # given sync_minutes that is not a number
    v20_control.connector = {**v20_control.connector, "sync_minutes": "hourly"}
    v20_control.save()
    # when the due syncs run
    result = pbx_sync_due(now=NOW)
    # then the device's error says what is wrong, and is recorded
    assert "'sync_minutes' must be a whole number" in result["KyivPBX"]["error"]
    v20_control.refresh_from_db()
    assert "'sync_minutes' must be a whole number" in v20_control.last_error


def test_a_failing_device_is_recorded_and_the_others_are_synced(
        site, v20_control, fake3cx, second_device, v18_config, fake3cx_v18):
    # given a second device whose PBX (a v18) closes every connection
    broken = PbxControl.objects.create(device=second_device, connector=v18_config)
    fake3cx_v18.fail("down")
    # when the due syncs run
    result = pbx_sync_due(now=NOW)
    # then KyivPBX is synced, and LvivPBX's error is reported and recorded
    assert result["KyivPBX"]["created"] == 2
    assert "cannot reach the PBX" in result["LvivPBX"]["error"]
    broken.refresh_from_db()
    assert "cannot reach the PBX" in broken.last_error and broken.last_error_at == NOW
    assert broken.last_sync_at is None


# -- the command -------------------------------------------------------------------------------
def run(*args) -> str:
    out = io.StringIO()
    call_command("pbx_sync", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_counts_as_one_line_of_json(site, v20_control):
    # when the command syncs KyivPBX, first as a dry run
    dry = run("--device", "KyivPBX", "--dry-run")
    real = run("--device", "KyivPBX")
    # then each prints one line of JSON with sorted keys; only the real run wrote
    expected = '{"created": 2, "ended": 0, "unchanged": 0, "updated": 2}\n'
    assert dry == expected and real == expected
    assert PhoneNumber.objects.filter(device=site.device).count() == 4


def test_the_command_without_a_device_syncs_every_device_with_a_connector(site, v20_control):
    assert json.loads(run("--dry-run")) == {
        "KyivPBX": {"created": 2, "ended": 0, "unchanged": 0, "updated": 2}}


def test_the_command_fails_with_status_1_for_a_device_without_a_connector(site, capsys):
    # when the command is run as from the shell for a device without a connector
    with pytest.raises(SystemExit) as exit_:
        PbxSyncCommand().run_from_argv(["manage.py", "pbx_sync", "--device", "KyivPBX"])
    # then it exits with status 1 and says why on stderr
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert "KyivPBX has no PBX connector" in captured.err and captured.out == ""


def test_the_command_fails_for_an_unreachable_pbx_or_an_unknown_device(site, v20_control, fake3cx):
    fake3cx.fail("down")
    with pytest.raises(CommandError, match="KyivPBX: the PBX could not be synced: .*cannot reach"):
        run("--device", "KyivPBX")
    with pytest.raises(CommandError, match="no device named 'Nowhere'"):
        run("--device", "Nowhere")


def test_the_command_without_a_device_prints_the_others_before_failing_for_one(
        site, v20_control, second_device, v18_config, fake3cx_v18):
    # given LvivPBX's PBX closing every connection
    PbxControl.objects.create(device=second_device, connector=v18_config)
    fake3cx_v18.fail("down")
    out = io.StringIO()
    # when every device is synced
    with pytest.raises(CommandError, match="LvivPBX: the PBX could not be synced"):
        call_command("pbx_sync", stdout=out)
    # then KyivPBX was synced and printed
    assert json.loads(out.getvalue()) == {
        "KyivPBX": {"created": 2, "ended": 0, "unchanged": 0, "updated": 2}}
