"""tariffs_import (R5.2/R5.3): what an import writes, in one transaction."""
import csv
import datetime
import gc
import threading
from decimal import Decimal

import openpyxl
import pytest
from django.db import DatabaseError

from tariffs.importers.mapping import ImportOptions
from tariffs.importers.service import TariffImportError, import_preview, tariffs_import
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.rating import rate
from tariffs.selectors import tariff_index_build
from tests.factories import OperatorFactory, TariffPlanFactory, priced_code
from tests.tariffs.test_import_bulk import refuse_code

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2024, 6, 1)
MAPPING = {"code": "Код", "name": "Назва", "rate": "Ціна"}


def options(**overrides):
    values = {"operator": "Kyivstar", "plan": "Standard", "currency": "UAH", "today": TODAY}
    values.update(overrides)
    return ImportOptions(**values)


def write_csv(path, rows, encoding="utf-8-sig", delimiter=";"):
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def entry(operator, plan, number, day=TODAY):
    return tariff_index_build(operator=operator, plan=plan).match(number, day, 0)


def test_new_operator_plan_tariffs_and_codes_are_created_and_rated(tmp_path):
    # given a cp1251 deck with semicolons and decimal commas
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Ціна", "Тип"],
        ["380", "Україна", "1,5", "4"],
        ["38050-38052, 38067", "Мобільні", "2,25", "mobile"],
    ], encoding="cp1251")
    # when
    result = tariffs_import(source=path, sheet=None, mapping={**MAPPING, "calltype": "Тип"},
                            options=options())
    # then
    assert result.as_dict() == {"codes_added": 5, "tariffs_added": 2, "updated": 0, "skipped": 0,
                                "rejected": [], "dry_run": False}
    operator = Operator.objects.get(name="Kyivstar")
    plan = TariffPlan.objects.get(name="Standard")
    assert operator.currency == "UAH" and operator.rates_version == 1
    mobile = entry(operator, plan, "380501234567")
    assert (mobile.code, mobile.tariff_name, mobile.price_per_minute, mobile.call_type,
            mobile.first_interval, mobile.next_interval, mobile.valid_from) == (
        "38050", "Мобільні", Decimal("2.25"), 6, 60, 60, TODAY)
    decision = rate(tariff_index_build(operator=operator, plan=plan), number="380441234567",
                    at=datetime.datetime(2024, 6, 2, 10, tzinfo=datetime.UTC), direction=0,
                    duration=61)
    assert decision.cost == Decimal("3.00")


def test_per_second_and_account_description_apply_to_new_tariffs(tmp_path):
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "0.5"]])
    tariffs_import(source=path, sheet=None, mapping=MAPPING,
                   options=options(per_second=True, accounts_description="Міжнародні"))
    tariff = Tariff.objects.get()
    assert (tariff.first_interval, tariff.next_interval, tariff.account_description) == (
        1, 1, "Міжнародні")


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_xlsx_with_header_in_any_language_and_dates_as_cells(tmp_path, monkeypatch, reader):
    monkeypatch.setenv("TARISCOPE_EXCEL_READER", reader)
    path = tmp_path / "deck.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Rates"
    sheet.append(["Код", "Назва", "Ціна", "Діє з", "Тариф з"])
    sheet.append([44, "UK", 0.012, datetime.date(2024, 5, 1), 45413])  # 45413 = 2024-05-01
    sheet.append(["4420", "London", "0,01", "15.05.2024", None])
    book.save(path)
    result = tariffs_import(source=path, sheet="Rates",
                            mapping={**MAPPING, "valid_from": "Діє з", "tariff_valid_from": "E"},
                            options=options())
    assert (result.codes_added, result.tariffs_added, result.rejected) == (2, 2, [])
    uk = Tariff.objects.get(name="UK")
    assert uk.valid_from == datetime.date(2024, 5, 1)
    assert uk.prices.get().price_per_minute == Decimal("0.012")
    assert PhoneCode.objects.get(code="4420").valid_from == datetime.date(2024, 5, 15)
    assert Tariff.objects.get(name="London").valid_from == TODAY


