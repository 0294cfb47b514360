"""HTTP to the 3CX v18 management API (/api/...), the one its web console uses. No Django.

Sign-in: POST /api/login {"Username", "Password"} answers AuthSuccess and sets a session
cookie and an XSRF-TOKEN cookie; every later request sends the cookies back and the
XSRF-TOKEN value as the x-xsrf-token header. A 401 or 403 (session expired, XSRF token
stale) signs in again once - unless another thread already did - and repeats the request.
Cookies are kept by hand rather than in a CookieJar: they go to this one PBX only, and a
jar would withhold "Secure" cookies from a plain-http test PBX.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from typing import Any

from restrictions.connectors.base import (
    HttpResponse,
    HttpTransport,
    PbxAuthRejected,
    PbxServerError,
)

logger = logging.getLogger("restrictions.connectors.threecx_v18")

LOGIN_PATH = "/api/login"


class V18Client:
    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        timeout: float = 10,
        verify_tls: bool = True,
        ca_file: str | None = None,
        proxy: str | None = None,
    ):
        self.transport = HttpTransport(
            url, timeout=timeout, verify_tls=verify_tls, ca_file=ca_file, proxy=proxy, logger=logger
        )
        self._username = username
        self._password = password
        self.transport.add_secret(password)
        self._cookies: dict[str, str] = {}
        self._session = 0  # bumped by every sign-in; tells threads whether to sign in again
        self._signed_in = False
        self._lock = threading.Lock()
        self.logins = 0

    def __repr__(self) -> str:
        return f"<V18Client {self.transport.base_url}>"

    # -- the session --------------------------------------------------------------------------
    def _take_cookies(self, response: HttpResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            if "=" not in pair:
                continue
            name, value = (part.strip() for part in pair.split("=", 1))
            if name:
                self._cookies[name] = value
                self.transport.add_secret(value)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
        xsrf = self._cookies.get("XSRF-TOKEN")
        if xsrf:
            headers["x-xsrf-token"] = urllib.parse.unquote(xsrf)
        return headers

    def _login(self) -> None:
        # With _lock held.
        for value in self._cookies.values():
            self.transport.forget_secret(value)
        self._cookies.clear()
        body = json.dumps({"Username": self._username, "Password": self._password}).encode()
        response = self.transport.request(
            "POST",
            LOGIN_PATH,
            body=body,
            headers={"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json"},
        )
        text = response.body.decode("utf-8", "replace").strip().strip('"')
        if response.status == 200 and text == "AuthSuccess":
            self._take_cookies(response)
            self._session += 1
            self._signed_in = True
            self.logins += 1
            logger.debug("3CX at %s: signed in", self.transport.base_url)
            return
        if response.status == 200 or response.status in (400, 401, 403):
            raise PbxAuthRejected(
                f"POST {self.transport.where(LOGIN_PATH)}: sign-in refused (HTTP {response.status}); "
                "check username and password (a 3CX administrator)",
                status=response.status,
            )
        raise self.transport.status_error(response, "POST", LOGIN_PATH)

    def _ensure_session(self) -> int:
        with self._lock:
            if not self._signed_in:
                self._login()
            return self._session

    def _renew_session(self, failed: int) -> None:
        with self._lock:
            if self._session == failed or not self._signed_in:
                logger.info("3CX at %s: session rejected; signing in again", self.transport.base_url)
                self._login()

    def forget_session(self) -> None:
        with self._lock:
            for value in self._cookies.values():
                self.transport.forget_secret(value)
            self._cookies.clear()
            self._signed_in = False

    # -- requests ------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> HttpResponse:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            session = self._ensure_session()
            with self._lock:
                headers = self._headers()
            if data is not None:
                headers["Content-Type"] = "application/json;charset=UTF-8"
            response = self.transport.request(method, path, body=data, headers=headers)
            with self._lock:
                self._take_cookies(response)
            if response.status in (401, 403) and attempt == 1:
                self._renew_session(session)
                continue
            break
        if response.status >= 300:
            raise self.transport.status_error(response, method, path)
        return response

    def get(self, path: str) -> Any:
        return self._json(self.request("GET", path), "GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, body)
        try:
            return response.json()
        except ValueError:
            return response.body.decode("utf-8", "replace")

    def _json(self, response: HttpResponse, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PbxServerError(f"{method} {self.transport.where(path)}: the answer is not JSON") from None
