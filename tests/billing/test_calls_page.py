"""R11.2: the calls page (/calls/): rights, filters (as django-filter's CallFilter), sort and
paging (django-tables2's CallTable), totals per currency, the searches behind the subscriber
and group filters (/lookup/...), the htmx partial, query counts; and the call's page. The
exports are tests/billing/test_calls_export.py."""
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Call, Subscriber, SubscriberGroup
from tariffs.choices import CallType, Direction
from tests.factories import (
    DeviceFactory,
    OperatorFactory,
    SubscriberFactory,
    SubscriberGroupFactory,
    TariffPlanFactory,
    priced_code,
)
from tests.observers.threecx_cdr import cdr_line


def make_call(*, device, key, start, subscriber=None, extension="101", dialled="",
              normalized="", direction=Direction.OUTGOING, call_type=CallType.LOCAL,
              duration=60, billable=60, operator=None, code="", tariff=None, cost=None,
              currency=""):
    return Call.objects.create(
        device=device, source_key=key, start=start, subscriber=subscriber, extension=extension,
        dialled=dialled, normalized=normalized, direction=direction, call_type=call_type,
        duration=duration, billable_seconds=billable, operator=operator, code=code,
        tariff=tariff, cost=None if cost is None else Decimal(cost), currency=currency,
    )


def viewer(client, django_user_model, *codenames):
    """`client` logged in as a user with the billing rights `codenames`."""
    user = django_user_model.objects.create(username="operator")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="billing",
                                                         codename=codename))
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(client, django_user_model):
    """An operator who may see the calls (billing.view_call), and nothing more."""
    return viewer(client, django_user_model, "view_call")


class Calls:
    """Five calls on the site's two devices (KyivPBX, LvivPBX); Olena Koval is in Support.

    c1 Kyiv PBX, Ivan (Sales), 2024-06-10 10:00 UTC, local, 1.00 UAH
    c2 Kyiv PBX, Olena (Support), 2024-06-12 10:00, international to London, 12.50 UAH
    c3 Lviv PBX, incoming from a mobile, nobody's number, 2024-06-15 23:30, not priced
    c4 Lviv PBX, outgoing from an unknown number, 2024-06-16 00:00, mobile, 0.40 UAH
    c5 Lviv PBX, Ivan, 2024-06-25 08:00, long distance, 3.00 UAH
    """

    def __init__(self, site, lviv):
        self.kyiv, self.lviv, self.operator = site.device, lviv, site.operator
        self.sales, self.ivan, self.olena = site.sales, site.subscriber, site.colleague
        self.support = SubscriberGroupFactory(name="Support")
        self.olena.group = self.support
        self.olena.save()
        self.tariff = site.priced_code(code="44", price="6.25", name="United Kingdom").tariff
        op = {"operator": self.operator, "currency": "UAH"}
        self.c1 = make_call(device=self.kyiv, key="c1", start=datetime(2024, 6, 10, 10, tzinfo=UTC),
                            subscriber=self.ivan, dialled="92345678", normalized="380442345678",
                            cost="1.00", **op)
        self.c2 = make_call(device=self.kyiv, key="c2", start=datetime(2024, 6, 12, 10, tzinfo=UTC),
                            subscriber=self.olena, extension="102", dialled="900442071234567",
                            normalized="442071234567", call_type=CallType.INTERNATIONAL,
                            duration=115, billable=120, code="44", tariff=self.tariff,
                            cost="12.50", **op)
        self.c3 = make_call(device=self.lviv, key="c3",
                            start=datetime(2024, 6, 15, 23, 30, tzinfo=UTC), extension="103",
                            dialled="+380501234567", normalized="380501234567",
                            direction=Direction.INCOMING, call_type=CallType.INCOMING)
        self.c4 = make_call(device=self.lviv, key="c4", start=datetime(2024, 6, 16, 0, 0, tzinfo=UTC),
                            extension="199", dialled="90671234567", normalized="380671234567",
                            call_type=CallType.MOBILE, cost="0.40", **op)
        self.c5 = make_call(device=self.lviv, key="c5", start=datetime(2024, 6, 25, 8, tzinfo=UTC),
                            subscriber=self.ivan, dialled="90322345678", normalized="380322345678",
                            call_type=CallType.LONG_DISTANCE, cost="3.00", **op)


@pytest.fixture
def calls(site, second_device):
    return Calls(site, second_device)




def listed(response):
    return {row.record.source_key for row in response.context["table"].page.object_list}


