"""Writes of tariff data (STYLE rule 2)."""
from collections.abc import Iterable
from datetime import date, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from tariffs.choices import Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
from tariffs.selectors import operator_contents, references_elsewhere, tariff_list_valid_from


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


# -- the Tariffs pages (R5, R11.1): one service per change, the pages' forms call them.
# Each checks what the database would refuse (a name taken, a code twice on one date) and
# raises ValidationError keyed by the field it is about, so a form shows it on the field.

class DeleteRefused(ValidationError):
    """A delete refused: rows elsewhere refer to what it would remove (`references`)."""

    def __init__(self, message, *, references):
        super().__init__(message)
        self.references = references


def operator_create(*, name: str, currency: str = "UAH", description: str = "") -> Operator:
    """R5.1: a new operator (carrier), without tariffs yet."""
    with transaction.atomic():
        _operator_name_free(name)
        operator = Operator(name=name, currency=currency, description=description)
        operator.full_clean()
        operator.save()
    return operator


def operator_update(*, operator: Operator, name: str, currency: str,
                    description: str = "") -> Operator:
    """R5.1: an operator's name, currency and description. Its name and currency are part
    of every compiled tariff entry, so its rates count as changed."""
    with transaction.atomic():
        _operator_name_free(name, exclude=operator.pk)
        operator.name, operator.currency, operator.description = name, currency, description
        operator.full_clean(exclude=["rates_version"])
        operator.save(update_fields=["name", "currency", "description"])
        operator_rates_changed(operator_ids=[operator.pk])
    operator.refresh_from_db(fields=["rates_version"])
    return operator


def operator_delete(*, operator: Operator) -> dict:
    """R5.1: delete an operator with its tariffs, prices, codes and time bands; returns
    what went. Refused (DeleteRefused, nothing deleted) while anything outside the tariffs
    refers to it or to its tariffs: calls rated at it, charges, routes, devices."""
    with transaction.atomic():
        references = references_elsewhere(
            Operator.objects.filter(pk=operator.pk), Tariff.objects.filter(operator=operator))
        if references:
            raise DeleteRefused(
                _("%(operator)s is in use: %(uses)s. It is not deleted.") % {
                    "operator": operator.name, "uses": _uses(references)},
                references=references)
        contents = operator_contents(operator=operator)
        operator.delete()
    return contents


def plan_create(*, name: str, description: str = "") -> TariffPlan:
    """R4.3: a new tariff plan (price list), without prices yet."""
    with transaction.atomic():
        _plan_name_free(name)
        plan = TariffPlan(name=name, description=description)
        plan.full_clean()
        plan.save()
    return plan


def plan_update(*, plan: TariffPlan, name: str, description: str = "") -> TariffPlan:
    """R4.3: a plan's name and description; the name is part of every compiled index of the
    plan, so the rates of every operator priced in it count as changed on a rename."""
    with transaction.atomic():
        _plan_name_free(name, exclude=plan.pk)
        renamed = TariffPlan.objects.filter(pk=plan.pk).exclude(name=name).exists()
        plan.name, plan.description = name, description
        plan.full_clean()
        plan.save()
        if renamed:
            operator_rates_changed(operator_ids=_plan_operator_ids(plan))
    return plan


def plan_delete(*, plan: TariffPlan) -> int:
    """R4.3: delete a plan with its prices; returns how many prices went. What refers to it
    elsewhere is emptied or deleted as its relation says (subscribers and devices lose
    their plan, calls keep their cost and lose the link, its recurring services go);
    refused (DeleteRefused) only where a relation protects it."""
    with transaction.atomic():
        blocking = [r for r in references_elsewhere(TariffPlan.objects.filter(pk=plan.pk))
                    if r.effect == "blocks"]
        if blocking:
            raise DeleteRefused(_("%(plan)s is in use: %(uses)s. It is not deleted.") % {
                "plan": plan.name, "uses": _uses(blocking)}, references=blocking)
        operator_ids = _plan_operator_ids(plan)
        prices = TariffPrice.objects.filter(plan=plan).count()
        plan.delete()
        operator_rates_changed(operator_ids=operator_ids)
    return prices


