"""Carriers, tariff plans, phone codes and tariffs (R4, R5)."""
import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tariffs.choices import CallType, Direction

digits_only = RegexValidator(r"^[0-9]+$", "Digits only, in international form (country code first).")


class Operator(models.Model):
    """R5.1: a carrier whose codes and tariffs price the calls routed through it."""

    name = models.CharField(max_length=100, unique=True)
    # Bumped by every write to this operator's codes, tariffs, prices or bands, so that
    # each process rebuilds its compiled tariff index when it is stale (services.py).
    rates_version = models.PositiveBigIntegerField(default=0, editable=False)
    currency = models.CharField(
        max_length=3, default="UAH", help_text="ISO 4217 code.",
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code: three capital letters.")])
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # rates_version is only ever bumped in SQL (services.operator_rates_changed): writing
        # back the value this object was loaded with could undo another process's bump.
        if self.pk and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name != "rates_version"]
        super().save(*args, **kwargs)


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

    # Indexed by the unique constraint, which begins with it.
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="tariffs",
                                 db_index=False)
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
    # Calls that last no longer than this are free (a grace period for failed connects).
    free_seconds = models.PositiveIntegerField(default=0)
    # A billed call is billed for at least this long.
    min_seconds = models.PositiveIntegerField("minimum billed seconds", default=0)

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


class TimeBand(models.Model):
    """R4.2: a period of the week (peak, off-peak, weekend) or holidays, with its own prices.

    A call is priced at the band in force when it starts (in the device's zone): on a
    holiday, a band marked `holidays`; otherwise the first band (by priority) whose
    weekdays and hours contain the start; otherwise the tariff's base price.
    """

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="bands")
    name = models.CharField(max_length=100)
    weekdays = models.CharField(
        max_length=7, default="1234567",
        validators=[RegexValidator(r"^[1-7]{1,7}$", "ISO weekdays, 1 = Monday ... 7 = Sunday.")],
        help_text="ISO weekday digits, e.g. 12345 for Monday to Friday.")
    start_time = models.TimeField(default=datetime.time(0, 0))
    end_time = models.TimeField(
        default=datetime.time(0, 0),
        help_text="Exclusive; an end at or before the start runs past midnight (00:00-00:00 is all day).")
    holidays = models.BooleanField(default=False, help_text="Applies all day on holidays.")
    priority = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first.")

    class Meta:
        ordering = ["operator", "priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="band_unique_per_operator")
        ]

    def __str__(self):
        return f"{self.operator}: {self.name}"


class TariffPrice(models.Model):
    """R4.3: the cost of one tariff in one plan (and time band), in the operator's currency."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="prices")
    plan = models.ForeignKey(TariffPlan, on_delete=models.CASCADE, related_name="prices")
    # Empty: the base price; otherwise the price while that band is in force.
    band = models.ForeignKey(TimeBand, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="prices")
    price_per_minute = models.DecimalField(
        max_digits=14, decimal_places=6, validators=[MinValueValidator(0)]
    )
    connection_fee = models.DecimalField(
        max_digits=14, decimal_places=6, default=0, validators=[MinValueValidator(0)]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tariff", "plan"], condition=models.Q(band=None),
                                    name="price_unique_base_per_plan"),
            models.UniqueConstraint(fields=["tariff", "plan", "band"],
                                    condition=models.Q(band__isnull=False),
                                    name="price_unique_band_per_plan"),
        ]

    def __str__(self):
        return f"{self.tariff} @ {self.plan}: {self.price_per_minute}/min"


class PhoneCode(models.Model):
    """R4.1: a dialling prefix of an operator, matched by longest prefix; owned by a tariff.

    A deck brings hundreds of thousands of codes at once, so their references are checked
    by the database in bulk rather than row by row: neither foreign key is a database
    constraint (a row-by-row check each, 3 us per code per key, was most of an import's
    time). Triggers of migration 0003 check a statement's codes together instead, and
    more strictly: the tariff exists and belongs to the code's operator; a tariff with
    codes does not move to another operator; a deleted tariff's codes go with it, as
    `on_delete=CASCADE` says, even when deleted in SQL."""

    # No index of its own (each one costs every imported code): an operator's codes are
    # read through its tariffs (`tariff__operator`), by the unique constraint's index.
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="codes",
                                 db_constraint=False, db_index=False)
    # On PostgreSQL the column's collation is "C" (migration 0003): digits compare byte by
    # byte, which makes the unique index several times cheaper to build than with the
    # database's language collation, and orders codes the same.
    code = models.CharField(max_length=32, validators=[digits_only])
    name = models.CharField(max_length=200, blank=True, help_text="Country, city or carrier.")
    # Indexed by the unique constraint, which begins with it.
    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="codes",
                               db_constraint=False, db_index=False)
    call_type = models.IntegerField(choices=CallType.choices, null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day of validity.")

    class Meta:
        ordering = ["operator", "code", "valid_from"]
        constraints = [
            # A tariff has one operator, so this is unique per operator as well.
            models.UniqueConstraint(
                fields=["tariff", "code", "valid_from"], name="code_unique_per_tariff_date"
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    def clean(self):
        if self.tariff_id and self.operator_id and self.tariff.operator_id != self.operator_id:
            raise ValidationError({"tariff": "The tariff belongs to another operator."})
