"""R10.6, R10.7: subscribers and their numbers; and the ids an integrator needs for them
(departments, tariff plans, PBXs), which the original's API does not list."""
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.auth import ApiView
from api.params import ParamError
from billing.models import Device, Subscriber, SubscriberGroup, SubscriberType
from billing.subscribers import Conflict, number_add, subscriber_create
from tariffs.models import TariffPlan


def _conflict(exc: Conflict) -> Response:
    return Response({"message": str(exc)}, status=status.HTTP_409_CONFLICT)


def _get(model, pk, what: str):
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"{what} {pk} not found")
    return obj


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


class DepartmentsView(ApiView):
    """`GET /api/departments`: the groups (`departmentid` of subscriber.create)."""

    def get(self, request):
        return Response([
            {"id": g.pk, "name": g.name, "parentid": g.parent_id, "nodeid": g.node_id,
             "node": g.node.name}
            for g in SubscriberGroup.objects.select_related("node").order_by("node__name", "name")])


class RatePlansView(ApiView):
    """`GET /api/rateplans`: the tariff plans (`rateplanid` of subscriber.create)."""

    def get(self, request):
        return Response([{"id": p.pk, "name": p.name, "description": p.description}
                         for p in TariffPlan.objects.order_by("name")])


class PbxsView(ApiView):
    """`GET /api/pbxs`: the devices (`pbxid` of subscriber.dnadd)."""

    def get(self, request):
        return Response([{"id": d.pk, "name": d.name, "type": d.type, "timezone": d.timezone,
                          "nodeid": d.node_id, "node": d.node.name}
                         for d in Device.objects.select_related("node").order_by("name")])
