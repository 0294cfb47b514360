"""R10.6, R10.7: subscribers and their numbers; and the ids an integrator needs for them
(departments, tariff plans, PBXs), which the original's API does not list."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.auth import ApiView
from api.params import ParamError, paged
from api.schema import PARAMS_NOTE, errors, page_of, paging, query
from billing.models import Device, PhoneNumber, Subscriber, SubscriberGroup, SubscriberType
from billing.selectors import number_list, subscriber_list
from billing.subscribers import Conflict, number_add, subscriber_create
from tariffs.models import TariffPlan

_TYPES = "0 individual (default), 1 legal entity, 2 service, 3 budget, 4 privileged."


def _conflict(exc: Conflict) -> Response:
    return Response({"message": str(exc)}, status=status.HTTP_409_CONFLICT)


def _get(model, pk, what: str):
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"{what} {pk} not found")
    return obj


@extend_schema(
    summary="subscriber.create: create a subscriber (R10.6)", description=PARAMS_NOTE,
    request=None, tags=["subscribers"],
    parameters=[
        query("fullname", "str", "Full name (at most 300 characters).", required=True),
        query("departmentid", "int", "Group (GET /api/departments); 0: none."),
        query("subscribertype", "int", _TYPES, enum=SubscriberType.values),
        query("connectiondate", "date", "yyyy-mm-dd."),
        query("contractnumber", "str", "Alias `contactnumber` (the original's spelling)."),
        query("contractdate", "date", "yyyy-mm-dd."),
        query("accountnumber", "str", "Personal account number; the new id when empty."),
        query("personalcode", "str", "Personal tax code."),
        query("edrpou", "str", "EDRPOU code."),
        query("taxcode", "str", "VAT tax code."),
        query("bankcode", "str", "Bank code."),
        query("bankname", "str", "Bank name."),
        query("bankaccount", "str", "Bank account."),
        query("rateplanid", "int", "Tariff plan (GET /api/rateplans); 0: none."),
    ],
    responses={200: inline_serializer("SubscriberCreated", {
        "id": serializers.IntegerField(), "accountnumber": serializers.CharField(),
        "fullname": serializers.CharField()}), **errors(400, 403, 404, 409)})
class SubscriberCreateView(ApiView):
    """R10.6: `POST /api/subscriber/create` with R6.1's fields."""

    method = "subscriber.create"

    def post(self, request):
        params = self.params()
        full_name = params.text("fullname", required=True, max_length=300)
        group_id = params.integer("departmentid", required=False)
        subscriber_type = params.integer("subscribertype", required=False,
                                         default=SubscriberType.INDIVIDUAL)
        if subscriber_type not in SubscriberType.values:
            raise ParamError("subscribertype", "must be 0 (individual), 1 (legal entity), "
                                               "2 (service), 3 (budget) or 4 (privileged)")
        plan_id = params.integer("rateplanid", required=False)
        fields = {
            "connection_date": params.day("connectiondate", required=False),
            "contract_number": params.text("contractnumber", max_length=100),
            "contract_date": params.day("contractdate", required=False),
            "account_number": params.text("accountnumber", max_length=100),
            "personal_code": params.text("personalcode", max_length=50),
            "edrpou": params.text("edrpou", max_length=20),
            "tax_code": params.text("taxcode", max_length=50),
            "bank_code": params.text("bankcode", max_length=20),
            "bank_name": params.text("bankname", max_length=200),
            "bank_account": params.text("bankaccount", max_length=50),
        }
        # 0 is how the original's integrations say "none" for an id.
        group = _get(SubscriberGroup, group_id, "department") if group_id else None
        plan = _get(TariffPlan, plan_id, "rate plan") if plan_id else None
        try:
            subscriber = subscriber_create(full_name=full_name, group=group,
                                           type=subscriber_type, plan=plan, **fields)
        except Conflict as exc:
            return _conflict(exc)
        return Response({"id": subscriber.pk, "accountnumber": subscriber.account_number,
                         "fullname": subscriber.full_name})


