"""R5.2/R5.3: importing a rate deck into an operator's codes, tariffs and prices.

A wizard (or the command) goes step by step: `import_sheets` (open the file, list its
sheets), `import_preview` (the first rows as mapped, with their rejects), then
`tariffs_import` (everything, in one transaction) -> ImportResult.
"""
import datetime
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from tariffs.importers.mapping import CodeRow, ImportOptions, Mapped, MappingError, rows_map
from tariffs.importers.readers import ImportFileError, read_rows, sheet_names
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.services import operator_rates_changed

BATCH = 2000


class TariffImportError(ValueError):
    """The file, the mapping or the options are wrong: nothing was imported."""


@dataclass
class ImportResult:
    """R5.2 step 6: what an import did (or, with dry_run, would do)."""

    codes_added: int = 0
    tariffs_added: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[dict] = field(default_factory=list)
    dry_run: bool = False

    @property
    def accepted(self) -> int:
        """Codes and tariffs the import added, changed or deliberately left alone."""
        return self.codes_added + self.tariffs_added + self.updated + self.skipped

    def as_dict(self) -> dict:
        return {"codes_added": self.codes_added, "tariffs_added": self.tariffs_added,
                "updated": self.updated, "skipped": self.skipped, "rejected": self.rejected,
                "dry_run": self.dry_run}


def import_sheets(*, source) -> list[str]:
    """R5.2 step 2: the sheets (or Access tables) to choose from."""
    try:
        return sheet_names(source)
    except ImportFileError as exc:
        raise TariffImportError(str(exc)) from None


def import_rows(*, source, sheet: str | None) -> list[list]:
    """The raw rows of a sheet, read once; pass them to import_preview / tariffs_import
    (`rows=`) so that a wizard does not read a large file at every step."""
    try:
        return read_rows(source, sheet)
    except ImportFileError as exc:
        raise TariffImportError(str(exc)) from None


def import_preview(*, rows: list[list], mapping: dict[str, str], options: ImportOptions,
                   limit: int = 20) -> Mapped:
    """R5.2 step 3: the first `limit` data rows as mapped, with their rejects."""
    head = rows[: limit + (1 if options.has_header else 0)]
    try:
        return rows_map(head, mapping=mapping, options=options)
    except MappingError as exc:
        raise TariffImportError(str(exc)) from None


def tariffs_import(*, source, sheet: str | None, mapping: dict[str, str], options: ImportOptions,
                   dry_run: bool = False, rows: list[list] | None = None) -> ImportResult:
    """R5.2/R5.3: import a deck in ONE transaction (any error leaves the database as it
    was); rejected rows are reported, not fatal. `rows` are the sheet's rows when the
    caller has read them already (import_rows); else `source` and `sheet` are read."""
    if rows is None:
        rows = import_rows(source=source, sheet=sheet)
    try:
        mapped = rows_map(rows, mapping=mapping, options=options)
    except MappingError as exc:
        raise TariffImportError(str(exc)) from None
    with transaction.atomic():
        operator = _operator(options)
        plan = _plan(options)
        writer = _Writer(operator=operator, plan=plan, options=options)
        result = writer.write(mapped.rows)
        operator_rates_changed(operator_ids=[operator.pk])
        # An import that accepted nothing leaves no new operator or plan behind either.
        if dry_run or result.accepted == 0:
            transaction.set_rollback(True)
    result.dry_run = dry_run
    result.rejected = sorted(mapped.rejected + writer.rejected, key=lambda r: r["row"])
    return result


def _operator(options: ImportOptions) -> Operator:
    operator = Operator.objects.select_for_update().filter(name=options.operator).first()
    if operator is not None:
        if operator.currency != options.currency:
            raise TariffImportError(
                f"operator {operator.name!r} keeps its rates in {operator.currency}, "
                f"not {options.currency}")
        return operator
    operator = Operator(name=options.operator, currency=options.currency)
    try:
        operator.full_clean()
    except ValidationError as exc:
        raise TariffImportError("the operator: " + "; ".join(exc.messages)) from None
    operator.save()
    return operator


def _plan(options: ImportOptions) -> TariffPlan:
    plan = TariffPlan.objects.filter(name=options.plan).first()
    if plan is None:
        plan = TariffPlan(name=options.plan)
        try:
            plan.full_clean()
        except ValidationError as exc:
            raise TariffImportError("the tariff plan: " + "; ".join(exc.messages)) from None
        plan.save()
    return plan


