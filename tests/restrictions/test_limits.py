"""R8.1, R8.2: limits checked against the month's usage after each stored batch, the warning
(mail and event) before the closure, group limits over the subtree, the operator's reopen
holding for the month, and the reopening at 00:00 on the 1st in the node's zone. No PBX
here (test_enforcement.py has the fake 3CX): the classes and their history."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from restrictions.models import Cause, ClassChange, Closure, Limit, LimitMonth
from restrictions.selectors import closed_subscribers, group_tree, limit_usage, limit_usages
from restrictions.services import closure_make, closure_reopen, limits_check, limits_reopen_due
from scripts.events import Event, event_subscribe
from scripts.models import OutgoingMail
from tests.factories import PhoneNumberFactory, SubscriberFactory, SubscriberGroupFactory
from tests.observers.threecx_cdr import cdr_line

pytestmark = pytest.mark.django_db

# Mid-June 2024 in Kyiv: the calls of cdr_line() (17 June) are this month's.
JUNE = datetime(2024, 6, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _in_process(settings):
    """The limits' check runs where the calls were stored (with a broker it is a task of a
    worker, which these tests do not start)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def june():
    with time_machine.travel(JUNE, tick=False):
        yield


@pytest.fixture
def events():
    seen = []
    unsubscribe = event_subscribe(lambda event, params: seen.append((event, params)))
    yield seen
    unsubscribe()


def kyiv_call(key: str, minutes: int, *, extension: str = "101") -> str:
    """A call of `minutes` to Kyiv (0.50 a minute) on 17 June 2024."""
    return cdr_line(historyid=key, from_no=f"Ext.{extension}", from_dn=extension,
                    duration=f"00:{minutes:02d}:00", time_end="2024/06/17 11:00:00")


def collect(site, capture, *lines):
    """Lines collected, and what their commit sets off (the limits' check) run."""
    with capture(execute=True):
        site.ingest(*lines)


def test_a_money_limit_warns_first_then_closes_the_subscriber(
        site, june, events, settings, django_capture_on_commit_callbacks):
    # given a limit of 5.00 UAH a month with a warning at 80 %
    settings.TARISCOPE_ALERT_EMAIL = "security@example.com"
    limit = Limit.objects.create(subscriber=site.subscriber, money=Decimal("5.00"),
                                 currency="UAH", warn_percent=80)
    # when 4.00 UAH of calls are stored, then 0.50 more, then 1.00 more
    collect(site, django_capture_on_commit_callbacks, kyiv_call("a", 8))
    after_four = (Closure.objects.count(), OutgoingMail.objects.count())
    collect(site, django_capture_on_commit_callbacks, kyiv_call("b", 1))
    after_four_fifty = Closure.objects.count()
    collect(site, django_capture_on_commit_callbacks, kyiv_call("c", 2))
    # then the warning went at 4.00 (80 %), and the closure at 5.00 (100 %), once each
    assert after_four == (0, 1) and after_four_fifty == 0
    state = LimitMonth.objects.get(limit=limit, month=date(2024, 6, 1))
    assert state.warned_at and state.reached_at
    closure = Closure.objects.get()
    assert (closure.subscriber, closure.cause, closure.limit, closure.month) == (
        site.subscriber, Cause.LIMIT, limit, date(2024, 6, 1))
    assert "5.50 of 5.00 UAH (110 %) in 2024-06" in closure.reason
    subjects = list(OutgoingMail.objects.values_list("subject", flat=True))
    assert subjects == ["Limit warning: Ivan Petrenko", "Outgoing calls closed: Ivan Petrenko"]
    assert [e for e, _ in events if e in (Event.LIMIT_WARNING,
                                          Event.SUBSCRIBER_CLASS_CHANGED)] == [
        Event.LIMIT_WARNING, Event.SUBSCRIBER_CLASS_CHANGED]
    assert ClassChange.objects.get().new_class == "closed"


