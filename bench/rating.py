"""Benchmark of the rating core (tariffs/rating.py) on a realistic deck and a month of calls.

    .venv/bin/python bench/rating.py [--codes 50000] [--calls 1000000] [--seed 1] [--repeat 3]

Writes the calls to a CSV file in a temporary folder, then measures, in this one process:
  (a) the floor: reading the CSV and converting the fields rating needs (number, start as a
      datetime, duration, direction), with csv.reader, and nothing else;
  (b) the same reading plus rate() of every call against the compiled TariffIndex (built
      once beforehand; its build time is reported on its own).
Each phase runs `--repeat` times and the fastest run counts. The goal (its issue):
(b) >= 200,000 calls/s on one process, and (b) takes at most 3x the time of (a).

No database and no Django: tariffs/rating.py is pure (STYLE rule 1), so it is imported with
the repository root on sys.path. Directions are the values of tariffs.models.Direction
(0 outgoing, 1 incoming), written out so that Django is not loaded.
"""
import argparse
import csv
import os
import platform
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tariffs.rating import Band, RateEntry, TariffIndex, rate  # noqa: E402

OUTGOING, INCOMING = 0, 1  # tariffs.models.Direction
MONTH_START = datetime(2024, 6, 1)
MONTH_DAYS = 30
GOAL_RATE = 200_000
GOAL_RATIO = 3.0

PEAK = Band(1, "Peak", frozenset({1, 2, 3, 4, 5}), clock(8), clock(20))
OFF_PEAK = Band(2, "Off-peak", frozenset({1, 2, 3, 4, 5}), clock(20), clock(8))

# (name, first, next, connection fee, band prices?) of the deck's outgoing tariffs.
TARIFFS = [
    ("Local", 60, 60, "0", True),
    ("Long distance", 60, 60, "0", True),
    ("Mobile A", 1, 1, "0", False),
    ("Mobile B", 1, 1, "0.10", False),
    ("Mobile C", 30, 6, "0", True),
    ("Europe", 30, 6, "0", False),
    ("Europe mobile", 30, 6, "0.05", False),
    ("North America", 60, 60, "0", False),
    ("Asia", 60, 60, "0.25", False),
    ("Africa", 60, 60, "0", False),
    ("Satellite", 60, 60, "1.00", False),
    ("Premium", 60, 60, "0.50", True),
]


def country_codes(rng: random.Random) -> list[str]:
    """About 220 country codes of 1-3 digits, none starting with 0 (numbers starting with 0
    are the deck's guaranteed misses), none a prefix of another, as in E.164."""
    codes = ["1", "7"]
    two = [str(n) for n in range(20, 100) if str(n)[0] not in "17"]
    rng.shuffle(two)
    codes += two[:40]
    taken = set(two[:40])
    threes = [str(n) for n in range(200, 1000)
              if str(n)[0] not in "17" and str(n)[:2] not in taken]
    codes += rng.sample(threes, 180)
    return codes


def make_deck(n_codes: int, rng: random.Random) -> list[RateEntry]:
    """`n_codes` codes (country codes, then area and mobile prefixes to 4-9 digits) priced
    by the TARIFFS, with some codes expired before the month, some starting after it, some
    replaced mid-month, and incoming tariffs on the country codes."""
    entries: list[RateEntry] = []
    epoch, month_end = date(2020, 1, 1), (MONTH_START + timedelta(days=MONTH_DAYS)).date()

    def add(code, tariff_id, *, direction=OUTGOING, valid_from=epoch, valid_to=None, scale=1):
        name, first, step, fee, banded = TARIFFS[tariff_id] if direction == OUTGOING else (
            "Incoming", 60, 60, "0", False)
        base = Decimal(rng.randrange(5, 500)) / 100 * scale
        band_prices = ((PEAK.id, base * Decimal("1.5"), Decimal(fee)),
                       (OFF_PEAK.id, base / 2, Decimal(fee))) if banded else ()
        entries.append(RateEntry(
            code=code, code_name=f"{name} {code}", tariff_id=tariff_id + 100 * direction,
            tariff_name=name, direction=direction, call_type=None, valid_from=valid_from,
            valid_to=valid_to, price_per_minute=base, connection_fee=Decimal(fee),
            first_interval=first, next_interval=step, currency="UAH", band_prices=band_prices))

    countries = country_codes(rng)
    codes = set(countries)
    for country in countries:
        add(country, rng.randrange(len(TARIFFS)))
        add(country, 0, direction=INCOMING, scale=Decimal("0.1"))
    while len(codes) < n_codes:
        code = rng.choice(countries)
        code += "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 9) - len(code)))
        if code in codes:
            continue
        codes.add(code)
        tariff_id = rng.randrange(len(TARIFFS))
        roll = rng.random()
        if roll < 0.04:  # expired before the month
            add(code, tariff_id, valid_to=date(2024, 3, 31))
        elif roll < 0.06:  # starts after the month
            add(code, tariff_id, valid_from=month_end + timedelta(days=10))
        elif roll < 0.08:  # replaced mid-month: old price to the 15th, new from the 16th
            add(code, tariff_id, valid_to=date(2024, 6, 15))
            add(code, tariff_id, valid_from=date(2024, 6, 16))
        else:
            add(code, tariff_id)
    return entries


