"""Writes of billing data (STYLE rule 2)."""
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC

from django.conf import settings
from django.db import transaction

from billing.models import Call, Device
from billing.numbering import DialPlan, Kind, classify, parse_number, split_auth_code
from billing.selectors import HolidayCalendar, NumberDirectory
from observers.parsers.base import CallRecord
from tariffs.models import CallType, Direction, Operator, TariffPlan
from tariffs.rating import Decision, TariffIndex, rate
from tariffs.selectors import tariff_index_get


@dataclass
class StoreResult:
    calls: int = 0
    duplicates: int = 0


class CallBuilder:
    """Turns parsed records of one device into rated Call rows (R3.2, R4).

    Built once per batch: it loads the device's numbers, routes, holidays and the compiled
    tariff indexes it needs, so rating a call touches no database.
    """

    def __init__(self, device: Device):
        # Fresh from the database: a long-running collector holds its device for days, and
        # the dial plan or the operators' rate versions may have changed since.
        device = Device.objects.select_related("node", "default_operator").get(pk=device.pk)
        self.device = device
        self.zone = zoneinfo.ZoneInfo(device.timezone)
        self.dial_plan = DialPlan.from_device(device)
        self.numbers = NumberDirectory(device)
        self.routes = {r.name: r for r in device.routes.select_related("operator")}
        self.holidays = HolidayCalendar(device.node)
        self._plans: dict[int, TariffPlan] = {}

    def _index(self, operator: Operator, plan_id: int) -> TariffIndex:
        plan = self._plans.get(plan_id)
        if plan is None:
            plan = self._plans[plan_id] = TariffPlan.objects.get(pk=plan_id)
        return tariff_index_get(operator=operator, plan=plan)

    def build(self, record: CallRecord) -> Call:
        call, _ = self.build_explained(record)
        return call

    def _resolve_direction(self, record: CallRecord) -> CallRecord:
        """R3.2: for formats that do not say, the direction from which ends are extensions."""
        if record.direction is not None:
            return record
        known = self.numbers.dns
        caller_inside = parse_number(record.extension, self.dial_plan, known)[1] == Kind.EXTENSION
        called_inside = parse_number(record.dialled, self.dial_plan, known)[1] == Kind.EXTENSION
        if caller_inside and called_inside:
            return replace(record, direction=Direction.INTERNAL, trunk="")
        if called_inside and not caller_inside:
            return replace(record, direction=Direction.INCOMING, extension=record.dialled,
                           dialled=record.extension, trunk=record.origin_trunk or record.trunk)
        # From an extension out, or passing through (outside to outside): what costs is the
        # leg that left through `trunk`.
        return replace(record, direction=Direction.OUTGOING)

    def build_explained(self, record: CallRecord) -> tuple[Call, Decision | None]:
        """The unsaved Call and the rating decision behind it (None: not rated)."""
        record = self._resolve_direction(record)
        local_start = (record.start.replace(tzinfo=self.zone) if record.start.tzinfo is None
                       else record.start.astimezone(self.zone))
        day = local_start.date()
        holder = self.numbers.holder(record.extension, day)
        subscriber_id, plan_id = holder if holder else (None, None)
        plan_id = plan_id or self.device.default_plan_id
        route = self.routes.get(record.trunk) if record.trunk else None
        operator = route.operator if route else self.device.default_operator
        auth_code = ""
        dialled = record.dialled
        if record.direction == Direction.OUTGOING:
            dialled, auth_code = split_auth_code(record.dialled, self.dial_plan)
        normalized, kind = parse_number(dialled, self.dial_plan, self.numbers.dns)
        answered = record.answered if record.answered is not None else record.duration > 0
        call = Call(
            device=self.device, source_key=record.source_key, start=local_start.astimezone(UTC),
            duration=record.duration, answered=answered, direction=record.direction,
            extension=record.extension, subscriber_id=subscriber_id, dialled=record.dialled,
            normalized=normalized, auth_code=auth_code, route=route, trunk=record.trunk,
            operator=operator, plan_id=plan_id,
        )
        decision = None
        code_type = None
        if record.direction == Direction.INTERNAL or (
                kind == Kind.EXTENSION and record.direction != Direction.INCOMING):
            call.direction = Direction.INTERNAL
            call.rating_note = "internal call: not rated"
        elif kind == Kind.SERVICE:
            # Short national numbers: matching them against international codes would
            # price 112 as a call to the USA.
            call.rating_note = "emergency or service number: not rated"
        elif operator is None:
            call.rating_note = "no route operator and no default operator on the device"
        elif plan_id is None:
            call.rating_note = "no tariff plan on the subscriber or the device"
        else:
            tariff_direction = (Direction.INCOMING if record.direction == Direction.INCOMING
                                else Direction.OUTGOING)
            decision = rate(self._index(operator, plan_id), number=normalized,
                            at=local_start.replace(tzinfo=None), direction=tariff_direction,
                            duration=record.duration, holiday=self.holidays.is_holiday(day),
                            answered=answered)
            call.rating_note = decision.rule[:300]
            if decision.entry is not None:
                code_type = decision.entry.call_type
                call.code = decision.entry.code
                call.tariff_id = decision.entry.tariff_id
            if decision.cost is not None:
                call.billable_seconds = decision.billable_seconds
                call.cost = decision.cost
                call.currency = decision.currency
        call.call_type = classify(direction=call.direction, normalized=normalized,
                                  plan=self.dial_plan, code_call_type=code_type, kind=kind)
        if call.call_type == CallType.INTERNAL:
            call.cost = None
        return call, decision


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
