"""R8: the PBX control of a device, monthly limits, closures (the class "closed" of a
subscriber or a group) with their history, and the changes made on the PBX to apply them."""
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from billing.models import Device, Subscriber, SubscriberGroup


class PbxControl(models.Model):
    """R8.11: how the system reaches a device's PBX (`connector`, restrictions.connectors:
    type, address, credentials, how "closed" is applied) and the call-control rules of
    R8.3-R8.7 (`call_control`), with what the last contact said."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="pbx_control")
    connector = models.JSONField(default=dict, blank=True)
    call_control = models.JSONField(default=dict, blank=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # The control loop's last poll of the active calls, and the last sync of extensions
    # (R8.10) with what it did ({"created", "updated", "ended", "unchanged"}).
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.device.name}: {self.connector.get('type', 'no connector')}"


class Limit(models.Model):
    """R8.1: a monthly budget of a subscriber, or of a group and its whole subtree, in money
    (of one currency) or in seconds of talk time, of some call types or of all; a warning
    at `warn_percent` of it."""

    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="limits")
    group = models.ForeignKey(SubscriberGroup, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="limits")
    money = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    seconds = models.PositiveBigIntegerField(null=True, blank=True)
    call_types = models.JSONField(default=list, blank=True,
                                  help_text="Call types counted (tariffs.choices.CallType); "
                                            "empty: all.")
    warn_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(subscriber__isnull=False, group__isnull=True)
                           | Q(subscriber__isnull=True, group__isnull=False)),
                name="limit_of_a_subscriber_or_a_group"),
            models.CheckConstraint(
                condition=(Q(money__isnull=False, seconds__isnull=True)
                           | Q(money__isnull=True, seconds__isnull=False)),
                name="limit_in_money_or_seconds"),
        ]

    def __str__(self):
        target = self.subscriber or self.group
        amount = f"{self.money} {self.currency}" if self.money is not None else f"{self.seconds} s"
        return f"{target}: {amount} a month"

    def clean(self):
        if self.money is not None and not self.currency:
            raise ValidationError({"currency": "A limit in money needs its currency."})
        if self.warn_percent is not None and not 1 <= self.warn_percent <= 99:
            raise ValidationError({"warn_percent": "A percentage from 1 to 99."})


class LimitMonth(models.Model):
    """R8.1: what a limit did in a month: when its warning went, when it was reached."""

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="months")
    month = models.DateField()
    warned_at = models.DateTimeField(null=True, blank=True)
    reached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["limit", "month"],
                                               name="limit_month_unique")]

    def __str__(self):
        return f"limit {self.limit_id} in {self.month:%Y-%m}"


class Cause(models.TextChoices):
    LIMIT = "limit", "a limit was reached"
    OPERATOR = "operator", "an operator"
    SCRIPT = "script", "a script (a critical alert)"


class Closure(models.Model):
    """R8.2: the class "closed" of a subscriber, or of a group and everyone in its subtree:
    outgoing external calls barred on the PBX until it is reopened. At most one open
    closure per subscriber and per group."""

    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="closures")
    group = models.ForeignKey(SubscriberGroup, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="closures")
    cause = models.CharField(max_length=10, choices=Cause.choices)
    limit = models.ForeignKey(Limit, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="closures")
    month = models.DateField(null=True, blank=True, help_text="The limit's month.")
    reason = models.CharField(max_length=1000)
    closed_by = models.CharField(max_length=200)
    closed_at = models.DateTimeField(auto_now_add=True)
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.CharField(max_length=200, blank=True)
    reopen_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-closed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(subscriber__isnull=False, group__isnull=True)
                           | Q(subscriber__isnull=True, group__isnull=False)),
                name="closure_of_a_subscriber_or_a_group"),
            models.UniqueConstraint(fields=["subscriber"], condition=Q(reopened_at__isnull=True,
                                                                       subscriber__isnull=False),
                                    name="one_open_closure_per_subscriber"),
            models.UniqueConstraint(fields=["group"], condition=Q(reopened_at__isnull=True,
                                                                  group__isnull=False),
                                    name="one_open_closure_per_group"),
        ]

    def __str__(self):
        state = "open again" if self.reopened_at else "closed"
        return f"{self.subscriber or self.group}: {state} ({self.reason})"

    @property
    def is_open(self) -> bool:
        """Still in force (not reopened)."""
        return self.reopened_at is None


class ClassChange(models.Model):
    """R8.2: the history of classes: who or what changed a subscriber's or a group's class,
    when, and why. What the PBX answered is on its PbxChanges."""

    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="class_changes")
    group = models.ForeignKey(SubscriberGroup, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="class_changes")
    closure = models.ForeignKey(Closure, on_delete=models.CASCADE, related_name="changes")
    new_class = models.CharField(max_length=10)  # "closed" or "open"
    by = models.CharField(max_length=200)
    cause = models.CharField(max_length=10, choices=Cause.choices)
    reason = models.CharField(max_length=1000)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.subscriber or self.group} {self.new_class} by {self.by}"


class PbxChange(models.Model):
    """R8.2: one change to make on a PBX (close or reopen one extension), kept until the PBX
    confirmed it: tried at once, then again with back-off while the PBX is away; never
    marked done before it answered, and never lost across a restart."""

    class Action(models.TextChoices):
        CLOSE = "close"
        REOPEN = "reopen"

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed", "refused by the PBX"
        CONFLICT = "conflict", "changed on the PBX meanwhile"
        CANCELLED = "cancelled", "no longer needed"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="pbx_changes")
    extension = models.CharField(max_length=32)
    action = models.CharField(max_length=10, choices=Action.choices)
    closure = models.ForeignKey(Closure, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="pbx_changes")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING,
                              db_index=True)
    # close: what the connector changed (what reopening restores); reopen: the close's.
    previous_state = models.JSONField(null=True, blank=True)
    answer = models.CharField(max_length=1000, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["device", "extension"], name="pbx_change_extension")]

    def __str__(self):
        return f"{self.action} {self.extension} on {self.device_id}: {self.status}"


class AuthCode(models.Model):
    """R8.6: an authorization code: dialled with the number (where the device's dial plan
    says), it names the subscriber who pays, and is stripped before rating. With
    `require_auth_code` on a device, calls dialled without a valid one are dropped."""

    code = models.CharField(max_length=16, unique=True)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE,
                                   related_name="auth_codes")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"code {self.code[:2]}… of {self.subscriber}"

    def clean(self):
        if not self.code.isdigit():
            raise ValidationError({"code": "An authorization code is digits only."})


class ControlRule(models.TextChoices):
    MIN_BALANCE = "min_balance", "balance below the minimum"
    MAX_CALL_COST = "max_call_cost", "the call's cost would pass the maximum"
    MAX_CALL_SECONDS = "max_call_seconds", "longer than the maximum"
    AUTH_CODE = "auth_code", "no valid authorization code"
    BLOCKED_DESTINATION = "blocked_destination", "a blocked destination"


class ControlAction(models.Model):
    """R8.3-R8.7: what the call control did to an active call, and why."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="control_actions")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    pbx_call_id = models.CharField(max_length=100)
    caller = models.CharField(max_length=200, blank=True)
    callee = models.CharField(max_length=200, blank=True)
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="control_actions")
    rule = models.CharField(max_length=20, choices=ControlRule.choices)
    reason = models.CharField(max_length=1000)
    dropped = models.BooleanField(default=False, help_text="The PBX confirmed the drop.")
    answer = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["device", "pbx_call_id", "rule"],
                                               name="control_action_once_per_call")]

    def __str__(self):
        return f"{self.rule} on {self.pbx_call_id}: {'dropped' if self.dropped else 'not dropped'}"


