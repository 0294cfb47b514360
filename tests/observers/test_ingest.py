"""R2.4, R2.5, R2.7, R3, R4, R6.3: the collection pipeline from bytes to rated calls
(observers.pipeline.profile_ingest, `manage.py ingest`, `manage.py observer --once`)."""
import json
import signal
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command

from billing.models import Call
from observers.archive import archive_file_name
from observers.models import ObserverProfile, ObserverState, RejectedRecord
from observers.pipeline import profile_ingest
from tariffs.choices import CallType, Direction
from tariffs.models import TariffPrice
from tests.conftest import wait_for
from tests.factories import (
    DeviceFactory,
    ObserverProfileFactory,
    OperatorFactory,
    PhoneNumberFactory,
    RouteFactory,
    SubscriberFactory,
    TariffPlanFactory,
    priced_code,
)
from tests.observers.threecx_cdr import INCOMING, INTERNAL, cdr_file, cdr_line

NOW = datetime(2024, 6, 17, 12, 0, tzinfo=UTC)


def test_outgoing_call_is_stored_normalised_classified_and_rated(site):
    # given extension 101 (Ivan) dialling 9 044 123 45 67 for 61 s
    # when the line is ingested
    summary = site.ingest(cdr_line())
    # then one call is stored with its subscriber, normalised number, type and cost
    assert summary.as_dict() == {"received": 1, "calls": 1, "duplicates": 0, "rejected": 0}
    call = Call.objects.get()
    assert call.subscriber == site.subscriber
    assert (call.extension, call.dialled, call.normalized) == ("101", "90441234567",
                                                               "380441234567")
    assert (call.direction, call.call_type) == (Direction.OUTGOING, CallType.LOCAL)
    assert (call.operator, call.plan, call.code, call.tariff) == (
        site.operator, site.plan, "38044", site.kyiv.tariff)
    # 61 s -> 120 s; 0.50 * 120 / 60 = 1.00
    assert (call.duration, call.billable_seconds) == (61, 120)
    assert (call.cost, call.currency) == (Decimal("1.00"), "UAH")
    assert call.rating_note.startswith("code 38044 (Kyiv), tariff Kyiv; 61s billed as 120s")


def test_call_goes_to_whoever_held_the_number_on_the_call_date(site):
    # given number 105 held by Ivan until 2024-06-14 and by Olena from 2024-06-15
    PhoneNumberFactory(subscriber=site.subscriber, device=site.device, dn="105",
                       valid_from=date(2024, 6, 1), valid_to=date(2024, 6, 14))
    PhoneNumberFactory(subscriber=site.colleague, device=site.device, dn="105",
                       valid_from=date(2024, 6, 15))
    # when calls from 105 just before and just after local midnight are ingested
    # (00:01 in Kyiv on the 15th is still the 14th in UTC)
    site.ingest(
        cdr_line(historyid="Call 1", from_dn="105", time_start="2024/06/14 23:59:00"),
        cdr_line(historyid="Call 2", from_dn="105", time_start="2024/06/15 00:01:00"),
    )
    # then each call belongs to the holder on its local date
    owners = dict(Call.objects.values_list("source_key", "subscriber__full_name"))
    assert owners == {
        "Call 1|00000000c0ffee01_1": "Ivan Petrenko",
        "Call 2|00000000c0ffee01_1": "Olena Koval",
    }


def test_call_from_a_number_nobody_holds_is_kept_without_subscriber(site):
    # given extension 199, which no subscriber holds
    # when its call is ingested
    site.ingest(cdr_line(from_dn="199"))
    # then the call is stored, flagged as from an unknown number, and still rated
    call = Call.objects.get()
    assert call.subscriber is None
    assert call.is_unknown_number
    assert call.cost == Decimal("1.00")  # 0.50 * 120 / 60


