"""R2.1, R2.2: the keys each data source takes, and the one check of a profile's settings
that apply_config (tariscope.siteconfig) and the Observers form both use, so that a file
and the form accept the same settings (docs/observers.md).

Each source declares its keys once, in its own module (`SETTINGS`, observers.sources.keys);
everything here is derived from those declarations.

Also here, for the site configuration's schema and checks (tariscope.siteconfig), which
share them: the JSON-schema builders (from observers.sources.keys) and the translation of
jsonschema's errors into sentences with key paths.
"""
import datetime
import difflib
from collections.abc import Iterator

from jsonschema import Draft202012Validator

from observers.models import SourceType
from observers.parsers import parser_options_problems
from observers.sources import folder
from observers.sources.ftp import FtpClientSource, FtpServerSource
from observers.sources.keys import Setting
from observers.sources.keys import schema_list as schema_list
from observers.sources.keys import schema_object as schema_object
from observers.sources.radius import RadiusSource
from observers.sources.tcp import TcpClientSource, TcpServerSource

# Source type -> its keys, in the order they are listed (to users, and in an export).
DECLARED: dict[str, tuple[Setting, ...]] = {
    SourceType.FOLDER: folder.SETTINGS,
    SourceType.FTP_SERVER: FtpServerSource.SETTINGS,
    SourceType.FTP_CLIENT: FtpClientSource.SETTINGS,
    SourceType.TCP_SERVER: TcpServerSource.SETTINGS,
    SourceType.TCP_CLIENT: TcpClientSource.SETTINGS,
    SourceType.RADIUS: RadiusSource.SETTINGS,
}


def _key_schemas() -> dict[str, dict]:
    """Every key any source takes, with its schema: one schema per key, whichever source
    takes it, since a profile that changes its source keeps the keys both take."""
    schemas: dict[str, dict] = {}
    for source, declared in DECLARED.items():
        for setting in declared:
            if schemas.setdefault(setting.name, setting.schema) != setting.schema:
                raise ValueError(f"source {source}: key {setting.name!r} is declared with "
                                 "another schema than other sources give it")
    return schemas


# Observer keys by source: a contract (docs/config.md). They are stored in
# ObserverProfile.settings under the same names, exactly as the file gives them; the
# defaults are the collector's for a key left out, and are not stored, so that export and
# apply give back the same settings.
SOURCE_KEY_SCHEMAS = _key_schemas()
SOURCES = {
    # source: (required keys, optional keys with their defaults, None for no default)
    source: (tuple(s.name for s in declared if s.required),
             {s.name: s.default for s in declared if not s.required})
    for source, declared in DECLARED.items()
}
# Never shown back to a user (the Observers form); a RADIUS client's own `secret` inside
# `clients` too, which observers.forms handles with the client's address.
SECRET_KEYS = tuple(dict.fromkeys(s.name for declared in DECLARED.values()
                                  for s in declared if s.secret))


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
               "number": "a number", "boolean": "true or false", "null": "empty"}


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