def test_a_seconds_limit_of_some_call_types_counts_only_those(
        site, june, django_capture_on_commit_callbacks):
    # given a limit of 10 minutes of international calls
    Limit.objects.create(subscriber=site.subscriber, seconds=600, call_types=[5])
    # when 20 minutes of Kyiv calls and 9 minutes to London are stored
    collect(site, django_capture_on_commit_callbacks, kyiv_call("k", 20),
            cdr_line(historyid="uk", duration="00:09:00", to_no="00442071234567",
                     dial_no="900442071234567", final_number="00442071234567"))
    # then nothing is closed; and one minute more to London closes
    assert not Closure.objects.exists()
    collect(site, django_capture_on_commit_callbacks,
            cdr_line(historyid="uk2", duration="00:01:00", to_no="00442071234567",
                     dial_no="900442071234567", final_number="00442071234567"))
    assert Closure.objects.get().subscriber == site.subscriber


def test_a_group_limit_counts_its_subtree_and_closes_everyone_in_it(
        site, june, django_capture_on_commit_callbacks):
    # given Sales with a sub-group whose member holds 103, and a limit of 3.00 on Sales
    team = SubscriberGroupFactory(node=site.node, name="Sales team", parent=site.sales)
    member = SubscriberFactory(full_name="Taras Shevchuk", group=team)
    PhoneNumberFactory(subscriber=member, device=site.device, dn="103")
    outsider = SubscriberFactory(full_name="Outside", group=None)
    Limit.objects.create(group=site.sales, money=Decimal("3.00"), currency="UAH")
    # when 101 and 103 each call Kyiv for 3 minutes (1.50 each)
    collect(site, django_capture_on_commit_callbacks, kyiv_call("s", 3),
            kyiv_call("m", 3, extension="103"))
    # then Sales is closed, and with it everyone below it, and no one else
    closure = Closure.objects.get()
    assert closure.group == site.sales
    assert closed_subscribers({site.subscriber.pk, site.colleague.pk, member.pk,
                               outsider.pk}, group_tree()) == {
        site.subscriber.pk, site.colleague.pk, member.pk}


def test_an_operators_reopen_holds_for_the_rest_of_the_month(
        site, june, django_capture_on_commit_callbacks):
    # given a subscriber closed by a limit of 1.00
    Limit.objects.create(subscriber=site.subscriber, money=Decimal("1.00"), currency="UAH")
    collect(site, django_capture_on_commit_callbacks, kyiv_call("a", 2))
    closure = Closure.objects.get()
    # when an operator reopens it, and more calls are stored
    closure_reopen(closure=closure, by="operator olena", reason="approved by the director")
    collect(site, django_capture_on_commit_callbacks, kyiv_call("b", 2))
    # then it stays open this month, and the history says who did what
    assert not Closure.objects.filter(reopened_at__isnull=True).exists()
    assert list(ClassChange.objects.order_by("pk").values_list("new_class", "by")) == [
        ("closed", "limit"), ("open", "operator olena")]


def test_closures_by_limits_reopen_at_midnight_on_the_first_in_the_nodes_zone(
        site, django_capture_on_commit_callbacks):
    # given a subscriber closed by a limit in June, and one closed by an operator
    with time_machine.travel(JUNE, tick=False):
        Limit.objects.create(subscriber=site.subscriber, money=Decimal("1.00"), currency="UAH")
        collect(site, django_capture_on_commit_callbacks, kyiv_call("a", 2))
        by_hand = closure_make(subscriber=site.colleague, cause=Cause.OPERATOR,
                               reason="left the company", by="operator olena")
    # when it is 23:59 on 30 June in Kyiv (20:59 UTC), then 00:00 on 1 July (21:00 UTC)
    with time_machine.travel(datetime(2024, 6, 30, 20, 59, tzinfo=UTC), tick=False):
        before = limits_reopen_due()
    with time_machine.travel(datetime(2024, 6, 30, 21, 0, tzinfo=UTC), tick=False):
        at_midnight = limits_reopen_due()
    # then the limit's closure is reopened at midnight, and the operator's stays
    assert (before, at_midnight) == ({"reopened": 0}, {"reopened": 1})
    assert Closure.objects.get(subscriber=site.subscriber).reopened_by == "month start"
    by_hand.refresh_from_db()
    assert by_hand.is_open