def in_order(response):
    return [row.record.source_key for row in response.context["table"].page.object_list]


# -- rights

def test_anonymous_visitor_is_sent_to_the_login_page(client, db):
    # given nobody logged in
    # when the calls page, a call's page and a search are requested
    listing = client.get("/calls/")
    detail = client.get("/calls/1/")
    lookup = client.get("/lookup/subscribers", {"q": "Ivan"})
    # then each redirects to the login page, coming back afterwards
    assert (listing.status_code, listing["Location"]) == (302, "/accounts/login/?next=/calls/")
    assert (detail.status_code, detail["Location"]) == (302, "/accounts/login/?next=/calls/1/")
    assert lookup.status_code == 302


def test_a_user_without_the_right_to_see_calls_is_refused(client, django_user_model, calls):
    # given a user with no rights at all
    viewer(client, django_user_model)
    # when they ask for the calls, a call, an export and the searches
    answers = [client.get(url, params).status_code for url, params in (
        ("/calls/", {}), (f"/calls/{calls.c1.pk}/", {}), ("/calls/", {"export": "csv"}),
        ("/lookup/subscribers", {"q": "Ivan"}), ("/lookup/groups", {"q": "Sales"}))]
    # then every one is forbidden
    assert answers == [403] * 5


# -- the list, its filters, sort and pages

def test_page_lists_every_call_with_its_cost(operator_client, calls):
    # given five calls
    # when the page is opened without filters
    response = operator_client.get("/calls/")
    # then all five are listed, newest first, with their costs and totals
    assert response.status_code == 200
    assert in_order(response) == ["c5", "c4", "c3", "c2", "c1"]
    html = response.content.decode()
    assert "12.50 UAH" in html and "0.40 UAH" in html
    # the start in the device's zone (Kyiv, UTC+3), linked to the call's page
    assert f'<a href="/calls/{calls.c2.pk}/">2024-06-12 13:00:00</a>' in html
    # an outgoing call from nobody's number says so; an incoming one does not
    assert html.count("unknown number") == 1
    # 1.00 + 12.50 + 0.40 + 3.00 = 16.90; 60 s each, but c2's 115
    assert response.context["totals"] == {
        "count": 5, "duration": 355, "costs": [{"currency": "UAH", "cost": Decimal("16.90")}]}
    assert "5 calls" in html and "355 s" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # whole days in the device's zone (Kyiv, UTC+3), both ends inclusive, as the page
        # shows the times: c3 (15 June 23:30 UTC) is on 16 June in Kyiv
        ({"date_from": "2024-06-12", "date_to": "2024-06-15"}, {"c2"}),
        ({"date_from": "2024-06-16"}, {"c3", "c4", "c5"}),
        ({"date_to": "2024-06-10"}, {"c1"}),
        ({"device": "kyiv"}, {"c1", "c2"}),
        ({"device": "lviv"}, {"c3", "c4", "c5"}),
        ({"subscriber": "ivan"}, {"c1", "c5"}),
        ({"group": "support"}, {"c2"}),
        # the searches' text, when no choice came with it: one match is the choice
        ({"subscriber_text": "petrenko"}, {"c1", "c5"}),
        ({"group_text": "suppo"}, {"c2"}),
        ({"number": "2071234"}, {"c2"}),  # part of the dialled number
        ({"number": "199"}, {"c4"}),  # the extension
        ({"number": "380322"}, {"c5"}),  # the normalised number
        ({"call_type": str(CallType.INTERNATIONAL)}, {"c2"}),
        ({"call_type": str(CallType.INCOMING)}, {"c3"}),
        ({"direction": str(Direction.INCOMING)}, {"c3"}),
        ({"cost_min": "3"}, {"c2", "c5"}),  # inclusive; unpriced calls are not "0"
        ({"cost_max": "1"}, {"c1", "c4"}),
        ({"cost_min": "0.5", "cost_max": "5"}, {"c1", "c5"}),
        # unknown numbers: outgoing calls nobody held the number of; incoming ones are not
        ({"unknown": "on"}, {"c4"}),
        ({"device": "lviv", "subscriber": "ivan"}, {"c5"}),
    ],
)
def test_each_filter_narrows_the_list(operator_client, calls, params, expected):
    # given five calls
    objects = {"kyiv": calls.kyiv, "lviv": calls.lviv, "ivan": calls.ivan,
               "support": calls.support}
    query = {k: (objects[v].pk if v in objects else v) for k, v in params.items()}
    # when the page is filtered
    response = operator_client.get("/calls/", query)
    # then only the matching calls are listed, and the totals count them
    assert response.status_code == 200
    assert listed(response) == expected
    assert response.context["totals"]["count"] == len(expected)


