"""R10 (beyond the original): rated calls, filtered and paged."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.auth import ApiView
from api.params import ParamError, paged
from api.schema import PARAMS_NOTE, errors, page_of, paging, query
from billing.models import Call, Device
from billing.selectors import call_list
from tariffs.choices import CallType
from tariffs.rating import quantize_money

_CALL = inline_serializer("Call", {
    "id": serializers.IntegerField(),
    "start": serializers.DateTimeField(help_text="In the PBX's time zone, ISO 8601 with offset."),
    "pbxid": serializers.IntegerField(), "subscriberid": serializers.IntegerField(allow_null=True),
    "extension": serializers.CharField(), "dialled": serializers.CharField(),
    "normalized": serializers.CharField(),
    "direction": serializers.IntegerField(help_text="0 outgoing, 1 incoming, 2 internal."),
    "call_type": serializers.IntegerField(), "duration": serializers.IntegerField(),
    "billable_seconds": serializers.IntegerField(),
    "cost": serializers.CharField(allow_null=True, help_text="A decimal number as text; null "
                                                            "while the call is not rated."),
    "currency": serializers.CharField(), "tariffid": serializers.IntegerField(allow_null=True),
    "tariff": serializers.CharField(allow_null=True),
})
_CALL_TYPES = ", ".join(f"{value} {label}" for value, label in CallType.choices)


def _row(call: Call) -> dict:
    return {
        "id": call.pk, "start": call.local_start.isoformat(), "pbxid": call.device_id,
        "subscriberid": call.subscriber_id, "extension": call.extension, "dialled": call.dialled,
        "normalized": call.normalized, "direction": call.direction, "call_type": call.call_type,
        "duration": call.duration, "billable_seconds": call.billable_seconds,
        # Text, so that no JSON reader rounds the amount through a float.
        "cost": None if call.cost is None else f"{quantize_money(call.cost, call.currency):f}",
        "currency": call.currency,
        "tariffid": call.tariff_id, "tariff": call.tariff.name if call.tariff else None,
    }


@extend_schema(
    summary="calls.list: calls, newest first, paged", tags=["calls"],
    description=PARAMS_NOTE + " The days are whole days in each call's PBX's time zone.",
    parameters=[query("fromdate", "date", "First day, yyyy-mm-dd.", required=True),
                query("todate", "date", "Last day (included), yyyy-mm-dd.", required=True),
                query("subscriberid", "int", "Only this subscriber's calls."),
                query("pbxid", "int", "Only the calls of this PBX."),
                query("calltype", "int", _CALL_TYPES + ".", enum=CallType.values),
                *paging()],
    responses={200: page_of("CallPage", _CALL), **errors(400, 403, 404)})
class CallListView(ApiView):
    """R10: `GET /api/calls?fromdate=&todate=&subscriberid=&pbxid=&calltype=&page=&page_size=`."""

    method = "calls.list"

    def get(self, request):
        params = self.params()
        start, end = params.day("fromdate"), params.day("todate")
        if start > end:
            raise ParamError("todate", f"{end} is before fromdate {start}")
        # The day after `todate` and the zone offsets must stay within datetime's range.
        for name, day in (("fromdate", start), ("todate", end)):
            if not 1 < day.year < 9999:
                raise ParamError(name, "must be between the years 2 and 9998")
        device_id = params.integer("pbxid", required=False)
        call_type = params.integer("calltype", required=False)
        if call_type is not None and call_type not in CallType.values:
            raise ParamError("calltype", f"must be one of {_CALL_TYPES}")
        if device_id is not None and not Device.objects.filter(pk=device_id).exists():
            raise NotFound(f"PBX {device_id} not found")
        filters = {
            # Whole days as each call's PBX shows them, like `start`.
            "day_from": start, "day_to": end, "device": device_id,
            "subscriber": params.integer("subscriberid", required=False),
            "call_type": call_type,
        }
        page, size = params.page()
        return Response(paged(call_list(filters=filters), page, size, _row))
