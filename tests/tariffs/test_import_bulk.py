"""The bulk paths of the tariff import (R5.2/R5.3): what the fast mapping and the bulk
writers (COPY on PostgreSQL, bulk inserts on SQLite: run this file on both) store, row by
row, on decks large enough to repeat their cells."""
import datetime
import random
from decimal import ROUND_HALF_UP, Decimal

import openpyxl
import pytest
from django.db import DatabaseError, connection

from tariffs.importers.mapping import ImportOptions, rows_map
from tariffs.importers.service import tariffs_import
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.selectors import tariff_index_build

START = datetime.date(2024, 1, 1)
NEW = datetime.date(2024, 7, 1)
EXPIRES = datetime.date(2024, 3, 31)
TARIFFS = 50
PER_TARIFF = 40
KEPT = 30           # codes of each tariff that the second deck lists again
ADDED = (40, 41)    # codes of each tariff that only the second deck has
OTHER_PRICE = Decimal("9.000000")
MAPPING = {"code": "Code", "name": "Destination", "rate": "Rate", "valid_from": "From",
           "valid_to": "To", "tariff_valid_from": "Tariff from"}


def options(**overrides):
    values = {"operator": "Carrier", "plan": "Standard", "currency": "EUR",
              "today": datetime.date(2024, 6, 1)}
    values.update(overrides)
    return ImportOptions(**values)