@dataclass
class _NewTariff:
    """A tariff (or a tariff's new period) to insert; `pk` is filled in by the insert."""

    name: str
    direction: int
    call_type: int | None
    valid_from: datetime.date
    valid_to: datetime.date | None
    account_description: str
    first_interval: int
    next_interval: int
    free_seconds: int = 0
    min_seconds: int = 0
    pk: int | None = None


class _Writer:
    """One import's writes: the operator's existing codes, tariffs and prices are read
    once, the decisions are made in memory, then everything is written in bulk (PostgreSQL:
    COPY; other databases: bulk inserts), in the caller's transaction."""

    def __init__(self, *, operator: Operator, plan: TariffPlan, options: ImportOptions):
        self.operator, self.plan, self.options = operator, plan, options
        self.rejected: list[dict] = []
        self.result = ImportResult()
        interval = 1 if options.per_second else 60
        self.interval = interval
        # (name, direction) -> the latest period of that tariff.
        self.latest: dict[tuple[str, int], Tariff] = {}
        for tariff in Tariff.objects.filter(operator=operator).order_by("valid_from"):
            self.latest[(tariff.name, tariff.direction)] = tariff
        # (code, direction) -> names of the tariffs it belongs to.
        self.codes: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.codes_of: dict[int, list] = defaultdict(list)
        for row in PhoneCode.objects.filter(operator=operator).values_list(
                "code", "tariff__direction", "tariff__name", "tariff_id", "name", "call_type",
                "category", "valid_from", "valid_to", named=True):
            self.codes[(row.code, row.tariff__direction)].add(row.tariff__name)
            self.codes_of[row.tariff_id].append(row)
        self.prices_of: dict[int, list[TariffPrice]] = defaultdict(list)
        for price in TariffPrice.objects.filter(tariff__operator=operator):
            self.prices_of[price.tariff_id].append(price)

    def _base_price(self, tariff_id: int) -> TariffPrice | None:
        return next((p for p in self.prices_of.get(tariff_id, ())
                     if p.plan_id == self.plan.pk and p.band_id is None), None)

    def _groups(self, records: list[CodeRow]) -> dict[tuple[str, int], list[CodeRow]]:
        """The records of the rows that can be written as the options say, by tariff
        (name, direction) in the order of their first row; the other rows are rejected."""
        options = self.options
        update = options.update and not options.codes_only
        # Without codes_only, and without update on an operator with tariffs or codes, only
        # the rows of one tariff can disagree with each other.
        plain = not options.codes_only and not (update and (self.latest or self.codes))
        bad: dict[int, str] = {}
        groups: dict[tuple[str, int], list[CodeRow]] = {}
        for r in records:
            if bad and r.row in bad:
                continue
            key = (r.tariff, r.direction)
            group = groups.get(key)
            if group is None:
                groups[key] = group = [r]
                head = r
            else:
                group.append(r)
                head = group[0]
                if head.rate != r.rate:
                    bad[r.row] = f"tariff {r.tariff!r} has rate {head.rate} in row {head.row}"
                    continue
                if head.tariff_valid_from != r.tariff_valid_from:
                    bad[r.row] = (f"tariff {r.tariff!r} is valid from {head.tariff_valid_from} "
                                  f"in row {head.row}")
                    continue
            if plain:
                continue
            latest = self.latest.get(key)
            owners = self.codes.get((r.code, r.direction))
            if options.codes_only and latest is None:
                bad[r.row] = f"tariff {r.tariff!r} does not exist for this operator"
            elif update and latest is not None and latest.valid_from > r.tariff_valid_from:
                bad[r.row] = (f"tariff {r.tariff!r} already has a period from "
                              f"{latest.valid_from}, after {r.tariff_valid_from}")
            elif update and owners and r.tariff not in owners:
                bad[r.row] = (f"code {r.code} belongs to tariff {sorted(owners)[0]!r}; an import "
                              f"does not move codes between tariffs")
        if not bad:
            return groups
        self.rejected.extend({"row": row, "reason": reason} for row, reason in bad.items())
        # A group's first record (its call type) and the groups' order are those of the rows
        # that are left.
        survivors: dict[tuple[str, int], list[CodeRow]] = defaultdict(list)
        for r in records:
            if r.row not in bad:
                survivors[(r.tariff, r.direction)].append(r)
        return survivors

    def write(self, records: list[CodeRow]) -> ImportResult:
        groups = self._groups(records)
        new_tariffs: list[_NewTariff] = []
        new_codes: list[tuple[list, object]] = []  # (records, _NewTariff or tariff id)
        new_prices: list[tuple] = []  # (_NewTariff or tariff id, plan, band, price, fee)
        changed_prices: list[TariffPrice] = []
        closed: dict[datetime.date, list[int]] = defaultdict(list)
        # (new period, old period's id, its start, the file's rate)
        copies: list[tuple[_NewTariff, int, datetime.date, object]] = []
        options = self.options
        plan_id = self.plan.pk
        known_codes = self.codes
        for key, group in groups.items():
            head = group[0]
            # A new operator has no codes to compare with.
            fresh = ([r for r in group if (r.code, r.direction) not in known_codes]
                     if known_codes else group)
            known = len(group) - len(fresh)
            latest = self.latest.get(key)
            if options.codes_only or not options.update or latest is None:
                self.result.skipped += known
                if latest is None:
                    if not fresh:
                        continue
                    tariff = self._tariff(head, valid_from=head.tariff_valid_from, valid_to=None)
                    new_tariffs.append(tariff)
                    new_prices.append((tariff, plan_id, None, head.rate, ZERO))
                    new_codes.append((fresh, tariff))
                    continue
                if not options.codes_only and fresh and self._base_price(latest.pk) is None:
                    new_prices.append((latest.pk, plan_id, None, head.rate, ZERO))
                if fresh:
                    new_codes.append((fresh, latest.pk))
                continue
            # --update on an existing tariff.
            price = self._base_price(latest.pk)
            if price is not None and price.price_per_minute == head.rate:
                self.result.skipped += known
                if fresh:
                    new_codes.append((fresh, latest.pk))
                continue
            self.result.updated += 1
            start = head.tariff_valid_from
            if latest.valid_from == start:
                if price is None:
                    new_prices.append((latest.pk, plan_id, None, head.rate, ZERO))
                else:
                    price.price_per_minute = head.rate
                    changed_prices.append(price)
                if fresh:
                    new_codes.append((fresh, latest.pk))
                continue
            # A new validity period from the file's date; the old one ends the day before.
            still_open = latest.valid_to is None or latest.valid_to >= start
            period = self._tariff(latest, valid_from=start,
                                  valid_to=latest.valid_to if still_open else None, copy=True)
            if still_open:
                closed[start - datetime.timedelta(days=1)].append(latest.pk)
            new_tariffs.append(period)
            copies.append((period, latest.pk, start, head.rate))
            if fresh:
                new_codes.append((fresh, period))
        self._save(new_tariffs, new_codes, new_prices, changed_prices, closed, copies)
        return self.result

    def _tariff(self, source, *, valid_from, valid_to, copy=False) -> _NewTariff:
        if copy:
            return _NewTariff(name=source.name, direction=source.direction,
                              call_type=source.call_type, valid_from=valid_from,
                              valid_to=valid_to, account_description=source.account_description,
                              first_interval=source.first_interval,
                              next_interval=source.next_interval,
                              free_seconds=source.free_seconds, min_seconds=source.min_seconds)
        return _NewTariff(name=source.tariff, direction=source.direction,
                          call_type=source.call_type, valid_from=valid_from, valid_to=valid_to,
                          account_description=self.options.accounts_description,
                          first_interval=self.interval, next_interval=self.interval)

    def _save(self, new_tariffs, new_codes, new_prices, changed_prices, closed, copies):
        for day, ids in closed.items():
            for i in range(0, len(ids), BATCH):
                Tariff.objects.filter(pk__in=ids[i:i + BATCH]).update(valid_to=day)
        _tariffs_insert(self.operator.pk, new_tariffs)
        self.result.tariffs_added = len(new_tariffs) - len(copies)
        for period, old_id, _start, rate in copies:
            base = False
            for p in self.prices_of.get(old_id, ()):
                mine = p.plan_id == self.plan.pk and p.band_id is None
                base = base or mine
                new_prices.append((period, p.plan_id, p.band_id,
                                   rate if mine else p.price_per_minute, p.connection_fee))
            if not base:
                new_prices.append((period, self.plan.pk, None, rate, ZERO))
        TariffPrice.objects.bulk_update(changed_prices, ["price_per_minute"], batch_size=BATCH)
        _prices_insert([(t if isinstance(t, int) else t.pk, *rest) for t, *rest in new_prices])
        codes = [(t if isinstance(t, int) else t.pk, records) for records, t in new_codes]
        self.result.codes_added = sum(len(records) for _t, records in codes)
        for period, old_id, start, _rate in copies:
            # The codes the old period still had on the new date go on with the new one.
            carried = [c for c in self.codes_of.get(old_id, ())
                       if c.valid_to is None or c.valid_to >= start]
            if carried:
                codes.append((period.pk, carried))
        _codes_insert(self.operator.pk, codes)