def write_calls(path: Path, entries: list[RateEntry], n_calls: int, rng: random.Random) -> None:
    """`n_calls` calls over the month: numbers mostly under a code of the deck, some not."""
    codes = [e.code for e in entries if e.direction == OUTGOING]
    seconds_in_month = MONTH_DAYS * 86400
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "start", "duration", "direction"])
        for _ in range(n_calls):
            roll = rng.random()
            if roll < 0.90:
                prefix = rng.choice(codes)
            elif roll < 0.95:
                prefix = "0"  # no code starts with 0: never priced
            else:
                prefix = ""
            number = prefix + "".join(rng.choice("0123456789")
                                      for _ in range(rng.randint(11, 12) - len(prefix)))
            start = MONTH_START + timedelta(seconds=rng.randrange(seconds_in_month))
            duration = 0 if rng.random() < 0.15 else min(int(rng.expovariate(1 / 120)) + 1, 7200)
            direction = INCOMING if rng.random() < 0.10 else OUTGOING
            writer.writerow([number, start.isoformat(sep=" "), duration, direction])


def read_only(path: Path) -> tuple[int, int]:
    """(a) The floor: the CSV read and its fields converted, nothing rated."""
    parse_time = datetime.fromisoformat
    count = 0
    call = None
    with path.open(newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for number, start, duration, direction in rows:
            call = (number, parse_time(start), int(direction), int(duration))
            count += 1
    return count, call is not None


def read_and_rate(path: Path, index: TariffIndex) -> tuple[int, int]:
    """(b) The same reading, and every call rated."""
    parse_time = datetime.fromisoformat
    count = unpriced = 0
    with path.open(newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for number, start, duration, direction in rows:
            decision = rate(index, number=number, at=parse_time(start), direction=int(direction),
                            duration=int(duration))
            if decision.cost is None:
                unpriced += 1
            count += 1
    return count, unpriced


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def best_of(repeat: int, run):
    """The fastest of `repeat` runs: (seconds, result of the last run)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per phase; the fastest counts")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{cpu_model()}, {os.cpu_count()} logical CPUs")
    rng = random.Random(args.seed)
    entries = make_deck(args.codes, rng)
    started = time.perf_counter()
    index = TariffIndex(entries, operator="Bench", plan="Basic", bands=(PEAK, OFF_PEAK))
    build = time.perf_counter() - started
    print(f"deck: {len({e.code for e in entries}):,} codes, {len(entries):,} entries; "
          f"index built in {build * 1000:.0f} ms")

    with tempfile.TemporaryDirectory(prefix="bench-rating-") as folder:
        path = Path(folder) / "calls.csv"
        started = time.perf_counter()
        write_calls(path, entries, args.calls, rng)
        print(f"calls: {args.calls:,} written to CSV ({path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")

        floor, (count, _) = best_of(args.repeat, lambda: read_only(path))
        rated, (count_b, unpriced) = best_of(args.repeat, lambda: read_and_rate(path, index))
    assert count == count_b == args.calls

    floor_rate, rated_rate, ratio = count / floor, count / rated, rated / floor
    print(f"(a) read only:    {floor:7.2f} s  {floor_rate:>10,.0f} calls/s")
    print(f"(b) read + rate:  {rated:7.2f} s  {rated_rate:>10,.0f} calls/s  "
          f"({unpriced:,} calls unpriced)")
    print(f"rating alone: {(rated - floor) / count * 1e6:.2f} us/call; "
          f"ratio (b)/(a) = {ratio:.2f}")
    rate_ok, ratio_ok = rated_rate >= GOAL_RATE, ratio <= GOAL_RATIO
    print(f"goal (b) >= {GOAL_RATE:,} calls/s: {'met' if rate_ok else 'MISSED'}; "
          f"goal (b)/(a) <= {GOAL_RATIO:g}: {'met' if ratio_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