@extend_schema(
    summary="subscriber.dnadd: give a subscriber a number (R10.7)", description=PARAMS_NOTE,
    request=None, tags=["subscribers"],
    parameters=[
        query("subscriberid", "int", "The subscriber (sent as `SubscriberId`).", required=True),
        query("dn", "str", "The number: digits, *, #, +; at most 32 (sent as `DN`).", required=True),
        query("description", "str", "Optional."),
        query("fromdate", "date", "The first day the subscriber holds it.", required=True),
        query("pbxid", "int", "The PBX (GET /api/pbxs).", required=True),
    ],
    responses={200: inline_serializer("NumberAdded", {
        "id": serializers.IntegerField(), "subscriberid": serializers.IntegerField(),
        "pbxid": serializers.IntegerField(), "dn": serializers.CharField()}),
        **errors(400, 403, 404, 409)})
class NumberAddView(ApiView):
    """R10.7: `POST /api/subscriber/dnadd` with `SubscriberId, DN, description, fromdate,
    pbxid`."""

    method = "subscriber.dnadd"

    def post(self, request):
        params = self.params()
        subscriber_id = params.integer("subscriberid")
        dn = params.text("dn", required=True, max_length=32)
        description = params.text("description", max_length=200)
        valid_from = params.day("fromdate")
        device_id = params.integer("pbxid")
        subscriber = _get(Subscriber, subscriber_id, "subscriber")
        device = _get(Device, device_id, "PBX")
        try:
            number = number_add(subscriber=subscriber, device=device, dn=dn,
                                valid_from=valid_from, description=description)
        except ValueError as exc:
            raise ParamError("dn", str(exc)) from None
        except Conflict as exc:
            return _conflict(exc)
        return Response({"id": number.pk, "subscriberid": subscriber.pk, "pbxid": device.pk,
                         "dn": number.dn})


@extend_schema(summary="The groups: `departmentid` of subscriber.create", tags=["discovery"],
               responses={200: inline_serializer("Department", {
                   "id": serializers.IntegerField(), "name": serializers.CharField(),
                   "parentid": serializers.IntegerField(allow_null=True),
                   "nodeid": serializers.IntegerField(), "node": serializers.CharField()},
                   many=True), **errors()})
class DepartmentsView(ApiView):
    """`GET /api/departments`: the groups (`departmentid` of subscriber.create)."""

    def get(self, request):
        return Response([
            {"id": g.pk, "name": g.name, "parentid": g.parent_id, "nodeid": g.node_id,
             "node": g.node.name}
            for g in SubscriberGroup.objects.select_related("node").order_by("node__name", "name")])


@extend_schema(summary="The tariff plans: `rateplanid` of subscriber.create", tags=["discovery"],
               responses={200: inline_serializer("RatePlan", {
                   "id": serializers.IntegerField(), "name": serializers.CharField(),
                   "description": serializers.CharField()}, many=True), **errors()})
class RatePlansView(ApiView):
    """`GET /api/rateplans`: the tariff plans (`rateplanid` of subscriber.create)."""

    def get(self, request):
        return Response([{"id": p.pk, "name": p.name, "description": p.description}
                         for p in TariffPlan.objects.order_by("name")])


@extend_schema(summary="The PBXs (devices): `pbxid` of subscriber.dnadd", tags=["discovery"],
               responses={200: inline_serializer("Pbx", {
                   "id": serializers.IntegerField(), "name": serializers.CharField(),
                   "type": serializers.CharField(), "timezone": serializers.CharField(),
                   "nodeid": serializers.IntegerField(), "node": serializers.CharField()},
                   many=True), **errors()})
class PbxsView(ApiView):
    """`GET /api/pbxs`: the devices (`pbxid` of subscriber.dnadd)."""

    def get(self, request):
        return Response([{"id": d.pk, "name": d.name, "type": d.type, "timezone": d.timezone,
                          "nodeid": d.node_id, "node": d.node.name}
                         for d in Device.objects.select_related("node").order_by("name")])


# --- Read methods (beyond the original) ---------------------------------------------------

_NUMBER_FIELDS = {
    "id": serializers.IntegerField(), "subscriberid": serializers.IntegerField(),
    "pbxid": serializers.IntegerField(), "pbx": serializers.CharField(),
    "dn": serializers.CharField(), "description": serializers.CharField(),
    "fromdate": serializers.DateField(), "todate": serializers.DateField(allow_null=True)}
