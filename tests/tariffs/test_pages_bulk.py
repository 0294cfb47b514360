"""R5.4, R11.1: the bulk operations on all tariffs valid from a date, on the Tariffs pages:
the dates tariffs start on (in a fixed number of queries); for each operation a preview
that says how many tariffs (and codes, prices, calls) it will touch, a confirmation that
applies only what was previewed, the result as a message; a refusal shown with nothing
changed; the operator filter; and the rights."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Call
from tariffs.choices import Direction
from tariffs.models import Operator, PhoneCode, Tariff, TariffPrice
from tariffs.rating import rate
from tariffs.selectors import tariff_index_get
from tests.factories import OperatorFactory, priced_code
from tests.tariffs.pages import ALL, READ, field_errors, form_errors, login, page, row_of, rows, text

pytestmark = pytest.mark.django_db

JAN = date(2024, 1, 1)
FEB = date(2024, 2, 1)


@pytest.fixture
def admin(client, db):
    return login(client, "tamara", *ALL)


@pytest.fixture
def deck(site):
    """Ukrtelecom's two tariffs of the site (from 2020-01-01) and three more from JAN:
    Mobile (codes 38050 from JAN and 38067 from FEB), Poland (48) and an incoming 380;
    and Kyivstar's one tariff Any (380) from JAN."""
    mobile = priced_code(operator=site.operator, plan=site.plan, code="38050", price="2",
                         name="Mobile", valid_from=JAN)
    PhoneCode.objects.create(operator=site.operator, tariff=mobile.tariff, code="38067",
                             valid_from=FEB)
    priced_code(operator=site.operator, plan=site.plan, code="48", price="3", name="Poland",
                valid_from=JAN)
    priced_code(operator=site.operator, plan=site.plan, code="380", price="0.05",
                name="Incoming", valid_from=JAN, direction=Direction.INCOMING)
    kyivstar = OperatorFactory(name="Kyivstar")
    priced_code(operator=kyivstar, plan=site.plan, code="380", price="0.9", name="Any",
                valid_from=JAN)
    return kyivstar


def preview(client, operation: str, **fields):
    response = client.post(f"/tariffs/bulk/{operation}/", {"preview": "1", **fields})
    html = page(response)
    signature = _hidden(html, "previewed")
    return html, signature


def confirm(client, operation: str, signature: str, **fields):
    return client.post(f"/tariffs/bulk/{operation}/", {
        "confirm": "1", "previewed": signature, **fields}, follow=True)


def _hidden(html: str, name: str) -> str | None:
    import re

    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    return found.group(1) if found else None


# -- the dates

def test_the_bulk_page_lists_each_operators_dates_with_how_many_tariffs(
        admin, site, deck, django_assert_max_num_queries):
    # given the deck
    # when the bulk page is opened
    with django_assert_max_num_queries(6):
        html = page(admin.get("/tariffs/bulk/"))
    # then each (operator, date) is a row, the newest date first, with its operations
    assert [r.split(" set the")[0] for r in rows(html)] == [
        "Kyivstar 2024-01-01 1", "Ukrtelecom 2024-01-01 3", "Ukrtelecom 2020-01-01 2"]
    assert f"/tariffs/bulk/delete/?operator={deck.pk}&amp;valid_from=2024-01-01" in html


# -- the description for personal accounts

def test_the_description_is_previewed_then_set_on_all_tariffs_valid_from_the_date(admin, site, deck):
    fields = {"valid_from": "2024-01-01", "operator": "", "description": "International calls"}
    # when it is previewed
    html, signature = preview(admin, "description", **fields)
    # then the page says how many tariffs (and their codes) of which operators, and nothing
    # changed yet
    assert "4 tariffs will get this description. Their codes: 5." in text(html)
    assert "Operators: Kyivstar, Ukrtelecom" in text(html)
    assert not Tariff.objects.filter(account_description="International calls").exists()
    # and when confirmed, every tariff from JAN has it, the others not, and a message says
    response = confirm(admin, "description", signature, **fields)
    assert "Set the description for personal accounts of 4 tariffs." in page(response)
    assert sorted(Tariff.objects.filter(account_description="International calls")
                  .values_list("name", flat=True)) == ["Any", "Incoming", "Mobile", "Poland"]
    assert set(Tariff.objects.filter(valid_from=date(2020, 1, 1))
               .values_list("account_description", flat=True)) == {""}


