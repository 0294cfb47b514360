"""R5.2: the forms of the tariff import wizard, one per step; R5, R11.1: the forms of the
Tariffs pages (operators, plans, tariffs with their prices, codes, time bands, bulk operations)."""
import re
from decimal import Decimal
from pathlib import Path

from django import forms
from django.conf import settings
from django.utils.text import get_valid_filename
from django.utils.translation import gettext_lazy as _

from tariffs.choices import CallType, Direction
from tariffs.importers.mapping import column_letter, column_letter_index
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TimeBand

FILE_TYPES = [("xlsx", "Excel workbook (.xlsx)"), ("xls", "Excel 97-2003 workbook (.xls)"),
              ("csv", "CSV text (.csv)"), ("mdb", "Access database (.mdb)"),
              ("accdb", "Access database (.accdb)")]

# The wizard's fields in the order R5.2 lists them, with the mapping's names.
FIELD_LABELS = [("code", "Code(s)"), ("name", "Name"), ("tariff", "Tariff name"), ("rate", "Rate"),
                ("calltype", "Call type"), ("category", "Category"),
                ("valid_from", "Code valid from"), ("valid_to", "Code valid to"),
                ("direction", "Tariff direction"), ("tariff_valid_from", "Tariff valid from")]


class UploadForm(forms.Form):
    """Step 1: the file type and the file."""

    file_type = forms.ChoiceField(choices=FILE_TYPES)
    file = forms.FileField()

    def clean(self):
        data = super().clean()
        upload, file_type = data.get("file"), data.get("file_type")
        if upload is None or file_type is None:
            return data
        suffix = Path(upload.name).suffix.lower().lstrip(".")
        if suffix != file_type:
            self.add_error("file", f"{upload.name} is not a .{file_type} file; choose the file "
                                   "type it has, or another file.")
        elif upload.size > settings.TARISCOPE_MAX_FILE_BYTES:
            self.add_error("file", f"The file is {upload.size:,} bytes, more than the limit of "
                                   f"{settings.TARISCOPE_MAX_FILE_BYTES:,}.")
        return data

    def safe_name(self) -> str:
        """The name the upload is saved under: the user's name without any folder, reduced
        to safe characters, with the chosen type's extension."""
        stem = get_valid_filename(Path(self.cleaned_data["file"].name).stem.replace("..", "_"))
        stem = re.sub(r"[^\w.-]", "_", stem)[:80].strip("._") or "upload"
        return f"{stem}.{self.cleaned_data['file_type']}"


