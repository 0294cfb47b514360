"""R1, R2.1, R5.1, R6: the site configuration as one file (YAML or JSON) — operators, tariff
plans, nodes, devices with their dial plans, routes and observer profiles, groups,
subscribers and their numbers — validated, applied and exported (docs/config.md).

Three layers, so that each can be tested on its own:

* `SCHEMA`, `site_config_parse` and `site_config_validate` are pure: plain data in, error
  strings out, no database. What the database already holds reaches the validator as a
  plain `Known` snapshot, because a file may refer to rows it does not list.
* `site_config_apply(*, data)` is the service that writes (one transaction, all or
  nothing); `site_config_export()` is the read that produces the same format.

The apply and export code lives here rather than in services.py / selectors.py because
the schema, the matching rules and the export are one contract and nothing else uses
them (STYLE rule 11); the file format changes in one place.

Semantics, in brief (the user's version is in docs/config.md):
* An object named in the file is described fully: a key left out (or null) takes the
  default, exactly as on a new row. The one exception is a subscriber's
  `account_number`, which when left out keeps the number the row already has.
* Rows are matched by name (see `_Applier`) and never deleted.
"""
import datetime
import difflib
import json
import re
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.db import IntegrityError, transaction
from jsonschema import Draft202012Validator, FormatChecker

from billing.models import (
    AuthCodePosition,
    Device,
    DeviceType,
    Node,
    PhoneNumber,
    Route,
    RouteKind,
    Subscriber,
    SubscriberGroup,
    SubscriberType,
)
from observers.models import ArchivePeriod, LogLevel, ObserverProfile, SourceType
from observers.parsers import parser_options_problems
from tariffs.models import Operator, TariffPlan
from tariffs.services import operator_rates_changed

KINDS = (
    "operators", "plans", "nodes", "devices", "routes", "observers", "groups", "subscribers",
    "numbers",
)


