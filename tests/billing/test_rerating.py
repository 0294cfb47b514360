"""R4.5: re-rating stored calls after tariffs change (billing/rerating.py, `manage.py rerate`,
the `billing.rerate_batch` task and the Call admin's action)."""
import json
from datetime import date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from billing.models import Call
from billing.rerating import RerateJob, RerateJobError, calls_rerate, rerate_job_step
from tariffs.choices import Direction
from tariffs.models import TariffPrice
from tariffs.services import operator_rates_changed
from tariscope.celery import app as celery_app
from tests.conftest import store_calls
from tests.factories import OperatorFactory, RouteFactory, call_record, priced_code

JUNE = {"date_from": date(2024, 6, 1), "date_to": date(2024, 6, 30)}

pytestmark = pytest.mark.usefixtures("calls")


def costs_by_key():
    """The cost of each stored call, by its source key."""
    return dict(Call.objects.values_list("source_key", "cost"))


@pytest.fixture
def calls(site, second_device):
    """The site's calls (local times, Europe/Kyiv), from its subscriber's 101:

    kyiv61   2024-06-10 10:00  61 s to Kyiv        120 s * 0.50 = 1.00
    kyiv30   2024-06-11 10:00  30 s to Kyiv         60 s * 0.50 = 0.50
    mobile   2024-06-12 10:00  90 s to 050 (380)   120 s * 1.00 = 2.00
    internal 2024-06-13 10:00  101 -> 102          not rated
    london   2024-06-14 10:00  45 s to 0044...     no code: not priced
    may      2024-05-31 10:00  60 s to Kyiv        (outside June) 0.50
    other    2024-06-10 10:00  60 s to Kyiv        (the second device, same carrier) 0.50
    """
    store_calls(device=site.device, records=[
        call_record("kyiv61", datetime(2024, 6, 10, 10), "90441234567", 61),
        call_record("kyiv30", datetime(2024, 6, 11, 10), "90441234567", 30),
        call_record("mobile", datetime(2024, 6, 12, 10), "90501234567", 90),
        call_record("internal", datetime(2024, 6, 13, 10), "102", 20,
                    direction=Direction.INTERNAL),
        call_record("london", datetime(2024, 6, 14, 10), "900442071234567", 45),
        call_record("may", datetime(2024, 5, 31, 10), "90441234567", 60),
    ])
    store_calls(device=second_device, records=[
        call_record("other", datetime(2024, 6, 10, 10), "90441234567", 60)])


def test_rerating_after_a_price_change_corrects_the_period_and_reports_the_difference(site):
    # given the Kyiv price raised from 0.50 to 0.80
    site.set_price(site.kyiv, "0.80")
    # when June of the device is rated again
    result = calls_rerate(**JUNE, device=site.device)
    # then both Kyiv calls cost more, everything else of June is as it was
    costs = costs_by_key()
    assert costs["kyiv61"] == Decimal("1.60")  # 120 s * 0.80 / 60
    assert costs["kyiv30"] == Decimal("0.80")  # 60 s * 0.80 / 60
    assert costs["mobile"] == Decimal("2.00")
    assert (costs["internal"], costs["london"]) == (None, None)
    # and the report counts 5 June calls, 2 changed, (1.60 - 1.00) + (0.80 - 0.50) = +0.90
    assert result.as_dict() == {"job": result.job, "examined": 5, "changed": 2,
                                "difference": {"UAH": "0.90"}, "newly_priced": 0,
                                "unpriced": 0}
    assert "at 0.8 UAH/min" in Call.objects.get(source_key="kyiv61").rating_note


def test_calls_outside_the_period_and_of_other_devices_are_untouched(site):
    # given the Kyiv price raised to 0.80
    site.set_price(site.kyiv, "0.80")
    # when June of the first device is rated again
    calls_rerate(**JUNE, device=site.device)
    # then May's call and the other device's June call keep 60 s * 0.50 / 60 = 0.50
    costs = costs_by_key()
    assert (costs["may"], costs["other"]) == (Decimal("0.50"), Decimal("0.50"))