class SheetForm(forms.Form):
    """Step 2: the sheet (or Access table)."""

    sheet = forms.ChoiceField()

    def __init__(self, *args, sheets: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sheet"].choices = [(s, s) for s in sheets]
        self.fields["sheet"].label = "Sheet or table"


class MappingForm(forms.Form):
    """Step 3: which column holds each field; a select per field listing the columns by
    letter and header."""

    has_header = forms.BooleanField(required=False, initial=True,
                                    label="The first row holds the column headers")

    def __init__(self, *args, header: list, width: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.header = [_text(c) for c in header]
        choices = [("", "— not in the file —")]
        for index in range(width):
            text = self.header[index] if index < len(self.header) else ""
            letter = column_letter(index)
            choices.append((letter, f"{letter}: {text}" if text else letter))
        for key, label in FIELD_LABELS:
            self.fields[key] = forms.ChoiceField(choices=choices, required=(key == "code"),
                                                 label=label)
        self.fields["code"].error_messages["required"] = "Choose the column of the codes."
        self.order_fields([key for key, _ in FIELD_LABELS] + ["has_header"])

    def columns(self) -> dict[str, str]:
        """Field -> column letter, as chosen."""
        return {key: self.cleaned_data[key] for key, _ in FIELD_LABELS if self.cleaned_data.get(key)}

    def mapping(self) -> dict[str, str]:
        """Field -> column, as tariffs.importers.mapping resolves it: the header's text
        where it names this column alone, else the letter (importers try headers first, so
        a letter is only safe where no header has that text)."""
        first: dict[str, int] = {}
        if self.cleaned_data.get("has_header"):
            for index, text in enumerate(self.header):
                first.setdefault(text.casefold(), index)
        mapping = {}
        for key, letter in self.columns().items():
            index = column_letter_index(letter)
            text = self.header[index] if index < len(self.header) else ""
            if text and first.get(text.casefold()) == index:
                mapping[key] = text
            else:
                mapping[key] = letter
        return mapping


class OptionsForm(forms.Form):
    """Step 4: what to do with the rows."""

    codes_only = forms.BooleanField(required=False, label="Import codes only",
                                    help_text="Attach the codes to tariffs that already exist.")
    operator = forms.ModelChoiceField(Operator.objects.all(), required=False,
                                      empty_label="— a new operator —", to_field_name="name")
    new_operator = forms.CharField(required=False, max_length=100, label="New operator's name")
    plan = forms.ModelChoiceField(TariffPlan.objects.all(), required=False, label="Default plan",
                                  empty_label="— a new plan —", to_field_name="name")
    new_plan = forms.CharField(required=False, max_length=100, label="New plan's name")
    currency = forms.CharField(required=False, max_length=3,
                               help_text="ISO 4217; an existing operator's own currency if empty.")
    accounts_description = forms.CharField(required=False, max_length=200,
                                           label="Description for personal accounts")
    round_to_minutes = forms.BooleanField(required=False, initial=True,
                                          label="Round to whole minutes (off: per second)")
    update = forms.BooleanField(required=False, label="Update existing tariffs",
                                help_text="A new rate becomes a new validity period; history is kept.")
    date_order = forms.ChoiceField(choices=[("dmy", "day first: 31/01/2024"),
                                            ("mdy", "month first: 01/31/2024")],
                                   label="Dates such as 01/02/2024")

    def __init__(self, *args, rate_mapped: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.rate_mapped = rate_mapped

    def clean(self):
        data = super().clean()
        operator, new_operator = data.get("operator"), (data.get("new_operator") or "").strip()
        if operator is not None and new_operator:
            self.add_error("new_operator", "Choose an existing operator or type a new name, not both.")
        elif operator is None and not new_operator:
            self.add_error("new_operator", "Choose an operator or type a new one's name.")
        elif new_operator:
            operator = Operator.objects.filter(name=new_operator).first()
        data["operator_name"] = operator.name if operator is not None else new_operator
        currency = (data.get("currency") or "").strip().upper()
        if operator is not None:
            if currency and currency != operator.currency:
                self.add_error("currency", f"{operator.name} keeps its rates in {operator.currency}.")
            currency = operator.currency
        elif not re.fullmatch(r"[A-Z]{3}", currency):
            self.add_error("currency", "A new operator needs its currency: three letters (ISO 4217).")
        data["currency"] = currency
        plan, new_plan = data.get("plan"), (data.get("new_plan") or "").strip()
        if plan is not None and new_plan:
            self.add_error("new_plan", "Choose an existing plan or type a new name, not both.")
        elif plan is None and not new_plan:
            self.add_error("new_plan", "Choose a plan or type a new one's name.")
        data["plan_name"] = plan.name if plan is not None else new_plan
        if not self.rate_mapped and not data.get("codes_only"):
            self.add_error("codes_only", "The mapping has no rate column: tick this for a deck of "
                                         "codes only, or go back to step 3 and choose the rate column.")
        return data

    def options(self, *, has_header: bool) -> dict:
        """The ImportOptions values (tariffs.importers.jobs.OPTION_NAMES)."""
        data = self.cleaned_data
        return {"operator": data["operator_name"], "plan": data["plan_name"],
                "currency": data["currency"], "codes_only": data["codes_only"],
                "update": data["update"], "per_second": not data["round_to_minutes"],
                "accounts_description": data["accounts_description"],
                "date_order": data["date_order"], "has_header": has_header}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()



# -- the Tariffs pages (R5, R11.1). Plain forms, labelled for translation: the services
# check what spans rows (a name taken, a code twice on one date) and the views put their
# refusals on the fields.

DIRECTIONS = [(Direction.OUTGOING.value, _("outgoing")), (Direction.INCOMING.value, _("incoming"))]
CALL_TYPES = [(CallType.LOCAL.value, _("local")), (CallType.LONG_DISTANCE.value, _("long-distance")),
              (CallType.INTERNATIONAL.value, _("international")), (CallType.MOBILE.value, _("mobile")),
              (CallType.INTERNAL.value, _("internal")), (CallType.INCOMING.value, _("incoming")),
              (CallType.SERVICE.value, _("emergency/service")), (CallType.UNKNOWN.value, _("unknown"))]
DIRECTION_LABELS = dict(DIRECTIONS)
CALL_TYPE_LABELS = dict(CALL_TYPES)
# Localized: a Ukrainian or Russian user types (and is shown) 0,45 where English has 0.45;
# a point is taken in every language.
MONEY = {"max_digits": 14, "decimal_places": 6, "min_value": 0, "localize": True}


def _date(**kwargs):
    return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                           **kwargs)


def _time(**kwargs):
    return forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                           **kwargs)


class CurrencyField(forms.CharField):
    """An ISO 4217 code, typed in any case."""

    def __init__(self, **kwargs):
        super().__init__(max_length=3, min_length=3, **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()

    def validate(self, value):
        super().validate(value)
        if value and not re.fullmatch(r"[A-Z]{3}", value):
            raise forms.ValidationError(_("An ISO 4217 code: three letters, such as UAH or EUR."))


class OperatorForm(forms.Form):
    """R5.1: an operator's name, currency and description."""

    name = forms.CharField(label=_("Name"), max_length=100)
    currency = CurrencyField(label=_("Currency"), initial="UAH",
                             help_text=_("ISO 4217; the currency of all its prices."))
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(
        attrs={"rows": 3}))

    def clean_name(self):
        return self.cleaned_data["name"].strip()


class OperatorCopyForm(forms.Form):
    """R5.1: the copy's name and, optionally, another currency."""

    name = forms.CharField(label=_("Name of the copy"), max_length=100)
    currency = CurrencyField(label=_("Currency"), required=False, help_text=_(
        "Empty: the source's. Prices are copied as numbers, not converted."))

    def clean_name(self):
        return self.cleaned_data["name"].strip()


class PlanForm(forms.Form):
    """R4.3: a tariff plan's name and description."""

    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(
        attrs={"rows": 3}))

    def clean_name(self):
        return self.cleaned_data["name"].strip()


