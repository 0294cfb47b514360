"""R5.2: the import wizard's uploads are removed when the wizard finishes, and those of
wizards left unfinished by `manage.py import_cleanup` and the hourly beat task; an import
that fails in a Celery worker is reported as failed and writes nothing."""
import csv
import fcntl
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from tariffs import views
from tariffs.importers.jobs import job_dir, job_queue, job_run, job_start, job_status
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.tasks import tariffs_import_cleanup, tariffs_import_file
from tariscope.celery import app
from tests.conftest import needs, wait_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

DECK = [["Код", "Назва", "Ціна"],
        ["380", "Україна", "1,5"],
        ["38050-38052, 38067", "Мобільні", "2,25"],
        ["999", "Refused by the test's constraint", "4"]]
COLUMNS = {"code": "A", "name": "B", "rate": "C"}
NEW_OPERATOR = {"new_operator": "Kyivstar", "currency": "UAH", "new_plan": "Standard",
                "round_to_minutes": "on", "date_order": "dmy"}


def csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def login(client):
    user = User.objects.create_user("tariffs", password="pw-tariffs-1")
    user.user_permissions.add(Permission.objects.get(codename="add_tariff"))
    client.force_login(user)
    return client


@pytest.fixture
def importer(client):
    return login(client)


def step(name, import_id):
    return reverse(f"tariff_import_{name}", kwargs={"import_id": import_id})


def to_options(client, rows=DECK) -> str:
    """Steps 1-3 of the wizard with deck.csv; the import's id."""
    response = client.post(reverse("tariff_import"), {
        "file_type": "csv", "file": SimpleUploadedFile("deck.csv", csv_bytes(rows))})
    assert response.status_code == 302, response.content.decode()[:2000]
    import_id = response.url.split("/")[-3]
    response = client.post(step("sheet", import_id), {"sheet": "deck"})
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(step("mapping", import_id), {"action": "next", "has_header": "on",
                                                         **COLUMNS})
    assert response.url == step("options", import_id), response.content.decode()[:2000]
    return import_id


def left(import_id: str, *, hours: float) -> None:
    """The import's folder and files as if last written `hours` ago: the cleanup goes by
    the times the file system keeps, which a frozen clock does not move."""
    then = time.time() - hours * 3600
    folder = job_dir(import_id)
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then))


def cleanup(*args) -> dict:
    out = io.StringIO()
    call_command("import_cleanup", *args, stdout=out)
    return json.loads(out.getvalue())


def table_counts() -> tuple:
    return tuple(m.objects.count() for m in (Operator, TariffPlan, Tariff, TariffPrice, PhoneCode))


# manage.py import_cleanup ----------------------------------------------------------------

def test_an_upload_left_longer_than_the_default_24_hours_is_removed_and_reported(importer):
    # given a wizard left on step 4
    import_id = to_options(importer)
    left(import_id, hours=25)
    # when the cleanup runs
    report = cleanup()
    # then its folder is gone, and the JSON says what went
    assert not job_dir(import_id).exists()
    assert report["older_than_hours"] == 24 and report["dry_run"] is False
    assert report["removed"] == [{"job": import_id, "status": "open", "age_hours": 25.0,
                                  "files": ["deck.csv"], "bytes": len(csv_bytes(DECK))}]
    assert (report["kept_running"], report["kept_recent"]) == ([], 0)


def test_an_upload_younger_than_the_age_is_kept(importer):
    # given
    import_id = to_options(importer)
    left(import_id, hours=23)
    # when
    report = cleanup()
    # then
    assert report["removed"] == [] and report["kept_recent"] == 1
    assert (job_dir(import_id) / "deck.csv").exists()
    assert importer.get(step("options", import_id)).status_code == 200


def test_dry_run_lists_what_it_would_remove_and_removes_nothing(importer):
    # given two wizards, one left three hours ago
    old, new = to_options(importer), to_options(importer)
    left(old, hours=3)
    # when
    report = cleanup("--older-than", "2.5", "--dry-run")
    # then
    assert report["dry_run"] is True and report["older_than_hours"] == 2.5
    assert [r["job"] for r in report["removed"]] == [old] and report["kept_recent"] == 1
    assert (job_dir(old) / "deck.csv").exists() and (job_dir(new) / "deck.csv").exists()
    # and without --dry-run the same one goes
    assert [r["job"] for r in cleanup("--older-than", "2.5")["removed"]] == [old]
    assert not job_dir(old).exists() and (job_dir(new) / "deck.csv").exists()