def test_without_a_device_every_device_of_the_period_is_rated_again(site):
    # given the Kyiv price raised to 0.80
    site.set_price(site.kyiv, "0.80")
    # when June is rated again for all devices
    result = calls_rerate(**JUNE)
    # then the other device's call changes too: 60 s * 0.80 / 60 = 0.80 (+0.30)
    assert costs_by_key()["other"] == Decimal("0.80")
    # 0.60 + 0.30 + 0.30 = 1.20 over 6 June calls
    assert (result.examined, result.changed, result.difference) == (6, 3,
                                                                    {"UAH": Decimal("1.20")})


def test_period_days_are_whole_days_in_the_server_time_zone(site, settings):
    # given a Kyiv call at 00:30 on 1 June, which is still 31 May (21:30) in UTC
    store_calls(device=site.device, records=[
        call_record("midnight", datetime(2024, 6, 1, 0, 30), "90441234567", 60)])
    site.set_price(site.kyiv, "0.80")
    # when the server's zone is UTC, June does not include it
    settings.TIME_ZONE = "UTC"
    calls_rerate(**JUNE, device=site.device)
    assert costs_by_key()["midnight"] == Decimal("0.50")
    # when the server's zone is Kyiv, it does
    settings.TIME_ZONE = "Europe/Kyiv"
    calls_rerate(**JUNE, device=site.device)
    assert costs_by_key()["midnight"] == Decimal("0.80")


def test_rerating_twice_changes_nothing_the_second_time(site):
    # given June rated again after a price change
    site.set_price(site.kyiv, "0.80")
    calls_rerate(**JUNE, device=site.device)
    before = list(Call.objects.order_by("id").values())
    # when June is rated again with the same tariffs
    result = calls_rerate(**JUNE, device=site.device)
    # then nothing changes and the difference is zero
    assert (result.examined, result.changed, result.difference) == (5, 0, {})
    assert result.as_dict()["difference"] == {}
    assert list(Call.objects.order_by("id").values()) == before


def test_a_removed_price_unprices_calls_and_a_new_code_prices_them(site):
    # given the Ukraine tariff's price removed and a London code 44 at 5.00/min added
    TariffPrice.objects.filter(tariff=site.ukraine.tariff).delete()
    operator_rates_changed(operator_ids=[site.operator.pk])
    site.priced_code(code="44", price="5.00", name="UK")
    # when June is rated again
    result = calls_rerate(**JUNE, device=site.device)
    # then the mobile call has no cost any more, the London call has one: 60 s * 5.00 / 60
    mobile = Call.objects.get(source_key="mobile")
    assert (mobile.cost, mobile.tariff, mobile.billable_seconds) == (None, None, 0)
    assert mobile.rating_note.startswith("no code of")
    assert costs_by_key()["london"] == Decimal("5.00")
    # and both are counted; the difference is 5.00 - 2.00 = +3.00
    assert (result.changed, result.newly_priced, result.unpriced) == (2, 1, 1)
    assert result.as_dict()["difference"] == {"UAH": "3.00"}


def test_operator_filter_takes_the_calls_rated_at_that_operator(site):
    # given line 10020 bound to another carrier charging 0.10/min for 380, and a call
    # through it; then both carriers' prices change
    carrier = OperatorFactory(name="Datagroup")
    RouteFactory(device=site.device, name="10020", operator=carrier)
    datagroup = priced_code(operator=carrier, plan=site.plan, code="380", price="0.10")
    store_calls(device=site.device, records=[
        call_record("routed", datetime(2024, 6, 15, 10), "90441234567", 60, trunk="10020")])
    site.set_price(site.kyiv, "0.80")
    TariffPrice.objects.filter(tariff=datagroup.tariff).update(price_per_minute=Decimal("0.20"))
    operator_rates_changed(operator_ids=[carrier.pk])
    # when June is rated again for the second carrier only
    result = calls_rerate(**JUNE, operator=carrier)
    # then only its call changes: 60 s * 0.20 / 60 = 0.20 (+0.10)
    assert (result.examined, result.changed) == (1, 1)
    assert result.difference == {"UAH": Decimal("0.10")}
    assert costs_by_key()["routed"] == Decimal("0.20")
    assert costs_by_key()["kyiv61"] == Decimal("1.00")