def test_group_filter_includes_the_groups_below_it(operator_client, calls):
    # given a team inside Support with a call of its own
    team = SubscriberGroupFactory(name="Support L2", node=calls.support.node,
                                  parent=calls.support)
    petro = SubscriberFactory(full_name="Petro", group=team)
    make_call(device=calls.kyiv, key="c6", start=datetime(2024, 6, 20, tzinfo=UTC),
              subscriber=petro)
    # when filtered by Support
    response = operator_client.get("/calls/", {"group": calls.support.pk})
    # then the team's call is listed with Support's own (R1.3: groups form a tree)
    assert listed(response) == {"c2", "c6"}


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"date_from": "2024-06-20", "date_to": "2024-06-10"}, "__all__",
     "The period ends before it starts."),
    ({"date_from": "20.06.2024"}, "date_from", "Enter a valid date."),
    ({"cost_min": "-1"}, "cost_min", "Ensure this value is greater than or equal to 0."),
    ({"cost_min": "5", "cost_max": "1"}, "cost_max", "The highest cost is below the lowest."),
    ({"cost_max": "1.23456"}, "cost_max", "Ensure that there are no more than 4 decimal places."),
    ({"call_type": "99"}, "call_type", "Select a valid choice. 99 is not one of the available "
                                       "choices."),
    ({"device": "999999"}, "device", "Select a valid choice. That choice is not one of the "
                                     "available choices."),
    ({"subscriber": "999999"}, "subscriber", "Select a valid choice. That choice is not one "
                                             "of the available choices."),
    ({"subscriber_text": "Nobody"}, "subscriber_text", "No subscriber matches “Nobody”."),
    ({"subscriber_text": "o"}, "subscriber_text",
     "More than one subscriber matches “o”: choose one from the list."),
    ({"group_text": "Marketing"}, "group_text", "No group matches “Marketing”."),
])
def test_a_wrong_filter_is_said_under_its_field_and_lists_nothing(operator_client, calls, params,
                                                                  field, message):
    # given five calls
    # when the page is filtered wrongly
    response = operator_client.get("/calls/", params)
    # then the page says what is wrong, lists no call and totals nothing
    assert response.status_code == 200
    assert response.context["filter"].errors[field] == [message]
    html = response.content.decode()
    assert message.replace("“", "&ldquo;").replace("”", "&rdquo;") in html or message in html
    assert listed(response) == set()
    assert response.context["totals"] == {"count": 0, "duration": 0, "costs": []}


def test_a_subscribers_calls_link_shows_who_was_chosen(operator_client, calls):
    # given the link of Ivan's page to his calls
    # when it is followed
    response = operator_client.get("/calls/", {"subscriber": calls.ivan.pk})
    # then the search box shows him (name and personal account), the hidden field his id
    html = response.content.decode()
    label = f"Ivan Petrenko · {calls.ivan.account_number}"
    assert f'value="{label}"' in html
    assert f'name="subscriber" id="id_subscriber" value="{calls.ivan.pk}"' in html
    assert listed(response) == {"c1", "c5"}


def test_a_text_changed_after_the_choice_is_searched_again(operator_client, calls):
    # given Ivan chosen, then his name replaced by Olena's in the box (without a script)
    # when the filters are sent
    response = operator_client.get("/calls/", {"subscriber": calls.ivan.pk,
                                               "subscriber_text": "Olena"})
    # then the text wins: Olena's calls
    assert listed(response) == {"c2"}
    assert response.context["searches"]["subscriber"] == (
        calls.olena.pk, f"Olena Koval · {calls.olena.account_number}")


def test_the_suggestions_label_finds_its_subscriber_even_among_namesakes(operator_client, calls):
    # given a second Ivan Petrenko
    namesake = SubscriberFactory(full_name="Ivan Petrenko", group=calls.sales)
    make_call(device=calls.kyiv, key="n1", start=datetime(2024, 6, 20, tzinfo=UTC),
              subscriber=namesake)
    # when the first one's suggestion is sent without its id
    chosen = operator_client.get("/calls/", {
        "subscriber_text": f"Ivan Petrenko · {calls.ivan.account_number}"})
    # and the bare name is
    bare = operator_client.get("/calls/", {"subscriber_text": "Ivan Petrenko"})
    # then the label finds him alone, the name asks to choose
    assert listed(chosen) == {"c1", "c5"}
    assert bare.context["filter"].errors["subscriber_text"] == [
        "More than one subscriber matches “Ivan Petrenko”: choose one from the list."]


