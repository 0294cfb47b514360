"""`manage.py alerts --from D --to D [--level warning|critical]`: the alerts scripts raised
(host.alert, R9.5) in a period, as a JSON list of {time, script, level, reason, call_id,
subscriber_id}, oldest first."""
import json
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scripts.models import Alert


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} takes a date YYYY-MM-DD, not {text!r}") from None


class Command(BaseCommand):
    help = "Print the alerts of a period as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD",
                            help="The last day of the period (included).")
        parser.add_argument("--level", choices=Alert.Level.values)

    def handle(self, *args, date_from, date_to, level, **options):
        first, last = _day(date_from, "--from"), _day(date_to, "--to")
        if last < first:
            raise CommandError("--to is before --from")
        zone = timezone.get_current_timezone()
        alerts = Alert.objects.filter(
            at__gte=datetime.combine(first, time(), zone),
            at__lt=datetime.combine(last + timedelta(days=1), time(), zone)).order_by("at", "pk")
        if level:
            alerts = alerts.filter(level=level)
        self.stdout.write(json.dumps([
            {"time": alert.at.astimezone(zone).isoformat(), "script": alert.script,
             "level": alert.level, "reason": alert.reason, "call_id": alert.call_id,
             "subscriber_id": alert.subscriber_id} for alert in alerts], ensure_ascii=False))
