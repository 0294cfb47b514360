"""Reads for the observers pages (R2.5, R2.7)."""
from collections import deque

from django.db.models import Q
from django.utils import timezone

from observers.models import ObserverProfile, RejectedRecord


def profile_list():
    """Profiles with their device, and the calls each stored today (the server's day)."""
    today = timezone.localdate()
    profiles = list(ObserverProfile.objects.select_related("device").order_by("name"))
    for profile in profiles:
        profile.stored_today = profile.calls_today if profile.calls_day == today else 0
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