# Bulk inserts ---------------------------------------------------------------------------
# A deck's codes, tariffs and prices are most of an import's time: on PostgreSQL they go in
# with COPY (in the same transaction), several times faster than bulk_create's model
# instances and INSERTs; other databases (SQLite, the embedded default) use bulk_create.

ZERO = Decimal(0)

_TARIFF_COLUMNS = ("operator_id", "name", "direction", "call_type", "valid_from", "valid_to",
                   "account_description", "first_interval", "next_interval", "free_seconds",
                   "min_seconds")
_PRICE_COLUMNS = ("tariff_id", "plan_id", "band_id", "price_per_minute", "connection_fee")
_CODE_COLUMNS = ("operator_id", "code", "name", "tariff_id", "call_type", "category", "valid_from",
                 "valid_to")


def _tariffs_insert(operator_id: int, tariffs: list[_NewTariff]) -> None:
    """Insert new tariffs and set their `pk`."""
    if not tariffs:
        return
    if connection.vendor == "postgresql":
        text = _CopyText()
        _copy(Tariff, _TARIFF_COLUMNS, [
            f"{operator_id}\t{text[t.name]}\t{t.direction}\t{text[t.call_type]}\t"
            f"{text[t.valid_from]}\t{text[t.valid_to]}\t{text[t.account_description]}\t"
            f"{t.first_interval}\t{t.next_interval}\t{t.free_seconds}\t{t.min_seconds}\n"
            for t in tariffs])
    else:
        made = Tariff.objects.bulk_create(
            [Tariff(operator_id=operator_id, **{c: getattr(t, c) for c in _TARIFF_COLUMNS[1:]})
             for t in tariffs], batch_size=BATCH)
        for t, m in zip(tariffs, made, strict=True):
            t.pk = m.pk
    if any(t.pk is None for t in tariffs):
        # COPY, or a database that does not return ids from bulk inserts: a tariff's period
        # is unique by (operator, name, direction, valid_from).
        ids = {(name, direction, start): pk for pk, name, direction, start in
               Tariff.objects.filter(operator_id=operator_id).values_list(
                   "pk", "name", "direction", "valid_from")}
        for t in tariffs:
            t.pk = ids[(t.name, t.direction, t.valid_from)]


