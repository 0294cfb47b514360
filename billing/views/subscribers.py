"""R6, R7, R11.1: subscribers (list, page, create, edit, delete), their numbers with
validity, payments and recurring services, personal accounts and statements.

Looking needs a login; each change needs its model's right (billing.add_subscriber,
billing.change_phonenumber, billing.add_payment, ...), and a page offers only the changes
its user may make. Every write goes through the service the API and the site
configuration use (billing.subscribers, billing.accounts)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from billing.accounts import (
    payment_create,
    payment_delete,
    recurring_service_create,
    recurring_service_end,
    recurring_service_update,
)
from billing.forms import (
    EndForm,
    NumberEditForm,
    NumberForm,
    PaymentForm,
    RecurringServiceForm,
    StatementForm,
    SubscriberForm,
)
from billing.models import Payment, PhoneNumber, RecurringService, Subscriber
from billing.selectors import (
    account_balances,
    account_currency,
    account_movements,
    delete_impact,
)
from billing.statements import statement_build, statement_pdf
from billing.subscribers import (
    Conflict,
    number_assign,
    number_delete,
    number_update,
    subscriber_create,
    subscriber_delete,
    subscriber_update,
)
from billing.views.directory import form_refused

PAGE_SIZE = 50
GET_POST = require_http_methods(["GET", "POST"])


def _may(right: str):
    """A page or action for users with `right` (a 403 for the others, logged in or not:
    a form is never shown to be refused when sent)."""
    def wrap(view):
        return login_required(permission_required(right, raise_exception=True)(GET_POST(view)))
    return wrap


@login_required
def subscriber_list(request):
    """R6: subscribers, searchable by name, account, contract or number."""
    query = request.GET.get("q", "").strip()[:100]
    subscribers = Subscriber.objects.select_related("group", "plan").order_by("full_name")
    if query:
        subscribers = subscribers.filter(
            Q(full_name__icontains=query) | Q(account_number__icontains=query)
            | Q(contract_number__icontains=query) | Q(numbers__dn__icontains=query)).distinct()
    page = Paginator(subscribers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/subscribers.html", {"page": page, "q": query})


@login_required
def subscriber_detail(request, pk):
    """R6, R7.2: a subscriber, its numbers with their validity, its recurring services, and
    its personal account: the movements with a balance per currency."""
    subscriber = get_object_or_404(
        Subscriber.objects.select_related("group__node", "plan"), pk=pk)
    currency = account_currency(subscriber)
    movements = account_movements(subscriber, currency=currency)
    balances = account_balances(movements, currency)
    # Its own monthly fees and those of its tariff plan (the plan's are edited with the plan).
    mine = Q(subscriber=subscriber)
    if subscriber.plan_id:
        mine |= Q(plan_id=subscriber.plan_id)
    services = RecurringService.objects.filter(mine).order_by("-valid_from", "name")
    return render(request, "billing/subscriber.html", {
        "subscriber": subscriber,
        "numbers": subscriber.numbers.select_related("device").order_by("-valid_from", "dn"),
        "movements": movements,
        "currency": currency,
        "balances": balances,
        "balance": balances[0]["balance"],
        "services": services,
        "today": timezone.localdate(),
    })


def _subscriber_values(form) -> dict:
    return dict(form.cleaned_data)


def _crumbs(subscriber) -> list[tuple[str, str]]:
    return [(_("Subscribers"), reverse("subscribers")),
            (subscriber.full_name, reverse("subscriber", args=[subscriber.pk]))]


@_may("billing.add_subscriber")
def subscriber_new(request):
    """R6.1: a new subscriber with every field; the personal account number is its id when
    left empty."""
    form = SubscriberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = _subscriber_values(form)
        email = values.pop("email")
        try:
            # subscriber_create (the API's) takes no e-mail: it is set in the same
            # transaction.
            with transaction.atomic():
                subscriber = subscriber_create(**values)
                if email:
                    subscriber_update(subscriber=subscriber, email=email)
        except Conflict as exc:
            if values["account_number"]:
                form.add_error("account_number", _(
                    "Account number %(account)s belongs to another subscriber.")
                    % {"account": values["account_number"]})
            else:  # the id-made number taken at the same moment: sending again works
                form.add_error(None, str(exc))
        except ValidationError as exc:
            form_refused(form, exc)
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Subscriber %(name)s created, personal account "
                                        "%(account)s.") % {"name": subscriber.full_name,
                                                           "account": subscriber.account_number})
            return redirect("subscriber", subscriber.pk)
    return render(request, "billing/subscribers/edit.html", {"form": form})


@_may("billing.change_subscriber")
def subscriber_edit(request, pk):
    """R6.1: change a subscriber's fields."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = SubscriberForm(request.POST or None, initial=SubscriberForm.initial_of(subscriber))
    if request.method == "POST" and form.is_valid():
        try:
            subscriber_update(subscriber=subscriber, **_subscriber_values(form))
        except ValidationError as exc:
            subscriber.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Subscriber %(name)s saved.")
                             % {"name": subscriber.full_name})
            return redirect("subscriber", subscriber.pk)
    return render(request, "billing/subscribers/edit.html",
                  {"form": form, "subscriber": subscriber})


