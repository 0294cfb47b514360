"""R10 (beyond the original): the tariffs valid on a day, their prices and codes."""
from datetime import date

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.auth import ApiView
from api.schema import PARAMS_NOTE, errors, query
from tariffs.models import Tariff
from tariffs.selectors import tariff_list

_PRICE = {"planid": serializers.IntegerField(), "plan": serializers.CharField(),
          "bandid": serializers.IntegerField(allow_null=True),
          "band": serializers.CharField(allow_null=True),
          "price_per_minute": serializers.CharField(), "connection_fee": serializers.CharField()}
_CODE = {"code": serializers.CharField(), "name": serializers.CharField(),
         "call_type": serializers.IntegerField(allow_null=True),
         "fromdate": serializers.DateField(), "todate": serializers.DateField(allow_null=True)}
_TARIFF = {
    "id": serializers.IntegerField(), "operatorid": serializers.IntegerField(),
    "operator": serializers.CharField(), "currency": serializers.CharField(),
    "name": serializers.CharField(), "direction": serializers.IntegerField(),
    "call_type": serializers.IntegerField(allow_null=True),
    "fromdate": serializers.DateField(), "todate": serializers.DateField(allow_null=True),
    "servicename": serializers.CharField(help_text="The description for personal accounts."),
    "first_interval": serializers.IntegerField(), "next_interval": serializers.IntegerField(),
    "free_seconds": serializers.IntegerField(), "min_seconds": serializers.IntegerField(),
    "prices": inline_serializer("TariffPrice", _PRICE, many=True),
    "codes": inline_serializer("TariffCode", _CODE, many=True),
}


def _row(tariff: Tariff) -> dict:
    return {
        "id": tariff.pk, "operatorid": tariff.operator_id, "operator": tariff.operator.name,
        "currency": tariff.operator.currency, "name": tariff.name, "direction": tariff.direction,
        "call_type": tariff.call_type, "fromdate": tariff.valid_from.isoformat(),
        "todate": tariff.valid_to.isoformat() if tariff.valid_to else None,
        "servicename": tariff.account_description or tariff.name,
        "first_interval": tariff.first_interval, "next_interval": tariff.next_interval,
        "free_seconds": tariff.free_seconds, "min_seconds": tariff.min_seconds,
        # Money as text: no JSON reader rounds it through a float.
        "prices": [{"planid": p.plan_id, "plan": p.plan.name, "bandid": p.band_id,
                    "band": p.band.name if p.band else None,
                    "price_per_minute": str(p.price_per_minute),
                    "connection_fee": str(p.connection_fee)} for p in tariff.prices.all()],
        "codes": [{"code": c.code, "name": c.name, "call_type": c.call_type,
                   "fromdate": c.valid_from.isoformat(),
                   "todate": c.valid_to.isoformat() if c.valid_to else None}
                  for c in tariff.codes.all()],
    }


@extend_schema(
    summary="tariffs.list: tariffs valid on a day with their prices and codes", tags=["tariffs"],
    description=PARAMS_NOTE + " With `planid`, only the tariffs priced in that plan, and only "
                              "that plan's prices (the base price and one per time band).",
    parameters=[query("operatorid", "int", "Only this operator's tariffs."),
                query("planid", "int", "Only the tariffs priced in this tariff plan."),
                query("date", "date", "The day, yyyy-mm-dd (default: today).")],
    responses={200: inline_serializer("Tariff", _TARIFF, many=True), **errors(400, 403)})
class TariffListView(ApiView):
    """R10: `GET /api/tariffs?operatorid=&planid=&date=`."""

    method = "tariffs.list"

    def get(self, request):
        params = self.params()
        day = params.day("date", required=False) or date.today()
        tariffs = tariff_list(day=day, operator_id=params.integer("operatorid", required=False),
                              plan_id=params.integer("planid", required=False))
        return Response([_row(t) for t in tariffs])
