"""R8.11: one interface for PBX control, one package per PBX family.

Pure: the standard library only, no Django (the families build on this module and are
pure too, so the control loop, a sync task and the tests can all use them).

What is here, in order: the errors, the plain values a connector returns, the `Connector`
interface, the description of configuration keys with the checker built on it, the HTTP
plumbing both 3CX families share, and `connector_for` / `config_problems`.
"""
from __future__ import annotations

import abc
import difflib
import enum
import http.client
import importlib
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

# A family is a package under restrictions/connectors/ with a `Connector` subclass named in
# its __init__ as `CONNECTOR`. Adding a PBX family is one line here (docs/restrictions.md).
FAMILIES: dict[str, str] = {
    "3cx-v20": "restrictions.connectors.threecx_v20",
    "3cx-v18": "restrictions.connectors.threecx_v18",
}

# The operations a connector may offer; `Connector.capabilities` says which it does.
CAPABILITIES = frozenset(
    {"extensions", "close", "active_calls", "drop_call", "queue_calls", "call_legs"}
)


# ---------------------------------------------------------------------------------------------
# Errors. Retry what retrying can fix (PbxUnavailable), report what it cannot (PbxRefused).
# Messages name the PBX by its URL and say what failed; they never hold a secret.
# ---------------------------------------------------------------------------------------------
class ConnectorError(Exception):
    """Anything a connector raises on purpose."""

    retryable: ClassVar[bool] = False


class PbxUnavailable(ConnectorError):
    """The PBX cannot be used now; the same call may work later (retry with back-off)."""

    retryable = True


class PbxUnreachable(PbxUnavailable):
    """No connection: refused, reset, closed without an answer, name not resolved."""


class PbxTimeout(PbxUnavailable):
    """The PBX did not answer within the configured timeout."""


class PbxServerError(PbxUnavailable):
    """The PBX answered 5xx, 408 or 429, or something that is not its API (a proxy's page)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class PbxRefused(ConnectorError):
    """The PBX refused the request and retrying the same request cannot help (a 4xx)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class PbxAuthRejected(PbxRefused):
    """Wrong client id/secret or user/password, API access not enabled, licence lacking."""


class UnknownExtension(PbxRefused):
    """No extension with that number (or id) on the PBX."""


class NotSupported(PbxRefused):
    """This PBX family (or version) does not offer the operation or the close_by mode."""