def test_call_through_a_route_is_rated_at_the_route_operator(site):
    # given line 10020 bound to a EUR carrier charging 0.10/min for 380
    carrier = OperatorFactory(name="Datagroup", currency="EUR")
    route = RouteFactory(device=site.device, name="10020", operator=carrier)
    priced_code(operator=carrier, plan=site.plan, code="380", price="0.10")
    # when one call leaves through 10020 and one through a line with no route
    site.ingest(
        cdr_line(historyid="Call 1", to_dn="10020", final_dn="10020"),
        cdr_line(historyid="Call 2", to_dn="10099", final_dn="10099"),
    )
    # then the first is the route's carrier's, the second the device default operator's
    by_route = Call.objects.get(source_key__startswith="Call 1|")
    default = Call.objects.get(source_key__startswith="Call 2|")
    assert (by_route.route, by_route.operator, by_route.code) == (route, carrier, "380")
    assert (by_route.cost, by_route.currency) == (Decimal("0.20"), "EUR")  # 0.10 * 120 / 60
    assert (default.route, default.operator, default.trunk) == (None, site.operator, "10099")
    assert (default.cost, default.currency) == (Decimal("1.00"), "UAH")  # 0.50 * 120 / 60


def test_call_is_priced_in_the_subscriber_plan_else_the_device_plan(site):
    # given Ivan on the Business plan, where Kyiv costs 0.30/min; Olena has no plan
    business = TariffPlanFactory(name="Business")
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=business, price_per_minute="0.30")
    site.subscriber.plan = business
    site.subscriber.save()
    # when each makes the same 61 s call to Kyiv
    site.ingest(
        cdr_line(historyid="Call 1", from_dn="101"),
        cdr_line(historyid="Call 2", from_dn="102"),
    )
    # then Ivan's is priced in Business, Olena's in the device's plan
    ivan = Call.objects.get(subscriber=site.subscriber)
    olena = Call.objects.get(subscriber=site.colleague)
    assert (ivan.plan, ivan.cost) == (business, Decimal("0.60"))  # 0.30 * 120 / 60
    assert (olena.plan, olena.cost) == (site.plan, Decimal("1.00"))  # 0.50 * 120 / 60


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2024/06/17 10:00:00", datetime(2024, 6, 17, 7, 0, tzinfo=UTC)),  # summer, +03:00
        ("2024/01/17 10:00:00", datetime(2024, 1, 17, 8, 0, tzinfo=UTC)),  # winter, +02:00
        ("2024/06/17 01:30:00", datetime(2024, 6, 16, 22, 30, tzinfo=UTC)),  # day before
    ],
)
def test_start_is_stored_in_utc_from_the_device_local_time(site, local, utc):
    # given a Europe/Kyiv device writing local times
    # when a call starting at `local` is ingested
    site.ingest(cdr_line(time_start=local))
    # then its start is stored as the same instant in UTC
    assert Call.objects.get().start == utc


def test_mobile_code_gives_the_mobile_call_type(site):
    # given a mobile code 38050 at 2.00/min typed as mobile
    site.priced_code(code="38050", price="2.00", name="Mobile UA", call_type=CallType.MOBILE)
    # when 101 calls 050 123 45 67 for 61 s
    site.ingest(cdr_line(dial_no="90501234567"))
    # then the call is mobile and priced at the mobile code: 2.00 * 120 / 60 = 4.00
    call = Call.objects.get()
    assert (call.normalized, call.call_type, call.code) == ("380501234567", CallType.MOBILE,
                                                            "38050")
    assert call.cost == Decimal("4.00")


@pytest.mark.parametrize(
    ("dialled", "direction", "call_type"),
    [
        ("9112", Direction.OUTGOING, CallType.SERVICE),  # emergency, through the access code
        ("103", Direction.INTERNAL, CallType.INTERNAL),  # extension 103, not the service 103
    ],
)
def test_service_number_and_same_looking_extension_are_told_apart(site, dialled, direction,
                                                                   call_type):
    # given extension 103 held by Olena, and 101 dialling `dialled` out through the line
    PhoneNumberFactory(subscriber=site.colleague, device=site.device, dn="103")
    # when ingested
    site.ingest(cdr_line(dial_no=dialled))
    # then it is a service call or an internal one (and no code of the carrier prices either)
    call = Call.objects.get()
    assert (call.normalized, call.direction, call.call_type) == (dialled.removeprefix("9"),
                                                                 direction, call_type)
    assert call.cost is None


def test_internal_call_is_stored_but_not_rated(site):
    # given 101 calling 102
    # when ingested
    site.ingest(cdr_line(INTERNAL))
    # then it is an internal call with no cost
    call = Call.objects.get()
    assert (call.direction, call.call_type) == (Direction.INTERNAL, CallType.INTERNAL)
    assert call.cost is None
    assert call.rating_note == "internal call: not rated"