def _prices_insert(prices: list[tuple]) -> None:
    """Prices as (tariff id, plan id, band id, price per minute, connection fee)."""
    if not prices:
        return
    if connection.vendor == "postgresql":
        text = _CopyText()
        _copy(TariffPrice, _PRICE_COLUMNS,
              [f"{t}\t{plan}\t{text[band]}\t{price}\t{fee}\n" for t, plan, band, price, fee in prices])
        return
    TariffPrice.objects.bulk_create(
        [TariffPrice(**dict(zip(_PRICE_COLUMNS, p, strict=True))) for p in prices],
        batch_size=BATCH)


def _codes_insert(operator_id: int, codes: list[tuple[int, list]]) -> None:
    """Codes as (tariff id, [records with code, name, call_type, category, valid_from,
    valid_to])."""
    if connection.vendor == "postgresql":
        text = _CopyText()
        lines = []
        for tariff_id, records in codes:
            prefix = f"{operator_id}\t"
            middle = f"\t{tariff_id}\t"
            lines.extend(
                f"{prefix}{r.code}\t{text[r.name]}{middle}{text[r.call_type]}\t{text[r.category]}\t"
                f"{text[r.valid_from]}\t{text[r.valid_to]}\n" for r in records)
        if lines:
            _copy(PhoneCode, _CODE_COLUMNS, lines)
        return
    PhoneCode.objects.bulk_create(
        (PhoneCode(operator_id=operator_id, code=r.code, name=r.name, tariff_id=tariff_id,
                   call_type=r.call_type, category=r.category, valid_from=r.valid_from,
                   valid_to=r.valid_to)
         for tariff_id, records in codes for r in records), batch_size=BATCH)


def _copy(model, columns: tuple[str, ...], lines: list[str]) -> None:
    buffer = io.StringIO("".join(lines))
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer,
                                  size=1 << 20)


class _CopyText(dict):
    """Values as COPY text, each distinct value (a destination, a date) escaped once."""

    def __missing__(self, value):
        text = self[value] = _copy_text(value)
        return text


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if any(ch in text for ch in "\\\t\n\r"):
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text
