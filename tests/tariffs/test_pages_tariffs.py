"""R4.1-R4.3, R11.1: an operator's tariffs, codes and time bands on the Tariffs pages,
rendered for real: the tariffs with their prices in each plan, increments, fee, free and
minimum seconds and description; a tariff made and edited with its prices (and a call
rated afterwards gets the new price: the compiled index is rebuilt); inline errors that
store nothing; codes with their history by valid-from (a later date adds a period rather
than overwriting), searched and paged in a fixed number of queries; time bands with their
prices; deletes that say what they touch; and the rights of a read-only user."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Call
from tariffs.choices import CallType, Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
from tariffs.rating import rate
from tariffs.selectors import tariff_index_get
from tests.factories import TariffPlanFactory, priced_code
from tests.tariffs.pages import (
    ALL,
    READ,
    field_errors,
    login,
    page,
    row_of,
    rows,
    text,
)

pytestmark = pytest.mark.django_db

KYIV_NUMBER = "380441234567"
JUNE = date(2024, 6, 17)


@pytest.fixture
def admin(client, db):
    return login(client, "tamara", *ALL)


@pytest.fixture
def viewer(client, db):
    return login(client, "viewer", *READ)


def cost(site, number=KYIV_NUMBER, *, at=JUNE, duration=61, plan=None):
    """What a call of `duration` seconds to `number` costs at the site's operator now, as
    the collector would rate it: through the process's cached, compiled index."""
    operator = Operator.objects.get(pk=site.operator.pk)  # with its current rates_version
    index = tariff_index_get(operator=operator, plan=plan or site.plan)
    return rate(index, number=number, at=at, direction=Direction.OUTGOING,
                duration=duration).cost


def tariff_form(site, **fields) -> dict:
    """The tariff form as sent: Kyiv business hours, 30/6, in the site's plan at 0.45."""
    data = {"name": "Kyiv business", "direction": "0", "call_type": "3",
            "valid_from": "2020-01-01", "valid_to": "", "account_description": "Local calls",
            "first_interval": "30", "next_interval": "6", "free_seconds": "3",
            "min_seconds": "30", f"price_{site.plan.pk}_0": "0.45",
            f"fee_{site.plan.pk}_0": "0.10"}
    data.update(fields)
    return data


# -- the tariffs of an operator

def test_the_tariffs_page_shows_each_tariff_with_its_price_in_each_plan(admin, site):
    # given Ukrtelecom's Kyiv (0.50 in Office, 0.40 + 0.05 fee in Business) and Ukraine
    business = TariffPlanFactory(name="Business")
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=business,
                               price_per_minute=Decimal("0.4"), connection_fee=Decimal("0.05"))
    Tariff.objects.filter(pk=site.kyiv.tariff_id).update(
        first_interval=30, next_interval=6, free_seconds=3, min_seconds=30,
        account_description="Local calls", call_type=CallType.LOCAL)
    # when the operator's page is opened
    html = page(admin.get(f"/tariffs/operators/{site.operator.pk}/"))
    # then each tariff is a row with its terms and a price column per plan
    assert "Business Office" in text(html)  # the plans' columns, by name
    assert row_of(html, "Kyiv") == (
        "Kyiv outgoing local 2020-01-01 — 30/6 3 30 Local calls 1 0.40 +0.05 0.50 edit delete")
    assert row_of(html, "Ukraine") == (
        "Ukraine outgoing — 2020-01-01 — 60/60 0 0 — 1 — 1.00 edit delete")


def test_the_tariffs_page_is_searched_by_name_and_day(admin, site):
    # given Kyiv valid from 2020 and a Kyiv of next year's price from 2025
    priced_code(operator=site.operator, plan=site.plan, code="38044", price="0.60",
                name="Kyiv", valid_from=date(2025, 1, 1))
    # when the tariffs valid on a day of 2024 whose name holds "kyi" are asked for
    html = page(admin.get(f"/tariffs/operators/{site.operator.pk}/?q=kyi&day=2024-06-17"))
    # then only the 2020 Kyiv shows
    assert [r.split(" 1 ")[0] for r in rows(html)] == ["Kyiv outgoing — 2020-01-01 — 60/60 0 0 —"]