@pytest.mark.parametrize(("sort", "expected"), [
    ("cost", ["c3", "c4", "c1", "c5", "c2"]),  # unpriced first (NULL is lowest)
    ("-cost", ["c2", "c5", "c1", "c4", "c3"]),
    ("start", ["c1", "c2", "c3", "c4", "c5"]),
    ("-duration", ["c2", "c5", "c4", "c3", "c1"]),  # equal durations: by id, descending
    ("device", ["c1", "c2", "c3", "c4", "c5"]),  # KyivPBX before LvivPBX, then by id
    ("no_such_column", ["c5", "c4", "c3", "c2", "c1"]),  # ignored: newest first
])
def test_the_list_is_sorted_by_the_column_asked_for(operator_client, calls, postgres_nulls,
                                                    sort, expected):
    # given five calls
    # when the page is sorted
    response = operator_client.get("/calls/", {"sort": sort})
    # then the calls come in that order
    assert in_order(response) == postgres_nulls(sort, expected)


@pytest.fixture
def postgres_nulls(db):
    """PostgreSQL sorts NULL above every value (last ascending), SQLite below (first)."""
    def adjust(sort, expected):
        if connection.vendor == "postgresql" and sort.lstrip("-") == "cost":
            unpriced = [key for key in expected if key == "c3"]
            rest = [key for key in expected if key != "c3"]
            return rest + unpriced if sort == "cost" else unpriced + rest
        return expected
    return adjust


def test_column_headers_link_to_their_sort_and_say_the_current_one(operator_client, calls):
    # given the page sorted by cost, ascending, with a filter
    html = operator_client.get("/calls/", {"sort": "cost", "device": calls.kyiv.pk,
                                           "page": "1"}).content.decode()
    # then the cost header says so and links to the descending order, keeping the filter
    # and going back to the first page
    assert 'aria-sort="ascending"' in html
    assert f'href="?sort=-cost&amp;device={calls.kyiv.pk}"' in html
    # and the start header links to newest first (a time is sorted descending first)
    assert f'href="?sort=-start&amp;device={calls.kyiv.pk}"' in html
    # and the filters' form keeps the sort
    assert '<input type="hidden" name="sort" value="cost">' in html


def test_pages_of_fifty_calls(operator_client, db):
    # given 60 calls
    _calls_for_query_count(60)
    # when the first, the second and a page past the end are asked for
    first = operator_client.get("/calls/")
    second = operator_client.get("/calls/", {"page": 2})
    beyond = operator_client.get("/calls/", {"page": 9})
    garbage = operator_client.get("/calls/", {"page": "x"})
    # then 50, then 10, and past the end the last page, for no number the first
    assert len(listed(first)) == 50 and len(listed(second)) == 10
    assert listed(beyond) == listed(second)
    assert listed(garbage) == listed(first)
    assert "page 2 of 2" in second.content.decode()
    assert listed(first).isdisjoint(listed(second))
    # and the totals are of all 60, not of the page
    assert second.context["totals"]["count"] == 60


def test_sorting_and_paging_through_htmx_replace_only_the_results(operator_client, calls):
    # given the page open in a browser with htmx
    # when a sort header is clicked (htmx asks for the results part)
    response = operator_client.get("/calls/", {"sort": "-duration"}, HTTP_HX_REQUEST="true",
                                   HTTP_HX_TARGET="calls-results")
    # then only the totals, the table and the pager come back, sorted
    html = response.content.decode()
    assert "<header>" not in html and '<form method="get" class="filters"' not in html
    assert html.lstrip().startswith('<p class="totals"')
    assert in_order(response)[0] == "c2"
    # and caches keep the two answers apart
    assert "HX-Request" in response["Vary"]
    # while a plain request gets the whole page
    whole = operator_client.get("/calls/", {"sort": "-duration"}).content.decode()
    assert "<header>" in whole and 'id="calls-results"' in whole


