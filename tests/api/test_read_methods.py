"""R10 (beyond the original): the read methods an integrator needs, with their rights."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.models import Call
from tariffs.choices import Direction
from tests.api.conftest import bearer_of, make_user

pytestmark = pytest.mark.usefixtures("calls")


@pytest.fixture
def calls(site):
    """The site's subscriber on 2001 since 2023 (the seed document's number), and three calls
    of May 2023 to Kyiv: two of his, priced, and an unpriced one of his colleague's."""
    site.number.dn, site.number.valid_from = "2001", date(2023, 1, 1)
    site.number.save()
    for key, start, subscriber, cost in (
            # 22:30 UTC on 31 May is 1 June 01:30 in Kyiv
            ("c1", datetime(2023, 5, 31, 22, 30, tzinfo=UTC), site.subscriber, Decimal("1.0000")),
            ("c2", datetime(2023, 5, 15, 9, 0, tzinfo=UTC), site.subscriber, Decimal("0.5000")),
            ("c3", datetime(2023, 5, 16, 9, 0, tzinfo=UTC), site.colleague, None)):
        Call.objects.create(device=site.device, source_key=key, start=start, duration=60,
                            direction=Direction.OUTGOING, call_type=3, extension="2001",
                            subscriber=subscriber, dialled="90441234567",
                            normalized="380441234567", cost=cost,
                            currency="UAH" if cost is not None else "",
                            tariff=site.kyiv.tariff if cost is not None else None)


def test_subscribers_are_listed_filtered_and_paged(client, bearer, site):
    # given two subscribers in Sales
    # when the list is asked for by department, by name, and one per page
    by_department = client.get(f"/api/subscribers?departmentid={site.subscriber.group_id}",
                               **bearer).json()
    by_name = client.get("/api/subscribers?q=olena", **bearer).json()
    first_page = client.get("/api/subscribers?page=1&page_size=1", **bearer).json()
    # then the counts and the names are those
    assert by_department["count"] == 2
    assert [s["id"] for s in by_name["results"]] == [site.colleague.pk]
    assert (first_page["count"], len(first_page["results"])) == (2, 1)


def test_one_subscriber_comes_with_its_numbers(client, bearer, site):
    # given the subscriber, holding 2001 on the site's PBX
    # when asked for
    body = client.get(f"/api/subscribers/{site.subscriber.pk}", **bearer).json()
    # then the numbers are listed with their PBX
    assert [(n["dn"], n["pbxid"]) for n in body["numbers"]] == [("2001", site.device.pk)]


def test_calls_are_cut_in_whole_days_of_the_pbx_and_cost_is_exact_text(client, bearer, site):
    # given calls on 15 May, 16 May and (in Kyiv) 1 June
    # when May is asked for, for the subscriber
    body = client.get("/api/calls?fromdate=2023-05-01&todate=2023-05-31"
                      f"&subscriberid={site.subscriber.pk}", **bearer).json()
    # then only the 15 May call is there: the 31 May 22:30 UTC call is June in Kyiv
    assert body["count"] == 1
    call = body["results"][0]
    assert (call["start"], call["cost"], call["currency"]) == (
        "2023-05-15T12:00:00+03:00", "0.50", "UAH")


def test_a_bad_page_size_and_an_unknown_pbx_are_refused(client, bearer):
    # given calls of May
    # when the page is too big, or the PBX unknown
    big = client.get("/api/calls?fromdate=2023-05-01&todate=2023-05-31&page_size=501", **bearer)
    unknown = client.get("/api/calls?fromdate=2023-05-01&todate=2023-05-31&pbxid=999999",
                         **bearer)
    # then 400 and 404, with messages
    assert big.status_code == 400 and "page_size" in big.json()["message"]
    assert unknown.status_code == 404 and "message" in unknown.json()


def test_list_queries_do_not_grow_with_the_page(client, bearer, site,
                                                django_assert_max_num_queries):
    # given many more calls
    Call.objects.bulk_create(
        Call(device=site.device, source_key=f"x{n}", start=datetime(2023, 5, 20, 9, tzinfo=UTC),
             duration=10, direction=Direction.OUTGOING, extension="2001",
             subscriber=site.subscriber)
        for n in range(60))
    # when a page of 100 is asked for; then a fixed number of queries serve it
    with django_assert_max_num_queries(8):
        response = client.get("/api/calls?fromdate=2023-05-01&todate=2023-05-31&page_size=100",
                              **bearer)
    assert response.json()["count"] == 62


def test_read_methods_need_their_own_right(client):
    # given a user with only the charges right
    user = make_user(name="charges-only", rights=["accounts.charges"])
    # when it lists calls or subscribers
    calls = client.get("/api/calls?fromdate=2023-05-01&todate=2023-05-31", **bearer_of(user))
    subscribers = client.get("/api/subscribers", **bearer_of(user))
    # then 403
    assert calls.status_code == 403
    assert subscribers.status_code == 403
