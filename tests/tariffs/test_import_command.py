"""`manage.py import_tariffs` (R5.3): one JSON object, exit status by outcome."""
import datetime
import json
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan
from tariffs.selectors import tariff_index_build
from tests.conftest import TESTDATA, shared_testdata
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2024, 6, 1)
BASE = ["--operator", "Kyivstar", "--plan", "Standard", "--currency", "UAH"]


def run(*args):
    out = StringIO()
    call_command("import_tariffs", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def deck(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_bytes("Код;Назва;Ціна\n380;Україна;1,5\n38050-38051;Мобільні;2\n381;X;\n"
                     .encode("utf-8-sig"))
    return path


@time_machine.travel(datetime.datetime(2024, 6, 1, 12, tzinfo=datetime.UTC), tick=False)
def test_prints_one_json_object_with_rejected_rows(deck):
    result = run(str(deck), *BASE, "--map", "code=Код,name=Назва,rate=Ціна")
    assert result == {"codes_added": 3, "tariffs_added": 2, "updated": 0, "skipped": 0,
                      "rejected": [{"row": 4, "reason": "empty rate"}], "dry_run": False}
    assert Tariff.objects.get(name="Україна").valid_from == TODAY


def test_dry_run_changes_nothing(deck):
    result = run(str(deck), *BASE, "--map", "code=A,name=B,rate=C", "--dry-run")
    assert (result["codes_added"], result["dry_run"]) == (3, True)
    assert not Operator.objects.exists()


def test_per_second_tariffs(deck):
    run(str(deck), *BASE, "--map", "code=A,name=B,rate=C", "--per-second")
    assert set(Tariff.objects.values_list("first_interval", "next_interval")) == {(1, 1)}


def test_update_gives_a_new_period_from_the_files_date(tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("code;name;rate;from\n380;UA;1;2024-01-01\n")
    second = tmp_path / "second.csv"
    second.write_text("code;name;rate;from\n380;UA;2;03/01/2024\n")
    mapping = "code=code,name=name,rate=rate,tariff_valid_from=from"
    run(str(first), *BASE, "--map", mapping)
    without = run(str(second), *BASE, "--map", mapping)
    with_update = run(str(second), *BASE, "--map", mapping, "--update", "--date-order", "mdy")
    assert (without["updated"], without["skipped"]) == (0, 1)
    assert with_update["updated"] == 1
    assert list(Tariff.objects.order_by("valid_from").values_list("valid_from", "valid_to")) == [
        (datetime.date(2024, 1, 1), datetime.date(2024, 2, 29)), (datetime.date(2024, 3, 1), None)]


@pytest.mark.parametrize(("args", "message"), [
    (["--map", "code=A,name=B"], "no rate column"),
    (["--map", "code=A,name=B,price=C"], "unknown field 'price'"),
    (["--map", "code=Code,rate=C"], "neither a header nor a column letter"),
    (["--map", "code=A,rate=C", "--rate-value", "x"], "not a number"),
    (["--map", "code=A,rate=C", "--rate-value", "1"], "either a rate column or a rate value"),
    (["--map", "code=A,rate=C", "--sheet", "Rates"], "has no sheet 'Rates'"),
])
def test_wrong_options_fail_and_change_nothing(deck, args, message):
    with pytest.raises(CommandError, match=message):
        run(str(deck), *BASE, *args)
    assert not Operator.objects.exists()


def test_a_missing_file_fails(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(str(tmp_path / "none.xlsx"), *BASE, "--map", "code=A,rate=B")


def test_a_currency_other_than_the_operators_fails(deck):
    OperatorFactory(name="Kyivstar", currency="EUR")
    with pytest.raises(CommandError, match="keeps its rates in EUR, not UAH"):
        run(str(deck), *BASE, "--map", "code=A,name=B,rate=C")


def test_nothing_imported_fails_after_printing_the_result(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("code;rate\nabc;1\n;2\n")
    out = StringIO()
    with pytest.raises(CommandError, match="all 2 rows were rejected"):
        call_command("import_tariffs", str(path), *BASE, "--map", "code=A,rate=B", stdout=out)
    assert [r["row"] for r in json.loads(out.getvalue())["rejected"]] == [2, 3]
    assert not Operator.objects.exists()


def test_importing_the_same_deck_again_skips_and_succeeds(deck):
    run(str(deck), *BASE, "--map", "code=A,name=B,rate=C")
    again = run(str(deck), *BASE, "--map", "code=A,name=B,rate=C")
    assert (again["codes_added"], again["skipped"]) == (0, 3)


def test_cdr_stats_deck_without_header_or_names():
    path = TESTDATA / "import" / "cdr_stats_import_carrier_rates.txt"
    result = run(str(path), *BASE, "--no-header", "--map", "code=A,rate=B")
    assert (result["codes_added"], result["tariffs_added"], result["rejected"]) == (5, 5, [])
    index = tariff_index_build(operator=Operator.objects.get(), plan=TariffPlan.objects.get())
    assert index.match("4420", datetime.date.today(), 0).price_per_minute == Decimal("0.012")


def test_asterisell_world_prefixes_with_one_rate_for_all():
    path = shared_testdata("rates/asterisell/new_world_prefixes.csv")
    result = run(str(path), *BASE, "--no-header", "--map", "name=A,code=B", "--rate-value", "0,1")
    assert (result["codes_added"], result["rejected"]) == (10063, [])
    assert result["tariffs_added"] == Tariff.objects.count()
    index = tariff_index_build(operator=Operator.objects.get(), plan=TariffPlan.objects.get())
    hit = index.match("93708996123", datetime.date.today(), 0)
    assert (hit.code, hit.tariff_name, hit.price_per_minute) == (
        "93708996", "Afghanistan Mobile AWCC", Decimal("0.1"))
    assert PhoneCode.objects.count() == 10063


def test_asterisell_codes_only_into_a_tariff_made_beforehand(tmp_path):
    path = shared_testdata("rates/asterisell/new_world_prefixes.csv")
    seed = tmp_path / "seed.csv"
    seed.write_text("code;name;rate\n93;Afghanistan;0.3\n")
    run(str(seed), *BASE, "--map", "code=A,name=B,rate=C")
    result = run(str(path), *BASE, "--no-header", "--map", "tariff=A,code=B", "--codes-only")
    # only the rows named exactly "Afghanistan" have a tariff; 93 itself is already there
    assert (result["codes_added"], result["skipped"]) == (0, 1)
    assert len(result["rejected"]) == 10062
    assert result["rejected"][0] == {
        "row": 2, "reason": "tariff 'Afghanistan Mobile' does not exist for this operator"}


def test_a_field_too_long_for_a_deck_is_a_clear_error_not_a_traceback(tmp_path):
    # given a CSV deck whose third line holds a 1 MB field (no rate deck's)
    path = tmp_path / "deck.csv"
    path.write_text("Code;Name;Rate\n380;Ukraine;1.5\n381;" + "x" * 1_000_000 + ";2\n",
                    encoding="utf-8")
    # when it is imported
    with pytest.raises(CommandError) as error:
        run(str(path), *BASE, "--map", "code=Code,name=Name,rate=Rate")
    # then the command says which line and why, and nothing is written
    assert "deck.csv: line 3: field larger than field limit" in str(error.value)
    assert not Tariff.objects.exists()
