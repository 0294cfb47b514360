"""R5.2 step 5: one wizard import as a job in a folder, `DATA_DIR/imports/<id>/`, so that
the web request (embedded default) and a Celery worker (`tariffs.tasks`) run it the same
way and the result page finds the outcome wherever it ran.

The folder holds the upload until the import has succeeded, then `outcome.json` alone:
`{"ok": true, "result": ImportResult.as_dict()}` or `{"ok": false, "error": "...",
"retry": bool}`. While a worker has it, `job.json` says `queued` or `running`: the cleanup
(`jobs_cleanup`, `manage.py import_cleanup`, the beat task) never touches such a job, and
removes the other folders once they are older than TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS, and
a `running` one once its process has been silent that long (and at least an hour): it
was killed, and its transaction rolled back.
"""
import datetime
import fcntl
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from tariffs.importers.mapping import ImportOptions
from tariffs.importers.service import TariffImportError, tariffs_import

logger = logging.getLogger(__name__)

OUTCOME = "outcome.json"
STATUS = "job.json"
# A job id is what uuid4().hex gives: it names a folder, so nothing else is accepted.
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

# What job_status says: steps 1-4 (`open`), in a worker's hands (`queued`, `running`), done.
OPEN, QUEUED, RUNNING, SUCCEEDED, FAILED = "open", "queued", "running", "succeeded", "failed"

# The ImportOptions a wizard may set (`today` and `rate_value` keep their defaults); they
# travel through the session and a task's JSON arguments as plain values.
OPTION_NAMES = ("operator", "plan", "currency", "codes_only", "update", "per_second",
                "accounts_description", "date_order", "has_header")


def job_dir(job_id: str) -> Path:
    if not JOB_ID.match(job_id):
        raise ValueError(f"{job_id!r} is not an import job id")
    return _root() / job_id


def _root() -> Path:
    return Path(settings.DATA_DIR) / "imports"


def job_outcome(job_id: str) -> dict | None:
    """The job's outcome, or None while it has not finished (or not started)."""
    path = job_dir(job_id) / OUTCOME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def job_status(job_id: str) -> str | None:
    """open, queued, running, succeeded or failed; None when the job's folder is gone
    (cancelled, or removed by the cleanup)."""
    folder = job_dir(job_id)
    if not folder.is_dir():
        return None
    outcome = job_outcome(job_id)
    if outcome is not None:
        return SUCCEEDED if outcome["ok"] else FAILED
    try:
        return json.loads((folder / STATUS).read_text(encoding="utf-8"))["status"]
    except FileNotFoundError:
        return OPEN


def job_queue(*, job_id: str, task_id: str) -> None:
    """R5.2 step 5 handed to a worker: the job is `queued` (kept by the cleanup however old)
    and the outcome of an earlier failed try is dropped, so that the progress page waits
    for this one."""
    folder = job_dir(job_id)
    (folder / OUTCOME).unlink(missing_ok=True)
    _write(folder / STATUS, {"status": QUEUED, "task_id": task_id, "at": _now()})


def job_start(job_id: str) -> None:
    """The import has begun (in a worker or in the request): the job is `running`."""
    _write(job_dir(job_id) / STATUS, {"status": RUNNING, "at": _now()})