def test_a_subscriber_closed_already_is_not_closed_twice(site):
    # given a subscriber closed by an operator
    first = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="r", by="o")
    # when closed again
    second = closure_make(subscriber=site.subscriber, cause=Cause.OPERATOR, reason="r", by="o")
    # then nothing more is made
    assert first is not None and second is None
    assert Closure.objects.count() == 1 and ClassChange.objects.count() == 1


def test_the_check_after_a_batch_reads_a_fixed_number_of_rows_however_many_limits(
        site, june, django_assert_max_num_queries):
    # given 40 subscribers with a limit each, a team under Sales with a group limit, and
    # a month of usage for each of them
    from billing.models import MonthUsage
    team = SubscriberGroupFactory(node=site.node, name="Sales team", parent=site.sales)
    subscribers = [SubscriberFactory(full_name=f"S{n}", group=team if n % 2 else site.sales)
                   for n in range(40)]
    for n, subscriber in enumerate(subscribers):
        PhoneNumberFactory(subscriber=subscriber, device=site.device, dn=str(300 + n))
        Limit.objects.create(subscriber=subscriber, money=Decimal("1000.00"), currency="UAH")
        MonthUsage.objects.create(subscriber=subscriber, month=date(2024, 6, 1), call_type=3,
                                  currency="UAH", calls=1, seconds=60, cost=Decimal("0.50"))
    Limit.objects.create(group=site.sales, seconds=10**6, call_types=[3])
    # when their limits are checked; then a fixed number of queries does it
    with django_assert_max_num_queries(9):
        summary = limits_check(subscriber_ids=[s.pk for s in subscribers])
    assert summary == {"limits": 41, "warned": 0, "closed": 0}


def test_the_batched_usage_is_each_limits_own(site, june):
    # given usage in two months, two call types and two currencies, and limits of a
    # subscriber and of groups, in money and in seconds, of some call types or all
    from billing.models import MonthUsage
    team = SubscriberGroupFactory(node=site.node, name="Sales team", parent=site.sales)
    member = SubscriberFactory(full_name="Taras", group=team)
    for subscriber, month, call_type, currency, seconds, cost in (
            (site.subscriber, date(2024, 6, 1), 3, "UAH", 120, "1.00"),
            (site.subscriber, date(2024, 6, 1), 5, "UAH", 60, "9.00"),
            (site.subscriber, date(2024, 6, 1), 5, "EUR", 30, "2.00"),
            (site.subscriber, date(2024, 5, 1), 3, "UAH", 600, "5.00"),
            (member, date(2024, 6, 1), 5, "UAH", 90, "4.50"),
            (site.colleague, date(2024, 6, 1), 6, "UAH", 45, "0.75")):
        MonthUsage.objects.create(subscriber=subscriber, month=month, call_type=call_type,
                                  currency=currency, calls=1, seconds=seconds,
                                  cost=Decimal(cost))
    limits = [
        Limit.objects.create(subscriber=site.subscriber, money=Decimal("100"), currency="UAH"),
        Limit.objects.create(subscriber=site.subscriber, seconds=1000, call_types=[5]),
        Limit.objects.create(group=site.sales, money=Decimal("100"), currency="UAH"),
        Limit.objects.create(group=team, seconds=1000),
        Limit.objects.create(group=site.sales, money=Decimal("100"), currency="EUR",
                             call_types=[5, 6]),
    ]
    parents = group_tree()
    months = {limit: date(2024, 6, 1) for limit in limits}
    # when the usage of all is read at once; then it is what each one's own read says
    batched = limit_usages(months, parents)
    assert batched == {limit.pk: limit_usage(limit, date(2024, 6, 1), parents)
                       for limit in limits}
    assert list(batched.values()) == [Decimal("10.00"), 90, Decimal("15.25"), 90,
                                      Decimal("2.00")]
