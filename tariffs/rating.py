"""R4: the rating core. Pure: a number, a start time and a duration against a compiled
tariff index give a cost and the reason for it. No database access (STYLE rule 1).

Money: every cost is computed exactly in Decimal and rounded once, at the end, to the
currency's minor unit with ROUND_HALF_UP (`quantize_money`).
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units that are not 2.
_MINOR_UNITS = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}
_QUANTUM = {places: Decimal(1).scaleb(-places) for places in (0, 2, 3)}
_SIXTY = Decimal(60)
_ZERO = Decimal(0)


_QUANTUM_OF: dict[str, Decimal] = {}


def _quantum(currency: str) -> Decimal:
    quantum = _QUANTUM_OF.get(currency)
    if quantum is None:
        quantum = _QUANTUM_OF[currency] = _QUANTUM[_MINOR_UNITS.get(currency.upper(), 2)]
    return quantum


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """The one rounding rule for money: to the currency's minor unit, half up."""
    return amount.quantize(_quantum(currency), ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Band:
    """A time band of an operator: weekdays (ISO, 1 = Monday) and hours, or holidays.

    Hours are [start, end); an end at or before the start runs past midnight, and the part
    after midnight belongs to the weekday it started on (a Friday night band covers
    Saturday 03:00). 00:00-00:00 is the whole day.
    """

    id: int
    name: str
    weekdays: frozenset[int]
    start: time
    end: time
    holidays: bool = False

    def contains(self, at: datetime) -> bool:
        clock = at.time()
        weekday = at.isoweekday()
        if self.start < self.end:
            return weekday in self.weekdays and self.start <= clock < self.end
        if clock >= self.start:
            return weekday in self.weekdays
        if clock < self.end:
            return (weekday - 2) % 7 + 1 in self.weekdays  # the day before
        return False


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One priced code: a code of a tariff with the tariff's prices in one plan."""

    code: str
    code_name: str
    tariff_id: int
    tariff_name: str
    direction: int
    call_type: int | None
    valid_from: date
    valid_to: date | None
    price_per_minute: Decimal | None  # the base price; None when only band prices exist
    connection_fee: Decimal
    first_interval: int
    next_interval: int
    currency: str
    free_seconds: int = 0
    min_seconds: int = 0
    # (band id, price per minute, connection fee) for bands with their own price.
    band_prices: tuple[tuple[int, Decimal, Decimal], ...] = ()

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def price_in(self, band: Band | None) -> tuple[Decimal | None, Decimal, Band | None]:
        """(price per minute, connection fee, band used) for a call in `band`."""
        if band is not None:
            for band_id, price, fee in self.band_prices:
                if band_id == band.id:
                    return price, fee, band
        return self.price_per_minute, self.connection_fee, None


class TariffIndex:
    """Codes of one operator priced in one plan, compiled for longest-prefix match.

    Immutable once built; shared by every call rated in a process until the operator's
    rates change.
    """

    __slots__ = ("_by_code", "_lengths", "_week", "bands", "operator", "plan")

    def __init__(self, entries: Iterable[RateEntry], *, operator: str = "", plan: str = "",
                 bands: Iterable[Band] = ()):
        by_code: dict[str, list[RateEntry]] = {}
        for entry in entries:
            by_code.setdefault(entry.code, []).append(entry)
        # Newest first, so that the first valid entry is the one in force.
        self._by_code = {
            code: tuple(sorted(group, key=lambda e: e.valid_from, reverse=True))
            for code, group in by_code.items()
        }
        self._lengths = tuple(sorted({len(code) for code in self._by_code}, reverse=True))
        self.bands = tuple(bands)
        # The band of every minute of the week (Monday 00:00 first), when every band starts
        # and ends on a whole minute; else None and band_at() scans the bands.
        self._week = None
        ordinary = [b for b in self.bands if not b.holidays]
        if ordinary and all(t.second == 0 and t.microsecond == 0
                            for b in ordinary for t in (b.start, b.end)):
            monday = datetime(2024, 1, 1)  # a Monday
            self._week = tuple(
                next((b for b in ordinary if b.contains(monday + timedelta(minutes=m))), None)
                for m in range(7 * 1440))
        self.operator = operator
        self.plan = plan

    def __len__(self):
        return sum(len(group) for group in self._by_code.values())

    def match(self, number: str, day: date, direction: int) -> RateEntry | None:
        """R4.1: the longest code that prefixes `number` and is valid on `day`."""
        by_code = self._by_code
        size = len(number)
        for length in self._lengths:
            if length > size:
                continue
            group = by_code.get(number[:length])
            if group is None:
                continue
            for entry in group:
                if (entry.direction == direction and entry.valid_from <= day
                        and (entry.valid_to is None or day <= entry.valid_to)):
                    return entry
        return None

    def band_at(self, at: datetime, holiday: bool = False) -> Band | None:
        """The band in force at `at` (the device's local time)."""
        if holiday:
            for band in self.bands:
                if band.holidays:
                    return band
        week = self._week
        if week is not None:
            return week[at.weekday() * 1440 + at.hour * 60 + at.minute]
        for band in self.bands:
            if not band.holidays and band.contains(at):
                return band
        return None


def billable_seconds(duration: int, first: int, step: int) -> int:
    """Seconds billed under a first/next increment (60/60 whole minutes, 1/1 per second)."""
    if duration <= 0:
        return 0
    if duration <= first:
        return first
    rest = duration - first
    return first + -(-rest // step) * step


@dataclass(slots=True)
class Decision:
    """The outcome of rating one call; `rule` says why (the `rate` command, the call page)."""

    entry: RateEntry | None
    billable_seconds: int
    cost: Decimal | None
    currency: str
    duration: int = 0
    band: Band | None = None
    holiday: bool = False
    price: Decimal | None = None
    fee: Decimal = _ZERO
    reason: str = ""  # why there is no cost, when there is none

    @property
    def rule(self) -> str:
        """A sentence: which code and tariff, rounding, increment, band or holiday applied."""
        entry = self.entry
        if entry is None or self.cost is None:
            return self.reason
        parts = [_label(entry)]
        if self.band is not None and self.band.holidays:
            parts.append(f"holiday band {self.band.name}")
        elif self.band is not None:
            parts.append(f"time band {self.band.name}"
                         + (" (a holiday, but no holiday band)" if self.holiday else ""))
        elif self.holiday:
            parts.append("holiday (no band: base price)")
        if entry.free_seconds and self.duration <= entry.free_seconds:
            parts.append(f"{self.duration}s is within the {entry.free_seconds}s free time: no charge")
            return "; ".join(parts)
        billed = f"{self.duration}s billed as {self.billable_seconds}s ({_rounding(entry)}"
        if entry.min_seconds and self.billable_seconds == entry.min_seconds and self.duration:
            billed += f", minimum {entry.min_seconds}s"
        billed += f") at {_plain(self.price)} {self.currency}/min"
        parts.append(billed)
        if self.fee:
            parts.append(f"connection fee {self.fee.normalize():f}")
        parts.append(f"= {self.cost:f} {self.currency} (rounded half up)")
        return "; ".join(parts)


# Texts of the rule that depend only on the tariff, worked out once per entry and price
# (a rule is written for every call stored). Keyed by id() and checked by identity, as an
# entry is not cheap to hash; emptied when it grows past a bound, as indexes are rebuilt.
_TEXTS: dict[int, tuple[RateEntry, str, str]] = {}
_PLAIN: dict[Decimal, str] = {}
_TEXTS_BOUND = 200_000


def _texts(entry: RateEntry) -> tuple[RateEntry, str, str]:
    texts = _TEXTS.get(id(entry))
    if texts is None or texts[0] is not entry:
        intervals = (entry.first_interval, entry.next_interval)
        rounding = ("whole minutes" if intervals == (60, 60) else
                    "per second" if intervals == (1, 1) else "increments")
        if len(_TEXTS) >= _TEXTS_BOUND:
            _TEXTS.clear()
        texts = _TEXTS[id(entry)] = (
            entry,
            f"code {entry.code} ({entry.code_name or entry.tariff_name}), "
            f"tariff {entry.tariff_name}",
            f"{rounding} {entry.first_interval}/{entry.next_interval}")
    return texts


def _label(entry: RateEntry) -> str:
    return _texts(entry)[1]


def _rounding(entry: RateEntry) -> str:
    return _texts(entry)[2]


def _plain(amount: Decimal) -> str:
    """A price as people write it: 0.5, not 0.5000 (Decimal.normalize, never in E notation)."""
    text = _PLAIN.get(amount)
    if text is None:
        if len(_PLAIN) >= _TEXTS_BOUND:
            _PLAIN.clear()
        text = _PLAIN[amount] = f"{amount.normalize():f}"
    return text


def rate(index: TariffIndex, *, number: str, at: date | datetime, direction: int, duration: int,
         holiday: bool = False, answered: bool | None = None) -> Decision:
    """R4: price a call of `duration` seconds to `number` that started at `at` (the device's
    local time; a date means its midnight). `holiday`: that day is a holiday of the device's
    node. `answered` (default: duration > 0) decides whether the connection fee applies."""
    day = at.date() if isinstance(at, datetime) else at
    entry = index.match(number, day, direction)
    if entry is None:
        return Decision(None, 0, None, "", duration, reason=(
            f"no code of {index.operator or 'the operator'} valid on {day.isoformat()} "
            f"matches {number or 'an empty number'}"))
    band = None
    if index.bands:
        moment = at if isinstance(at, datetime) else datetime.combine(at, time())
        band = index.band_at(moment, holiday)
    if band is None or not entry.band_prices:
        price, fee, band = entry.price_per_minute, entry.connection_fee, None
    else:
        price, fee, band = entry.price_in(band)
    if price is None:
        return Decision(entry, 0, None, "", duration, band, holiday, reason=(
            f"tariff {entry.tariff_name} has no base price in plan {index.plan} "
            f"and no price for the time of the call"))
    if answered is None:
        answered = duration > 0
    if duration <= 0 or duration <= entry.free_seconds:
        seconds = 0
        # A 0 s answered call pays the connection fee, unless the tariff has free time
        # (a grace period covers the connection too).
        amount = fee if (answered and duration <= 0 and not entry.free_seconds) else _ZERO
        fee = amount
    else:
        seconds = max(billable_seconds(duration, entry.first_interval, entry.next_interval),
                      entry.min_seconds)
        amount = price * seconds / _SIXTY
        if answered:
            amount += fee
        else:
            fee = _ZERO
    cost = amount.quantize(_quantum(entry.currency), ROUND_HALF_UP)  # quantize_money, inlined
    return Decision(entry, seconds, cost, entry.currency, duration, band, holiday, price, fee)


def longest_duration(index: TariffIndex, *, number: str, at: date | datetime, direction: int,
                     budget: Decimal, holiday: bool = False, limit: int = 86400) -> int | None:
    """R8.4: the longest duration in seconds that a call to `number` started at `at` can last
    while `rate` prices it at no more than `budget`. None when no tariff prices the number;
    0 when even its first second costs more (a connection fee or a first increment above the
    budget; free seconds can still give more); `limit` when the budget lasts that long.

    Searched by halving over `rate` itself rather than worked out from the prices, so that
    increments, connection fee, minimum, free seconds and rounding count exactly as they do
    when the call is rated, and the two can never disagree. That works because a call's cost
    never falls as it grows longer: some 17 ratings for a day's limit."""
    def cost(duration: int) -> Decimal | None:
        return rate(index, number=number, at=at, direction=direction, duration=duration,
                    holiday=holiday).cost

    longest = cost(limit)
    if longest is None:
        return None
    if longest <= budget:
        return limit
    within, beyond = 0, limit  # within: 0 or a duration within the budget; beyond: over it
    while beyond - within > 1:
        middle = (within + beyond) // 2
        if cost(middle) <= budget:
            within = middle
        else:
            beyond = middle
    return within


__all__ = ["Band", "Decision", "RateEntry", "TariffIndex", "billable_seconds", "longest_duration",
           "quantize_money", "rate"]
