"""R5.2/R5.3: an import's decisions, made in memory as the mapped rows come: which rows are
rejected, which codes are skipped, which tariffs, periods, prices and codes are added, and
the COPY text of the codes. No database here (STYLE rule 1): what the operator already has
is given (`Existing`, read by the service), and what a chunk of rows adds is handed back
(`ChunkWrites`) for the service to write, in the same order.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from tariffs.importers.mapping import CodeRow, ImportOptions, Mapped

if TYPE_CHECKING:  # model instances of Existing, read by the service
    from tariffs.models import TariffPrice

ZERO = Decimal(0)


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


@dataclass(eq=False)  # hashed by identity
class NewTariff:
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
class Group:
    """The rows of one tariff (name, direction) of the file, decided at its first accepted
    row (`head`): where its new codes go, and what its known codes count as."""

    head: CodeRow
    # An existing tariff's id, a new tariff or period, or None: a new tariff, made at the
    # group's first new code (a group of known codes only makes none).
    target: int | NewTariff | None
    skip_known: bool        # codes the operator already has are counted as skipped
    price_missing: bool     # the existing tariff gets its base price with the first new code
    pending: list = field(default_factory=list)  # this chunk's new codes


@dataclass
class Existing:
    """What the operator has before the import, read once by the writing thread."""

    # (name, direction) -> the latest period of that tariff.
    latest: dict = field(default_factory=dict)
    # (code, direction) -> names of the tariffs it belongs to.
    codes: dict = field(default_factory=lambda: defaultdict(set))
    codes_of: dict = field(default_factory=lambda: defaultdict(list))  # tariff id -> code rows
    prices_of: dict = field(default_factory=lambda: defaultdict(list))  # tariff id -> prices


@dataclass
class ChunkWrites:
    """What one chunk of the file adds, in the order it is written: tariffs (whose ids the
    prices and codes then name), prices, codes."""

    tariffs: list  # NewTariff
    prices: list  # (NewTariff or tariff id, plan id, band id, price per minute, fee)
    # (NewTariff or tariff id, the codes' records, or their COPY text on PostgreSQL with
    # NEW_TARIFF_ID where a new tariff's id goes)
    codes: list


class Planner:
    """One import's decisions, in memory: each mapped row is rejected, skipped or added to
    its tariff's group, against what the operator had (`existing`) and the rows above it;
    `chunk_take` hands over what the rows since the last call add. It runs in the service's
    planning thread; the service's writing thread writes what it hands over."""

    def __init__(self, *, operator_id: int, plan_id: int, options: ImportOptions,
                 existing: Existing):
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
        self.groups: dict[tuple[str, int], Group] = {}
        self.closed: dict[datetime.date, list[int]] = defaultdict(list)
        self.changed_prices: list[TariffPrice] = []
        # Made since the last chunk_take:
        self.new_tariffs: list[NewTariff] = []
        self.new_prices: list[tuple] = []  # (NewTariff or tariff id, plan, band, price, fee)
        self.copies: list[tuple[NewTariff, int, datetime.date, object]] = []
        self.touched: list[Group] = []
        self.text = CopyText()  # names and dates escaped for COPY, each once

    def _base_price(self, tariff_id: int) -> "TariffPrice | None":
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

    def _refusal(self, r: CodeRow, key: tuple[str, int], group: Group | None) -> str | None:
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

    def _group(self, key: tuple[str, int], head: CodeRow) -> Group:
        """What the rows of a tariff do, decided at its first accepted row."""
        latest = self.latest.get(key)
        options = self.options
        if not self.update or latest is None:
            if latest is None:
                return Group(head, target=None, skip_known=True, price_missing=False)
            return Group(head, target=latest.pk, skip_known=True,
                         price_missing=(not options.codes_only
                                        and self._base_price(latest.pk) is None))
        # --update on an existing tariff.
        price = self._base_price(latest.pk)
        if price is not None and price.price_per_minute == head.rate:
            return Group(head, target=latest.pk, skip_known=True, price_missing=False)
        self.result.updated += 1
        start = head.tariff_valid_from
        if latest.valid_from == start:
            if price is None:
                self.new_prices.append((latest.pk, self.plan_id, None, head.rate, ZERO))
            else:
                price.price_per_minute = head.rate
                self.changed_prices.append(price)
            return Group(head, target=latest.pk, skip_known=False, price_missing=False)
        # A new validity period from the file's date; the old one ends the day before.
        still_open = latest.valid_to is None or latest.valid_to >= start
        period = self._tariff(latest, valid_from=start,
                              valid_to=latest.valid_to if still_open else None, copy=True)
        if still_open:
            self.closed[start - datetime.timedelta(days=1)].append(latest.pk)
        self.new_tariffs.append(period)
        self.copies.append((period, latest.pk, start, head.rate))
        return Group(head, target=period, skip_known=False, price_missing=False)

    def _tariff(self, source, *, valid_from, valid_to, copy=False) -> NewTariff:
        if copy:
            return NewTariff(name=source.name, direction=source.direction,
                             call_type=source.call_type, valid_from=valid_from,
                             valid_to=valid_to, account_description=source.account_description,
                             first_interval=source.first_interval,
                             next_interval=source.next_interval,
                             free_seconds=source.free_seconds, min_seconds=source.min_seconds)
        return NewTariff(name=source.tariff, direction=source.direction,
                         call_type=source.call_type, valid_from=valid_from, valid_to=valid_to,
                         account_description=self.options.accounts_description,
                         first_interval=self.interval, next_interval=self.interval)

    def chunk_take(self, *, copy_text: bool) -> ChunkWrites:
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
            codes = [(target, code_text(self.operator_id, target, records, self.text))
                     for target, records in codes]
        chunk = ChunkWrites(tariffs=self.new_tariffs, prices=prices, codes=codes)
        self.new_tariffs, self.new_prices, self.copies, self.touched = [], [], [], []
        return chunk


# Where a new tariff's id goes in the COPY text of its codes, made before the tariff has an
# id: a character that no COPY text can hold (the mapping refuses it in names), replaced
# by the id when the chunk is written.
NEW_TARIFF_ID = "\x00"


def code_text(operator_id: int, target, records: list, text: "CopyText") -> str:
    """The codes of one tariff as COPY text (_CODE_COLUMNS)."""
    tariff_id = target if type(target) is int else NEW_TARIFF_ID
    head = f"{operator_id}\t"
    middle = f"\t{tariff_id}\t"
    return "".join([f"{head}{r.code}\t{text[r.name]}{middle}{text[r.call_type]}\t"
                    f"{text[r.category]}\t{text[r.valid_from]}\t{text[r.valid_to]}\n"
                    for r in records])


class CopyText(dict):
    """Values as COPY text, each distinct value (a destination, a date) escaped once."""

    def __missing__(self, value):
        text = self[value] = copy_text(value)
        return text


def copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if any(ch in text for ch in "\\\t\n\r"):
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text
