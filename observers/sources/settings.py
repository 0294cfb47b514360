"""R2.1, R2.2: the keys each data source takes, and the one check of a profile's settings
that apply_config (tariscope.siteconfig) and the Observers form both use, so that a file
and the form accept the same settings (docs/observers.md).

Also here: the JSON-schema builders and the translation of jsonschema's errors into
sentences with key paths, which the site configuration's checks share.
"""
import datetime
import difflib
from collections.abc import Iterator

from jsonschema import Draft202012Validator

from observers.models import SourceType
from observers.parsers import parser_options_problems


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


PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
TEXT = {"type": "string", "minLength": 1, "maxLength": 500}

# Observer keys by source: a contract (docs/config.md). They are stored in
# ObserverProfile.settings under the same names, exactly as the file gives them; the
# defaults here are the collector's for a key left out, and are not stored, so that
# export and apply give back the same settings.
SOURCE_KEY_SCHEMAS = {
    "path": TEXT,
    "host": {"type": "string", "minLength": 1, "maxLength": 253},
    "port": PORT,
    "user": {"type": "string", "minLength": 1, "maxLength": 200},
    "password": {"type": "string", "maxLength": 200},
    "remote_path": TEXT,
    "after": {"enum": ["delete", "rename"], "description": "what to do with a fetched file"},
    "secret": {"type": "string", "minLength": 1, "maxLength": 200},
    "clients": schema_list(schema_object(
        {"address": {"type": "string", "minLength": 1, "maxLength": 253}},
        {"secret": {"type": "string", "minLength": 1, "maxLength": 200}},
    )),
    # Parser options (the generic parser needs them; docs/formats.md).
    "parser": {"type": "object", "description": "parser options, see docs/formats.md"},
    # Tuning, each with the source's own default (docs/config.md).
    **{key: {"type": "number", "minimum": 0} for key in (
        "settle_seconds", "auth_failed_delay", "sweep_interval", "interval", "timeout",
        "idle_timeout", "flush_seconds", "retry_min", "retry_max", "reconnect_min",
        "reconnect_max", "connect_timeout", "retransmit_cache_seconds")},
    **{key: {"type": "integer", "minimum": 1} for key in (
        "max_file_bytes", "max_login_attempts", "max_line_bytes", "max_connections",
        "flush_lines", "max_pending_lines", "max_pending_bytes")},
    **{key: {"type": "boolean"} for key in ("passive", "tls", "tls_required", "tls_verify")},
    "passive_ports": {"type": "string", "pattern": r"^[0-9]{1,5}-[0-9]{1,5}$",
                      "description": "a port range such as 60000-60100"},
    "home": TEXT,
    "state_dir": TEXT,
    # FTPS (docs/observers.md): PEM files on the collector's machine.
    "certfile": TEXT,
    "keyfile": TEXT,
    "cafile": TEXT,
    "banner": {"type": "string", "maxLength": 200},
    "pattern": {"type": "string", "minLength": 1, "maxLength": 200},
}
_TCP_TUNING = dict.fromkeys(("max_line_bytes", "flush_lines", "flush_seconds", "retry_min",
                             "retry_max", "max_pending_lines", "max_pending_bytes"))
SOURCES = {
    # source: (required keys, optional keys with their defaults, None for no default)
    SourceType.FOLDER: (("path",), {"settle_seconds": None, "parser": None}),
    SourceType.FTP_SERVER: (("user", "password"), {
        "port": 21, "host": None, "passive_ports": None, "home": None, "max_file_bytes": None,
        "max_login_attempts": None, "auth_failed_delay": None, "sweep_interval": None,
        "banner": None, "tls": None, "certfile": None, "keyfile": None, "tls_required": None,
        "parser": None}),
    SourceType.FTP_CLIENT: (("host", "user", "password"), {
        "port": 21, "remote_path": None, "after": None, "pattern": None, "interval": None,
        "passive": None, "timeout": None, "tls": None, "tls_verify": None, "cafile": None,
        "max_file_bytes": None, "state_dir": None, "parser": None}),
    SourceType.TCP_SERVER: (("port",), {
        "host": None, "max_connections": None, "idle_timeout": None, "parser": None,
        **_TCP_TUNING}),
    SourceType.TCP_CLIENT: (("host", "port"), {
        "reconnect_min": None, "reconnect_max": None, "connect_timeout": None, "parser": None,
        **_TCP_TUNING}),
    SourceType.RADIUS: (("secret",), {
        "port": 1813, "clients": None, "host": None, "retransmit_cache_seconds": None,
        "parser": None}),
}