class QueueCall(models.Model):
    """R8.8: a call that waited in a call queue of the PBX, answered or abandoned, as the
    PBX's queue reports give it (for queue reports)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="queue_calls")
    queue = models.CharField(max_length=32)
    queue_name = models.CharField(max_length=200, blank=True)
    caller = models.CharField(max_length=200)
    started_at = models.DateTimeField(db_index=True)
    answered = models.BooleanField()
    agent = models.CharField(max_length=32, blank=True)
    agent_name = models.CharField(max_length=200, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    wait_seconds = models.PositiveIntegerField(null=True, blank=True)
    ring_seconds = models.PositiveIntegerField(null=True, blank=True)
    pbx_call_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["device", "queue", "caller", "started_at"],
                                               name="queue_call_once")]

    def __str__(self):
        return f"{self.caller} in queue {self.queue} at {self.started_at:%Y-%m-%d %H:%M}"


class CallLeg(models.Model):
    """R8.9: one leg of a transferred call, from the PBX's call data: who took part and for
    how long; the call's cost is shared between the legs by their talk time."""

    call = models.ForeignKey("billing.Call", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="legs")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="call_legs")
    pbx_call_id = models.CharField(max_length=100)
    leg_id = models.CharField(max_length=100)
    started_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True)
    destination = models.CharField(max_length=200, blank=True)
    extension = models.CharField(max_length=32, blank=True,
                                 help_text="The internal party of the leg.")
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="call_legs")
    talk_seconds = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True,
                               help_text="The leg's share of the call's cost.")

    class Meta:
        ordering = ["pbx_call_id", "started_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["device", "pbx_call_id", "leg_id"],
                                               name="call_leg_once")]

    def __str__(self):
        return f"leg {self.leg_id} of {self.pbx_call_id}: {self.extension} {self.talk_seconds}s"