def test_ids_take_exactly_those_calls_in_batches_skipping_deleted_ones(site):
    # given three calls picked by id, one of which is deleted before the run
    site.set_price(site.kyiv, "0.80")
    picked = dict(Call.objects.filter(source_key__in=["kyiv30", "may", "mobile"]).values_list(
        "source_key", "pk"))
    Call.objects.filter(source_key="mobile").delete()
    # when they are rated again one per batch
    result = calls_rerate(ids=list(picked.values()), batch_size=1)
    # then the two left are examined (May's too: ids need no period) and both change:
    # kyiv30 0.80 - 0.50 = +0.30, may 60 s * 0.80 / 60 = 0.80 - 0.50 = +0.30
    assert (result.done, result.examined, result.changed) == (True, 2, 2)
    assert result.as_dict()["difference"] == {"UAH": "0.60"}
    assert RerateJob.load(result.job).batches == 3
    assert costs_by_key()["kyiv61"] == Decimal("1.00")


def _run(**kwargs):
    """A re-rating whose writes are undone: what an uninterrupted run reports."""
    with transaction.atomic():
        result = calls_rerate(**kwargs)
        transaction.set_rollback(True)
    return result


def test_a_resumed_job_ends_with_the_totals_of_an_uninterrupted_run(site):
    # given more June calls, so that batches of 2 take several steps, and a price change
    store_calls(device=site.device, records=[
        call_record(f"extra{i}", datetime(2024, 6, 20, 10, i), "90441234567", 61 + i)
        for i in range(5)])
    site.set_price(site.kyiv, "0.80")
    site.set_price(site.ukraine, "1.20")
    expected = _run(**JUNE, device=site.device, batch_size=2).as_dict()
    # when a job stops after 2 batches (as if killed) and is then resumed
    first = calls_rerate(**JUNE, device=site.device, batch_size=2, max_batches=2)
    assert (first.done, first.examined) == (False, 4)
    job = RerateJob.load(first.job)
    assert (job.batches, job.last_id) == (2, Call.objects.filter(
        device=site.device, start__month=6).order_by("id")[3].pk)
    resumed = calls_rerate(job=job)
    # then the totals are those of the uninterrupted run, and the job is done
    assert resumed.done
    assert resumed.as_dict() == {**expected, "job": first.job}
    # (10 June calls: kyiv61 +0.60, kyiv30 +0.30, mobile 2.40 - 2.00 = +0.40, and extra0..4
    # billed 120 s each, 1.60 - 1.00 = +0.60 each, +3.00; 4.30 in all)
    assert expected["difference"] == {"UAH": "4.30"}
    assert (expected["examined"], expected["changed"]) == (10, 8)