def test_totals_are_kept_per_currency(operator_client, calls):
    # given, besides the UAH calls, two calls costed in EUR
    eur = OperatorFactory(currency="EUR")
    for key, cost in (("e1", "0.25"), ("e2", "1.10")):
        make_call(device=calls.kyiv, key=key, start=datetime(2024, 6, 20, tzinfo=UTC),
                  operator=eur, cost=cost, currency="EUR")
    # when the page is shown
    response = operator_client.get("/calls/")
    # then UAH and EUR are summed apart, never into one figure; the calls and seconds of
    # both are counted together (they are no money)
    # EUR: 0.25 + 1.10 = 1.35; UAH: 1.00 + 12.50 + 0.40 + 3.00 = 16.90
    assert response.context["totals"] == {"count": 7, "duration": 475, "costs": [
        {"currency": "EUR", "cost": Decimal("1.35")},
        {"currency": "UAH", "cost": Decimal("16.90")},
    ]}
    html = response.content.decode()
    assert "7 calls, 475 s, 1.35 EUR, 16.90 UAH" in " ".join(html.split())


def test_totals_follow_the_filters(operator_client, calls):
    # given five calls; when the Lviv device's are shown
    response = operator_client.get("/calls/", {"device": calls.lviv.pk})
    # then the totals are of its three: 0.40 + 3.00 (c3 is not priced)
    assert response.context["totals"] == {
        "count": 3, "duration": 180, "costs": [{"currency": "UAH", "cost": Decimal("3.40")}]}


def test_page_shows_cost_to_the_currency_minor_unit(operator_client, db):
    # given calls costed in KWD (three places) and JPY (none)
    device = DeviceFactory()
    make_call(device=device, key="k", start=datetime(2024, 6, 17, tzinfo=UTC), cost="1.2345",
              currency="KWD")
    make_call(device=device, key="j", start=datetime(2024, 6, 18, tzinfo=UTC), cost="150",
              currency="JPY")
    # when the page is shown
    html = operator_client.get("/calls/").content.decode()
    # then each cost is written as the export writes it (one money rule, STYLE rule 8)
    assert "1.235 KWD" in html
    assert "150 JPY" in html


# -- the searches behind the subscriber and group filters

def test_subscriber_search_suggests_by_name_and_account(operator_client, calls):
    # given Ivan and Olena (and an account number given by hand)
    calls.olena.account_number = "A-7"
    calls.olena.save()
    # when a fragment of a name, an account number and nothing are searched
    by_name = operator_client.get("/lookup/subscribers", {"q": "petr"})
    by_account = operator_client.get("/lookup/subscribers", {"q": "a-7"})
    nothing = operator_client.get("/lookup/subscribers", {"q": " "})
    # then each answers the matching subscribers with their ids and labels
    assert by_name["Content-Type"] == "application/json"
    assert json.loads(by_name.content) == {"results": [
        {"id": calls.ivan.pk, "label": f"Ivan Petrenko · {calls.ivan.account_number}"}]}
    assert json.loads(by_account.content) == {"results": [
        {"id": calls.olena.pk, "label": "Olena Koval · A-7"}]}
    assert json.loads(nothing.content) == {"results": []}


def test_group_search_suggests_groups_with_their_node(operator_client, calls):
    # given Sales and Support on node Kyiv
    # when "s" is searched
    response = operator_client.get("/lookup/groups", {"q": "s"})
    # then both come, by name, each with its node
    assert json.loads(response.content) == {"results": [
        {"id": calls.sales.pk, "label": "Sales · Kyiv"},
        {"id": calls.support.pk, "label": f"Support · {calls.support.node.name}"}]}


def test_searches_answer_at_most_twenty_in_a_fixed_number_of_queries(
        operator_client, db, django_assert_max_num_queries):
    # given 30 subscribers and 30 groups named alike
    node = DeviceFactory().node
    Subscriber.objects.bulk_create(Subscriber(full_name=f"Ivan {n:02}") for n in range(30))
    SubscriberGroup.objects.bulk_create(SubscriberGroup(node=node, name=f"Team {n:02}")
                                        for n in range(30))
    # when each is searched; then session, user, rights (2) and the rows do it
    with django_assert_max_num_queries(5):
        people = operator_client.get("/lookup/subscribers", {"q": "ivan"})
    with django_assert_max_num_queries(5):
        teams = operator_client.get("/lookup/groups", {"q": "team"})
    # and twenty are suggested, in order of name
    assert [r["label"] for r in json.loads(people.content)["results"]] == [
        f"Ivan {n:02}" for n in range(20)]
    assert len(json.loads(teams.content)["results"]) == 20