class ConnectorConfigError(PbxRefused, ValueError):
    """The connector configuration is wrong; `problems` lists every problem found. A refusal:
    retrying cannot help until the configuration is corrected."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# ---------------------------------------------------------------------------------------------
# What connectors return: plain frozen values, times aware and in UTC.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """A half-open interval of time [start, end), both aware; stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"Period.{name} must be an aware datetime")
            object.__setattr__(self, name, value.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError("Period.end must be after Period.start")

    def chunks(self, length: timedelta) -> list[Period]:
        """The period cut into consecutive pieces no longer than `length`."""
        pieces, start = [], self.start
        while start < self.end:
            end = min(start + length, self.end)
            pieces.append(Period(start, end))
            start = end
        return pieces


@dataclass(frozen=True)
class Extension:
    """R8.10: one extension (user) as the PBX lists it."""

    id: str
    number: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    email: str = ""
    enabled: bool | None = None
    groups: tuple[str, ...] = ()
    department: str | None = None
    internal_only: bool | None = None
    mobile: str = ""


@dataclass(frozen=True)
class ActiveCall:
    """R8.4/R8.5: a call in progress. `caller`/`callee` are the PBX's texts ("100 Ann Lee");
    `caller_number`/`callee_number` their leading number, when there is one."""

    id: str
    caller: str
    callee: str
    status: str
    established_at: datetime | None
    last_change_at: datetime | None = None
    server_now: datetime | None = None
    caller_number: str = ""
    callee_number: str = ""

    def duration_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the call was established, by the PBX's clock when it gave one."""
        if self.established_at is None:
            return None
        now = now or self.server_now or datetime.now(UTC)
        return max(0.0, (now - self.established_at).total_seconds())


@dataclass(frozen=True)
class QueueCall:
    """R8.8: one call that waited in a call queue, answered or abandoned."""

    queue: str
    queue_name: str
    caller: str
    started_at: datetime | None
    answered: bool
    agent: str = ""
    agent_name: str = ""
    answered_at: datetime | None = None
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    polling_attempts: int | None = None
    call_id: str = ""


@dataclass(frozen=True)
class CallLeg:
    """R8.9: one leg (segment) of a call, e.g. each party of a transferred call."""

    call_id: str
    leg_id: str
    started_at: datetime | None
    source: str
    destination: str
    source_name: str = ""
    destination_name: str = ""
    source_caller_id: str = ""
    destination_caller_id: str = ""
    answered: bool | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    action: int | None = None
    reason: str = ""
    cost: Decimal | None = None
    main_call_id: str = ""
    history_id: str = ""


class ReopenStatus(enum.StrEnum):
    RESTORED = "restored"  # the extension was as close() left it; its previous state is back
    ALREADY = "already"  # it already was in its previous state (an administrator restored it)
    CONFLICT = "conflict"  # it was changed meanwhile: nothing was written, see differences
    GONE = "gone"  # the extension no longer exists (or has another number)


@dataclass(frozen=True)
class Difference:
    """A setting that is not what close() left: `expected` is what it set, `actual` is now."""

    field: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class ReopenResult:
    """What reopen() did. Only RESTORED wrote to the PBX."""

    status: ReopenStatus
    number: str
    differences: tuple[Difference, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        """The extension is in its previous state now."""
        return self.status in (ReopenStatus.RESTORED, ReopenStatus.ALREADY)


# ---------------------------------------------------------------------------------------------
# The interface.
# ---------------------------------------------------------------------------------------------
class Connector(abc.ABC):
    """One PBX. Thread-safe: the control loop and a sync may share one instance.

    Every method may raise PbxUnavailable (retry later) or PbxRefused (do not retry the same
    request). close() returns `previous_state`, a JSON-serialisable dict recording exactly
    what it changed; keep it and hand it back to reopen(), which restores exactly that and
    nothing else, and writes nothing when the extension was changed meanwhile.
    """

    type: ClassVar[str]
    close_by_choices: ClassVar[tuple[str, ...]]
    capabilities: ClassVar[frozenset[str]]
    config_keys: ClassVar[Mapping[str, ConfigKey]]

    def __init__(self, config: Mapping[str, Any], *, clock: Callable[[], float] | None = None):
        problems = self.config_problems(config)
        if problems:
            raise ConnectorConfigError(problems)
        merged = with_defaults(config, self.config_keys)
        # Secrets stay out of `config` (which may be shown or logged); the family reads them once.
        self._secrets = {
            name: merged[name]
            for name, key in self.config_keys.items()
            if key.kind == "secret" and merged.get(name)
        }
        self.config = {name: "***" if name in self._secrets else value for name, value in merged.items()}
        # Monotonic seconds; tests hand in a clock they move by hand.
        self.clock = clock or time.monotonic

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.get('url', '')}>"

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        """Every problem of `config` for this family, in words; [] when it is usable."""
        return check_keys(config, cls.config_keys)

    @property
    def close_by(self) -> str:
        return self.config["close_by"]

    @property
    def poll_seconds(self) -> float:
        return self.config["poll_seconds"]

    @property
    def sync_minutes(self) -> int:
        return self.config["sync_minutes"]

    def check(self) -> list[str]:
        """Ask the PBX whether this configuration can work (credentials, the closed group…);
        problems in words, [] when all is well."""
        self.extensions()
        return []

    @abc.abstractmethod
    def extensions(self) -> list[Extension]:
        """R8.10: every extension (user) of the PBX."""

    @abc.abstractmethod
    def extension(self, ext: str | Extension) -> Extension:
        """One extension by number (or the Extension itself, by its id); UnknownExtension if none."""

    @abc.abstractmethod
    def close_plan(self, ext: str | Extension) -> dict[str, Any]:
        """The previous_state that close() would return now; nothing is written. Kept before
        closing, it makes a close that is retried after a crash (the PBX changed, the answer
        lost) record what the extension was before the first attempt, not the closed state."""

    @abc.abstractmethod
    def close(self, ext: str | Extension, plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """R8.1: bar outgoing external calls of `ext` the configured way (close_by); returns
        previous_state. An extension already in the closed state gives a previous_state that
        records no change (reopen then changes nothing). With `plan` (close_plan()'s answer
        kept from an earlier attempt), what it recorded as changed is kept (see resumed())."""

    @abc.abstractmethod
    def reopen(self, ext: str | Extension, previous_state: Mapping[str, Any]) -> ReopenResult:
        """R8.1: restore what close() changed, by the mode recorded in previous_state."""

    @abc.abstractmethod
    def active_calls(self) -> list[ActiveCall]:
        """R8.4-R8.7: the calls in progress now."""

    @abc.abstractmethod
    def drop_call(self, call_id: str) -> bool:
        """Drop an active call; False when the PBX no longer has it (it ended meanwhile)."""

    def queue_calls(self, period: Period) -> list[QueueCall]:
        """R8.8: the calls that waited in queues within `period`."""
        raise NotSupported(f"{self.type} does not offer queue data")

    def call_legs(self, period: Period) -> list[CallLeg]:
        """R8.9: the legs of the calls started within `period`."""
        raise NotSupported(f"{self.type} does not offer call legs")

    def disconnect(self) -> None:  # noqa: B027 - optional: a family without a session has nothing to forget
        """Forget the session or token (a later call signs in again)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.disconnect()


# ---------------------------------------------------------------------------------------------
# Configuration keys: one description per key, used by the checker, the defaults and the docs.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigKey:
    kind: str  # str, secret, url, bool, number, int, choice, path, str_list
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    doc: str = ""


def with_defaults(config: Mapping[str, Any], keys: Mapping[str, ConfigKey]) -> dict[str, Any]:
    """`config` with every missing optional key at its default."""
    merged = {name: key.default for name, key in keys.items()}
    merged.update({name: value for name, value in config.items() if value is not None})
    if isinstance(merged.get("url"), str):
        merged["url"] = merged["url"].rstrip("/")
    return merged


def check_keys(config: Mapping[str, Any], keys: Mapping[str, ConfigKey]) -> list[str]:
    """Problems with the keys of `config`, in words. Values of secrets are never repeated."""
    if not isinstance(config, Mapping):
        return ["the connector configuration must be a mapping of keys to values"]
    problems = []
    for name in config:
        if name not in keys:
            close = difflib.get_close_matches(str(name), list(keys), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown key '{name}'{hint}")
    for name, key in keys.items():
        value = config.get(name)
        if value is None:
            if key.required:
                problems.append(f"'{name}' is required: {key.doc}" if key.doc else f"'{name}' is required")
            continue
        problem = _value_problem(name, key, value)
        if problem:
            problems.append(problem)
    return problems


def _value_problem(name: str, key: ConfigKey, value: Any) -> str | None:
    if key.kind in ("str", "secret"):
        if not isinstance(value, str) or not value.strip():
            return f"'{name}' must be a non-empty text"
    elif key.kind == "url":
        return _url_problem(name, value)
    elif key.kind == "bool":
        if not isinstance(value, bool):
            return f"'{name}' must be true or false"
    elif key.kind in ("number", "int"):
        wanted = int if key.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            return f"'{name}' must be {'a whole number' if key.kind == 'int' else 'a number'}"
        if key.minimum is not None and value < key.minimum:
            return f"'{name}' must be at least {key.minimum:g}"
        if key.maximum is not None and value > key.maximum:
            return f"'{name}' must be at most {key.maximum:g}"
    elif key.kind == "choice":
        if value not in key.choices:
            allowed = ", ".join(f"'{c}'" for c in key.choices)
            return f"'{name}' must be one of {allowed}, not {value!r}"
    elif key.kind == "path":
        if not isinstance(value, str) or not value.strip():
            return f"'{name}' must be the path of a file"
        if not os.path.isfile(value):
            return f"'{name}': no file at {value}"
    elif key.kind == "str_list" and (
        not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value)
    ):
        return f"'{name}' must be a list of texts"
    return None


def _url_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"'{name}' must be a URL such as https://pbx.example.com:5001"
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"'{name}' is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"'{name}' must start with https:// (or http://) and name a host"
    if parts.username or parts.password:
        # Never repeat the URL: it holds a credential.
        return f"'{name}' must not contain a user name or password; use the credential keys"
    if parts.query or parts.fragment:
        return f"'{name}' must not have a query or fragment"
    return None


# Shared by the families' key tables.
COMMON_KEYS: dict[str, ConfigKey] = {
    "poll_seconds": ConfigKey(
        "number", default=2, minimum=0.2, maximum=3600,
        doc="how often the control loop reads the active calls, in seconds",
    ),
    "sync_minutes": ConfigKey(
        "int", default=60, minimum=0, maximum=7 * 24 * 60,
        doc="how often extensions are synchronised into subscribers, in minutes (0: never)",
    ),
    "verify_tls": ConfigKey(
        "bool", default=True,
        doc="check the PBX's TLS certificate (turn off only for a test PBX)",
    ),
    "ca_file": ConfigKey(
        "path", doc="PEM file of the CA (or the self-signed certificate) to trust for the PBX",
    ),
    "timeout": ConfigKey(
        "number", default=10, minimum=0.05, maximum=300,
        doc="seconds to wait for a connection and for each answer",
    ),
    "proxy": ConfigKey("url", doc="HTTP proxy to reach the PBX through; none by default"),
}


# ---------------------------------------------------------------------------------------------
# Values from the PBX.
# ---------------------------------------------------------------------------------------------
_FRACTION = re.compile(r"(\.\d+)")


def parse_datetime(value: Any) -> datetime | None:
    """An ISO-8601 time from the PBX as an aware UTC datetime (no offset: taken as UTC).
    3CX writes up to 12 fractional digits; Python reads 6."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    """`2024-12-01T00:00:00Z`: the form 3CX takes in function parameters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_LEADING_NUMBER = re.compile(r"^\s*([+*#]?\d[\d*#]*)")


def text_of(value: Any) -> str:
    """A PBX's field as text: None as ""."""
    return "" if value is None else str(value)


def state_checked(family: str, ext: str | Extension, state: Mapping[str, Any], valid: bool
                  ) -> Mapping[str, Any]:
    """`state` handed to reopen(), when `valid` (its family's own checks) and recorded for
    `ext`; otherwise PbxRefused, saying which."""
    if not valid:
        raise PbxRefused(f"this previous_state was not recorded by a {family} connector's close()")
    number = ext.number if isinstance(ext, Extension) else str(ext)
    if number != state["extension"]["number"]:
        raise PbxRefused(
            f"this previous_state belongs to extension {state['extension']['number']}, not {number}"
        )
    return state


def resumed(plan: Mapping[str, Any] | None, fresh: dict[str, Any]) -> dict[str, Any]:
    """The previous_state of a close: `plan`, kept from an earlier attempt, when it recorded a
    change of the same extension the same way (a retry after a crash finds the extension
    closed already, and must not take that for its state before); otherwise `fresh`, what
    the extension is now."""
    if (
        plan
        and plan.get("changed")
        and plan.get("family") == fresh["family"]
        and plan.get("version") == fresh["version"]
        and plan.get("close_by") == fresh["close_by"]
        and plan.get("extension") == fresh["extension"]
        and isinstance(plan.get("applied"), dict)
        and isinstance(plan.get("before"), dict)
    ):
        return dict(plan)
    return fresh


def leading_number(text: str) -> str:
    """"100 Ann Lee" -> "100"; "" when the text does not start with a number."""
    match = _LEADING_NUMBER.match(text or "")
    return match.group(1) if match else ""


# ---------------------------------------------------------------------------------------------
# HTTP plumbing shared by the families (both speak HTTPS+JSON to a 3CX): timeouts, TLS,
# no redirects, no environment proxies, errors mapped onto the two families above, and
# secrets redacted from everything that could be logged or raised.
# ---------------------------------------------------------------------------------------------
@dataclass
class HttpResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8-sig")) if self.body.strip() else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect from an API is a sign of a login page or a wrong URL: report it, never follow.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class HttpTransport:
    """Requests to one PBX. `secrets` are replaced by *** in every message and log line."""

    base_url: str
    timeout: float = 10
    verify_tls: bool = True
    ca_file: str | None = None
    proxy: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    secrets: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else {}
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies),
            urllib.request.HTTPSHandler(context=context),
            _NoRedirect(),
        )
        self._secret_lock = threading.Lock()

    def add_secret(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            with self._secret_lock:
                if secret not in self.secrets:
                    self.secrets.append(secret)

    def forget_secret(self, secret: str | None) -> None:
        with self._secret_lock:
            if secret in self.secrets:
                self.secrets.remove(secret)

    def redact(self, text: str) -> str:
        with self._secret_lock:
            secrets = sorted(self.secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
            quoted = urllib.parse.quote(secret, safe="")
            if quoted != secret:
                text = text.replace(quoted, "***")
        return text

    def where(self, path: str) -> str:
        """The PBX and the path, without the query (it may be long), for messages."""
        return f"{self.base_url}{path.split('?', 1)[0]}"

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """Send one request; any HTTP status comes back as a response. Network failures raise
        PbxUnreachable / PbxTimeout, a certificate the PBX cannot be trusted by PbxRefused."""
        # S310: base_url is the configured PBX URL, which config_problems allows only as http(s).
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path, data=body, method=method, headers=dict(headers or {})
        )
        started = time.monotonic()
        where = self.redact(self.where(path))
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                response = HttpResponse(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            try:
                payload = error.read()
            except (OSError, http.client.HTTPException):
                payload = b""
            response = HttpResponse(error.code, error.headers, payload)
            error.close()
        except urllib.error.URLError as error:
            raise self._network_error(error.reason, method, where) from None
        except (OSError, http.client.HTTPException) as error:
            raise self._network_error(error, method, where) from None
        self.logger.debug(
            "%s %s -> %s (%.0f ms)", method, self.redact(path), response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _network_error(self, reason: Any, method: str, where: str) -> ConnectorError:
        # `from None` above: the causes hold nothing we need and could hold request details.
        if isinstance(reason, ssl.SSLCertVerificationError):
            return PbxRefused(
                f"{method} {where}: the PBX's TLS certificate is not trusted "
                f"({self.redact(str(reason.verify_message or reason))}); set ca_file, or verify_tls "
                "false for a test PBX"
            )
        if isinstance(reason, TimeoutError | socket.timeout):
            return PbxTimeout(f"{method} {where}: no answer within {self.timeout:g} s")
        text = self.redact(str(reason)) or type(reason).__name__
        self.logger.debug("%s %s failed: %s", method, where, text)
        return PbxUnreachable(f"{method} {where}: cannot reach the PBX ({text})")

    def status_error(
        self, response: HttpResponse, method: str, path: str, detail: str = ""
    ) -> ConnectorError:
        """The error for a non-success answer: 5xx/408/429 can pass, other 4xx cannot."""
        where = self.redact(self.where(path))
        detail = self.redact(detail)[:300]
        message = f"{method} {where}: HTTP {response.status}" + (f" ({detail})" if detail else "")
        if response.status >= 500 or response.status in (408, 429):
            return PbxServerError(message, status=response.status)
        if 300 <= response.status < 400:
            return PbxRefused(message + ": redirected; is the URL the PBX's own?", status=response.status)
        if response.status in (401, 403):
            return PbxAuthRejected(message, status=response.status)
        return PbxRefused(message, status=response.status)


# ---------------------------------------------------------------------------------------------
# Choosing the family.
# ---------------------------------------------------------------------------------------------
def _family(config: Mapping[str, Any]) -> type[Connector] | None:
    module = FAMILIES.get(config.get("type")) if isinstance(config, Mapping) else None
    return importlib.import_module(module).CONNECTOR if module else None


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Every problem of a device's `connector` configuration, in words; [] when usable."""
    if not isinstance(config, Mapping):
        return ["the connector configuration must be a mapping of keys to values"]
    family = _family(config)
    if family is None:
        known = ", ".join(f"'{name}'" for name in FAMILIES)
        kind = config.get("type")
        return [f"'type' must be one of {known}" + (f", not {kind!r}" if kind else " (it is missing)")]
    return family.config_problems(config)


def connector_for(config: Mapping[str, Any], *, clock: Callable[[], float] | None = None) -> Connector:
    """The connector for a device's `connector` configuration (chosen by its `type`).
    Raises ConnectorConfigError listing every problem when the configuration is wrong."""
    problems = config_problems(config)
    if problems:
        raise ConnectorConfigError(problems)
    return _family(config)(config, clock=clock)


def iter_pages(fetch: Callable[[int, int], list[Any]], page_size: int) -> Iterable[Any]:
    """Items of a paged listing: fetch(skip, top) until a short page."""
    skip = 0
    while True:
        page = fetch(skip, page_size)
        yield from page
        if len(page) < page_size:
            return
        skip += page_size