def test_a_kill_between_commit_and_the_job_file_still_counts_the_batch(site, monkeypatch):
    # given a price change, and a process that dies right after a batch commits, before
    # the job file says so
    site.set_price(site.kyiv, "0.80")
    expected = _run(**JUNE, device=site.device, batch_size=2).as_dict()
    add = RerateJob.add
    calls = {"n": 0}

    def dies_on_the_second_batch(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("killed")
        add(self, batch)

    monkeypatch.setattr(RerateJob, "add", dies_on_the_second_batch)
    with pytest.raises(SystemExit):
        calls_rerate(**JUNE, device=site.device, batch_size=2)
    monkeypatch.setattr(RerateJob, "add", add)
    job_file = sorted(RerateJob.directory().glob("*.json"))
    job = RerateJob.load(max(job_file, key=lambda p: p.stat().st_mtime).stem)
    assert job.pending is not None and job.batches == 1
    # when it is resumed
    resumed = calls_rerate(job=job)
    # then the committed batch is counted once, and the totals match an uninterrupted run
    assert resumed.as_dict() == {**expected, "job": job.id}


def test_a_batch_that_rolled_back_is_done_again_on_resume(site, monkeypatch):
    # given a price change, and a commit that fails after the job file recorded the batch
    site.set_price(site.kyiv, "0.80")
    expected = _run(**JUNE, device=site.device, batch_size=2).as_dict()
    save = RerateJob.save

    def fails_after_recording(self):
        save(self)
        if self.pending is not None and self.batches == 1:
            raise RuntimeError("database went away")

    monkeypatch.setattr(RerateJob, "save", fails_after_recording)
    with pytest.raises(RuntimeError):
        calls_rerate(**JUNE, device=site.device, batch_size=2)
    monkeypatch.setattr(RerateJob, "save", save)
    [job_file] = [p for p in RerateJob.directory().glob("*.json")
                  if RerateJob.load(p.stem).pending is not None]
    job = RerateJob.load(job_file.stem)
    # when it is resumed
    resumed = calls_rerate(job=job)
    # then the rolled-back batch is rated again and the totals match
    assert resumed.as_dict() == {**expected, "job": job.id}
    assert costs_by_key()["kyiv30"] == Decimal("0.80")


def test_job_file_holds_parameters_and_progress(site, settings):
    # given a job stopped after one batch of 2
    result = calls_rerate(**JUNE, device=site.device, batch_size=2, max_batches=1)
    # then its file under DATA_DIR/rerate says what it is and how far it got
    data = json.loads((settings.DATA_DIR / "rerate" / f"{result.job}.json").read_text())
    assert data["date_from"] == "2024-06-01" and data["date_to"] == "2024-06-30"
    assert (data["device_id"], data["batch_size"], data["examined"]) == (site.device.pk, 2, 2)
    assert data["done"] is False and data["pending"] is None


def test_unknown_job_and_conflicting_parameters_are_refused(site):
    with pytest.raises(RerateJobError, match="no re-rating job"):
        rerate_job_step(job_id="0123456789ab")
    with pytest.raises(RerateJobError, match="not a re-rating job id"):
        RerateJob.load("../../etc/passwd")
    job = RerateJob.load(calls_rerate(**JUNE, max_batches=0).job)
    with pytest.raises(ValueError, match="keeps its own parameters"):
        calls_rerate(**JUNE, job=job)
    with pytest.raises(ValueError, match="after date_to"):
        calls_rerate(date_from=date(2024, 7, 1), date_to=date(2024, 6, 1))


def test_query_count_per_batch_does_not_grow_with_the_batch_size(site,
                                                                 django_assert_max_num_queries):
    # given 40 more June calls, all of them changed by a price change
    store_calls(device=site.device, records=[
        call_record(f"bulk{i}", datetime(2024, 6, 21, 10, i), "90441234567", 60)
        for i in range(40)])
    site.set_price(site.kyiv, "0.80")
    for batch_size in (5, 45):
        with transaction.atomic():
            job = RerateJob.load(calls_rerate(**JUNE, device=site.device,
                                              batch_size=batch_size, max_batches=0).job)
            # when one batch is rated: the calls, the device, its numbers, routes, holidays,
            # the plan, the compiled index (3, unless cached), one UPDATE and a savepoint;
            # then the charges of the month (R7.1): the devices' zones, the month's lock
            # (PostgreSQL), the sums, the charges, one UPDATE; and the month's usage (R8.1):
            # the zones, a DELETE, the sums, one INSERT
            with django_assert_max_num_queries(22):
                job = rerate_job_step(job_id=job.id)
            # then it did a whole batch
            assert job.examined == batch_size and job.changed >= batch_size - 3
            transaction.set_rollback(True)


# --- manage.py rerate ---------------------------------------------------------------------

def test_command_prints_the_job_then_the_totals(site):
    # given the Kyiv price raised to 0.80
    site.set_price(site.kyiv, "0.80")
    out, err = StringIO(), StringIO()
    # when the command re-rates June of the device
    call_command("rerate", "--from", "2024-06-01", "--to", "2024-06-30", "--device",
                 site.device.name, stdout=out, stderr=err)
    # then stderr names the job and stdout is one JSON object with the totals
    result = json.loads(out.getvalue())
    assert err.getvalue().startswith(f"rerate job {result['job']}")
    assert result == {"job": result["job"], "examined": 5, "changed": 2,
                      "difference": {"UAH": "0.90"}, "newly_priced": 0, "unpriced": 0}


def test_command_resumes_a_stopped_job(site):
    # given a job stopped after one batch of 2
    site.set_price(site.kyiv, "0.80")
    out = StringIO()
    call_command("rerate", "--from", "2024-06-01", "--to", "2024-06-30", "--batch-size", "2",
                 "--max-batches", "1", stdout=out, stderr=StringIO())
    partial = json.loads(out.getvalue())
    assert partial["examined"] == 2
    # when it is resumed
    out = StringIO()
    call_command("rerate", "--resume", partial["job"], stdout=out, stderr=StringIO())
    # then the totals cover all 6 June calls: kyiv61 +0.60, kyiv30 +0.30, other +0.30
    assert json.loads(out.getvalue()) == {"job": partial["job"], "examined": 6, "changed": 3,
                                          "difference": {"UAH": "1.20"}, "newly_priced": 0,
                                          "unpriced": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-06-01"], "--from and --to are required"),
        (["--from", "2024-06-01", "--to", "2024-06-30", "--device", "nope"], "no device named"),
        (["--from", "2024-06-01", "--to", "2024-06-30", "--operator", "nope"],
         "no operator named"),
        (["--from", "2024-07-01", "--to", "2024-06-30"], "after date_to"),
        (["--resume", "0123456789ab"], "no re-rating job"),
        (["--resume", "0123456789ab", "--from", "2024-06-01"], "own parameters"),
    ],
)
def test_command_refuses_bad_arguments(site, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("rerate", *args, stdout=StringIO(), stderr=StringIO())


# --- the Celery task and the admin action --------------------------------------------------

@pytest.fixture
def eager():
    """Tasks run in-process whatever broker the environment names."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_task_runs_a_job_to_the_end_batch_by_batch(site, eager):
    # given a job of batches of 2 created but not started
    from billing.tasks import rerate_batch

    site.set_price(site.kyiv, "0.80")
    job = RerateJob.load(calls_rerate(**JUNE, device=site.device, batch_size=2,
                                      max_batches=0).job)
    # when its task runs
    outcome = rerate_batch.delay(job.id).get()
    # then every batch was done: 5 calls in 3 batches, +0.90
    job = RerateJob.load(job.id)
    assert (job.done, job.batches) == (True, 3)
    assert outcome == {"job": job.id, "examined": 5, "changed": 2,
                       "difference": {"UAH": "0.90"}, "newly_priced": 0, "unpriced": 0}


@pytest.mark.django_db(transaction=True)
def test_admin_action_rates_exactly_the_selected_calls_again(site, admin_client, eager,
                                                             plain_http):
    # given the Kyiv price raised to 0.80, and two calls selected in the Call admin
    site.set_price(site.kyiv, "0.80")
    selected = list(Call.objects.filter(source_key__in=["kyiv61", "mobile"]).values_list(
        "pk", flat=True))
    # when "Rate the selected calls again" is run
    response = admin_client.post("/admin/billing/call/", {
        "action": "rerate_selected", "_selected_action": selected}, follow=True)
    # then only the selected Kyiv call changed (1.00 -> 1.60), and the counts are shown
    costs = costs_by_key()
    assert (costs["kyiv61"], costs["kyiv30"], costs["mobile"]) == (
        Decimal("1.60"), Decimal("0.50"), Decimal("2.00"))
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Rated 2 calls again (job ")
    assert message.endswith(": 1 changed, cost difference 0.60 UAH, 0 newly priced, "
                            "0 no longer priced.")


def test_admin_action_starts_the_task_when_the_transaction_commits(
        site, admin_client, eager, plain_http, django_capture_on_commit_callbacks):
    # given the Kyiv price raised to 0.80, inside a transaction that has not committed
    site.set_price(site.kyiv, "0.80")
    kyiv30 = Call.objects.get(source_key="kyiv30")
    # when the action is run
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post("/admin/billing/call/", {
            "action": "rerate_selected", "_selected_action": [kyiv30.pk]}, follow=True)
    # then nothing is rated yet and the job is reported as running in the background
    assert costs_by_key()["kyiv30"] == Decimal("0.50")
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Re-rating 1 selected calls in the background (job ")
    # and once the transaction commits, the task rates it: 60 s * 0.80 / 60
    [start_task] = callbacks
    start_task()
    assert costs_by_key()["kyiv30"] == Decimal("0.80")
