"""R3, R4: calls built from parsed records, rated, and stored (the pipeline's store step).

`CallBuilder` turns a parsed record into a rated, unsaved Call; `calls_store` stores a
device's records idempotently and says which subscribers' months gained priced calls, whose
charges the pipeline then rebuilds (billing.accounts.charges_recalculate_for).
"""
import csv
import io
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from billing.models import Call, Device
from billing.numbering import DialPlan, Kind, classify, parse_number, split_auth_code
from billing.selectors import HolidayCalendar, NumberDirectory
from billing.usage import usage_add
from observers.parsers.base import CallRecord
from tariffs.choices import CallType, Direction
from tariffs.models import Operator, TariffPlan
from tariffs.rating import Decision, TariffIndex, rate
from tariffs.selectors import tariff_index_get


@dataclass
class StoreResult:
    calls: int = 0
    duplicates: int = 0
    # The ids of the calls stored (for the call_processed event, R9.2), in insertion order.
    ids: list[int] = field(default_factory=list)
    # (subscriber id, local day) of the priced calls stored: the months whose charges are
    # to be rebuilt (R7.1).
    charged: set[tuple[int, date]] = field(default_factory=set)
    # The subscribers whose usage of a month grew (R8.1: their limits are checked next).
    subscribers: set[int] = field(default_factory=set)


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
        # Per batch: the indexes in use and which local days are holidays.
        self._indexes: dict[tuple[int, int], TariffIndex] = {}
        self._holiday: dict = {}
        # The device's own values, read once rather than through the model per call.
        self._device_id = device.pk
        self._default_plan_id = device.default_plan_id
        self._default_operator = device.default_operator
        self._default_operator_id = device.default_operator_id
        # route name -> (route id, its operator, the operator's id)
        self._route_ids = {name: (route.pk, route.operator, route.operator_id)
                           for name, route in self.routes.items()}

    def _index(self, operator: Operator, plan_id: int) -> TariffIndex:
        key = (operator.pk, plan_id)
        index = self._indexes.get(key)
        if index is None:
            plan = self._plans.get(plan_id)
            if plan is None:
                plan = self._plans[plan_id] = TariffPlan.objects.get(pk=plan_id)
            index = self._indexes[key] = tariff_index_get(operator=operator, plan=plan)
        return index

    def _is_holiday(self, day) -> bool:
        holiday = self._holiday.get(day)
        if holiday is None:
            holiday = self._holiday[day] = self.holidays.is_holiday(day)
        return holiday

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
        plan_id = plan_id or self._default_plan_id
        route = self.routes.get(record.trunk) if record.trunk else None
        if route is not None:
            route_id, operator, operator_id = self._route_ids[route.name]
        else:
            route_id, operator, operator_id = None, self._default_operator, self._default_operator_id
        auth_code = ""
        dialled = record.dialled
        if record.direction == Direction.OUTGOING:
            dialled, auth_code = split_auth_code(record.dialled, self.dial_plan)
        normalized, kind = parse_number(dialled, self.dial_plan, self.numbers.dns)
        answered = record.answered if record.answered is not None else record.duration > 0
        v = {
            "device_id": self._device_id, "source_key": record.source_key,
            "start": local_start.astimezone(UTC), "duration": record.duration,
            "answered": answered, "direction": record.direction, "extension": record.extension,
            "subscriber_id": subscriber_id, "dialled": record.dialled, "normalized": normalized,
            "auth_code": auth_code, "route_id": route_id,
            "trunk": record.trunk, "operator_id": operator_id,
            "plan_id": plan_id,
        }
        decision = None
        code_type = None
        if record.direction == Direction.INTERNAL or (
                kind == Kind.EXTENSION and record.direction != Direction.INCOMING):
            v["direction"] = Direction.INTERNAL
            v["rating_note"] = "internal call: not rated"
        elif kind == Kind.NOT_A_NUMBER:
            v["rating_note"] = "not a telephone number (letters or signs no number has): not rated"
        elif kind == Kind.SERVICE:
            # Short national numbers: matching them against international codes would
            # price 112 as a call to the USA.
            v["rating_note"] = "emergency or service number: not rated"
        elif operator is None:
            v["rating_note"] = "no route operator and no default operator on the device"
        elif plan_id is None:
            v["rating_note"] = "no tariff plan on the subscriber or the device"
        else:
            tariff_direction = (Direction.INCOMING if record.direction == Direction.INCOMING
                                else Direction.OUTGOING)
            decision = rate(self._index(operator, plan_id), number=normalized,
                            at=local_start.replace(tzinfo=None), direction=tariff_direction,
                            duration=record.duration, holiday=self._is_holiday(day),
                            answered=answered)
            v["rating_note"] = decision.rule[:300]
            if decision.entry is not None:
                code_type = decision.entry.call_type
                v["code"] = decision.entry.code
                v["tariff_id"] = decision.entry.tariff_id
            if decision.cost is not None:
                v["billable_seconds"] = decision.billable_seconds
                v["cost"] = decision.cost
                v["currency"] = decision.currency
        v["call_type"] = classify(direction=v["direction"], normalized=normalized,
                                  plan=self.dial_plan, code_call_type=code_type, kind=kind)
        if v["call_type"] == CallType.INTERNAL:
            v["cost"] = None
        related = {"device": self.device}
        if route is not None:
            related["route"] = route
        if operator is not None:
            related["operator"] = operator
        return _new_call(v, related), decision