class SiteConfigError(Exception):
    """The file was not applied; `errors` holds one line per problem, each naming its path."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


# --- The schema -----------------------------------------------------------------------------
# Built from the models' own limits (max_length, choices) so that the file and the tables
# cannot drift apart: whatever passes the schema fits the columns.

def _max(model, name: str) -> int | None:
    return model._meta.get_field(name).max_length


def _string(model=None, name: str | None = None, **extra) -> dict:
    schema = {"type": "string"}
    if model is not None and _max(model, name):
        schema["maxLength"] = _max(model, name)
    schema.update(extra)
    return schema


def _name(model, name: str = "name") -> dict:
    return _string(model, name, minLength=1, pattern=r"^\S(.*\S)?$",
                   description="a name without leading or trailing spaces")


def _digits(model, name: str) -> dict:
    return _string(model, name, pattern=r"^[0-9]*$", description="digits only")


def _nullable(schema: dict) -> dict:
    """An optional key may be null (an empty value in YAML): the same as leaving it out."""
    schema = dict(schema)
    kind = schema.get("type")
    if kind is not None:
        schema["type"] = [*(kind if isinstance(kind, list) else [kind]), "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _object(required: dict, optional: dict | None = None, **extra) -> dict:
    optional = optional or {}
    return {
        "type": "object",
        "properties": {**required, **{k: _nullable(v) for k, v in optional.items()}},
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def _list(items: dict) -> dict:
    return {"type": "array", "items": items}


DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}

LOG_LEVELS = {level.name.lower(): level.value for level in LogLevel}
SUBSCRIBER_TYPES = {kind.name.lower(): kind.value for kind in SubscriberType}

# Observer keys by source: a contract (docs/config.md). They are stored in
# ObserverProfile.settings under the same names, exactly as the file gives them; the
# defaults here are the collector's for a key left out, and are not stored, so that
# export and apply give back the same settings.
SOURCE_KEY_SCHEMAS = {
    "path": _TEXT,
    "host": {"type": "string", "minLength": 1, "maxLength": 253},
    "port": PORT,
    "user": {"type": "string", "minLength": 1, "maxLength": 200},
    "password": {"type": "string", "maxLength": 200},
    "remote_path": _TEXT,
    "after": {"enum": ["delete", "rename"], "description": "what to do with a fetched file"},
    "secret": {"type": "string", "minLength": 1, "maxLength": 200},
    "clients": _list(_object(
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
    "home": _TEXT,
    "state_dir": _TEXT,
    # FTPS (docs/observers.md): PEM files on the collector's machine.
    "certfile": _TEXT,
    "keyfile": _TEXT,
    "cafile": _TEXT,
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


OBSERVER = _object(
    {
        "name": _string(ObserverProfile, "name", minLength=1, pattern=r"^[A-Za-z0-9]+$",
                        description="letters and digits only"),
        "source": {"enum": list(SourceType.values)},
    },
    {
        "archive_period": {"enum": list(ArchivePeriod.values), "default": "month"},
        "log_level": {"enum": list(LOG_LEVELS), "default": "status"},
        "enabled": {"type": "boolean", "default": True},
        "remote": {"type": "boolean", "default": False},
        "archive_dir": _string(ObserverProfile, "archive_dir"),
    },
)
# The source keys are checked, with the source and the parser options, by
# observer_settings_problems(), which the UI's observer form calls too; here they are only
# declared, so that the file's schema does not report their errors a second time.
OBSERVER["properties"].update(dict.fromkeys(SOURCE_KEY_SCHEMAS, {}))

# One profile's source keys, with its source. Source keys are checked strictly (not
# nullable): a null password is a mistake, not a default.
OBSERVER_SETTINGS = {
    "type": "object",
    "properties": {"source": {"enum": list(SourceType.values)}, **SOURCE_KEY_SCHEMAS},
    "additionalProperties": False,
    "allOf": [_source_rule(source) for source in SOURCES],
}

# Dial plan keys stored as Device fields of the same name (service_numbers is handled apart).
DIAL_PLAN_FIELDS = ("access_code", "national_prefix", "international_prefix", "country_code",
                    "area_code", "extension_length", "extension_pattern", "auth_code_position",
                    "auth_code_length")

DIAL_PLAN = _object({}, {
    "access_code": _digits(Device, "access_code"),
    "national_prefix": _digits(Device, "national_prefix"),
    "international_prefix": _digits(Device, "international_prefix"),
    "country_code": _digits(Device, "country_code"),
    "area_code": _digits(Device, "area_code"),
    "extension_length": {"type": "integer", "minimum": 1, "maximum": 32},
    "auth_code_position": {"enum": list(AuthCodePosition.values),
                           "description": "where authorization codes are dialled: "
                                          "'' (not used), before or after the number"},
    "auth_code_length": {"type": "integer", "minimum": 0, "maximum": 16},
    "extension_pattern": _string(Device, "extension_pattern",
                                 description="a regular expression for internal numbers"),
    "service_numbers": {
        "type": ["array", "string"],
        "items": {"type": "string", "pattern": r"^[^,\s]+$",
                  "description": "one number, without commas or spaces"},
        "maxLength": _max(Device, "service_numbers"),
        "description": "a list of numbers, or one comma-separated string",
    },
})

ROUTE = _object(
    {"name": _name(Route), "operator": _name(Operator)},
    {"kind": {"enum": list(RouteKind.values), "default": "route"}},
)

DEVICE = _object(
    {"name": _name(Device), "type": {"enum": list(DeviceType.values)}},
    {
        "timezone": _string(Device, "timezone", minLength=1, default="UTC"),
        "dial_plan": DIAL_PLAN,
        "default_operator": _name(Operator),
        "default_plan": _name(TariffPlan),
        "routes": _list(ROUTE),
        "observer": OBSERVER,
        "observers": _list(OBSERVER),
    },
)

NODE = _object(
    {"name": _name(Node)},
    {
        "country": _string(Node, "country", pattern=r"^([A-Z]{2})?$",
                           description="ISO 3166 alpha-2 code, e.g. UA"),
        "description": _string(Node, "description"),
        "devices": _list(DEVICE),
    },
)

GROUP = _object(
    {"name": _name(SubscriberGroup), "node": _name(Node)},
    {"parent": _name(SubscriberGroup)},
)

NUMBER = _object(
    {"dn": _name(PhoneNumber, "dn"), "device": _name(Device), "from": DATE},
    {"to": DATE, "description": _string(PhoneNumber, "description")},
)

SUBSCRIBER = _object(
    {"name": _name(Subscriber, "full_name")},
    {
        "group": _name(SubscriberGroup),
        "node": _name(Node),
        "plan": _name(TariffPlan),
        "type": {"enum": [*SUBSCRIBER_TYPES.values(), *SUBSCRIBER_TYPES]},
        "connection_date": DATE,
        "contract_number": _string(Subscriber, "contract_number"),
        "contract_date": DATE,
        "account_number": _name(Subscriber, "account_number"),
        **{key: _string(Subscriber, key) for key in (
            "personal_code", "edrpou", "tax_code", "bank_code", "bank_name", "bank_account")},
        "numbers": _list(NUMBER),
    },
)

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tariscope site configuration",
    **_object({}, {
        "operators": _list(_object(
            {"name": _name(Operator)},
            {
                "currency": _string(Operator, "currency", pattern=r"^[A-Z]{3}$", default="UAH",
                                    description="ISO 4217 code, e.g. UAH"),
                "description": _string(Operator, "description"),
            },
        )),
        "plans": _list(_object({"name": _name(TariffPlan)},
                               {"description": _string(TariffPlan, "description")})),
        "nodes": _list(NODE),
        "groups": _list(GROUP),
        "subscribers": _list(SUBSCRIBER),
    }),
}

_VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker(formats=["date"]))
_SETTINGS_VALIDATOR = Draft202012Validator(OBSERVER_SETTINGS)
_SOURCE_KEYS = frozenset(SOURCE_KEY_SCHEMAS)


# --- Reading the file -----------------------------------------------------------------------

class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys, keeps dates as text (so a bad date is reported
    with its path, not as a loader crash) and reads only true/false as booleans (YAML 1.2:
    `country: NO` stays Norway)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_TIMESTAMP, _BOOL = "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_TIMESTAMP, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _json_object(pairs):
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"duplicate key {repeated[0]!r}")
    return dict(pairs)


def format_of(path: Path) -> str | None:
    """'yaml' or 'json' by the file's extension; None when the extension says neither."""
    return {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path.suffix.lower())