_SUBSCRIBER_FIELDS = {
    "id": serializers.IntegerField(), "fullname": serializers.CharField(),
    "accountnumber": serializers.CharField(),
    "departmentid": serializers.IntegerField(allow_null=True),
    "department": serializers.CharField(allow_null=True),
    "subscribertype": serializers.IntegerField(),
    "connectiondate": serializers.DateField(allow_null=True),
    "contractnumber": serializers.CharField(), "contractdate": serializers.DateField(allow_null=True),
    "personalcode": serializers.CharField(), "edrpou": serializers.CharField(),
    "taxcode": serializers.CharField(), "bankcode": serializers.CharField(),
    "bankname": serializers.CharField(), "bankaccount": serializers.CharField(),
    "rateplanid": serializers.IntegerField(allow_null=True),
    "rateplan": serializers.CharField(allow_null=True),
}


def _subscriber_row(s: Subscriber) -> dict:
    # The names subscriber.create takes, so that what is read can be sent back.
    return {
        "id": s.pk, "fullname": s.full_name, "accountnumber": s.account_number,
        "departmentid": s.group_id, "department": s.group.name if s.group else None,
        "subscribertype": s.type,
        "connectiondate": s.connection_date.isoformat() if s.connection_date else None,
        "contractnumber": s.contract_number,
        "contractdate": s.contract_date.isoformat() if s.contract_date else None,
        "personalcode": s.personal_code, "edrpou": s.edrpou, "taxcode": s.tax_code,
        "bankcode": s.bank_code, "bankname": s.bank_name, "bankaccount": s.bank_account,
        "rateplanid": s.plan_id, "rateplan": s.plan.name if s.plan else None,
    }


def _number_row(n: PhoneNumber) -> dict:
    return {"id": n.pk, "subscriberid": n.subscriber_id, "pbxid": n.device_id, "pbx": n.device.name,
            "dn": n.dn, "description": n.description, "fromdate": n.valid_from.isoformat(),
            "todate": n.valid_to.isoformat() if n.valid_to else None}


class SubscriberListView(ApiView):
    """R10: `GET /api/subscribers?departmentid=&q=&page=&page_size=`."""

    method = "subscriber.list"

    @extend_schema(
        summary="subscriber.list: subscribers, paged", description=PARAMS_NOTE, tags=["subscribers"],
        operation_id="subscribers_list",
        parameters=[query("departmentid", "int", "Only the subscribers of this group (not below it)."),
                    query("q", "str", "A fragment of the name or of the account number."),
                    *paging()],
        responses={200: page_of("SubscriberPage", inline_serializer("Subscriber", _SUBSCRIBER_FIELDS)),
                   **errors(400, 403)})
    def get(self, request):
        params = self.params()
        filters = {"group": params.integer("departmentid", required=False),
                   "q": params.text("q", max_length=300)}
        page, size = params.page()
        return Response(paged(subscriber_list(filters=filters), page, size, _subscriber_row))


class SubscriberDetailView(ApiView):
    """R10: `GET /api/subscribers/<id>`: the subscriber and every number it held or holds."""

    method = "subscriber.list"

    @extend_schema(
        summary="subscriber.list: one subscriber with its numbers", tags=["subscribers"],
        operation_id="subscribers_retrieve",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The subscriber.")],
        responses={200: inline_serializer("SubscriberDetail", {
            **_SUBSCRIBER_FIELDS, "numbers": inline_serializer("Number", _NUMBER_FIELDS, many=True)}),
            **errors(403, 404)})
    def get(self, request, pk: int):
        subscriber = subscriber_list().filter(pk=pk).first()
        if subscriber is None:
            raise NotFound(f"subscriber {pk} not found")
        numbers = number_list(filters={"subscriber": subscriber.pk})
        return Response({**_subscriber_row(subscriber),
                         "numbers": [_number_row(n) for n in numbers]})


@extend_schema(
    summary="numbers.list: numbers (DNs) of subscribers", description=PARAMS_NOTE,
    tags=["subscribers"],
    parameters=[query("subscriberid", "int", "Only this subscriber's numbers."),
                query("pbxid", "int", "Only the numbers on this PBX."),
                query("date", "date", "Only the numbers held on this day (yyyy-mm-dd).")],
    responses={200: inline_serializer("Number", _NUMBER_FIELDS, many=True), **errors(400, 403)})
class NumberListView(ApiView):
    """R10: `GET /api/numbers?subscriberid=&pbxid=&date=`."""

    method = "numbers.list"

    def get(self, request):
        params = self.params()
        filters = {"subscriber": params.integer("subscriberid", required=False),
                   "device": params.integer("pbxid", required=False),
                   "day": params.day("date", required=False)}
        return Response([_number_row(n) for n in number_list(filters=filters)])