def test_the_page_offers_the_searches_not_a_list_of_every_subscriber(operator_client, calls):
    # given subscribers and groups
    # when the page is shown
    html = operator_client.get("/calls/").content.decode()
    # then the subscriber and group filters are search boxes backed by the lookups
    assert 'data-lookup="/lookup/subscribers"' in html
    assert 'data-lookup="/lookup/groups"' in html
    assert 'list="id_subscriber_text-options"' in html
    assert "Olena Koval" not in html.split('<div id="calls-results">')[0]


# -- the call's page

def test_call_detail_explains_the_cost(operator_client, site):
    # given a call of Ivan's rated by the pipeline: Kyiv 38044 at 0.50/min, 61 s
    site.ingest(cdr_line())
    call = Call.objects.get()
    # when its page is opened
    response = operator_client.get(f"/calls/{call.pk}/")
    # then it shows the cost and the rule that produced it (0.50 * 120 / 60 = 1.00)
    html = response.content.decode()
    assert response.status_code == 200
    assert "1.00 UAH" in html
    assert ("code 38044 (Kyiv), tariff Kyiv; 61s billed as 120s (whole minutes 60/60) at "
            "0.5 UAH/min; = 1.00 UAH (rounded half up)") in html
    assert "Ivan Petrenko" in html
    # and the start in the device's zone next to UTC
    assert "2024-06-17 10:00:00 (Europe/Kyiv; 2024-06-17 07:00:00 UTC)" in html


def test_call_detail_of_a_missing_call_is_not_found(operator_client, db):
    # given no calls; when a call page is requested; then 404
    assert operator_client.get("/calls/999999/").status_code == 404


# -- query counts

def _calls_for_query_count(n, *, start=datetime(2024, 6, 1, tzinfo=UTC)):
    """n calls, each with its own subscriber in its own group, on one device."""
    device = DeviceFactory()
    operator = device.default_operator
    tariff = priced_code(operator=operator, plan=TariffPlanFactory(), code="380",
                         price="1.00").tariff
    first = Call.objects.count()
    groups = SubscriberGroup.objects.bulk_create(
        SubscriberGroup(node=device.node, name=f"G{first + i}") for i in range(n))
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(full_name=f"S{first + i}", group=group) for i, group in enumerate(groups))
    Call.objects.bulk_create(
        Call(device=device, source_key=f"q{first + i}", start=start, subscriber=subscriber,
             extension="101", direction=Direction.OUTGOING, call_type=CallType.LOCAL,
             duration=60, billable_seconds=60, operator=operator, tariff=tariff, code="380",
             cost=Decimal("1.00"), currency="UAH")
        for i, subscriber in enumerate(subscribers))
    return device


# session, user, the user's rights and their groups' rights, the totals, the page count,
# the page's rows, the devices of the device filter
PAGE_QUERIES = 8


def test_page_query_count_is_fixed_for_5_or_500_calls(operator_client, db,
                                                      django_assert_max_num_queries):
    # given 5 calls, then 500, each with its own subscriber and group
    counts = []
    for n in (5, 495):
        _calls_for_query_count(n)
        # when the page is shown
        with django_assert_max_num_queries(PAGE_QUERIES), \
                CaptureQueriesContext(connection) as queries:
            response = operator_client.get("/calls/")
        counts.append(len(queries))
        assert len(listed(response)) == min(n, 50)
    # then the same number of queries served 5 and 500 calls
    assert counts[0] == counts[1]


def test_filtered_page_query_count_is_fixed(operator_client, db, django_assert_max_num_queries):
    # given 500 calls
    device = _calls_for_query_count(500)
    group = SubscriberGroup.objects.order_by("pk").first()
    # when filtered by period, device, group (its tree), subscriber's text and sorted by
    # subscriber; then the page's queries, plus the devices' zones for the period, the
    # device and group chosen, the groups' tree and the search of the text
    with django_assert_max_num_queries(PAGE_QUERIES + 5):
        response = operator_client.get("/calls/", {
            "date_from": "2024-06-01", "date_to": "2024-06-30", "device": device.pk,
            "group": group.pk, "subscriber_text": "S", "sort": "subscriber"})
    assert response.context["filter"].errors["subscriber_text"]  # S is everyone: choose
    with django_assert_max_num_queries(PAGE_QUERIES + 4):
        response = operator_client.get("/calls/", {
            "date_from": "2024-06-01", "date_to": "2024-06-30", "device": device.pk,
            "group": group.pk, "sort": "subscriber"})
    assert len(listed(response)) == 1