def test_update_off_leaves_existing_codes_alone_and_adds_new_ones(tmp_path):
    # given an operator with 380 priced at 1.00
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    priced_code(operator=operator, plan=plan, code="380", price="1.00", name="Україна")
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Ціна"], ["380", "Україна", "9"], ["381", "Україна", "9"],
        ["44", "UK", "2"]])
    # when
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options())
    # then 380 keeps its price, 381 joins the existing tariff, UK is new
    assert (result.codes_added, result.tariffs_added, result.updated, result.skipped) == (2, 1, 0, 1)
    index = tariff_index_build(operator=operator, plan=plan)
    assert index.match("3801", TODAY, 0).price_per_minute == Decimal("1.00")
    assert index.match("3811", TODAY, 0).price_per_minute == Decimal("1.00")
    assert index.match("441", TODAY, 0).price_per_minute == Decimal("2")
    assert Tariff.objects.filter(name="Україна").count() == 1


def test_update_on_adds_a_new_period_and_keeps_the_history(tmp_path):
    # given 380 priced at 1.00 since 2020, also in another plan and with two codes
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    other = TariffPlanFactory(name="VIP")
    priced_code(operator=operator, plan=plan, code="380", price="1.00", name="Україна")
    priced_code(operator=operator, plan=other, code="38044", price="0.80", name="Київ",
                tariff_name="Україна")
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Ціна", "З"], ["380", "Україна", "1,20", "01.07.2024"],
        ["381", "Україна", "1,20", "01.07.2024"]])
    # when
    result = tariffs_import(source=path, sheet=None, mapping={**MAPPING, "tariff_valid_from": "З"},
                            options=options(update=True))
    # then
    assert (result.codes_added, result.tariffs_added, result.updated, result.skipped) == (1, 0, 1, 0)
    old, new = Tariff.objects.filter(name="Україна").order_by("valid_from")
    assert (old.valid_from, old.valid_to) == (datetime.date(2020, 1, 1), datetime.date(2024, 6, 30))
    assert (new.valid_from, new.valid_to) == (datetime.date(2024, 7, 1), None)
    assert old.prices.get(plan=plan).price_per_minute == Decimal("1.00")
    assert new.prices.get(plan=plan).price_per_minute == Decimal("1.2")
    assert new.prices.get(plan=other).price_per_minute == Decimal("0.80")
    assert sorted(new.codes.values_list("code", flat=True)) == ["380", "38044", "381"]
    index = tariff_index_build(operator=operator, plan=plan)
    assert index.match("3805", datetime.date(2024, 6, 30), 0).price_per_minute == Decimal("1.00")
    assert index.match("3805", datetime.date(2024, 7, 1), 0).price_per_minute == Decimal("1.2")
    assert index.match("3811", datetime.date(2024, 7, 1), 0).price_per_minute == Decimal("1.2")
    assert tariff_index_build(operator=operator, plan=other).match(
        "380441", datetime.date(2024, 7, 2), 0).price_per_minute == Decimal("0.80")


def test_update_on_with_the_same_rate_changes_nothing(tmp_path):
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    priced_code(operator=operator, plan=plan, code="380", price="1.5", name="Україна")
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["380", "Україна", "1,5"]])
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(update=True))
    assert (result.updated, result.skipped) == (0, 1)
    assert Tariff.objects.count() == 1


def test_update_on_the_same_start_date_reprices_in_place(tmp_path):
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    priced_code(operator=operator, plan=plan, code="380", price="1.5", name="Україна",
                valid_from=TODAY)
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["380", "Україна", "2"]])
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(update=True))
    assert result.updated == 1
    assert TariffPrice.objects.get().price_per_minute == Decimal("2")


