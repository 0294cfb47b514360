"""A fake 3CX for the connector tests: a real HTTP server on 127.0.0.1 with its state in memory,
speaking the v20 Configuration API (XAPI: token, OData Users/Groups/OutboundRules, ActiveCalls,
queue and call-log reports, CallHistoryView) and the v18 management API (login cookie + XSRF,
ExtensionList, edit session, activeCalls) over one set of users.

The v20 side is held to 3CX's own OpenAPI description (../shared/3cx/xapi-v20.openapi.yaml):
every request it receives and every answer it gives is checked against it (path and method
exist, path/query parameters, $select/$expand/$orderby names, request and response bodies
against the schemas with their $refs). A mismatch is recorded in `violations` (the fixture
fails the test that caused it) and a bad request is answered 400 as 3CX would.

The description is read strictly in one respect: an object may carry only the properties the
description lists (plus OData's "@odata.*" annotations). OpenAPI allows more by default, but
an OData service rejects unknown properties in a request, and an unknown property in one of
the fake's answers is a typo in the fake.

Failure modes a test can switch on: down (the connection is closed without an answer), slow
(the answer is delayed), an HTTP status (500…), the access token revoked or expired early, a
second token taken by "another program" (3CX keeps one token per API client), the v18
session expired.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC_FILE = "xapi-v20.openapi.yaml"


def spec_path() -> Path | None:
    """The XAPI description: $TARISCOPE_XAPI_OPENAPI, the copy in tests/restrictions/data/
    (with its attribution), or shared/3cx/ beside the repository."""
    if os.environ.get("TARISCOPE_XAPI_OPENAPI"):
        path = Path(os.environ["TARISCOPE_XAPI_OPENAPI"])
        return path if path.is_file() else None
    bundled = Path(__file__).resolve().parent / "data" / SPEC_FILE  # kept with its licence
    if bundled.is_file():
        return bundled
    for parent in Path(__file__).resolve().parents[2:]:
        candidate = parent / "shared" / "3cx" / SPEC_FILE
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def load_contract(path: str) -> Contract:
    with open(path, "rb") as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)  # noqa: S506 - CSafeLoader is the safe loader
    return Contract(spec)


# =============================================================================================
# OData query syntax, shared by the contract (names) and the fake (evaluation).
# =============================================================================================
class ODataError(Exception):
    """A request the fake answers with 400 and an OData error."""


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at separators outside parentheses and quotes: "A,B($select=C,D)" -> [A, B(...)]."""
    parts, depth, quoted, current = [], 0, False, []
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == separator and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if current or parts:
        parts.append("".join(current).strip())
    return [part for part in parts if part]


def parse_expand(text: str) -> list[tuple[str, dict[str, str]]]:
    """ "Groups($select=A,B;$expand=Rights($select=C))" -> [("Groups", {"$select": "A,B", ...})]."""
    items = []
    for part in split_top_level(text):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?", part, re.S)
        if not match:
            raise ODataError(f"invalid $expand item {part!r}")
        options = {}
        for option in split_top_level(match.group(2) or "", ";"):
            name, _, value = option.partition("=")
            if not name.startswith("$") or not value:
                raise ODataError(f"invalid $expand option {option!r}")
            options[name.strip()] = value.strip()
        items.append((match.group(1), options))
    return items


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    order = []
    for part in split_top_level(text):
        words = part.split()
        if len(words) not in (1, 2) or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(f"invalid $orderby item {part!r}")
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
    |(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<lp>\()|(?P<rp>\))|(?P<comma>,)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith", "tolower", "toupper", "date"}


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        parsed = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