def test_the_tariffs_page_costs_a_fixed_number_of_queries(
        admin, site, django_assert_max_num_queries):
    # given 80 tariffs with a code each, priced in three plans
    plans = [site.plan, TariffPlanFactory(name="B"), TariffPlanFactory(name="C")]
    for n in range(80):
        code = priced_code(operator=site.operator, plan=site.plan, code=f"48{n:03d}",
                           price="1", tariff_name=f"T{n:03d}")
        for plan in plans[1:]:
            TariffPrice.objects.create(tariff=code.tariff, plan=plan,
                                       price_per_minute=Decimal("2"))
    # when its first page is opened, then a fixed number of queries serve it
    with django_assert_max_num_queries(9):
        html = page(admin.get(f"/tariffs/operators/{site.operator.pk}/"))
    assert len(rows(html)) == 50
    assert "page 1 of 2 (82 rows)" in text(html)
    assert row_of(html, "T007") == "T007 outgoing — 2020-01-01 — 60/60 0 0 — 1 2.00 2.00 1.00 edit delete"


# -- making and editing a tariff

def test_a_tariff_made_on_the_page_is_stored_with_its_prices_and_rates_calls(admin, site):
    # given a night band of Ukrtelecom
    night = TimeBand.objects.create(operator=site.operator, name="Night", weekdays="1234567",
                                    start_time="22:00", end_time="07:00")
    before = Operator.objects.get(pk=site.operator.pk).rates_version
    # when a tariff is sent with a base price and a night price, and a code added to it
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/tariffs/new/",
                          tariff_form(site, **{f"price_{site.plan.pk}_{night.pk}": "0.2"}))
    tariff = Tariff.objects.get(name="Kyiv business")
    admin.post(f"/tariffs/operators/{site.operator.pk}/codes/new/", {
        "code": "380442", "name": "Kyiv 2", "tariff": tariff.pk, "valid_from": "2020-01-01"})
    # then it is stored as sent, its prices too, and the operator's rates changed
    assert response["Location"] == f"/tariffs/operators/{site.operator.pk}/tariffs/{tariff.pk}/"
    assert (tariff.direction, tariff.call_type, tariff.valid_from, tariff.account_description,
            tariff.first_interval, tariff.next_interval, tariff.free_seconds,
            tariff.min_seconds) == (0, CallType.LOCAL, date(2020, 1, 1), "Local calls", 30, 6,
                                    3, 30)
    assert sorted((p.band_id or 0, p.price_per_minute, p.connection_fee)
                   for p in tariff.prices.all()) == [
        (0, Decimal("0.45"), Decimal("0.10")), (night.pk, Decimal("0.2"), Decimal("0"))]
    assert Operator.objects.get(pk=site.operator.pk).rates_version > before
    # and a call to 380442... at noon costs 0.45 × 42/60 (30 s then 6 s steps) + 0.10
    assert cost(site, "380442123456", at=datetime(2024, 6, 17, 12, 0),
                duration=40) == Decimal("0.42")
    # and at night, the band's 0.20 a minute, with no fee
    assert cost(site, "380442123456", at=datetime(2024, 6, 17, 23, 0),
                duration=60) == Decimal("0.20")