# A price of a tariff: (plan id, time band id or None for the base price) -> (price per
# minute, connection fee), or None to remove that price.
PriceKey = tuple[int, int | None]


def tariff_create(*, operator: Operator, name: str, valid_from: date,
                  direction: int = Direction.OUTGOING, call_type: int | None = None,
                  valid_to: date | None = None, account_description: str = "",
                  first_interval: int = 60, next_interval: int = 60, free_seconds: int = 0,
                  min_seconds: int = 0,
                  prices: dict[PriceKey, tuple[Decimal, Decimal] | None] | None = None) -> Tariff:
    """R4.2, R4.3: a new tariff of an operator with its prices in plans (and time bands)."""
    with transaction.atomic():
        tariff = Tariff(operator=operator)
        _tariff_fill(tariff, name=name, valid_from=valid_from, direction=direction,
                     call_type=call_type, valid_to=valid_to,
                     account_description=account_description, first_interval=first_interval,
                     next_interval=next_interval, free_seconds=free_seconds,
                     min_seconds=min_seconds)
        tariff.save()
        _prices_set(tariff, prices or {})
        operator_rates_changed(operator_ids=[operator.pk])
    return tariff


def tariff_update(*, tariff: Tariff, name: str, valid_from: date,
                  direction: int = Direction.OUTGOING, call_type: int | None = None,
                  valid_to: date | None = None, account_description: str = "",
                  first_interval: int = 60, next_interval: int = 60, free_seconds: int = 0,
                  min_seconds: int = 0,
                  prices: dict[PriceKey, tuple[Decimal, Decimal] | None] | None = None) -> Tariff:
    """R4.2, R4.3: a tariff's fields and the prices given (others are left as they are).
    Calls already stored keep their cost until re-rated."""
    with transaction.atomic():
        _tariff_fill(tariff, name=name, valid_from=valid_from, direction=direction,
                     call_type=call_type, valid_to=valid_to,
                     account_description=account_description, first_interval=first_interval,
                     next_interval=next_interval, free_seconds=free_seconds,
                     min_seconds=min_seconds)
        tariff.save()
        _prices_set(tariff, prices or {})
        operator_rates_changed(operator_ids=[tariff.operator_id])
    return tariff


def tariff_delete(*, tariff: Tariff) -> dict:
    """R4.2: delete a tariff with its prices and codes; returns what went. Calls and charges
    at it keep their cost and lose the link (as tariffs_delete_valid_from does)."""
    with transaction.atomic():
        gone = {"prices": tariff.prices.count(), "codes": tariff.codes.count()}
        operator_id = tariff.operator_id
        tariff.delete()
        operator_rates_changed(operator_ids=[operator_id])
    return gone


def code_create(*, tariff: Tariff, code: str, valid_from: date, name: str = "",
                call_type: int | None = None, category: str = "",
                valid_to: date | None = None) -> PhoneCode:
    """R4.1: a code (prefix) of the tariff's operator, owned by the tariff."""
    with transaction.atomic():
        phone_code = PhoneCode(operator_id=tariff.operator_id, tariff=tariff)
        _code_fill(phone_code, code=code, valid_from=valid_from, name=name,
                   call_type=call_type, category=category, valid_to=valid_to)
        phone_code.save()
        operator_rates_changed(operator_ids=[tariff.operator_id])
    return phone_code