def test_update_rejects_what_it_cannot_do(tmp_path):
    # given Україна with a period from 2024-08-01, and code 44 in tariff UK
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    priced_code(operator=operator, plan=plan, code="380", price="1", name="Україна",
                valid_from=datetime.date(2024, 8, 1))
    priced_code(operator=operator, plan=plan, code="44", price="1", name="UK")
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Ціна"], ["380", "Україна", "2"], ["44", "Europe", "2"], ["45", "DK", "2"]])
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(update=True))
    assert result.rejected == [
        {"row": 2, "reason": "tariff 'Україна' already has a period from 2024-08-01, after 2024-06-01"},
        {"row": 3, "reason": "code 44 belongs to tariff 'UK'; an import does not move codes "
                            "between tariffs"},
    ]
    assert result.codes_added == 1


def test_rows_of_one_tariff_must_agree_on_rate_and_date(tmp_path):
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Ціна", "З"], ["380", "UA", "1", ""], ["381", "UA", "2", ""],
        ["382", "UA", "1", "2024-07-01"], ["383", "UA", "1,0", ""]])
    result = tariffs_import(source=path, sheet=None, mapping={**MAPPING, "tariff_valid_from": "З"},
                            options=options())
    assert result.rejected == [
        {"row": 3, "reason": "tariff 'UA' has rate 1.000000 in row 2"},
        {"row": 4, "reason": "tariff 'UA' is valid from 2024-06-01 in row 2"},
    ]
    assert result.codes_added == 2


def test_codes_only_attaches_codes_to_existing_tariffs_without_prices(tmp_path):
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    plan = TariffPlanFactory(name="Standard")
    priced_code(operator=operator, plan=plan, code="380", price="1", name="Україна")
    path = write_csv(tmp_path / "deck.csv", [
        ["Код", "Назва", "Тариф"], ["38044", "Київ", "Україна"], ["44", "UK", "Europe"],
        ["380", "Україна", "Україна"]])
    result = tariffs_import(source=path, sheet=None,
                            mapping={"code": "Код", "name": "Назва", "tariff": "Тариф"},
                            options=options(codes_only=True))
    assert result.as_dict() | {"rejected": None} == {
        "codes_added": 1, "tariffs_added": 0, "updated": 0, "skipped": 1, "rejected": None,
        "dry_run": False}
    assert result.rejected == [{"row": 3, "reason": "tariff 'Europe' does not exist for this operator"}]
    code = PhoneCode.objects.get(code="38044")
    assert (code.name, code.tariff.name) == ("Київ", "Україна")
    assert TariffPrice.objects.count() == 1


def test_dry_run_reports_but_changes_nothing(tmp_path):
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"]])
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(),
                            dry_run=True)
    assert (result.codes_added, result.tariffs_added, result.dry_run) == (1, 1, True)
    assert not Operator.objects.exists()
    assert not TariffPlan.objects.exists()
    assert not Tariff.objects.exists()


def test_an_error_midway_rolls_everything_back(tmp_path):
    # given an operator and a deck whose second code the database refuses (a rule of the
    # test's own), after the tariffs, prices and first code were written
    operator = OperatorFactory(name="Kyivstar", currency="UAH")
    refuse_code("45")
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"],
                                              ["45", "Denmark", "3"]])
    # when
    with pytest.raises(DatabaseError):
        tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options())
    # then nothing is left, nor the thread that read the file
    assert not any(t.name == "tariff-import-planning" for t in threading.enumerate())
    assert not Tariff.objects.exists()
    assert not PhoneCode.objects.exists()
    assert not TariffPrice.objects.exists()
    assert not TariffPlan.objects.exists()
    operator.refresh_from_db()
    assert operator.rates_version == 0


def test_currency_must_match_an_existing_operator(tmp_path):
    OperatorFactory(name="Kyivstar", currency="EUR")
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"]])
    with pytest.raises(TariffImportError, match="keeps its rates in EUR, not UAH"):
        tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options())
    assert not Tariff.objects.exists()


