"""R5.1, R5.4: copying an operator and the bulk operations on tariffs valid from a date
(tariffs/services.py, `manage.py copy_operator`, `manage.py tariffs_bulk`, the admin)."""
import json
from datetime import date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from billing.models import Call
from observers.pipeline import profile_ingest
from tariffs.choices import CallType, Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPrice, TimeBand
from tariffs.rating import rate
from tariffs.selectors import tariff_index_build
from tariffs.services import (
    operator_copy,
    tariffs_delete_valid_from,
    tariffs_move_valid_from,
    tariffs_set_account_description,
)
from tests.factories import (
    DeviceFactory,
    ObserverProfileFactory,
    OperatorFactory,
    PhoneNumberFactory,
    TariffPlanFactory,
    priced_code,
)
from tests.observers.threecx_cdr import cdr_file, cdr_line

JAN = date(2024, 1, 1)
FEB = date(2024, 2, 1)
MAR = date(2024, 3, 1)


def version(operator) -> int:
    return Operator.objects.get(pk=operator.pk).rates_version


class Deck:
    """Carrier Kyivstar (UAH) with a weekend band, in plans Standard and Business:

    Kyiv     38044       from JAN  0.50/min (weekend 0.25), Business 0.40
    Ukraine  380         from JAN  1.00/min
    Mobile   38050,38067 from JAN  2.00/min + 0.10 fee, 30/6, 3 s free, min 30 s, mobile,
                                   "Mobile calls"; code 38067 only from FEB
    Kyiv     38044       from MAR  0.60/min (next year's price), valid to 2024-12-31
    Incoming 380         from JAN  0.05/min, direction incoming
    and carrier Lifecell with one tariff Any (380) from JAN at 0.90/min.
    """

    def __init__(self):
        self.operator = OperatorFactory(name="Kyivstar", currency="UAH", description="SIP")
        self.standard = TariffPlanFactory(name="Standard")
        self.business = TariffPlanFactory(name="Business")
        self.weekend = TimeBand.objects.create(operator=self.operator, name="Weekend",
                                               weekdays="67", priority=1)
        op, std = self.operator, self.standard
        self.kyiv = priced_code(operator=op, plan=std, code="38044", price="0.50", name="Kyiv",
                                valid_from=JAN)
        TariffPrice.objects.create(tariff=self.kyiv.tariff, plan=std, band=self.weekend,
                                   price_per_minute=Decimal("0.25"))
        TariffPrice.objects.create(tariff=self.kyiv.tariff, plan=self.business,
                                   price_per_minute=Decimal("0.40"))
        self.ukraine = priced_code(operator=op, plan=std, code="380", price="1.00",
                                   name="Ukraine", valid_from=JAN)
        self.mobile = priced_code(operator=op, plan=std, code="38050", price="2.00",
                                  name="Mobile", valid_from=JAN, first=30, step=6, fee="0.10",
                                  call_type=CallType.MOBILE)
        Tariff.objects.filter(pk=self.mobile.tariff_id).update(
            free_seconds=3, min_seconds=30, account_description="Mobile calls")
        PhoneCode.objects.create(operator=op, code="38067", name="Mobile", valid_from=FEB,
                                 tariff=self.mobile.tariff, call_type=CallType.MOBILE)
        self.kyiv_next = priced_code(operator=op, plan=std, code="38044", price="0.60",
                                     tariff_name="Kyiv", name="Kyiv", valid_from=MAR,
                                     valid_to=date(2024, 12, 31))
        self.incoming = priced_code(operator=op, plan=std, code="380", price="0.05",
                                    tariff_name="Incoming", valid_from=JAN,
                                    direction=Direction.INCOMING)
        self.other = OperatorFactory(name="Lifecell")
        self.any = priced_code(operator=self.other, plan=std, code="380", price="0.90",
                               name="Any", valid_from=JAN)


@pytest.fixture
def deck(db):
    return Deck()


