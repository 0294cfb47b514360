"""Topology (nodes, devices, routes), subscribers, numbers and calls (R1, R3, R6)."""
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tariffs.choices import CallType, Direction
from tariffs.models import Operator, Tariff, TariffPlan

digits = RegexValidator(r"^[0-9]*$", "Digits only.")


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}.") from exc


class Node(models.Model):
    """R1.1: a site ("communication node") holding devices and the root of its group tree."""

    name = models.CharField(max_length=100, unique=True)
    # ISO 3166 alpha-2; selects the public-holiday calendar for holiday rates.
    country = models.CharField(
        max_length=2, blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "An ISO 3166 code: two capital letters.")])
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Holiday(models.Model):
    """R4.2: a custom holiday of a node, in addition to its country's public holidays."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["node", "date"]
        constraints = [
            models.UniqueConstraint(fields=["node", "date"], name="holiday_unique_per_node")
        ]

    def __str__(self):
        return f"{self.date} {self.name}"


class AuthCodePosition(models.TextChoices):
    """R3.1, R8.6: where users dial their authorization code."""

    NONE = "", "not used"
    BEFORE = "before", "before the number (after the access code)"
    AFTER = "after", "after the number"


class DeviceType(models.TextChoices):
    """R1.1: the telephone system's kind; it selects the CDR parser."""

    CUCM = "cucm", "Cisco CUCM"
    THREECX = "3cx", "3CX"
    ASTERISK = "asterisk", "Asterisk"
    FREESWITCH = "freeswitch", "FreeSWITCH"
    RADIUS = "radius", "RADIUS gateway (Cisco, Ribbon SBC)"
    GENERIC = "generic", "Generic CSV / SMDR"