def test_a_price_edited_on_the_page_prices_the_next_call_at_it(admin, site):
    # given a call to Kyiv rated at 0.50 a minute, the compiled index cached
    assert cost(site) == Decimal("1.00")  # 61 s is two minutes
    # when the Kyiv tariff's price in Office is set to 0.75 on its edit page
    form = page(admin.get(f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/edit/"))
    assert f'name="price_{site.plan.pk}_0"' in form and 'value="0.5"' in form
    admin.post(f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/edit/",
               tariff_form(site, name="Kyiv", call_type="", account_description="",
                           first_interval="60", next_interval="60", free_seconds="0",
                           min_seconds="0", **{f"price_{site.plan.pk}_0": "0.75",
                                               f"fee_{site.plan.pk}_0": ""}))
    # then the next call is rated at the new price (the cached index was rebuilt)
    assert TariffPrice.objects.get(tariff=site.kyiv.tariff, plan=site.plan).price_per_minute \
        == Decimal("0.75")
    assert cost(site) == Decimal("1.50")


def test_a_price_typed_with_a_decimal_comma_in_ukrainian_is_taken(admin, site):
    # given a user whose pages are in Ukrainian
    url = f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/edit/"
    form = page(admin.get(url, HTTP_ACCEPT_LANGUAGE="uk"))
    # when the form shows Kyiv's price as Ukrainians write it, and 0,75 is sent back
    assert f'name="price_{site.plan.pk}_0" id="id_price_{site.plan.pk}_0" value="0,5"' in form
    admin.post(url, tariff_form(site, name="Kyiv", call_type="", **{
        f"price_{site.plan.pk}_0": "0,75", f"fee_{site.plan.pk}_0": "0,1"}),
        HTTP_ACCEPT_LANGUAGE="uk")
    # then the price is 0.75 with a fee of 0.10
    price = TariffPrice.objects.get(tariff=site.kyiv.tariff, plan=site.plan)
    assert (price.price_per_minute, price.connection_fee) == (Decimal("0.75"), Decimal("0.1"))


def test_emptying_a_plans_price_removes_the_tariffs_price_there(admin, site):
    # given Kyiv priced in Office
    # when its price is emptied
    admin.post(f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/edit/",
               tariff_form(site, name="Kyiv", **{f"price_{site.plan.pk}_0": "",
                                                 f"fee_{site.plan.pk}_0": ""}))
    # then it has no price in Office, and a Kyiv number falls to the Ukraine code's price
    assert not TariffPrice.objects.filter(tariff=site.kyiv.tariff).exists()
    assert cost(site) == Decimal("2.00")


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"price_{plan}_0": "-0.10"}, "price_{plan}_0", "greater than or equal to 0"),
    ({"fee_{plan}_0": "-1"}, "fee_{plan}_0", "greater than or equal to 0"),
    ({"first_interval": "0"}, "first_interval", "greater than or equal to 1"),
    ({"next_interval": ""}, "next_interval", "This field is required."),
    ({"valid_to": "2019-12-31"}, "valid_to", "The last day comes before the first"),
    ({"price_{plan}_0": "", "fee_{plan}_0": "0.10"}, "fee_{plan}_0",
     "A connection fee needs a price per minute."),
    ({"name": "Kyiv", "call_type": ""}, "valid_from",
     "Ukrtelecom already has a tariff Kyiv of this direction valid from 2020-01-01."),
    ({"price_{plan}_0": "abc"}, "price_{plan}_0", "Enter a number."),
])
def test_the_tariff_form_says_what_is_wrong_on_the_field_and_stores_nothing(
        admin, site, fields, field, message):
    # given the site's two tariffs and their prices
    stored = sorted(TariffPrice.objects.values_list("tariff_id", "price_per_minute"))
    # when a tariff with this mistake is sent
    sent = {k.format(plan=site.plan.pk): v for k, v in fields.items()}
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/tariffs/new/",
                          tariff_form(site, **sent))
    # then the form comes back with the reason under the field, and nothing is stored
    assert message in field_errors(page(response), field.format(plan=site.plan.pk))
    assert Tariff.objects.count() == 2
    assert sorted(TariffPrice.objects.values_list("tariff_id", "price_per_minute")) == stored


