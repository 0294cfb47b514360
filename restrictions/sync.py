"""R8.10: subscribers and their numbers created and kept in step with a PBX's extension list.

`pbx_sync` reads the extensions through the device's connector (restrictions.pbx keeps one
per device) and, in one transaction, makes the device's numbers say what the PBX says:

- an extension whose number nobody holds on the device today becomes a subscriber with that
  number, from today in the device's zone (billing.subscribers: the same checks as the API's);
- the subscriber who holds an extension's number today takes the PBX's name, e-mail and
  department (a group of the device's node of that name, made when missing);
- a number held from before today whose extension is gone ends yesterday; the subscriber,
  its other numbers and its calls stay as they are.

What the PBX does not say leaves ours as it is: an empty name, e-mail or department (3CX v18
lists no departments at all) changes nothing. A disabled extension is still an extension
(closing by "disable" is how R8.1 bars one), and so is a department that is the connector's
`closed_group` (closing by "group" moves the extension there): neither is taken for a change.
Only numbers of the device synced are read or written.
"""
import logging
import zoneinfo
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Device, PhoneNumber, Subscriber, SubscriberGroup
from billing.subscribers import number_add, subscriber_create
from restrictions.connectors import Extension
from restrictions.connectors.base import COMMON_KEYS
from restrictions.models import PbxControl
from restrictions.pbx import connector_of

logger = logging.getLogger(__name__)

NUMBER_DESCRIPTION = "from the PBX's extension list"


class NoConnector(ValueError):
    """The device has no PBX connector (restrictions.PbxControl.connector)."""


class SyncRefused(ValueError):
    """The PBX's answer cannot be right, and acting on it would end numbers wholesale."""


def control_of(device: Device) -> PbxControl:
    """The device's PBX control with a connector configured; NoConnector when it has none."""
    control = PbxControl.objects.filter(device=device).select_related("device__node").first()
    if control is None or not control.connector:
        raise NoConnector(f"device {device.name} has no PBX connector: configure one in its PBX "
                          "control (restrictions.PbxControl.connector)")
    return control


def pbx_sync(*, device: Device, dry_run: bool = False, now: datetime | None = None) -> dict:
    """R8.10: sync `device`'s subscribers and numbers with its PBX's extensions. Returns
    {"created", "updated", "ended", "unchanged"}, one count per extension or number:

    - created: an extension given its number on the device from today (a new subscriber, or
      the subscriber who last held that number under the same name, back again);
    - updated: an extension whose subscriber's name, e-mail or group changed;
    - unchanged: an extension whose subscriber already said what the PBX says;
    - ended: a number of the device whose extension the PBX no longer lists.

    An extension without a number, or with one the system cannot hold (number_add refuses
    it), is skipped with a warning in the log and counted nowhere.

    With `dry_run` everything is done and rolled back: the counts are what a sync would do
    now. A real run records them on the PbxControl (`last_sync`, `last_sync_at`). The PBX is
    read before the transaction begins; its errors propagate as the connector raises them
    (PbxUnavailable, PbxRefused), and SyncRefused when it lists no extension at all while
    the device has numbers (a wrong API client's rights, not an empty PBX, is the likely
    cause: the numbers are not ended on its word)."""
    now = now or timezone.now()
    control = control_of(device)
    extensions = connector_of(control).extensions()
    today = now.astimezone(zoneinfo.ZoneInfo(device.timezone)).date()
    with transaction.atomic():
        # Locked: two syncs of one device (the command and the periodic task) take turns.
        control = PbxControl.objects.select_for_update().select_related("device__node").get(
            pk=control.pk)
        counts = _sync(control, extensions, today)
        if dry_run:
            transaction.set_rollback(True)
        else:
            control.last_sync_at = now
            control.last_sync = counts
            control.last_contact_at = now
            control.last_error = ""
            control.save(update_fields=["last_sync_at", "last_sync", "last_contact_at",
                                        "last_error"])
    logger.info("PBX %s: extensions synced%s: %s", device.name, " (dry run)" if dry_run else "",
                counts)
    return counts


def pbx_sync_due(*, now: datetime | None = None) -> dict:
    """R8.10, periodically: sync every device whose connector's `sync_minutes` have passed
    since its last sync (0: never synced by itself). A device that fails is recorded as such
    on its PbxControl (`last_error`) and does not stop the others. Returns, by device name,
    the counts of each sync or {"error": why}."""
    now = now or timezone.now()
    default = COMMON_KEYS["sync_minutes"].default
    results = {}
    for control in PbxControl.objects.exclude(connector={}).select_related("device").order_by(
            "device__name"):
        minutes = control.connector.get("sync_minutes", default)
        if isinstance(minutes, int | float) and not isinstance(minutes, bool):
            if minutes <= 0:
                continue
            if control.last_sync_at is not None and now - control.last_sync_at < timedelta(
                    minutes=minutes):
                continue
        # Not a number: the sync below fails, saying what is wrong with the configuration.
        try:
            results[control.device.name] = pbx_sync(device=control.device, now=now)
        except Exception as error:  # noqa: BLE001 - each device's failure is its own
            logger.warning("PBX %s: extensions not synced: %s", control.device.name, error)
            PbxControl.objects.filter(pk=control.pk).update(last_error=str(error)[:1000],
                                                            last_error_at=now)
            results[control.device.name] = {"error": str(error)}
    return results