CASES = [
    # (number, local start, direction, duration)
    ("380441234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 61),  # weekday Kyiv
    ("380441234567", datetime(2024, 1, 20, 10, 0), Direction.OUTGOING, 61),  # weekend band
    ("380441234567", datetime(2024, 6, 17, 10, 0), Direction.OUTGOING, 61),  # MAR tariff
    ("380501234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 2),  # free seconds
    ("380501234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 31),  # 30/6 + fee
    ("380671234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 40),  # before FEB
    ("380671234567", datetime(2024, 2, 17, 10, 0), Direction.OUTGOING, 40),  # from FEB
    ("380321234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 600),
    ("380441234567", datetime(2024, 1, 17, 10, 0), Direction.INCOMING, 120),
    ("442071234567", datetime(2024, 1, 17, 10, 0), Direction.OUTGOING, 60),  # no code
]


def outcomes(operator, plan):
    """What rating CASES at `operator` in `plan` gives, without ids or the operator's name."""
    index = tariff_index_build(operator=operator, plan=plan)
    out = []
    for number, at, direction, duration in CASES:
        d = rate(index, number=number, at=at, direction=direction, duration=duration)
        out.append((d.cost, d.currency, d.billable_seconds, d.band and d.band.name,
                    d.entry and (d.entry.code, d.entry.tariff_name, d.entry.call_type,
                                 d.entry.valid_from, d.entry.valid_to),
                    d.rule if d.entry else None))
    return out


# --- operator_copy ---------------------------------------------------------------------

def test_copy_rates_every_call_as_the_original_does(deck):
    # given the Kyivstar deck
    # when it is copied
    copy = operator_copy(source=deck.operator, name="Kyivstar 2025")
    # then the copy rates each case as the original in both plans
    for plan in (deck.standard, deck.business):
        assert outcomes(copy, plan) == outcomes(deck.operator, plan)
    # and some of those outcomes are real prices (the comparison is not of empty decks):
    # weekday Kyiv 120 s * 0.50 = 1.00; weekend 120 s * 0.25 = 0.50; mobile 31 s ->
    # 30 + 6 = 36 s * 2.00 / 60 + 0.10 = 1.30
    costs = [c[0] for c in outcomes(copy, deck.standard)]
    assert costs[:5] == [Decimal("1.00"), Decimal("0.50"), Decimal("1.20"), Decimal("0.00"),
                         Decimal("1.30")]
    assert (copy.currency, copy.description) == ("UAH", "SIP")


def test_copy_holds_every_row_once_and_bumps_its_version(deck):
    # when the deck is copied
    copy = operator_copy(source=deck.operator, name="Copy")
    # then it has its own bands, tariffs (all fields), prices and codes
    assert copy.bands.count() == 1
    fields = ["name", "direction", "call_type", "valid_from", "valid_to", "account_description",
              "first_interval", "next_interval", "free_seconds", "min_seconds"]
    rows = sorted(deck.operator.tariffs.values_list(*fields))
    assert sorted(copy.tariffs.values_list(*fields)) == rows
    assert TariffPrice.objects.filter(tariff__operator=copy).count() == 7
    assert TariffPrice.objects.get(tariff__operator=copy, band__isnull=False).band.operator == copy
    code_fields = ["code", "name", "call_type", "category", "valid_from", "valid_to",
                   "tariff__name", "tariff__valid_from"]
    assert sorted(copy.codes.values_list(*code_fields)) == sorted(
        deck.operator.codes.values_list(*code_fields))
    assert PhoneCode.objects.filter(operator=copy).exclude(tariff__operator=copy).count() == 0
    assert copy.rates_version == 1


def test_changing_the_copy_leaves_the_original_alone(deck):
    # given a copy
    copy = operator_copy(source=deck.operator, name="Copy")
    before = outcomes(deck.operator, deck.standard)
    # when the copy's Kyiv price, a code and its band change, and a tariff is deleted
    TariffPrice.objects.filter(tariff__operator=copy, band=None, tariff__name="Kyiv",
                               plan=deck.standard).update(price_per_minute=Decimal("9.00"))
    copy.codes.filter(code="38050").update(code="38099")
    copy.bands.update(weekdays="7")
    copy.tariffs.filter(name="Ukraine").delete()
    # then the original rates as before and keeps all its rows
    assert outcomes(deck.operator, deck.standard) == before
    assert deck.operator.tariffs.count() == 5 and deck.operator.codes.count() == 6


def test_copy_in_another_currency_keeps_the_numbers(deck):
    copy = operator_copy(source=deck.operator, name="Kyivstar EUR", currency="EUR")
    decision = rate(tariff_index_build(operator=copy, plan=deck.standard),
                    number="380441234567", at=datetime(2024, 1, 17, 10), direction=0,
                    duration=61)
    assert (decision.cost, decision.currency) == (Decimal("1.00"), "EUR")


@pytest.mark.parametrize(("name", "currency"), [("Lifecell", None), ("New", "euro")])
def test_copy_refuses_a_taken_name_or_a_bad_currency(deck, name, currency):
    with pytest.raises(ValidationError):
        operator_copy(source=deck.operator, name=name, currency=currency)
    assert Operator.objects.count() == 2


# --- R5.4 bulk operations ----------------------------------------------------------------

def test_set_description_of_all_tariffs_valid_from_a_date(deck):
    # given Kyivstar's 4 JAN tariffs (Kyiv, Ukraine, Mobile, Incoming), Lifecell's 1
    versions = version(deck.operator), version(deck.other)
    # when the description of every JAN tariff is set
    count = tariffs_set_account_description(valid_from=JAN, description="Calls")
    # then 5 tariffs carry it, the MAR Kyiv does not, and both operators are bumped
    assert count == 5
    assert Tariff.objects.filter(account_description="Calls").count() == 5
    assert Tariff.objects.get(pk=deck.kyiv_next.tariff_id).account_description == ""
    assert (version(deck.operator), version(deck.other)) == (versions[0] + 1, versions[1] + 1)


def test_set_description_of_one_operator_leaves_the_others(deck):
    other_version = version(deck.other)
    count = tariffs_set_account_description(valid_from=JAN, description="Calls",
                                            operator=deck.other)
    assert count == 1
    assert list(Tariff.objects.filter(account_description="Calls")) == [deck.any.tariff]
    assert version(deck.other) == other_version + 1
    with pytest.raises(ValueError, match="more than 200"):
        tariffs_set_account_description(valid_from=JAN, description="x" * 201)


def test_move_valid_from_moves_tariffs_and_their_codes_of_that_date(deck):
    # given Kyivstar's 4 JAN tariffs; Mobile's code 38067 starts in FEB, the rest in JAN
    before = version(deck.operator)
    lifecell = version(deck.other)
    # when Kyivstar's JAN tariffs move to 2024-01-15
    new = date(2024, 1, 15)
    count = tariffs_move_valid_from(old=JAN, new=new, operator=deck.operator)
    # then the 4 tariffs and their 4 JAN codes start on the 15th; 38067 stays in FEB
    assert count == 4
    assert set(deck.operator.tariffs.values_list("valid_from", flat=True)) == {new, MAR}
    codes = dict(deck.operator.codes.filter(tariff__valid_from=new).values_list(
        "code", "valid_from").order_by("code", "valid_from"))
    assert codes == {"380": new, "38044": new, "38050": new, "38067": FEB}
    assert deck.any.tariff.valid_from == JAN and version(deck.other) == lifecell
    assert version(deck.operator) == before + 1
    # and a call on the 10th is no longer priced, one on the 20th is
    index = tariff_index_build(operator=Operator.objects.get(pk=deck.operator.pk),
                               plan=deck.standard)
    assert rate(index, number="380321234567", at=date(2024, 1, 10), direction=0,
                duration=60).cost is None
    assert rate(index, number="380321234567", at=date(2024, 1, 20), direction=0,
                duration=60).cost == Decimal("1.00")


def test_move_is_refused_when_a_same_tariff_already_starts_on_the_new_date(deck):
    # given Kyiv valid from JAN and from MAR
    # when JAN's tariffs are moved to MAR
    with pytest.raises(ValueError, match=r"1 tariffs are already valid from 2024-03-01: "
                                         r"Kyivstar: Kyiv \(outgoing\)"):
        tariffs_move_valid_from(old=JAN, new=MAR)
    # then nothing moved
    assert Tariff.objects.filter(valid_from=JAN).count() == 5


def test_move_is_refused_when_a_tariff_would_end_before_it_starts(deck):
    with pytest.raises(ValueError, match="1 tariffs would end before 2025-01-01: Kyivstar: Kyiv"):
        tariffs_move_valid_from(old=MAR, new=date(2025, 1, 1))
    assert Tariff.objects.get(pk=deck.kyiv_next.tariff_id).valid_from == MAR


def test_move_is_refused_when_a_code_would_end_before_it_starts(deck):
    deck.ukraine.valid_to = date(2024, 1, 31)
    deck.ukraine.save()
    with pytest.raises(ValueError, match=r"1 codes would end before 2024-02-15: 380 "):
        tariffs_move_valid_from(old=JAN, new=date(2024, 2, 15), operator=deck.operator)
    assert deck.operator.tariffs.filter(valid_from=JAN).count() == 4


def test_move_to_the_same_date_or_from_an_empty_date_moves_nothing(deck):
    before = version(deck.operator)
    assert tariffs_move_valid_from(old=JAN, new=JAN) == 0
    assert tariffs_move_valid_from(old=date(2023, 5, 5), new=JAN) == 0
    assert version(deck.operator) == before


def test_delete_valid_from_deletes_tariffs_with_their_prices_and_codes(deck):
    # given Kyivstar's MAR Kyiv tariff (one price, one code) and its JAN tariffs
    before = version(deck.operator)
    # when the MAR tariffs are deleted
    count = tariffs_delete_valid_from(valid_from=MAR)
    # then that tariff, its price and its code are gone, the JAN ones are all there
    assert count == 1
    assert not Tariff.objects.filter(valid_from=MAR).exists()
    assert TariffPrice.objects.filter(tariff__operator=deck.operator).count() == 6
    assert deck.operator.codes.count() == 5
    assert version(deck.operator) == before + 1


def test_delete_valid_from_of_one_operator(deck):
    count = tariffs_delete_valid_from(valid_from=JAN, operator=deck.operator)
    assert count == 4
    assert list(Tariff.objects.filter(valid_from=JAN)) == [deck.any.tariff]
    assert deck.operator.codes.count() == 1  # the MAR Kyiv code
    assert tariffs_delete_valid_from(valid_from=JAN, operator=deck.operator) == 0


# --- commands ----------------------------------------------------------------------------

def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_copy_operator_command_prints_what_it_copied(deck):
    result = run("copy_operator", "Kyivstar", "Kyivstar EUR", "--currency", "EUR")
    copy = Operator.objects.get(name="Kyivstar EUR")
    assert result == {"operator": "Kyivstar EUR", "id": copy.pk, "source": "Kyivstar",
                      "currency": "EUR", "bands": 1, "tariffs": 5, "prices": 7, "codes": 6}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nobody", "X"], "no operator named 'Nobody'"),
        (["Kyivstar", "Lifecell"], "already exists"),
        (["Kyivstar", "X", "--currency", "eur"], "ISO 4217"),
    ],
)
def test_copy_operator_command_refusals(deck, args, message):
    with pytest.raises(CommandError, match=message):
        run("copy_operator", *args)


def test_tariffs_bulk_set_description_and_move_date_commands(deck):
    assert run("tariffs_bulk", "set-description", "--valid-from", "2024-01-01", "--text",
               "Calls", "--operator", "Lifecell") == {
        "operation": "set-description", "operator": "Lifecell", "valid_from": "2024-01-01",
        "tariffs": 1}
    assert run("tariffs_bulk", "move-date", "--from", "2024-03-01", "--to", "2024-04-01") == {
        "operation": "move-date", "operator": None, "from": "2024-03-01", "to": "2024-04-01",
        "tariffs": 1}
    with pytest.raises(CommandError, match="already valid from 2024-04-01"):
        run("tariffs_bulk", "move-date", "--from", "2024-01-01", "--to", "2024-04-01")


def test_tariffs_bulk_delete_without_yes_only_counts_and_fails(deck):
    # when delete is run without --yes
    out = StringIO()
    with pytest.raises(CommandError, match="add --yes"):
        call_command("tariffs_bulk", "delete", "--valid-from", "2024-01-01", "--operator",
                     "Kyivstar", stdout=out, stderr=StringIO())
    # then it printed what would go and deleted nothing: 4 tariffs, their 6 prices (Kyiv 3,
    # Ukraine, Mobile, Incoming) and 5 codes (38044, 380, 38050, 38067, incoming 380)
    assert json.loads(out.getvalue()) == {
        "operation": "delete", "operator": "Kyivstar", "valid_from": "2024-01-01",
        "tariffs": 4, "prices": 6, "codes": 5, "deleted": False}
    assert deck.operator.tariffs.count() == 5
    # when it is run with --yes, they go
    assert run("tariffs_bulk", "delete", "--valid-from", "2024-01-01", "--operator",
               "Kyivstar", "--yes") == {
        "operation": "delete", "operator": "Kyivstar", "valid_from": "2024-01-01",
        "tariffs": 4, "deleted": True}
    assert deck.operator.tariffs.count() == 1


def test_tariffs_bulk_refuses_an_unknown_operator_or_date(deck):
    with pytest.raises(CommandError, match="no operator named"):
        run("tariffs_bulk", "delete", "--valid-from", "2024-01-01", "--operator", "X")
    with pytest.raises(CommandError, match="not a date"):
        run("tariffs_bulk", "delete", "--valid-from", "January")


# --- admin -------------------------------------------------------------------------------

def change_form_data(response) -> dict:
    """The POST data of an admin change form as it was rendered (with its inlines)."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is None:
                continue
            if isinstance(value, bool):
                if value:
                    data[form.add_prefix(name)] = "on"
                continue
            data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for form in formset.forms:
            add(form)
    return data


def test_admin_save_of_a_price_bumps_the_version_and_the_next_ingest_uses_it(
        deck, admin_client, plain_http):
    # given a Kyiv 3CX rating at Kyivstar in Standard, and a June call ingested at the
    # MAR Kyiv tariff's 0.60/min
    device = DeviceFactory(default_operator=deck.operator, default_plan=deck.standard)
    PhoneNumberFactory(device=device, dn="101")
    profile = ObserverProfileFactory(device=device)
    profile_ingest(profile=profile, data=cdr_file(cdr_line(historyid="Call 1")))
    assert Call.objects.get().cost == Decimal("1.20")  # 61 s -> 120 s * 0.60 / 60
    before = version(deck.operator)
    # when that tariff's price in Standard is set to 0.80 on the tariff's admin page
    url = f"/admin/tariffs/tariff/{deck.kyiv_next.tariff_id}/change/"
    data = change_form_data(admin_client.get(url))
    [row] = [key for key, value in data.items()
             if key.endswith("-price_per_minute") and Decimal(value) == Decimal("0.60")]
    data[row] = "0.80"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["errors"]
    # then the operator's version is bumped and the next call is priced at 0.80:
    # 120 s * 0.80 / 60 = 1.60
    assert version(deck.operator) > before
    profile_ingest(profile=profile, data=cdr_file(cdr_line(historyid="Call 2")))
    assert Call.objects.get(source_key__startswith="Call 2|").cost == Decimal("1.60")


def test_tariff_price_inline_shows_the_band_and_only_the_operator_bands(deck, admin_client,
                                                                        plain_http):
    TimeBand.objects.create(operator=deck.other, name="Night")
    response = admin_client.get(f"/admin/tariffs/tariff/{deck.kyiv.tariff_id}/change/")
    formset = response.context["inline_admin_formsets"][0].formset
    assert list(formset.forms[0].fields["band"].queryset) == [deck.weekend]
    assert b"prices-0-band" in response.content


@pytest.mark.parametrize(
    ("model", "row", "field", "value"),
    [
        ("phonecode", lambda d: d.kyiv, "name", "Kyiv city"),
        ("timeband", lambda d: d.weekend, "priority", "5"),
        ("tariff", lambda d: d.kyiv.tariff, "next_interval", "1"),
    ],
)
def test_admin_save_and_delete_of_rates_rows_bump_the_version(deck, admin_client, plain_http,
                                                              model, row, field, value):
    obj = row(deck)
    url = f"/admin/tariffs/{model}/{obj.pk}/"
    before = version(deck.operator)
    data = change_form_data(admin_client.get(url + "change/"))
    data[field] = value
    assert admin_client.post(url + "change/", data).status_code == 302
    assert version(deck.operator) == before + 1
    assert admin_client.post(url + "delete/", {"post": "yes"}).status_code == 302
    assert version(deck.operator) == before + 2
    assert not type(obj).objects.filter(pk=obj.pk).exists()


def test_admin_moving_a_code_to_another_operator_bumps_both(deck, admin_client, plain_http):
    # given the Kyiv code of Kyivstar open in the admin
    url = f"/admin/tariffs/phonecode/{deck.kyiv.pk}/change/"
    versions = version(deck.operator), version(deck.other)
    data = change_form_data(admin_client.get(url))
    # when it is moved to Lifecell, under Lifecell's tariff
    data["operator"] = deck.other.pk
    data["tariff"] = deck.any.tariff_id
    assert admin_client.post(url, data).status_code == 302
    # then both carriers' indexes are rebuilt
    assert (version(deck.operator), version(deck.other)) == (versions[0] + 1, versions[1] + 1)


def test_admin_refuses_a_code_whose_tariff_belongs_to_another_operator(deck, admin_client,
                                                                        plain_http):
    # given the Kyiv code open in the admin
    url = f"/admin/tariffs/phonecode/{deck.kyiv.pk}/change/"
    data = change_form_data(admin_client.get(url))
    # when only its operator is changed (the tariff stays Kyivstar's)
    data["operator"] = deck.other.pk
    response = admin_client.post(url, data)
    # then the form says why, and nothing changes
    assert response.status_code == 200
    assert "The tariff belongs to another operator." in response.content.decode()
    assert PhoneCode.objects.get(pk=deck.kyiv.pk).operator == deck.operator


def test_admin_bulk_delete_of_codes_bumps_their_operators(deck, admin_client, plain_http):
    versions = version(deck.operator), version(deck.other)
    response = admin_client.post("/admin/tariffs/phonecode/", {
        "action": "delete_selected", "_selected_action": [deck.kyiv.pk, deck.any.pk],
        "post": "yes"})
    assert response.status_code == 302
    assert (version(deck.operator), version(deck.other)) == (versions[0] + 1, versions[1] + 1)


def test_admin_operator_edit_keeps_a_newer_version_and_bumps_it(deck, admin_client, plain_http):
    # given the operator's page opened, then its rates changed by another process
    url = f"/admin/tariffs/operator/{deck.operator.pk}/change/"
    data = change_form_data(admin_client.get(url))
    Operator.objects.filter(pk=deck.operator.pk).update(rates_version=100)
    # when its currency is changed and saved
    data["currency"] = "EUR"
    assert admin_client.post(url, data).status_code == 302
    # then the version goes on from the newer one (the currency is in every compiled entry)
    assert version(deck.operator) == 101
    assert Operator.objects.get(pk=deck.operator.pk).currency == "EUR"


def test_admin_copy_action_names_copies_in_turn(deck, admin_client, plain_http):
    for _ in range(3):
        response = admin_client.post("/admin/tariffs/operator/", {
            "action": "copy_operator", "_selected_action": [deck.operator.pk]}, follow=True)
    names = sorted(Operator.objects.filter(name__startswith="Kyivstar (").values_list(
        "name", flat=True))
    assert names == ["Kyivstar (copy 2)", "Kyivstar (copy 3)", "Kyivstar (copy)"]
    [message] = [str(m) for m in response.context["messages"]]
    assert message == "Copied Kyivstar as Kyivstar (copy 3)."
    assert Operator.objects.get(name="Kyivstar (copy 3)").tariffs.count() == 5


def test_admin_set_description_asks_for_the_text_then_sets_it(deck, admin_client, plain_http):
    # given one of Kyivstar's JAN tariffs selected
    action = {"action": "set_account_description", "_selected_action": [deck.ukraine.tariff_id]}
    # when the action is chosen, a page asks for the text and says what it will change
    page = admin_client.post("/admin/tariffs/tariff/", action)
    assert page.status_code == 200
    assert b"Kyivstar: 4 tariffs valid from 2024-01-01" in page.content
    assert Tariff.objects.filter(account_description="Calls").count() == 0
    # when the text is given
    response = admin_client.post("/admin/tariffs/tariff/", {
        **action, "apply": "1", "description": "Calls"}, follow=True)
    # then every Kyivstar JAN tariff has it, Lifecell's does not
    assert set(Tariff.objects.filter(account_description="Calls").values_list(
        "operator__name", flat=True)) == {"Kyivstar"}
    assert Tariff.objects.filter(account_description="Calls").count() == 4
    assert [str(m) for m in response.context["messages"]] == ["Set the description of 4 tariffs."]


def test_admin_delete_valid_from_confirms_then_deletes(deck, admin_client, plain_http):
    action = {"action": "delete_valid_from", "_selected_action": [deck.kyiv_next.tariff_id]}
    page = admin_client.post("/admin/tariffs/tariff/", action)
    assert b"Kyivstar: 1 tariff valid from 2024-03-01" in page.content
    assert Tariff.objects.filter(valid_from=MAR).exists()
    before = version(deck.operator)
    response = admin_client.post("/admin/tariffs/tariff/", {**action, "apply": "1"}, follow=True)
    assert not Tariff.objects.filter(valid_from=MAR).exists()
    assert version(deck.operator) == before + 1
    assert [str(m) for m in response.context["messages"]] == [
        "Deleted 1 tariffs with their prices and codes."]


def test_admin_move_refusal_is_shown_and_changes_nothing(deck, admin_client, plain_http):
    response = admin_client.post("/admin/tariffs/tariff/", {
        "action": "move_valid_from", "_selected_action": [deck.kyiv.tariff_id],
        "apply": "1", "new_date": "2024-03-01"}, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Nothing changed: 1 tariffs are already valid from 2024-03-01")
    assert deck.operator.tariffs.filter(valid_from=JAN).count() == 4


def test_admin_lists_time_bands(deck, admin_client, plain_http):
    response = admin_client.get("/admin/tariffs/timeband/")
    assert response.status_code == 200 and b"Weekend" in response.content


def test_admin_rates_pages_open(deck, admin_client, plain_http):
    for url in ("/admin/tariffs/tariff/", "/admin/tariffs/phonecode/",
                "/admin/tariffs/operator/", "/admin/tariffs/timeband/add/",
                f"/admin/tariffs/operator/{deck.operator.pk}/change/"):
        assert admin_client.get(url).status_code == 200, url
