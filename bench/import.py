"""Benchmark of the tariff import (tariffs/importers, R5.2/R5.3) on a 200,000-row .xlsx deck.

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/import.py [--rows 200000]
                                          [--per-tariff 40] [--runs 5] [--keep]

Writes a deck (code, destination, rate, call type) with openpyxl in write-only mode to a
temporary folder, then measures:
  (a) the floor: python-calamine reading the sheet into rows (readers.read_rows), nothing else;
  (b) tariffs_import of the same file into the database of DATABASE_URL (migrated
      beforehand): reading, mapping, and writing codes, tariffs and prices in one
      transaction, for a new operator (deleted afterwards unless --keep).
Each run measures (a) then (b) in this process; the operator is then deleted and the tables
vacuumed. Printed: each run, the medians' rows/s, and the median of (b)/(a). The goal (its
issue): (b) within 2x of (a).

    DATABASE_URL=postgres://... DEBUG=true .venv/bin/python bench/import.py --csv-mb 200

instead imports a CSV deck of about that many megabytes once and prints the import's peak
memory (the process's peak resident set size, ru_maxrss, above what it held before the
import): a CSV deck must be read as a stream, in bounded memory whatever its size.
"""
import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tariscope.settings")

import django  # noqa: E402

django.setup()

import openpyxl  # noqa: E402
from django.db import connection  # noqa: E402

from tariffs.importers.mapping import ImportOptions  # noqa: E402
from tariffs.importers.readers import read_rows  # noqa: E402
from tariffs.importers.service import tariffs_import  # noqa: E402
from tariffs.models import Operator  # noqa: E402

GOAL_RATIO = 2.0
CALL_TYPES = ("international", "mobile", "5", "6")


def deck_write(path: Path, rows: int, per_tariff: int) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Rates")
    sheet.append(["Code", "Destination", "Rate", "Type"])
    for i in range(rows):
        tariff = i // per_tariff
        sheet.append([str(10_000_000 + i), f"Destination {tariff}", round(0.01 + tariff % 997 / 1000, 4),
                      CALL_TYPES[tariff % len(CALL_TYPES)]])
    book.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--per-tariff", type=int, default=40, help="codes per destination")
    parser.add_argument("--runs", type=int, default=5, help="runs of (a) then (b); the median "
                        "ratio is the result")
    parser.add_argument("--keep", action="store_true", help="keep the imported operators")
    parser.add_argument("--csv-mb", type=int, default=0,
                        help="instead: import a CSV deck of about this many MB, print peak memory")
    args = parser.parse_args()
    if args.csv_mb:
        csv_memory(args.csv_mb, args.per_tariff, keep=args.keep)
        return
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deck.xlsx"
        started = time.perf_counter()
        deck_write(path, args.rows, args.per_tariff)
        print(f"deck: {args.rows:,} rows, {args.rows // args.per_tariff:,} tariffs, "
              f"{path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - started:.1f} s")
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            rows = read_rows(path)
            floor = time.perf_counter() - started
            assert len(rows) == args.rows + 1
            del rows

            name = f"bench-import-{uuid.uuid4().hex[:8]}"
            options = ImportOptions(operator=name, plan="bench-import", currency="EUR")
            started = time.perf_counter()
            result = tariffs_import(source=path, sheet=None, options=options,
                                    mapping={"code": "Code", "name": "Destination",
                                             "rate": "Rate", "calltype": "Type"})
            full = time.perf_counter() - started
            assert result.codes_added == args.rows and not result.rejected, result.as_dict()
            runs.append((floor, full))
            print(f"run {run}: (a) {floor:.2f} s, (b) {full:.2f} s, ratio {full / floor:.2f}",
                  flush=True)
            if not args.keep:
                Operator.objects.filter(name=name).delete()
                _vacuum()
    floors, fulls = [f for f, _ in runs], [b for _, b in runs]
    ratios = sorted(b / f for f, b in runs)
    print(f"database: {connection.vendor} {connection.settings_dict.get('NAME')}; "
          f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"(a) floor, calamine read only: median {statistics.median(floors):.2f} s = "
          f"{args.rows / statistics.median(floors):,.0f} rows/s")
    print(f"(b) import (read + map + write): median {statistics.median(fulls):.2f} s = "
          f"{args.rows / statistics.median(fulls):,.0f} rows/s; {result.codes_added:,} codes, "
          f"{result.tariffs_added:,} tariffs")
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(f"ratio (b)/(a): median {ratio:.2f}x over {len(runs)} runs "
          f"(from {ratios[0]:.2f} to {ratios[-1]:.2f}; goal <= {GOAL_RATIO:.0f}x: {verdict})")


def csv_memory(megabytes: int, per_tariff: int, *, keep: bool) -> None:
    """Import a CSV deck of about `megabytes` MB once; print its time and peak memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deck.csv"
        rows = 0
        with path.open("w", encoding="utf-8") as out:
            out.write("Code;Destination;Rate;Type\n")
            while out.tell() < megabytes * 1_000_000:
                tariff = rows // per_tariff
                out.write(f"{10_000_000 + rows};Destination {tariff};"
                          f"{0.01 + tariff % 997 / 1000:.4f};{CALL_TYPES[tariff % len(CALL_TYPES)]}\n")
                rows += 1
        size = path.stat().st_size
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        name = f"bench-import-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        result = tariffs_import(source=path, sheet=None,
                                options=ImportOptions(operator=name, plan="bench-import",
                                                      currency="EUR"),
                                mapping={"code": "Code", "name": "Destination", "rate": "Rate",
                                         "calltype": "Type"})
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert result.codes_added == rows and not result.rejected, result.as_dict()
        print(f"database: {connection.vendor}; python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs")
        print(f"CSV deck: {size / 1e6:.0f} MB, {rows:,} rows; imported in {took:.1f} s "
              f"({rows / took:,.0f} rows/s)")
        print(f"peak memory of the import: {max(0, peak - before) / 1e6:,.0f} MB above the "
              f"{before / 1e6:,.0f} MB held before ({max(0, peak - before) / size:.2f}x the file)")
        if not keep:
            Operator.objects.filter(name=name).delete()
            _vacuum()


def _vacuum() -> None:
    """The next run finds the tables as a long-running system keeps them (autovacuum), not
    full of the last run's deleted rows."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("tariffs_phonecode", "tariffs_tariffprice", "tariffs_tariff"):
            cursor.execute(f"VACUUM ANALYZE {table}")


if __name__ == "__main__":
    main()
