"""Access rate decks (R5.2, R5.3): real .mdb and .accdb files, read with mdbtools or, where
it is absent, with the access-parser package; imported through `manage.py import_tariffs`
and the wizard. The files and the program that wrote them: tests/data/import/access/."""
import datetime
import importlib.util
import json
import shutil
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from tariffs.importers import readers
from tariffs.importers.mapping import ImportOptions, mapping_parse, rows_map
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tests.conftest import TESTDATA, needs

pytestmark = pytest.mark.django_db

ACCESS = TESTDATA / "import" / "access"
FILES = ["rates.mdb", "rates.accdb"]          # both readers read these
NEWER = "rates2010.accdb"                     # mdbtools only
READERS = ["mdbtools", "access-parser"]
NOW = datetime.datetime(2024, 6, 1, 12, tzinfo=datetime.UTC)
TODAY = datetime.date(2024, 6, 1)
BASE = ["--operator", "Kyivstar", "--plan", "Standard", "--currency", "UAH"]

TARIFFS_MAP = "code=Код,name=Направление,rate=Тариф,calltype=Тип,tariff_valid_from=Действует с"
# Each tariff (named after the row's direction): its codes, price per minute, valid-from.
TARIFFS_IMPORTED = {
    "Украина": (["380"], Decimal("1.250000"), datetime.date(2024, 1, 1), 5),
    "Украина, Киев": (["38044"], Decimal("0.450000"), datetime.date(2024, 1, 1), 5),
    "Украина моб. Vodafone": (["38050", "38051", "38052", "38053"], Decimal("2.100000"),
                              datetime.date(2024, 2, 15), 6),
    "Украина моб. Киевстар": (["38063", "38067", "38068"], Decimal("1.987500"),
                              datetime.date(2024, 2, 15), 6),
    "Россия, Москва": (["7495"], Decimal("3.333300"), datetime.date(2024, 3, 1), 5),
    "Польша": (["48"], Decimal("0.089900"), datetime.date(2024, 3, 31), 5),
}
TARIFFS_REJECTED = [{"row": 6, "reason": "empty code"},
                    {"row": 8, "reason": "code 38044 is already in row 3"},
                    {"row": 9, "reason": "empty rate"}]

RATES_CODES = {"United Kingdom": ["44"], "United Kingdom London": ["4420"],
               "United Kingdom Mobile": ["447"],
               "USA New Jersey": ["1201", "1202", "1203", "1212"]}
RATES_DUPLICATE = [{"row": 6, "reason": "empty code"},
                   {"row": 7, "reason": "code 4420 is already in row 3"}]
# The Rates table's three rate columns: Double, text (a decimal comma, an "n/a") and Decimal.
RATES_BY_COLUMN = {
    "Peak": ({"United Kingdom": Decimal("0.045000"), "United Kingdom London": Decimal("0.012000"),
              "United Kingdom Mobile": Decimal("0.087500"), "USA New Jersey": Decimal("0.009900")},
             RATES_DUPLICATE),
    "Offpeak": ({"United Kingdom": Decimal("0.030000"), "United Kingdom London": Decimal("0.010000"),
                 "USA New Jersey": Decimal("0.008500")},
                [{"row": 4, "reason": "rate 'n/a' is not a number"}, *RATES_DUPLICATE]),
    "Setup": ({"United Kingdom": Decimal("0.050000"), "United Kingdom London": Decimal("0.050000"),
               "United Kingdom Mobile": Decimal("0.125000"), "USA New Jersey": Decimal("12.500000")},
              RATES_DUPLICATE),
}


def have_mdbtools() -> bool:
    return bool(shutil.which("mdb-tables") and shutil.which("mdb-export"))


def have_access_parser() -> bool:
    return importlib.util.find_spec("access_parser") is not None


def use_reader(monkeypatch, reader: str) -> None:
    """Choose the reader as an admin would, through the environment; skip (fail under
    CI=true) when it is not installed."""
    if reader == "mdbtools":
        needs(have_mdbtools(), "needs mdbtools (Debian package mdbtools): mdb-tables, mdb-export")
    else:
        needs(have_access_parser(), "needs the Python package access-parser")
    monkeypatch.setenv(readers.ACCESS_READER_VARIABLE, reader)


def run(*args):
    out = StringIO()
    call_command("import_tariffs", *args, stdout=out)
    return json.loads(out.getvalue())


def tariffs_in_database() -> dict:
    plan = TariffPlan.objects.get(name="Standard")
    found = {}
    for tariff in Tariff.objects.all():
        codes = sorted(PhoneCode.objects.filter(tariff=tariff).values_list("code", flat=True))
        price = TariffPrice.objects.get(tariff=tariff, plan=plan).price_per_minute
        found[tariff.name] = (codes, price, tariff.valid_from, tariff.call_type)
    return found


