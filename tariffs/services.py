"""Writes of tariff data (STYLE rule 2)."""
from collections.abc import Iterable
from datetime import date

from django.db import transaction
from django.db.models import F

from tariffs.choices import Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPrice, TimeBand
from tariffs.selectors import tariff_list_valid_from


def operator_rates_changed(*, operator_ids: Iterable[int]) -> None:
    """R4: after any write to codes, tariffs, prices or bands of these operators, make every
    process rebuild their compiled tariff indexes (a version stamp, not a timer)."""
    ids = {i for i in operator_ids if i is not None}
    if ids:
        Operator.objects.filter(pk__in=ids).update(rates_version=F("rates_version") + 1)


# Every column of a tariff but its identity and owner (operator_copy).
_TARIFF_FIELDS = tuple(f.attname for f in Tariff._meta.concrete_fields
                       if f.name not in ("id", "operator"))


def operator_copy(*, source: Operator, name: str, currency: str | None = None) -> Operator:
    """R5.1: a new operator with copies of the source's time bands, tariffs, their prices in
    every plan and its codes, as a base to edit. Prices are copied as numbers: with another
    `currency` they are that currency's amounts until edited."""
    with transaction.atomic():
        copy = Operator(name=name, currency=currency or source.currency,
                        description=source.description)
        copy.full_clean()
        copy.save()
        TimeBand.objects.bulk_create(
            TimeBand(operator=copy, name=b.name, weekdays=b.weekdays, start_time=b.start_time,
                     end_time=b.end_time, holidays=b.holidays, priority=b.priority)
            for b in TimeBand.objects.filter(operator=source))
        # Copies are matched to originals by their natural keys rather than by trusting
        # bulk_create to return ids on every database.
        old_bands = dict(TimeBand.objects.filter(operator=source).values_list("pk", "name"))
        new_bands = dict(TimeBand.objects.filter(operator=copy).values_list("name", "pk"))
        band_map = {old: new_bands[band_name] for old, band_name in old_bands.items()}
        tariffs = list(Tariff.objects.filter(operator=source))
        Tariff.objects.bulk_create(
            (Tariff(**{f: getattr(t, f) for f in _TARIFF_FIELDS}, operator=copy) for t in tariffs),
            batch_size=500)
        new_tariffs = {(t.name, t.direction, t.valid_from): t.pk
                       for t in Tariff.objects.filter(operator=copy).only("name", "direction",
                                                                         "valid_from")}
        tariff_map = {t.pk: new_tariffs[(t.name, t.direction, t.valid_from)] for t in tariffs}
        TariffPrice.objects.bulk_create(
            (TariffPrice(tariff_id=tariff_map[p.tariff_id], plan_id=p.plan_id,
                         band_id=band_map[p.band_id] if p.band_id is not None else None,
                         price_per_minute=p.price_per_minute, connection_fee=p.connection_fee)
             for p in TariffPrice.objects.filter(tariff__operator=source).iterator(chunk_size=2000)),
            batch_size=500)
        PhoneCode.objects.bulk_create(
            (PhoneCode(operator=copy, code=c.code, name=c.name, tariff_id=tariff_map[c.tariff_id],
                       call_type=c.call_type, category=c.category, valid_from=c.valid_from,
                       valid_to=c.valid_to)
             for c in PhoneCode.objects.filter(tariff__operator=source).iterator(chunk_size=2000)),
            batch_size=500)
        operator_rates_changed(operator_ids=[copy.pk])
    copy.refresh_from_db()
    return copy


def _affected_operator_ids(tariffs) -> set[int]:
    return set(tariffs.order_by().values_list("operator_id", flat=True).distinct())


def tariffs_set_account_description(*, valid_from: date, description: str,
                                    operator: Operator | None = None) -> int:
    """R5.4: the personal-account description of every tariff valid from `valid_from`
    (of `operator`, or of every operator); returns how many tariffs."""
    max_length = Tariff._meta.get_field("account_description").max_length
    if len(description) > max_length:
        raise ValueError(f"the description is {len(description)} characters long, "
                         f"more than {max_length}")
    with transaction.atomic():
        tariffs = tariff_list_valid_from(valid_from=valid_from, operator=operator)
        operator_ids = _affected_operator_ids(tariffs)
        count = tariffs.update(account_description=description)
        operator_rates_changed(operator_ids=operator_ids)
    return count


def tariffs_move_valid_from(*, old: date, new: date, operator: Operator | None = None) -> int:
    """R5.4: move every tariff valid from `old` to be valid from `new`, with those of its
    codes valid from `old`; returns how many tariffs. Refused (ValueError, nothing
    changed) where a tariff of the same name and direction already starts on `new`, or
    where a tariff or code would end before it starts."""
    if old == new:
        return 0
    with transaction.atomic():
        tariffs = tariff_list_valid_from(valid_from=old, operator=operator).select_for_update(
            of=("self",))
        moving = list(tariffs.values_list("pk", "operator_id", "operator__name", "name",
                                          "direction", "valid_to"))
        if not moving:
            return 0
        ending = [f"{op_name}: {name} (valid to {valid_to})"
                  for _, _, op_name, name, _, valid_to in moving
                  if valid_to is not None and valid_to < new]
        if ending:
            raise ValueError(f"{len(ending)} tariffs would end before {new}: "
                             + _first(ending))
        operator_ids = {op_id for _, op_id, *_ in moving}
        keys = {(op_id, name, direction) for _, op_id, _, name, direction, _ in moving}
        clashes = [f"{op_name}: {name} ({Direction(direction).label})"
                   for op_id, op_name, name, direction in Tariff.objects.filter(
                       operator_id__in=operator_ids, valid_from=new).values_list(
                       "operator_id", "operator__name", "name", "direction")
                   if (op_id, name, direction) in keys]
        if clashes:
            raise ValueError(f"{len(clashes)} tariffs are already valid from {new}: "
                             + _first(clashes))
        tariff_ids = [pk for pk, *_ in moving]
        codes = PhoneCode.objects.filter(tariff_id__in=tariff_ids, valid_from=old)
        ending = [f"{code} (valid to {valid_to})" for code, valid_to in codes.filter(
            valid_to__lt=new).values_list("code", "valid_to")]
        if ending:
            raise ValueError(f"{len(ending)} codes would end before {new}: " + _first(ending))
        taken = sorted(code for _, code in (
            set(codes.values_list("tariff_id", "code"))
            & set(PhoneCode.objects.filter(tariff_id__in=tariff_ids, valid_from=new)
                  .values_list("tariff_id", "code"))))
        if taken:
            raise ValueError(f"{len(taken)} codes of these tariffs are already valid from "
                             f"{new}: " + _first(taken))
        codes.update(valid_from=new)
        count = Tariff.objects.filter(pk__in=tariff_ids).update(valid_from=new)
        operator_rates_changed(operator_ids=operator_ids)
    return count


def tariffs_delete_valid_from(*, valid_from: date, operator: Operator | None = None) -> int:
    """R5.4: delete every tariff valid from `valid_from` with its prices and codes; returns
    how many tariffs. Calls rated at them keep their cost and lose the link to the tariff."""
    with transaction.atomic():
        tariffs = tariff_list_valid_from(valid_from=valid_from, operator=operator)
        operator_ids = _affected_operator_ids(tariffs)
        _, deleted = tariffs.delete()
        operator_rates_changed(operator_ids=operator_ids)
    return deleted.get(Tariff._meta.label, 0)


def _first(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
