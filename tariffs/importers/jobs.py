"""R5.2 step 5: one wizard import as a job in a folder, `DATA_DIR/imports/<id>/`, so that
the web request (embedded default) and a Celery worker (`tariffs.tasks`) run it the same
way and the result page finds the outcome wherever it ran.

The folder holds the upload until the import has succeeded, then `outcome.json` alone:
`{"ok": true, "result": ImportResult.as_dict()}` or `{"ok": false, "error": "..."}`.
"""
import json
import logging
import re
import shutil
from pathlib import Path

from django.conf import settings

from tariffs.importers.mapping import ImportOptions
from tariffs.importers.service import TariffImportError, tariffs_import

logger = logging.getLogger(__name__)

OUTCOME = "outcome.json"
# A job id is what uuid4().hex gives: it names a folder, so nothing else is accepted.
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

# The ImportOptions a wizard may set (`today` and `rate_value` keep their defaults); they
# travel through the session and a task's JSON arguments as plain values.
OPTION_NAMES = ("operator", "plan", "currency", "codes_only", "update", "per_second",
                "accounts_description", "date_order", "has_header")


def job_dir(job_id: str) -> Path:
    if not JOB_ID.match(job_id):
        raise ValueError(f"{job_id!r} is not an import job id")
    return Path(settings.DATA_DIR) / "imports" / job_id


def job_outcome(job_id: str) -> dict | None:
    """The job's outcome, or None while it has not finished (or not started)."""
    path = job_dir(job_id) / OUTCOME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def job_discard(job_id: str) -> None:
    """The job's folder (upload and outcome) is removed."""
    shutil.rmtree(job_dir(job_id), ignore_errors=True)


def job_run(*, job_id: str, source: str, sheet: str | None, mapping: dict[str, str],
            options: dict) -> dict:
    """R5.2 step 5: `tariffs_import` on the job's upload; the outcome is written next to
    it and returned. A successful import deletes the upload; a failed one (the database
    unchanged: the service is one transaction) keeps it so that the options can be fixed
    and the import tried again. Run a second time after success (a redelivered task) it
    returns the first outcome instead of importing again."""
    folder = job_dir(job_id)
    done = job_outcome(job_id)
    if done is not None and done["ok"]:
        return done
    path = Path(source)
    if path.parent != folder:
        raise ValueError(f"{source} is not the upload of import {job_id}")
    try:
        result = tariffs_import(source=path, sheet=sheet, mapping=mapping,
                                options=ImportOptions(**{k: options[k] for k in OPTION_NAMES}))
        outcome = {"ok": True, "result": result.as_dict()}
    except TariffImportError as exc:
        outcome = {"ok": False, "error": str(exc)}
    except Exception as exc:
        # Shown to the person instead of a bare server error; the transaction was rolled back.
        logger.exception("tariff import %s failed", job_id)
        outcome = {"ok": False, "error": f"the import failed ({type(exc).__name__}: {exc}); "
                                         "nothing was written"}
    _write(folder / OUTCOME, outcome)
    if outcome["ok"]:
        path.unlink(missing_ok=True)
    return outcome


def _write(path: Path, outcome: dict) -> None:
    # Written aside and renamed, so that a poll never reads half a file.
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(outcome, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)