def test_a_queued_import_is_kept_however_old_and_a_running_one_while_it_reports(importer):
    # given an import queued 1,000 hours ago, and one a worker began then but whose
    # status it wrote just now (as it does after each chunk)
    queued, running = to_options(importer), to_options(importer)
    job_queue(job_id=queued, task_id="a" * 32)
    job_queue(job_id=running, task_id="b" * 32)
    left(queued, hours=1000)
    left(running, hours=1000)
    job_start(running)
    # when everything older than 0 hours is cleaned up
    report = cleanup("--older-than", "0")
    # then both keep their uploads
    assert report["removed"] == []
    assert sorted(report["kept_running"]) == sorted([queued, running])
    assert (job_status(queued), job_status(running)) == ("queued", "running")
    assert (job_dir(queued) / "deck.csv").exists() and (job_dir(running) / "deck.csv").exists()


def test_a_running_import_whose_process_died_is_removed_after_the_age(importer):
    # given an import whose worker began it and was killed 25 hours ago, and one begun
    # 30 minutes ago whose worker has said nothing since
    dead, quiet = to_options(importer), to_options(importer)
    for import_id, hours in ((dead, 25), (quiet, 0.5)):
        job_queue(job_id=import_id, task_id="c" * 32)
        job_start(import_id)
        left(import_id, hours=hours)
    # when the default cleanup runs, and then one of everything older than 0 hours
    report = cleanup()
    everything = cleanup("--older-than", "0")
    # then the dead one is removed with its upload, and the quiet one kept: a process is
    # taken for dead only after an hour of silence, whatever the age asked
    assert [(r["job"], r["status"]) for r in report["removed"]] == [(dead, "running")]
    assert not job_dir(dead).exists()
    assert everything["removed"] == [] and everything["kept_running"] == [quiet]
    assert (job_dir(quiet) / "deck.csv").exists()


def test_a_finished_result_is_kept_within_the_age_and_removed_after_it(importer):
    # given an import done in the request (no worker for a small file)
    import_id = to_options(importer)
    assert importer.post(step("options", import_id), NEW_OPERATOR).url == step("result", import_id)
    assert importer.get(step("result", import_id)).status_code == 200
    # when / then: within the age the result page still has its outcome
    left(import_id, hours=23)
    assert cleanup()["removed"] == []
    assert importer.get(step("result", import_id)).context["result"]["codes_added"] == 6
    # and after it the outcome goes; the data imported stays
    left(import_id, hours=25)
    report = cleanup()
    assert [(r["job"], r["status"], r["files"]) for r in report["removed"]] == [
        (import_id, "succeeded", ["outcome.json"])]
    assert PhoneCode.objects.count() == 6


def test_a_wizard_whose_upload_was_cleaned_up_starts_again_with_a_message(importer):
    # given a wizard left on step 4 and cleaned up
    import_id = to_options(importer)
    left(import_id, hours=25)
    assert [r["job"] for r in cleanup()["removed"]] == [import_id]
    # when its person comes back to it
    response = importer.get(step("options", import_id), follow=True)
    # then the wizard starts again at step 1 and says why
    assert response.redirect_chain == [(reverse("tariff_import"), 302)]
    assert "no longer kept" in response.content.decode()
    assert "Upload the file again" in response.content.decode()
    assert import_id not in importer.session["tariff_imports"]
    assert importer.get(step("options", import_id)).status_code == 404


@pytest.mark.parametrize("hours", ["-1", "nan", "inf"])
def test_an_age_that_is_not_a_number_of_hours_is_refused(hours):
    with pytest.raises(CommandError, match="is not an age: give 0 or more hours"):
        cleanup(f"--older-than={hours}")


def test_the_cleanup_leaves_folders_that_are_not_wizard_jobs(settings):
    # given something else in the imports folder
    other = settings.DATA_DIR / "imports" / "keep-me"
    other.mkdir(parents=True)
    (other / "notes.txt").write_text("not a job")
    # when
    report = cleanup("--older-than", "0")
    # then
    assert report["removed"] == [] and (other / "notes.txt").exists()


