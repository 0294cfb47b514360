"""Reads of tariff data: compile an operator's codes priced in a plan into a TariffIndex."""
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db.models import (
    CASCADE,
    SET_DEFAULT,
    SET_NULL,
    Count,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce

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


# -- the Tariffs pages (R5, R11.1)

def operator_list():
    """R5.1: the operators with how many tariffs, codes and time bands each has, in one
    query (the counts are subqueries: an operator may have hundreds of thousands of codes,
    which are counted through their tariffs, by the codes' own index)."""
    return Operator.objects.annotate(
        tariff_count=_count(Tariff.objects.filter(operator=OuterRef("pk"))),
        code_count=_count(PhoneCode.objects.filter(tariff__operator=OuterRef("pk"))),
        band_count=_count(TimeBand.objects.filter(operator=OuterRef("pk"))),
    ).order_by("name")


def plan_list():
    """R4.3: the tariff plans with how many prices and operators each has."""
    prices = TariffPrice.objects.filter(plan=OuterRef("pk"))
    return TariffPlan.objects.annotate(
        price_count=_count(prices),
        operator_count=Coalesce(Subquery(
            prices.order_by().values("plan").annotate(
                n=Count("tariff__operator", distinct=True)).values("n")[:1]), 0),
    ).order_by("name")


def operator_tariffs(*, operator: Operator, q: str = "", direction: int | None = None,
                     day: date | None = None):
    """R4.2: an operator's tariffs (every validity period), with their base prices in every
    plan prefetched and their codes and band prices counted; optionally those whose name or
    personal-account description holds `q`, of one direction, or valid on `day`."""
    tariffs = Tariff.objects.filter(operator=operator)
    if q:
        tariffs = tariffs.filter(Q(name__icontains=q) | Q(account_description__icontains=q))
    if direction is not None:
        tariffs = tariffs.filter(direction=direction)
    if day is not None:
        tariffs = tariffs.filter(Q(valid_from__lte=day),
                                 Q(valid_to__isnull=True) | Q(valid_to__gte=day))
    return tariffs.annotate(
        code_count=_count(PhoneCode.objects.filter(tariff=OuterRef("pk"))),
        band_price_count=_count(TariffPrice.objects.filter(tariff=OuterRef("pk"),
                                                           band__isnull=False)),
    ).prefetch_related(Prefetch("prices", to_attr="base_prices",
                                queryset=TariffPrice.objects.filter(band=None)))


def operator_codes(*, operator: Operator, q: str = "", tariff_id: int | None = None):
    """R4.1: an operator's codes, every row of each code's history by valid-from, with their
    tariffs; optionally those whose code begins with `q` or whose name holds it, or of one
    tariff. Read through the tariffs, as the codes' only index has them."""
    codes = PhoneCode.objects.filter(tariff__operator=operator)
    if q:
        match = Q(name__icontains=q)
        if q.isdigit():
            match |= Q(code__startswith=q)
        codes = codes.filter(match)
    if tariff_id is not None:
        codes = codes.filter(tariff_id=tariff_id)
    return codes.select_related("tariff").order_by("code", "tariff__direction", "-valid_from",
                                                   "pk")


def code_states(*, codes, day: date) -> dict[int, str]:
    """R4.1: for the rows `codes` (one page), whether each is "current" (rates calls of
    `day`), "earlier" (ended, or replaced by a later row of the same code and direction) or
    "future" (valid from after `day`), by one query for the other rows of those codes."""
    codes = list(codes)
    if not codes:
        return {}
    operator_ids = {c.operator_id for c in codes}
    rows = defaultdict(list)
    for pk, code, direction, valid_from, valid_to in PhoneCode.objects.filter(
            tariff__operator_id__in=operator_ids, code__in={c.code for c in codes}).values_list(
            "pk", "code", "tariff__direction", "valid_from", "valid_to"):
        rows[code, direction].append((pk, valid_from, valid_to))
    states = {}
    for c in codes:
        ended = c.valid_to is not None and c.valid_to < day
        replaced = any(c.valid_from < valid_from <= day and (valid_to is None or valid_to >= day)
                       for pk, valid_from, valid_to in rows[c.code, c.tariff.direction]
                       if pk != c.pk)
        if c.valid_from > day:
            states[c.pk] = "future"
        elif ended or replaced:
            states[c.pk] = "earlier"
        else:
            states[c.pk] = "current"
    return states


def code_history(*, phone_code: PhoneCode):
    """R4.1: every row of a code of the same operator and direction, newest first."""
    return (PhoneCode.objects.filter(tariff__operator_id=phone_code.operator_id,
                                     tariff__direction=phone_code.tariff.direction,
                                     code=phone_code.code)
            .select_related("tariff").order_by("-valid_from", "pk"))


def band_list(*, operator: Operator):
    """R4.2: an operator's time bands with how many prices each has."""
    return TimeBand.objects.filter(operator=operator).annotate(
        price_count=_count(TariffPrice.objects.filter(band=OuterRef("pk")))
    ).order_by("priority", "name")


def tariff_valid_from_dates(*, operator: Operator | None = None):
    """R5.4: each (operator, valid-from date) that tariffs start on, with how many."""
    tariffs = Tariff.objects.all()
    if operator is not None:
        tariffs = tariffs.filter(operator=operator)
    return (tariffs.order_by().values("operator_id", "valid_from", operator_name=F("operator__name"))
            .annotate(tariffs=Count("pk")).order_by("-valid_from", "operator_name"))


def tariff_valid_from_preview(*, valid_from, operator: Operator | None = None) -> dict:
    """R5.4: what a bulk operation on the tariffs valid from a date would touch: the counts
    of tariff_valid_from_counts, the codes valid from the same date (those a move takes
    along) and the operators concerned."""
    tariffs = tariff_list_valid_from(valid_from=valid_from, operator=operator)
    counts = tariff_valid_from_counts(valid_from=valid_from, operator=operator)
    counts["codes_same_date"] = PhoneCode.objects.filter(tariff__in=tariffs,
                                                         valid_from=valid_from).count()
    counts["operators"] = list(Operator.objects.filter(
        pk__in=tariffs.values("operator_id")).order_by("name").values_list("name", flat=True))
    return counts


@dataclass(frozen=True)
class Reference:
    """Rows of another app that refer to rows a delete would remove: their kind, the field
    that refers, how many, and what the delete does to them."""

    model: str
    field: str
    count: int
    effect: str  # "deleted" (cascade), "emptied" (set to null), "blocks" (protected)


def references_elsewhere(*querysets) -> list[Reference]:
    """R11.1: the rows outside the tariffs app that refer to any row of `querysets`, found
    through the models' relations (so an app above needs no import here), one count query
    per relation; relations without rows are left out."""
    found = []
    for queryset in querysets:
        for rel in queryset.model._meta.get_fields(include_hidden=True):
            if not (rel.is_relation and rel.auto_created and not rel.concrete
                    and (rel.one_to_many or rel.one_to_one)):
                continue
            related = rel.related_model
            if related._meta.app_label == Operator._meta.app_label:
                continue
            count = related._base_manager.filter(
                **{f"{rel.field.name}__in": queryset.values("pk")}).count()
            if count:
                found.append(Reference(
                    model=str(related._meta.verbose_name_plural),
                    field=str(rel.field.verbose_name), count=count,
                    effect=_EFFECTS.get(rel.on_delete, "blocks")))
    return found


_EFFECTS = {CASCADE: "deleted", SET_NULL: "emptied", SET_DEFAULT: "emptied"}


def operator_contents(*, operator: Operator) -> dict:
    """R5.1: what deleting an operator takes with it."""
    return {
        "tariffs": Tariff.objects.filter(operator=operator).count(),
        "prices": TariffPrice.objects.filter(tariff__operator=operator).count(),
        "codes": PhoneCode.objects.filter(tariff__operator=operator).count(),
        "bands": TimeBand.objects.filter(operator=operator).count(),
    }


def _count(queryset):
    """A correlated subquery counting `queryset`'s rows (0 rather than null)."""
    # COUNT as a plain function, not an aggregate: no GROUP BY, one row.
    return Coalesce(Subquery(queryset.order_by().annotate(
        n=Func(F("pk"), function="COUNT")).values("n")[:1]), 0)
