"""R11.1: the reads of the dashboard (the home page): the calls and their cost today and
this month, the observers, the latest alerts and closures, the top destinations."""
from datetime import datetime, time

from django.db.models import Count, Sum
from django.utils import timezone

from billing.models import Call
from observers.selectors import profile_list
from restrictions.models import Closure
from scripts.models import Alert

LATEST = 5


def _since(day) -> datetime:
    return datetime.combine(day, time.min, timezone.get_current_timezone())


def calls_summary(since: datetime) -> dict:
    """Calls started since `since`: their count and seconds, and their cost per currency
    (never added across currencies)."""
    calls = Call.objects.filter(start__gte=since)
    totals = calls.aggregate(calls=Count("id"), seconds=Sum("duration"))
    totals["costs"] = list(calls.exclude(cost=None).order_by().values("currency")
                           .annotate(cost=Sum("cost")).order_by("currency"))
    return totals


def top_destinations(since: datetime, *, limit: int = LATEST) -> list[dict]:
    """The destinations (tariffs) that cost the most since `since`, per currency."""
    return list(Call.objects.filter(start__gte=since).exclude(cost=None)
                .exclude(tariff=None).order_by()
                .values("tariff__name", "currency")
                .annotate(calls=Count("id"), seconds=Sum("duration"), cost=Sum("cost"))
                .order_by("-cost")[:limit])


def dashboard_summary() -> dict:
    today = timezone.localdate()
    month = _since(today.replace(day=1))
    open_closures = Closure.objects.filter(reopened_at__isnull=True)
    return {
        "today": calls_summary(_since(today)),
        "month": calls_summary(month),
        "month_start": today.replace(day=1),
        "profiles": profile_list(),
        "alerts": list(Alert.objects.order_by("-at", "-pk")[:LATEST]),
        "closures": list(open_closures.select_related("subscriber", "group")
                         .order_by("-closed_at", "-pk")[:LATEST]),
        "closures_count": open_closures.count(),
        "destinations": top_destinations(month),
    }