def test_a_bad_currency_for_a_new_operator_is_refused(tmp_path):
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"]])
    with pytest.raises(TariffImportError, match="the operator: An ISO 4217 code"):
        tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(currency="uah"))
    assert not Operator.objects.exists()


def test_preview_maps_the_first_rows_only():
    rows = [["Код", "Назва", "Ціна"]] + [[str(380 + i), "X", "1" if i else "bad"] for i in range(50)]
    preview = import_preview(rows=rows, mapping=MAPPING, options=options(), limit=5)
    assert [r.code for r in preview.rows] == ["381", "382", "383", "384"]
    assert preview.rejected == [{"row": 2, "reason": "rate 'bad' is not a number"}]


def test_a_file_of_100000_rows(tmp_path):
    # given 100,000 codes in 1,000 tariffs
    rows = [["Код", "Назва", "Ціна"]]
    rows += [[str(1_000_000 + i), f"Destination {i // 100}", f"{i // 100 % 50},25"]
             for i in range(100_000)]
    path = write_csv(tmp_path / "big.csv", rows)
    # when, noting at each report of progress how many codes the transaction holds
    reports = []

    def progress(done, total):
        reports.append((done, total, PhoneCode.objects.count()))

    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(),
                            progress=progress)
    # then
    assert (result.codes_added, result.tariffs_added, result.rejected) == (100_000, 1_000, [])
    # the reports grew to the whole file, each telling the rows really written by then
    assert len(reports) > 2 and reports[-1] == (100_000, 100_000, 100_000)
    assert all(total == 100_000 and written == done for done, total, written in reports)
    assert [done for done, _t, _w in reports] == sorted({done for done, _t, _w in reports})
    operator = Operator.objects.get(name="Kyivstar")
    assert PhoneCode.objects.filter(operator=operator).count() == 100_000
    assert entry(operator, TariffPlan.objects.get(), "10999995").price_per_minute == Decimal("49.25")


def test_a_name_with_a_nul_character_is_rejected_with_its_row(tmp_path):
    # given a deck whose second row's name holds a NUL (no database text can)
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"],
                                              ["45", "Den\x00mark", "3"]])
    # when
    result = tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options())
    # then the row is rejected and the others imported
    assert result.rejected == [{"row": 3, "reason": "the name contains a NUL character"}]
    assert list(PhoneCode.objects.values_list("code", flat=True)) == ["44"]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_the_import_found_it(tmp_path, enabled):
    # given the cyclic collector on (as always) or off (as a caller may have it)
    path = write_csv(tmp_path / "deck.csv", [["Код", "Назва", "Ціна"], ["44", "UK", "2"]])
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        # when a deck is imported, and when an import fails
        tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options())
        with pytest.raises(TariffImportError):
            tariffs_import(source=path, sheet=None, mapping={"code": "nope"}, options=options())
        # then it is as it was
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("rows", [0, 1, 2_000, 110_000])
def test_progress_is_reported_once_per_chunk_up_to_the_whole_file(tmp_path, rows):
    # given a deck whose chunks (2,000 rows, then twice as many up to 20,000) may end
    # exactly at its last row (110,000 = 2,000 + 4,000 + 8,000 + 16,000 + 20,000 x 4)
    deck = [["Код", "Назва", "Ціна"]] + [[str(1_000_000 + i), f"D {i // 100}", "1"]
                                          for i in range(rows)]
    path = write_csv(tmp_path / "deck.csv", deck)
    reports = []
    # when it is imported
    tariffs_import(source=path, sheet=None, mapping=MAPPING, options=options(),
                   progress=lambda done, total: reports.append((done, total)))
    # then each report says more rows than the last, and the last says all of them
    assert reports[-1] == (rows, rows)
    assert [done for done, _ in reports] == sorted({done for done, _ in reports})
