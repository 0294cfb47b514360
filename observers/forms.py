"""R2.1, R2.2: the form of the New observer and Edit observer pages.

The source keys are edited as one JSON object and the parser options as another; both are
checked by observers.sources.settings.observer_settings_problems, the check apply_config gives an
observer of a site configuration file, so the page and the file accept the same settings.

Secrets (the keys a source declares secret: an FTP `password`, a RADIUS `secret`; and the
`secret` of each RADIUS client) are never written into the page: the settings shown hold
UNCHANGED in their place, and UNCHANGED sent back keeps the stored value.
"""
import json

from django import forms

from billing.models import Device
from observers.models import ObserverProfile, SourceType
from observers.sources.settings import (
    DECLARED,
    SECRET_KEYS,
    observer_settings_problems,
    path_text,
)

UNCHANGED = "(unchanged)"


def settings_masked(settings: dict) -> dict:
    """The settings as the page shows them: every secret replaced by UNCHANGED."""
    shown = {key: UNCHANGED if key in SECRET_KEYS and isinstance(value, str) else value
             for key, value in settings.items()}
    if isinstance(shown.get("clients"), list):
        shown["clients"] = [
            {**client, "secret": UNCHANGED}
            if isinstance(client, dict) and isinstance(client.get("secret"), str) else client
            for client in shown["clients"]]
    return shown


def _secrets_restore(settings: dict, stored: dict) -> list[tuple[tuple, str]]:
    """Put the stored secret back wherever `settings` holds UNCHANGED (in place); a
    placeholder with no stored value behind it is an error at its path. A client's secret
    is the one stored for the same address."""
    missing = "no stored value to keep: enter it"
    errors = []
    for key in SECRET_KEYS:
        if settings.get(key) == UNCHANGED:
            if isinstance(stored.get(key), str):
                settings[key] = stored[key]
            else:
                errors.append(((key,), missing))
    stored_clients = {client.get("address"): client.get("secret")
                      for client in stored.get("clients") or [] if isinstance(client, dict)}
    clients = settings.get("clients")
    for index, client in enumerate(clients if isinstance(clients, list) else []):
        if isinstance(client, dict) and client.get("secret") == UNCHANGED:
            secret = stored_clients.get(client.get("address"))
            if isinstance(secret, str):
                client["secret"] = secret
            else:
                errors.append((("clients", index, "secret"),
                               f"{missing} (no client {client.get('address')!r} was stored)"))
    return errors


def _json_object_or_error(text: str) -> tuple[object, str | None]:
    """The parsed text and None, or None and the message of what is wrong with it."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def source_keys_help() -> list[dict]:
    """Per source type, the keys it takes (docs/observers.md), for the page's help: the
    required ones, the optional ones with their defaults (as JSON, the way the settings are
    typed: true, "0.0.0.0"), and each key's line of help. `parser` has a field of its own."""
    return [{"source": source, "label": SourceType(source).label,
             "required": [s.name for s in declared if s.required],
             "optional": [(s.name, None if s.default is None else json.dumps(s.default))
                          for s in declared if not s.required and s.name != "parser"],
             "help": [(s.name, s.help) for s in declared if s.name != "parser"]}
            for source, declared in DECLARED.items()]


class DeviceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        # The type says which parser reads the device's records (R1.1).
        return f"{obj.name} ({obj.get_type_display()})"


class ObserverProfileForm(forms.ModelForm):
    """An observer profile: its own fields, its source keys and its parser options."""

    device = DeviceChoiceField(queryset=Device.objects.order_by("name"),
                               help_text="The device's type selects the parser.")
    settings_text = forms.CharField(
        label="Source settings", required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 70, "spellcheck": "false"}),
        help_text=f"A JSON object of the source's keys (listed below). Secrets show as "
                  f"\"{UNCHANGED}\": leave that to keep the stored value.")
    parser_options = forms.CharField(
        label="Parser options", required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"}),
        help_text="A JSON object, or empty for none. The generic parser needs them; the 3CX "
                  "parser takes \"fields\" (docs/formats.md).")

    class Meta:
        model = ObserverProfile
        fields = ["name", "device", "source", "archive_dir", "archive_period", "log_level",
                  "remote", "enabled"]
        labels = {"archive_dir": "Raw archive folder"}
        help_texts = {"name": "Letters and digits only.",
                      "archive_dir": "Empty: the data directory's archive/<profile>."}

    field_order = ["name", "device", "source", "settings_text", "parser_options",
                   "archive_dir", "archive_period", "log_level", "remote", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.settings if isinstance(self.instance.settings, dict) else {}
        self.stored_settings = stored if self.instance.pk else {}
        shown = settings_masked({k: v for k, v in self.stored_settings.items() if k != "parser"})
        self.initial.setdefault("settings_text", json.dumps(shown, indent=2, ensure_ascii=False))
        parser = self.stored_settings.get("parser")
        self.initial.setdefault("parser_options", "" if parser is None
                                else json.dumps(parser, indent=2, ensure_ascii=False))
        self.fields["source"].help_text = "How records reach the system (R2.2)."

    def clean(self):
        data = super().clean()
        settings, error = _json_object_or_error(data.get("settings_text", "").strip() or "{}")
        if error:
            self.add_error("settings_text", error)
            return data
        parser_text = data.get("parser_options", "").strip()
        parser, error = _json_object_or_error(parser_text) if parser_text else (None, None)
        if error:
            self.add_error("parser_options", error)
            return data
        if not isinstance(settings, dict):
            self.add_error("settings_text", "must be a JSON object: {\"key\": value, ...}")
            return data
        if "parser" in settings:
            self.add_error("settings_text", "parser: give the parser options in the Parser "
                                            "options field")
            return data
        problems = _secrets_restore(settings, self.stored_settings)
        if parser is not None:
            settings["parser"] = parser
        device = data.get("device")
        problems += observer_settings_problems(
            source=data.get("source"), settings=settings,
            device_type=device.type if device is not None else None)
        for path, message in problems:
            field = "parser_options" if path[:1] == ("parser",) else "settings_text"
            self.add_error(field, f"{path_text(path)}: {message}")
        self.cleaned_settings = settings
        return data

    def save(self, commit=True):
        self.instance.settings = self.cleaned_settings
        return super().save(commit=commit)