class FilterParser:
    """$filter: eq ne gt ge lt le, and, or, not, parentheses, string/number/bool/null/date
    literals and contains/startswith/endswith/tolower/toupper/date. Unknown names are errors."""

    def __init__(self, text: str, properties: set[str]):
        self.tokens, position = [], 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise ODataError(f"$filter: cannot read {text[position:]!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.properties = properties
        self.index = 0

    def parse(self) -> Callable[[dict], Any]:
        expression = self._or()
        if self.index != len(self.tokens):
            raise ODataError(f"$filter: unexpected {self.tokens[self.index][1]!r}")
        return expression

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (kind and token[0] != kind) or (value and token[1] != value):
            raise ODataError(f"$filter: expected {value or kind}, found {token[1] if token else 'the end'}")
        self.index += 1
        return token

    def _or(self):
        left = self._and()
        while self._peek() == ("word", "or"):
            self._take()
            right = self._and()
            left = (lambda a, b: lambda e: bool(a(e)) or bool(b(e)))(left, right)
        return left

    def _and(self):
        left = self._not()
        while self._peek() == ("word", "and"):
            self._take()
            right = self._not()
            left = (lambda a, b: lambda e: bool(a(e)) and bool(b(e)))(left, right)
        return left

    def _not(self):
        if self._peek() == ("word", "not"):
            self._take()
            inner = self._not()
            return lambda e: not inner(e)
        return self._comparison()

    def _comparison(self):
        left = self._primary()
        token = self._peek()
        if token and token[0] == "word" and token[1] in _COMPARE:
            operator = self._take()[1]
            right = self._primary()
            return lambda e: _compare(operator, left(e), right(e))
        return left

    def _primary(self):
        kind, value = self._take()
        if kind == "lp":
            inner = self._or()
            self._take("rp")
            return inner
        if kind == "str":
            text = value[1:-1].replace("''", "'")
            return lambda e: text
        if kind == "dt":
            moment = _to_datetime(value)
            return lambda e: moment
        if kind == "date":
            day = date.fromisoformat(value)
            return lambda e: day
        if kind == "num":
            number = float(value) if "." in value else int(value)
            return lambda e: number
        if kind == "word":
            if value in ("true", "false"):
                return lambda e: value == "true"
            if value == "null":
                return lambda e: None
            if value in _FUNCTIONS and self._peek() == ("lp", "("):
                self._take()
                args = [self._or()]
                while self._peek() == ("comma", ","):
                    self._take()
                    args.append(self._or())
                self._take("rp")
                return _function(value, args)
            if value not in self.properties:
                raise ODataError(f"$filter: could not find a property named '{value}'")
            return lambda e: e.get(value)
        raise ODataError(f"$filter: unexpected {value!r}")


def _compare(operator: str, left: Any, right: Any) -> bool:
    if isinstance(left, datetime | date) or isinstance(right, datetime | date):
        left, right = _to_datetime(left), _to_datetime(right)
    if operator == "eq":
        return left == right
    if operator == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[operator]
    except TypeError as error:
        raise ODataError(f"$filter: cannot compare {left!r} with {right!r}") from error


def _function(name: str, args: list[Callable]) -> Callable[[dict], Any]:
    def call(entity):
        values = [arg(entity) for arg in args]
        if name == "date":
            moment = _to_datetime(values[0])
            return moment.date() if isinstance(moment, datetime) else None
        if name in ("tolower", "toupper"):
            return (
                None if values[0] is None else (values[0].lower() if name == "tolower" else values[0].upper())
            )
        haystack, needle = (values + [None, None])[:2]
        if haystack is None or needle is None:
            return False
        return {
            "contains": needle in haystack,
            "startswith": haystack.startswith(needle),
            "endswith": haystack.endswith(needle),
        }[name]

    return call


# =============================================================================================
# The contract: 3CX's OpenAPI description as a checker.
# =============================================================================================
_SKIPPED_KEYWORDS = {
    "nullable",
    "format",
    "example",
    "title",
    "description",
    "default",
    "discriminator",
    "readOnly",
    "writeOnly",
    "deprecated",
    "externalDocs",
    "xml",
}
_ODATA_ANNOTATIONS = {"^@odata\\.": {}}


@dataclass
class Route:
    method: str
    template: str
    operation: dict
    regex: re.Pattern
    path_params: list[tuple[str, str, dict]]  # (group, name, schema)

    @property
    def operation_id(self) -> str:
        return self.operation.get("operationId", "")


@dataclass
class CheckedRequest:
    route: Route | None
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    problems: list[str] = field(default_factory=list)


class Contract:
    def __init__(self, spec: dict):
        self.spec = spec
        self.schemas = spec["components"]["schemas"]
        self.root = {"components": {"schemas": {name: self.convert(s) for name, s in self.schemas.items()}}}
        self.routes = self._routes()
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- OpenAPI 3.0 schema -> JSON Schema (draft 4), strict about properties -------------------
    def resolve(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"external $ref {ref} is not supported")
        node = self.spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def properties_of(self, node: dict) -> dict[str, dict]:
        """All properties of an object schema, through allOf and $ref (OData inheritance)."""
        node = self.resolve(node)
        merged: dict[str, dict] = {}
        for part in node.get("allOf", []):
            merged.update(self.properties_of(part))
        merged.update(node.get("properties", {}))
        return merged

    def _is_object(self, node: dict) -> bool:
        node = self.resolve(node)
        return (
            node.get("type") == "object"
            or "properties" in node
            or ("allOf" in node and all(self._is_object(part) for part in node["allOf"]))
        )

    def convert(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            converted = {"$ref": node["$ref"]}
        elif len(node.get("allOf", [])) >= 2 and all(self._is_object(p) for p in node["allOf"]):
            # OData inheritance (User = ClickToCall = DN + …): one object with all properties,
            # so that "only the listed properties" can be said at all.
            converted = self._strict_object(self.properties_of(node))
        elif "properties" in node and "additionalProperties" not in node:
            converted = self._strict_object(node["properties"])
            if "required" in node:
                converted["required"] = list(node["required"])
        else:
            converted = {}
            for key, value in node.items():
                if key in _SKIPPED_KEYWORDS or key.startswith("x-"):
                    continue
                if key == "properties":
                    converted[key] = {name: self.convert(s) for name, s in value.items()}
                elif key == "oneOf":
                    converted[key] = [self.convert({**b, "nullable": False}) for b in value]
                elif key in ("enum", "required", "pattern", "type"):
                    converted[key] = value
                else:
                    converted[key] = self.convert(value)
        nullable = node.get("nullable") or (
            "oneOf" in node and any(isinstance(b, dict) and b.get("nullable") for b in node["oneOf"])
        )
        if not nullable:
            return converted
        if (
            "type" in converted
            and isinstance(converted["type"], str)
            and set(converted)
            <= {
                "type",
                "enum",
                "pattern",
                "minimum",
                "maximum",
                "maxLength",
                "minLength",
                "items",
                "uniqueItems",
            }
        ):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
            return converted
        return {"anyOf": [{"type": "null"}, converted]}

    def _strict_object(self, properties: dict[str, dict]) -> dict:
        return {
            "type": "object",
            "properties": {name: self.convert(s) for name, s in properties.items()},
            "patternProperties": _ODATA_ANNOTATIONS,
            "additionalProperties": False,
        }

    def errors(self, key: str, schema: dict, instance: Any) -> list[str]:
        """Where `instance` breaks `schema` (an OpenAPI schema node), in words."""
        with self._lock:
            validator = self._validators.get(key)
            if validator is None:
                document = {**self.root, "allOf": [self.convert(schema)]}
                validator = jsonschema.Draft4Validator(document)
                self._validators[key] = validator
        problems = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(the whole body)"
            message = error.message
            if error.validator == "additionalProperties":
                listed = set(error.schema.get("properties", {}))
                extra = sorted(k for k in error.instance if k not in listed and not k.startswith("@odata."))
                message = f"{', '.join(extra)}: not a property the description lists"
            problems.append(f"{where}: {message[:300]}")
        return problems

    # -- paths -----------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        routes = []
        for template, item in self.spec["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                parameters = [
                    self.resolve(p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                ]
                by_name = {p["name"]: p for p in parameters if p.get("in") == "path"}
                pattern, params = "", []
                for index, piece in enumerate(re.split(r"\{([^}]+)\}", template)):
                    if index % 2 == 0:
                        pattern += re.escape(piece)
                        continue
                    schema = by_name.get(piece, {}).get("schema", {"type": "string"})
                    group = f"p{len(params)}"
                    params.append((group, piece, schema))
                    pattern += f"(?P<{group}>{self._value_pattern(schema)})"
                routes.append(Route(method.upper(), template, operation, re.compile(pattern), params))
        # The most literal template wins when two match.
        routes.sort(key=lambda r: -len(re.sub(r"\{[^}]+\}", "", r.template)))
        return routes

    @staticmethod
    def _value_pattern(schema: dict) -> str:
        kind = schema.get("type")
        if kind == "integer":
            return r"-?\d+"
        if kind == "number":
            return r"-?\d+(?:\.\d+)?"
        if kind == "boolean":
            return "true|false"
        if schema.get("format") == "date-time":
            return r"[0-9][0-9T:.+\-Z]*"
        return r"'(?:[^']|'')*'|null"

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, Any], bool]:
        """(route, path parameters, whether the path exists for another method)."""
        other_method = False
        for route in self.routes:
            found = route.regex.fullmatch(path)
            if not found:
                continue
            if route.method != method:
                other_method = True
                continue
            values = {}
            for group, name, schema in route.path_params:
                raw = found.group(group)
                if raw == "null":
                    values[name] = None
                elif schema.get("type") == "integer":
                    values[name] = int(raw)
                elif schema.get("type") == "boolean":
                    values[name] = raw == "true"
                elif raw.startswith("'"):
                    values[name] = raw[1:-1].replace("''", "'")
                else:
                    values[name] = raw
            return route, values, False
        return None, {}, other_method

    # -- requests and responses --------------------------------------------------------------------
    def check_request(
        self, method: str, raw_path: str, query_string: str, content_type: str, body: bytes
    ) -> CheckedRequest:
        path = urllib.parse.unquote(raw_path)
        route, values, other_method = self.match(method, path)
        if route is None:
            why = "is documented for other methods only" if other_method else "is not in the description"
            return CheckedRequest(None, problems=[f"{method} {path} {why}"])
        checked = CheckedRequest(route, values)
        label = f"{method} {route.template}"
        for _group, name, schema in route.path_params:
            for problem in self.errors(f"param:{label}:{name}", schema, values.get(name)):
                checked.problems.append(f"{label}: path parameter {name}: {problem}")
        parameters = {
            p["name"]: p
            for p in (self.resolve(p) for p in route.operation.get("parameters", []))
            if p.get("in") == "query"
        }
        for name, value in urllib.parse.parse_qsl(query_string, keep_blank_values=True):
            if name in checked.query:
                checked.problems.append(f"{label}: query parameter {name} given twice")
            checked.query[name] = value
            if name not in parameters:
                checked.problems.append(f"{label}: query parameter {name} is not in the description")
                continue
            checked.problems += self._check_query_value(
                label, name, value, parameters[name].get("schema", {})
            )
        checked.problems += self._check_odata_names(route, checked.query)
        checked.problems += self._check_body(route, label, content_type, body, checked)
        return checked

    def _check_query_value(self, label: str, name: str, value: str, schema: dict) -> list[str]:
        kind = schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", value):
                return [f"{label}: {name}={value!r} is not an integer"]
            instance: Any = int(value)
        elif kind == "boolean":
            if value not in ("true", "false"):
                return [f"{label}: {name}={value!r} is not true or false"]
            instance = value == "true"
        elif kind == "array":  # explode: false -> comma-separated
            instance = split_top_level(value)
        else:
            instance = value
        return [f"{label}: {name}: {p}" for p in self.errors(f"query:{label}:{name}", schema, instance)]

    def entity_schema(self, route: Route) -> dict | None:
        """The entity a GET answers with (the items of a collection), for $select/$expand."""
        ok = route.operation.get("responses", {}).get("200")
        if not ok:
            return None
        content = self.resolve(ok).get("content", {}).get("application/json")
        if not content:
            return None
        schema = content["schema"]
        properties = self.properties_of(schema)
        if "value" in properties and self.resolve(properties["value"]).get("type") == "array":
            return self.resolve(self.resolve(properties["value"])["items"])
        return self.resolve(schema)

    def navigation_target(self, prop: dict) -> dict:
        prop = self.resolve(prop)
        if prop.get("type") == "array":
            return self.resolve(prop["items"])
        if prop.get("allOf"):
            return self.resolve(prop["allOf"][0])
        return prop

    def _check_odata_names(self, route: Route, query: dict[str, str]) -> list[str]:
        entity = self.entity_schema(route) if route.method == "GET" else None
        if entity is None:
            return []
        try:
            return self._check_options(f"{route.method} {route.template}", entity, query)
        except ODataError as error:
            return [f"{route.method} {route.template}: {error}"]

    def _check_options(self, label: str, entity: dict, options: dict[str, str]) -> list[str]:
        properties = self.properties_of(entity)
        problems = []
        for name in split_top_level(options.get("$select", "")):
            if name not in properties:
                problems.append(f"{label}: $select names {name}, which the entity does not have")
        for name, _desc in parse_orderby(options.get("$orderby", "")):
            if name not in properties:
                problems.append(f"{label}: $orderby names {name}, which the entity does not have")
        for name, nested in parse_expand(options.get("$expand", "")):
            prop = properties.get(name)
            if prop is None or not self.resolve(prop).get(
                "x-ms-navigationProperty", prop.get("x-ms-navigationProperty")
            ):
                problems.append(f"{label}: $expand names {name}, which is not a navigation property")
                continue
            problems += self._check_options(f"{label} > {name}", self.navigation_target(prop), nested)
        return problems

    def _check_body(
        self, route: Route, label: str, content_type: str, body: bytes, checked: CheckedRequest
    ) -> list[str]:
        request_body = route.operation.get("requestBody")
        if request_body is None:
            return [f"{label} takes no request body, got {len(body)} bytes"] if body.strip() else []
        request_body = self.resolve(request_body)
        if not body.strip():
            return [f"{label} needs a request body"] if request_body.get("required") else []
        media = request_body.get("content", {}).get("application/json")
        if media is None or not content_type.startswith("application/json"):
            return [f"{label}: request Content-Type {content_type!r}, the description has application/json"]
        try:
            checked.body = json.loads(body)
        except ValueError:
            return [f"{label}: the request body is not JSON"]
        return [
            f"{label}: request body: {p}" for p in self.errors(f"req:{label}", media["schema"], checked.body)
        ]

    def check_response(self, route: Route, status: int, content_type: str, body: bytes) -> list[str]:
        label = f"{route.method} {route.template} -> {status}"
        responses = route.operation.get("responses", {})
        response = responses.get(str(status)) or responses.get("default")
        if response is None:
            return [f"{label}: status {status} is not in the description"]
        media = self.resolve(response).get("content", {}).get("application/json")
        if media is None:
            return (
                [f"{label}: the description has no body here, the fake sent {len(body)} bytes"]
                if body
                else []
            )
        if not content_type.startswith("application/json"):
            return [f"{label}: Content-Type {content_type!r}, the description has application/json"]
        try:
            payload = json.loads(body)
        except ValueError:
            return [f"{label}: the body is not JSON"]
        key = f"resp:{route.method}:{route.template}:{status if str(status) in responses else 'default'}"
        return [f"{label}: {p}" for p in self.errors(key, media["schema"], payload)]


# =============================================================================================
# The fake PBX.
# =============================================================================================
class FakeClock:
    """Monotonic seconds that move only when a test says so; shared by fake and connector."""

    def __init__(self, start: float = 10_000.0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class Logged:
    api: str  # "token", "v20", "v18" or "other"
    method: str
    path: str  # decoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int | None = None  # None: the connection was closed without an answer
    operation: str = ""


@dataclass
class Failure:
    mode: str  # "down", "slow" or "status"
    times: int | None = None  # None: until heal()
    path: str | None = None  # only requests whose path starts with this
    status: int = 500
    delay: float = 1.0


# The token endpoint is not a path of the description: its securitySchemes name it as the
# client-credentials tokenUrl. Its contract (OAuth2, RFC 6749 section 4.4) is written here.
TOKEN_REQUEST = {
    "type": "object",
    "properties": {
        "client_id": {"type": "string", "minLength": 1},
        "client_secret": {"type": "string", "minLength": 1},
        "grant_type": {"enum": ["client_credentials"]},
    },
    "required": ["client_id", "client_secret", "grant_type"],
    "additionalProperties": False,
}
TOKEN_RESPONSE = {
    "type": "object",
    "properties": {
        "token_type": {"enum": ["Bearer"]},
        "expires_in": {"type": "integer", "minimum": 1},
        "access_token": {"type": "string", "minLength": 1},
    },
    "required": ["token_type", "expires_in", "access_token"],
}

# v18 has no published description; the shapes its web console sends (shared/3cx/README.md).
_INT = {"type": "integer"}
V18_REQUESTS: dict[tuple[str, str], dict | None] = {
    ("POST", "/api/login"): {
        "type": "object",
        "required": ["Username", "Password"],
        "additionalProperties": False,
        "properties": {"Username": {"type": "string"}, "Password": {"type": "string"}},
    },
    ("GET", "/api/ExtensionList"): None,
    ("GET", "/api/GroupList"): None,
    ("GET", "/api/OutboundRuleList"): None,
    ("GET", "/api/activeCalls"): None,
    ("POST", "/api/ExtensionList/set"): {
        "type": "object",
        "required": ["Id"],
        "additionalProperties": False,
        "properties": {"Id": _INT},
    },
    ("POST", "/api/edit/update"): {
        "type": "object",
        "required": ["Path", "PropertyValue"],
        "additionalProperties": False,
        "properties": {
            "Path": {
                "type": "object",
                "required": ["ObjectId", "PropertyPath"],
                "additionalProperties": False,
                "properties": {
                    "ObjectId": _INT,
                    "PropertyPath": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["Name"],
                            "properties": {"Name": {"type": "string"}},
                        },
                    },
                },
            },
            "PropertyValue": {},
        },
    },
    ("POST", "/api/edit/save"): _INT,
    ("POST", "/api/edit/cancel"): _INT,
    ("POST", "/api/activeCalls/drop"): {
        "type": "object",
        "required": ["Id"],
        "additionalProperties": False,
        "properties": {"Id": _INT},
    },
}

