"""`manage.py rate`: explain how a call would be priced, as one JSON object (R4)."""
import json
import zoneinfo
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from billing.calls import CallBuilder
from billing.models import Device
from observers.parsers.base import CallRecord
from tariffs.choices import Direction

DIRECTIONS = {"out": Direction.OUTGOING, "in": Direction.INCOMING}


class Command(BaseCommand):
    help = "Rate one call on a device, as dialled there, and say why it costs what it does."

    def add_arguments(self, parser):
        parser.add_argument("--device", required=True, help="Device name.")
        parser.add_argument("--number", required=True, help="The number as dialled on the device.")
        parser.add_argument("--duration", required=True, type=int, help="Talk time, seconds.")
        parser.add_argument("--at", required=True,
                            help="Start, ISO 8601; without an offset it is the device's local time.")
        parser.add_argument("--direction", choices=sorted(DIRECTIONS), default="out")
        parser.add_argument("--subscriber", default="", metavar="DN",
                            help="The extension making (or taking) the call: selects its plan.")
        parser.add_argument("--route", default="", help="The route (trunk) the call used.")

    def handle(self, *args, device, number, duration, at, direction, subscriber, route, **opts):
        try:
            dev = Device.objects.get(name=device)
        except Device.DoesNotExist:
            raise CommandError(f"no device named {device!r}") from None
        if duration < 0:
            raise CommandError("--duration must not be negative")
        try:
            start = datetime.fromisoformat(at)
        except ValueError:
            raise CommandError(f"--at {at!r} is not an ISO 8601 date and time") from None
        if start.tzinfo is not None:
            start = start.astimezone(zoneinfo.ZoneInfo(dev.timezone)).replace(tzinfo=None)
        record = CallRecord(source_key="explain", start=start, duration=duration,
                            direction=DIRECTIONS[direction], extension=subscriber,
                            dialled=number, trunk=route)
        call, decision = CallBuilder(dev).build_explained(record)
        result = {
            "dialled": number,
            "normalized": call.normalized,
            "direction": direction,
            "call_type": int(call.call_type),
            "operator": call.operator.name if call.operator else None,
            "plan": call.plan.name if call.plan_id else None,
            "code": call.code or None,
            "tariff": call.tariff.name if call.tariff_id else None,
            "billable_seconds": call.billable_seconds,
            "cost": None if call.cost is None else f"{call.cost:f}",
            "currency": call.currency or None,
            "rule": decision.rule if decision is not None else call.rating_note,
        }
        if call.auth_code:
            result["auth_code"] = call.auth_code
        if call.subscriber_id:
            result["subscriber"] = call.subscriber.full_name
        self.stdout.write(json.dumps(result, ensure_ascii=False))
