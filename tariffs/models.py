"""Carriers, tariff plans, phone codes and tariffs (R4, R5)."""
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

digits_only = RegexValidator(r"^[0-9]+$", "Digits only, in international form (country code first).")


class Direction(models.IntegerChoices):
    """Call direction; 0 and 1 are the original's tariff directions (R4.2)."""

    OUTGOING = 0, "outgoing"
    INCOMING = 1, "incoming"
    INTERNAL = 2, "internal"


class CallType(models.IntegerChoices):
    """Call types. 3-6 are the original's fixed codes (R3.3); the rest are ours."""

    UNKNOWN = 0, "unknown"
    INTERNAL = 1, "internal"
    INCOMING = 2, "incoming"
    LOCAL = 3, "local"
    LONG_DISTANCE = 4, "long-distance"
    INTERNATIONAL = 5, "international"
    MOBILE = 6, "mobile"
    SERVICE = 7, "emergency/service"


class Operator(models.Model):
    """R5.1: a carrier whose codes and tariffs price the calls routed through it."""

    name = models.CharField(max_length=100, unique=True)
    currency = models.CharField(
        max_length=3, default="UAH", help_text="ISO 4217 code.",
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code: three capital letters.")])
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TariffPlan(models.Model):
    """R4.3: a price list; the same tariff may cost differently in different plans."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Tariff(models.Model):
    """R4.2: a priced destination class of one operator (e.g. "Kyiv", "Mobile UA")."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="tariffs")
    name = models.CharField(max_length=200)
    direction = models.IntegerField(
        choices=[(Direction.OUTGOING, "outgoing"), (Direction.INCOMING, "incoming")],
        default=Direction.OUTGOING,
    )
    call_type = models.IntegerField(choices=CallType.choices, null=True, blank=True)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day of validity.")
    # The original's "description for personal accounts": tariffs sharing it are summed
    # into one charge of that name (R7.1).
    account_description = models.CharField(max_length=200, blank=True)
    # Billing increments: the first interval is billed whole, then each next one.
    # 60/60 is whole-minute rounding (the original's default), 1/1 per-second billing.
    first_interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    next_interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["operator", "name", "direction", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "name", "direction", "valid_from"],
                name="tariff_unique_per_operator_direction_date",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gte=models.F("valid_from")),
                name="tariff_valid_to_after_valid_from",
            ),
        ]

    def __str__(self):
        return f"{self.operator}: {self.name}"


class TariffPrice(models.Model):
    """R4.3: the cost of one tariff in one plan, in the operator's currency."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="prices")
    plan = models.ForeignKey(TariffPlan, on_delete=models.CASCADE, related_name="prices")
    price_per_minute = models.DecimalField(
        max_digits=14, decimal_places=6, validators=[MinValueValidator(0)]
    )
    connection_fee = models.DecimalField(
        max_digits=14, decimal_places=6, default=0, validators=[MinValueValidator(0)]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tariff", "plan"], name="price_unique_per_plan"),
        ]

    def __str__(self):
        return f"{self.tariff} @ {self.plan}: {self.price_per_minute}/min"


class PhoneCode(models.Model):
    """R4.1: a dialling prefix of an operator, matched by longest prefix; owned by a tariff."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=32, validators=[digits_only])
    name = models.CharField(max_length=200, blank=True, help_text="Country, city or carrier.")
    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="codes")
    call_type = models.IntegerField(choices=CallType.choices, null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day of validity.")

    class Meta:
        ordering = ["operator", "code", "valid_from"]
        indexes = [models.Index(fields=["operator", "code"], name="code_operator_code")]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "code", "tariff", "valid_from"], name="code_unique_per_date"
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"