def _source_rule(source: str) -> dict:
    required, optional = SOURCES[source]
    own = set(required) | set(optional)
    properties = {key: {"not": {}, "description": f"not a key of a {source} observer"}
                  for key in SOURCE_KEY_SCHEMAS if key not in own}
    properties.update({key: {**SOURCE_KEY_SCHEMAS[key], "default": default}
                       for key, default in optional.items() if default is not None})
    return {
        "if": {"properties": {"source": {"const": source}}, "required": ["source"]},
        "then": {"required": list(required), "properties": properties},
    }

# One profile's source keys, with its source. Source keys are checked strictly (not
# nullable): a null password is a mistake, not a default.
OBSERVER_SETTINGS = {
    "type": "object",
    "properties": {"source": {"enum": list(SourceType.values)}, **SOURCE_KEY_SCHEMAS},
    "additionalProperties": False,
    "allOf": [_source_rule(source) for source in SOURCES],
}


# A key's place in a document: ('nodes', 0, 'devices', 1, 'name').
KeyPath = tuple[str | int, ...]

SETTINGS_VALIDATOR = Draft202012Validator(OBSERVER_SETTINGS)
SOURCE_KEYS = frozenset(SOURCE_KEY_SCHEMAS)



def path_text(path: KeyPath) -> str:
    """('nodes', 0, 'devices', 1, 'name') -> 'nodes[0].devices[1].name'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "(top level)"


def error_sort_key(error: tuple[KeyPath, str]):
    path, message = error
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part))
                 for part in path), message


def plain(value):
    """Dates (as a YAML loader or a caller may give them) become ISO text, recursively."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, datetime.date):  # datetime too: then the date check rejects it
        return value.isoformat()
    return value


def value_at(data, path: KeyPath):
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def schema_errors(data, validator) -> Iterator[tuple[KeyPath, str]]:
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield path + (key,), f"unknown key{hint}"
        elif error.validator == "required":
            source = (value_at(data, path) or {}).get("source") if "then" in error.schema_path else None
            for key in error.validator_value:
                if key not in error.instance:
                    yield path + (key,), (f"is required for source {source!r}" if source
                                          else "is a required key")
        elif error.validator == "not":
            source = value_at(data, path[:-1]).get("source")
            required, optional = SOURCES[source]
            yield path, (f"not a key of source {source!r} "
                         f"(it takes {', '.join([*required, *optional])})")
        elif error.validator == "format":
            yield path, f"{error.instance!r} is not a date (YYYY-MM-DD)"
        elif error.validator == "pattern":
            rule = error.schema.get("description", f"must match {error.validator_value}")
            yield path, f"{short_text(error.instance)} is not valid: {rule}"
        elif error.validator == "type":
            yield path, type_message(error.instance, error.validator_value)
        elif error.validator == "enum":
            choices = ", ".join(repr(v) for v in error.validator_value if v is not None)
            yield path, f"{short_text(error.instance)} is not one of {choices}"
        elif error.validator == "maxLength":
            yield path, f"longer than {error.validator_value} characters"
        elif error.validator == "minLength":
            yield path, "must not be empty"
        else:
            yield path, error.message


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
               "boolean": "true or false", "null": "empty"}


def short_text(value) -> str:
    if isinstance(value, dict | list):
        return _TYPE_WORDS["object" if isinstance(value, dict) else "array"]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_message(instance, expected) -> str:
    expected = [expected] if isinstance(expected, str) else expected
    wanted = " or ".join(_TYPE_WORDS[kind] for kind in expected if kind != "null")
    message = f"expected {wanted}, got {short_text(instance)}"
    # YAML reads 9, 044 or 2024 as numbers; the fix is quoting.
    if "string" in expected and isinstance(instance, int | float | bool):
        message += " (write it in quotes)"
    return message


def observer_settings_problems(*, source, settings, device_type=None) -> list[tuple[KeyPath, str]]:
    """R2.1, R2.2, R2.7: what is wrong with one observer profile's source keys (`settings`,
    as ObserverProfile.settings holds them) and its parser options (`settings["parser"]`,
    checked by the parser of `device_type`; not checked when it is None), each problem with
    the path of its key inside `settings`. apply_config and the UI's observer form both
    check a profile with this, so that a file and the form accept the same settings."""
    if not isinstance(settings, dict):
        return [((), type_message(settings, "object"))]
    settings = plain(settings)
    errors = set()
    if "source" in settings:  # the profile's own field, not a source key
        errors.add((("source",), "unknown key"))
    instance = {key: value for key, value in settings.items() if key != "source"}
    if source in SOURCES:
        instance["source"] = source  # selects the source's rule (_source_rule)
    errors.update(schema_errors(instance, SETTINGS_VALIDATOR))
    parser = settings.get("parser")
    if device_type is not None and (parser is None or isinstance(parser, dict)):
        errors.update((("parser",), message)
                      for message in parser_options_problems(device_type, parser))
    return sorted(errors, key=error_sort_key)