class TariffForm(forms.Form):
    """R4.2, R4.3: a tariff's fields and its price per minute and connection fee in each plan,
    base and per time band of its operator (an empty price: no price there)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    direction = forms.TypedChoiceField(label=_("Direction"), choices=DIRECTIONS, coerce=int,
                                       initial=Direction.OUTGOING.value)
    call_type = forms.TypedChoiceField(label=_("Call type"), required=False, coerce=int,
                                       empty_value=None,
                                       choices=[("", _("— from the code or the number —"))]
                                       + CALL_TYPES)
    valid_from = _date(label=_("Valid from"))
    valid_to = _date(label=_("Valid to"), required=False, help_text=_("Last day; empty: open."))
    account_description = forms.CharField(
        label=_("Description for personal accounts"), max_length=200, required=False,
        help_text=_("Tariffs sharing it are summed into one charge of that name."))
    first_interval = forms.IntegerField(label=_("First interval, s"), min_value=1, initial=60,
                                        help_text=_("Billed whole; 60/60 is whole minutes, 1/1 per second."))
    next_interval = forms.IntegerField(label=_("Next interval, s"), min_value=1, initial=60)
    free_seconds = forms.IntegerField(label=_("Free seconds"), min_value=0, initial=0,
                                      help_text=_("Calls no longer than this cost nothing."))
    min_seconds = forms.IntegerField(label=_("Minimum billed seconds"), min_value=0, initial=0)

    FIELDS = ("name", "direction", "call_type", "valid_from", "valid_to", "account_description",
              "first_interval", "next_interval", "free_seconds", "min_seconds")

    def __init__(self, *args, plans, bands, tariff: Tariff | None = None, **kwargs):
        initial = kwargs.pop("initial", {}) or {}
        self.plans, self.bands = list(plans), list(bands)
        if tariff is not None:
            initial.update({name: getattr(tariff, name) for name in self.FIELDS})
            for price in tariff.prices.all():
                key = _price_key(price.plan_id, price.band_id)
                initial[f"price_{key}"] = price.price_per_minute.normalize()
                initial[f"fee_{key}"] = price.connection_fee.normalize()
        super().__init__(*args, initial=initial, **kwargs)
        for plan in self.plans:
            for band in [None, *self.bands]:
                key = _price_key(plan.pk, band.pk if band else None)
                where = plan.name if band is None else f"{plan.name}, {band.name}"
                self.fields[f"price_{key}"] = forms.DecimalField(
                    label=_("Price per minute (%(where)s)") % {"where": where}, required=False,
                    **MONEY)
                self.fields[f"fee_{key}"] = forms.DecimalField(
                    label=_("Connection fee (%(where)s)") % {"where": where}, required=False,
                    **MONEY)

    def tariff_bound_fields(self):
        """The tariff's own fields, in order (the prices are laid out as a grid)."""
        return [self[name] for name in self.FIELDS]

    def price_grid(self):
        """For the template: per plan, its cells (base, then each band): (price, fee)."""
        return [(plan, [(band, self[f"price_{_price_key(plan.pk, band.pk if band else None)}"],
                         self[f"fee_{_price_key(plan.pk, band.pk if band else None)}"])
                        for band in [None, *self.bands]]) for plan in self.plans]

    def clean(self):
        data = super().clean()
        for plan in self.plans:
            for band in [None, *self.bands]:
                key = _price_key(plan.pk, band.pk if band else None)
                if data.get(f"price_{key}") is None and data.get(f"fee_{key}") not in (None, 0):
                    self.add_error(f"fee_{key}", _("A connection fee needs a price per minute."))
        return data

    def tariff_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.FIELDS}

    def prices(self) -> dict:
        """(plan id, band id or None) -> (price, fee), or None where the price is empty."""
        prices = {}
        for plan in self.plans:
            for band in [None, *self.bands]:
                key = _price_key(plan.pk, band.pk if band else None)
                price = self.cleaned_data.get(f"price_{key}")
                fee = self.cleaned_data.get(f"fee_{key}") or Decimal(0)
                prices[plan.pk, band.pk if band else None] = (
                    None if price is None else (price, fee))
        return prices


