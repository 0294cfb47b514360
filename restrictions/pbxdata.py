"""R8.8, R8.9: call data read from the PBX's reports and kept beside the calls: the calls that
waited in queues (restrictions.QueueCall, for queue reports) and the legs of transferred
calls (restrictions.CallLeg), each leg with its internal party, that party's subscriber on
the day, and its share of the stored call's cost.

Why the legs: the 3CX CDR (the v16-v18 field set) writes a transferred call as one record,
with one originator and the total duration, so whoever took the call over is charged nothing
and the originator everything. The PBX's call log has each leg's talk time.

Which stored call a PBX call is: no key of the PBX's call log is in the stored call. A call
from a v18-format CDR keeps `historyid|callid` as its source key ("Call 1001|00000000c0ffee01_1");
3CX documents neither as the call log's CallId, MainCallHistoryId or CallHistoryId, and the
historyid counts again from 1 when 3CX restarts. A call from a v20-format CDR keeps its
cdr_id, the id of one leg, which the connector's CallLeg does not carry. So a PBX call is
matched by what both sides say: the device, the start (its first leg's, within
START_TOLERANCE), the caller, and the total talk time (the sum of its legs', within a second
per leg). Only when that leaves more than one stored call does the historyid decide
("Call <CallId>"), then the nearest start; still more than one, the legs stay unlinked
rather than be given to a guess. A stored call belongs to one PBX call only.

Legs read before their call was stored stay unlinked; importing the period again (the
periodic import reads the last hours every time) links them. The shares follow the call's
cost as it is when the legs are imported: after a call is rated again, importing its period
again shares the new cost.
"""
import bisect
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import Call, Device
from billing.numbering import DialPlan, normalize
from billing.selectors import NumberDirectory
from restrictions.connectors import CallLeg as PbxLeg
from restrictions.connectors import Period
from restrictions.models import CallLeg, PbxControl, QueueCall
from restrictions.pbx import connector_of
from restrictions.sync import control_of
from tariffs.choices import Direction

logger = logging.getLogger(__name__)

START_TOLERANCE = timedelta(seconds=5)
SHARE_QUANTUM = Decimal("0.0001")  # CallLeg.cost and Call.cost have four places
DUE_HOURS = 6


def cost_shares(cost: Decimal, seconds: Sequence[int]) -> list[Decimal]:
    """R8.9: `cost` shared in proportion to `seconds`, to 0.0001. Every leg but the longest
    (the first of the longest) gets its share rounded down; the longest gets the rest, so
    the shares sum to the cost exactly and none is negative. With no talk time at all the
    first leg carries the whole cost."""
    if not seconds:
        return []
    longest = max(range(len(seconds)), key=lambda i: (seconds[i], -i))
    total = sum(seconds)
    shares = [Decimal(0) if total == 0 else (cost * s / total).quantize(SHARE_QUANTUM, ROUND_DOWN)
              for s in seconds]
    shares[longest] = cost - sum(share for i, share in enumerate(shares) if i != longest)
    return shares


# -- R8.8: queue calls -------------------------------------------------------------------------

_QUEUE_FIELDS = ("queue_name", "answered", "agent", "agent_name", "answered_at", "wait_seconds",
                 "ring_seconds", "pbx_call_id")