def code_update(*, phone_code: PhoneCode, tariff: Tariff, code: str, valid_from: date,
                name: str = "", call_type: int | None = None, category: str = "",
                valid_to: date | None = None) -> PhoneCode:
    """R4.1: change a code. With the same code and a `valid_from` later than the row's, the
    change is a new period of the code from that date: a new row, and the old one kept as
    history, ending the day before (if it ran longer). Otherwise (another code, the same or
    an earlier date) the row itself is corrected. Returns the row that holds the change."""
    if tariff.operator_id != phone_code.operator_id:
        raise ValidationError({"tariff": _("The tariff belongs to another operator.")})
    with transaction.atomic():
        if valid_from > phone_code.valid_from and code == phone_code.code:
            earlier = phone_code
            phone_code = PhoneCode(operator_id=earlier.operator_id, tariff=tariff)
            _code_fill(phone_code, code=code, valid_from=valid_from, name=name,
                       call_type=call_type, category=category, valid_to=valid_to)
            phone_code.save()
            if earlier.valid_to is None or earlier.valid_to >= valid_from:
                earlier.valid_to = valid_from - timedelta(days=1)
                earlier.save(update_fields=["valid_to"])
        else:
            phone_code.tariff = tariff
            _code_fill(phone_code, code=code, valid_from=valid_from, name=name,
                       call_type=call_type, category=category, valid_to=valid_to)
            phone_code.save()
        operator_rates_changed(operator_ids=[phone_code.operator_id])
    return phone_code


def code_delete(*, phone_code: PhoneCode) -> None:
    """R4.1: delete one row of a code (its other periods stay)."""
    with transaction.atomic():
        operator_id = phone_code.operator_id
        phone_code.delete()
        operator_rates_changed(operator_ids=[operator_id])


def band_create(*, operator: Operator, name: str, weekdays: str = "1234567",
                start_time: time = time(0, 0), end_time: time = time(0, 0),
                holidays: bool = False, priority: int = 0) -> TimeBand:
    """R4.2: a time band of an operator (peak, off-peak, weekend, holidays)."""
    with transaction.atomic():
        band = TimeBand(operator=operator)
        _band_fill(band, name=name, weekdays=weekdays, start_time=start_time,
                   end_time=end_time, holidays=holidays, priority=priority)
        band.save()
        operator_rates_changed(operator_ids=[operator.pk])
    return band


def band_update(*, band: TimeBand, name: str, weekdays: str = "1234567",
                start_time: time = time(0, 0), end_time: time = time(0, 0),
                holidays: bool = False, priority: int = 0) -> TimeBand:
    """R4.2: a time band's name, days, hours, holiday flag and priority."""
    with transaction.atomic():
        _band_fill(band, name=name, weekdays=weekdays, start_time=start_time,
                   end_time=end_time, holidays=holidays, priority=priority)
        band.save()
        operator_rates_changed(operator_ids=[band.operator_id])
    return band


def band_delete(*, band: TimeBand) -> int:
    """R4.2: delete a time band with its prices; returns how many prices went (calls in it
    are then priced at their tariffs' base prices)."""
    with transaction.atomic():
        prices = band.prices.count()
        operator_id = band.operator_id
        band.delete()
        operator_rates_changed(operator_ids=[operator_id])
    return prices


def _operator_name_free(name: str, exclude: int | None = None) -> None:
    if Operator.objects.filter(name=name).exclude(pk=exclude).exists():
        raise ValidationError({"name": _("An operator named %(name)s exists already.")
                               % {"name": name}})


def _plan_name_free(name: str, exclude: int | None = None) -> None:
    if TariffPlan.objects.filter(name=name).exclude(pk=exclude).exists():
        raise ValidationError({"name": _("A tariff plan named %(name)s exists already.")
                               % {"name": name}})


def _plan_operator_ids(plan: TariffPlan) -> set[int]:
    return set(TariffPrice.objects.filter(plan=plan).order_by()
               .values_list("tariff__operator_id", flat=True).distinct())


def _uses(references) -> str:
    return ", ".join(f"{r.count} {r.model} ({r.field})" for r in references)


