"""R10.3–R10.5: a subscriber's charges and payments."""
from decimal import Decimal

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.auth import ApiView
from api.params import ParamError, Params
from api.schema import PARAMS_NOTE, errors, query
from billing.accounts import payment_create
from billing.models import Charge, Payment, PaymentType, Subscriber
from tariffs.rating import quantize_money

_CENT = Decimal("0.01")
_MAX_PAYMENT = Decimal(10) ** 12


def _subscriber(params: Params) -> Subscriber:
    subscriber_id = params.integer("id")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_id} not found")
    return subscriber


def _period(params: Params):
    start, end = params.day("fromdate"), params.day("todate")
    if start > end:
        raise ParamError("todate", f"{end} is before fromdate {start}")
    return start, end


def _money(amount, currency="UAH") -> float:
    # A JSON number as the original answers; quantised first, so its text is exact.
    return float(quantize_money(amount, currency))


_PERIOD = [query("fromdate", "date", "First day, yyyy-mm-dd.", required=True),
           query("todate", "date", "Last day, yyyy-mm-dd (not before fromdate).", required=True)]


@extend_schema(
    summary="accounts.charges: a subscriber's charges (R10.3)", description=PARAMS_NOTE,
    tags=["accounts"],
    parameters=[query("id", "int", "The subscriber.", required=True), *_PERIOD],
    responses={200: inline_serializer("Charge", {
        "id": serializers.IntegerField(help_text="The subscriber."),
        "recdate": serializers.DateField(), "fromdate": serializers.DateField(),
        "todate": serializers.DateField(), "servicename": serializers.CharField(),
        "charge": serializers.FloatField(),
        "numberofservices": serializers.IntegerField(help_text="Billed seconds for calls.")},
        many=True), **errors(400, 403, 404)})
class ChargesView(ApiView):
    """R10.3: `GET /api/accounts/charges?id=&fromdate=&todate=`: the subscriber's charges
    whose period overlaps the dates."""

    method = "accounts.charges"

    def get(self, request):
        params = self.params()
        subscriber = _subscriber(params)
        start, end = _period(params)
        charges = Charge.objects.filter(subscriber=subscriber, period_start__lte=end,
                                        period_end__gte=start).order_by("period_start",
                                                                        "service_name", "id")
        return Response([{
            "id": subscriber.pk, "recdate": charge.created_at.date().isoformat(),
            "fromdate": charge.period_start.isoformat(), "todate": charge.period_end.isoformat(),
            "servicename": charge.service_name, "charge": _money(charge.amount, charge.currency),
            "numberofservices": charge.count,
        } for charge in charges])


@extend_schema(
    summary="accounts.payment: record a payment (R10.4)", description=PARAMS_NOTE, request=None,
    tags=["accounts"],
    parameters=[query("id", "int", "The subscriber.", required=True),
                query("paymentday", "date", "yyyy-mm-dd.", required=True),
                query("payment", "decimal", "The amount: more than 0, at most 2 decimal places.",
                      required=True),
                query("paymenttype", "int", "0 unspecified (default), 1 cash, 2 receipt, 3 invoice.",
                      enum=PaymentType.values),
                query("bank", "str", "Optional, at most 200 characters.")],
    responses={200: inline_serializer("PaymentCreated", {
        "subscriberid": serializers.IntegerField(), "paymentid": serializers.IntegerField(),
        "paymentday": serializers.DateField()}), **errors(400, 403, 404)})
class PaymentCreateView(ApiView):
    """R10.4: `POST /api/accounts/payment?id=&paymentday=&payment=&paymenttype=&bank=`."""

    method = "accounts.payment"

    def post(self, request):
        params = self.params()
        subscriber = _subscriber(params)
        day = params.day("paymentday")
        amount = params.decimal("payment")
        if amount <= 0:
            raise ParamError("payment", "must be more than 0")
        # The size first: quantising a number of over 28 digits is itself an error.
        if amount >= _MAX_PAYMENT or amount != amount.quantize(_CENT):
            raise ParamError("payment", "must have at most 2 decimal places and 12 digits")
        payment_type = params.integer("paymenttype", required=False,
                                      default=PaymentType.UNSPECIFIED)
        if payment_type not in PaymentType.values:
            raise ParamError("paymenttype", "must be 0 (unspecified), 1 (cash), 2 (receipt) "
                                            "or 3 (invoice)")
        bank = params.text("bank", max_length=200)
        payment = payment_create(subscriber=subscriber, amount=amount, day=day,
                                 type=payment_type, bank=bank)
        return Response({"subscriberid": subscriber.pk, "paymentid": payment.pk,
                         "paymentday": payment.date.isoformat()},
                        status=status.HTTP_200_OK)


@extend_schema(
    summary="accounts.payments: a subscriber's payments (R10.5)", tags=["accounts"],
    description=PARAMS_NOTE + " `paymenеtid` (with a Cyrillic `е`, as in the original's "
                              "example) is an alias of `paymentid`.",
    parameters=[query("id", "int", "The subscriber.", required=True),
                query("fromdate", "date", "First day; required unless paymentid is given."),
                query("todate", "date", "Last day; required unless paymentid is given."),
                query("paymentid", "int", "Non-zero: only this payment (the dates are ignored).")],
    responses={200: inline_serializer("Payment", {
        "subscriberid": serializers.IntegerField(), "paymentid": serializers.IntegerField(),
        "paymentday": serializers.DateField(), "payment": serializers.FloatField()}, many=True),
        **errors(400, 403, 404)})
class PaymentsView(ApiView):
    """R10.5: `GET /api/accounts/payments?id=&fromdate=&todate=&paymentid=`; a non-zero
    `paymentid` ignores the dates and answers that payment (404 when it does not exist)."""

    method = "accounts.payments"

    def get(self, request):
        params = self.params()
        subscriber = _subscriber(params)
        payment_id = params.integer("paymentid", required=False, default=0)
        payments = Payment.objects.filter(subscriber=subscriber)
        if payment_id:
            payments = list(payments.filter(pk=payment_id))
            if not payments:
                raise NotFound(f"payment {payment_id} of subscriber {subscriber.pk} not found")
        else:
            start, end = _period(params)
            payments = payments.filter(date__gte=start, date__lte=end).order_by("date", "id")
        return Response([{
            "subscriberid": subscriber.pk, "paymentid": payment.pk,
            "paymentday": payment.date.isoformat(), "payment": _money(payment.amount),
        } for payment in payments])
