"""R5.2/R5.3: importing a rate deck into an operator's codes, tariffs and prices.

A wizard (or the command) goes step by step: `import_sheets` (open the file, list its
sheets), `import_preview` (the first rows as mapped, with their rejects), then
`tariffs_import` (everything, in one transaction) -> ImportResult.
"""
import contextlib
import datetime
import gc
import io
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from tariffs.importers.mapping import CodeRow, ImportOptions, Mapped, MappingError, rows_map, rows_map_chunks
from tariffs.importers.readers import ImportFileError, read_rows, rows_open, sheet_names
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.services import operator_rates_changed

BATCH = 2000
# Rows mapped between two chances for the writing thread to run (about a millisecond).
PIECE_ROWS = 500
# Rows written together: fewer, larger statements cost the database less.
CHUNK_ROWS = 20_000
FIRST_CHUNK_ROWS = 2_000


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
                   dry_run: bool = False, rows: list[list] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """R5.2/R5.3: import a deck in ONE transaction (any error leaves the database as it
    was); rejected rows are reported, not fatal. `rows` are the sheet's rows when the
    caller has read them already (import_rows); else `source` and `sheet` are read.
    `progress(rows_done, rows_in_all)` is called after each chunk is written.

    The file is read and mapped in a thread of its own, chunk by chunk, while this one
    writes the chunks before it: the database's work overlaps the reading and mapping
    (the speed goal of the import, docs/benchmarks.md)."""
    with _cyclic_gc_paused():
        return _import(source=source, sheet=sheet, mapping=mapping, options=options,
                       dry_run=dry_run, rows=rows, progress=progress)


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Python's cyclic garbage collector paused while a deck is imported: it would walk the
    sheet's hundreds of thousands of row lists again and again as the import allocates
    (a quarter of the mapping's time), and nothing of the import makes reference cycles.
    Reference counting frees memory as before. Process-wide, like the collector itself:
    it is switched back on at the end only if it was on at the start (so nested or
    concurrent imports leave it as they found it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(*, source, sheet, mapping, options, dry_run, rows, progress) -> ImportResult:
    chunks = _PlannedChunks(source=source, sheet=sheet, rows=rows, mapping=mapping,
                            options=options, copy_text=connection.vendor == "postgresql")
    try:
        with transaction.atomic():
            operator, created = _operator(options)
            plan = _plan(options)
            # An operator made by this import has nothing yet.
            existing = _Existing() if created else _existing_read(operator)
            planner = _Planner(operator_id=operator.pk, plan_id=plan.pk, options=options,
                               existing=existing)
            chunks.plan_with(planner)
            for chunk, done, total in chunks:
                _chunk_write(operator.pk, chunk)
                if progress is not None:
                    progress(done, total)
            _periods_write(planner)
            result = planner.result
            operator_rates_changed(operator_ids=[operator.pk])
            # An import that accepted nothing leaves no new operator or plan behind either.
            if dry_run or result.accepted == 0:
                transaction.set_rollback(True)
    finally:
        chunks.close()
    result.dry_run = dry_run
    result.rejected.sort(key=lambda r: r["row"])
    return result


@dataclass
class _ChunkWrites:
    """What one chunk of the file adds, in the order it is written: tariffs (whose ids the
    prices and codes then name), prices, codes."""

    tariffs: list  # _NewTariff
    prices: list  # (_NewTariff or tariff id, plan id, band id, price per minute, fee)
    # (_NewTariff or tariff id, the codes' records, or their COPY text on PostgreSQL with
    # NEW_TARIFF_ID where a new tariff's id goes)
    codes: list


class _PlannedChunks:
    """The deck read (unless its rows are given), mapped and planned in a thread of its
    own, handed over as (_ChunkWrites, rows done, rows in all) by iterating, while the
    caller's thread writes the chunks before. The thread touches no database: it plans on
    what the caller read for it (`plan_with`), so the caller's connection and transaction
    stay its own. A reader's or mapping's error comes out of the iteration as
    TariffImportError."""

    _END = object()

    def __init__(self, *, source, sheet, rows, mapping, options, copy_text: bool):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._planner_given = threading.Event()
        self._planner: _Planner | None = None
        self._copy_text = copy_text
        self._thread = threading.Thread(
            target=self._produce, args=(source, sheet, rows, mapping, options),
            name="tariff-import-planning", daemon=True)
        self._thread.start()

    def plan_with(self, planner: "_Planner") -> None:
        self._planner = planner
        self._planner_given.set()

    def _produce(self, source, sheet, rows, mapping, options) -> None:
        try:
            count, rows = (len(rows), rows) if rows is not None else rows_open(source, sheet)
            total = max(count - (1 if options.has_header else 0), 0)
            done = 0
            pieces = rows_map_chunks(rows, mapping=mapping, options=options, size=PIECE_ROWS)
            self._planner_given.wait()
            planner = self._planner
            if planner is None:  # the caller gave up first
                return
            # The first chunks are small, so that the database starts early and always has
            # the next one to write when it is done with the last.
            handed, size = 0, FIRST_CHUNK_ROWS
            for piece in pieces:
                if self._stop.is_set():
                    return
                planner.add(piece)
                done = min(done + PIECE_ROWS, total)
                if done - handed >= size:
                    self._queue.put((planner.chunk_take(copy_text=self._copy_text), done, total))
                    handed, size = done, min(2 * size, CHUNK_ROWS)
                # The writing thread waits for the GIL after each reply of the database; let
                # it have it now rather than at the interpreter's next forced switch (5 ms):
                # otherwise every statement of a chunk waits that long.
                time.sleep(0)
            self._queue.put((planner.chunk_take(copy_text=self._copy_text), done, total))
            self._queue.put(self._END)
        except (ImportFileError, MappingError) as exc:
            self._queue.put(TariffImportError(str(exc)))
        except BaseException as exc:  # handed to the caller, raised there
            self._queue.put(exc)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (the caller failed or is done) and wait for it."""
        self._stop.set()
        self._planner_given.set()
        self._thread.join()


def _operator(options: ImportOptions) -> tuple[Operator, bool]:
    """The operator of the options, and whether this import creates it."""
    operator = Operator.objects.select_for_update().filter(name=options.operator).first()
    if operator is not None:
        if operator.currency != options.currency:
            raise TariffImportError(
                f"operator {operator.name!r} keeps its rates in {operator.currency}, "
                f"not {options.currency}")
        return operator, False
    operator = Operator(name=options.operator, currency=options.currency)
    try:
        operator.full_clean()
    except ValidationError as exc:
        raise TariffImportError("the operator: " + "; ".join(exc.messages)) from None
    operator.save()
    return operator, True


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


@dataclass(eq=False)  # hashed by identity
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


@dataclass(eq=False)
class _Group:
    """The rows of one tariff (name, direction) of the file, decided at its first accepted
    row (`head`): where its new codes go, and what its known codes count as."""

    head: CodeRow
    # An existing tariff's id, a new tariff or period, or None: a new tariff, made at the
    # group's first new code (a group of known codes only makes none).
    target: int | _NewTariff | None
    skip_known: bool        # codes the operator already has are counted as skipped
    price_missing: bool     # the existing tariff gets its base price with the first new code
    pending: list = field(default_factory=list)  # this chunk's new codes


@dataclass
class _Existing:
    """What the operator has before the import, read once by the writing thread."""

    # (name, direction) -> the latest period of that tariff.
    latest: dict = field(default_factory=dict)
    # (code, direction) -> names of the tariffs it belongs to.
    codes: dict = field(default_factory=lambda: defaultdict(set))
    codes_of: dict = field(default_factory=lambda: defaultdict(list))  # tariff id -> code rows
    prices_of: dict = field(default_factory=lambda: defaultdict(list))  # tariff id -> prices


def _existing_read(operator: Operator) -> _Existing:
    existing = _Existing()
    for tariff in Tariff.objects.filter(operator=operator).order_by("valid_from"):
        existing.latest[(tariff.name, tariff.direction)] = tariff
    # Through the tariffs: codes have no index by operator (PhoneCode says why).
    for row in PhoneCode.objects.filter(tariff__operator=operator).values_list(
            "code", "tariff__direction", "tariff__name", "tariff_id", "name", "call_type",
            "category", "valid_from", "valid_to", named=True):
        existing.codes[(row.code, row.tariff__direction)].add(row.tariff__name)
        existing.codes_of[row.tariff_id].append(row)
    for price in TariffPrice.objects.filter(tariff__operator=operator):
        existing.prices_of[price.tariff_id].append(price)
    return existing


class _Planner:
    """One import's decisions, in memory: each mapped row is rejected, skipped or added to
    its tariff's group, against what the operator had (`existing`) and the rows above it;
    `chunk_take` hands over what the rows since the last call add. No database: it runs in
    the planning thread, the writes in the caller's (_chunk_write, _periods_write)."""

    def __init__(self, *, operator_id: int, plan_id: int, options: ImportOptions,
                 existing: _Existing):
        self.operator_id, self.plan_id, self.options = operator_id, plan_id, options
        self.result = ImportResult()
        self.interval = 1 if options.per_second else 60
        self.latest = existing.latest
        self.codes = existing.codes
        self.codes_of = existing.codes_of
        self.prices_of = existing.prices_of
        self.update = options.update and not options.codes_only
        # Without codes_only, and without update on an operator with tariffs or codes, only
        # the rows of one tariff can disagree with each other.
        self.plain = not options.codes_only and not (self.update and (self.latest or self.codes))
        self.groups: dict[tuple[str, int], _Group] = {}
        self.closed: dict[datetime.date, list[int]] = defaultdict(list)
        self.changed_prices: list[TariffPrice] = []
        # Made since the last chunk_take:
        self.new_tariffs: list[_NewTariff] = []
        self.new_prices: list[tuple] = []  # (_NewTariff or tariff id, plan, band, price, fee)
        self.copies: list[tuple[_NewTariff, int, datetime.date, object]] = []
        self.touched: list[_Group] = []
        self.text = _CopyText()  # names and dates escaped for COPY, each once

    def _base_price(self, tariff_id: int) -> TariffPrice | None:
        return next((p for p in self.prices_of.get(tariff_id, ())
                     if p.plan_id == self.plan_id and p.band_id is None), None)

    def add(self, mapped: Mapped) -> None:
        """The next rows of the file, mapped, in the file's order."""
        self.result.rejected.extend(mapped.rejected)
        groups, known_codes, touched = self.groups, self.codes, self.touched
        for r in mapped.rows:
            key = (r.tariff, r.direction)
            group = groups.get(key)
            reason = self._refusal(r, key, group)
            if reason is not None:
                self.result.rejected.append({"row": r.row, "reason": reason})
                continue
            if group is None:
                group = groups[key] = self._group(key, r)
            if known_codes and (r.code, r.direction) in known_codes:
                if group.skip_known:
                    self.result.skipped += 1
                continue
            if not group.pending:
                touched.append(group)
                if group.target is None:
                    group.target = self._tariff(group.head, valid_from=group.head.tariff_valid_from,
                                                valid_to=None)
                    self.new_tariffs.append(group.target)
                    self.new_prices.append((group.target, self.plan_id, None, group.head.rate, ZERO))
                    self.result.tariffs_added += 1
                elif group.price_missing:
                    self.new_prices.append((group.target, self.plan_id, None, group.head.rate, ZERO))
                    group.price_missing = False
            group.pending.append(r)

    def _refusal(self, r: CodeRow, key: tuple[str, int], group: _Group | None) -> str | None:
        """Why record `r` cannot be written as the options say (None: it can)."""
        if group is not None:
            head = group.head
            if head.rate != r.rate:
                return f"tariff {r.tariff!r} has rate {head.rate} in row {head.row}"
            if head.tariff_valid_from != r.tariff_valid_from:
                return f"tariff {r.tariff!r} is valid from {head.tariff_valid_from} in row {head.row}"
        if self.plain:
            return None
        latest = self.latest.get(key)
        if self.options.codes_only and latest is None:
            return f"tariff {r.tariff!r} does not exist for this operator"
        if self.update and latest is not None and latest.valid_from > r.tariff_valid_from:
            return (f"tariff {r.tariff!r} already has a period from {latest.valid_from}, "
                    f"after {r.tariff_valid_from}")
        owners = self.codes.get((r.code, r.direction))
        if self.update and owners and r.tariff not in owners:
            return (f"code {r.code} belongs to tariff {sorted(owners)[0]!r}; an import does not "
                    f"move codes between tariffs")
        return None

    def _group(self, key: tuple[str, int], head: CodeRow) -> _Group:
        """What the rows of a tariff do, decided at its first accepted row."""
        latest = self.latest.get(key)
        options = self.options
        if not self.update or latest is None:
            if latest is None:
                return _Group(head, target=None, skip_known=True, price_missing=False)
            return _Group(head, target=latest.pk, skip_known=True,
                          price_missing=(not options.codes_only
                                         and self._base_price(latest.pk) is None))
        # --update on an existing tariff.
        price = self._base_price(latest.pk)
        if price is not None and price.price_per_minute == head.rate:
            return _Group(head, target=latest.pk, skip_known=True, price_missing=False)
        self.result.updated += 1
        start = head.tariff_valid_from
        if latest.valid_from == start:
            if price is None:
                self.new_prices.append((latest.pk, self.plan_id, None, head.rate, ZERO))
            else:
                price.price_per_minute = head.rate
                self.changed_prices.append(price)
            return _Group(head, target=latest.pk, skip_known=False, price_missing=False)
        # A new validity period from the file's date; the old one ends the day before.
        still_open = latest.valid_to is None or latest.valid_to >= start
        period = self._tariff(latest, valid_from=start,
                              valid_to=latest.valid_to if still_open else None, copy=True)
        if still_open:
            self.closed[start - datetime.timedelta(days=1)].append(latest.pk)
        self.new_tariffs.append(period)
        self.copies.append((period, latest.pk, start, head.rate))
        return _Group(head, target=period, skip_known=False, price_missing=False)

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

    def chunk_take(self, *, copy_text: bool) -> _ChunkWrites:
        """What the rows since the last call add; codes as COPY text if `copy_text`."""
        prices = self.new_prices
        for period, old_id, _start, rate in self.copies:
            base = False
            for p in self.prices_of.get(old_id, ()):
                mine = p.plan_id == self.plan_id and p.band_id is None
                base = base or mine
                prices.append((period, p.plan_id, p.band_id,
                               rate if mine else p.price_per_minute, p.connection_fee))
            if not base:
                prices.append((period, self.plan_id, None, rate, ZERO))
        codes = []
        for group in self.touched:
            codes.append((group.target, group.pending))
            self.result.codes_added += len(group.pending)
            group.pending = []
        for period, old_id, start, _rate in self.copies:
            # The codes the old period still had on the new date go on with the new one.
            carried = [c for c in self.codes_of.get(old_id, ())
                       if c.valid_to is None or c.valid_to >= start]
            if carried:
                codes.append((period, carried))
        if copy_text:
            codes = [(target, _code_text(self.operator_id, target, records, self.text))
                     for target, records in codes]
        chunk = _ChunkWrites(tariffs=self.new_tariffs, prices=prices, codes=codes)
        self.new_tariffs, self.new_prices, self.copies, self.touched = [], [], [], []
        return chunk


def _chunk_write(operator_id: int, chunk: _ChunkWrites) -> None:
    """Write one chunk: its tariffs first (their ids are set), then prices and codes."""
    _tariffs_insert(operator_id, chunk.tariffs)
    _prices_insert([(_pk(t), *rest) for t, *rest in chunk.prices])
    if connection.vendor == "postgresql":
        if chunk.codes:
            _copy(PhoneCode, _CODE_COLUMNS, [
                text if type(target) is int else text.replace(NEW_TARIFF_ID, str(target.pk))
                for target, text in chunk.codes])
        return
    PhoneCode.objects.bulk_create(
        (PhoneCode(operator_id=operator_id, code=r.code, name=r.name, tariff_id=_pk(target),
                   call_type=r.call_type, category=r.category, valid_from=r.valid_from,
                   valid_to=r.valid_to)
         for target, records in chunk.codes for r in records), batch_size=BATCH)


def _pk(target) -> int:
    return target if type(target) is int else target.pk


def _periods_write(planner: _Planner) -> None:
    """The writes that wait for the whole file: old periods closed, prices changed."""
    for day, ids in planner.closed.items():
        for i in range(0, len(ids), BATCH):
            Tariff.objects.filter(pk__in=ids[i:i + BATCH]).update(valid_to=day)
    TariffPrice.objects.bulk_update(planner.changed_prices, ["price_per_minute"],
                                    batch_size=BATCH)


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
        # The ids are taken from the table's own sequence first, so that the codes written
        # next can name them without reading the tariffs back.
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                           "FROM generate_series(1, %s)", [Tariff._meta.db_table, len(tariffs)])
            for t, (pk,) in zip(tariffs, cursor.fetchall(), strict=True):
                t.pk = pk
        text = _CopyText()
        _copy(Tariff, ("id", *_TARIFF_COLUMNS), [
            f"{t.pk}\t{operator_id}\t{text[t.name]}\t{t.direction}\t{text[t.call_type]}\t"
            f"{text[t.valid_from]}\t{text[t.valid_to]}\t{text[t.account_description]}\t"
            f"{t.first_interval}\t{t.next_interval}\t{t.free_seconds}\t{t.min_seconds}\n"
            for t in tariffs])
        return
    made = Tariff.objects.bulk_create(
        [Tariff(operator_id=operator_id, **{c: getattr(t, c) for c in _TARIFF_COLUMNS[1:]})
         for t in tariffs], batch_size=BATCH)
    for t, m in zip(tariffs, made, strict=True):
        t.pk = m.pk
    if any(t.pk is None for t in tariffs):
        # A database that does not return ids from bulk inserts: a tariff's period is
        # unique by (operator, name, direction, valid_from).
        ids = {(name, direction, start): pk for pk, name, direction, start in
               Tariff.objects.filter(operator_id=operator_id,
                                     name__in={t.name for t in tariffs}).values_list(
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


# Where a new tariff's id goes in the COPY text of its codes, made before the tariff has an
# id: a character that no COPY text can hold (the mapping refuses it in names), replaced
# by the id when the chunk is written.
NEW_TARIFF_ID = "\x00"


def _code_text(operator_id: int, target, records: list, text: "_CopyText") -> str:
    """The codes of one tariff as COPY text (_CODE_COLUMNS)."""
    tariff_id = target if type(target) is int else NEW_TARIFF_ID
    head = f"{operator_id}\t"
    middle = f"\t{tariff_id}\t"
    return "".join([f"{head}{r.code}\t{text[r.name]}{middle}{text[r.call_type]}\t"
                    f"{text[r.category]}\t{text[r.valid_from]}\t{text[r.valid_to]}\n"
                    for r in records])


def _copy(model, columns: tuple[str, ...], parts: Iterable[str]) -> None:
    """COPY the text `parts` (whole lines) into the model's table. The text goes to the
    driver in one piece: the driver takes it in a single read (the planning thread has the
    GIL most of the time, and each read would wait for it while the database waits for
    the data)."""
    text = "".join(parts)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN",
                                  io.StringIO(text), size=max(len(text), 1))


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
