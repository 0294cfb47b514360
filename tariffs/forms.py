"""R5.2: the forms of the tariff import wizard, one per step."""
import re
from pathlib import Path

from django import forms
from django.conf import settings
from django.utils.text import get_valid_filename

from tariffs.importers.mapping import column_letter, column_letter_index
from tariffs.models import Operator, TariffPlan

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

