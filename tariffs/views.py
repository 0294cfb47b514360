"""R5.2: the tariff import wizard. Each step validates its form and calls one step of
tariffs.importers, the importer `manage.py import_tariffs` uses; nothing is written to the
database before step 5. The wizard's state (the upload's path, the choices) lives in the
session under a random id, which also names the upload's folder (importers/jobs.py). A
folder left unfinished is removed after TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS (import_cleanup);
the session's state of it is then forgotten at the next step."""
import csv
import io
import shutil
import uuid
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from tariffs.choices import CallType, Direction
from tariffs.forms import FIELD_LABELS, MappingForm, OptionsForm, SheetForm, UploadForm
from tariffs.importers.jobs import (
    QUEUED,
    RUNNING,
    job_dir,
    job_discard,
    job_outcome,
    job_progress,
    job_queue,
    job_run,
    job_status,
)
from tariffs.importers.mapping import ImportOptions
from tariffs.importers.service import TariffImportError, import_preview, import_rows, import_sheets
from tariffs.models import Operator, TariffPlan
from tariffs.spreadsheets import row_cells
from tariffs.tasks import tariffs_import_file

SESSION_KEY = "tariff_imports"
PERMISSION = "tariffs.add_tariff"
PREVIEW_ROWS = 20
# Files from this size go to a Celery worker when there is a broker (a 2 MB deck is some
# 50,000 rows, several seconds of work); smaller ones, and every file on the embedded
# default (no broker), are imported in the request.
BACKGROUND_BYTES = 2 * 1024 * 1024


def _guarded(view):
    """Logged in (else the login page), then the permission (else 403)."""
    return login_required(permission_required(PERMISSION, raise_exception=True)(view))


def _wizard(view):
    """A step of one import: its state from the session (404 when this session has none);
    a finished import goes to its result page instead of a step; an import whose folder
    is gone (removed by the cleanup) is forgotten and the wizard starts again."""
    @wraps(view)
    def wrapper(request, import_id, **kwargs):
        state = request.session.get(SESSION_KEY, {}).get(import_id)
        if state is None:
            raise Http404("no such import in this session")
        if not job_dir(import_id).is_dir():
            return _gone(request, import_id, json=view.__name__ == "import_status")
        if state.get("finished") and view.__name__ not in _AFTER_IMPORT:
            return redirect("tariff_import_result", import_id=import_id)
        return view(request, import_id, state, **kwargs)
    return _guarded(wrapper)


_AFTER_IMPORT = {"import_progress", "import_status", "import_result", "import_rejects_csv",
                 "import_discard"}


def _gone(request, import_id: str, *, json: bool):
    _forget(request, import_id)
    text = (f"The import of this file is no longer kept: an import not finished within "
            f"{settings.TARIFF_IMPORT_UPLOAD_MAX_AGE_HOURS} hours (and a result not closed "
            "within that time) is removed from the server. Upload the file again.")
    if json:
        return JsonResponse({"state": "FAILURE", "status": "gone", "done": True, "error": text,
                             "next": reverse("tariff_import")})
    messages.error(request, text)
    return redirect("tariff_import")


def _save(request, import_id: str, state: dict) -> None:
    imports = request.session.get(SESSION_KEY, {})
    imports[import_id] = state
    request.session[SESSION_KEY] = imports


def _forget(request, import_id: str) -> None:
    imports = request.session.get(SESSION_KEY, {})
    imports.pop(import_id, None)
    request.session[SESSION_KEY] = imports


def _render(request, template, import_id, state, step, **context):
    return render(request, f"tariffs/{template}", {
        "import_id": import_id, "state": state, "step": step, **context})