def _command_with_env(tmp_path, value: str):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(TARISCOPE_DATA_DIR=str(tmp_path / "env-data"), DEBUG="true",
               TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS=value)
    return subprocess.run([sys.executable, "manage.py", "import_cleanup", "--dry-run"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_default_age_comes_from_the_environment(tmp_path):
    # when
    done = _command_with_env(tmp_path, "6")
    # then
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["older_than_hours"] == 6


@pytest.mark.parametrize("value", ["0", "a day"])
def test_an_age_setting_that_is_not_a_whole_number_of_hours_stops_with_a_message(tmp_path, value):
    # when
    done = _command_with_env(tmp_path, value)
    # then
    assert done.returncode != 0
    assert (f"TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS must be a whole number of hours, 1 or more; "
            f"it is {value!r}") in done.stderr


# The beat task -----------------------------------------------------------------------

def test_the_beat_task_removes_uploads_older_than_the_setting(importer, settings):
    # given the setting at 2 hours, one wizard left 3 hours ago and one just now
    settings.TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS = 2
    old, new = to_options(importer), to_options(importer)
    left(old, hours=3)
    # when the task the beat runs is called
    report = tariffs_import_cleanup()
    # then
    assert report["older_than_hours"] == 2
    assert [r["job"] for r in report["removed"]] == [old] and report["kept_recent"] == 1
    assert not job_dir(old).exists() and (job_dir(new) / "deck.csv").exists()


def test_the_beat_schedule_runs_the_cleanup_task_every_hour():
    # given / when
    entries = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == tariffs_import_cleanup.name]
    # then it is scheduled once, at one minute of every hour, and Celery knows the task
    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    assert len(schedule.minute) == 1 and len(schedule.hour) == 24
    assert tariffs_import_cleanup.name in app.tasks


# The upload goes when the wizard finishes -----------------------------------------------

def test_cancelling_an_import_on_step_4_removes_its_upload_right_away(importer):
    # given
    import_id = to_options(importer)
    assert (job_dir(import_id) / "deck.csv").exists()
    # when
    response = importer.post(step("discard", import_id))
    # then
    assert response.url == reverse("tariff_import")
    assert not job_dir(import_id).exists()


def test_an_import_whose_upload_vanished_ends_with_a_clear_message(importer):
    # given a wizard on step 4 whose file was removed from the disk
    import_id = to_options(importer)
    (job_dir(import_id) / "deck.csv").unlink()
    # when the import runs (in the request)
    response = importer.post(step("options", import_id), NEW_OPERATOR, follow=True)
    # then the result page says so and offers a new upload, not the options again
    page = response.content.decode()
    assert response.redirect_chain == [(step("result", import_id), 302)]
    assert "the uploaded file deck.csv is no longer on the server; upload it again" in page
    assert reverse("tariff_import_options", kwargs={"import_id": import_id}) not in page
    assert table_counts() == (0, 0, 0, 0, 0)
    assert importer.session["tariff_imports"][import_id] == {"name": "deck.csv", "finished": True}


def test_a_redelivered_task_of_a_removed_import_does_nothing(importer):
    # given an import cancelled after its task was queued
    import_id = to_options(importer)
    source = importer.session["tariff_imports"][import_id]["file"]
    importer.post(step("discard", import_id))
    # when the task runs anyway
    outcome = job_run(job_id=import_id, source=source, sheet="deck", mapping={"code": "A"},
                      options={})
    # then nothing is imported and no folder comes back
    assert outcome["ok"] is False and "cancelled or removed" in outcome["error"]
    assert not job_dir(import_id).exists() and table_counts() == (0, 0, 0, 0, 0)


def test_a_task_that_breaks_off_marks_its_import_failed_so_it_can_be_cancelled(importer, tmp_path):
    # given an import queued for a worker
    import_id = to_options(importer)
    job_queue(job_id=import_id, task_id="c" * 32)
    elsewhere = tmp_path / "deck.csv"
    elsewhere.write_bytes(csv_bytes(DECK))
    # when its task runs with arguments job_run refuses (an upload outside the job's folder)
    with pytest.raises(ValueError, match="is not the upload of import"):
        tariffs_import_file(job_id=import_id, source=str(elsewhere), sheet="deck",
                            mapping={"code": "A"}, options={})
    # then the job is failed, not running for ever, and the status says so
    assert job_status(import_id) == "failed"
    status = importer.get(step("status", import_id)).json()
    assert (status["state"], status["status"], status["done"]) == ("FAILURE", "failed", True)
    assert status["error"].startswith("the import task failed (ValueError: ")
    assert table_counts() == (0, 0, 0, 0, 0)
    # and the import can be cancelled, which removes its upload
    assert importer.post(step("discard", import_id)).url == reverse("tariff_import")
    assert not job_dir(import_id).exists()


# A failing task in a real worker --------------------------------------------------------

@pytest.fixture
def broker_importer(client, monkeypatch):
    """A logged-in client whose every file counts as large, so that a worker imports it."""
    needs(not django_settings.CELERY_TASK_ALWAYS_EAGER,
          "needs Redis (package redis-server): set CELERY_BROKER_URL=redis://...")
    monkeypatch.setattr(views, "BACKGROUND_BYTES", 0)
    return login(client)


def wait_done(client, import_id) -> dict:
    return wait_for(lambda: (s := client.get(step("status", import_id)).json())["done"] and s)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_a_broker_an_upload_that_vanished_before_the_worker_ran_fails_clearly(
        broker_importer, request):
    # given an import queued while no worker runs
    client = broker_importer
    import_id = to_options(client)
    assert client.post(step("options", import_id), NEW_OPERATOR).url == step("progress", import_id)
    assert client.get(step("status", import_id)).json() == {
        "state": "PENDING", "status": "queued", "done": False, "error": None, "next": None,
        "progress": None}
    task_id = client.session["tariff_imports"][import_id]["task_id"]
    # when the upload disappears, then a worker takes the task
    (job_dir(import_id) / "deck.csv").unlink()
    request.getfixturevalue("pipeline_worker")
    status = wait_done(client, import_id)
    # then the status says failed, with the reason
    assert (status["state"], status["status"]) == ("FAILURE", "failed")
    assert status["error"] == "the uploaded file deck.csv is no longer on the server; upload it again"
    assert status["next"] == step("result", import_id)
    # and Celery records the task as failed too
    assert wait_for(lambda: tariffs_import_file.AsyncResult(task_id).state == "FAILURE")
    # and the progress page leads to the result page, which shows it
    response = client.get(step("progress", import_id), follow=True)
    assert response.redirect_chain == [(step("result", import_id), 302)]
    assert ("The import failed and nothing was written: the uploaded file deck.csv is no "
            "longer on the server") in response.content.decode()
    # and nothing was written, and only the outcome is left until the import is closed
    assert table_counts() == (0, 0, 0, 0, 0)
    assert [p.name for p in job_dir(import_id).iterdir()] == ["outcome.json"]
    client.post(step("discard", import_id))
    assert not job_dir(import_id).exists()


@pytest.fixture
def refuse_code_999(postgres):
    """The database refuses one code of the deck: a CHECK constraint of the test's own,
    violated inside the import's transaction after the operator, plan, tariffs and prices
    are written."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tariffs_phonecode ADD CONSTRAINT test_refuse_code_999 "
                       "CHECK (code <> '999')")

    def lift():
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE tariffs_phonecode DROP CONSTRAINT IF EXISTS "
                           "test_refuse_code_999")
    yield lift
    lift()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_a_broker_an_import_the_database_refuses_fails_and_writes_nothing(
        broker_importer, refuse_code_999, pipeline_worker):
    # given a worker, and a deck the database refuses one code of
    client = broker_importer
    import_id = to_options(client)
    before = table_counts()
    # when the import runs in the worker
    assert client.post(step("options", import_id), NEW_OPERATOR).url == step("progress", import_id)
    status = wait_done(client, import_id)
    # then the status says failed, with the database's reason
    assert (status["state"], status["status"]) == ("FAILURE", "failed")
    assert status["error"].startswith("the database refused the import (")
    assert "test_refuse_code_999" in status["error"]
    assert status["error"].endswith("); nothing was written")
    # and the result page shows it, with the way back to the options
    page = client.get(step("result", import_id)).content.decode()
    assert "The import failed and nothing was written: the database refused the import" in page
    assert step("options", import_id) in page
    # and the whole import was rolled back: not even the new operator or plan is left
    assert table_counts() == before == (0, 0, 0, 0, 0)
    # and the upload is kept for another try, which succeeds once the database accepts it
    assert (job_dir(import_id) / "deck.csv").exists()
    refuse_code_999()
    assert client.post(step("options", import_id), NEW_OPERATOR).url == step("progress", import_id)
    status = wait_done(client, import_id)
    assert (status["state"], status["error"]) == ("SUCCESS", None)
    assert PhoneCode.objects.count() == 6 and Operator.objects.get().name == "Kyivstar"
    # and then the upload is gone
    assert [p.name for p in job_dir(import_id).iterdir()] == ["outcome.json"]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_task_redelivered_while_its_import_runs_waits_for_it_and_imports_once(
        broker_importer, pipeline_worker, monkeypatch):
    # given an import whose first run is still going in another process (its folder held, as
    # job_run holds it), and a second delivery of its task (the broker's visibility timeout
    # passed while the first ran)
    monkeypatch.setattr("tariffs.tasks.BUSY_RETRY_SECONDS", 1)
    client = broker_importer
    import_id = to_options(client)
    first_run = os.open(job_dir(import_id), os.O_RDONLY)
    fcntl.flock(first_run, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert client.post(step("options", import_id), NEW_OPERATOR).url == step("progress",
                                                                                import_id)
        result = tariffs_import_file.AsyncResult(client.session["tariff_imports"][import_id]["task_id"])
        # when the second delivery reaches a worker
        wait_for(lambda: result.state == "RETRY")
        time.sleep(2.5)  # two more looks while the first run goes on
        # then it neither imports nor marks the job failed: it waits
        assert result.state == "RETRY"
        assert table_counts() == (0, 0, 0, 0, 0)
        assert job_status(import_id) != "failed"
    finally:
        os.close(first_run)  # the first run ends (here: without an outcome)
    # and once the first run is over, the waiting delivery runs the import, once
    assert wait_for(lambda: result.state in ("SUCCESS", "FAILURE"), timeout=60)
    assert result.state == "SUCCESS", result.result
    assert PhoneCode.objects.count() == 6