def test_the_operator_filter_keeps_the_operation_to_its_tariffs(admin, site, deck):
    fields = {"valid_from": "2024-01-01", "operator": str(deck.pk), "description": "Kyivstar"}
    html, signature = preview(admin, "description", **fields)
    assert "1 tariff will get this description." in text(html)
    confirm(admin, "description", signature, **fields)
    assert list(Tariff.objects.filter(account_description="Kyivstar")
                .values_list("name", flat=True)) == ["Any"]


def test_a_confirmation_of_values_other_than_previewed_previews_them_again(admin, site, deck):
    # given a preview of the tariffs from JAN
    _, signature = preview(admin, "description", valid_from="2024-01-01", description="A")
    # when the form is confirmed with another date typed in since
    response = confirm(admin, "description", signature, valid_from="2020-01-01", description="A")
    # then those are previewed, and nothing changed
    html = page(response)
    assert "2 tariffs will get this description." in text(html)
    assert not Tariff.objects.filter(account_description="A").exists()


def test_a_description_longer_than_200_characters_is_refused_on_the_field(admin, site, deck):
    html, signature = preview(admin, "description", valid_from="2024-01-01",
                              description="x" * 201)
    assert "at most 200 characters" in field_errors(html, "description")
    assert signature is None  # no confirmation offered


# -- moving the date

def test_the_move_is_previewed_then_moves_the_tariffs_and_their_codes_of_that_date(
        admin, site, deck):
    fields = {"valid_from": "2024-01-01", "operator": str(site.operator.pk),
              "new_date": "2024-03-01"}
    # when it is previewed
    html, signature = preview(admin, "move", **fields)
    # then it says 3 tariffs move with 3 of their 4 codes (38067 is valid from FEB)
    assert ("3 tariffs will move to the new date, with 3 codes valid from the same date "
            "(of their 4 codes; the others keep their dates).") in text(html)
    # and when confirmed, they moved, 38067 kept its date, Kyivstar's tariff stayed
    response = confirm(admin, "move", signature, **fields)
    assert "Moved 3 tariffs (and their codes of that date) to 2024-03-01." in page(response)
    assert sorted(Tariff.objects.filter(valid_from=date(2024, 3, 1))
                  .values_list("name", flat=True)) == ["Incoming", "Mobile", "Poland"]
    assert dict(PhoneCode.objects.filter(tariff__name="Mobile")
                .values_list("code", "valid_from")) == {"38050": date(2024, 3, 1),
                                                        "38067": FEB}
    assert Tariff.objects.get(name="Any").valid_from == JAN
    # and a call to Poland in February is no longer priced, one in March is
    operator = Operator.objects.get(pk=site.operator.pk)
    index = tariff_index_get(operator=operator, plan=site.plan)
    assert rate(index, number="48221234567", at=date(2024, 2, 15), direction=0,
                duration=60).cost is None
    assert rate(index, number="48221234567", at=date(2024, 3, 15), direction=0,
                duration=60).cost == Decimal("3.00")


def test_a_move_onto_a_date_a_tariff_already_starts_on_is_refused_and_changes_nothing(
        admin, site, deck):
    # given Poland also from 2024-03-01
    priced_code(operator=site.operator, plan=site.plan, code="48", price="3.5", name="Poland",
                valid_from=date(2024, 3, 1))
    fields = {"valid_from": "2024-01-01", "operator": "", "new_date": "2024-03-01"}
    # when the move of JAN onto it is previewed and confirmed
    _, signature = preview(admin, "move", **fields)
    response = confirm(admin, "move", signature, **fields)
    # then the form says why, and nothing moved
    assert ("Nothing changed: 1 tariffs are already valid from 2024-03-01: Ukrtelecom: "
            "Poland (outgoing)") in form_errors(page(response))
    assert Tariff.objects.filter(valid_from=JAN).count() == 4


