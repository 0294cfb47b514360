"""GET /health: the state of the database, the broker and each observer profile."""
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


@require_GET
def health(request):
    """Public and cheap: load balancers and `make run` poll it."""
    body = {"database": _database(), "broker": _broker(), "observers": [], "calls": None}
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
    ok = all(body[k]["status"] == "ok" for k in ("database", "broker"))
    body["status"] = "ok" if ok else "error"
    return JsonResponse(body, status=200 if ok else 503)
