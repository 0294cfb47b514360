"""R5.2/R5.3: importing a rate deck into an operator's codes, tariffs and prices.

A wizard (or the command) goes step by step: `import_sheets` (open the file, list its
sheets), `import_preview` (the first rows as mapped, with their rejects), then
`tariffs_import` (everything, in one transaction) -> ImportResult.
"""
import datetime
import io
from collections import defaultdict
from dataclasses import dataclass, field

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
class _Period:
    id: int
    valid_from: datetime.date
    valid_to: datetime.date | None


class _Writer:
    """One import's writes: the operator's existing codes, tariffs and prices are read
    once, the decisions are made in memory, then everything is written in bulk."""

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
        self.codes_of: dict[int, list[tuple]] = defaultdict(list)
        for row in PhoneCode.objects.filter(operator=operator).values_list(
                "code", "tariff__direction", "tariff__name", "tariff_id", "name", "call_type",
                "category", "valid_from", "valid_to"):
            self.codes[(row[0], row[1])].add(row[2])
            self.codes_of[row[3]].append(row)
        self.prices_of: dict[int, list[TariffPrice]] = defaultdict(list)
        for price in TariffPrice.objects.filter(tariff__operator=operator):
            self.prices_of[price.tariff_id].append(price)

    def _base_price(self, tariff_id: int) -> TariffPrice | None:
        return next((p for p in self.prices_of.get(tariff_id, ())
                     if p.plan_id == self.plan.pk and p.band_id is None), None)

    def _reject_rows(self, records: list[CodeRow]) -> list[CodeRow]:
        """Rows that cannot be written as the options say; the survivors."""
        bad: dict[int, str] = {}
        first: dict[tuple[str, int], CodeRow] = {}
        for r in records:
            if r.row in bad:
                continue
            key = (r.tariff, r.direction)
            head = first.setdefault(key, r)
            latest = self.latest.get(key)
            owners = self.codes.get((r.code, r.direction))
            if head.rate != r.rate:
                bad[r.row] = f"tariff {r.tariff!r} has rate {head.rate} in row {head.row}"
            elif head.tariff_valid_from != r.tariff_valid_from:
                bad[r.row] = (f"tariff {r.tariff!r} is valid from {head.tariff_valid_from} "
                              f"in row {head.row}")
            elif self.options.codes_only and latest is None:
                bad[r.row] = f"tariff {r.tariff!r} does not exist for this operator"
            elif (self.options.update and not self.options.codes_only and latest is not None
                  and latest.valid_from > r.tariff_valid_from):
                bad[r.row] = (f"tariff {r.tariff!r} already has a period from "
                              f"{latest.valid_from}, after {r.tariff_valid_from}")
            elif (self.options.update and not self.options.codes_only and owners
                  and r.tariff not in owners):
                bad[r.row] = (f"code {r.code} belongs to tariff {sorted(owners)[0]!r}; an import "
                              f"does not move codes between tariffs")
        self.rejected.extend({"row": row, "reason": reason} for row, reason in bad.items())
        return [r for r in records if r.row not in bad]

    def write(self, records: list[CodeRow]) -> ImportResult:
        records = self._reject_rows(records)
        groups: dict[tuple[str, int], list[CodeRow]] = defaultdict(list)
        for r in records:
            groups[(r.tariff, r.direction)].append(r)
        new_tariffs: list[Tariff] = []        # with their file records
        new_codes: list[tuple[CodeRow, object]] = []  # (record, Tariff or tariff id)
        new_prices: list[TariffPrice] = []
        changed_prices: list[TariffPrice] = []
        closed: dict[datetime.date, list[int]] = defaultdict(list)
        # (new period, old period's id, its start, the file's rate)
        copies: list[tuple[Tariff, int, datetime.date, object]] = []
        options = self.options
        for key, group in groups.items():
            head = group[0]
            fresh = [r for r in group if (r.code, r.direction) not in self.codes]
            known = len(group) - len(fresh)
            latest = self.latest.get(key)
            if options.codes_only or not options.update or latest is None:
                self.result.skipped += known
                if latest is None:
                    if not fresh:
                        continue
                    tariff = self._tariff(head, valid_from=head.tariff_valid_from, valid_to=None)
                    new_tariffs.append(tariff)
                    new_prices.append(TariffPrice(tariff=tariff, plan=self.plan,
                                                  price_per_minute=head.rate))
                    new_codes.extend((r, tariff) for r in fresh)
                    continue
                if not options.codes_only and fresh and self._base_price(latest.pk) is None:
                    new_prices.append(TariffPrice(tariff_id=latest.pk, plan=self.plan,
                                                  price_per_minute=head.rate))
                new_codes.extend((r, latest.pk) for r in fresh)
                continue
            # --update on an existing tariff.
            price = self._base_price(latest.pk)
            if price is not None and price.price_per_minute == head.rate:
                self.result.skipped += known
                new_codes.extend((r, latest.pk) for r in fresh)
                continue
            self.result.updated += 1
            start = head.tariff_valid_from
            if latest.valid_from == start:
                if price is None:
                    new_prices.append(TariffPrice(tariff_id=latest.pk, plan=self.plan,
                                                  price_per_minute=head.rate))
                else:
                    price.price_per_minute = head.rate
                    changed_prices.append(price)
                new_codes.extend((r, latest.pk) for r in fresh)
                continue
            # A new validity period from the file's date; the old one ends the day before.
            still_open = latest.valid_to is None or latest.valid_to >= start
            period = self._tariff(latest, valid_from=start,
                                  valid_to=latest.valid_to if still_open else None, copy=True)
            if still_open:
                closed[start - datetime.timedelta(days=1)].append(latest.pk)
            new_tariffs.append(period)
            copies.append((period, latest.pk, start, head.rate))
            new_codes.extend((r, period) for r in fresh)
        self._save(new_tariffs, new_codes, new_prices, changed_prices, closed, copies)
        return self.result

    def _tariff(self, source, *, valid_from, valid_to, copy=False) -> Tariff:
        if copy:
            return Tariff(operator=self.operator, name=source.name, direction=source.direction,
                          call_type=source.call_type, valid_from=valid_from, valid_to=valid_to,
                          account_description=source.account_description,
                          first_interval=source.first_interval, next_interval=source.next_interval,
                          free_seconds=source.free_seconds, min_seconds=source.min_seconds)
        return Tariff(operator=self.operator, name=source.tariff, direction=source.direction,
                      call_type=source.call_type, valid_from=valid_from, valid_to=valid_to,
                      account_description=self.options.accounts_description,
                      first_interval=self.interval, next_interval=self.interval)

    def _save(self, new_tariffs, new_codes, new_prices, changed_prices, closed, copies):
        for day, ids in closed.items():
            for i in range(0, len(ids), BATCH):
                Tariff.objects.filter(pk__in=ids[i:i + BATCH]).update(valid_to=day)
        Tariff.objects.bulk_create(new_tariffs, batch_size=BATCH)
        if any(t.pk is None for t in new_tariffs):
            # A database that does not return ids from bulk inserts: match natural keys.
            ids = {(name, direction, start): pk for pk, name, direction, start in
                   Tariff.objects.filter(operator=self.operator).values_list(
                       "pk", "name", "direction", "valid_from")}
            for t in new_tariffs:
                t.pk = ids[(t.name, t.direction, t.valid_from)]
        self.result.tariffs_added = len(new_tariffs) - len(copies)
        for period, old_id, _start, rate in copies:
            base = False
            for p in self.prices_of.get(old_id, ()):
                mine = p.plan_id == self.plan.pk and p.band_id is None
                base = base or mine
                new_prices.append(TariffPrice(
                    tariff_id=period.pk, plan_id=p.plan_id, band_id=p.band_id,
                    price_per_minute=rate if mine else p.price_per_minute,
                    connection_fee=p.connection_fee))
            if not base:
                new_prices.append(TariffPrice(tariff_id=period.pk, plan=self.plan,
                                              price_per_minute=rate))
        for p in new_prices:
            if p.tariff_id is None:
                p.tariff_id = p.tariff.pk
        TariffPrice.objects.bulk_update(changed_prices, ["price_per_minute"], batch_size=BATCH)
        TariffPrice.objects.bulk_create(new_prices, batch_size=BATCH)
        op = self.operator.pk
        codes = [(op, r.code, r.name, t if isinstance(t, int) else t.pk, r.call_type, r.category,
                  r.valid_from, r.valid_to) for r, t in new_codes]
        self.result.codes_added = len(codes)
        for period, old_id, start, _rate in copies:
            # The codes the old period still had on the new date go on with the new one.
            codes.extend((op, c[0], c[4], period.pk, c[5], c[6], c[7], c[8])
                         for c in self.codes_of.get(old_id, ()) if c[8] is None or c[8] >= start)
        _codes_insert(codes)


_CODE_COLUMNS = ("operator_id", "code", "name", "tariff_id", "call_type", "category", "valid_from",
                 "valid_to")


def _codes_insert(codes: list[tuple]) -> None:
    """Codes are most of a deck's rows: on PostgreSQL they go in with COPY (in the same
    transaction), several times faster than bulk_create's model instances and INSERTs."""
    if connection.vendor != "postgresql":
        PhoneCode.objects.bulk_create((PhoneCode(**dict(zip(_CODE_COLUMNS, c, strict=True)))
                                       for c in codes), batch_size=BATCH)
        return
    buffer = io.StringIO()
    for c in codes:
        buffer.write("\t".join(_copy_text(v) for v in c))
        buffer.write("\n")
    buffer.seek(0)
    table = connection.ops.quote_name(PhoneCode._meta.db_table)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} ({', '.join(_CODE_COLUMNS)}) FROM STDIN", buffer)


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if any(ch in text for ch in "\\\t\n\r"):
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text