def _price_key(plan_id: int, band_id: int | None) -> str:
    return f"{plan_id}_{band_id or 0}"


class CodeForm(forms.Form):
    """R4.1: a code (prefix) of an operator and its tariff."""

    code = forms.CharField(label=_("Code"), max_length=32, help_text=_(
        "Digits only, in international form (country code first): 38044."))
    name = forms.CharField(label=_("Name"), max_length=200, required=False,
                           help_text=_("Country, city or carrier."))
    tariff = forms.ModelChoiceField(Tariff.objects.none(), label=_("Tariff"))
    call_type = forms.TypedChoiceField(label=_("Call type"), required=False, coerce=int,
                                       empty_value=None,
                                       choices=[("", _("— the tariff's —"))] + CALL_TYPES)
    category = forms.CharField(label=_("Category"), max_length=100, required=False)
    valid_from = _date(label=_("Valid from"))
    valid_to = _date(label=_("Valid to"), required=False, help_text=_("Last day; empty: open."))

    FIELDS = ("code", "name", "tariff", "call_type", "category", "valid_from", "valid_to")

    def __init__(self, *args, operator: Operator, phone_code: PhoneCode | None = None, **kwargs):
        initial = kwargs.pop("initial", {}) or {}
        if phone_code is not None:
            initial.update({name: getattr(phone_code, name) for name in self.FIELDS})
            initial["tariff"] = phone_code.tariff_id
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["tariff"].queryset = Tariff.objects.filter(operator=operator).order_by(
            "name", "direction", "-valid_from")
        self.fields["tariff"].label_from_instance = tariff_label
        if phone_code is not None:
            self.fields["valid_from"].help_text = _(
                "A later date than %(date)s adds a new period of this code from that date and "
                "keeps this row as history, ending the day before; the same date corrects "
                "this row.") % {"date": phone_code.valid_from.isoformat()}

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError(_("Digits only, in international form (country code "
                                          "first)."))
        return code

    def clean(self):
        data = super().clean()
        if data.get("valid_to") and data.get("valid_from") and data["valid_to"] < data["valid_from"]:
            self.add_error("valid_to", _("The last day comes before the first (valid from)."))
        return data


