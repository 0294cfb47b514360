"""R2.1, R2.2: how a source declares the keys of its settings, once.

Each source module states its keys as a tuple of `Setting`s (`SETTINGS`): name, JSON
schema, default, required or not, secret or not, and a line of help. Everything else that
speaks of a source's keys is derived from those tuples: the check of a profile's settings
(observers.sources.settings), the Observers form's secrets and key list
(observers.forms), the source's own defaults (`settings_with_defaults`), and the test
that holds docs/observers.md to them (tests/observers/test_source_settings.py).

The names, types and defaults are a contract users' configuration files depend on
(docs/config.md): a key is never renamed, removed, or given another default.

Pure (stdlib only): the source modules import it, and they run without Django. The
JSON-schema builders are here for the same reason; observers.sources.settings and the
site configuration's schema (tariscope.siteconfig) use them too.
"""
from collections.abc import Mapping
from dataclasses import dataclass


def schema_nullable(schema: dict) -> dict:
    """An optional key may be null (an empty value in YAML): the same as leaving it out."""
    schema = dict(schema)
    kind = schema.get("type")
    if kind is not None:
        schema["type"] = [*(kind if isinstance(kind, list) else [kind]), "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def schema_object(required: dict, optional: dict | None = None, **extra) -> dict:
    optional = optional or {}
    return {
        "type": "object",
        "properties": {**required, **{k: schema_nullable(v) for k, v in optional.items()}},
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def schema_list(items: dict) -> dict:
    return {"type": "array", "items": items}


# Schemas several keys share. A key that two sources take has the same schema in both
# (observers.sources.settings refuses to start otherwise): only its default and whether
# it is required may differ.
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
HOST = {"type": "string", "minLength": 1, "maxLength": 253}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}  # a user, a secret, a pattern
SECONDS = {"type": "number", "minimum": 0}
COUNT = {"type": "integer", "minimum": 1}
FLAG = {"type": "boolean"}


@dataclass(frozen=True)
class Setting:
    """One key of a source's settings, as users write it in a profile (docs/config.md)."""

    name: str
    schema: dict  # JSON schema of its value (null aside: see schema_nullable)
    help: str  # one line, for people choosing a value
    default: object = None  # what the source uses when it is left out; None: no fixed one
    required: bool = False
    secret: bool = False  # never shown back (the Observers form masks it)


# Every source takes its parser's options; the parser of the device's type checks them.
PARSER = Setting("parser", {"type": "object", "description": "parser options, see docs/formats.md"},
                 "the parser's options (docs/formats.md)")


def settings_with_defaults(settings: Mapping, declared: tuple[Setting, ...]) -> dict:
    """`settings` with every declared key that is left out or None set to its declared
    default; the other keys are kept."""
    values = {setting.name: setting.default for setting in declared}
    values.update((key, value) for key, value in settings.items() if value is not None)
    return values