def test_the_tariff_page_shows_its_prices_per_plan_and_band_and_its_codes(admin, site):
    # given a weekend band priced at 0.25 for Kyiv
    weekend = TimeBand.objects.create(operator=site.operator, name="Weekend", weekdays="67")
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=site.plan, band=weekend,
                               price_per_minute=Decimal("0.25"))
    # when the Kyiv tariff's page is opened
    html = page(admin.get(f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/"))
    # then its prices are laid out by plan and band, and its code is listed
    assert row_of(html, "Office") == "Office 0.50 0.25"
    assert row_of(html, "38044").startswith("38044 Kyiv — — 2020-01-01 — in force")


def test_deleting_a_tariff_says_what_goes_and_which_calls_lose_the_link(admin, site):
    # given a call rated at the Kyiv tariff
    call = Call.objects.create(device=site.device, source_key="k", direction=Direction.OUTGOING,
                               start=datetime(2024, 6, 17, 9, tzinfo=UTC), duration=60,
                               operator=site.operator, tariff=site.kyiv.tariff,
                               cost=Decimal("0.50"), currency="UAH")
    url = f"/tariffs/operators/{site.operator.pk}/tariffs/{site.kyiv.tariff_id}/delete/"
    # when its delete page is opened
    html = page(admin.get(url))
    # then it says what goes and what loses the link, and nothing goes yet
    assert "It goes with its 1 prices and 1 codes." in text(html)
    assert row_of(html, "Calls") == "Calls tariff 1 keep their data, lose the link"
    assert Tariff.objects.filter(pk=site.kyiv.tariff_id).exists()
    # and when confirmed, the tariff goes with its code; the call keeps its cost
    admin.post(url)
    assert not Tariff.objects.filter(pk=site.kyiv.tariff_id).exists()
    assert not PhoneCode.objects.filter(code="38044").exists()
    call.refresh_from_db()
    assert (call.tariff_id, call.cost) == (None, Decimal("0.5000"))
    assert cost(site) == Decimal("2.00")  # Kyiv numbers now at the Ukraine code


# -- codes

def test_the_codes_page_shows_a_codes_history_by_valid_from(admin, site, settings):
    # given the Kyiv code moved to a dearer tariff from 2024-03-01 on the page
    settings.TIME_ZONE = "Europe/Kyiv"
    dear = Tariff.objects.create(operator=site.operator, name="Kyiv dear", valid_from=date(2020, 1, 1))
    TariffPrice.objects.create(tariff=dear, plan=site.plan, price_per_minute=Decimal("0.80"))
    response = admin.post(
        f"/tariffs/operators/{site.operator.pk}/codes/{site.kyiv.pk}/edit/", {
            "code": "38044", "name": "Kyiv", "tariff": dear.pk, "valid_from": "2024-03-01"})
    # then a new period was added and the earlier one kept, ending the day before
    periods = list(PhoneCode.objects.filter(code="38044").order_by("valid_from")
                   .values_list("tariff__name", "valid_from", "valid_to"))
    assert periods == [("Kyiv", date(2020, 1, 1), date(2024, 2, 29)),
                       ("Kyiv dear", date(2024, 3, 1), None)]
    assert response["Location"].endswith("/codes/?q=38044")
    # and the codes page shows both rows, the newest first, with their state today
    html = page(admin.get(response["Location"]))
    assert [r.rsplit(" edit", 1)[0] for r in rows(html)] == [
        "38044 Kyiv Kyiv dear outgoing — — 2024-03-01 — in force",
        "38044 Kyiv Kyiv outgoing — — 2020-01-01 2024-02-29 earlier"]
    # and calls are rated by the period of their day
    assert cost(site, at=date(2024, 2, 29)) == Decimal("1.00")
    assert cost(site, at=date(2024, 3, 1)) == Decimal("1.60")


def test_a_code_edited_at_its_own_date_is_corrected_in_place(admin, site):
    # when the Kyiv code's name is corrected, its valid-from unchanged
    admin.post(f"/tariffs/operators/{site.operator.pk}/codes/{site.kyiv.pk}/edit/", {
        "code": "38044", "name": "Kyiv city", "tariff": site.kyiv.tariff_id,
        "valid_from": "2020-01-01", "call_type": "3"})
    # then the same row holds it, and no other period was added
    code = PhoneCode.objects.get(code="38044")
    assert (code.pk, code.name, code.call_type) == (site.kyiv.pk, "Kyiv city", CallType.LOCAL)


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"code": "38044"}, "valid_from",
     "Code 38044 is already valid from 2020-01-01 (tariff Kyiv)"),
    ({"code": "+38044"}, "code", "Digits only"),
    ({"code": "38045", "valid_to": "2019-01-01"}, "valid_to", "The last day comes before the first"),
    ({"code": "38045", "valid_from": ""}, "valid_from", "This field is required."),
])
def test_the_code_form_says_what_is_wrong_on_the_field_and_stores_nothing(
        admin, site, form, field, message):
    # given the site's codes 38044 and 380, both valid from 2020-01-01
    # when a code with this mistake is sent to the Ukraine tariff
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/codes/new/", {
        "name": "x", "tariff": site.ukraine.tariff_id, "valid_from": "2020-01-01", **form})
    # then the reason is under the field and no code is stored
    assert message in field_errors(page(response), field)
    assert PhoneCode.objects.count() == 2