def queue_calls_import(*, device: Device, period: Period, now: datetime | None = None) -> dict:
    """R8.8: the calls that waited in the PBX's queues within `period`, stored once each
    (by device, queue, caller and start: importing a period again stores nothing twice, and
    brings what the PBX changed since); a call the PBX gives without its start, or twice,
    is skipped. Seconds are whole (rounded half to even). Returns {"read", "created",
    "updated", "unchanged", "skipped"}. PBX errors propagate (NotSupported when the
    connector has no queue data)."""
    now = now or timezone.now()
    control = control_of(device)
    calls = connector_of(control).queue_calls(period)
    counts = {"read": len(calls), "created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
    with transaction.atomic():
        stored = {(q.queue, q.caller, q.started_at): q for q in QueueCall.objects.filter(
            device=device, started_at__gte=period.start, started_at__lt=period.end)}
        new: list[QueueCall] = []
        seen: set[tuple] = set()
        for call in calls:
            key = (call.queue[:32], call.caller[:200], call.started_at)
            if call.started_at is None or key in seen:
                counts["skipped"] += 1  # no start, or the same call given twice by the PBX
                continue
            seen.add(key)
            values = {
                "queue_name": call.queue_name[:200], "answered": call.answered,
                "agent": call.agent[:32], "agent_name": call.agent_name[:200],
                "answered_at": call.answered_at, "wait_seconds": _seconds(call.wait_seconds),
                "ring_seconds": _seconds(call.ring_seconds), "pbx_call_id": call.call_id[:100],
            }
            row = stored.get(key)
            if row is None:
                new.append(QueueCall(device=device, queue=key[0], caller=key[1],
                                     started_at=key[2], **values))
                counts["created"] += 1
            elif any(getattr(row, name) != values[name] for name in _QUEUE_FIELDS):
                for name, value in values.items():
                    setattr(row, name, value)
                row.save(update_fields=list(_QUEUE_FIELDS))
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        QueueCall.objects.bulk_create(new)
        _contact(control, now)
    return counts


def _seconds(value: float | None) -> int | None:
    return None if value is None else max(0, round(value))


# -- R8.9: call legs ---------------------------------------------------------------------------

_LEG_FIELDS = ("started_at", "source", "destination", "extension", "subscriber_id",
               "talk_seconds")


def call_legs_import(*, device: Device, period: Period) -> dict:
    """R8.9: the legs of the PBX's calls started within `period`, stored once each (by device,
    PBX call and leg), each with its internal party and that party's subscriber on the day;
    each PBX call linked to the stored call it is (see the module's docstring) and the
    call's cost shared between its legs by talk time (cost_shares). Returns counts of leg
    rows {"read", "created", "updated", "unchanged"} (updated: its data, its call or its
    share changed; a leg stored before, of a call this import completes, can be among them)
    and of PBX calls {"linked", "unlinked"} (with a stored call, or none yet). PBX errors
    propagate (NotSupported when the connector has no call legs)."""
    control = control_of(device)
    legs = [leg for leg in connector_of(control).call_legs(period) if leg.call_id and leg.leg_id]
    zone = zoneinfo.ZoneInfo(device.timezone)
    plan = DialPlan.from_device(device)
    numbers = NumberDirectory(device)
    with transaction.atomic():
        # Every stored leg of the calls read: a call whose legs came in two imports is one call.
        stored: dict[str, dict[str, CallLeg]] = defaultdict(dict)
        for row in CallLeg.objects.filter(device=device,
                                          pbx_call_id__in={leg.call_id[:100] for leg in legs}):
            stored[row.pbx_call_id][row.leg_id] = row
        read, created, dirty = set(), set(), {}
        caller_ids: dict[tuple[str, str], str] = {}
        for leg in legs:
            call_id, leg_id = leg.call_id[:100], leg.leg_id[:100]
            extension = _internal_party(leg, plan, numbers)
            day = (leg.started_at or period.start).astimezone(zone).date()
            holder = numbers.holder(extension, day) if extension else None
            values = {
                "started_at": leg.started_at, "source": leg.source[:200],
                "destination": leg.destination[:200], "extension": extension[:32],
                "subscriber_id": holder[0] if holder else None,
                "talk_seconds": _seconds(leg.talk_seconds) or 0,
            }
            row = stored[call_id].get(leg_id)
            if row is None:
                row = stored[call_id][leg_id] = CallLeg.objects.create(
                    device=device, pbx_call_id=call_id, leg_id=leg_id, **values)
                created.add(row.pk)
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                dirty[row.pk] = row
            read.add(row.pk)
            caller_ids[(call_id, leg_id)] = leg.source_caller_id
        matcher = _Matcher(device, plan, stored)
        linked = 0
        for call_id, rows in stored.items():
            ordered = _ordered(rows.values())
            first = ordered[0]
            callers = {v for v in (first.source, caller_ids.get((call_id, first.leg_id))) if v}
            call = matcher.call_of(call_id, ordered, callers)
            linked += call is not None
            shares = (cost_shares(call.cost, [r.talk_seconds for r in ordered])
                      if call is not None and call.cost is not None else [None] * len(ordered))
            for row, share in zip(ordered, shares, strict=True):
                call_pk = call.pk if call is not None else None
                if row.call_id != call_pk or row.cost != share:
                    row.call_id, row.cost = call_pk, share
                    dirty[row.pk] = row
        for row in dirty.values():
            row.save(update_fields=[*_LEG_FIELDS, "call", "cost"])
        _contact(control, timezone.now())
    updated = set(dirty) - created
    return {"read": len(legs), "created": len(created), "updated": len(updated),
            "unchanged": len(read - created - updated), "linked": linked,
            "unlinked": len(stored) - linked}


def _internal_party(leg: PbxLeg, plan: DialPlan, numbers: NumberDirectory) -> str:
    """The extension of a leg: its destination when that is one (the party a transfer hands
    the call to), else its source (an extension calling out), else none."""
    for party in (leg.destination, leg.source):
        if party and (party in numbers.dns or plan.is_extension(party)):
            return party
    return ""


_LAST = datetime.max.replace(tzinfo=UTC)


def _ordered(rows) -> list[CallLeg]:
    return sorted(rows, key=lambda r: (r.started_at or _LAST, r.leg_id))


class _Matcher:
    """The stored calls a batch of PBX calls may be, read at once: those of the device that
    started near the first leg of one of them."""

    def __init__(self, device: Device, plan: DialPlan, stored: dict[str, dict[str, CallLeg]]):
        self.plan = plan
        firsts = [r.started_at for rows in stored.values() for r in rows.values() if r.started_at]
        self.calls: list[Call] = []
        self.owner: dict[int, str] = {}  # stored call -> the PBX call its legs are of
        if firsts:
            low, high = min(firsts) - START_TOLERANCE, max(firsts) + START_TOLERANCE
            self.calls = list(Call.objects.filter(device=device, start__gte=low, start__lte=high)
                              .only("pk", "start", "duration", "direction", "extension",
                                    "dialled", "normalized", "source_key", "cost")
                              .order_by("start", "pk"))
            self.owner = dict(CallLeg.objects.filter(
                device=device, call__isnull=False, call__start__gte=low, call__start__lte=high)
                .values_list("call_id", "pbx_call_id"))
        self.starts = [call.start for call in self.calls]
        self.by_pk = {call.pk: call for call in self.calls}

    def call_of(self, pbx_call_id: str, legs: list[CallLeg], callers: set[str]) -> Call | None:
        """The stored call these legs (in order) are, or None when none (or no one) fits."""
        kept = {leg.call_id for leg in legs if leg.call_id is not None}
        if len(kept) == 1:  # linked by an earlier import: the call's cost may have changed
            pk = kept.pop()
            call = self.by_pk.get(pk) or Call.objects.filter(pk=pk).first()
            if call is not None:
                return call
        start = legs[0].started_at
        if start is None:
            return None
        talk = sum(leg.talk_seconds for leg in legs)
        slack = len(legs)  # each leg's talk time was rounded to the second
        low = bisect.bisect_left(self.starts, start - START_TOLERANCE)
        high = bisect.bisect_right(self.starts, start + START_TOLERANCE)
        found = [call for call in self.calls[low:high]
                 if self.owner.get(call.pk, pbx_call_id) == pbx_call_id
                 and abs(call.duration - talk) <= slack and self._called_by(call, callers)]
        if len(found) > 1:
            keyed = [c for c in found if c.source_key.split("|", 1)[0] == f"Call {pbx_call_id}"]
            found = keyed or found
        if len(found) > 1:
            nearest = min(abs(call.start - start) for call in found)
            found = [call for call in found if abs(call.start - start) == nearest]
        if len(found) != 1:
            if found:
                logger.warning("PBX call %s fits %d stored calls (%s); its legs stay unlinked",
                               pbx_call_id, len(found), ", ".join(str(c.pk) for c in found))
            return None
        self.owner[found[0].pk] = pbx_call_id
        return found[0]

    def _called_by(self, call: Call, callers: set[str]) -> bool:
        """Whether the stored call's caller is one of these: the originator of an outgoing or
        internal call is its extension, that of an incoming one the number it came from."""
        if call.direction != Direction.INCOMING:
            return call.extension in callers
        return call.dialled in callers or any(
            normalize(caller, self.plan) == call.normalized for caller in callers)


# -- periodically ------------------------------------------------------------------------------

def pbx_data_due(*, now: datetime | None = None, hours: int = DUE_HOURS) -> dict:
    """R8.8, R8.9, periodically: the last `hours` of queue calls and call legs of every device
    whose connector offers them (read again each time: what is there is not stored twice,
    and legs whose call was stored meanwhile are linked). A connector without them is
    skipped; a failure is recorded on the device's PbxControl and does not stop the others.
    Returns, by device name, each import's counts, or {"error": why}, or {"skipped": why}."""
    now = now or timezone.now()
    period = Period(now - timedelta(hours=hours), now)
    results = {}
    for control in PbxControl.objects.exclude(connector={}).select_related("device").order_by(
            "device__name"):
        device = control.device
        try:
            capabilities = connector_of(control).capabilities
        except Exception as error:  # noqa: BLE001 - a wrong configuration is this device's own
            results[device.name] = {"error": _failed(control, now, error)}
            continue
        result = {}
        if "queue_calls" in capabilities:
            try:
                result["queue_calls"] = queue_calls_import(device=device, period=period, now=now)
            except Exception as error:  # noqa: BLE001 - each import's failure is its own
                result["queue_calls"] = {"error": _failed(control, now, error)}
        if "call_legs" in capabilities:
            try:
                result["call_legs"] = call_legs_import(device=device, period=period)
            except Exception as error:  # noqa: BLE001
                result["call_legs"] = {"error": _failed(control, now, error)}
        results[device.name] = result or {
            "skipped": f"{control.connector.get('type')} offers neither queue calls nor call legs"}
    return results


def _contact(control: PbxControl, now: datetime) -> None:
    PbxControl.objects.filter(pk=control.pk).update(last_contact_at=now, last_error="")


def _failed(control: PbxControl, now: datetime, error: Exception) -> str:
    logger.warning("PBX %s: call data not imported: %s", control.device.name, error)
    PbxControl.objects.filter(pk=control.pk).update(last_error=str(error)[:1000],
                                                    last_error_at=now)
    return str(error)
