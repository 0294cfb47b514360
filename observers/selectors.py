"""Reads for the observers pages (R2.5, R2.7)."""
from collections import deque
from datetime import datetime, time

from django.db.models import Count, Q
from django.utils import timezone

from billing.models import Call
from observers.models import ObserverProfile, RejectedRecord


def profile_list():
    """Profiles with their device, and calls stored today per device (server's day)."""
    today = datetime.combine(timezone.localdate(), time.min, timezone.get_current_timezone())
    profiles = list(ObserverProfile.objects.select_related("device").order_by("name"))
    counts = dict(Call.objects.filter(start__gte=today, device__in={p.device_id for p in profiles})
                  .values_list("device").annotate(n=Count("id")).values_list("device", "n"))
    for profile in profiles:
        profile.calls_today = counts.get(profile.device_id, 0)
    return profiles


def profile_log_tail(profile: ObserverProfile, *, lines: int = 200) -> list[str]:
    """The last lines of the profile's own log (R2.5)."""
    path = profile.log_path
    if not path.exists():
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        return list(deque(handle, maxlen=lines))


def reject_list(*, profile: ObserverProfile, search: str = ""):
    qs = RejectedRecord.objects.filter(profile=profile)
    if search:
        qs = qs.filter(Q(raw__icontains=search) | Q(reason__icontains=search))
    return qs.order_by("-received_at", "-id")