def test_the_same_code_on_the_same_date_is_allowed_for_the_other_direction(admin, site):
    # given an incoming tariff of Ukrtelecom
    incoming = Tariff.objects.create(operator=site.operator, name="Incoming",
                                     direction=Direction.INCOMING, valid_from=date(2020, 1, 1))
    # when code 38044 from the same date is added to it
    admin.post(f"/tariffs/operators/{site.operator.pk}/codes/new/", {
        "code": "38044", "tariff": incoming.pk, "valid_from": "2020-01-01"})
    # then it is stored: incoming and outgoing calls are priced apart
    assert PhoneCode.objects.filter(code="38044").count() == 2


def test_the_codes_are_searched_by_code_or_name_and_paged_in_a_fixed_number_of_queries(
        admin, site, django_assert_max_num_queries):
    # given 120 codes of Ukrtelecom (4800..4919, "Poland n"), each with an earlier period
    tariff = Tariff.objects.create(operator=site.operator, name="Poland", valid_from=date(2020, 1, 1))
    PhoneCode.objects.bulk_create(
        [PhoneCode(operator=site.operator, tariff=tariff, code=f"48{n:02d}", name=f"Poland {n}",
                   valid_from=date(2020, 1, 1), valid_to=date(2022, 12, 31)) for n in range(120)]
        + [PhoneCode(operator=site.operator, tariff=tariff, code=f"48{n:02d}", name=f"Poland {n}",
                     valid_from=date(2023, 1, 1)) for n in range(120)])
    url = f"/tariffs/operators/{site.operator.pk}/codes/"
    # when the codes' pages are opened, then each costs a fixed number of queries
    with django_assert_max_num_queries(8):
        first = page(admin.get(url))
    with django_assert_max_num_queries(8):
        last = page(admin.get(url + "?page=5"))
    assert len(rows(first)) == 50 and "page 1 of 5 (242 rows)" in text(first)
    assert "page 5 of 5" in text(last)
    # and a code searches from its start, a name anywhere
    by_code = rows(page(admin.get(url + "?q=4805")))
    assert [r.split(" ")[0] for r in by_code] == ["4805", "4805"]
    assert len(rows(page(admin.get(url + "?q=4811")))) == 22  # 4811, 48110..48119, twice
    assert by_code[1].endswith("2020-01-01 2022-12-31 earlier edit delete")
    assert len(rows(page(admin.get(url + "?q=poland 10")))) == 22  # 10, 100..109, twice
    assert rows(page(admin.get(url + "?q=Kyiv")))[0].startswith("38044 Kyiv")


def test_deleting_a_codes_period_keeps_its_other_periods(admin, site):
    # given a later period of the Kyiv code
    later = PhoneCode.objects.create(operator=site.operator, tariff=site.kyiv.tariff,
                                     code="38044", valid_from=date(2024, 3, 1))
    url = f"/tariffs/operators/{site.operator.pk}/codes/{later.pk}/delete/"
    # when its delete page is opened and confirmed
    html = page(admin.get(url))
    admin.post(url)
    # then the page listed both periods, and only the later one went
    assert len(rows(html)) == 2
    assert list(PhoneCode.objects.filter(code="38044").values_list("pk", flat=True)) == [site.kyiv.pk]


# -- time bands

