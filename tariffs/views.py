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
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from tariffs import selectors, services, tables
from tariffs.choices import CallType, Direction
from tariffs.forms import (
    CALL_TYPE_LABELS,
    DIRECTION_LABELS,
    FIELD_LABELS,
    BandForm,
    BulkDeleteForm,
    BulkDescriptionForm,
    BulkMoveForm,
    CodeFilter,
    CodeForm,
    MappingForm,
    OperatorCopyForm,
    OperatorForm,
    OptionsForm,
    PlanForm,
    SheetForm,
    TariffFilter,
    TariffForm,
    UploadForm,
)
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
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
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




# -- the Tariffs area (R5, R11.1): operators, tariff plans, an operator's tariffs with their
# prices, its codes with their history by valid-from, its time bands, and the bulk
# operations of R5.4. Looking needs the model's view right, each change its model's add,
# change or delete right (a page offers only what its user may do). Every write goes
# through tariffs.services, which ends each change of rates with operator_rates_changed.

def _may(right: str):
    """A page (GET) or action (POST) for users with `right`; the login page for visitors
    and a 403 for the others."""
    def wrap(view):
        return login_required(permission_required(right, raise_exception=True)(
            require_http_methods(["GET", "POST"])(view)))
    return wrap


def _refused(form, exc: ValidationError) -> None:
    """A service's refusal onto the form: each message under its field, the rest above."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _table(request, table):
    RequestConfig(request, paginate={"per_page": tables.PER_PAGE}).configure(table)
    return table


def _records(table) -> list:
    """The rows of the table's page (the page's query, run once: rendering reuses it)."""
    return [row.record for row in table.page.object_list]


def _operator(pk) -> Operator:
    return get_object_or_404(Operator, pk=pk)


@login_required
def tariff_index(request):
    """R5: the Tariffs area's first page: its parts, as far as the user may see them."""
    return render(request, "tariffs/index.html", {})


# -- operators (R5.1)

@_may("tariffs.view_operator")
def operator_list(request):
    """R5.1: the operators with their counts of tariffs, codes and time bands."""
    table = _table(request, tables.OperatorTable(selectors.operator_list()))
    return render(request, "tariffs/operators.html", {"table": table})