@_may("billing.delete_subscriber")
def subscriber_remove(request, pk):
    """R6.1: what removing a subscriber would touch (its calls are kept; its numbers,
    charges, payments, services, limits go with it), and, when confirmed, the removal."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    if request.method == "POST":
        name = subscriber.full_name
        subscriber_delete(subscriber=subscriber)
        messages.success(request, _("Subscriber %(name)s removed.") % {"name": name})
        return redirect("subscribers")
    return render(request, "billing/directory/delete.html", {
        "title": _("Remove subscriber %(name)s?") % {"name": subscriber.full_name},
        "impact": delete_impact(Subscriber, [subscriber.pk]),
        "note": _("Its calls are kept, as calls from a number nobody held (they can be "
                  "given to whoever holds the number when they are rated again)."),
        "cancel": reverse("subscriber", args=[subscriber.pk]),
        "crumbs": _crumbs(subscriber),
    })


# -- numbers

@_may("billing.add_phonenumber")
def number_new(request, pk):
    """R6.2: give the subscriber a number of a device for a period; a period that reaches
    into another holder's is refused on the number's field, naming the holder."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = NumberForm(request.POST or None, initial={"valid_from": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            number = number_assign(subscriber=subscriber, **form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Number %(dn)s given from %(start)s.")
                             % {"dn": number.dn, "start": number.valid_from})
            return redirect("subscriber", subscriber.pk)
    return render(request, "billing/subscribers/number.html",
                  {"form": form, "subscriber": subscriber})


@_may("billing.change_phonenumber")
def number_edit(request, pk, number_pk):
    """R6.2: a number's description and last day (a date ends it)."""
    number = get_object_or_404(PhoneNumber.objects.select_related("subscriber", "device"),
                               pk=number_pk, subscriber_id=pk)
    # "End" links here with ?end: the last day offered is today.
    ending = "end" in request.GET and number.valid_to is None
    form = NumberEditForm(request.POST or None, initial={
        "valid_to": timezone.localdate() if ending else number.valid_to,
        "description": number.description})
    if request.method == "POST" and form.is_valid():
        try:
            number_update(number=number, **form.cleaned_data)
        except ValidationError as exc:
            number.refresh_from_db()
            form_refused(form, exc)
        else:
            messages.success(request, _("Number %(dn)s saved.") % {"dn": number.dn})
            return redirect("subscriber", pk)
    return render(request, "billing/subscribers/number.html",
                  {"form": form, "subscriber": number.subscriber, "number": number,
                   "ending": ending})


@_may("billing.delete_phonenumber")
def number_remove(request, pk, number_pk):
    """R6.2: remove a number given by mistake, once confirmed (to end a holding, give it a
    last day instead: its history is kept)."""
    number = get_object_or_404(PhoneNumber.objects.select_related("subscriber", "device"),
                               pk=number_pk, subscriber_id=pk)
    if request.method == "POST":
        number_delete(number=number)
        messages.success(request, _("Number %(dn)s removed.") % {"dn": number.dn})
        return redirect("subscriber", pk)
    return render(request, "billing/directory/delete.html", {
        "title": _("Remove number %(dn)s of %(device)s, held from %(start)s?") % {
            "dn": number.dn, "device": number.device.name, "start": number.valid_from},
        "impact": [],
        "note": _("Calls stored already keep their subscriber. To end a holding and keep its "
                  "history, give the number a last day instead."),
        "cancel": reverse("subscriber", args=[pk]),
        "crumbs": _crumbs(number.subscriber),
    })


# -- payments