def test_a_time_band_is_made_edited_and_deleted_with_its_prices(admin, site):
    base = f"/tariffs/operators/{site.operator.pk}/bands/"
    # when a weekend band is sent with its days typed in any order
    admin.post(base + "new/", {"name": "Weekend", "weekdays": "76", "start_time": "00:00",
                               "end_time": "00:00", "priority": "1"})
    band = TimeBand.objects.get()
    # then it is stored with its days in order, and listed
    assert (band.name, band.weekdays, band.priority, band.holidays) == ("Weekend", "67", 1, False)
    assert row_of(page(admin.get(base)), "Weekend").startswith("Weekend Sat, Sun 00:00–00:00")
    # and when a price in it is set for Kyiv, a Saturday call costs that
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=site.plan, band=band,
                               price_per_minute=Decimal("0.25"))
    assert cost(site, at=datetime(2024, 6, 15, 12, 0)) == Decimal("0.50")
    # and when it is edited to Sundays only, the Saturday call is at the base price again
    admin.post(f"{base}{band.pk}/edit/", {"name": "Sunday", "weekdays": "7",
                                          "start_time": "00:00", "end_time": "00:00",
                                          "priority": "1"})
    assert TimeBand.objects.values_list("name", "weekdays").get() == ("Sunday", "7")
    assert cost(site, at=datetime(2024, 6, 15, 12, 0)) == Decimal("1.00")
    assert cost(site, at=datetime(2024, 6, 16, 12, 0)) == Decimal("0.50")
    assert row_of(page(admin.get(f"{base}{band.pk}/")), "Kyiv") == "Kyiv Office 0.25 0.00"
    # and when it is deleted, its price goes and the Sunday call is at the base price
    assert "It goes with its 1 price;" in text(page(admin.get(f"{base}{band.pk}/delete/")))
    admin.post(f"{base}{band.pk}/delete/")
    assert not TimeBand.objects.exists() and TariffPrice.objects.count() == 2
    assert cost(site, at=datetime(2024, 6, 16, 12, 0)) == Decimal("1.00")


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"weekdays": "128"}, "weekdays", "ISO weekday digits"),
    ({"name": "Night"}, "name", "Ukrtelecom already has a time band named Night."),
    ({"start_time": "25:00"}, "start_time", "Enter a valid time."),
])
def test_the_band_form_says_what_is_wrong_on_the_field_and_stores_nothing(
        admin, site, form, field, message):
    # given a Night band
    TimeBand.objects.create(operator=site.operator, name="Night")
    # when a band with this mistake is sent
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/bands/new/", {
        "name": "Evening", "weekdays": "12345", "start_time": "18:00", "end_time": "22:00",
        "priority": "0", **form})
    # then the reason is under the field and nothing is stored
    assert message in field_errors(page(response), field)
    assert TimeBand.objects.count() == 1


# -- rights

def test_a_read_only_user_sees_the_operators_pages_without_any_button(viewer, site):
    band = TimeBand.objects.create(operator=site.operator, name="Night")
    op = site.operator.pk
    for url in (f"/tariffs/operators/{op}/", f"/tariffs/operators/{op}/codes/",
                f"/tariffs/operators/{op}/bands/", f"/tariffs/operators/{op}/bands/{band.pk}/",
                f"/tariffs/operators/{op}/tariffs/{site.kyiv.tariff_id}/"):
        html = page(viewer.get(url))
        assert "Ukrtelecom" in html
        for needle in ("/new/", "/edit/", "/copy/", "/delete/", "New tariff", "New code"):
            assert needle not in html, (url, needle)


@pytest.mark.parametrize("url", [
    "tariffs/new/", "tariffs/{tariff}/edit/", "tariffs/{tariff}/delete/", "codes/new/",
    "codes/{code}/edit/", "codes/{code}/delete/", "bands/new/", "bands/{band}/edit/",
    "bands/{band}/delete/",
])
def test_every_change_of_a_read_only_user_is_refused(viewer, site, url):
    band = TimeBand.objects.create(operator=site.operator, name="Night")
    url = f"/tariffs/operators/{site.operator.pk}/" + url.format(
        tariff=site.kyiv.tariff_id, code=site.kyiv.pk, band=band.pk)
    before = Operator.objects.get(pk=site.operator.pk).rates_version
    # when a read-only user sends a change, or opens its form
    posted = viewer.post(url, {"name": "x", "code": "38099", "tariff": site.kyiv.tariff_id,
                               "valid_from": "2020-01-01", "weekdays": "1"})
    # then both are forbidden and nothing changed
    assert (posted.status_code, viewer.get(url).status_code) == (403, 403)
    assert Operator.objects.get(pk=site.operator.pk).rates_version == before
    assert (Tariff.objects.count(), PhoneCode.objects.count(), TimeBand.objects.count()) == (2, 2, 1)


def test_pages_of_another_operators_rows_are_not_found(admin, site):
    # given Kyivstar
    other = Operator.objects.create(name="Kyivstar")
    # when Ukrtelecom's code or tariff is asked for under Kyivstar, then there is none
    assert admin.get(f"/tariffs/operators/{other.pk}/codes/{site.kyiv.pk}/edit/").status_code == 404
    assert admin.get(f"/tariffs/operators/{other.pk}/tariffs/{site.kyiv.tariff_id}/").status_code == 404
    assert TariffPlan.objects.count() == 1