@_guarded
def import_upload(request):
    """Step 1: the file type and the file, saved under DATA_DIR/imports/<id>/."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        import_id = uuid.uuid4().hex
        folder = job_dir(import_id)
        folder.mkdir(parents=True)
        path = folder / form.safe_name()
        with open(path, "wb") as out:
            for chunk in form.cleaned_data["file"].chunks():
                out.write(chunk)
        try:
            sheets = import_sheets(source=path)
        except TariffImportError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            form.add_error("file", str(exc))
        else:
            _save(request, import_id, {
                "file": str(path), "name": Path(form.cleaned_data["file"].name).name,
                "file_type": form.cleaned_data["file_type"], "sheets": sheets})
            return redirect("tariff_import_sheet", import_id=import_id)
    return render(request, "tariffs/import_upload.html", {
        "form": form, "step": 1, "max_bytes": settings.TARISCOPE_MAX_FILE_BYTES})


@_wizard
def import_sheet(request, import_id, state):
    """Step 2: the sheet or table; its rows are read here so that an unreadable sheet is
    reported next to the choice."""
    form = SheetForm(request.POST or None, sheets=state["sheets"],
                     initial={"sheet": state.get("sheet")})
    if request.method == "POST" and form.is_valid():
        sheet = form.cleaned_data["sheet"]
        try:
            import_rows(source=state["file"], sheet=sheet)
        except TariffImportError as exc:
            form.add_error("sheet", str(exc))
        else:
            state["sheet"] = sheet
            _save(request, import_id, state)
            return redirect("tariff_import_mapping", import_id=import_id)
    return _render(request, "import_sheet.html", import_id, state, 2, form=form)


@_wizard
def import_mapping(request, import_id, state):
    """Step 3: a column per field, with the first rows as mapped ("Preview")."""
    if "sheet" not in state:
        return redirect("tariff_import_sheet", import_id=import_id)
    try:
        rows = import_rows(source=state["file"], sheet=state["sheet"])
    except TariffImportError as exc:
        return _render(request, "import_mapping.html", import_id, state, 3, read_error=str(exc))
    head = rows[:PREVIEW_ROWS + 1]
    width = max((len(r) for r in head), default=0)
    initial = {**state.get("columns", {}), "has_header": state.get("has_header", True)}
    form = MappingForm(request.POST or None, header=rows[0] if rows else [], width=width,
                       initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        mapping = form.mapping()
        saved = state.get("options", {})
        options = ImportOptions(operator="", plan="", currency="",
                                # Without a rate column only codes can be imported (step 4 asks).
                                codes_only="rate" not in mapping,
                                date_order=saved.get("date_order", "dmy"),
                                has_header=form.cleaned_data["has_header"])
        try:
            mapped = import_preview(rows=rows, mapping=mapping, options=options, limit=PREVIEW_ROWS)
        except TariffImportError as exc:
            form.add_error(None, str(exc))
        else:
            if request.POST.get("action") != "preview":
                state.update(columns=form.columns(), mapping=mapping,
                             has_header=form.cleaned_data["has_header"])
                _save(request, import_id, state)
                return redirect("tariff_import_options", import_id=import_id)
            preview = {"rows": [_preview_row(r) for r in mapped.rows], "rejected": mapped.rejected}
    return _render(request, "import_mapping.html", import_id, state, 3, form=form, preview=preview,
                   preview_limit=PREVIEW_ROWS, labels=[label for _, label in FIELD_LABELS])


def _preview_row(r) -> dict:
    return {"row": r.row, "code": r.code, "name": r.name, "tariff": r.tariff, "rate": r.rate,
            "call_type": CallType(r.call_type).label if r.call_type is not None else "",
            "category": r.category, "valid_from": r.valid_from, "valid_to": r.valid_to,
            "direction": Direction(r.direction).label, "tariff_valid_from": r.tariff_valid_from}


@_wizard
def import_options(request, import_id, state):
    """Step 4: the options; "Import" is step 5, in the request or, for a large file when
    there is a broker, in a Celery worker behind a progress page."""
    if "mapping" not in state:
        return redirect("tariff_import_mapping", import_id=import_id)
    saved = state.get("options")
    initial = None
    if saved:
        # Back on this step after a failed import: the names typed or chosen before.
        initial = {**saved, "round_to_minutes": not saved["per_second"]}
        if not Operator.objects.filter(name=saved["operator"]).exists():
            initial.update(operator=None, new_operator=saved["operator"])
        if not TariffPlan.objects.filter(name=saved["plan"]).exists():
            initial.update(plan=None, new_plan=saved["plan"])
    form = OptionsForm(request.POST or None, rate_mapped="rate" in state["mapping"], initial=initial)
    error = None
    if request.method == "POST" and form.is_valid():
        state["options"] = form.options(has_header=state.get("has_header", True))
        args = {"job_id": import_id, "source": state["file"], "sheet": state["sheet"],
                "mapping": state["mapping"], "options": state["options"]}
        if _in_background(state):
            state["task_id"] = task_id = uuid.uuid4().hex
            _save(request, import_id, state)
            job_queue(job_id=import_id, task_id=task_id)
            transaction.on_commit(lambda: tariffs_import_file.apply_async(kwargs=args, task_id=task_id))
            return redirect("tariff_import_progress", import_id=import_id)
        _save(request, import_id, state)
        outcome = job_run(**args)
        if outcome["ok"] or not outcome["retry"]:
            return redirect("tariff_import_result", import_id=import_id)
        error = outcome["error"]
    return _render(request, "import_options.html", import_id, state, 4, form=form, error=error)


def _in_background(state: dict) -> bool:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    try:
        return Path(state["file"]).stat().st_size >= BACKGROUND_BYTES
    except FileNotFoundError:
        return False  # job_run reports that the upload is gone


@_wizard
def import_progress(request, import_id, state):
    """Step 5 in a worker: a page that polls import_status every second."""
    if "task_id" not in state or job_outcome(import_id) is not None:
        return redirect("tariff_import_result", import_id=import_id)
    return _render(request, "import_progress.html", import_id, state, 5,
                   status_url=reverse("tariff_import_status", kwargs={"import_id": import_id}))


@require_GET
@_wizard
def import_status(request, import_id, state):
    """The state of the import as JSON: {state, status, done, error, next, progress};
    `status` is the job's (queued, running, succeeded, failed), `state` the Celery name of
    it, `progress` {rows_done, rows} while it runs (else null). The job's
    folder is the truth (it needs no result backend); a task that failed without writing
    an outcome is known from the result backend, when there is one."""
    outcome = job_outcome(import_id)
    if outcome is not None:
        return JsonResponse({"state": "SUCCESS" if outcome["ok"] else "FAILURE",
                             "status": job_status(import_id), "done": True,
                             "error": outcome.get("error"),
                             "next": reverse("tariff_import_result", kwargs={"import_id": import_id})})
    if (state.get("task_id") and tariffs_import_file.app.conf.result_backend
            and tariffs_import_file.AsyncResult(state["task_id"]).state == "FAILURE"):
        # The worker failed before it could write the outcome.
        return JsonResponse({
            "state": "FAILURE", "status": "failed", "done": True,
            "error": "the import task failed before it could report why; nothing was "
                     "written (see the worker's log)",
            "next": reverse("tariff_import_options", kwargs={"import_id": import_id})})
    status = job_status(import_id)
    return JsonResponse({"state": "STARTED" if status == RUNNING else "PENDING", "status": status,
                         "done": False, "error": None, "next": None,
                         "progress": job_progress(import_id)})


@_wizard
def import_result(request, import_id, state):
    """Step 6: what the import did, every rejected row with its reason."""
    outcome = job_outcome(import_id)
    if outcome is None:
        if "task_id" in state:
            return redirect("tariff_import_progress", import_id=import_id)
        return redirect("tariff_import_options", import_id=import_id)
    if (outcome["ok"] or not outcome.get("retry", True)) and not state.get("finished"):
        # The upload is gone (job_run deleted it, or it vanished and no retry can help): the
        # session keeps only what the result needs.
        state = {"name": state["name"], "finished": True}
        _save(request, import_id, state)
    return _render(request, "import_result.html", import_id, state, 6, outcome=outcome,
                   result=outcome.get("result"))


@_wizard
def import_rejects_csv(request, import_id, state):
    """The rejected rows as CSV: row,reason."""
    outcome = job_outcome(import_id)
    if outcome is None or not outcome["ok"]:
        raise Http404("this import has no result")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "reason"])
    # A reason quotes the row's own text, which the deck's author wrote: escaped.
    writer.writerows(row_cells([r["row"], r["reason"]]) for r in outcome["result"]["rejected"])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="rejected-rows.csv"'
    return response


@require_POST
@_wizard
def import_discard(request, import_id, state):
    """Cancel (or close) an import: its folder and its session state go."""
    if job_status(import_id) in (QUEUED, RUNNING):
        messages.error(request, "The import is still running; wait for its result.")
        return redirect("tariff_import_progress", import_id=import_id)
    job_discard(import_id)
    _forget(request, import_id)
    return redirect("tariff_import")


@login_required
def tariff_index(request):
    """R5: the Tariffs area's first page."""
    return render(request, "tariffs/index.html", {})
