"""R5.1, R4.3, R11.1: the Tariffs area's operators and tariff plans, rendered for real:
the lists with their counts (in a fixed number of queries), operators made, edited, copied
and deleted through their forms (a delete refused with the counts while calls, charges,
routes or devices refer to one), plans likewise (a delete says what it touches), inline
errors that store nothing, and the rights: a read-only user sees no buttons and every
change of his is refused."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Call, Charge, Subscriber
from tariffs.choices import Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice, TimeBand
from tests.factories import DeviceFactory, OperatorFactory, TariffPlanFactory, priced_code
from tests.tariffs.pages import ALL, READ, field_errors, login, page, row_of, rows, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, db):
    """A user with every right of the tariffs app."""
    return login(client, "tamara", *ALL)


@pytest.fixture
def viewer(client, db):
    """A read-only operator: may look at every tariffs page, change nothing."""
    return login(client, "viewer", *READ)


def version(operator) -> int:
    return Operator.objects.get(pk=operator.pk).rates_version


def call_at(operator, *, tariff=None, key="c1"):
    """A stored call rated at `operator` (and `tariff`), on a device of its own."""
    device = DeviceFactory(name=f"PBX-{key}")
    return Call.objects.create(device=device, source_key=key, direction=Direction.OUTGOING,
                               start=datetime(2024, 6, 17, 9, tzinfo=UTC), duration=60,
                               operator=operator, tariff=tariff, cost=Decimal("1.00"),
                               currency=operator.currency)


# -- the operators' list

def test_the_operators_list_shows_each_with_its_counts_and_currency(admin, site):
    # given the site's Ukrtelecom (two tariffs, two codes) and Kyivstar in EUR with a band
    kyivstar = OperatorFactory(name="Kyivstar", currency="EUR", description="SIP trunk")
    TimeBand.objects.create(operator=kyivstar, name="Night")
    # when the list is opened
    html = page(admin.get("/tariffs/operators/"))
    # then each operator is a row with its currency and counts, and its link
    assert row_of(html, "Ukrtelecom").startswith("Ukrtelecom UAH 2 2 0")
    assert row_of(html, "Kyivstar").startswith("Kyivstar EUR 0 0 1 SIP trunk")
    assert f'href="/tariffs/operators/{kyivstar.pk}/"' in html


def test_the_operators_list_costs_the_same_queries_for_many_operators(
        admin, site, django_assert_max_num_queries):
    # given 40 operators, each with a tariff, two codes and a band
    for n in range(40):
        operator = OperatorFactory(name=f"Carrier {n:02d}")
        priced_code(operator=operator, plan=site.plan, code=f"49{n:02d}", price="1")
        priced_code(operator=operator, plan=site.plan, code=f"49{n:02d}1", price="1",
                    tariff_name=f"49{n:02d}")
        TimeBand.objects.create(operator=operator, name="Night")
    # when the list's first page is opened, then a fixed number of queries serve it
    with django_assert_max_num_queries(6):
        html = page(admin.get("/tariffs/operators/"))
    assert row_of(html, "Carrier 07").startswith("Carrier 07 UAH 1 2 1")
    # and sorting by the codes' count and paging work on the same table
    html = page(admin.get("/tariffs/operators/?sort=-code_count&page=1"))
    assert "page 1 of 1 (41 rows)" not in html  # one page of 41 shows no pager
    assert len(rows(html)) == 41


# -- making and editing operators

def test_an_operator_made_on_the_page_is_stored_as_typed(admin, db):
    # given no operators
    # when one is sent with its currency typed in lower case
    response = admin.post("/tariffs/operators/new/", {
        "name": " Lifecell ", "currency": "eur", "description": "SIP, 30 channels"})
    # then it is stored with the currency in capitals, and its page opens
    operator = Operator.objects.get()
    assert (operator.name, operator.currency, operator.description) == (
        "Lifecell", "EUR", "SIP, 30 channels")
    assert response.status_code == 302
    assert response["Location"] == f"/tariffs/operators/{operator.pk}/"


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"name": "Ukrtelecom", "currency": "UAH"}, "name", "An operator named Ukrtelecom exists already."),
    ({"name": "New", "currency": "EURO"}, "currency", "An ISO 4217 code: three letters"),
    ({"name": "New", "currency": "E1R"}, "currency", "An ISO 4217 code: three letters"),
    ({"name": "", "currency": "UAH"}, "name", "This field is required."),
])
def test_the_operator_form_says_what_is_wrong_on_the_field_and_stores_nothing(
        admin, site, form, field, message):
    # given the site's Ukrtelecom
    # when an operator with this mistake is sent
    response = admin.post("/tariffs/operators/new/", form)
    # then the form comes back with the reason under the field, and nothing is stored
    assert message in field_errors(page(response), field)
    assert list(Operator.objects.values_list("name", flat=True)) == ["Ukrtelecom"]


def test_an_operators_edit_is_saved_and_counts_as_a_change_of_its_rates(admin, site):
    # given the site's Ukrtelecom at its rates' version
    before = version(site.operator)
    # when it is renamed and moved to EUR on its edit page
    form = page(admin.get(f"/tariffs/operators/{site.operator.pk}/edit/"))
    admin.post(f"/tariffs/operators/{site.operator.pk}/edit/", {
        "name": "Ukrtelecom SIP", "currency": "EUR", "description": "new contract"})
    # then the form showed it as it was, it is saved, and its compiled indexes are stale
    assert 'value="Ukrtelecom"' in form and 'value="UAH"' in form
    operator = Operator.objects.get(pk=site.operator.pk)
    assert (operator.name, operator.currency, operator.description) == (
        "Ukrtelecom SIP", "EUR", "new contract")
    assert operator.rates_version == before + 1


def test_renaming_an_operator_to_a_taken_name_is_refused_on_the_field(admin, site):
    # given another operator Kyivstar
    OperatorFactory(name="Kyivstar")
    # when Ukrtelecom is renamed Kyivstar
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/edit/", {
        "name": "Kyivstar", "currency": "UAH"})
    # then the name field says so, and Ukrtelecom keeps its name
    assert "An operator named Kyivstar exists already." in field_errors(page(response), "name")
    assert Operator.objects.get(pk=site.operator.pk).name == "Ukrtelecom"


# -- copying

def test_an_operator_is_copied_with_its_tariffs_prices_codes_and_bands(admin, site):
    # given Ukrtelecom with a night band priced for Kyiv
    night = TimeBand.objects.create(operator=site.operator, name="Night", weekdays="1234567")
    TariffPrice.objects.create(tariff=site.kyiv.tariff, plan=site.plan, band=night,
                               price_per_minute=Decimal("0.20"))
    # when its copy page is opened and the copy made in EUR under the suggested name
    form = page(admin.get(f"/tariffs/operators/{site.operator.pk}/copy/"))
    assert 'value="Ukrtelecom (copy)"' in form
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/copy/", {
        "name": "Ukrtelecom (copy)", "currency": "eur"})
    # then the copy has its own tariffs, prices (band price on its own band) and codes
    copy = Operator.objects.get(name="Ukrtelecom (copy)")
    assert response["Location"] == f"/tariffs/operators/{copy.pk}/"
    assert copy.currency == "EUR"
    assert sorted(PhoneCode.objects.filter(tariff__operator=copy).values_list("code", flat=True)) == [
        "380", "38044"]
    band_price = TariffPrice.objects.get(tariff__operator=copy, band__isnull=False)
    assert (band_price.band.operator, band_price.band.name, band_price.price_per_minute) == (
        copy, "Night", Decimal("0.20"))
    assert TariffPrice.objects.filter(tariff__operator=site.operator).count() == 3  # untouched


def test_a_copy_under_a_taken_name_is_refused_on_the_field(admin, site):
    # given Kyivstar
    OperatorFactory(name="Kyivstar")
    # when Ukrtelecom is copied as Kyivstar
    response = admin.post(f"/tariffs/operators/{site.operator.pk}/copy/", {"name": "Kyivstar"})
    # then the name field says so and nothing is copied
    assert "An operator named Kyivstar exists already." in field_errors(page(response), "name")
    assert Tariff.objects.exclude(operator=site.operator).count() == 0


# -- deleting

def test_deleting_an_operator_that_calls_and_charges_refer_to_is_refused_with_the_counts(
        admin, site):
    # given Kyivstar, no device's default and on no route, whose tariff priced two calls
    # and one charge
    kyivstar = OperatorFactory(name="Kyivstar")
    code = priced_code(operator=kyivstar, plan=site.plan, code="38067", price="2")
    call_at(kyivstar, tariff=code.tariff, key="a")
    call_at(kyivstar, tariff=code.tariff, key="b")
    Charge.objects.create(subscriber=site.subscriber, period_start=datetime(2024, 6, 1).date(),
                          period_end=datetime(2024, 6, 30).date(), service_name="38067",
                          tariff=code.tariff, amount=Decimal("4"), currency="UAH")
    # when its delete page is opened, and the delete sent anyway
    html = page(admin.get(f"/tariffs/operators/{kyivstar.pk}/delete/"))
    refused = admin.post(f"/tariffs/operators/{kyivstar.pk}/delete/")
    # then the page refuses with what refers to it, offers no button, and nothing goes
    assert 'id="refused"' in html and 'type="submit">Delete' not in html
    assert row_of(html, "Calls operator") == "Calls operator 2"
    assert row_of(html, "Calls tariff") == "Calls tariff 2"
    assert row_of(html, "Charges") == "Charges tariff 1"
    assert refused.status_code == 409
    assert Operator.objects.filter(pk=kyivstar.pk).exists()
    assert PhoneCode.objects.filter(pk=code.pk).exists()


def test_an_operator_that_is_a_devices_default_is_not_deleted(admin, site):
    # given the site's Ukrtelecom, the default operator of KyivPBX
    # when it is deleted
    html = page(admin.get(f"/tariffs/operators/{site.operator.pk}/delete/"))
    admin.post(f"/tariffs/operators/{site.operator.pk}/delete/")
    # then the page says the device refers to it, and it stays
    assert row_of(html, "default operator") == "Devices default operator 1"
    assert Operator.objects.filter(pk=site.operator.pk).exists()


def test_an_operator_nothing_refers_to_is_deleted_after_a_confirmation(admin, site):
    # given Kyivstar with one tariff, its price, code and a band, used by nothing
    kyivstar = OperatorFactory(name="Kyivstar")
    priced_code(operator=kyivstar, plan=site.plan, code="38067", price="2")
    TimeBand.objects.create(operator=kyivstar, name="Night")
    # when its delete page is opened
    html = page(admin.get(f"/tariffs/operators/{kyivstar.pk}/delete/"))
    # then it says what goes with it, and nothing is deleted yet
    assert "It goes with its 1 tariffs, 1 prices, 1 codes and 1 time bands." in text(html)
    assert Operator.objects.filter(pk=kyivstar.pk).exists()
    # and when confirmed, it is gone with all of it
    response = admin.post(f"/tariffs/operators/{kyivstar.pk}/delete/", follow=True)
    assert "Deleted operator Kyivstar with 1 tariffs, 1 codes and 1 time bands." in page(response)
    assert not Operator.objects.filter(pk=kyivstar.pk).exists()
    assert not Tariff.objects.filter(operator_id=kyivstar.pk).exists()
    assert not PhoneCode.objects.filter(operator_id=kyivstar.pk).exists()


# -- tariff plans

def test_the_plans_list_shows_each_plan_with_its_prices_in_a_fixed_number_of_queries(
        admin, site, django_assert_max_num_queries):
    # given the site's plan Office (two prices of one operator) and 30 plans more
    for n in range(30):
        plan = TariffPlanFactory(name=f"Plan {n:02d}")
        priced_code(operator=site.operator, plan=plan, code=f"4{n:02d}", price="1")
    # when the list is opened
    with django_assert_max_num_queries(6):
        html = page(admin.get("/tariffs/plans/"))
    # then each plan shows how many operators it prices and its prices
    assert row_of(html, "Office").startswith("Office — 1 2")
    assert row_of(html, "Plan 05").startswith("Plan 05 — 1 1")


def test_a_plan_is_made_and_renamed_and_a_rename_makes_its_operators_rates_stale(admin, site):
    # given the site's plan Office, which prices Ukrtelecom
    before = version(site.operator)
    # when a plan Home is made, and Office renamed Business
    admin.post("/tariffs/plans/new/", {"name": "Home", "description": "residential"})
    admin.post(f"/tariffs/plans/{site.plan.pk}/edit/", {"name": "Business"})
    # then both are stored, and Ukrtelecom's compiled indexes (which name the plan) are stale
    assert TariffPlan.objects.get(name="Home").description == "residential"
    assert TariffPlan.objects.get(pk=site.plan.pk).name == "Business"
    assert version(site.operator) == before + 1


def test_a_plan_under_a_taken_name_is_refused_on_the_field(admin, site):
    response = admin.post("/tariffs/plans/new/", {"name": "Office"})
    assert "A tariff plan named Office exists already." in field_errors(page(response), "name")
    assert TariffPlan.objects.count() == 1


def test_deleting_a_plan_says_what_it_touches_and_then_deletes_it(admin, site):
    # given the site's Office: the plan of KyivPBX and of Ivan, two prices and a call in it
    Subscriber.objects.filter(pk=site.subscriber.pk).update(plan=site.plan)
    Call.objects.create(device=site.device, source_key="x", direction=Direction.OUTGOING,
                        start=datetime(2024, 6, 17, 9, tzinfo=UTC), duration=60,
                        plan=site.plan, operator=None)
    before = version(site.operator)
    # when its delete page is opened
    html = page(admin.get(f"/tariffs/plans/{site.plan.pk}/delete/"))
    # then it names its prices and what refers to it, and asks
    assert "It goes with its 2 prices." in text(html)
    assert row_of(html, "default plan").startswith("Devices default plan 1")
    assert row_of(html, "Subscribers").startswith("Subscribers plan 1")
    assert row_of(html, "Calls").startswith("Calls plan 1 keep their data, lose the link")
    assert TariffPlan.objects.filter(pk=site.plan.pk).exists()
    # and when confirmed, it goes with its prices; the subscriber and call lose the link
    admin.post(f"/tariffs/plans/{site.plan.pk}/delete/")
    assert not TariffPlan.objects.filter(pk=site.plan.pk).exists()
    assert not TariffPrice.objects.exists()
    assert Subscriber.objects.get(pk=site.subscriber.pk).plan is None
    assert Call.objects.get(source_key="x").plan is None
    assert version(site.operator) == before + 1


# -- rights

def test_a_read_only_user_sees_the_lists_without_any_button(viewer, site):
    # given a read-only operator
    # when he opens the Tariffs pages
    pages = [page(viewer.get(url)) for url in (
        "/tariffs/", "/tariffs/operators/", "/tariffs/plans/",
        f"/tariffs/operators/{site.operator.pk}/")]
    # then he sees the operators and plans, and no link to change anything
    assert "Ukrtelecom" in pages[1] and "Office" in pages[2]
    for html in pages:
        for needle in ("/new/", "/edit/", "/copy/", "/delete/", "/import/", "New operator"):
            assert needle not in html


@pytest.mark.parametrize("url", [
    "/tariffs/operators/new/", "/tariffs/operators/{op}/edit/", "/tariffs/operators/{op}/copy/",
    "/tariffs/operators/{op}/delete/", "/tariffs/plans/new/", "/tariffs/plans/{plan}/edit/",
    "/tariffs/plans/{plan}/delete/",
])
def test_every_change_of_a_read_only_user_is_refused(viewer, site, url):
    # given a read-only operator
    url = url.format(op=site.operator.pk, plan=site.plan.pk)
    # when he sends a change (or opens its form)
    posted = viewer.post(url, {"name": "Hacked", "currency": "EUR"})
    opened = viewer.get(url)
    # then both are forbidden, and nothing changed
    assert (posted.status_code, opened.status_code) == (403, 403)
    assert sorted(Operator.objects.values_list("name", "currency")) == [("Ukrtelecom", "UAH")]
    assert list(TariffPlan.objects.values_list("name", flat=True)) == ["Office"]


def test_a_visitor_is_sent_to_the_login_page(client, site):
    response = client.get("/tariffs/operators/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_area_page_lists_only_what_the_user_may_see(client, site):
    # given a user who may see the plans only
    login(client, "planner", "view_tariffplan")
    # when he opens the Tariffs area
    html = page(client.get("/tariffs/"))
    # then it offers the plans, not the operators, the bulk operations or the import
    assert "/tariffs/plans/" in html
    assert "/tariffs/operators/" not in html and "/tariffs/bulk/" not in html
    assert "/tariffs/import/" not in html