def test_incoming_call_is_rated_only_at_incoming_tariffs(site):
    # given only outgoing tariffs at first
    # when a mobile's call to 102 is ingested
    site.ingest(cdr_line(INCOMING, historyid="Call 1"))
    # then it is an incoming call of Olena with no cost, and the reason says why
    first = Call.objects.get()
    assert (first.direction, first.call_type, first.subscriber) == (
        Direction.INCOMING, CallType.INCOMING, site.colleague)
    assert first.cost is None
    assert first.rating_note == (f"no code of {site.operator.name} valid on 2024-06-17 "
                                 "matches 380501234567")
    # and once an incoming tariff of 0.20/min exists, the next incoming call is priced
    site.priced_code(code="380", price="0.20", tariff_name="Incoming",
                     direction=Direction.INCOMING)
    site.ingest(cdr_line(INCOMING, historyid="Call 2"))
    second = Call.objects.get(source_key__startswith="Call 2|")
    assert second.cost == Decimal("0.40")  # 120 s -> 0.20 * 120 / 60


def test_incoming_call_from_a_short_caller_id_stays_incoming_and_priced(site):
    # given an incoming tariff for the carrier's short number 555 at 0.20/min
    site.priced_code(code="555", price="0.20", tariff_name="Incoming short",
                     direction=Direction.INCOMING)
    # when 555 (three digits, like an extension) calls in on line 10000 and 102 answers
    site.ingest(cdr_line(INCOMING, from_no="555"))
    # then it is an incoming call, of the incoming type, priced: 0.20 * 120 / 60 = 0.40
    call = Call.objects.get()
    assert (call.direction, call.call_type) == (Direction.INCOMING, CallType.INCOMING)
    assert call.cost == Decimal("0.40")


def test_call_without_any_operator_is_kept_unrated_with_the_reason(db):
    # given a device with no default operator and no routes
    device = DeviceFactory(default_operator=None)
    profile = ObserverProfileFactory(device=device)
    # when an outgoing call is ingested
    profile_ingest(profile=profile, data=cdr_file(cdr_line()))
    # then it is stored without cost, saying why
    call = Call.objects.get()
    assert call.cost is None
    assert call.rating_note == "no route operator and no default operator on the device"


def test_ingesting_the_same_file_twice_adds_no_call(site):
    # given a file of three calls
    lines = (cdr_line(), cdr_line(INCOMING), cdr_line(INTERNAL))
    # when it is ingested twice
    first = site.ingest(*lines)
    second = site.ingest(*lines)
    # then the second delivery is counted as duplicates and stores nothing
    assert first.as_dict() == {"received": 3, "calls": 3, "duplicates": 0, "rejected": 0}
    assert second.as_dict() == {"received": 3, "calls": 0, "duplicates": 3, "rejected": 0}
    assert Call.objects.count() == 3


def test_same_record_twice_in_one_file_is_stored_once(site):
    # given a file in which one record appears twice
    # when it is ingested
    summary = site.ingest(cdr_line(), cdr_line())
    # then one call is stored and one duplicate counted
    assert summary.as_dict() == {"received": 2, "calls": 1, "duplicates": 1, "rejected": 0}
    assert Call.objects.count() == 1


def test_duplicates_are_found_across_batches(site, settings):
    # given batches of two records
    settings.TARISCOPE_BATCH_SIZE = 2
    lines = [cdr_line(historyid=f"Call {n}") for n in range(5)]
    # when five records and then a repeat of the first are ingested
    summary = site.ingest(*lines, lines[0])
    # then the repeat, though in a later batch, is a duplicate
    assert summary.as_dict() == {"received": 6, "calls": 5, "duplicates": 1, "rejected": 0}
    assert Call.objects.count() == 5