# Tables -----------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", FILES)
def test_lists_the_user_tables_without_the_system_tables(monkeypatch, reader, name):
    # given
    use_reader(monkeypatch, reader)
    # when
    tables = readers.sheet_names(ACCESS / name)
    # then
    assert tables == ["Тарифы", "Rates"]


def test_mdbtools_lists_the_tables_of_an_access_2010_file(monkeypatch):
    use_reader(monkeypatch, "mdbtools")
    assert readers.sheet_names(ACCESS / NEWER) == ["Тарифы", "Rates"]


@pytest.mark.parametrize("reader", READERS)
def test_rows_come_in_column_order_with_the_header_first(monkeypatch, reader):
    # given
    use_reader(monkeypatch, reader)
    # when
    rows = readers.read_rows(ACCESS / "rates.accdb", "Rates")
    # then
    assert rows[0] == ["Code", "Destination", "Peak", "Offpeak", "Setup", "Valid From"]
    assert [row[0] for row in rows[1:]] == ["44", "4420", "447", "1201-1203, 1212", "", "4420"]
    assert [row[3] for row in rows[1:]] == ["0.03", "0,01", "n/a", "0.0085", "0.4", "0.011"]
    assert [row[4] for row in rows[1:]] == ["0.0500", "0.0500", "0.1250", "12.5000", "0.0000",
                                            "0.0500"]


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("table", ["Тарифы", "Rates"], ids=["tariffs", "rates"])
def test_both_readers_give_the_same_rows_once_mapped(monkeypatch, name, table):
    # given both readers
    needs(have_mdbtools(), "needs mdbtools (Debian package mdbtools): mdb-tables, mdb-export")
    needs(have_access_parser(), "needs the Python package access-parser")
    if table == "Тарифы":
        mapping = mapping_parse(TARIFFS_MAP)
    else:
        mapping = mapping_parse("code=Code,name=Destination,rate=Peak,tariff_valid_from=Valid From")
    options = ImportOptions(operator="O", plan="P", currency="UAH", today=TODAY)
    mapped = {}
    for reader in READERS:
        # when
        monkeypatch.setenv(readers.ACCESS_READER_VARIABLE, reader)
        rows = readers.read_rows(ACCESS / name, table)
        mapped[reader] = rows_map(rows, mapping=mapping, options=options)
    # then the codes, names, rates, dates and rejects are the same
    assert mapped["mdbtools"].rows == mapped["access-parser"].rows
    assert mapped["mdbtools"].rejected == mapped["access-parser"].rejected
    assert len(mapped["mdbtools"].rows) == {"Тарифы": 11, "Rates": 7}[table]


# The command ------------------------------------------------------------------------------

@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", FILES)
def test_command_imports_the_russian_table_with_exact_rates_and_rejects(monkeypatch, reader, name):
    # given
    use_reader(monkeypatch, reader)
    # when the first table (the default) is imported
    result = run(str(ACCESS / name), *BASE, "--map", TARIFFS_MAP)
    # then
    assert result == {"codes_added": 11, "tariffs_added": 6, "updated": 0, "skipped": 0,
                      "rejected": TARIFFS_REJECTED, "dry_run": False}
    assert tariffs_in_database() == TARIFFS_IMPORTED
    assert set(PhoneCode.objects.values_list("valid_from", flat=True)) == {TODAY}


@time_machine.travel(NOW, tick=False)
def test_command_imports_an_access_2010_file_with_mdbtools(monkeypatch):
    use_reader(monkeypatch, "mdbtools")
    result = run(str(ACCESS / NEWER), *BASE, "--map", TARIFFS_MAP, "--sheet", "Тарифы")
    assert (result["codes_added"], result["rejected"]) == (11, TARIFFS_REJECTED)
    assert tariffs_in_database() == TARIFFS_IMPORTED


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("column", sorted(RATES_BY_COLUMN))
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", FILES)
def test_command_imports_the_rates_table_by_its_double_text_or_decimal_rate(monkeypatch, reader,
                                                                           name, column):
    # given
    use_reader(monkeypatch, reader)
    prices, rejected = RATES_BY_COLUMN[column]
    # when
    result = run(str(ACCESS / name), *BASE, "--sheet", "Rates",
                 "--map", f"code=Code,name=Destination,rate={column},tariff_valid_from=Valid From")
    # then
    assert result["rejected"] == rejected
    assert result["tariffs_added"] == len(prices)
    assert result["codes_added"] == sum(len(RATES_CODES[name]) for name in prices)
    assert tariffs_in_database() == {
        tariff: (RATES_CODES[tariff], price, datetime.date(2024, 5, 1), None)
        for tariff, price in prices.items()}


# Errors -----------------------------------------------------------------------------------

def test_access_parser_refuses_an_access_2010_file_naming_the_format_and_mdbtools(monkeypatch):
    # given
    use_reader(monkeypatch, "access-parser")
    # when / then
    with pytest.raises(CommandError, match=r"rates2010.accdb: Access 2010 file \(format 0x0103\); "
                                           r"access-parser reads only .* install mdbtools"):
        run(str(ACCESS / NEWER), *BASE, "--map", TARIFFS_MAP)
    assert not Operator.objects.exists()