def write_xlsx(path, rows):
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Rates")
    sheet.append(["Code", "Destination", "Rate", "From", "To", "Tariff from"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def code_of(t, k):
    return f"{1000 + t}{k:02d}"


def rate_cell(t, bump=0):
    """Tariff t's rate as a cell: even tariffs as text with a decimal comma, odd ones as
    numbers (eighths, exact in binary); `bump` raises it by whole units."""
    value = Decimal(t + 1) / 8 + bump
    return str(value).replace(".", ",") if t % 2 == 0 else float(value)


def rate_of(t, bump=0):
    return (Decimal(t + 1) / 8 + bump).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def expires(t, k):
    """Some codes of every tenth tariff end before the second deck's date."""
    return t % 10 == 0 and k >= 35


def changed(t):
    return t % 3 == 0


@pytest.mark.django_db
def test_a_2000_row_deck_then_its_update_are_stored_row_by_row(tmp_path):
    # given 50 tariffs of 40 codes each, imported from a 2,000-row deck
    first = write_xlsx(tmp_path / "first.xlsx", [
        [code_of(t, k), f"Dest {t}", rate_cell(t), "2024-01-01",
         "31.03.2024" if expires(t, k) else None, "01.01.2024"]
        for t in range(TARIFFS) for k in range(PER_TARIFF)])
    result = tariffs_import(source=first, sheet=None, mapping=MAPPING, options=options())
    assert (result.codes_added, result.tariffs_added, result.rejected) == (
        TARIFFS * PER_TARIFF, TARIFFS, [])
    operator = Operator.objects.get(name="Carrier")
    plan = TariffPlan.objects.get(name="Standard")
    other = TariffPlan.objects.create(name="Other")
    TariffPrice.objects.bulk_create(
        TariffPrice(tariff=t, plan=other, price_per_minute=OTHER_PRICE)
        for t in Tariff.objects.filter(operator=operator) if int(t.name.split()[1]) % 5 == 0)
    version = Operator.objects.get(pk=operator.pk).rates_version
    # and a second deck from 2024-07-01: every third tariff with a new rate, the others with
    # the same one; 30 known and 2 new codes per tariff, 3 new tariffs, and one code that
    # names another tariff than its own
    rows = []
    for t in range(TARIFFS):
        for k in [*range(KEPT), *ADDED]:
            rows.append([code_of(t, k), f"Dest {t}", rate_cell(t, 1 if changed(t) else 0),
                         None, None, "01.07.2024"])
    for t in range(TARIFFS, TARIFFS + 3):
        rows.extend([code_of(t, k), f"Dest {t}", rate_cell(t), None, None, "01.07.2024"]
                    for k in range(5))
    rows.append([code_of(1, 39), "Dest 2", rate_cell(2), None, None, "01.07.2024"])
    second = write_xlsx(tmp_path / "second.xlsx", rows)
    # when
    result = tariffs_import(source=second, sheet=None, mapping=MAPPING,
                            options=options(update=True))
    # then the counts
    updated = [t for t in range(TARIFFS) if changed(t)]
    assert result.as_dict() == {
        "codes_added": TARIFFS * len(ADDED) + 3 * 5,
        "tariffs_added": 3,
        "updated": len(updated),
        "skipped": (TARIFFS - len(updated)) * KEPT,
        "rejected": [{"row": len(rows) + 1,
                      "reason": f"code {code_of(1, 39)} belongs to tariff 'Dest 1'; an import "
                                "does not move codes between tariffs"}],
        "dry_run": False}
    assert Operator.objects.get(pk=operator.pk).rates_version == version + 1
    # and every tariff's periods, prices in both plans and codes
    periods = {}
    for tariff in Tariff.objects.filter(operator=operator):
        prices = {p.plan_id: p.price_per_minute for p in tariff.prices.all()}
        codes = {(c.code, c.valid_from, c.valid_to) for c in tariff.codes.all()}
        periods.setdefault(tariff.name, []).append(
            (tariff.valid_from, tariff.valid_to, prices, codes))
    for t in range(TARIFFS):
        first_codes = {(code_of(t, k), START, EXPIRES if expires(t, k) else None)
                       for k in range(PER_TARIFF)}
        fresh = {(code_of(t, k), datetime.date(2024, 6, 1), None) for k in ADDED}
        other_prices = {other.pk: OTHER_PRICE} if t % 5 == 0 else {}
        got = sorted(periods[f"Dest {t}"], key=lambda p: p[0])
        if changed(t):
            carried = {c for c in first_codes if c[2] is None or c[2] >= NEW}
            assert got == [
                (START, NEW - datetime.timedelta(days=1),
                 {plan.pk: rate_of(t), **other_prices}, first_codes),
                (NEW, None, {plan.pk: rate_of(t, 1), **other_prices}, carried | fresh)], t
        else:
            assert got == [(START, None, {plan.pk: rate_of(t), **other_prices},
                            first_codes | fresh)], t
    for t in range(TARIFFS, TARIFFS + 3):
        assert periods[f"Dest {t}"] == [
            (NEW, None, {plan.pk: rate_of(t)},
             {(code_of(t, k), datetime.date(2024, 6, 1), None) for k in range(5)})]
    # and rating finds, for every accepted row of the second deck, the old price the day
    # before and the file's price from its date
    index = tariff_index_build(operator=operator, plan=plan)
    for row in rows[:-1]:
        t = int(row[1].split()[1])
        number = row[0] + "1234"
        before = index.match(number, NEW - datetime.timedelta(days=1), 0)
        after = index.match(number, NEW, 0)
        if t >= TARIFFS or (changed(t) and int(row[0][-2:]) in ADDED):
            # a new tariff, or a new code of a repriced one: only in the period from NEW
            assert before is None, row
        else:
            assert before.price_per_minute == rate_of(t), row
        assert after.price_per_minute == rate_of(t, 1 if t < TARIFFS and changed(t) else 0), row
        assert after.tariff_name == f"Dest {t}"


@pytest.mark.django_db
def test_text_with_tabs_backslashes_and_line_breaks_is_stored_as_written():
    # given names and categories that COPY's text format must escape (as rows: an xlsx
    # file would turn a carriage return into a line feed before the import sees it)
    names = ["Tab\there", "Back\\slash \\N", "Line\nbreak", "Carriage\rreturn", "Україна",
             "\\.", "Quote \" and ' ; ,"]
    rows = [["Code", "Destination", "Rate", "Category", "Tariff"]] + [
        [f"38{i}", name, "0.5", f"cat {name}", f"T {name}"] for i, name in enumerate(names)]
    # when
    result = tariffs_import(
        source=None, sheet=None, rows=rows, options=options(accounts_description="Desc\twith\\tab"),
        mapping={"code": "Code", "name": "Destination", "rate": "Rate", "category": "Category",
                 "tariff": "Tariff"})
    # then
    assert (result.codes_added, result.tariffs_added, result.rejected) == (
        len(names), len(names), [])
    stored = {c.code: (c.name, c.category, c.tariff.name, c.tariff.account_description)
              for c in PhoneCode.objects.select_related("tariff")}
    assert stored == {f"38{i}": (name, f"cat {name}", f"T {name}", "Desc\twith\\tab")
                      for i, name in enumerate(names)}


def refuse_code(code):
    """The database itself refuses `code` (a rule of the test's own, inside the test's
    transaction): a CHECK constraint on PostgreSQL, a trigger on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE tariffs_phonecode ADD CONSTRAINT test_refuse_code "
                           f"CHECK (code <> '{code}')")
        else:
            cursor.execute("CREATE TRIGGER test_refuse_code BEFORE INSERT ON tariffs_phonecode "
                           f"WHEN NEW.code = '{code}' BEGIN SELECT RAISE(ABORT, 'refused'); END")


def refuse_code_undo():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE tariffs_phonecode DROP CONSTRAINT test_refuse_code")
        else:
            cursor.execute("DROP TRIGGER test_refuse_code")


@pytest.mark.django_db
def test_a_write_the_database_refuses_leaves_everything_as_it_was(tmp_path):
    # given an operator with one tariff, and a deck of 2,000 codes whose last one the
    # database refuses, after the new tariffs and prices are written
    refuse_code("381999")
    first = write_xlsx(tmp_path / "first.xlsx", [["44", "UK", "1", None, None, "01.01.2024"]])
    tariffs_import(source=first, sheet=None, mapping=MAPPING, options=options())
    operator = Operator.objects.get(name="Carrier")
    before = (operator.rates_version, Tariff.objects.count(), TariffPrice.objects.count(),
              PhoneCode.objects.count())
    deck = write_xlsx(tmp_path / "deck.xlsx", [
        [str(380000 + i), f"Dest {i // 40}", "2", None, None, "01.07.2024"] for i in range(2000)])
    # when
    with pytest.raises(DatabaseError):
        tariffs_import(source=deck, sheet=None, mapping=MAPPING, options=options(update=True))
    # then
    operator.refresh_from_db()
    assert (operator.rates_version, Tariff.objects.count(), TariffPrice.objects.count(),
            PhoneCode.objects.count()) == before


# The mapping: a row maps the same inside a large deck as alone --------------------------

def _cells(rng, i):
    code = rng.choice([str(i), i, float(i), f"{i}0,{i}1", f"{i}00-{i}02", f" {i} ", f"+{i}",
                       "", None, f"{i}a", f"{i}0, {i}0", -float(i)])
    rate = rng.choice([1.5, "1,5", "1.5", 1, 1.0, True, 0, 0.0, -0.0, "0", "-0", "-1", "x", None,
                       "", 0.1, 1e9, float("nan"), "1 234,5"])
    call_type = rng.choice(["5", 5, 5.0, "mobile", " Mobile ", True, 1, "zz", None, "", 6.0])
    day = rng.choice(["2024-01-31", 45413, 45413.0, 45413.5, datetime.datetime(2024, 5, 1, 10),
                      datetime.date(2024, 5, 2), "", None, "bad", "31/01/2024", True, 0.5])
    direction = rng.choice(["out", "in", 0, 1, 1.0, True, "", None, "sideways"])
    return [code, f"Name {i % 7}", rate, call_type, day, direction]


def test_a_row_maps_the_same_inside_a_deck_as_alone():
    # given 600 rows whose cells repeat in every type a reader gives
    rng = random.Random(5)
    header = ["code", "name", "rate", "type", "from", "direction"]
    rows = [header] + [_cells(rng, i) for i in range(1000, 1600)]
    mapping = {"code": "code", "name": "name", "rate": "rate", "calltype": "type",
               "valid_from": "from", "tariff_valid_from": "from", "direction": "direction"}
    # when the deck is mapped at once, and each row alone
    deck = rows_map(rows, mapping=mapping, options=options())
    alone_rows, alone_rejected = [], []
    for number, row in enumerate(rows[1:], start=2):
        alone = rows_map([header, row], mapping=mapping, options=options())
        alone_rows.extend(r._replace(row=number) for r in alone.rows)
        alone_rejected.extend({"row": number, "reason": r["reason"]} for r in alone.rejected)
    # then (codes are unique per row, so the deck rejects no duplicates) the same rows, with
    # the same rates to the sign and the last digit, and the same rejects
    assert [tuple(map(repr, r)) for r in deck.rows] == [tuple(map(repr, r)) for r in alone_rows]
    assert deck.rejected == alone_rejected
    assert len(deck.rows) > 100 and len(deck.rejected) > 100


def test_short_rows_of_a_text_file_map_their_missing_cells_as_empty():
    rows = [["code", "name", "rate", "type"], ["380", "UA", "1"], ["381"], [], ["", "", ""]]
    mapped = rows_map(rows, mapping={"code": "code", "name": "name", "rate": "rate",
                                     "calltype": "type"}, options=options())
    assert [(r.row, r.code, r.name, r.call_type) for r in mapped.rows] == [(2, "380", "UA", None)]
    assert mapped.rejected == [{"row": 3, "reason": "empty rate"}]