def test_malformed_line_is_kept_as_a_reject_and_the_rest_stored(site):
    # given a file whose second line is cut short
    summary = site.ingest(cdr_line(historyid="Call 1"), "Call 2,abc",
                          cdr_line(historyid="Call 3"), name="cdr-0617.csv")
    # then the two good lines are calls and the bad one a reject with all it needs
    assert summary.as_dict() == {"received": 3, "calls": 2, "duplicates": 0, "rejected": 1}
    assert Call.objects.count() == 2
    reject = RejectedRecord.objects.get()
    assert (reject.profile, reject.source_name, reject.line_number, reject.raw, reject.reason) \
        == (site.profile, "cdr-0617.csv", 2, "Call 2,abc", "expected 27 fields, found 2")


def test_redelivered_bad_line_is_listed_once(site):
    # given a file with a malformed line, ingested once
    lines = (cdr_line(), "Call 2,abc")
    site.ingest(*lines)
    # when the same file is delivered again
    again = site.ingest(*lines)
    # then the delivery still reports the line as rejected, but it is listed and counted once
    assert again.as_dict() == {"received": 2, "calls": 0, "duplicates": 1, "rejected": 1}
    assert RejectedRecord.objects.count() == 1
    assert ObserverProfile.objects.get(pk=site.profile.pk).rejects_total == 1


def test_record_too_long_for_its_columns_is_rejected_and_the_rest_stored(site):
    # given a file whose first record has a 70-digit dialled number (the column holds 64)
    too_long = cdr_line(historyid="Call 1", dial_no="9" + "1" * 69)
    # when it is ingested
    summary = site.ingest(too_long, cdr_line(historyid="Call 2"))
    # then the overlong record is a reject (R2.7: processing goes on) and the other a call
    assert summary.rejected == 1
    assert list(Call.objects.values_list("source_key", flat=True)) == [
        "Call 2|00000000c0ffee01_1"]
    assert RejectedRecord.objects.get().raw == too_long


@time_machine.travel(NOW, tick=False)
def test_raw_archive_holds_every_byte_received(site):
    # given a file with a good and a malformed line, no final newline
    data = cdr_file(cdr_line()) + b"Call 2,abc"
    # when it is ingested
    profile_ingest(profile=site.profile, data=data, source_name="cdr.csv")
    # then the month's archive of the profile holds all of it, rejects included
    path = settings.ARCHIVE_DIR / site.profile.name / f"{site.profile.name}_2024-06.cdr"
    assert path.read_bytes() == data + b"\n"


@time_machine.travel(NOW, tick=False)
def test_archive_goes_to_the_profile_folder_and_period(site, tmp_path):
    # given a profile archiving daily into its own folder
    site.profile.archive_dir = str(tmp_path / "raw")
    site.profile.archive_period = "day"
    site.profile.save()
    data = cdr_file(cdr_line())
    # when data is ingested
    profile_ingest(profile=site.profile, data=data)
    # then it is in that folder's file for the day
    name = archive_file_name(site.profile.name, "day", NOW.date())
    assert (tmp_path / "raw" / name).read_bytes() == data


@time_machine.travel(NOW, tick=False)
def test_profile_counters_and_last_record_time_are_updated(site):
    # given a file of two calls and one malformed line
    lines = (cdr_line(), "Call 2,abc", cdr_line(INCOMING))
    # when it is ingested
    site.ingest(*lines)
    # then the profile counts two records and one reject, last received now
    profile = ObserverProfile.objects.get(pk=site.profile.pk)
    assert (profile.records_total, profile.rejects_total) == (2, 1)
    assert profile.last_record_at == NOW


def test_last_record_time_is_kept_when_nothing_new_arrives(site):
    # given a file already ingested at 12:00
    with time_machine.travel(NOW, tick=False):
        site.ingest(cdr_line())
    # when the same file is delivered again an hour later
    with time_machine.travel(datetime(2024, 6, 17, 13, 0, tzinfo=UTC), tick=False):
        site.ingest(cdr_line())
    # then neither the record count nor the last record time moves
    profile = ObserverProfile.objects.get(pk=site.profile.pk)
    assert (profile.records_total, profile.last_record_at) == (1, NOW)


def test_profile_log_has_rejects_and_totals_at_info_level(site):
    # given a profile logging at the Info level
    site.profile.log_level = 3
    site.profile.save()
    # when a file with one malformed line is ingested
    site.ingest(cdr_line(), "Call 2,abc", name="cdr-0617.csv")
    # then its own log file names the reject and the totals
    log = (settings.LOG_DIR / "observer" / f"{site.profile.name}.log").read_text()
    assert "cdr-0617.csv line 2 rejected: expected 27 fields, found 2" in log
    assert ("cdr-0617.csv: {'received': 2, 'calls': 1, 'duplicates': 0, 'rejected': 1}"
            in log)