def test_moving_onto_the_same_date_is_refused_on_the_field(admin, site, deck):
    html, _ = preview(admin, "move", valid_from="2024-01-01", new_date="2024-01-01")
    assert "The same date: nothing would move." in field_errors(html, "new_date")


# -- deleting

def test_the_delete_is_previewed_with_what_goes_then_deletes_the_tariffs(admin, site, deck):
    # given a call rated at Poland
    poland = Tariff.objects.get(name="Poland")
    call = Call.objects.create(device=site.device, source_key="p", direction=Direction.OUTGOING,
                               start=datetime(2024, 6, 17, 9, tzinfo=UTC), duration=60,
                               operator=site.operator, tariff=poland, cost=Decimal("3"),
                               currency="UAH")
    fields = {"valid_from": "2024-01-01", "operator": str(site.operator.pk)}
    # when the delete of Ukrtelecom's tariffs from JAN is previewed
    html, signature = preview(admin, "delete", **fields)
    # then it says what goes, and which calls lose the link
    assert "3 tariffs will be deleted, with 3 prices and 4 codes." in text(html)
    assert row_of(html, "Calls") == "Calls tariff 1 keep their data, lose the link"
    assert Tariff.objects.filter(valid_from=JAN).count() == 4
    # and when confirmed, they are gone with their prices and codes; the rest stays
    response = confirm(admin, "delete", signature, **fields)
    assert "Deleted 3 tariffs with their prices and codes." in page(response)
    assert sorted(Tariff.objects.values_list("name", flat=True)) == ["Any", "Kyiv", "Ukraine"]
    assert not PhoneCode.objects.filter(code__in=["38050", "38067", "48"]).exists()
    assert TariffPrice.objects.count() == 3
    call.refresh_from_db()
    assert (call.tariff_id, call.cost) == (None, Decimal("3.0000"))


def test_a_date_no_tariff_starts_on_offers_nothing_to_confirm(admin, site, deck):
    html, signature = preview(admin, "delete", valid_from="2023-01-01")
    assert "No tariff is valid from that date: nothing to do." in text(html)
    assert signature is None


def test_an_operation_opened_from_the_dates_list_is_filled_in(admin, site, deck):
    html = page(admin.get(f"/tariffs/bulk/delete/?operator={deck.pk}&valid_from=2024-01-01"))
    assert 'value="2024-01-01"' in html
    assert f'<option value="{deck.pk}" selected>' in html


# -- rights

def test_a_read_only_user_sees_the_dates_without_the_operations(client, site, deck):
    login(client, "viewer", *READ)
    html = page(client.get("/tariffs/bulk/"))
    assert "Kyivstar" in html
    assert "/tariffs/bulk/description/" not in html and "/tariffs/bulk/delete/" not in html


@pytest.mark.parametrize("operation", ["description", "move", "delete"])
def test_every_bulk_operation_of_a_read_only_user_is_refused(client, site, deck, operation):
    login(client, "viewer", *READ)
    fields = {"valid_from": "2024-01-01", "description": "x", "new_date": "2024-03-01",
              "confirm": "1"}
    assert client.post(f"/tariffs/bulk/{operation}/", fields).status_code == 403
    assert client.get(f"/tariffs/bulk/{operation}/").status_code == 403
    assert Tariff.objects.filter(valid_from=JAN, account_description="").count() == 4


def test_a_user_who_may_change_tariffs_but_not_delete_them_cannot_bulk_delete(client, site, deck):
    login(client, "editor", *READ, "change_tariff")
    html = page(client.get("/tariffs/bulk/"))
    assert "/tariffs/bulk/description/" in html and "/tariffs/bulk/delete/" not in html
    assert client.post("/tariffs/bulk/delete/", {"valid_from": "2024-01-01"}).status_code == 403
    assert Tariff.objects.filter(valid_from=JAN).count() == 4
