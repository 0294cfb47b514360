"""R5.2/R5.3: importing a rate deck into an operator's codes, tariffs and prices.

A wizard (or the command) goes step by step: `import_sheets` (open the file, list its
sheets), `import_preview` (the first rows as mapped, with their rejects), then
`tariffs_import` (everything, in one transaction) -> ImportResult.

An import runs in two threads: one reads the file (readers), maps its rows (mapping) and
plans what they add (planning), chunk by chunk; the caller's thread writes each chunk in
the caller's transaction (here), while the next is read and planned.
"""
import contextlib
import gc
import io
import queue
import threading
import time
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from tariffs.importers.mapping import ImportOptions, Mapped, MappingError, rows_map, rows_map_chunks
from tariffs.importers.planning import (
    NEW_TARIFF_ID,
    ChunkWrites,
    CopyText,
    Existing,
    ImportResult,
    NewTariff,
    Planner,
)
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
            existing = Existing() if created else _existing_read(operator)
            planner = Planner(operator_id=operator.pk, plan_id=plan.pk, options=options,
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


class _PlannedChunks:
    """The deck read (unless its rows are given), mapped and planned in a thread of its
    own, handed over as (ChunkWrites, rows done, rows in all) by iterating, while the
    caller's thread writes the chunks before. The thread touches no database: it plans on
    what the caller read for it (`plan_with`), so the caller's connection and transaction
    stay its own. A reader's or mapping's error comes out of the iteration as
    TariffImportError."""

    _END = object()

    def __init__(self, *, source, sheet, rows, mapping, options, copy_text: bool):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._planner_given = threading.Event()
        self._planner: Planner | None = None
        self.copy_text = copy_text
        self._thread = threading.Thread(
            target=self._produce, args=(source, sheet, rows, mapping, options),
            name="tariff-import-planning", daemon=True)
        self._thread.start()

    def plan_with(self, planner: "Planner") -> None:
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
                    self._queue.put((planner.chunk_take(copy_text=self.copy_text), done, total))
                    handed, size = done, min(2 * size, CHUNK_ROWS)
                # The writing thread waits for the GIL after each reply of the database; let
                # it have it now rather than at the interpreter's next forced switch (5 ms):
                # otherwise every statement of a chunk waits that long.
                time.sleep(0)
            if handed != done or not handed:  # the rows since the last chunk, if any
                self._queue.put((planner.chunk_take(copy_text=self.copy_text), done, total))
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


def _existing_read(operator: Operator) -> Existing:
    existing = Existing()
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


def _chunk_write(operator_id: int, chunk: ChunkWrites) -> None:
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


def _periods_write(planner: Planner) -> None:
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

_TARIFF_COLUMNS = ("operator_id", "name", "direction", "call_type", "valid_from", "valid_to",
                   "account_description", "first_interval", "next_interval", "free_seconds",
                   "min_seconds")
_PRICE_COLUMNS = ("tariff_id", "plan_id", "band_id", "price_per_minute", "connection_fee")
_CODE_COLUMNS = ("operator_id", "code", "name", "tariff_id", "call_type", "category", "valid_from",
                 "valid_to")


def _tariffs_insert(operator_id: int, tariffs: list[NewTariff]) -> None:
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
        text = CopyText()
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
        text = CopyText()
        _copy(TariffPrice, _PRICE_COLUMNS,
              [f"{t}\t{plan}\t{text[band]}\t{price}\t{fee}\n" for t, plan, band, price, fee in prices])
        return
    TariffPrice.objects.bulk_create(
        [TariffPrice(**dict(zip(_PRICE_COLUMNS, p, strict=True))) for p in prices],
        batch_size=BATCH)


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