def test_profile_log_has_the_totals_at_the_default_status_level(site):
    # given a profile at the default, least detailed level (R2.1 Status: start/stop, totals)
    assert site.profile.log_level == 0
    # when a file is ingested
    site.ingest(cdr_line(), name="cdr-0617.csv")
    # then its log file still records the file's totals
    log = (settings.LOG_DIR / "observer" / f"{site.profile.name}.log").read_text()
    assert "cdr-0617.csv: {'received': 1, 'calls': 1, 'duplicates': 0, 'rejected': 0}" in log


def test_device_type_without_parser_is_a_clear_error_before_anything_is_archived(db):
    # given a profile of a device type without a parser (an unsupported PBX)
    profile = ObserverProfileFactory(device=DeviceFactory(type="mitel"))
    data = b"cdrRecordType,globalCallID_callManagerId\n"
    # when data is ingested
    with pytest.raises(LookupError, match=r"no CDR parser for device type 'mitel' yet; "
                                          r"available: \['3cx', 'asterisk', 'cucm', "
                                          r"'freeswitch', 'generic', 'radius'\]"):
        profile_ingest(profile=profile, data=data)
    # then nothing is stored, and nothing that could never be parsed is archived
    assert Call.objects.count() == 0
    assert not (settings.ARCHIVE_DIR / profile.name).exists()


# --- manage.py ingest ------------------------------------------------------------------

def test_ingest_command_prints_the_totals_of_all_files_as_json(site, tmp_path):
    # given two files: two calls; then one of them again plus a malformed line
    first = tmp_path / "a.csv"
    first.write_bytes(cdr_file(cdr_line(), cdr_line(INCOMING)))
    second = tmp_path / "b.csv"
    second.write_bytes(cdr_file(cdr_line(), "Call 9,abc"))
    out = StringIO()
    # when both are ingested by the command
    call_command("ingest", "--profile", site.profile.name, str(first), str(second), stdout=out)
    # then it prints the summed totals as JSON
    assert json.loads(out.getvalue()) == {"received": 4, "calls": 2, "duplicates": 1,
                                          "rejected": 1}
    assert Call.objects.count() == 2


def test_ingest_command_reports_a_device_type_without_parser(db, tmp_path):
    # given a CUCM profile and a file
    profile = ObserverProfileFactory(device=DeviceFactory(type="mitel"))
    path = tmp_path / "cdr.txt"
    path.write_bytes(b"x\n")
    # when the command ingests it; then it fails with the parser error, not a traceback
    with pytest.raises(CommandError, match="no CDR parser for device type 'mitel'"):
        call_command("ingest", "--profile", profile.name, str(path), stdout=StringIO())


def test_ingest_command_rejects_unknown_profile_and_missing_files(site, tmp_path):
    # given no profile named Nope, and a file that does not exist
    missing = tmp_path / "missing.csv"
    # when the command is run with them; then each is a clear error and nothing is stored
    with pytest.raises(CommandError, match="no observer profile named 'Nope'"):
        call_command("ingest", "--profile", "Nope", str(missing), stdout=StringIO())
    with pytest.raises(CommandError, match="not a readable file: .*missing.csv"):
        call_command("ingest", "--profile", site.profile.name, str(missing), stdout=StringIO())
    assert Call.objects.count() == 0


# --- manage.py observer, end to end on PostgreSQL ----------------------------------------