@_may("tariffs.add_operator")
def operator_new(request):
    form = OperatorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            operator = services.operator_create(**form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Operator %(name)s created.") % {"name": operator.name})
            return redirect("tariff_operator", pk=operator.pk)
    return render(request, "tariffs/operator_form.html", {"form": form, "operator": None})


@_may("tariffs.change_operator")
def operator_edit(request, pk):
    operator = _operator(pk)
    form = OperatorForm(request.POST or None, initial={
        "name": operator.name, "currency": operator.currency,
        "description": operator.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.operator_update(operator=operator, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Operator %(name)s saved.") % {"name": operator.name})
            return redirect("tariff_operator", pk=operator.pk)
    return render(request, "tariffs/operator_form.html", {"form": form, "operator": operator})


@_may("tariffs.add_operator")
def operator_copy(request, pk):
    """R5.1: a copy of the operator with its bands, tariffs, prices and codes."""
    source = _operator(pk)
    form = OperatorCopyForm(request.POST or None, initial={
        "name": selectors.operator_copy_name(source=source)})
    if request.method == "POST" and form.is_valid():
        try:
            if Operator.objects.filter(name=form.cleaned_data["name"]).exists():
                raise ValidationError({"name": _("An operator named %(name)s exists already.")
                                       % {"name": form.cleaned_data["name"]}})
            copy = services.operator_copy(source=source, name=form.cleaned_data["name"],
                                          currency=form.cleaned_data["currency"] or None)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Copied %(source)s as %(copy)s.") % {
                "source": source.name, "copy": copy.name})
            return redirect("tariff_operator", pk=copy.pk)
    return render(request, "tariffs/operator_copy.html", {
        "form": form, "operator": source, "contents": selectors.operator_contents(operator=source)})


@_may("tariffs.delete_operator")
def operator_delete(request, pk):
    """R5.1: delete an operator after a confirmation; refused while calls, charges, routes
    or devices refer to it."""
    operator = _operator(pk)
    references = selectors.references_elsewhere(
        Operator.objects.filter(pk=operator.pk), Tariff.objects.filter(operator=operator))
    if request.method == "POST" and not references:
        try:
            gone = services.operator_delete(operator=operator)
        except services.DeleteRefused as exc:
            references = exc.references
        else:
            messages.success(request, _(
                "Deleted operator %(name)s with %(tariffs)d tariffs, %(codes)d codes and "
                "%(bands)d time bands.") % {"name": operator.name, **gone})
            return redirect("tariff_operators")
    return render(request, "tariffs/operator_delete.html", {
        "operator": operator, "references": references,
        "contents": selectors.operator_contents(operator=operator)},
        status=409 if request.method == "POST" else 200)


# -- tariff plans (R4.3)

@_may("tariffs.view_tariffplan")
def plan_list(request):
    table = _table(request, tables.PlanTable(selectors.plan_list()))
    return render(request, "tariffs/plans.html", {"table": table})


@_may("tariffs.add_tariffplan")
def plan_new(request):
    form = PlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = services.plan_create(**form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Tariff plan %(name)s created.") % {"name": plan.name})
            return redirect("tariff_plans")
    return render(request, "tariffs/plan_form.html", {"form": form, "plan": None})


@_may("tariffs.change_tariffplan")
def plan_edit(request, pk):
    plan = get_object_or_404(TariffPlan, pk=pk)
    form = PlanForm(request.POST or None, initial={"name": plan.name,
                                                   "description": plan.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_update(plan=plan, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Tariff plan %(name)s saved.") % {"name": plan.name})
            return redirect("tariff_plans")
    return render(request, "tariffs/plan_form.html", {"form": form, "plan": plan})


@_may("tariffs.delete_tariffplan")
def plan_delete(request, pk):
    """R4.3: delete a plan after saying what it touches (its prices, and the subscribers,
    devices, calls and recurring services that refer to it)."""
    plan = get_object_or_404(TariffPlan, pk=pk)
    references = selectors.references_elsewhere(TariffPlan.objects.filter(pk=plan.pk))
    blocked = any(r.effect == "blocks" for r in references)
    if request.method == "POST" and not blocked:
        try:
            prices = services.plan_delete(plan=plan)
        except services.DeleteRefused as exc:
            references, blocked = exc.references, True
        else:
            messages.success(request, ngettext(
                "Deleted tariff plan %(name)s with %(n)d price.",
                "Deleted tariff plan %(name)s with %(n)d prices.", prices) % {
                "name": plan.name, "n": prices})
            return redirect("tariff_plans")
    return render(request, "tariffs/plan_delete.html", {
        "plan": plan, "references": references, "blocked": blocked,
        "prices": TariffPrice.objects.filter(plan=plan).count()})


# -- an operator's tariffs (R4.2, R4.3)

@_may("tariffs.view_tariff")
def operator_detail(request, pk):
    """R4.2: an operator's tariffs, every validity period, with the price per minute (and
    connection fee) in each plan; searched by name, direction and day, sorted and paged."""
    operator = _operator(pk)
    filters = TariffFilter(request.GET or None)
    found = {}
    if filters.is_valid():
        found = {"q": filters.cleaned_data["q"].strip(),
                 "direction": filters.cleaned_data["direction"],
                 "day": filters.cleaned_data["day"]}
    plans = list(TariffPlan.objects.order_by("name"))
    table = _table(request, tables.TariffTable(
        selectors.operator_tariffs(operator=operator, **found), plans=plans))
    return render(request, "tariffs/operator.html", {
        "operator": operator, "filters": filters, "table": table, "tab": "tariffs"})


def _tariff(pk, tariff_pk) -> Tariff:
    return get_object_or_404(Tariff.objects.select_related("operator"), pk=tariff_pk,
                             operator_id=pk)


@_may("tariffs.view_tariff")
def tariff_detail(request, pk, tariff_pk):
    """R4.2: a tariff, its prices in every plan (base and per time band) and its codes."""
    tariff = _tariff(pk, tariff_pk)
    plans = list(TariffPlan.objects.order_by("name"))
    bands = list(TimeBand.objects.filter(operator_id=pk).order_by("priority", "name"))
    prices = {(p.plan_id, p.band_id): (tables.amount(p.price_per_minute),
                                        tables.amount(p.connection_fee) if p.connection_fee else "")
              for p in tariff.prices.all()}
    grid = [(plan, [prices.get((plan.pk, band.pk if band else None))
                    for band in [None, *bands]]) for plan in plans]
    codes = _table(request, tables.CodeTable(
        selectors.operator_codes(operator=tariff.operator, tariff_id=tariff.pk),
        states=None, exclude=("tariff", "direction")))
    codes.states = selectors.code_states(codes=_records(codes), day=timezone.localdate())
    return render(request, "tariffs/tariff.html", {
        "operator": tariff.operator, "tariff": tariff, "bands": bands, "grid": grid,
        "codes": codes, "direction": DIRECTION_LABELS.get(tariff.direction),
        "call_type": CALL_TYPE_LABELS.get(tariff.call_type, ""), "tab": "tariffs"})


def _tariff_form_page(request, operator, tariff=None):
    plans = TariffPlan.objects.order_by("name")
    bands = TimeBand.objects.filter(operator=operator).order_by("priority", "name")
    form = TariffForm(request.POST or None, plans=plans, bands=bands, tariff=tariff)
    if request.method == "POST" and form.is_valid():
        try:
            if tariff is None:
                tariff = services.tariff_create(operator=operator, prices=form.prices(),
                                                **form.tariff_fields())
            else:
                services.tariff_update(tariff=tariff, prices=form.prices(),
                                       **form.tariff_fields())
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Tariff %(name)s saved.") % {"name": tariff.name})
            return redirect("tariff_detail", pk=operator.pk, tariff_pk=tariff.pk)
    return render(request, "tariffs/tariff_form.html", {
        "operator": operator, "tariff": tariff, "form": form, "bands": form.bands,
        "tab": "tariffs"})


@_may("tariffs.add_tariff")
def tariff_new(request, pk):
    return _tariff_form_page(request, _operator(pk))


@_may("tariffs.change_tariff")
def tariff_edit(request, pk, tariff_pk):
    tariff = _tariff(pk, tariff_pk)
    return _tariff_form_page(request, tariff.operator, tariff)


@_may("tariffs.delete_tariff")
def tariff_delete(request, pk, tariff_pk):
    """R4.2: delete a tariff with its prices and codes, after saying what goes and which
    calls and charges lose their link to it (they keep their cost)."""
    tariff = _tariff(pk, tariff_pk)
    references = selectors.references_elsewhere(Tariff.objects.filter(pk=tariff.pk))
    blocked = any(r.effect == "blocks" for r in references)
    if request.method == "POST" and not blocked:
        gone = services.tariff_delete(tariff=tariff)
        messages.success(request, _(
            "Deleted tariff %(name)s with %(prices)d prices and %(codes)d codes.") % {
            "name": tariff.name, **gone})
        return redirect("tariff_operator", pk=pk)
    return render(request, "tariffs/tariff_delete.html", {
        "operator": tariff.operator, "tariff": tariff, "references": references,
        "blocked": blocked, "prices": tariff.prices.count(), "codes": tariff.codes.count(),
        "tab": "tariffs"})


# -- an operator's codes (R4.1)

@_may("tariffs.view_phonecode")
def code_list(request, pk):
    """R4.1: an operator's codes, each row of a code's history by valid-from with its state
    today; searched by code (from its start) or name, paged (an operator has thousands)."""
    operator = _operator(pk)
    filters = CodeFilter(request.GET or None)
    q, tariff_id = "", None
    if filters.is_valid():
        q, tariff_id = filters.cleaned_data["q"].strip(), filters.cleaned_data["tariff"]
    table = _table(request, tables.CodeTable(
        selectors.operator_codes(operator=operator, q=q, tariff_id=tariff_id)))
    table.states = selectors.code_states(codes=_records(table), day=timezone.localdate())
    return render(request, "tariffs/codes.html", {
        "operator": operator, "filters": filters, "table": table, "tab": "codes",
        "tariff": (Tariff.objects.filter(operator=operator, pk=tariff_id).first()
                   if tariff_id else None)})


def _code(pk, code_pk) -> PhoneCode:
    return get_object_or_404(PhoneCode.objects.select_related("tariff", "operator"),
                             pk=code_pk, operator_id=pk, tariff__operator_id=pk)


def _code_saved(request, phone_code, *, new_period: bool):
    if new_period:
        messages.success(request, _("Code %(code)s: a new period from %(date)s; the earlier "
                                    "one is kept.") % {"code": phone_code.code,
                                                       "date": phone_code.valid_from})
    else:
        messages.success(request, _("Code %(code)s saved.") % {"code": phone_code.code})
    return redirect(reverse("tariff_codes", kwargs={"pk": phone_code.operator_id})
                    + f"?q={phone_code.code}")


@_may("tariffs.add_phonecode")
def code_new(request, pk):
    operator = _operator(pk)
    form = CodeForm(request.POST or None, operator=operator,
                    initial={"tariff": request.GET.get("tariff")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            phone_code = services.code_create(**data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            return _code_saved(request, phone_code, new_period=False)
    return render(request, "tariffs/code_form.html", {
        "operator": operator, "form": form, "phone_code": None, "tab": "codes"})


@_may("tariffs.change_phonecode")
def code_edit(request, pk, code_pk):
    """R4.1: a code's row; a later valid-from adds a new period rather than overwriting."""
    phone_code = _code(pk, code_pk)
    operator = phone_code.operator
    form = CodeForm(request.POST or None, operator=operator, phone_code=phone_code)
    if request.method == "POST" and form.is_valid():
        before = phone_code.pk
        try:
            saved = services.code_update(phone_code=phone_code, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            return _code_saved(request, saved, new_period=saved.pk != before)
    return render(request, "tariffs/code_form.html", {
        "operator": operator, "form": form, "phone_code": phone_code, "tab": "codes",
        "history": selectors.code_history(phone_code=phone_code)})


@_may("tariffs.delete_phonecode")
def code_delete(request, pk, code_pk):
    phone_code = _code(pk, code_pk)
    if request.method == "POST":
        services.code_delete(phone_code=phone_code)
        messages.success(request, _("Code %(code)s valid from %(date)s deleted.") % {
            "code": phone_code.code, "date": phone_code.valid_from})
        return redirect("tariff_codes", pk=pk)
    return render(request, "tariffs/code_delete.html", {
        "operator": phone_code.operator, "phone_code": phone_code, "tab": "codes",
        "history": selectors.code_history(phone_code=phone_code)})


# -- an operator's time bands (R4.2)

@_may("tariffs.view_timeband")
def band_list(request, pk):
    operator = _operator(pk)
    table = _table(request, tables.BandTable(selectors.band_list(operator=operator)))
    return render(request, "tariffs/bands.html", {
        "operator": operator, "table": table, "tab": "bands"})


def _band(pk, band_pk) -> TimeBand:
    return get_object_or_404(TimeBand.objects.select_related("operator"), pk=band_pk,
                             operator_id=pk)


@_may("tariffs.view_timeband")
def band_detail(request, pk, band_pk):
    """R4.2: a time band and the prices of the operator's tariffs while it is in force."""
    band = _band(pk, band_pk)
    prices = _table(request, tables.BandPriceTable(
        TariffPrice.objects.filter(band=band).select_related("tariff", "plan")))
    return render(request, "tariffs/band.html", {
        "operator": band.operator, "band": band, "table": prices, "tab": "bands",
        "weekdays": tables.weekday_names(band.weekdays)})


def _band_form_page(request, operator, band=None):
    form = BandForm(request.POST or None, band=band)
    if request.method == "POST" and form.is_valid():
        try:
            if band is None:
                band = services.band_create(operator=operator, **form.cleaned_data)
            else:
                services.band_update(band=band, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            messages.success(request, _("Time band %(name)s saved.") % {"name": band.name})
            return redirect("tariff_bands", pk=operator.pk)
    return render(request, "tariffs/band_form.html", {
        "operator": operator, "band": band, "form": form, "tab": "bands"})


@_may("tariffs.add_timeband")
def band_new(request, pk):
    return _band_form_page(request, _operator(pk))


@_may("tariffs.change_timeband")
def band_edit(request, pk, band_pk):
    band = _band(pk, band_pk)
    return _band_form_page(request, band.operator, band)


@_may("tariffs.delete_timeband")
def band_delete(request, pk, band_pk):
    band = _band(pk, band_pk)
    if request.method == "POST":
        prices = services.band_delete(band=band)
        messages.success(request, ngettext(
            "Time band %(name)s deleted with %(n)d price.",
            "Time band %(name)s deleted with %(n)d prices.", prices) % {
            "name": band.name, "n": prices})
        return redirect("tariff_bands", pk=pk)
    return render(request, "tariffs/band_delete.html", {
        "operator": band.operator, "band": band, "prices": band.prices.count(),
        "tab": "bands"})


# -- bulk operations on the tariffs valid from a date (R5.4)

@_may("tariffs.view_tariff")
def bulk_index(request):
    """R5.4: the dates tariffs start on, per operator, with the operations on each."""
    table = _table(request, tables.ValidFromTable(selectors.tariff_valid_from_dates()))
    return render(request, "tariffs/bulk.html", {"table": table})


def _bulk_page(request, form_class, apply, *, operation: str, title: str, submit: str):
    """Fill in, preview (how many tariffs and codes it touches), confirm. A confirmation
    applies only the values previewed: changed values are previewed again first."""
    if request.method == "POST":
        form = form_class(request.POST)
    else:
        form = form_class(initial={k: v for k, v in request.GET.items()
                                   if k in ("operator", "valid_from")})
    preview = references = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        signature = "|".join(f"{name}={data.get(name)!s}" for name in form.fields)
        if request.POST.get("previewed") == signature and "confirm" in request.POST:
            try:
                message = apply(data)
            except (ValueError, ValidationError) as exc:
                form.add_error(None, _("Nothing changed: %(reason)s") % {
                    "reason": "; ".join(exc.messages) if isinstance(exc, ValidationError)
                    else exc})
            else:
                messages.success(request, message)
                return redirect("tariff_bulk")
        preview = selectors.tariff_valid_from_preview(valid_from=data["valid_from"],
                                                      operator=data["operator"])
        preview["signature"] = signature
        if operation == "delete" and preview["tariffs"]:
            references = selectors.references_elsewhere(selectors.tariff_list_valid_from(
                valid_from=data["valid_from"], operator=data["operator"]))
    return render(request, "tariffs/bulk_form.html", {
        "form": form, "preview": preview, "references": references, "operation": operation,
        "title": title, "submit": submit})


@_may("tariffs.change_tariff")
def bulk_description(request):
    """R5.4: the description for personal accounts of all tariffs valid from a date."""
    def apply(data):
        n = services.tariffs_set_account_description(
            valid_from=data["valid_from"], description=data["description"],
            operator=data["operator"])
        return ngettext("Set the description for personal accounts of %(n)d tariff.",
                        "Set the description for personal accounts of %(n)d tariffs.", n) % {
            "n": n}
    return _bulk_page(request, BulkDescriptionForm, apply, operation="description",
                      title=_("Set the description for personal accounts"),
                      submit=_("Set the description"))


@_may("tariffs.change_tariff")
def bulk_move(request):
    """R5.4: move the valid-from date of all tariffs valid from a date (and their codes')."""
    def apply(data):
        n = services.tariffs_move_valid_from(old=data["valid_from"], new=data["new_date"],
                                             operator=data["operator"])
        return ngettext("Moved %(n)d tariff (and its codes of that date) to %(date)s.",
                        "Moved %(n)d tariffs (and their codes of that date) to %(date)s.", n) % {
            "n": n, "date": data["new_date"].isoformat()}
    return _bulk_page(request, BulkMoveForm, apply, operation="move",
                      title=_("Move the valid-from date"), submit=_("Move"))


@_may("tariffs.delete_tariff")
def bulk_delete(request):
    """R5.4: delete all tariffs valid from a date with their prices and codes."""
    def apply(data):
        n = services.tariffs_delete_valid_from(valid_from=data["valid_from"],
                                               operator=data["operator"])
        return ngettext("Deleted %(n)d tariff with its prices and codes.",
                        "Deleted %(n)d tariffs with their prices and codes.", n) % {"n": n}
    return _bulk_page(request, BulkDeleteForm, apply, operation="delete",
                      title=_("Delete tariffs with their prices and codes"), submit=_("Delete"))
