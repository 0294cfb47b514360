"""HTTP to the 3CX v20 Configuration API ("XAPI", OData v4 under /xapi/v1). No Django.

Authentication: OAuth2 client credentials at /connect/token. 3CX keeps only one access token
per API client alive, so this client holds exactly one, shares it between threads, renews it
shortly before it expires, and after a 401 renews it once - and only if no other thread has
renewed it meanwhile (two renewals in a row would make the first new token useless).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from restrictions.connectors.base import (
    HttpResponse,
    HttpTransport,
    PbxAuthRejected,
    PbxRefused,
    PbxServerError,
    PbxUnavailable,
    iter_pages,
)

API_ROOT = "/xapi/v1"
TOKEN_PATH = "/connect/token"  # noqa: S105 - a path, not a secret

logger = logging.getLogger("restrictions.connectors.threecx_v20")


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with each quote doubled (O'Brien -> 'O''Brien')."""
    return "'" + str(value).replace("'", "''") + "'"


def path_literal(value: str) -> str:
    """An OData string literal for a key or function parameter inside the URL path: the
    literal percent-encoded, so that a / ? # or % in it cannot change the path."""
    return urllib.parse.quote(odata_string(value), safe="':")


def _query(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        # Spaces as %20, not "+": OData servers read "+" literally.
        pairs.append(f"{urllib.parse.quote(name, safe='$')}={urllib.parse.quote(str(value), safe=',()$;=')}")
    return "?" + "&".join(pairs) if pairs else ""


def odata_message(response: HttpResponse) -> str:
    """The message of an OData error answer ({"error": {"code", "message"}}), or ""."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or "")
        if isinstance(error, str):  # the token endpoint's OAuth errors
            return str(payload.get("error_description") or error)
    return ""


class XapiClient:
    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 10,
        verify_tls: bool = True,
        ca_file: str | None = None,
        proxy: str | None = None,
        clock: Callable[[], float],
        token_margin: float = 60,
    ):
        self.transport = HttpTransport(
            url, timeout=timeout, verify_tls=verify_tls, ca_file=ca_file, proxy=proxy, logger=logger
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self.transport.add_secret(client_secret)
        self._clock = clock
        self._token_margin = token_margin
        self._token: str | None = None
        self._renew_at = 0.0
        self._token_lock = threading.Lock()
        self.tokens_obtained = 0

    def __repr__(self) -> str:
        return f"<XapiClient {self.transport.base_url}>"

    # -- the token -----------------------------------------------------------------------------
    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._obtain_token()
            return self._token

    def _renew_after_401(self, rejected: str) -> str:
        with self._token_lock:
            # Another thread may have renewed it already: then use that one.
            if self._token == rejected or self._token is None:
                logger.info(
                    "3CX at %s rejected the access token (401): renewing it once", self.transport.base_url
                )
                self._obtain_token()
            return self._token

    def forget_token(self) -> None:
        with self._token_lock:
            self.transport.forget_secret(self._token)
            self._token = None

    def _obtain_token(self) -> None:
        # Called with _token_lock held: one token request at a time, one token in use.
        form = urllib.parse.urlencode(
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
            }
        ).encode()
        started = self._clock()
        response = self.transport.request(
            "POST",
            TOKEN_PATH,
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        if response.status != 200:
            detail = odata_message(response)
            error = self.transport.status_error(response, "POST", TOKEN_PATH, detail)
            if response.status in (400, 401, 403) and not isinstance(error, PbxUnavailable):
                raise PbxAuthRejected(
                    f"{error}: check client_id and client_secret, and that the API client has "
                    "XAPI access enabled (3CX Admin > Integrations > API)",
                    status=response.status,
                ) from None
            raise error
        try:
            payload = response.json()
            token = payload["access_token"]
            lifetime = float(payload.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            raise PbxServerError(
                f"POST {self.transport.where(TOKEN_PATH)}: the answer is not a token", status=response.status
            ) from None
        if not isinstance(token, str) or not token:
            raise PbxServerError(f"POST {self.transport.where(TOKEN_PATH)}: empty access token")
        self.transport.forget_secret(self._token)
        self.transport.add_secret(token)
        self._token = token
        if lifetime <= 0:
            lifetime = 60
        # Renew `token_margin` seconds before the end, or at 80 % of a short lifetime. (3CX
        # before 20.0.9 gave minutes: 60 reads as 60 s, which only makes us renew more often.)
        self._renew_at = started + lifetime - min(self._token_margin, lifetime * 0.2)
        self.tokens_obtained += 1
        logger.debug("3CX at %s: new access token, valid %.0f s", self.transport.base_url, lifetime)

    # -- requests ------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> HttpResponse:
        """One XAPI request (path under /xapi/v1) with the token; a 401 renews it once."""
        full = API_ROOT + path + _query(params)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        token = self._current_token()
        for attempt in (1, 2):
            response = self.transport.request(
                method, full, body=data, headers={**headers, "Authorization": f"Bearer {token}"}
            )
            if response.status != 401 or attempt == 2:
                break
            token = self._renew_after_401(token)
        if response.status >= 300:
            error = self.transport.status_error(response, method, full, odata_message(response))
            if response.status == 401:
                raise PbxAuthRejected(
                    f"{error}: a fresh token was rejected too; does the API client have XAPI access, "
                    "and does another program use the same client id (3CX keeps one token)?",
                    status=401,
                ) from None
            raise error
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise PbxServerError(
                f"GET {self.transport.where(API_ROOT + path)}: the answer is not JSON", status=response.status
            ) from None

    def get_values(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        payload = self.get(path, params)
        if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
            raise PbxServerError(
                f"GET {self.transport.where(API_ROOT + path)}: no 'value' list in the answer"
            )
        return payload["value"]

    def get_all(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = 500
    ) -> list[dict]:
        """A whole collection, page by page ($top/$skip, in a stable $orderby)."""
        params = dict(params or {})

        def page(skip: int, top: int) -> list[dict]:
            return self.get_values(path, {**params, "$top": top, "$skip": skip})

        return list(iter_pages(page, page_size))

    def patch(self, path: str, body: Mapping[str, Any]) -> None:
        response = self.request("PATCH", path, body=dict(body))
        if response.status not in (200, 204):
            raise PbxRefused(f"PATCH {self.transport.where(API_ROOT + path)}: HTTP {response.status}")

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, body=body)
        try:
            return response.json()
        except ValueError:
            return None