def _tariff_fill(tariff: Tariff, **fields) -> None:
    """Set the fields and check them as the database would (names in the messages are the
    form's fields)."""
    for name, value in fields.items():
        setattr(tariff, name, value)
    errors = {}
    if tariff.valid_to is not None and tariff.valid_to < tariff.valid_from:
        errors["valid_to"] = _("The last day comes before the first (valid from).")
    for name in ("first_interval", "next_interval"):
        if getattr(tariff, name) < 1:
            errors[name] = _("At least 1 second.")
    for name in ("free_seconds", "min_seconds"):
        if getattr(tariff, name) < 0:
            errors[name] = _("Not negative.")
    if Tariff.objects.filter(operator_id=tariff.operator_id, name=tariff.name,
                             direction=tariff.direction, valid_from=tariff.valid_from
                             ).exclude(pk=tariff.pk).exists():
        errors["valid_from"] = _("%(operator)s already has a tariff %(name)s of this direction "
                                 "valid from %(date)s.") % {
            "operator": tariff.operator.name, "name": tariff.name, "date": tariff.valid_from}
    if errors:
        raise ValidationError(errors)
    tariff.full_clean(validate_unique=False, validate_constraints=False)


def _prices_set(tariff: Tariff, prices: dict) -> None:
    if not prices:
        return
    band_ids = {band for _, band in prices if band is not None}
    if band_ids - set(TimeBand.objects.filter(operator_id=tariff.operator_id, pk__in=band_ids)
                      .values_list("pk", flat=True)):
        raise ValidationError(_("A price is in a time band of another operator."))
    stored = {(p.plan_id, p.band_id): p for p in tariff.prices.all()}
    for key, value in prices.items():
        current = stored.get(key)
        if value is None:
            if current is not None:
                current.delete()
            continue
        price, fee = value
        if price < 0 or fee < 0:
            raise ValidationError(_("A price or a connection fee is negative."))
        if current is None:
            TariffPrice.objects.create(tariff=tariff, plan_id=key[0], band_id=key[1],
                                       price_per_minute=price, connection_fee=fee)
        elif (current.price_per_minute, current.connection_fee) != (price, fee):
            current.price_per_minute, current.connection_fee = price, fee
            current.save(update_fields=["price_per_minute", "connection_fee"])


def _code_fill(phone_code: PhoneCode, **fields) -> None:
    for name, value in fields.items():
        setattr(phone_code, name, value)
    errors = {}
    if not phone_code.code.isdigit():
        errors["code"] = _("Digits only, in international form (country code first).")
    if phone_code.valid_to is not None and phone_code.valid_to < phone_code.valid_from:
        errors["valid_to"] = _("The last day comes before the first (valid from).")
    clash = (PhoneCode.objects.filter(
        tariff__operator_id=phone_code.operator_id, code=phone_code.code,
        valid_from=phone_code.valid_from, tariff__direction=phone_code.tariff.direction)
        .exclude(pk=phone_code.pk).select_related("tariff").first())
    if clash is not None:
        errors["valid_from"] = _("Code %(code)s is already valid from %(date)s (tariff "
                                 "%(tariff)s): choose another date, or edit that row.") % {
            "code": phone_code.code, "date": phone_code.valid_from, "tariff": clash.tariff.name}
    if errors:
        raise ValidationError(errors)
    phone_code.full_clean(validate_unique=False, validate_constraints=False)


def _band_fill(band: TimeBand, **fields) -> None:
    for name, value in fields.items():
        setattr(band, name, value)
    errors = {}
    if not band.weekdays or set(band.weekdays) - set("1234567"):
        errors["weekdays"] = _("ISO weekday digits, 1 = Monday ... 7 = Sunday.")
    if TimeBand.objects.filter(operator_id=band.operator_id, name=band.name).exclude(
            pk=band.pk).exists():
        errors["name"] = _("%(operator)s already has a time band named %(name)s.") % {
            "operator": band.operator.name, "name": band.name}
    if errors:
        raise ValidationError(errors)
    band.full_clean(validate_unique=False, validate_constraints=False)