def site_config_parse(text: str, *, fmt: str | None = None, source: str = "input"):
    """Parse YAML or JSON text; with no `fmt`, JSON is tried first, then YAML."""
    if fmt in (None, "json"):
        try:
            data = json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            if fmt == "json":
                raise SiteConfigError([f"{source}: not valid JSON: {exc.msg} "
                                       f"at line {exc.lineno} column {exc.colno}"]) from None
            data = _parse_yaml(text, source)
        except ValueError as exc:
            raise SiteConfigError([f"{source}: not valid JSON: {exc}"]) from None
    else:
        data = _parse_yaml(text, source)
    if data is None:
        raise SiteConfigError([f"{source}: the file is empty"])
    return data


def _parse_yaml(text: str, source: str):
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SiteConfigError(
            [f"{source}: not valid YAML: {exc.problem or exc.context}{where}"]) from None
    except yaml.YAMLError as exc:
        raise SiteConfigError([f"{source}: not valid YAML: {exc}"]) from None


def site_config_load(path: Path):
    """Read and parse FILE; a missing or unreadable file is a SiteConfigError too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SiteConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteConfigError([f"{path}: cannot be read: {exc}"]) from None
    return site_config_parse(text, fmt=format_of(path), source=str(path))


# --- Validation (pure) ----------------------------------------------------------------------

@dataclass(frozen=True)
class Known:
    """What the database holds that a file may refer to by name, as plain data."""

    operators: frozenset[str] = frozenset()
    plans: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    # (node name, group name) -> parent group name or None
    groups: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    # full name -> account numbers of the subscribers bearing it
    subscribers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


KeyPath = tuple[str | int, ...]


def path_text(path: KeyPath) -> str:
    """('nodes', 0, 'devices', 1, 'name') -> 'nodes[0].devices[1].name'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "(top level)"


def _sort_key(error: tuple[KeyPath, str]):
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


def site_config_validate(data, *, known: Known | None = None) -> list[str]:
    """Every problem of `data`, one line each, prefixed with the path of the bad key.

    The schema's errors (types, ranges, unknown and missing keys) and those of the checks
    no schema can express (names repeated in the file, references to names neither in
    the file nor in `known`, time zones, date order, overlaps, group cycles), sorted by
    path so that they read in the order of the file.
    """
    data = plain(data)
    errors = set(_schema_errors(data))
    if isinstance(data, dict):
        errors.update(_Checker(data, known or Known()).run())
    return [f"{path_text(path)}: {message}" for path, message in sorted(errors, key=_sort_key)]


def _at(data, path: KeyPath):
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _schema_errors(data, validator=_VALIDATOR) -> Iterator[tuple[KeyPath, str]]:
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield path + (key,), f"unknown key{hint}"
        elif error.validator == "required":
            source = (_at(data, path) or {}).get("source") if "then" in error.schema_path else None
            for key in error.validator_value:
                if key not in error.instance:
                    yield path + (key,), (f"is required for source {source!r}" if source
                                          else "is a required key")
        elif error.validator == "not":
            source = _at(data, path[:-1]).get("source")
            required, optional = SOURCES[source]
            yield path, (f"not a key of source {source!r} "
                         f"(it takes {', '.join([*required, *optional])})")
        elif error.validator == "format":
            yield path, f"{error.instance!r} is not a date (YYYY-MM-DD)"
        elif error.validator == "pattern":
            rule = error.schema.get("description", f"must match {error.validator_value}")
            yield path, f"{_short(error.instance)} is not valid: {rule}"
        elif error.validator == "type":
            yield path, _type_message(error.instance, error.validator_value)
        elif error.validator == "enum":
            choices = ", ".join(repr(v) for v in error.validator_value if v is not None)
            yield path, f"{_short(error.instance)} is not one of {choices}"
        elif error.validator == "maxLength":
            yield path, f"longer than {error.validator_value} characters"
        elif error.validator == "minLength":
            yield path, "must not be empty"
        else:
            yield path, error.message


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
               "boolean": "true or false", "null": "empty"}


def _short(value) -> str:
    if isinstance(value, dict | list):
        return _TYPE_WORDS["object" if isinstance(value, dict) else "array"]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_message(instance, expected) -> str:
    expected = [expected] if isinstance(expected, str) else expected
    wanted = " or ".join(_TYPE_WORDS[kind] for kind in expected if kind != "null")
    message = f"expected {wanted}, got {_short(instance)}"
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
        return [((), _type_message(settings, "object"))]
    settings = plain(settings)
    errors = set()
    if "source" in settings:  # the profile's own field, not a source key
        errors.add((("source",), "unknown key"))
    instance = {key: value for key, value in settings.items() if key != "source"}
    if source in SOURCES:
        instance["source"] = source  # selects the source's rule (_source_rule)
    errors.update(_schema_errors(instance, _SETTINGS_VALIDATOR))
    parser = settings.get("parser")
    if device_type is not None and (parser is None or isinstance(parser, dict)):
        errors.update((("parser",), message)
                      for message in parser_options_problems(device_type, parser))
    return sorted(errors, key=_sort_key)