_call_defaults: dict | None = None


def _new_call(values: dict, related: dict) -> Call:
    """An unsaved Call from attribute values, without Model.__init__'s per-field work (a
    quarter of the pipeline's time); `related` are already-loaded related objects."""
    global _call_defaults
    if _call_defaults is None:
        _call_defaults = {f.attname: f.get_default() for f in Call._meta.concrete_fields}
    call = Call.__new__(Call)
    state = call._state = ModelState()
    state.fields_cache = related  # (what the descriptor would create empty, then fill)
    call.__dict__.update(_call_defaults)
    call.__dict__.update(values)
    return call


def _column_adapters():
    """(column, attname, adapter) of the call table; money and times adapted as Django would."""
    ops = connection.ops
    out = []
    for column_field in Call._meta.concrete_fields:
        if column_field.primary_key:
            continue
        if isinstance(column_field, models.DateTimeField):
            adapt = ops.adapt_datetimefield_value
        elif isinstance(column_field, models.DecimalField):
            def adapt(value, _f=column_field):
                return ops.adapt_decimalfield_value(value, _f.max_digits, _f.decimal_places)
        else:
            adapt = None
        out.append((column_field.column, column_field.attname, adapt))
    return out


# The call table's id sequence (PostgreSQL), looked up once per process.
_id_sequence: str | None = None

# How COPY spells NULL: a value no call field can hold.
_NULL = "\\N"