@pytest.fixture
def restore_signal_handlers():
    """`manage.py observer` installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


# The collector closes stale connections between files, which a test wrapped in one
# transaction would not survive: these tests commit (transactional_db).

@pytest.mark.postgres
def test_observer_once_collects_rates_and_moves_the_file(postgres, transactional_db, tmp_path,
                                                         restore_signal_handlers, pipeline_worker):
    # given a folder profile of a 3CX with five-digit extensions whose line 10020 goes to
    # a EUR carrier: Sweden 46 at 2.40/min, Swedish mobiles 467 at 3.00/min
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    device = DeviceFactory(extension_length=5)
    carrier = OperatorFactory(name="Telia", currency="EUR")
    RouteFactory(device=device, name="10020", operator=carrier)
    priced_code(operator=carrier, plan=device.default_plan, code="46", price="2.40",
                name="Sweden")
    priced_code(operator=carrier, plan=device.default_plan, code="467", price="3.00",
                name="Sweden mobile", call_type=CallType.MOBILE)
    employee = SubscriberFactory(full_name="Backup no2")
    PhoneNumberFactory(subscriber=employee, device=device, dn="10016")
    profile = ObserverProfileFactory(device=device, settings={"path": str(inbox)})
    # and a 3CX CDR file shaped like the real sample (27 fields, a blank line after it)
    name = "cdr-240617055949.288831.log"
    (inbox / name).write_bytes(cdr_file(cdr_line(
        historyid="Call 288831", callid="4cc2c72490010000_26808", duration="00:00:25",
        time_start="2024/06/17 05:59:49", time_answered="2024/06/17 05:59:58",
        time_end="2024/06/17 06:00:23", from_no="Ext.10016", to_no="+46703014082",
        from_dn="10016", to_dn="10020", dial_no="+46703014082", final_number="+46703014082",
        final_dn="10020", chain="Chain: Ext.10016;+46703014082;"), "", newline="\n"))
    # when the collector makes one pass
    call_command("observer", name=profile.name, once=True)
    # then the call is stored (by the Celery worker, when a broker is configured) and
    # rated: 25 s -> 60 s; 3.00 * 60 / 60 = 3.00 EUR
    call = wait_for(lambda: Call.objects.first())
    assert (call.subscriber, call.extension, call.normalized) == (employee, "10016",
                                                                  "46703014082")
    assert call.start == datetime(2024, 6, 17, 2, 59, 49, tzinfo=UTC)  # 05:59:49 +03:00
    assert (call.operator, call.code, call.call_type) == (carrier, "467", CallType.MOBILE)
    assert (call.cost, call.currency) == (Decimal("3.00"), "EUR")
    # and the file has moved to done/, and the collector is offline again
    assert sorted(p.name for p in inbox.iterdir()) == ["done"]
    assert (inbox / "done" / name).is_file()
    profile.refresh_from_db()
    assert (profile.state, profile.records_total) == (ObserverState.OFFLINE, 1)


def test_observer_refuses_a_device_without_parser_before_archiving_its_files(
        transactional_db, tmp_path, restore_signal_handlers):
    # given a folder profile of a device type without a parser with a file waiting in its folder
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "cdr_1.txt").write_bytes(b"cdrRecordType,globalCallID_callManagerId\n")
    profile = ObserverProfileFactory(device=DeviceFactory(type="mitel"),
                                     settings={"path": str(inbox)})
    # when its collector makes one pass; then it stops with the parser error, as
    # `manage.py ingest` does, and archives nothing that could never be parsed
    with pytest.raises(CommandError, match="no CDR parser for device type 'mitel'"):
        call_command("observer", name=profile.name, once=True)
    assert not (settings.ARCHIVE_DIR / profile.name).exists()
    assert sorted(p.name for p in inbox.iterdir()) == ["cdr_1.txt"]


def test_once_is_refused_for_a_listening_source(db, restore_signal_handlers):
    # given a TCP server profile (it listens; there is no "one pass")
    profile = ObserverProfileFactory(source="tcp_server", settings={"port": 5100})
    # when the collector is started for one pass; then it says why not
    with pytest.raises(CommandError, match="--once is for folder sources only"):
        call_command("observer", name=profile.name, once=True)


def test_observer_refuses_to_start_with_bad_parser_settings(db, tmp_path, restore_signal_handlers):
    # given a generic (SMDR) profile whose parser settings name no columns
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    profile = ObserverProfileFactory(device=DeviceFactory(type="generic"),
                                     settings={"path": str(inbox), "parser": {"layout": "csv"}})
    # when its collector starts; then it stops at once and says which setting is wrong
    with pytest.raises(CommandError, match=r"parser settings: .*layout"):
        call_command("observer", name=profile.name, once=True)
    assert not (settings.ARCHIVE_DIR / profile.name).exists()
