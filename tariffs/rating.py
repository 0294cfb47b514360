"""R4: the rating core. Pure: a number, a date and a duration against a compiled tariff
index give a cost and the reason for it. No database access (STYLE rule 1).

Money: every cost is computed exactly in Decimal and rounded once, at the end, to the
currency's minor unit with ROUND_HALF_UP (`quantize_money`).
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units that are not 2.
_MINOR_UNITS = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}
_SIXTY = Decimal(60)


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """The one rounding rule for money: to the currency's minor unit, half up."""
    places = _MINOR_UNITS.get(currency.upper(), 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One priced code: a code of a tariff with the tariff's price in one plan."""

    code: str
    code_name: str
    tariff_id: int
    tariff_name: str
    direction: int
    call_type: int | None
    valid_from: date
    valid_to: date | None
    price_per_minute: Decimal
    connection_fee: Decimal
    first_interval: int
    next_interval: int
    currency: str

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class TariffIndex:
    """Codes of one operator priced in one plan, compiled for longest-prefix match."""

    __slots__ = ("_by_code", "_lengths", "operator", "plan")

    def __init__(self, entries: Iterable[RateEntry], *, operator: str = "", plan: str = ""):
        by_code: dict[str, list[RateEntry]] = {}
        for entry in entries:
            by_code.setdefault(entry.code, []).append(entry)
        # Newest first, so that the first valid entry is the one in force.
        self._by_code = {
            code: tuple(sorted(group, key=lambda e: e.valid_from, reverse=True))
            for code, group in by_code.items()
        }
        self._lengths = tuple(sorted({len(code) for code in self._by_code}, reverse=True))
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
                if entry.direction == direction and entry.valid_on(day):
                    return entry
        return None


def billable_seconds(duration: int, first: int, step: int) -> int:
    """Seconds billed under a first/next increment (60/60 whole minutes, 1/1 per second)."""
    if duration <= 0:
        return 0
    if duration <= first:
        return first
    rest = duration - first
    return first + -(-rest // step) * step


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of rating one call, with the reason (shown by `rate` and the call page)."""

    entry: RateEntry | None
    billable_seconds: int
    cost: Decimal | None
    currency: str
    rule: str


def rate(index: TariffIndex, *, number: str, day: date, direction: int, duration: int) -> Decision:
    """R4: price a call of `duration` seconds to `number` started on `day` (device's zone)."""
    entry = index.match(number, day, direction)
    if entry is None:
        return Decision(None, 0, None, "", f"no code of {index.operator or 'the operator'} "
                        f"valid on {day.isoformat()} matches {number or 'an empty number'}")
    seconds = billable_seconds(duration, entry.first_interval, entry.next_interval)
    amount = entry.price_per_minute * seconds / _SIXTY
    if duration > 0:
        amount += entry.connection_fee
    cost = quantize_money(amount, entry.currency)
    rule = (
        f"code {entry.code} ({entry.code_name or entry.tariff_name}), tariff "
        f"{entry.tariff_name}: {duration}s billed as {seconds}s in "
        f"{entry.first_interval}/{entry.next_interval} increments at "
        f"{entry.price_per_minute.normalize():f} {entry.currency}/min"
    )
    if duration > 0 and entry.connection_fee:
        rule += f" + connection fee {entry.connection_fee.normalize():f}"
    return Decision(entry, seconds, cost, entry.currency, rule)