def _insert_postgresql(cursor, table: str, names: str, rows: list[tuple],
                       conflict: str) -> tuple[list[int], list[int]]:
    """COPY straight into the table (the fastest way in), with ids taken from the table's
    sequence first, so that the ids of the calls stored are known; if a concurrent delivery
    stored one of these calls meanwhile, the COPY fails as a whole and the rows go in again
    with INSERT ... ON CONFLICT DO NOTHING RETURNING id. Returns the ids given to the rows,
    in their order, and those of the rows inserted."""
    # psycopg2 is the PostgreSQL driver, not installed where only SQLite is used.
    from psycopg2 import IntegrityError as PgIntegrityError
    from psycopg2.extras import execute_values

    global _id_sequence
    if _id_sequence is None:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Call._meta.db_table])
        _id_sequence = cursor.fetchone()[0]
    # The sequence as a constant: resolving its name on each row cost 8 times as much.
    cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                   [_id_sequence, len(rows)])
    ids = [row[0] for row in cursor.fetchall()]
    rows = [(call_id, *row) for call_id, row in zip(ids, rows, strict=True)]
    names = f"id, {names}"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(tuple(_NULL if v is None else v for v in row) for row in rows)
    buffer.seek(0)
    try:
        with transaction.atomic():
            cursor.cursor.copy_expert(
                f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, NULL '{_NULL}')", buffer)
        return ids, ids
    except PgIntegrityError:  # the raw cursor raises psycopg2's own error
        # Table and column names come from the model, never from input: no injection.
        inserted = execute_values(
            cursor.cursor, f"INSERT INTO {table} ({names}) VALUES %s {conflict} RETURNING id",  # noqa: S608
            rows, page_size=1000, fetch=True)
        return ids, [row[0] for row in inserted]


def calls_insert(calls: list[Call]) -> list[int]:
    """Insert built calls in bulk, skipping any whose (device, source key) is already stored
    (INSERT ... ON CONFLICT DO NOTHING): a re-delivery or a concurrent delivery of the same
    records neither fails nor doubles. Returns the ids of those inserted, and gives each of
    those calls its id (the others keep none). Bypasses the ORM's
    per-field preparation, which cost more than the rest of the pipeline together."""
    if not calls:
        return []
    columns = _column_adapters()
    now = timezone.now()
    rows = []
    for call in calls:
        if call.created_at is None:
            call.created_at = now
        values = call.__dict__
        rows.append(tuple(adapt(values[attname]) if adapt and values[attname] is not None
                          else values[attname] for _, attname, adapt in columns))
    names = ", ".join(connection.ops.quote_name(column) for column, _, _ in columns)
    table = connection.ops.quote_name(Call._meta.db_table)
    conflict = "ON CONFLICT (device_id, source_key) DO NOTHING"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            given, inserted = _insert_postgresql(cursor, table, names, rows, conflict)
            stored = set(inserted)
            for call, call_id in zip(calls, given, strict=True):
                if call_id in stored:
                    call.pk = call_id
            return inserted
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}",  # noqa: S608
                           rows)
        if not cursor.rowcount:
            return []
        # SQLite lets one writer in at a time: the rows of this batch are those of its
        # keys stamped with its time (a call already stored was stored before).
        keys = dict(Call.objects.filter(
            device_id=calls[0].device_id, created_at=now,
            source_key__in=[call.source_key for call in calls]).order_by("pk")
            .values_list("source_key", "pk"))
        for call in calls:
            call.pk = keys.get(call.source_key)
        return list(keys.values())


def calls_store(*, device: Device, records: Iterable[CallRecord]) -> StoreResult:
    """R2.4, R3, R4: normalise, classify, rate and store records; a known record is skipped.
    The charges of the months in `result.charged` are not touched here: that is the next
    step of the pipeline."""
    result = StoreResult()
    builder = CallBuilder(device)
    batch: dict[str, CallRecord] = {}
    size = settings.TARISCOPE_BATCH_SIZE

    def flush():
        # No "which of these exist?" query first: the unique (device, source key) decides,
        # in the insert itself (a look-up per batch went quadratic on a freshly emptied
        # table, whose statistics still say "empty").
        calls = [builder.build(record) for record in batch.values()]
        result.charged.update((c.subscriber_id, c.start.astimezone(builder.zone).date())
                       for c in calls if c.subscriber_id is not None and c.cost is not None)
        with transaction.atomic():
            inserted = calls_insert(calls)
            # R8.1: the month's usage grows with the calls stored, in their transaction.
            result.subscribers |= usage_add(calls=[c for c in calls if c.pk is not None],
                                            zone=builder.zone)
        result.calls += len(inserted)
        result.duplicates += len(batch) - len(inserted)
        result.ids += inserted
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
