"""Reads of tariff data: compile an operator's codes priced in a plan into a TariffIndex."""
from tariffs.models import Operator, PhoneCode, TariffPlan, TariffPrice
from tariffs.rating import RateEntry, TariffIndex


def tariff_index_build(*, operator: Operator, plan: TariffPlan) -> TariffIndex:
    """R4.1/R4.3: every code of `operator` whose tariff has a price in `plan`."""
    prices = {
        row["tariff_id"]: row
        for row in TariffPrice.objects.filter(plan=plan, tariff__operator=operator).values(
            "tariff_id", "price_per_minute", "connection_fee"
        )
    }
    rows = PhoneCode.objects.filter(operator=operator, tariff_id__in=list(prices)).values_list(
        "code", "name", "call_type", "valid_from", "valid_to", "tariff_id", "tariff__name",
        "tariff__direction", "tariff__call_type", "tariff__valid_from", "tariff__valid_to",
        "tariff__first_interval", "tariff__next_interval",
    )
    entries = []
    for (code, name, call_type, c_from, c_to, tariff_id, t_name, t_dir, t_type, t_from, t_to,
         first, step) in rows:
        # A code is priced only while both it and its tariff are valid.
        valid_from = max(c_from, t_from)
        valid_to = min((d for d in (c_to, t_to) if d is not None), default=None)
        if valid_to is not None and valid_to < valid_from:
            continue
        price = prices[tariff_id]
        entries.append(RateEntry(
            code=code, code_name=name, tariff_id=tariff_id, tariff_name=t_name,
            direction=t_dir, call_type=call_type if call_type is not None else t_type,
            valid_from=valid_from, valid_to=valid_to,
            price_per_minute=price["price_per_minute"], connection_fee=price["connection_fee"],
            first_interval=first, next_interval=step, currency=operator.currency,
        ))
    return TariffIndex(entries, operator=operator.name, plan=plan.name)
