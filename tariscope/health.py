"""GET /health: the state of the database, the broker and each observer profile.

Anyone (a load balancer) gets the liveness answer: the overall status and the status of the
database and the broker, 200 or 503. The details (engines and errors, every observer with
its counters, the number of calls) name the site's PBXs and traffic: they are given to a
logged-in user, or to a monitor sending `Authorization: Bearer <HEALTH_TOKEN>`."""
import hmac

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from billing.models import Call
from observers.models import ObserverProfile
from tariscope.celery import app


def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok", "engine": connection.vendor}
    except Exception as exc:  # the point of a health check is to report, not raise
        return {"status": "error", "engine": connection.vendor, "error": str(exc)}


def _broker():
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url or url.startswith("memory://"):
        return {"status": "ok", "mode": "in-process"}
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"status": "ok", "mode": "celery", "transport": conn.transport_cls}
    except Exception as exc:
        return {"status": "error", "mode": "celery", "error": str(exc)}


def _may_see_details(request) -> bool:
    if request.user.is_authenticated:
        return True
    token = settings.HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode())


@require_GET
def health(request):
    """Cheap: load balancers and `make run` poll it."""
    database, broker = _database(), _broker()
    ok = database["status"] == "ok" and broker["status"] == "ok"
    status = 200 if ok else 503
    if not _may_see_details(request):
        return JsonResponse({"status": "ok" if ok else "error",
                             "database": {"status": database["status"]},
                             "broker": {"status": broker["status"], "mode": broker["mode"]}},
                            status=status)
    body = {"database": database, "broker": broker, "observers": [], "calls": None}
    if body["database"]["status"] == "ok":
        body["calls"] = Call.objects.count()
        body["observers"] = [
            {"name": p.name, "device": p.device.name, "source": p.source, "state": p.state,
             "enabled": p.enabled, "remote": p.remote,
             "last_record_at": p.last_record_at.isoformat() if p.last_record_at else None,
             "records_total": p.records_total, "rejects_total": p.rejects_total,
             # R2.4: pieces that failed for good (kept in the raw archive for reprocess)
             "failures_total": p.failures_total, "last_failure": p.last_failure or None,
             "last_failure_at": p.last_failure_at.isoformat() if p.last_failure_at else None}
            for p in ObserverProfile.objects.select_related("device")
        ]
    body["status"] = "ok" if ok else "error"
    return JsonResponse(body, status=status)