class Device(models.Model):
    """R1.1, R3.1: a telephone system with its time zone and dial plan."""

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=20, choices=DeviceType.choices)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Dial plan (R3.1).
    access_code = models.CharField(
        max_length=8, blank=True, validators=[digits], help_text="Outside-line prefix, e.g. 9."
    )
    national_prefix = models.CharField(max_length=4, blank=True, default="0", validators=[digits])
    international_prefix = models.CharField(
        max_length=4, blank=True, default="00", validators=[digits]
    )
    country_code = models.CharField(max_length=4, blank=True, validators=[digits])
    area_code = models.CharField(max_length=8, blank=True, validators=[digits])
    extension_length = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Internal numbers have this many digits."
    )
    extension_pattern = models.CharField(
        max_length=200, blank=True, help_text="Regular expression for internal numbers."
    )
    auth_code_position = models.CharField(
        max_length=6, choices=AuthCodePosition.choices, default=AuthCodePosition.NONE, blank=True)
    auth_code_length = models.PositiveSmallIntegerField(default=0)
    service_numbers = models.CharField(
        max_length=200,
        blank=True,
        default="101,102,103,104,112,911",
        help_text="Comma-separated emergency and service numbers.",
    )
    default_operator = models.ForeignKey(
        Operator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_plan = models.ForeignKey(
        TariffPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class RouteKind(models.TextChoices):
    ROUTE = "route", "route (trunk group)"
    GATEWAY = "gateway", "gateway"


class Route(models.Model):
    """R1.2: a trunk group or gateway of a device, bound to the carrier it reaches."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="routes")
    # As the PBX names it in its CDR (3CX: the line's number, CUCM: the gateway device).
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=RouteKind.choices, default=RouteKind.ROUTE)
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="routes")

    class Meta:
        ordering = ["device", "name"]
        constraints = [
            models.UniqueConstraint(fields=["device", "name"], name="route_unique_per_device")
        ]

    def __str__(self):
        return f"{self.device}/{self.name}"


class SubscriberGroup(models.Model):
    """R1.3: a department; groups form a tree per node, the node being its root."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="groups")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["node", "name"]
        constraints = [
            models.UniqueConstraint(fields=["node", "name"], name="group_unique_per_node")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.parent_id and self.parent.node_id != self.node_id:
            raise ValidationError({"parent": "The parent group belongs to another node."})
        ancestor = self.parent
        while ancestor is not None:
            if ancestor.pk == self.pk:
                raise ValidationError({"parent": "A group cannot be its own ancestor."})
            ancestor = ancestor.parent


class SubscriberType(models.IntegerChoices):
    """R6.1: the original's subscriber types, numbers kept."""

    INDIVIDUAL = 0, "individual"
    LEGAL_ENTITY = 1, "legal entity"
    SERVICE = 2, "service"
    BUDGET = 3, "budget"
    PRIVILEGED = 4, "privileged"


class Subscriber(models.Model):
    """R6.1: an employee (Enterprise) or a paying customer (Provider)."""

    full_name = models.CharField(max_length=300)
    group = models.ForeignKey(
        SubscriberGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="subscribers"
    )
    type = models.IntegerField(choices=SubscriberType.choices, default=SubscriberType.INDIVIDUAL)
    connection_date = models.DateField(null=True, blank=True)
    contract_number = models.CharField(max_length=100, blank=True)
    contract_date = models.DateField(null=True, blank=True)
    # Generated from the id when not given (R6.1).
    account_number = models.CharField(max_length=100, unique=True, null=True, blank=True)
    personal_code = models.CharField("personal tax code", max_length=50, blank=True)
    edrpou = models.CharField("EDRPOU code", max_length=20, blank=True)
    tax_code = models.CharField("VAT tax code", max_length=50, blank=True)
    bank_code = models.CharField(max_length=20, blank=True)
    bank_name = models.CharField(max_length=200, blank=True)
    bank_account = models.CharField(max_length=50, blank=True)
    # Ours: where the subscriber's own notices go; filled from the PBX by pbx_sync (R8.10).
    email = models.EmailField(blank=True)
    plan = models.ForeignKey(
        TariffPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="subscribers"
    )

    class Meta:
        ordering = ["full_name"]

    def __str__(self):
        return self.full_name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if not self.account_number:
            self.account_number = self._account_number_free()
            super().save(update_fields=["account_number"])

    def _account_number_free(self) -> str:
        """The id, or when someone was given that number by hand, the id with -1, -2, ..."""
        candidate, suffix = str(self.pk), 0
        while Subscriber.objects.filter(account_number=candidate).exclude(pk=self.pk).exists():
            suffix += 1
            candidate = f"{self.pk}-{suffix}"
        return candidate


class PhoneNumber(models.Model):
    """R6.2: a number (DN) held by a subscriber on a device for a period."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="numbers")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="numbers")
    dn = models.CharField("number", max_length=32)
    description = models.CharField(max_length=200, blank=True)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day; empty while held.")

    class Meta:
        ordering = ["device", "dn", "valid_from"]
        indexes = [models.Index(fields=["device", "dn", "valid_from"], name="number_lookup")]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "dn", "valid_from"], name="number_unique_start"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gte=models.F("valid_from")),
                name="number_valid_to_after_valid_from",
            ),
        ]

    def __str__(self):
        return f"{self.dn} ({self.device})"

    def clean(self):
        # The database refuses overlapping periods (migration 0005); a form says why first.
        if not (self.device_id and self.dn and self.valid_from):
            return
        if self.valid_to is not None and self.valid_to < self.valid_from:
            return  # the check constraint's own message
        others = PhoneNumber.objects.filter(device_id=self.device_id, dn=self.dn).exclude(
            pk=self.pk).filter(models.Q(valid_to__isnull=True) | models.Q(valid_to__gte=self.valid_from))
        if self.valid_to is not None:
            others = others.filter(valid_from__lte=self.valid_to)
        other = others.select_related("subscriber").order_by("valid_from").first()
        if other is not None:
            until = f"to {other.valid_to}" if other.valid_to else "on"
            raise ValidationError(f"{self.dn} is held by {other.subscriber} from "
                                  f"{other.valid_from} {until}; periods of one number cannot "
                                  "overlap.")


class Call(models.Model):
    """R3.2: one telephone call, normalised, classified and rated."""

    # No index of their own for device and subscriber: every index costs each stored call,
    # and (device, start), (device, source_key) and (subscriber, start) begin with them.
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="calls",
                               db_index=False)
    # Stable identity of the record at its source: re-delivery must not double a call (R2.4).
    source_key = models.CharField(max_length=200)
    start = models.DateTimeField(help_text="UTC.")
    duration = models.PositiveIntegerField(help_text="Talk time, seconds.")
    answered = models.BooleanField(default=True)
    direction = models.IntegerField(choices=Direction.choices)
    call_type = models.IntegerField(choices=CallType.choices, default=CallType.UNKNOWN)
    extension = models.CharField(max_length=64, blank=True, help_text="The originator's number.")
    # The references below hold no database constraint (db_constraint=False): a stored call
    # checks its device in the database, while the subscriber, route, operator, plan and
    # tariff were looked up by the pipeline itself, and their deletion sets them to null
    # through Django (on_delete). Five checks per call cost more than half of the time the
    # database spends storing it (docs/benchmarks.md).
    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls",
        db_index=False, db_constraint=False,
    )
    dialled = models.CharField(max_length=64, blank=True, help_text="As the PBX recorded it.")
    normalized = models.CharField(max_length=64, blank=True)
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL,
                              db_constraint=False)
    trunk = models.CharField(max_length=100, blank=True, help_text="Route name as in the CDR.")
    operator = models.ForeignKey(Operator, null=True, blank=True, on_delete=models.SET_NULL,
                                 db_constraint=False)
    plan = models.ForeignKey(TariffPlan, null=True, blank=True, on_delete=models.SET_NULL,
                             db_constraint=False)
    code = models.CharField(max_length=32, blank=True)
    tariff = models.ForeignKey(Tariff, null=True, blank=True, on_delete=models.SET_NULL,
                               db_constraint=False)
    billable_seconds = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    rating_note = models.CharField(max_length=300, blank=True)
    auth_code = models.CharField(max_length=16, blank=True, help_text="As dialled (R8.6).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start"]
        constraints = [
            models.UniqueConstraint(fields=["device", "source_key"], name="call_unique_source_key")
        ]
        indexes = [
            models.Index(fields=["start"], name="call_start"),
            models.Index(fields=["subscriber", "start"], name="call_subscriber_start"),
            models.Index(fields=["device", "start"], name="call_device_start"),
            models.Index(fields=["call_type", "start"], name="call_type_start"),
        ]

    def __str__(self):
        return f"{self.start:%Y-%m-%d %H:%M} {self.extension} -> {self.dialled}"

    @property
    def local_start(self):
        """R3.2: the start as shown to people, in the device's time zone."""
        return self.start.astimezone(zoneinfo.ZoneInfo(self.device.timezone))

    @property
    def is_unknown_number(self):
        """R6.3: an outgoing call from a number no subscriber held at the time."""
        return self.subscriber_id is None and self.direction != Direction.INCOMING


class ChargeKind(models.TextChoices):
    """R7.1: what a charge is for."""

    CALL = "call", "calls"
    RECURRING = "recurring", "recurring service"


class Charge(models.Model):
    """R7.1: one charge of a subscriber's personal account for a period and a service."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="charges")
    period_start = models.DateField()
    period_end = models.DateField(help_text="Last day of the period.")
    # Shown as `servicename` by the API: the tariff's description for personal accounts,
    # or its name when it has none.
    service_name = models.CharField(max_length=200)
    # The tariff when the charge comes from one; empty when several tariffs share a
    # description for personal accounts, and for recurring services.
    tariff = models.ForeignKey(Tariff, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    # `numberofservices` in the API: seconds for calls.
    count = models.PositiveBigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=10, choices=ChargeKind.choices, default=ChargeKind.CALL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subscriber", "period_start", "service_name"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "period_start", "period_end",
                                            "service_name"], name="charge_unique_per_service"),
            models.CheckConstraint(condition=models.Q(period_end__gte=models.F("period_start")),
                                   name="charge_period_end_after_start"),
        ]
        indexes = [models.Index(fields=["subscriber", "period_start"], name="charge_lookup")]

    def __str__(self):
        return f"{self.subscriber_id} {self.period_start} {self.service_name}: {self.amount}"


class PaymentType(models.IntegerChoices):
    """R7.2: the original's payment types, numbers kept (the API's `paymenttype`)."""

    UNSPECIFIED = 0, "unspecified"
    CASH = 1, "cash"
    RECEIPT = 2, "receipt"
    INVOICE = 3, "invoice"


class Payment(models.Model):
    """R7.2: a payment into a subscriber's personal account."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="payments")
    date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    type = models.IntegerField(choices=PaymentType.choices, default=PaymentType.UNSPECIFIED)
    bank = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscriber", "date", "id"]
        indexes = [models.Index(fields=["subscriber", "date"], name="payment_lookup")]

    def __str__(self):
        return f"{self.subscriber_id} {self.date}: {self.amount}"


class RecurringService(models.Model):
    """R7.1: a monthly fee (subscription), for every subscriber of a tariff plan or for one
    subscriber; charged for each month on its first day, pro rata in the month a
    subscriber was connected."""

    name = models.CharField(max_length=200, help_text="As it appears on the personal account.")
    amount = models.DecimalField(max_digits=14, decimal_places=2,
                                 validators=[MinValueValidator(0)], help_text="Per month.")
    currency = models.CharField(max_length=3, default="UAH")
    plan = models.ForeignKey(TariffPlan, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="recurring_services")
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="recurring_services")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day; empty: open.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(plan__isnull=False) | models.Q(subscriber__isnull=False),
                name="recurring_for_a_plan_or_a_subscriber"),
        ]

    def __str__(self):
        return f"{self.name}: {self.amount} {self.currency}/month"


class MonthUsage(models.Model):
    """R8.1: a subscriber's outgoing calls of a month (in its device's time zone), by call
    type and currency: running totals that storing calls adds to and re-rating rebuilds,
    so that a limit is checked without summing the month's calls (restrictions)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="usage")
    month = models.DateField(help_text="First day of the month.")
    call_type = models.IntegerField(choices=CallType.choices)
    currency = models.CharField(max_length=3, blank=True)
    calls = models.PositiveIntegerField(default=0)
    seconds = models.PositiveBigIntegerField(default=0, help_text="Talk time.")
    cost = models.DecimalField(max_digits=16, decimal_places=4, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["subscriber", "month", "call_type", "currency"], name="usage_unique")]

    def __str__(self):
        return f"{self.subscriber_id} {self.month:%Y-%m} type {self.call_type}: {self.cost}"
