"""R11.1: the dashboard (the home page) and the global search."""
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import User

from restrictions.models import Cause
from restrictions.services import closure_make
from scripts.models import Alert
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

# The afternoon of the calls of cdr_line() (17 June 2024, Kyiv).
AFTERNOON = datetime(2024, 6, 17, 14, 0, tzinfo=UTC)


@pytest.fixture
def operator(client, db):
    client.force_login(User.objects.create_user("olena", password="pw-olena-1"))
    return client


def kyiv_call(key: str, minutes: int, extension: str = "101") -> str:
    return cdr_line(historyid=key, from_no=f"Ext.{extension}", from_dn=extension,
                    duration=f"00:{minutes:02d}:00", time_end="2024/06/17 11:00:00")


def test_the_dashboard_shows_todays_calls_and_cost_alerts_closures_and_destinations(
        operator, site, settings):
    # given two calls to Kyiv today (3 and 2 minutes at 0.50), an alert and a closure
    settings.TIME_ZONE = "Europe/Kyiv"
    with time_machine.travel(AFTERNOON, tick=False):
        site.ingest(kyiv_call("a", 3), kyiv_call("b", 2, "102"))
        Alert.objects.create(script="fraud_rules.py", level="critical", reason="a dear call")
        closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="no budget",
                     by="olena")
        # when the home page is opened
        page = operator.get("/").content.decode()
    # then it shows the day's and the month's calls and cost, the alert, the closure, the
    # observer and the top destination
    assert page.count("2 calls") == 2 and page.count("2.50 UAH") >= 3
    assert "a dear call" in page and "Ivan Petrenko" in page and "no budget" in page
    assert site.profile.name in page
    assert "Kyiv" in page[page.index("Top destinations"):]


def test_the_dashboard_reads_a_fixed_number_of_rows(operator, site,
                                                    django_assert_max_num_queries):
    # given many calls and alerts
    with time_machine.travel(AFTERNOON, tick=False):
        site.ingest(*(kyiv_call(f"c{n}", 1 + n % 5) for n in range(40)))
        for n in range(20):
            Alert.objects.create(script="s", level="warning", reason=f"r{n}")
        # when the page is opened; then a bounded number of queries serve it
        with django_assert_max_num_queries(12):
            assert operator.get("/").status_code == 200


def test_the_search_goes_straight_to_the_one_subscriber_or_call_it_finds(operator, site):
    # given the site (Ivan holds 101, Olena 102) and one stored call
    with time_machine.travel(AFTERNOON, tick=False):
        site.ingest(kyiv_call("a", 3))
    from billing.models import Call
    call = Call.objects.get()
    # when searching for a number, a name, an account and a call id
    by_number = operator.get("/search", {"q": "101"})
    by_name = operator.get("/search", {"q": "koval"})
    by_call = operator.get("/search", {"q": f"#{call.pk}"})
    bare = operator.get("/search", {"q": str(call.pk)})
    # then each finds its one match and goes there; a bare id lists the call among the rest
    assert by_number["Location"] == f"/subscribers/{site.subscriber.pk}/"
    assert by_name["Location"] == f"/subscribers/{site.colleague.pk}/"
    assert by_call["Location"] == f"/calls/{call.pk}/"
    # (the bare id goes to the call when nothing else holds those digits, as on
    # PostgreSQL's large ids, and lists it among the numbers holding them otherwise)
    assert (bare.status_code == 302 and bare["Location"] == f"/calls/{call.pk}/") or \
        f'href="/calls/{call.pk}/"' in bare.content.decode()


def test_the_search_lists_several_matches_and_says_when_there_is_none(operator, site):
    # when searching for what two subscribers share, and for nothing
    several = operator.get("/search", {"q": "10"}).content.decode()
    none = operator.get("/search", {"q": "zzz"}).content.decode()
    # then both numbers are listed, and the empty search says so
    assert "Ivan Petrenko" in several and "Olena Koval" in several
    assert "Nothing matches" in none


def test_the_pages_need_a_login(client, db):
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert client.get("/search?q=1")["Location"].startswith("/accounts/login/")


def test_the_language_switcher_remembers_ukrainian(operator, site):
    # when Ukrainian is chosen in the header
    response = operator.post("/i18n/setlang/", {"language": "uk", "next": "/"})
    # then the choice is remembered and the page is in Ukrainian
    assert response.status_code == 302
    assert operator.get("/").headers["Content-Language"] == "uk"