def _dicts(value) -> Iterator[tuple[int, dict]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def _str(item: dict, key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _date(value) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def observers_of(device: dict) -> Iterator[tuple[KeyPath, dict]]:
    """A device's observer profiles: `observer` (one) or `observers` (a list)."""
    if isinstance(device.get("observer"), dict):
        yield ("observer",), device["observer"]
    for index, observer in _dicts(device.get("observers")):
        yield ("observers", index), observer


class _Checker:
    """The checks the schema cannot express. Tolerates malformed parts (the schema pass
    reports those) so that every error of a file is found in one run."""

    def __init__(self, data: dict, known: Known):
        self.data = data
        self.known = known
        self.errors: list[tuple[KeyPath, str]] = []
        # Names the file defines, each with the path of its first definition.
        self.operators: dict[str, KeyPath] = {}
        self.plans: dict[str, KeyPath] = {}
        self.nodes: dict[str, KeyPath] = {}
        self.devices: dict[str, KeyPath] = {}
        self.groups: dict[tuple[str, str], KeyPath] = {}
        self.group_nodes: dict[str, set[str]] = defaultdict(set)  # group name -> its nodes

    def error(self, path: KeyPath, message: str):
        self.errors.append((path, message))

    def unique(self, seen: dict, key, path: KeyPath, what: str):
        """Record `key` at `path`; a second occurrence is an error naming the first."""
        if key in seen:
            self.error(path, f"duplicate {what} (first at {path_text(seen[key])})")
        else:
            seen[key] = path

    def run(self) -> list[tuple[KeyPath, str]]:
        data = self.data
        for kind, seen in (("operators", self.operators), ("plans", self.plans),
                           ("nodes", self.nodes)):
            for index, item in _dicts(data.get(kind)):
                if _str(item, "name"):
                    self.unique(seen, item["name"], (kind, index, "name"), f"{kind[:-1]} name")
        self.devices_check()
        self.groups_check()
        self.subscribers_check()
        return self.errors

    def refer(self, path: KeyPath, name, in_file, in_db, what: str):
        if isinstance(name, str) and name not in in_file and name not in in_db:
            self.error(path, f"unknown {what} {name!r} (neither in the file nor in the database)")

    def devices_check(self):
        observers, devices = {}, []
        for n, node in _dicts(self.data.get("nodes")):
            for d, device in _dicts(node.get("devices")):
                path = ("nodes", n, "devices", d)
                devices.append((path, device))
                if _str(device, "name"):
                    self.unique(self.devices, device["name"], path + ("name",), "device name")
                for rest, observer in observers_of(device):
                    if _str(observer, "name"):
                        self.unique(observers, observer["name"], path + rest + ("name",),
                                    "observer name")
        for path, device in devices:
            self.device_check(path, device)

    def device_check(self, path: KeyPath, device: dict):
        zone = _str(device, "timezone")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.error(path + ("timezone",), f"unknown time zone {zone!r}")
        dial_plan = device.get("dial_plan")
        pattern = _str(dial_plan, "extension_pattern") if isinstance(dial_plan, dict) else None
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.error(path + ("dial_plan", "extension_pattern"),
                           f"not a valid regular expression: {exc}")
        if isinstance(dial_plan, dict) and isinstance(dial_plan.get("service_numbers"), list):
            joined = service_numbers_text(dial_plan["service_numbers"])
            limit = _max(Device, "service_numbers")
            if len(joined) > limit:
                self.error(path + ("dial_plan", "service_numbers"),
                           f"longer than {limit} characters when joined with commas")
        self.refer(path + ("default_operator",), device.get("default_operator"),
                   self.operators, self.known.operators, "operator")
        self.refer(path + ("default_plan",), device.get("default_plan"),
                   self.plans, self.known.plans, "tariff plan")
        if device.get("observer") is not None and device.get("observers") is not None:
            self.error(path + ("observers",), "give either observer or observers, not both")
        device_type = _str(device, "type")
        for rest, observer in observers_of(device):
            settings = {key: value for key, value in observer.items() if key in _SOURCE_KEYS}
            problems = observer_settings_problems(
                source=observer.get("source"), settings=settings,
                device_type=device_type if device_type in DeviceType.values else None)
            for key_path, message in problems:
                self.error(path + rest + key_path, message)
        routes = {}
        for r, route in _dicts(device.get("routes")):
            if _str(route, "name"):
                self.unique(routes, route["name"], path + ("routes", r, "name"),
                            "route name on this device")
            self.refer(path + ("routes", r, "operator"), route.get("operator"),
                       self.operators, self.known.operators, "operator")

    def groups_check(self):
        parents: dict[tuple[str, str], str | None] = dict(self.known.groups)
        for g, group in _dicts(self.data.get("groups")):
            path = ("groups", g)
            node, name = _str(group, "node"), _str(group, "name")
            self.refer(path + ("node",), group.get("node"), self.nodes, self.known.nodes, "node")
            if node and name:
                self.unique(self.groups, (node, name), path + ("name",), "group on this node")
                parents[(node, name)] = _str(group, "parent")
        for (node, name), path in self.groups.items():
            parent = parents[(node, name)]
            group_path = path[:-1]
            if parent is None:
                continue
            if (node, parent) not in parents:
                self.error(group_path + ("parent",), f"unknown group {parent!r} on node {node!r} "
                           "(neither in the file nor in the database)")
                continue
            chain, current = [name], parent
            while current is not None and current not in chain:
                chain.append(current)
                current = parents.get((node, current))
            if current == name:
                self.error(group_path + ("parent",),
                           "groups form a cycle: " + " -> ".join([*chain, name]))
        for node, name in parents:
            self.group_nodes[name].add(node)

    def subscribers_check(self):
        accounts, names, numbers = {}, {}, {}
        periods = defaultdict(list)  # (device, dn) -> [(from, to, path)]
        subscribers = list(_dicts(self.data.get("subscribers")))
        for s, sub in subscribers:
            if _str(sub, "account_number"):
                self.unique(accounts, sub["account_number"], ("subscribers", s, "account_number"),
                            "account number")
        for s, sub in subscribers:
            path = ("subscribers", s)
            name = _str(sub, "name")
            if name:
                names.setdefault(name, []).append(path)
            self.subscriber_refs(path, sub)
            if name and not sub.get("account_number"):
                self.subscriber_match(path, name, accounts)
            for i, number in _dicts(sub.get("numbers")):
                number_path = path + ("numbers", i)
                device, dn = _str(number, "device"), _str(number, "dn")
                self.refer(number_path + ("device",), number.get("device"),
                           self.devices, self.known.devices, "device")
                start, end = _date(number.get("from")), _date(number.get("to"))
                if start and end and end < start:
                    self.error(number_path + ("to",), f"{number['to']} is before from "
                               f"({number['from']})")
                    continue
                if device and dn and start:
                    key = (device, dn, start)
                    if key in numbers:
                        self.error(number_path, f"duplicate number {dn} on {device} from {start} "
                                   f"(first at {path_text(numbers[key])})")
                    else:
                        numbers[key] = number_path
                        periods[(device, dn)].append((start, end, number_path))
        for path_list in names.values():
            if len(path_list) > 1:
                for path in path_list:
                    sub = _at(self.data, path)
                    if not sub.get("account_number"):
                        others = ", ".join(path_text(p) for p in path_list if p != path)
                        self.error(path + ("name",), f"the name is also used by {others}; give "
                                   "account_number to tell the subscribers apart")
        self.overlaps_check(periods)

    def subscriber_refs(self, path: KeyPath, sub: dict):
        self.refer(path + ("plan",), sub.get("plan"), self.plans, self.known.plans, "tariff plan")
        group, node = _str(sub, "group"), _str(sub, "node")
        if node is not None and sub.get("group") is None:
            self.error(path + ("node",), "only used with group (the node of the group)")
        self.refer(path + ("node",), sub.get("node"), self.nodes, self.known.nodes, "node")
        if group is None:
            return
        holders = self.group_nodes.get(group, set())
        if node is not None:
            if node not in holders:
                self.error(path + ("group",), f"unknown group {group!r} on node {node!r} "
                           "(neither in the file nor in the database)")
        elif not holders:
            self.error(path + ("group",),
                       f"unknown group {group!r} (neither in the file nor in the database)")
        elif len(holders) > 1:
            self.error(path + ("group",), f"group {group!r} exists on nodes "
                       f"{', '.join(sorted(holders))}; add node to say which")

    def subscriber_match(self, path: KeyPath, name: str, accounts: dict):
        """A subscriber without account_number is matched by name: it must be one row."""
        in_db = self.known.subscribers.get(name, ())
        if len(in_db) > 1:
            self.error(path + ("name",), f"{len(in_db)} subscribers in the database are named "
                       f"{name!r}; give account_number to say which")
        elif in_db and in_db[0] in accounts:
            self.error(path + ("name",), f"matches by name the database subscriber with account "
                       f"number {in_db[0]!r}, which {path_text(accounts[in_db[0]][:-1])} "
                       "also names; give account_number")

    def overlaps_check(self, periods):
        for (device, dn), spans in periods.items():
            spans.sort(key=lambda span: span[0])
            for (start_a, end_a, path_a), (start_b, _, path_b) in zip(spans, spans[1:],
                                                                       strict=False):
                if end_a is None or end_a >= start_b:
                    self.error(path_b + ("from",), f"number {dn} on {device} is also held from "
                               f"{start_a} at {path_text(path_a)}; the periods overlap")


def service_numbers_text(value) -> str:
    return ",".join(value) if isinstance(value, list) else value


# --- Apply (the service) --------------------------------------------------------------------

def _known_read() -> Known:
    subscribers = defaultdict(list)
    for name, account in Subscriber.objects.values_list("full_name", "account_number"):
        subscribers[name].append(account)
    return Known(
        operators=frozenset(Operator.objects.values_list("name", flat=True)),
        plans=frozenset(TariffPlan.objects.values_list("name", flat=True)),
        nodes=frozenset(Node.objects.values_list("name", flat=True)),
        devices=frozenset(Device.objects.values_list("name", flat=True)),
        groups={(node, name): parent for node, name, parent in
                SubscriberGroup.objects.values_list("node__name", "name", "parent__name")},
        subscribers={name: tuple(accounts) for name, accounts in subscribers.items()},
    )


def site_config_apply(*, data: dict, dry_run: bool = False) -> dict:
    """R1/R2.1/R6: make the database hold what the file says, all or nothing.

    Returns {kind: {"created": n, "updated": n, "unchanged": n}}. Raises SiteConfigError
    with every problem when the file is invalid; then nothing is written. With `dry_run`
    the changes are made and rolled back, so the counts say what a real run would do.
    """
    data = plain(data)
    try:
        with transaction.atomic():
            errors = site_config_validate(data, known=_known_read())
            if errors:
                raise SiteConfigError(errors)
            counts = _Applier(data).run()
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError as exc:  # a race with another writer; the checks above cover the rest
        raise SiteConfigError([f"(database): the change was refused: {exc}"]) from exc
    return counts


def _default(model, name: str):
    return model._meta.get_field(name).get_default()


def _or_default(item: dict, key: str, model, name: str | None = None):
    value = item.get(key)
    return _default(model, name or key) if value is None else value


class _Applier:
    """Writes the rows of a valid file. Matching: operators, plans, nodes, devices and
    observer profiles by name; routes by (device, name); groups by (node, name);
    subscribers by account_number when the file gives it, else by full name; numbers by
    (device, dn, from). Every table is read once up front, so a run that changes nothing
    costs a fixed number of queries."""

    def __init__(self, data: dict):
        self.data = data
        self.counts = {kind: Counter(created=0, updated=0, unchanged=0) for kind in KINDS}
        self.operators = {o.name: o for o in Operator.objects.all()}
        self.plans = {p.name: p for p in TariffPlan.objects.all()}
        self.nodes = {n.name: n for n in Node.objects.all()}
        self.devices = {d.name: d for d in Device.objects.all()}
        self.routes = {(r.device_id, r.name): r for r in Route.objects.all()}
        self.observers = {p.name: p for p in ObserverProfile.objects.all()}
        self.groups = {(g.node_id, g.name): g for g in SubscriberGroup.objects.all()}
        subscribers = list(Subscriber.objects.all())
        self.by_account = {s.account_number: s for s in subscribers if s.account_number}
        self.by_name = {s.full_name: s for s in subscribers}  # used only when unique (checked)
        self.numbers = {(n.device_id, n.dn, n.valid_from): n for n in PhoneNumber.objects.all()}

    def sync(self, kind: str, model, current, values: dict):
        """Create the row, or update the fields that differ; count which it was."""
        if current is None:
            current = model(**values)
            current.save()
            self.counts[kind]["created"] += 1
            return current
        changed = [name for name, value in values.items() if getattr(current, name) != value]
        if changed:
            for name in changed:
                setattr(current, name, values[name])
            current.save(update_fields=changed)
        self.counts[kind]["updated" if changed else "unchanged"] += 1
        return current

    def run(self) -> dict:
        data = self.data
        for item in data.get("operators") or ():
            before = self.operators.get(item["name"])
            old_currency = before.currency if before is not None else None
            operator = self.operators[item["name"]] = self.sync("operators", Operator, before, {
                "name": item["name"],
                "currency": _or_default(item, "currency", Operator),
                "description": _or_default(item, "description", Operator),
            })
            if old_currency is not None and operator.currency != old_currency:
                # The currency is part of every compiled tariff entry (tariffs.selectors).
                operator_rates_changed(operator_ids=[operator.pk])
        for item in data.get("plans") or ():
            self.plans[item["name"]] = self.sync("plans", TariffPlan,
                                                 self.plans.get(item["name"]), {
                "name": item["name"],
                "description": _or_default(item, "description", TariffPlan),
            })
        for item in data.get("nodes") or ():
            self.nodes[item["name"]] = self.sync("nodes", Node, self.nodes.get(item["name"]), {
                "name": item["name"],
                "country": _or_default(item, "country", Node),
                "description": _or_default(item, "description", Node),
            })
        for item in data.get("nodes") or ():
            for device in item.get("devices") or ():
                self.device_apply(self.nodes[item["name"]], device)
        self.groups_apply(data.get("groups") or [])
        for item in data.get("subscribers") or ():
            self.subscriber_apply(item)
        return {kind: dict(counts) for kind, counts in self.counts.items()}

    def pk(self, table: dict, name):
        return table[name].pk if name is not None else None

    def device_apply(self, node: Node, item: dict):
        dial_plan = item.get("dial_plan") or {}
        service_numbers = dial_plan.get("service_numbers")
        values = {
            "node_id": node.pk,
            "name": item["name"],
            "type": item["type"],
            "timezone": _or_default(item, "timezone", Device),
            **{key: _or_default(dial_plan, key, Device) for key in DIAL_PLAN_FIELDS},
            "service_numbers": _default(Device, "service_numbers") if service_numbers is None
            else service_numbers_text(service_numbers),
            "default_operator_id": self.pk(self.operators, item.get("default_operator")),
            "default_plan_id": self.pk(self.plans, item.get("default_plan")),
        }
        device = self.sync("devices", Device, self.devices.get(item["name"]), values)
        self.devices[device.name] = device
        for route in item.get("routes") or ():
            key = (device.pk, route["name"])
            self.routes[key] = self.sync("routes", Route, self.routes.get(key), {
                "device_id": device.pk,
                "name": route["name"],
                "kind": _or_default(route, "kind", Route),
                "operator_id": self.operators[route["operator"]].pk,
            })
        for _, observer in observers_of(item):
            self.observer_apply(device, observer)

    def observer_apply(self, device: Device, item: dict):
        current = self.observers.get(item["name"])
        stored = current.settings if current is not None and isinstance(current.settings,
                                                                         dict) else {}
        # Keys outside the contract (e.g. a folder's settle_seconds) are kept; the
        # contract's keys are exactly what the file says, so switching a profile to
        # another source drops the old source's credentials.
        settings = {key: value for key, value in stored.items() if key not in _SOURCE_KEYS}
        settings.update({key: item[key] for key in _SOURCE_KEYS if key in item})
        log_level = item.get("log_level")
        self.observers[item["name"]] = self.sync("observers", ObserverProfile, current, {
            "name": item["name"],
            "device_id": device.pk,
            "source": item["source"],
            "settings": settings,
            "archive_dir": _or_default(item, "archive_dir", ObserverProfile),
            "archive_period": _or_default(item, "archive_period", ObserverProfile),
            "log_level": _default(ObserverProfile, "log_level") if log_level is None
            else LOG_LEVELS[log_level],
            "remote": _or_default(item, "remote", ObserverProfile),
            "enabled": _or_default(item, "enabled", ObserverProfile),
        })

    def groups_apply(self, items: list[dict]):
        # Parents first: a group whose parent is created by this file waits for it.
        pending = list(items)
        while pending:
            waiting = []
            for item in pending:
                node = self.nodes[item["node"]]
                parent = item.get("parent")
                if parent is not None and (node.pk, parent) not in self.groups:
                    waiting.append(item)
                    continue
                key = (node.pk, item["name"])
                self.groups[key] = self.sync("groups", SubscriberGroup, self.groups.get(key), {
                    "node_id": node.pk,
                    "name": item["name"],
                    "parent_id": self.groups[(node.pk, parent)].pk if parent is not None
                    else None,
                })
            if len(waiting) == len(pending):  # the checks exclude this; never loop forever
                raise SiteConfigError([f"groups: cannot order {len(waiting)} groups by parent"])
            pending = waiting

    def group_id(self, item: dict) -> int | None:
        name = item.get("group")
        if name is None:
            return None
        if item.get("node") is not None:
            return self.groups[(self.nodes[item["node"]].pk, name)].pk
        (group,) = [g for (_, group_name), g in self.groups.items() if group_name == name]
        return group.pk

    def subscriber_apply(self, item: dict):
        account = item.get("account_number")
        current = self.by_account.get(account) if account else self.by_name.get(item["name"])
        kind = item.get("type")
        values = {
            "full_name": item["name"],
            "group_id": self.group_id(item),
            "plan_id": self.pk(self.plans, item.get("plan")),
            "type": _default(Subscriber, "type") if kind is None
            else SUBSCRIBER_TYPES.get(kind, kind),
            "connection_date": _date(item.get("connection_date")),
            "contract_date": _date(item.get("contract_date")),
            **{key: _or_default(item, key, Subscriber) for key in (
                "contract_number", "personal_code", "edrpou", "tax_code", "bank_code",
                "bank_name", "bank_account")},
        }
        if account:
            values["account_number"] = account
        subscriber = self.sync("subscribers", Subscriber, current, values)
        self.by_account[subscriber.account_number] = subscriber
        for number in item.get("numbers") or ():
            device = self.devices[number["device"]]
            start = _date(number["from"])
            key = (device.pk, number["dn"], start)
            self.numbers[key] = self.sync("numbers", PhoneNumber, self.numbers.get(key), {
                "subscriber_id": subscriber.pk,
                "device_id": device.pk,
                "dn": number["dn"],
                "valid_from": start,
                "valid_to": _date(number.get("to")),
                "description": _or_default(number, "description", PhoneNumber),
            })


# --- Export (the read) ----------------------------------------------------------------------

def _put(out: dict, key: str, value, default=""):
    """Write `key` unless it holds the default: what apply gives a key left out."""
    if value != default and value is not None:
        out[key] = value.isoformat() if isinstance(value, datetime.date) else value


def site_config_export() -> dict:
    """R1/R2.1/R6: the configuration in the database, in the file format.

    Keys whose value is the default are left out; applying the result to an empty
    database reproduces the configuration, and applying it to this one changes nothing.
    """
    out = {"operators": [], "plans": [], "nodes": [], "groups": [], "subscribers": []}
    for operator in Operator.objects.order_by("name"):
        item = {"name": operator.name, "currency": operator.currency}
        _put(item, "description", operator.description)
        out["operators"].append(item)
    for plan in TariffPlan.objects.order_by("name"):
        item = {"name": plan.name}
        _put(item, "description", plan.description)
        out["plans"].append(item)
    devices = defaultdict(list)
    for device in Device.objects.select_related("default_operator", "default_plan").order_by(
            "name").prefetch_related("routes__operator", "observers"):
        devices[device.node_id].append(_device_export(device))
    for node in Node.objects.order_by("name"):
        item = {"name": node.name}
        _put(item, "country", node.country)
        _put(item, "description", node.description)
        _put(item, "devices", devices[node.pk], [])
        out["nodes"].append(item)
    for group in SubscriberGroup.objects.select_related("node", "parent").order_by(
            "node__name", "name"):
        item = {"name": group.name, "node": group.node.name}
        _put(item, "parent", group.parent.name if group.parent else None)
        out["groups"].append(item)
    subscribers = Subscriber.objects.select_related("group__node", "plan").prefetch_related(
        "numbers__device").order_by("full_name", "account_number")
    for subscriber in subscribers:
        out["subscribers"].append(_subscriber_export(subscriber))
    return {kind: items for kind, items in out.items() if items}


def _device_export(device: Device) -> dict:
    item = {"name": device.name, "type": device.type, "timezone": device.timezone}
    dial_plan = {}
    for key in DIAL_PLAN_FIELDS:
        _put(dial_plan, key, getattr(device, key), _default(Device, key))
    numbers = device.service_numbers
    if numbers != _default(Device, "service_numbers"):
        # A list reads better; the stored text is kept when a list would not give it back.
        as_list = numbers.split(",")
        plain_list = numbers and all(re.fullmatch(r"[^,\s]+", n) for n in as_list)
        dial_plan["service_numbers"] = as_list if plain_list else numbers
    _put(item, "dial_plan", dial_plan, {})
    _put(item, "default_operator", device.default_operator.name if device.default_operator
         else None)
    _put(item, "default_plan", device.default_plan.name if device.default_plan else None)
    routes = []
    for route in sorted(device.routes.all(), key=lambda r: r.name):
        route_item = {"name": route.name, "operator": route.operator.name}
        _put(route_item, "kind", route.kind, RouteKind.ROUTE)
        routes.append(route_item)
    _put(item, "routes", routes, [])
    observers = [_observer_export(p) for p in sorted(device.observers.all(), key=lambda p: p.name)]
    if len(observers) == 1:
        item["observer"] = observers[0]
    else:
        _put(item, "observers", observers, [])
    return item


def _observer_export(profile: ObserverProfile) -> dict:
    item = {"name": profile.name, "source": profile.source}
    required, optional = SOURCES.get(profile.source, ((), {}))
    settings = profile.settings if isinstance(profile.settings, dict) else {}
    for key in (*required, *optional):
        _put(item, key, settings.get(key), None)
    _put(item, "archive_period", profile.archive_period, ArchivePeriod.MONTH)
    _put(item, "log_level", LogLevel(profile.log_level).name.lower(), "status")
    _put(item, "enabled", profile.enabled, True)
    _put(item, "remote", profile.remote, False)
    _put(item, "archive_dir", profile.archive_dir)
    return item


def _subscriber_export(subscriber: Subscriber) -> dict:
    item = {"name": subscriber.full_name}
    if subscriber.group is not None:
        # The node too: group names repeat across nodes.
        item["group"] = subscriber.group.name
        item["node"] = subscriber.group.node.name
    _put(item, "plan", subscriber.plan.name if subscriber.plan else None)
    _put(item, "type", SubscriberType(subscriber.type).name.lower(), "individual")
    for key in ("connection_date", "contract_number", "contract_date", "account_number",
                "personal_code", "edrpou", "tax_code", "bank_code", "bank_name",
                "bank_account"):
        _put(item, key, getattr(subscriber, key))
    numbers = []
    for number in sorted(subscriber.numbers.all(),
                         key=lambda n: (n.device.name, n.dn, n.valid_from)):
        number_item = {"dn": number.dn, "device": number.device.name,
                       "from": number.valid_from.isoformat()}
        _put(number_item, "to", number.valid_to)
        _put(number_item, "description", number.description)
        numbers.append(number_item)
    _put(item, "numbers", numbers, [])
    return item


def site_config_dump(data: dict, fmt: str) -> str:
    """The export as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