def tariff_label(tariff: Tariff) -> str:
    """A tariff as a choice: its name, direction and validity."""
    label = f"{tariff.name} · {DIRECTION_LABELS.get(tariff.direction, tariff.direction)} · " \
            f"{tariff.valid_from.isoformat()}"
    return label + (f"–{tariff.valid_to.isoformat()}" if tariff.valid_to else "")


class BandForm(forms.Form):
    """R4.2: a time band of an operator."""

    name = forms.CharField(label=_("Name"), max_length=100)
    weekdays = forms.CharField(label=_("Weekdays"), max_length=7, initial="1234567", help_text=_(
        "ISO weekday digits, 1 = Monday ... 7 = Sunday: 12345 is Monday to Friday."))
    start_time = _time(label=_("From"), initial="00:00")
    end_time = _time(label=_("To"), initial="00:00", help_text=_(
        "Exclusive; an end at or before the start runs past midnight (00:00-00:00 is all day)."))
    holidays = forms.BooleanField(label=_("Applies all day on holidays"), required=False)
    priority = forms.IntegerField(label=_("Priority"), min_value=0, max_value=32767, initial=0,
                                  help_text=_("Lower is tried first."))

    FIELDS = ("name", "weekdays", "start_time", "end_time", "holidays", "priority")

    def __init__(self, *args, band: TimeBand | None = None, **kwargs):
        initial = kwargs.pop("initial", {}) or {}
        if band is not None:
            initial.update({name: getattr(band, name) for name in self.FIELDS})
        super().__init__(*args, initial=initial, **kwargs)

    def clean_weekdays(self):
        days = self.cleaned_data["weekdays"].strip()
        if not re.fullmatch(r"[1-7]{1,7}", days):
            raise forms.ValidationError(_("ISO weekday digits, 1 = Monday ... 7 = Sunday."))
        return "".join(sorted(set(days)))


class BulkScopeForm(forms.Form):
    """R5.4: which tariffs: those valid from a date, of one operator or of all."""

    operator = forms.ModelChoiceField(Operator.objects.order_by("name"), required=False,
                                      label=_("Operator"), empty_label=_("— every operator —"))
    valid_from = _date(label=_("Tariffs valid from"))


class BulkDescriptionForm(BulkScopeForm):
    """R5.4: set their description for personal accounts."""

    description = forms.CharField(
        label=_("Description for personal accounts"), required=False,
        max_length=Tariff._meta.get_field("account_description").max_length,
        help_text=_("Empty clears it (each tariff is then charged under its own name)."))


class BulkMoveForm(BulkScopeForm):
    """R5.4: move their valid-from date (and their codes' of the same date)."""

    new_date = _date(label=_("New valid-from date"))

    def clean(self):
        data = super().clean()
        if data.get("new_date") and data.get("new_date") == data.get("valid_from"):
            self.add_error("new_date", _("The same date: nothing would move."))
        return data


class BulkDeleteForm(BulkScopeForm):
    """R5.4: delete them with their prices and codes."""


class TariffFilter(forms.Form):
    """The search of an operator's tariffs."""

    q = forms.CharField(label=_("Name or description"), required=False, max_length=200)
    direction = forms.TypedChoiceField(label=_("Direction"), required=False, coerce=int,
                                       empty_value=None,
                                       choices=[("", _("— both —"))] + DIRECTIONS)
    day = _date(label=_("Valid on"), required=False)


class CodeFilter(forms.Form):
    """The search of an operator's codes."""

    q = forms.CharField(label=_("Code or name"), required=False, max_length=200,
                        help_text=_("A code matches from its start: 38044 finds 380441 too."))
    tariff = forms.IntegerField(required=False, widget=forms.HiddenInput)
