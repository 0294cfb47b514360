"""R11.3: reports and charts over the stored calls: cost and duration by subscriber, group,
destination, call type, operator, route, day and hour; top-N; busiest hours; unknown
numbers, unanswered and short calls; a provider's charges and payments (docs/reports.md)."""
from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"