@_may("billing.add_payment")
def payment_new(request, pk):
    """R7.2: a payment into the subscriber's personal account."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = PaymentForm(request.POST or None, initial={"day": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            payment = payment_create(subscriber=subscriber, **form.cleaned_data)
        except ValueError as exc:
            form.add_error("amount", str(exc))
        else:
            messages.success(request, _("Payment of %(amount)s %(currency)s on %(day)s "
                                        "recorded.") % {
                "amount": payment.amount, "currency": account_currency(subscriber),
                "day": payment.date})
            return redirect("subscriber", subscriber.pk)
    return render(request, "billing/subscribers/payment.html", {
        "form": form, "subscriber": subscriber, "currency": account_currency(subscriber)})


@_may("billing.delete_payment")
def payment_remove(request, pk, payment_pk):
    """R7.2: remove a payment entered by mistake, once confirmed."""
    payment = get_object_or_404(Payment.objects.select_related("subscriber"), pk=payment_pk,
                                subscriber_id=pk)
    subscriber = payment.subscriber
    if request.method == "POST":
        payment_delete(payment=payment)
        messages.success(request, _("Payment of %(amount)s on %(day)s removed.")
                         % {"amount": payment.amount, "day": payment.date})
        return redirect("subscriber", pk)
    return render(request, "billing/directory/delete.html", {
        "title": _("Remove the payment of %(amount)s %(currency)s made on %(day)s?") % {
            "amount": payment.amount, "currency": account_currency(subscriber),
            "day": payment.date},
        "impact": [],
        "note": _("The balance of %(name)s loses it; a statement of that period shows it no "
                  "more.") % {"name": subscriber.full_name},
        "cancel": reverse("subscriber", args=[pk]),
        "crumbs": _crumbs(subscriber),
    })


# -- recurring services

@_may("billing.add_recurringservice")
def service_new(request, pk):
    """R7.1: a monthly fee of this subscriber."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = RecurringServiceForm(request.POST or None, initial={
        "valid_from": timezone.localdate().replace(day=1), "currency": account_currency(
            subscriber)})
    if request.method == "POST" and form.is_valid():
        try:
            service = recurring_service_create(subscriber=subscriber, **form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Service %(name)s added.") % {"name": service.name})
            return redirect("subscriber", pk)
    return render(request, "billing/subscribers/service.html",
                  {"form": form, "subscriber": subscriber})


def _own_service(pk, service_pk) -> RecurringService:
    # A plan's services are the plan's to edit (the tariffs pages), not one subscriber's.
    return get_object_or_404(RecurringService.objects.select_related("subscriber"),
                             pk=service_pk, subscriber_id=pk)


@_may("billing.change_recurringservice")
def service_edit(request, pk, service_pk):
    """R7.1: change a monthly fee of this subscriber."""
    service = _own_service(pk, service_pk)
    form = RecurringServiceForm(request.POST or None, initial={
        name: getattr(service, name) for name in RecurringServiceForm.base_fields})
    if request.method == "POST" and form.is_valid():
        try:
            recurring_service_update(service=service, **form.cleaned_data)
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Service %(name)s saved.") % {"name": service.name})
            return redirect("subscriber", pk)
    return render(request, "billing/subscribers/service.html",
                  {"form": form, "subscriber": service.subscriber, "service": service})


@_may("billing.change_recurringservice")
def service_end(request, pk, service_pk):
    """R7.1: end a monthly fee on a last day."""
    service = _own_service(pk, service_pk)
    form = EndForm(request.POST or None, initial={"valid_to": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            recurring_service_end(service=service, valid_to=form.cleaned_data["valid_to"])
        except ValidationError as exc:
            form_refused(form, exc)
        else:
            messages.success(request, _("Service %(name)s ends on %(day)s.") % {
                "name": service.name, "day": service.valid_to})
            return redirect("subscriber", pk)
    return render(request, "billing/subscribers/service_end.html",
                  {"form": form, "subscriber": service.subscriber, "service": service})


@login_required
def statement(request, pk):
    """R7.3: a subscriber's statement for a period, as a page or (?format=pdf) a PDF."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    form = StatementForm(request.GET or None)
    if not form.is_valid():
        return render(request, "billing/statement.html", {"form": form, "subscriber": subscriber},
                      status=400 if request.GET else 200)
    built = statement_build(subscriber=subscriber, period_start=form.cleaned_data["date_from"],
                            period_end=form.cleaned_data["date_to"])
    if request.GET.get("format") == "pdf":
        response = HttpResponse(statement_pdf(built), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="statement-{subscriber.account_number}-'
            f'{built.period_start:%Y%m%d}-{built.period_end:%Y%m%d}.pdf"')
        return response
    return render(request, "billing/statement.html",
                  {"form": form, "subscriber": subscriber, "statement": built,
                   "query": request.GET.urlencode()})
