"""R8.11: the 3CX v18 connector, on the management API its web console uses. No Django.

v18 has no internal-calls-only switch in that API and group membership is edited through
the console's object editor, so an extension is closed one way only: close_by "disable"
sets the extension's Disabled property in an edit session
(POST /api/ExtensionList/set -> /api/edit/update -> /api/edit/save); reopen puts the
recorded value back in the same way. An edit session that is not saved is cancelled
(/api/edit/cancel) so that it does not stay open on the PBX.
v18 offers no queue or call-log reports through this API: queue_calls and call_legs raise
NotSupported (the CDR carries what there is).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from restrictions.connectors.base import (
    COMMON_KEYS,
    ActiveCall,
    ConfigKey,
    Connector,
    ConnectorError,
    Difference,
    Extension,
    PbxRefused,
    PbxServerError,
    ReopenResult,
    ReopenStatus,
    UnknownExtension,
    leading_number,
    parse_datetime,
    resumed,
    state_checked,
    text_of,
)
from restrictions.connectors.threecx_v18.client import V18Client

TYPE = "3cx-v18"
STATE_VERSION = 1

CONFIG_KEYS: dict[str, ConfigKey] = {
    "type": ConfigKey("choice", required=True, choices=(TYPE,)),
    "url": ConfigKey("url", required=True, doc="the PBX's address, e.g. https://pbx.example.com:5001"),
    "username": ConfigKey("str", required=True, doc="a 3CX administrator's user name"),
    "password": ConfigKey("secret", required=True, doc="that administrator's password"),
    "close_by": ConfigKey(
        "choice", default="disable", choices=("disable",), doc="v18 closes by disabling the extension"
    ),
    **COMMON_KEYS,
}


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """A property of an edit-session object: {"Disabled": {"_value": false, ...}} -> False."""
    value = obj.get(name)
    if isinstance(value, dict) and "_value" in value:
        return value["_value"]
    return value


class ThreeCXv18Connector(Connector):
    """3CX v18 (management API, administrator credentials)."""

    type = TYPE
    close_by_choices = ("disable",)
    capabilities = frozenset({"extensions", "close", "active_calls", "drop_call"})
    config_keys = CONFIG_KEYS

    def __init__(self, config: Mapping[str, Any], *, clock: Callable[[], float] | None = None):
        super().__init__(config, clock=clock)
        c = self.config
        self.client = V18Client(
            url=c["url"],
            username=c["username"],
            password=self._secrets["password"],
            timeout=c["timeout"],
            verify_tls=c["verify_tls"],
            ca_file=c.get("ca_file"),
            proxy=c.get("proxy"),
        )
        self._write_lock = threading.Lock()

    def disconnect(self) -> None:
        self.client.forget_session()

    # -- extensions ---------------------------------------------------------------------------
    def _list(self) -> list[dict[str, Any]]:
        payload = self.client.get("/api/ExtensionList")
        if not isinstance(payload, dict) or not isinstance(payload.get("list"), list):
            raise PbxServerError(f"GET {self.config['url']}/api/ExtensionList: no 'list' in the answer")
        return [row for row in payload["list"] if isinstance(row, dict)]

    def extensions(self) -> list[Extension]:
        return [self._extension(row) for row in self._list()]

    def extension(self, ext: str | Extension) -> Extension:
        return self._extension(self._row(ext))

    @staticmethod
    def _extension(row: Mapping[str, Any]) -> Extension:
        disabled = row.get("Disabled")
        return Extension(
            id=str(row["Id"]),
            number=text_of(row.get("Number")),
            first_name=text_of(row.get("FirstName")),
            last_name=text_of(row.get("LastName")),
            display_name=" ".join(
                p for p in (text_of(row.get("FirstName")), text_of(row.get("LastName"))) if p
            ),
            email=text_of(row.get("Email")),
            enabled=None if disabled is None else not disabled,
            mobile=text_of(row.get("MobileNumber")),
        )

    def _row(self, ext: str | Extension) -> dict[str, Any]:
        rows = self._list()
        if isinstance(ext, Extension):
            found = [row for row in rows if str(row.get("Id")) == ext.id]
        else:
            found = [row for row in rows if text_of(row.get("Number")) == str(ext)]
        if not found:
            number = ext.number if isinstance(ext, Extension) else ext
            raise UnknownExtension(f"3CX at {self.config['url']}: no extension {number}")
        return found[0]

    # -- the edit session ---------------------------------------------------------------------
    def _open(self, extension_id: Any) -> tuple[Any, dict[str, Any]]:
        session = self.client.post("/api/ExtensionList/set", {"Id": extension_id})
        if (
            not isinstance(session, dict)
            or "Id" not in session
            or not isinstance(session.get("ActiveObject"), dict)
        ):
            raise PbxServerError(
                f"POST {self.config['url']}/api/ExtensionList/set: no edit session in the answer"
            )
        return session["Id"], session["ActiveObject"]

    def _cancel(self, session_id: Any) -> None:
        try:
            self.client.post("/api/edit/cancel", session_id)
        except ConnectorError:  # the session times out on the PBX by itself
            self.client.transport.logger.warning(
                "3CX at %s: could not cancel an edit session", self.config["url"]
            )

    def _set_disabled(self, session_id: Any, value: Any) -> None:
        self.client.post(
            "/api/edit/update",
            {
                "Path": {"ObjectId": session_id, "PropertyPath": [{"Name": "Disabled"}]},
                "PropertyValue": value,
            },
        )
        self.client.post("/api/edit/save", session_id)

    # -- close and reopen ---------------------------------------------------------------------
    def close_plan(self, ext: str | Extension) -> dict[str, Any]:
        with self._write_lock:
            row = self._row(ext)
            session_id, obj = self._open(row["Id"])
            self._cancel(session_id)
            return self._plan(row, obj)

    def close(self, ext: str | Extension, plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with self._write_lock:
            row = self._row(ext)
            session_id, obj = self._open(row["Id"])
            try:
                state = resumed(plan, self._plan(row, obj))
                if bool(_field(obj, "Disabled")) != state["applied"]["Disabled"]:
                    self._set_disabled(session_id, True)
                else:
                    self._cancel(session_id)
            except BaseException:
                self._cancel(session_id)
                raise
            return state

    @staticmethod
    def _plan(row: Mapping[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
        """What closing the extension (disabling it) changes: its previous_state."""
        before, applied = {"Disabled": bool(_field(obj, "Disabled"))}, {"Disabled": True}
        return {
            "family": TYPE,
            "version": STATE_VERSION,
            "close_by": "disable",
            "extension": {"id": str(row["Id"]), "number": text_of(row.get("Number"))},
            "changed": before != applied,
            "before": before,
            "applied": applied,
        }

    def reopen(self, ext: str | Extension, previous_state: Mapping[str, Any]) -> ReopenResult:
        state = self._checked_state(ext, previous_state)
        number = state["extension"]["number"]
        if not state["changed"]:
            return ReopenResult(ReopenStatus.ALREADY, number, message="close() changed nothing")
        with self._write_lock:
            ids = {str(row.get("Id")): row for row in self._list()}
            row = ids.get(state["extension"]["id"])
            if row is None or text_of(row.get("Number")) != number:
                return ReopenResult(ReopenStatus.GONE, number, message=f"extension {number} no longer exists")
            session_id, obj = self._open(row["Id"])
            try:
                current = {"Disabled": bool(_field(obj, "Disabled"))}
                if current == state["before"]:
                    self._cancel(session_id)
                    return ReopenResult(ReopenStatus.ALREADY, number, message="already in its previous state")
                if current != state["applied"]:
                    self._cancel(session_id)
                    return ReopenResult(
                        ReopenStatus.CONFLICT,
                        number,
                        (Difference("Disabled", state["applied"]["Disabled"], current["Disabled"]),),
                        message="changed on the PBX since it was closed (Disabled); nothing was written",
                    )
                self._set_disabled(session_id, state["before"]["Disabled"])
            except BaseException:
                self._cancel(session_id)
                raise
            return ReopenResult(ReopenStatus.RESTORED, number, message="previous state restored")

    def _checked_state(self, ext: str | Extension, state: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            ok = (
                state["family"] == TYPE
                and state["version"] == STATE_VERSION
                and state["close_by"] == "disable"
                and isinstance(state["before"].get("Disabled"), bool)
                and state["applied"] == {"Disabled": True}
                and {"id", "number"} <= set(state["extension"])
            )
        except (KeyError, TypeError, AttributeError):
            ok = False
        return state_checked(TYPE, ext, state, ok)

    # -- calls --------------------------------------------------------------------------------
    def active_calls(self) -> list[ActiveCall]:
        payload = self.client.get("/api/activeCalls")
        if not isinstance(payload, dict) or not isinstance(payload.get("list"), list):
            raise PbxServerError(f"GET {self.config['url']}/api/activeCalls: no 'list' in the answer")
        calls = []
        for row in payload["list"]:
            caller, callee = text_of(row.get("Caller")), text_of(row.get("Callee"))
            calls.append(
                ActiveCall(
                    id=str(row["Id"]),
                    caller=caller,
                    callee=callee,
                    status=text_of(row.get("Status")),
                    established_at=parse_datetime(row.get("EstablishedAt")),
                    last_change_at=parse_datetime(row.get("LastChangeStatus")),
                    caller_number=leading_number(caller),
                    callee_number=leading_number(callee),
                )
            )
        return calls

    def drop_call(self, call_id: str) -> bool:
        if not str(call_id).lstrip("-").isdigit():
            raise PbxRefused(f"{call_id!r} is not a 3CX active call id")
        try:
            self.client.post("/api/activeCalls/drop", {"Id": int(call_id)})
        except PbxRefused as error:
            if error.status == 404:
                return False
            raise
        return True
