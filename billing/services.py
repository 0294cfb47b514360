"""Writes of billing data (STYLE rule 2)."""
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from billing.models import Call, Device
from billing.numbering import DialPlan, Kind, classify, parse_number
from billing.selectors import NumberDirectory
from observers.parsers.base import CallRecord
from tariffs.models import CallType, Direction, Operator, TariffPlan
from tariffs.rating import TariffIndex, rate
from tariffs.selectors import tariff_index_build

# Calls of these types are not priced: they leave through no carrier.
_UNRATED = (CallType.INTERNAL,)


@dataclass
class StoreResult:
    calls: int = 0
    duplicates: int = 0


class CallBuilder:
    """Turns parsed records of one device into rated Call rows (R3.2, R4)."""

    def __init__(self, device: Device):
        self.device = device
        self.zone = zoneinfo.ZoneInfo(device.timezone)
        self.dial_plan = DialPlan.from_device(device)
        self.numbers = NumberDirectory(device)
        self.routes = {r.name: r for r in device.routes.select_related("operator")}
        self._operators: dict[int, Operator] = {}
        self._plans: dict[int, TariffPlan] = {}
        self._indexes: dict[tuple[int, int], TariffIndex] = {}

    def _index(self, operator: Operator, plan_id: int) -> TariffIndex:
        key = (operator.pk, plan_id)
        if key not in self._indexes:
            plan = self._plans.get(plan_id) or TariffPlan.objects.get(pk=plan_id)
            self._plans[plan_id] = plan
            self._indexes[key] = tariff_index_build(operator=operator, plan=plan)
        return self._indexes[key]

    def build(self, record: CallRecord) -> Call:
        local_start = record.start.replace(tzinfo=self.zone) if record.start.tzinfo is None \
            else record.start.astimezone(self.zone)
        day = local_start.date()
        holder = self.numbers.holder(record.extension, day)
        subscriber_id, plan_id = holder if holder else (None, None)
        plan_id = plan_id or self.device.default_plan_id
        route = self.routes.get(record.trunk) if record.trunk else None
        operator = route.operator if route else self.device.default_operator
        normalized, kind = parse_number(record.dialled, self.dial_plan)
        call = Call(
            device=self.device, source_key=record.source_key,
            start=local_start.astimezone(zoneinfo.ZoneInfo("UTC")), duration=record.duration,
            direction=record.direction, extension=record.extension, subscriber_id=subscriber_id,
            dialled=record.dialled, normalized=normalized, route=route, trunk=record.trunk,
            operator=operator, plan_id=plan_id,
        )
        code_type = None
        internal = record.direction == Direction.INTERNAL or (
            kind == Kind.EXTENSION and record.direction != Direction.INCOMING)
        if internal:
            call.direction = Direction.INTERNAL
            call.rating_note = "internal call: not rated"
        elif operator is None:
            call.rating_note = "no route operator and no default operator on the device"
        elif plan_id is None:
            call.rating_note = "no tariff plan on the subscriber or the device"
        else:
            tariff_direction = (
                Direction.INCOMING if record.direction == Direction.INCOMING else Direction.OUTGOING
            )
            decision = rate(self._index(operator, plan_id), number=normalized, day=day,
                            direction=tariff_direction, duration=record.duration)
            call.rating_note = decision.rule[:300]
            if decision.entry is not None:
                code_type = decision.entry.call_type
                call.code = decision.entry.code
                call.tariff_id = decision.entry.tariff_id
                call.billable_seconds = decision.billable_seconds
                call.cost = decision.cost
                call.currency = decision.currency
        call.call_type = classify(direction=call.direction, normalized=normalized,
                                  plan=self.dial_plan, code_call_type=code_type, kind=kind)
        if call.call_type in _UNRATED:
            call.cost = None
        return call


def calls_store(*, device: Device, records: Iterable[CallRecord]) -> StoreResult:
    """R2.4, R3, R4: normalise, classify, rate and store records; a known record is skipped."""
    result = StoreResult()
    builder = CallBuilder(device)
    batch: dict[str, CallRecord] = {}
    size = settings.TARISCOPE_BATCH_SIZE

    def flush():
        keys = list(batch)
        existing = set()
        for i in range(0, len(keys), 500):
            existing.update(Call.objects.filter(
                device=device, source_key__in=keys[i:i + 500]).values_list("source_key", flat=True))
        new = [builder.build(r) for k, r in batch.items() if k not in existing]
        with transaction.atomic():
            # ignore_conflicts: a concurrent delivery of the same records must not fail or double.
            Call.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        result.calls += len(new)
        result.duplicates += len(existing)
        batch.clear()

    for record in records:
        if record.source_key in batch:
            result.duplicates += 1
            continue
        batch[record.source_key] = record
        if len(batch) >= size:
            flush()
    if batch:
        flush()
    return result
