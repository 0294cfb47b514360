"""Reads of the scripts' outcomes for the operator pages: the event log and the alerts."""
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from scripts.models import Alert, EventLogEntry, ScriptBinding


def _period(queryset: QuerySet, since: date | None, until: date | None) -> QuerySet:
    """Entries from the start of `since` to the end of `until`, days of the server's zone."""
    zone = timezone.get_current_timezone()
    if since:
        queryset = queryset.filter(at__gte=datetime.combine(since, time.min, zone))
    if until:
        queryset = queryset.filter(at__lt=datetime.combine(until + timedelta(days=1), time.min,
                                                           zone))
    return queryset


def event_log_list(*, search: str = "", event: str = "", profile: str = "", script: str = "",
                   errors_only: bool = False, since: date | None = None,
                   until: date | None = None, call_id: int | None = None) -> QuerySet:
    """The event log, newest first. `search` looks in the summary, the script's log lines
    and its error."""
    entries = EventLogEntry.objects.all()
    if search:
        entries = entries.filter(Q(summary__icontains=search) | Q(error__icontains=search)
                                 | Q(log__icontains=search))
    for field, value in (("event", event), ("profile", profile), ("script", script)):
        if value:
            entries = entries.filter(**{field: value})
    if call_id is not None:
        entries = entries.filter(call_id=call_id)
    if errors_only:
        entries = entries.exclude(error="")
    return _period(entries, since, until).order_by("-at", "-pk")


def alert_list(*, level: str = "", search: str = "", script: str = "",
               since: date | None = None, until: date | None = None) -> QuerySet:
    alerts = Alert.objects.all()
    if level:
        alerts = alerts.filter(level=level)
    if script:
        alerts = alerts.filter(script=script)
    if search:
        alerts = alerts.filter(reason__icontains=search)
    return _period(alerts, since, until).order_by("-at", "-pk")


def binding_list(*, profile) -> QuerySet:
    return ScriptBinding.objects.filter(profile=profile).order_by("event", "script")