# -- the sync ----------------------------------------------------------------------------------

def _sync(control: PbxControl, extensions: list[Extension], today) -> dict:
    device = control.device
    counts = {"created": 0, "updated": 0, "ended": 0, "unchanged": 0}
    listed: dict[str, Extension] = {}
    for ext in extensions:
        number = ext.number.strip()
        if not number:
            continue  # a user without an extension number has nothing to hold here
        if number in listed:
            logger.warning("PBX %s lists extension %s twice; the first is kept", device.name,
                           number)
            continue
        listed[number] = ext
    held = {n.dn: n for n in PhoneNumber.objects.filter(device=device, valid_from__lte=today)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today))
            .select_related("subscriber__group")}
    if not listed and held:
        raise SyncRefused(f"the PBX of {device.name} lists no extensions, and {len(held)} "
                          "numbers are held on the device: nothing was ended; check the API "
                          "client's access to the users")
    groups = {g.name: g for g in SubscriberGroup.objects.filter(node=device.node)}
    closed_group = control.connector.get("closed_group")
    synced: set[int] = set()  # subscribers already given an extension's data in this run
    for number in sorted(listed, key=lambda n: (len(n), n)):
        ext = listed[number]
        name = _full_name(ext)
        email = _email(ext, device)
        department = (ext.department or "").strip()[:200]
        if department and department == closed_group:
            department = ""  # closed by group: its department is where it was before
        holding = held.get(number)
        if holding is None:
            group = _group(department, device, groups) if department else None
            try:
                with transaction.atomic():
                    _create(device, number, name or f"Extension {number}", email, group, today)
            except ValueError as error:  # not a number the system can hold (number_add's check)
                logger.warning("PBX %s: extension %r skipped: %s", device.name, number, error)
                continue
            counts["created"] += 1
        elif holding.subscriber_id in synced:
            # One subscriber holding several extensions takes the data of its lowest one
            # (each of them would otherwise rename it in turn, at every sync).
            counts["unchanged"] += 1
        elif _update(holding.subscriber, name, email, department, device, groups):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
        if holding is not None:
            synced.add(holding.subscriber_id)
    yesterday = today - timedelta(days=1)
    for number, holding in held.items():
        if number in listed:
            continue
        # A number given today cannot end before its first day: it ends today instead (and
        # a second sync today finds it ended already).
        last_day = max(yesterday, holding.valid_from)
        if holding.valid_to is not None and holding.valid_to <= last_day:
            continue
        holding.valid_to = last_day
        holding.save(update_fields=["valid_to"])
        counts["ended"] += 1
    return counts


def _full_name(ext: Extension) -> str:
    name = ext.display_name.strip() or " ".join(
        part for part in (ext.first_name.strip(), ext.last_name.strip()) if part)
    return name[:300]


def _email(ext: Extension, device: Device) -> str:
    email = ext.email.strip()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError:
        logger.warning("PBX %s: extension %s has e-mail %r, which is not an address; ignored",
                       device.name, ext.number, email)
        return ""
    return email[:254]


def _group(name: str, device: Device, groups: dict[str, SubscriberGroup]) -> SubscriberGroup:
    group = groups.get(name)
    if group is None:
        group = groups[name] = SubscriberGroup.objects.create(node=device.node, name=name)
    return group


def _create(device, number, name, email, group, today) -> None:
    subscriber = (_returning(device, number, name, today)
                  or subscriber_create(full_name=name, group=group))
    changed = []
    if email and subscriber.email != email:
        subscriber.email = email
        changed.append("email")
    if group is not None and subscriber.group_id != group.pk:
        subscriber.group = group
        changed.append("group")
    if changed:
        subscriber.save(update_fields=changed)
    number_add(subscriber=subscriber, device=device, dn=number, valid_from=today,
               description=NUMBER_DESCRIPTION)


def _returning(device: Device, number: str, name: str, today) -> Subscriber | None:
    """The subscriber who last held `number` on the device, when it had the same name: an
    extension removed and added again keeps its history in one subscriber."""
    last = (PhoneNumber.objects.filter(device=device, dn=number, valid_to__lt=today)
            .select_related("subscriber").order_by("-valid_from").first())
    if last is not None and last.subscriber.full_name == name:
        return last.subscriber
    return None


def _update(subscriber: Subscriber, name, email, department, device, groups) -> bool:
    """Give the subscriber what the PBX says (what it says, not what it leaves empty);
    whether anything changed."""
    changed = []
    if name and subscriber.full_name != name:
        subscriber.full_name = name
        changed.append("full_name")
    if email and subscriber.email != email:
        subscriber.email = email
        changed.append("email")
    if department:
        current = subscriber.group
        if current is None or current.node_id != device.node_id or current.name != department:
            subscriber.group = _group(department, device, groups)
            changed.append("group")
    if changed:
        subscriber.save(update_fields=changed)
    return bool(changed)