def job_progress(job_id: str) -> dict | None:
    """How far a running import is: {"rows_done", "rows"} (data rows of the sheet, written
    in the import's transaction so far, and in all); None before the first chunk."""
    try:
        status = json.loads((job_dir(job_id) / STATUS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if status.get("status") != RUNNING or "rows" not in status:
        return None
    return {"rows_done": status["rows_done"], "rows": status["rows"]}


def _progress_write(job_id: str, started: str, done: int, total: int) -> None:
    _write(job_dir(job_id) / STATUS,
           {"status": RUNNING, "at": started, "rows_done": done, "rows": total})


def job_fail(*, job_id: str, source: str, error: str) -> dict:
    """The import broke off without an outcome of its own (an error outside the import's
    transaction): a failed outcome is written, so that the job is no longer `running`."""
    folder = job_dir(job_id)
    outcome = {"ok": False, "error": error, "retry": Path(source).is_file()}
    if folder.is_dir():
        _write(folder / OUTCOME, outcome)
        (folder / STATUS).unlink(missing_ok=True)
    return outcome


def job_discard(job_id: str) -> None:
    """The job's folder (upload and outcome) is removed."""
    shutil.rmtree(job_dir(job_id), ignore_errors=True)


class JobBusy(Exception):
    """The job is being run by another process: a redelivered task whose first run goes on
    (its worker was thought dead, or the broker's visibility timeout passed while it ran)."""


@contextmanager
def _job_exclusive(folder: Path):
    """One run of a job at a time, across the worker processes of this host. The lock is
    taken on the job's folder itself: no lock file to leave behind or race to remove."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(f"import {folder.name} is running in another process") from None
        yield
    finally:
        os.close(descriptor)  # (closing releases the lock)


def job_run(*, job_id: str, source: str, sheet: str | None, mapping: dict[str, str],
            options: dict) -> dict:
    """R5.2 step 5: `tariffs_import` on the job's upload; the outcome is written next to
    it and returned. A successful import deletes the upload; a failed one (the database
    unchanged: the service is one transaction) keeps it so that the options can be fixed
    and the import tried again (`"retry": true`; false when the upload itself is gone).
    Run a second time after success (a redelivered task) it returns the first outcome
    instead of importing again; run after its folder was removed (cancelled, cleaned up)
    it does nothing; run while another run goes on it raises JobBusy."""
    folder = job_dir(job_id)
    if not folder.is_dir():
        return {"ok": False, "retry": False,
                "error": "the import was cancelled or removed before it could run"}
    with _job_exclusive(folder):
        return _job_run_alone(job_id=job_id, folder=folder, source=source, sheet=sheet,
                              mapping=mapping, options=options)


def _job_run_alone(*, job_id: str, folder: Path, source: str, sheet: str | None,
                   mapping: dict[str, str], options: dict) -> dict:
    done = job_outcome(job_id)
    if done is not None and done["ok"]:
        return done
    path = Path(source)
    if path.parent != folder:
        raise ValueError(f"{source} is not the upload of import {job_id}")
    job_start(job_id)
    outcome = _import(job_id, path, sheet=sheet, mapping=mapping, options=options)
    if not outcome["ok"]:
        outcome["retry"] = path.is_file()
    _write(folder / OUTCOME, outcome)
    (folder / STATUS).unlink(missing_ok=True)
    if outcome["ok"]:
        path.unlink(missing_ok=True)
    return outcome


def _import(job_id: str, path: Path, *, sheet, mapping, options) -> dict:
    if not path.is_file():
        # Removed from the disk between the upload and the import: no retry can help.
        return {"ok": False, "error": f"the uploaded file {path.name} is no longer on the "
                                      "server; upload it again"}
    try:
        started = _now()
        result = tariffs_import(
            source=path, sheet=sheet, mapping=mapping,
            options=ImportOptions(**{k: options[k] for k in OPTION_NAMES}),
            progress=lambda done, total: _progress_write(job_id, started, done, total))
        return {"ok": True, "result": result.as_dict()}
    except TariffImportError as exc:
        return {"ok": False, "error": str(exc)}
    except (DatabaseError, connection.Database.Error) as exc:
        # A constraint or a limit the importer's own checks do not know; rolled back. (The
        # driver's own error: codes go in with COPY on the driver's cursor.)
        logger.exception("tariff import %s refused by the database", job_id)
        return {"ok": False, "error": f"the database refused the import ({_first_line(exc)}); "
                                      "nothing was written"}
    except Exception as exc:
        # Shown to the person instead of a bare server error; the transaction was rolled back.
        logger.exception("tariff import %s failed", job_id)
        return {"ok": False, "error": f"the import failed ({type(exc).__name__}: "
                                      f"{_first_line(exc)}); nothing was written"}


def _first_line(exc: Exception) -> str:
    # PostgreSQL adds DETAIL and CONTEXT lines; the first says what was refused.
    return (str(exc).strip().splitlines() or [""])[0]


def jobs_cleanup(*, older_than: datetime.timedelta, dry_run: bool = False) -> dict:
    """R5.2: the folders of imports not touched for `older_than` are removed: uploads of
    wizards left before step 5, failed imports never retried nor closed, results never
    closed; a `running` one whose process has been silent that long and at least an hour
    (RUNNING_SILENT: it was killed). A `queued` job is kept however old (its task waits in
    the broker for a worker). Returns what was (or, with dry_run, would be) removed."""
    removed, running, recent = [], [], 0
    root = _root()
    now = time.time()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or not JOB_ID.match(folder.name):
            continue  # not a job of the wizard's: not ours to remove
        status = job_status(folder.name)
        files = [p for p in folder.iterdir() if p.is_file()]
        if status == QUEUED or (status == RUNNING and not _abandoned(folder, now, older_than)):
            running.append(folder.name)
            continue
        age = now - max([folder.stat().st_mtime] + [p.stat().st_mtime for p in files])
        if age < older_than.total_seconds():
            recent += 1
            continue
        removed.append({"job": folder.name, "status": status, "age_hours": round(age / 3600, 1),
                        "files": sorted(p.name for p in files),
                        "bytes": sum(p.stat().st_size for p in files)})
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    return {"older_than_hours": older_than.total_seconds() / 3600, "dry_run": dry_run,
            "removed": removed, "kept_running": running, "kept_recent": recent}


# A running import writes its job.json at the start and after each chunk it writes
# (seconds apart): one whose job.json is older than this, and than the cleanup's age, lost
# its process (a killed web server or worker; its transaction was rolled back).
RUNNING_SILENT = datetime.timedelta(hours=1)


def _abandoned(folder: Path, now: float, older_than: datetime.timedelta) -> bool:
    try:
        silent = now - (folder / STATUS).stat().st_mtime
    except FileNotFoundError:
        return False
    return silent >= max(older_than, RUNNING_SILENT).total_seconds()


def _now() -> str:
    return timezone.now().isoformat()


def _write(path: Path, data: dict) -> None:
    # Written aside and renamed, so that a poll never reads half a file.
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)