@pytest.mark.parametrize("reader", READERS)
def test_a_file_that_is_not_an_access_database_fails_clearly(monkeypatch, tmp_path, reader):
    # given a text file named .mdb
    use_reader(monkeypatch, reader)
    path = tmp_path / "deck.mdb"
    path.write_text("Code;Rate\n380;1\n" * 200)
    # when / then
    message = "not an Access database" if reader == "access-parser" else "mdb-tables failed"
    with pytest.raises(CommandError, match=message):
        run(str(path), *BASE, "--map", "code=A,rate=B")
    assert not Operator.objects.exists()


@pytest.mark.parametrize("reader", READERS)
def test_a_table_the_file_does_not_have_is_named_with_the_tables_it_has(monkeypatch, reader):
    use_reader(monkeypatch, reader)
    with pytest.raises(CommandError, match="no table 'Prices'; the tables are Тарифы, Rates"):
        run(str(ACCESS / "rates.mdb"), *BASE, "--sheet", "Prices", "--map", "code=A,rate=B")


def test_an_unknown_reader_setting_is_refused(monkeypatch):
    monkeypatch.setenv(readers.ACCESS_READER_VARIABLE, "odbc")
    with pytest.raises(CommandError, match="TARISCOPE_ACCESS_READER is 'odbc'; it must be one of "
                                           "auto, mdbtools, access-parser"):
        run(str(ACCESS / "rates.mdb"), *BASE, "--map", TARIFFS_MAP)


@time_machine.travel(NOW, tick=False)
def test_auto_falls_back_to_access_parser_when_mdbtools_is_not_on_the_path(monkeypatch, tmp_path):
    # given no mdbtools on the PATH and the default (auto) setting
    needs(have_access_parser(), "needs the Python package access-parser")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(readers.ACCESS_READER_VARIABLE, raising=False)
    # when
    chosen = readers.access_reader()
    result = run(str(ACCESS / "rates.accdb"), *BASE, "--map", TARIFFS_MAP)
    # then
    assert chosen == "access-parser"
    assert (result["codes_added"], result["rejected"]) == (11, TARIFFS_REJECTED)


def test_auto_prefers_mdbtools(monkeypatch):
    needs(have_mdbtools(), "needs mdbtools (Debian package mdbtools): mdb-tables, mdb-export")
    monkeypatch.delenv(readers.ACCESS_READER_VARIABLE, raising=False)
    assert readers.access_reader() == "mdbtools"


def test_mdbtools_chosen_but_not_on_the_path_fails_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(readers.ACCESS_READER_VARIABLE, "mdbtools")
    with pytest.raises(CommandError, match=r"needs mdb-tables \(the mdbtools package\)"):
        run(str(ACCESS / "rates.mdb"), *BASE, "--map", TARIFFS_MAP)


# The wizard -------------------------------------------------------------------------------

def wizard_step(name, import_id):
    return reverse(f"tariff_import_{name}", kwargs={"import_id": import_id})


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("reader", READERS)
def test_wizard_imports_an_accdb_table_chosen_from_its_list(client, monkeypatch, reader):
    # given a user who may add tariffs
    use_reader(monkeypatch, reader)
    user = User.objects.create_user("tariffs", password="pw-tariffs-1")
    user.user_permissions.add(Permission.objects.get(codename="add_tariff"))
    client.force_login(user)
    # when the .accdb file is uploaded and its first table mapped by column letters
    response = client.post(reverse("tariff_import"), {
        "file_type": "accdb",
        "file": SimpleUploadedFile("rates.accdb", (ACCESS / "rates.accdb").read_bytes())})
    assert response.status_code == 302, response.content.decode()[:2000]
    import_id = response.url.split("/")[-3]
    assert client.session["tariff_imports"][import_id]["sheets"] == ["Тарифы", "Rates"]
    client.post(wizard_step("sheet", import_id), {"sheet": "Тарифы"})
    response = client.post(wizard_step("mapping", import_id), {
        "action": "next", "has_header": "on", "code": "B", "name": "C", "rate": "D",
        "tariff_valid_from": "E", "calltype": "F"})
    assert response.status_code == 302, response.content.decode()[:3000]
    response = client.post(wizard_step("options", import_id), {
        "new_operator": "Kyivstar", "currency": "UAH", "new_plan": "Standard",
        "round_to_minutes": "on", "date_order": "dmy"})
    # then the result page lists the rejected rows, and the database has the tariffs
    assert response.status_code == 302 and response.url == wizard_step("result", import_id)
    page = client.get(response.url).content.decode()
    assert '<td class="num">6</td><td>empty code</td>' in page
    assert '<td class="num">8</td><td>code 38044 is already in row 3</td>' in page
    assert tariffs_in_database() == TARIFFS_IMPORTED