V18_EDITABLE = {"Disabled", "FirstName", "LastName", "Email", "MobileNumber", "OutboundCallerId"}


class Fake3CX:
    """One PBX in memory, both APIs. Tests read and change its state directly."""

    client_id = "tariscope-api"
    client_secret = "xapi-CLIENT-SECRET-4f1c9e"
    username = "admin"
    password = "v18-ADMIN-PASSWORD-77aa"

    def __init__(self, contract: Contract | None = None, *, clock: Callable[[], float] | None = None):
        self.contract = contract
        self.clock = clock or time.monotonic
        self.lock = threading.RLock()
        self.log: list[Logged] = []
        self.violations: list[str] = []
        self.failures: list[Failure] = []
        self.token_lifetime = 3600
        self.tokens_issued = 0
        self._token: str | None = None
        self._token_expires = 0.0
        self._sessions: dict[str, str] = {}  # v18 session cookie -> XSRF token
        self._edits: dict[int, dict] = {}  # v18 edit sessions
        self._next_edit = 700
        self._corrupt: dict[str, Callable[[int, Any], tuple[int, Any]]] = {}
        self.seed()
        self._server: ThreadingHTTPServer | None = None

    # -- state ------------------------------------------------------------------------------
    def seed(self) -> None:
        self.groups = {
            1: {"Id": 1, "Name": "DEFAULT", "Number": "GRP0000", "IsDefault": True},
            2: {"Id": 2, "Name": "Sales", "Number": "GRP0002", "IsDefault": False},
            3: {"Id": 3, "Name": "Support", "Number": "GRP0003", "IsDefault": False},
            9: {"Id": 9, "Name": "No outbound", "Number": "GRP0009", "IsDefault": False},
        }
        self.users: dict[int, dict] = {}
        self.add_user(11, "100", "Ann", "Lee", groups=[(2, "users")])
        self.add_user(12, "101", "Bob", "O'Brien", groups=[(2, "users"), (3, "group_admins")], primary=3)
        self.add_user(13, "102", "Carla", "Diaz", groups=[(3, "users")], enabled=False)
        self.add_user(14, "103", "Dan", "Wu", groups=[(1, "users")], internal=True)
        self.outbound_rules = {
            1: {
                "Id": 1,
                "Name": "Emergency",
                "Prefix": "112",
                "Priority": 1,
                "EmergencyRule": True,
                "GroupIds": [1, 2, 3, 9],
                "GroupNames": ["DEFAULT", "Sales", "Support", "No outbound"],
                "NumberLengthRanges": "",
                "DNRanges": [],
                "Routes": [],
            },
            2: {
                "Id": 2,
                "Name": "National",
                "Prefix": "0",
                "Priority": 2,
                "EmergencyRule": False,
                "GroupIds": [1, 2, 3],
                "GroupNames": ["DEFAULT", "Sales", "Support"],
                "NumberLengthRanges": "10",
                "DNRanges": [{"From": "100", "To": "199"}],
                "Routes": [],
            },
            3: {
                "Id": 3,
                "Name": "International",
                "Prefix": "00",
                "Priority": 3,
                "EmergencyRule": False,
                "GroupIds": [2],
                "GroupNames": ["Sales"],
                "NumberLengthRanges": "",
                "DNRanges": [],
                "Routes": [],
            },
        }
        self.active_calls = {
            501: {
                "Id": 501,
                "Caller": "100 Ann Lee",
                "Callee": "0441234567",
                "Status": "Talking",
                "EstablishedAt": "2025-03-10T09:00:00.1234567Z",
                "LastChangeStatus": "2025-03-10T09:00:00Z",
            },
            502: {
                "Id": 502,
                "Caller": "101 Bob O'Brien",
                "Callee": "00442071234567",
                "Status": "Talking",
                "EstablishedAt": "2025-03-10T09:05:00+02:00",
                "LastChangeStatus": "2025-03-10T09:05:00+02:00",
            },
        }
        self.queues = {
            31: {"Id": 31, "Number": "800", "Name": "Sales queue"},
            32: {"Id": 32, "Number": "801", "Name": "Support queue"},
        }
        self.queue_answered = [
            {
                "CallTime": "2025-03-10T09:00:00Z",
                "AnsweredTime": "2025-03-10T09:00:25Z",
                "Source": "0441234567",
                "Destination": "100 Ann Lee",
                "Dn": "Sales queue",
                "DnNumber": "800",
                "RingTime": "PT5S",
            },
            {
                "CallTime": "2025-03-10T23:59:50Z",
                "AnsweredTime": "2025-03-11T00:00:10Z",
                "Source": "0501112233",
                "Destination": "102 Carla Diaz",
                "Dn": "Support queue",
                "DnNumber": "801",
                "RingTime": "PT12.5S",
            },
            {
                "CallTime": "2025-03-12T08:00:00Z",
                "AnsweredTime": "2025-03-12T08:00:03Z",
                "Source": "0443334455",
                "Destination": "101 Bob O'Brien",
                "Dn": "Sales queue",
                "DnNumber": "800",
                "RingTime": "PT3S",
            },
        ]
        self.queue_abandoned = [
            {
                "CallerId": "0447654321",
                "CallHistoryId": "00000001A2B3C4D5",
                "CallTime": "2025-03-11T00:00:00Z",
                "CallTimeForCsv": "2025-03-11T00:00:00Z",
                "ExtensionDisplayName": "Ann Lee",
                "ExtensionDn": "100",
                "IsLoggedIn": True,
                "PollingAttempts": 2,
                "QueueDisplayName": "Sales queue",
                "QueueDn": "800",
                "WaitTime": "PT42S",
            },
        ]
        self.call_log = [
            self._log_row(9001, 1, "2025-03-10T09:00:00Z", "0441234567", "100", "Ann Lee", "PT5S", "PT1M"),
            self._log_row(9001, 2, "2025-03-10T09:01:05Z", "100", "101", "Bob O'Brien", "PT2S", "PT2M30S"),
            self._log_row(
                9002, 3, "2025-03-11T00:00:00Z", "102", "0501112233", "", "PT9S", "PT0S", answered=False
            ),
            self._log_row(9003, 4, "2025-03-14T12:00:00Z", "100", "101", "Bob O'Brien", "PT1S", "PT10S"),
        ]
        self.call_history = [
            {
                "SegmentId": 1,
                "SegmentStartTime": "2025-03-10T09:00:00Z",
                "SegmentEndTime": "2025-03-10T09:01:05Z",
                "SegmentType": 1,
                "SegmentActionId": 1,
                "CallAnswered": True,
                "CallTime": "PT1M",
                "SrcDn": "10000",
                "SrcCallerNumber": "0441234567",
                "SrcDisplayName": "",
                "SrcExtendedDisplayName": "",
                "SrcDnType": 1,
                "SrcExternal": True,
                "SrcInternal": False,
                "SrcId": 1,
                "SrcParticipantId": 1,
                "DstDn": "100",
                "DstCallerNumber": "100",
                "DstDisplayName": "Ann Lee",
                "DstExtendedDisplayName": "Ann Lee",
                "DstDnType": 0,
                "DstExternal": False,
                "DstInternal": True,
                "DstId": 11,
                "DstParticipantId": 2,
            },
            {
                "SegmentId": 2,
                "SegmentStartTime": "2025-03-10T09:01:05Z",
                "SegmentEndTime": "2025-03-10T09:03:35Z",
                "SegmentType": 1,
                "SegmentActionId": 5,
                "CallAnswered": True,
                "CallTime": "PT2M30S",
                "SrcDn": "10000",
                "SrcCallerNumber": "0441234567",
                "SrcDisplayName": "",
                "SrcExtendedDisplayName": "",
                "SrcDnType": 1,
                "SrcExternal": True,
                "SrcInternal": False,
                "SrcId": 1,
                "SrcParticipantId": 1,
                "DstDn": "101",
                "DstCallerNumber": "101",
                "DstDisplayName": "Bob O'Brien",
                "DstExtendedDisplayName": "Bob O'Brien",
                "DstDnType": 0,
                "DstExternal": False,
                "DstInternal": True,
                "DstId": 12,
                "DstParticipantId": 3,
            },
        ]

    @staticmethod
    def _log_row(
        call_id, segment, start, source, destination, destination_name, ringing, talking, answered=True
    ):
        return {
            "CallId": call_id,
            "SegmentId": segment,
            "CdrId": f"cdr-{call_id}-{segment}",
            "StartTime": start,
            "MainCallHistoryId": f"main-{call_id}",
            "CallHistoryId": f"hist-{call_id}-{segment}",
            "SourceDn": source,
            "SourceCallerId": source,
            "SourceDisplayName": "",
            "SourceType": 0,
            "DestinationDn": destination,
            "DestinationCallerId": destination,
            "DestinationDisplayName": destination_name,
            "DestinationType": 0,
            "ActionType": 1 if segment == 1 else 5,
            "Answered": answered,
            "RingingDuration": ringing,
            "TalkingDuration": talking,
            "CallCost": 0,
            "Reason": "",
            "Status": "Answered" if answered else "Unanswered",
            "Direction": "Inbound",
            "CallType": "Voice",
            "Indent": 0 if segment == 1 else 1,
            "actionDnDn": "",
            "Recordings": [],
        }

    def add_call_log(self, call_id: int, start: str, legs, *, ringing: int = 2) -> None:
        """A call of several legs in the call log (ReportCallLogData), the legs one after
        another from `start` (ISO 8601, UTC): legs = [(source, destination, talk seconds), ...].
        Each leg rings `ringing` seconds first; the SegmentIds follow the log's last one."""
        with self.lock:
            segment = max((row["SegmentId"] for row in self.call_log), default=0)
            moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            for source, destination, talk in legs:
                segment += 1
                self.call_log.append(
                    self._log_row(
                        call_id, segment, moment.strftime("%Y-%m-%dT%H:%M:%SZ"), source, destination,
                        "", f"PT{ringing}S", f"PT{talk}S",
                    )
                )
                moment += timedelta(seconds=ringing + talk)

    def add_user(
        self,
        user_id: int,
        number: str,
        first: str,
        last: str,
        *,
        groups=((1, "users"),),
        primary: int | None = None,
        enabled: bool = True,
        internal: bool = False,
    ) -> dict:
        with self.lock:
            user = {
                "Id": user_id,
                "Number": number,
                "FirstName": first,
                "LastName": last,
                "DisplayName": f"{first} {last}".strip(),
                "EmailAddress": f"{first.lower()}@example.com",
                "Mobile": "",
                "OutboundCallerID": "",
                "Enabled": enabled,
                "Internal": internal,
                "IsRegistered": True,
                "CurrentProfileName": "Available",
                "QueueStatus": "LoggedIn",
                "PrimaryGroupId": primary if primary is not None else (groups[0][0] if groups else None),
                "Groups": [],
            }
            self.users[user_id] = user
            self._set_memberships(user, [{"GroupId": g, "Rights": {"RoleName": role}} for g, role in groups])
            return user

    def add_users(self, count: int, *, first_id: int = 100_000, first_number: int = 20_000) -> None:
        with self.lock:
            for index in range(count):
                self.add_user(first_id + index, str(first_number + index), "User", str(index))

    def _set_memberships(self, user: dict, memberships: list[dict]) -> None:
        user["Groups"] = []
        for membership in memberships:
            group = self.groups[membership["GroupId"]]
            role = (membership.get("Rights") or {}).get("RoleName") or "users"
            user["Groups"].append(
                {
                    "Id": user["Id"] * 1000 + group["Id"],
                    "GroupId": group["Id"],
                    "Name": group["Name"],
                    "Number": group["Number"],
                    "MemberName": user["DisplayName"],
                    "Type": "Extension",
                    "CanDelete": True,
                    "Rights": {"RoleName": role},
                }
            )
        if user["PrimaryGroupId"] not in [g["GroupId"] for g in user["Groups"]]:
            user["PrimaryGroupId"] = user["Groups"][0]["GroupId"] if user["Groups"] else None

    def user(self, number: str) -> dict:
        """A copy of the user's whole state (compare before close with after reopen)."""
        with self.lock:
            found = [u for u in self.users.values() if u["Number"] == number]
            return json.loads(json.dumps(found[0]))

    def memberships(self, number: str) -> list[tuple[str, str]]:
        return sorted((g["Name"], g["Rights"]["RoleName"]) for g in self.user(number)["Groups"])

    def admin_change(self, number: str, **changes: Any) -> None:
        """What an administrator does in the 3CX console (not through any API)."""
        with self.lock:
            user = next(u for u in self.users.values() if u["Number"] == number)
            groups = changes.pop("groups", None)
            user.update(changes)
            if groups is not None:
                self._set_memberships(user, [{"GroupId": g, "Rights": {"RoleName": r}} for g, r in groups])

    def remove_user(self, number: str) -> None:
        """An administrator deletes the extension in the 3CX console."""
        with self.lock:
            user_id = next(u["Id"] for u in self.users.values() if u["Number"] == number)
            del self.users[user_id]

    def snapshot(self) -> str:
        """Everything but the call data, for 'nothing else changed' comparisons."""
        with self.lock:
            return json.dumps(
                {"users": self.users, "groups": self.groups, "rules": self.outbound_rules}, sort_keys=True
            )

    # -- failures, tokens, sessions -------------------------------------------------------------
    def fail(
        self,
        mode: str,
        *,
        times: int | None = None,
        path: str | None = None,
        status: int = 500,
        delay: float = 1.0,
    ) -> None:
        with self.lock:
            self.failures.append(Failure(mode, times, path, status, delay))

    def heal(self) -> None:
        with self.lock:
            self.failures.clear()

    def revoke_tokens(self) -> None:
        """The token stops working before its time (3CX restarted, the API client edited)."""
        with self.lock:
            self._token = None

    def take_token_elsewhere(self) -> str:
        """Another program signs in with the same API client: 3CX keeps only its token."""
        with self.lock:
            return self._issue_token()

    def expire_sessions(self) -> None:
        with self.lock:
            self._sessions.clear()

    def corrupt(self, operation: str, change: Callable[[int, Any], tuple[int, Any]]) -> None:
        """Let the next answer of `operation` be changed (to test that the contract catches it)."""
        with self.lock:
            self._corrupt[operation] = change

    def requests(self, api: str | None = None, method: str | None = None, path: str = "") -> list[Logged]:
        with self.lock:
            return [
                r
                for r in self.log
                if (api is None or r.api == api)
                and (method is None or r.method == method)
                and r.path.startswith(path)
            ]

    def _issue_token(self) -> str:
        self._token = secrets.token_urlsafe(24)
        self._token_expires = self.clock() + self.token_lifetime
        self.tokens_issued += 1
        return self._token

    # -- the server ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "https" if isinstance(self._server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}:{port}"

    def start(self, *, tls: tuple[str, str] | None = None) -> Fake3CX:
        """Serve on 127.0.0.1; with tls=(certfile, keyfile) over HTTPS."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                fake.handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.block_on_close = False
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        raw_path, _, query_string = h.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        api = (
            "token"
            if path == "/connect/token"
            else "v20"
            if path.startswith("/xapi/v1/")
            else "v18"
            if path.startswith("/api/")
            else "other"
        )
        entry = Logged(
            api,
            h.command,
            path,
            dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True)),
            {name.lower(): value for name, value in h.headers.items()},
            body,
        )
        with self.lock:
            self.log.append(entry)
            failure = next((f for f in self.failures if f.path is None or path.startswith(f.path)), None)
            if failure and failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
        if failure and failure.mode == "down":
            h.close_connection = True
            return
        if failure and failure.mode == "slow":
            time.sleep(failure.delay)
        forced = None
        if failure and failure.mode == "status":
            forced = (
                failure.status,
                {"error": {"code": str(failure.status), "message": "the fake fails on purpose"}},
            )
        with self.lock:
            if api == "v20":
                status, content_type, payload = self._xapi(
                    h, entry, raw_path[len("/xapi/v1") :], query_string, body, forced
                )
            elif forced:
                status, content_type, payload = forced[0], "application/json", forced[1]
            elif api == "token":
                status, content_type, payload = self._token_endpoint(h, body)
            elif api == "v18":
                status, content_type, payload = self._v18(h, entry, path, body)
            else:
                status, content_type, payload = 404, "text/plain", "not found"
            entry.status = status
        data = (
            b""
            if payload is None
            else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        try:
            h.send_response(status)
            for name, value in getattr(h, "_fake_headers", []):
                h.send_header(name, value)
            if payload is not None:
                h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if data:
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            h.close_connection = True

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    # -- v20: /connect/token ------------------------------------------------------------------
    def _token_endpoint(self, h, body: bytes):
        if h.command != "POST":
            self._violation(f"{h.command} /connect/token: the token endpoint takes POST")
            return 405, "application/json", {"error": "invalid_request"}
        if not (h.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            self._violation(
                "POST /connect/token: the body must be a form (application/x-www-form-urlencoded)"
            )
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        problems = [e.message for e in jsonschema.Draft4Validator(TOKEN_REQUEST).iter_errors(form)]
        if problems:
            self._violation(f"POST /connect/token: {'; '.join(problems)}")
            return 400, "application/json", {"error": "invalid_request"}
        if form["client_id"] != self.client_id or form["client_secret"] != self.client_secret:
            return 400, "application/json", {"error": "invalid_client"}
        payload = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "access_token": self._issue_token(),
        }
        for problem in jsonschema.Draft4Validator(TOKEN_RESPONSE).iter_errors(payload):
            self._violation(f"POST /connect/token -> 200: {problem.message}")
        return 200, "application/json", payload

    # -- v20: /xapi/v1 ------------------------------------------------------------------------
    def _xapi(self, h, entry: Logged, raw_path: str, query_string: str, body: bytes, forced=None):
        if self.contract is None:
            return (
                501,
                "application/json",
                {"error": {"code": "501", "message": "no XAPI description loaded"}},
            )
        content_type = h.headers.get("Content-Type") or ""
        checked = self.contract.check_request(h.command, raw_path, query_string, content_type, body)
        for problem in checked.problems:
            self._violation(problem)
        if checked.route is None:
            return 404, "application/json", {"error": {"code": "404", "message": checked.problems[0]}}
        entry.operation = checked.route.operation_id
        authorization = h.headers.get("Authorization") or ""
        if forced:
            status, payload = forced
        elif (
            not authorization.startswith("Bearer ")
            or self._token is None
            or authorization[7:] != self._token
            or self.clock() >= self._token_expires
        ):
            status, payload = 401, {"error": {"code": "401", "message": "Unauthorized"}}
        elif checked.problems:
            status, payload = 400, {"error": {"code": "400", "message": "; ".join(checked.problems)[:2000]}}
        else:
            handler = getattr(self, f"_op_{checked.route.operation_id}", None)
            try:
                if handler is None:
                    status, payload = 501, {"error": {"code": "501", "message": "not offered by the fake"}}
                else:
                    status, payload = handler(checked)
            except ODataError as error:
                self._violation(f"{h.command} {checked.route.template}: {error}")
                status, payload = 400, {"error": {"code": "400", "message": str(error)}}
        change = self._corrupt.pop(checked.route.operation_id, None)
        if change:
            status, payload = change(status, payload)
        data = b"" if payload is None else json.dumps(payload).encode()
        for problem in self.contract.check_response(checked.route, status, "application/json", data):
            self._violation(problem)
        return status, "application/json; odata.metadata=minimal; charset=utf-8", payload

    def _error(self, status: int, message: str):
        return status, {"error": {"code": str(status), "message": message}}

    def _project(self, entity: dict, options: dict[str, str], schema: dict, navigations=None) -> dict:
        properties = self.contract.properties_of(schema)
        navigation = {
            n
            for n, p in properties.items()
            if p.get("x-ms-navigationProperty") or self.contract.resolve(p).get("x-ms-navigationProperty")
        }
        names = split_top_level(options.get("$select", "")) or [n for n in entity if n not in navigation]
        result = {name: entity[name] for name in names if name in entity and name not in navigation}
        for name, nested in parse_expand(options.get("$expand", "")):
            value = (navigations or {}).get(name, lambda e, n=name: e.get(n))(entity)
            target = self.contract.navigation_target(properties[name])
            if isinstance(value, list):
                result[name] = [self._project(item, nested, target) for item in value]
            elif isinstance(value, dict):
                result[name] = self._project(value, nested, target)
            else:
                result[name] = None
        return result

    def _collection(self, checked: CheckedRequest, items, navigations=None, context: str = ""):
        query = checked.query
        schema = self.contract.entity_schema(checked.route)
        rows = list(items)
        if query.get("$filter"):
            keep = FilterParser(query["$filter"], set(self.contract.properties_of(schema))).parse()
            rows = [row for row in rows if keep(row)]
        for name, descending in reversed(parse_orderby(query.get("$orderby", ""))):
            rows.sort(
                key=lambda r, n=name: (r.get(n) is not None, r.get(n) if r.get(n) is not None else 0),
                reverse=descending,
            )
        total = len(rows)
        skip = int(query.get("$skip") or 0)
        rows = rows[skip : skip + int(query["$top"])] if query.get("$top") else rows[skip:]
        payload: dict[str, Any] = {"@odata.context": f"{self.url}/xapi/v1/$metadata#{context}"}
        if query.get("$count") == "true":
            payload["@odata.count"] = total
        payload["value"] = [self._project(row, query, schema, navigations) for row in rows]
        return 200, payload

    def _entity(self, checked: CheckedRequest, entity: dict | None, navigations=None):
        if entity is None:
            return self._error(404, "The entity was not found")
        return 200, self._project(
            entity, checked.query, self.contract.entity_schema(checked.route), navigations
        )

    # Users
    def _op_ListUser(self, checked):
        return self._collection(checked, self.users.values(), context="Users")

    def _op_GetUser(self, checked):
        return self._entity(checked, self.users.get(checked.path_params["Id"]))

    def _op_GetUserByNumber(self, checked):
        number = checked.path_params["Number"]
        return self._entity(checked, next((u for u in self.users.values() if u["Number"] == number), None))

    def _op_UpdateUser(self, checked):
        user = self.users.get(checked.path_params["Id"])
        if user is None:
            return self._error(404, "The entity was not found")
        changes = dict(checked.body or {})
        if "Number" in changes and changes["Number"] != user["Number"]:
            return self._error(400, "Number cannot be changed")
        if "Id" in changes and changes["Id"] != user["Id"]:
            return self._error(400, "Id cannot be changed")
        groups = changes.pop("Groups", None)
        if groups is not None and any(g.get("GroupId") not in self.groups for g in groups):
            return self._error(400, "Unknown group")
        primary = changes.get("PrimaryGroupId")
        member_of = (
            [g.get("GroupId") for g in groups]
            if groups is not None
            else [g["GroupId"] for g in user["Groups"]]
        )
        if primary is not None and primary not in member_of:
            return self._error(400, "PrimaryGroupId must be one of the user's groups")
        for name in changes:
            if name not in user and name not in ("PrimaryGroupId",):
                return self._error(400, f"the fake does not keep {name}")
        user.update(changes)
        if groups is not None:
            self._set_memberships(user, groups)
        return 204, None

    # Groups
    def _members(self, group: dict) -> list[dict]:
        members = []
        for user in self.users.values():
            for membership in user["Groups"]:
                if membership["GroupId"] == group["Id"]:
                    members.append({**membership, "Number": user["Number"], "Name": group["Name"]})
        return members

    def _op_ListGroup(self, checked):
        return self._collection(checked, self.groups.values(), {"Members": self._members}, "Groups")

    def _op_GetGroup(self, checked):
        return self._entity(checked, self.groups.get(checked.path_params["Id"]), {"Members": self._members})

    def _op_ListMembers(self, checked):
        group = self.groups.get(checked.path_params["Id"])
        if group is None:
            return self._error(404, "The entity was not found")
        return self._collection(checked, self._members(group), context="Members")

    def _op_UpdateGroup(self, checked):
        group = self.groups.get(checked.path_params["Id"])
        if group is None:
            return self._error(404, "The entity was not found")
        changes = dict(checked.body or {})
        if "Number" in changes and changes["Number"] != group["Number"]:
            return self._error(400, "Number cannot be changed")
        members = changes.pop("Members", None)
        if members is not None:  # the list replaces the group's members
            numbers = {m.get("Number"): m for m in members}
            users = {u["Number"]: u for u in self.users.values()}
            if set(numbers) - set(users):
                return self._error(400, "Unknown member")
            for number, user in users.items():
                kept = [
                    {"GroupId": g["GroupId"], "Rights": g["Rights"]}
                    for g in user["Groups"]
                    if g["GroupId"] != group["Id"]
                ]
                if number in numbers:
                    kept.append({"GroupId": group["Id"], "Rights": numbers[number].get("Rights") or {}})
                self._set_memberships(user, kept)
        group.update(changes)
        return 204, None

    # Outbound rules (read by the connector; written only by tests that show it does not)
    def _op_ListOutboundRule(self, checked):
        return self._collection(checked, self.outbound_rules.values(), context="OutboundRules")

    def _op_GetOutboundRule(self, checked):
        return self._entity(checked, self.outbound_rules.get(checked.path_params["Id"]))

    def _op_GetEmergencyOutboundRules(self, checked):
        return self._collection(checked, [r for r in self.outbound_rules.values() if r["EmergencyRule"]])

    def _op_UpdateOutboundRule(self, checked):
        rule = self.outbound_rules.get(checked.path_params["Id"])
        if rule is None:
            return self._error(404, "The entity was not found")
        rule.update(checked.body or {})
        return 204, None

    # Active calls
    def _op_ListActiveCall(self, checked):
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._collection(
            checked, [{**c, "ServerNow": now} for c in self.active_calls.values()], context="ActiveCalls"
        )

    def _op_DropCall(self, checked):
        if self.active_calls.pop(checked.path_params["Id"], None) is None:
            return self._error(404, "The call was not found")
        return 200, {}

    # Queues and reports
    def _op_ListQueue(self, checked):
        return self._collection(checked, self.queues.values(), context="Queues")

    @staticmethod
    def _within(value: str, start: str, end: str) -> bool:
        # Both ends included, as report periods are in 3CX's console.
        return _to_datetime(start) <= _to_datetime(value) <= _to_datetime(end)

    @staticmethod
    def _queues(text: str | None) -> set[str] | None:
        return {q.strip() for q in text.split(",") if q.strip()} if text else None

    def _op_GetQueueAnsweredCallsByWaitTimeData(self, checked):
        p = checked.path_params
        queues = self._queues(p["queueDnStr"])
        rows = [
            r
            for r in self.queue_answered
            if (queues is None or r["DnNumber"] in queues)
            and self._within(r["CallTime"], p["startDt"], p["endDt"])
        ]
        return self._collection(checked, rows)

    def _op_GetAbandonedQueueCallsData(self, checked):
        p = checked.path_params
        queues = self._queues(p["queueDns"])
        rows = [
            r
            for r in self.queue_abandoned
            if (queues is None or r["QueueDn"] in queues)
            and self._within(r["CallTime"], p["periodFrom"], p["periodTo"])
        ]
        return self._collection(checked, rows)

    def _op_GetQueuePerformanceOverviewData(self, checked):
        p = checked.path_params
        queues = self._queues(p["queueDns"])
        totals: dict[tuple[str, str], dict] = {}
        for row in self.queue_answered:
            if (queues is None or row["DnNumber"] in queues) and self._within(
                row["CallTime"], p["periodFrom"], p["periodTo"]
            ):
                agent = row["Destination"].split(" ", 1)
                entry = totals.setdefault(
                    (row["DnNumber"], agent[0]),
                    {
                        "QueueDn": row["DnNumber"],
                        "QueueDisplayName": row["Dn"],
                        "ExtensionDn": agent[0],
                        "ExtensionDisplayName": agent[-1],
                        "ExtensionAnsweredCount": 0,
                        "QueueAnsweredCount": 0,
                        "QueueReceivedCount": 0,
                        "ExtensionDroppedCount": 0,
                    },
                )
                entry["ExtensionAnsweredCount"] += 1
                entry["QueueAnsweredCount"] += 1
                entry["QueueReceivedCount"] += 1
        return self._collection(checked, totals.values())

    def _op_ListCallHistoryView(self, checked):
        return self._collection(checked, self.call_history, context="CallHistoryView")

    def _op_GetCallLogData(self, checked):
        p = checked.path_params
        rows = [
            r
            for r in self.call_log
            if self._within(r["StartTime"], p["periodFrom"], p["periodTo"])
            and (not p["sourceFilter"] or p["sourceFilter"] in (r["SourceDn"] or ""))
            and (not p["destinationFilter"] or p["destinationFilter"] in (r["DestinationDn"] or ""))
        ]
        return self._collection(checked, rows)

    # -- v18: /api ----------------------------------------------------------------------------
    def _v18(self, h, entry: Logged, path: str, body: bytes):
        key = (h.command, path)
        entry.operation = path
        if key not in V18_REQUESTS:
            self._violation(f"{h.command} {path}: not a v18 API path the fake knows")
            return 404, "text/plain", "Not found"
        payload = None
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                self._violation(f"{h.command} {path}: the body is not JSON")
                return 400, "text/plain", "Bad request"
        schema = V18_REQUESTS[key]
        if schema is None and body:
            self._violation(f"{h.command} {path} takes no body")
        if schema is not None:
            problems = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(payload)]
            if problems:
                self._violation(f"{h.command} {path}: {'; '.join(problems)}")
                return 400, "text/plain", "Bad request"
        if path == "/api/login":
            if payload["Username"] != self.username or payload["Password"] != self.password:
                return 401, "text/plain", "AuthFailed"
            session, xsrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            self._sessions[session] = xsrf
            h._fake_headers = [
                ("Set-Cookie", f".AspNetCore.Cookies={session}; path=/; samesite=lax; httponly"),
                ("Set-Cookie", f"XSRF-TOKEN={xsrf}; path=/"),
            ]
            return 200, "text/plain", "AuthSuccess"
        cookies = {}
        for part in (h.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            cookies[name] = value
        session = cookies.get(".AspNetCore.Cookies")
        if session not in self._sessions:
            return 401, "text/plain", "Unauthorized"
        if h.command == "POST" and h.headers.get("x-xsrf-token") != self._sessions[session]:
            self._violation(f"POST {path} without the XSRF-TOKEN value in x-xsrf-token")
            return 400, "text/plain", "Bad request"
        return getattr(self, "_v18_" + path[len("/api/") :].replace("/", "_"))(payload)

    def _v18_row(self, user: dict) -> dict:
        return {
            "Id": user["Id"],
            "Number": user["Number"],
            "FirstName": user["FirstName"],
            "LastName": user["LastName"],
            "Email": user["EmailAddress"],
            "MobileNumber": user["Mobile"],
            "OutboundCallerId": user["OutboundCallerID"],
            "IsRegistered": user["IsRegistered"],
            "CurrentProfile": user["CurrentProfileName"],
            "QueueStatus": user["QueueStatus"],
            "Disabled": not user["Enabled"],
        }

    def _v18_ExtensionList(self, payload):
        return 200, "application/json", {"list": [self._v18_row(u) for u in self.users.values()]}

    def _v18_GroupList(self, payload):
        return (
            200,
            "application/json",
            {"list": [{"Id": g["Id"], "Name": g["Name"]} for g in self.groups.values()]},
        )

    def _v18_OutboundRuleList(self, payload):
        return (
            200,
            "application/json",
            {
                "list": [
                    {"Id": r["Id"], "Name": r["Name"], "Prefix": r["Prefix"]}
                    for r in self.outbound_rules.values()
                ]
            },
        )

    def _v18_activeCalls(self, payload):
        return 200, "application/json", {"list": list(self.active_calls.values())}

    def _v18_activeCalls_drop(self, payload):
        if self.active_calls.pop(payload["Id"], None) is None:
            return 404, "text/plain", "Not found"
        return 200, "application/json", {}

    def _v18_ExtensionList_set(self, payload):
        user = self.users.get(payload["Id"])
        if user is None:
            return 404, "text/plain", "Not found"
        self._next_edit += 1
        self._edits[self._next_edit] = {"user": user["Id"], "changes": {}}
        row = self._v18_row(user)
        active = {name: {"_value": value, "_hasValue": True} for name, value in row.items() if name != "Id"}
        return 200, "application/json", {"Id": self._next_edit, "ActiveObject": {"Id": user["Id"], **active}}

    def _v18_edit_update(self, payload):
        edit = self._edits.get(payload["Path"]["ObjectId"])
        name = payload["Path"]["PropertyPath"][0]["Name"]
        if edit is None:
            self._violation("POST /api/edit/update: no such edit session (ObjectId is the Id /set answered)")
            return 400, "text/plain", "Bad request"
        if name not in V18_EDITABLE:
            return 400, "text/plain", "Bad request"
        edit["changes"][name] = payload["PropertyValue"]
        return 200, "application/json", []

    def _v18_edit_save(self, payload):
        edit = self._edits.pop(payload, None)
        if edit is None:
            self._violation("POST /api/edit/save: no such edit session")
            return 400, "text/plain", "Bad request"
        user = self.users[edit["user"]]
        names = {
            "Disabled": "Enabled",
            "Email": "EmailAddress",
            "MobileNumber": "Mobile",
            "OutboundCallerId": "OutboundCallerID",
        }
        for name, value in edit["changes"].items():
            user[names.get(name, name)] = (not value) if name == "Disabled" else value
        return 200, "application/json", None

    def _v18_edit_cancel(self, payload):
        self._edits.pop(payload, None)
        return 200, "application/json", None

    @property
    def open_edit_sessions(self) -> int:
        with self.lock:
            return len(self._edits)
