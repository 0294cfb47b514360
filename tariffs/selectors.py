"""Reads of tariff data: compile an operator's codes priced in a plan into a TariffIndex."""
import threading
from collections import defaultdict
from datetime import date

from django.db.models import Prefetch, Q

from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
from tariffs.rating import Band, RateEntry, TariffIndex


def tariff_index_build(*, operator: Operator, plan: TariffPlan) -> TariffIndex:
    """R4.1/R4.3: every code of `operator` whose tariff has a price in `plan`."""
    base: dict[int, tuple] = {}
    by_band: dict[int, list] = defaultdict(list)
    for tariff_id, band_id, price, fee in TariffPrice.objects.filter(
            plan=plan, tariff__operator=operator).values_list(
            "tariff_id", "band_id", "price_per_minute", "connection_fee"):
        if band_id is None:
            base[tariff_id] = (price, fee)
        else:
            by_band[tariff_id].append((band_id, price, fee))
    priced = set(base) | set(by_band)
    rows = PhoneCode.objects.filter(operator=operator, tariff_id__in=list(priced)).values_list(
        "code", "name", "call_type", "valid_from", "valid_to", "tariff_id", "tariff__name",
        "tariff__direction", "tariff__call_type", "tariff__valid_from", "tariff__valid_to",
        "tariff__first_interval", "tariff__next_interval", "tariff__free_seconds",
        "tariff__min_seconds",
    )
    entries = []
    for (code, name, call_type, c_from, c_to, tariff_id, t_name, t_dir, t_type, t_from, t_to,
         first, step, free, minimum) in rows:
        # A code is priced only while both it and its tariff are valid.
        valid_from = max(c_from, t_from)
        valid_to = min((d for d in (c_to, t_to) if d is not None), default=None)
        if valid_to is not None and valid_to < valid_from:
            continue
        price, fee = base.get(tariff_id, (None, 0))
        entries.append(RateEntry(
            code=code, code_name=name, tariff_id=tariff_id, tariff_name=t_name,
            direction=t_dir, call_type=call_type if call_type is not None else t_type,
            valid_from=valid_from, valid_to=valid_to, price_per_minute=price,
            connection_fee=fee, first_interval=first, next_interval=step,
            currency=operator.currency, free_seconds=free, min_seconds=minimum,
            band_prices=tuple(by_band.get(tariff_id, ())),
        ))
    bands = [
        Band(id=b.pk, name=b.name, weekdays=frozenset(int(d) for d in b.weekdays),
             start=b.start_time, end=b.end_time, holidays=b.holidays)
        for b in TimeBand.objects.filter(operator=operator).order_by("priority", "name")
    ]
    return TariffIndex(entries, operator=operator.name, plan=plan.name, bands=bands)


_cache: dict[tuple[int, int], tuple[int, TariffIndex]] = {}
_cache_lock = threading.Lock()


def tariff_index_get(*, operator: Operator, plan: TariffPlan) -> TariffIndex:
    """The compiled index, cached per process and rebuilt when the operator's
    `rates_version` (as loaded with `operator`) is newer than the cached one."""
    key = (operator.pk, plan.pk)
    cached = _cache.get(key)
    if cached is not None and cached[0] == operator.rates_version:
        return cached[1]
    index = tariff_index_build(operator=operator, plan=plan)
    with _cache_lock:
        _cache[key] = (operator.rates_version, index)
    return index


def tariff_index_cache_clear() -> None:
    """Forget every compiled index (tests; a plan renamed)."""
    with _cache_lock:
        _cache.clear()


def tariff_list_valid_from(*, valid_from, operator: Operator | None = None):
    """R5.4: the tariffs valid from a date, of one operator or of all."""
    tariffs = Tariff.objects.filter(valid_from=valid_from)
    if operator is not None:
        tariffs = tariffs.filter(operator=operator)
    return tariffs


def tariff_valid_from_counts(*, valid_from, operator: Operator | None = None) -> dict:
    """R5.4: what deleting the tariffs valid from a date would delete."""
    tariffs = tariff_list_valid_from(valid_from=valid_from, operator=operator)
    return {
        "tariffs": tariffs.count(),
        "prices": TariffPrice.objects.filter(tariff__in=tariffs).count(),
        "codes": PhoneCode.objects.filter(tariff__in=tariffs).count(),
    }


def operator_copy_name(*, source: Operator) -> str:
    """R5.1: "<name> (copy)", or "(copy 2)", "(copy 3)"... the first not yet taken."""
    max_length = Operator._meta.get_field("name").max_length
    taken = set(Operator.objects.filter(name__startswith=source.name[:max_length - 12])
                .values_list("name", flat=True))
    number = 1
    while True:
        suffix = " (copy)" if number == 1 else f" (copy {number})"
        name = source.name[:max_length - len(suffix)] + suffix
        if name not in taken:
            return name
        number += 1


def tariff_list(*, day: date, operator_id: int | None = None, plan_id: int | None = None):
    """R4.2, R10: tariffs valid on `day` with their prices (in `plan_id` when given) and the
    codes valid that day; three queries however many tariffs."""
    valid = Q(valid_from__lte=day) & (Q(valid_to__isnull=True) | Q(valid_to__gte=day))
    prices = TariffPrice.objects.select_related("plan", "band").order_by("plan__name", "band_id")
    if plan_id is not None:
        prices = prices.filter(plan_id=plan_id)
    tariffs = Tariff.objects.filter(valid).select_related("operator").prefetch_related(
        Prefetch("prices", queryset=prices),
        Prefetch("codes", queryset=PhoneCode.objects.filter(valid).order_by("code")))
    if operator_id is not None:
        tariffs = tariffs.filter(operator_id=operator_id)
    if plan_id is not None:
        tariffs = tariffs.filter(prices__plan_id=plan_id).distinct()
    return tariffs.order_by("operator__name", "name", "direction", "id")
