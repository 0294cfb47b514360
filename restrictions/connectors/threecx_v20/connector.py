"""R8: the 3CX v20 connector, on the Configuration API (XAPI). No Django.

How an extension is closed is the device's choice (`close_by`):
- group: its group memberships are replaced by one membership of `closed_group`, a group
  that no ordinary outbound rule serves (3CX's usual call barring); reopen puts the recorded
  memberships (group, role) and the primary group back.
- internal: User.Internal is set (internal calls only); reopen puts the recorded value back.
- disable: User.Enabled is cleared (the whole extension is off); reopen puts it back.
Only PATCH /Users({Id}) writes; outbound rules are read, never written (emergency rules stay
as they are). Why not PATCH /Groups({Id}) with Members: it replaces the whole member list
of the group, so a concurrent change by an administrator to another member would be lost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from restrictions.connectors.base import (
    COMMON_KEYS,
    ActiveCall,
    CallLeg,
    ConfigKey,
    Connector,
    Difference,
    Extension,
    PbxRefused,
    Period,
    QueueCall,
    ReopenResult,
    ReopenStatus,
    UnknownExtension,
    format_utc,
    leading_number,
    parse_datetime,
    resumed,
    state_checked,
    text_of,
)
from restrictions.connectors.threecx_v20.client import XapiClient, odata_string, path_literal

TYPE = "3cx-v20"
STATE_VERSION = 1
# How long the closed group's check (it exists; no outbound rule but emergency ones serves
# it) holds before closing into it asks the PBX again.
CLOSED_GROUP_CHECK_SECONDS = 60

CONFIG_KEYS: dict[str, ConfigKey] = {
    "type": ConfigKey("choice", required=True, choices=(TYPE,)),
    "url": ConfigKey("url", required=True, doc="the PBX's address, e.g. https://pbx.example.com:5001"),
    "client_id": ConfigKey("str", required=True, doc="the API client's id (3CX Admin > Integrations > API)"),
    "client_secret": ConfigKey("secret", required=True, doc="the API client's secret, shown once by 3CX"),
    "close_by": ConfigKey(
        "choice",
        default="group",
        choices=("group", "internal", "disable"),
        doc="how an extension is closed: group, internal or disable",
    ),
    "closed_group": ConfigKey("str", doc="the group closed extensions are moved into (close_by group)"),
    "closed_role": ConfigKey("str", default="users", doc="the role closed extensions get in closed_group"),
    **COMMON_KEYS,
    "page_size": ConfigKey("int", default=500, minimum=10, maximum=5000, doc="users read per request"),
    "token_margin_seconds": ConfigKey(
        "number",
        default=60,
        minimum=0,
        maximum=3600,
        doc="renew the access token this long before it expires",
    ),
    "report_chunk_hours": ConfigKey(
        "int",
        default=24,
        minimum=1,
        maximum=31 * 24,
        doc="queue and call-log reports are read in pieces this long",
    ),
    "queues": ConfigKey("str_list", doc="numbers of the queues queue_calls reads; all queues when absent"),
}

USER_SELECT = "Id,Number,FirstName,LastName,DisplayName,EmailAddress,Mobile,Enabled,Internal,PrimaryGroupId"
# Rights is a navigation property of UserGroup: it comes back only when expanded.
GROUPS_EXPAND = "Groups($select=GroupId,Name,Number;$expand=Rights($select=RoleName))"

_DURATION = re.compile(r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: Any) -> float | None:
    """An ISO-8601 duration as 3CX writes it (PT1M5.5S, P1DT2H) in seconds."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if not match:
        return None
    sign, days, hours, minutes, seconds = match.groups()
    total = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    return -total if sign else total


class ThreeCXv20Connector(Connector):
    """3CX v20 (XAPI). Needs an API client with XAPI access (Enterprise licence)."""

    type = TYPE
    close_by_choices = ("group", "internal", "disable")
    capabilities = frozenset({"extensions", "close", "active_calls", "drop_call", "queue_calls", "call_legs"})
    config_keys = CONFIG_KEYS

    def __init__(self, config: Mapping[str, Any], *, clock: Callable[[], float] | None = None):
        super().__init__(config, clock=clock)
        c = self.config
        self.client = XapiClient(
            url=c["url"],
            client_id=c["client_id"],
            client_secret=self._secrets["client_secret"],
            timeout=c["timeout"],
            verify_tls=c["verify_tls"],
            ca_file=c.get("ca_file"),
            proxy=c.get("proxy"),
            clock=self.clock,
            token_margin=c["token_margin_seconds"],
        )
        # close/reopen read, compare and write: one at a time within this process.
        self._write_lock = threading.Lock()
        self._closed_group: tuple[int, float] | None = None  # (its id, when it was checked)

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> list[str]:
        problems = super().config_problems(config)
        if (
            isinstance(config, Mapping)
            and config.get("close_by", "group") == "group"
            and not config.get("closed_group")
        ):
            problems.append(
                "'closed_group' is required when close_by is 'group': the name of a 3CX group that "
                'no outbound rule serves, e.g. "No outbound"'
            )
        return problems

    def disconnect(self) -> None:
        self.client.forget_token()

    # -- extensions ---------------------------------------------------------------------------
    def extensions(self) -> list[Extension]:
        users = self.client.get_all(
            "/Users",
            {"$select": USER_SELECT, "$expand": GROUPS_EXPAND, "$orderby": "Id"},
            page_size=self.config["page_size"],
        )
        seen, result = set(), []
        for user in users:  # a user added while paging can shift a page: keep each once
            if user.get("Id") in seen:
                continue
            seen.add(user.get("Id"))
            result.append(self._extension(user))
        return result

    def extension(self, ext: str | Extension) -> Extension:
        return self._extension(self._user(ext))

    @staticmethod
    def _extension(user: Mapping[str, Any]) -> Extension:
        groups = [g for g in user.get("Groups") or [] if isinstance(g, dict)]
        primary = next((g for g in groups if g.get("GroupId") == user.get("PrimaryGroupId")), None)
        department = (primary or (groups[0] if groups else {})).get("Name")
        return Extension(
            id=str(user["Id"]),
            number=text_of(user.get("Number")),
            first_name=text_of(user.get("FirstName")),
            last_name=text_of(user.get("LastName")),
            display_name=text_of(user.get("DisplayName")),
            email=text_of(user.get("EmailAddress")),
            enabled=user.get("Enabled"),
            groups=tuple(text_of(g.get("Name")) for g in groups if g.get("Name")),
            department=department or None,
            internal_only=user.get("Internal"),
            mobile=text_of(user.get("Mobile")),
        )

    def _user(self, ext: str | Extension) -> dict[str, Any]:
        if isinstance(ext, Extension):
            return self._user_by_id(ext.id, ext.number)
        number = str(ext)
        users = self.client.get_values(
            "/Users",
            {
                "$filter": f"Number eq {odata_string(number)}",
                "$select": USER_SELECT,
                "$expand": GROUPS_EXPAND,
                "$top": 2,
            },
        )
        if not users:
            raise UnknownExtension(f"3CX at {self.config['url']}: no extension {number}")
        return users[0]

    def _user_by_id(self, user_id: str, number: str = "") -> dict[str, Any]:
        if not str(user_id).lstrip("-").isdigit():
            raise UnknownExtension(f"3CX at {self.config['url']}: {user_id!r} is not a 3CX user id")
        try:
            return self.client.get(
                f"/Users({int(user_id)})", {"$select": USER_SELECT, "$expand": GROUPS_EXPAND}
            )
        except PbxRefused as error:
            if error.status == 404:
                raise UnknownExtension(
                    f"3CX at {self.config['url']}: no user {user_id}"
                    + (f" (extension {number})" if number else "")
                ) from None
            raise

    # -- close and reopen ---------------------------------------------------------------------
    @staticmethod
    def _memberships(user: Mapping[str, Any]) -> list[dict[str, Any]]:
        memberships = [
            {"GroupId": g.get("GroupId"), "RoleName": (g.get("Rights") or {}).get("RoleName") or "users"}
            for g in user.get("Groups") or []
            if isinstance(g, dict) and g.get("GroupId") is not None
        ]
        return sorted(memberships, key=lambda m: (m["GroupId"], m["RoleName"]))

    def _values(self, user: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
        """The current values of the fields close() works on, comparable with its records."""
        values = {}
        for name in fields:
            values[name] = self._memberships(user) if name == "Groups" else user.get(name)
        return values

    @staticmethod
    def _patch_body(values: Mapping[str, Any]) -> dict[str, Any]:
        body = {}
        for name, value in values.items():
            if name == "Groups":
                body[name] = [{"GroupId": m["GroupId"], "Rights": {"RoleName": m["RoleName"]}} for m in value]
            elif name == "PrimaryGroupId" and value is None:
                continue
            else:
                body[name] = value
        return body

    def close_plan(self, ext: str | Extension) -> dict[str, Any]:
        with self._write_lock:
            return self._plan(self._user(ext))

    def close(self, ext: str | Extension, plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with self._write_lock:
            user = self._user(ext)
            kept = self._kept(plan, user)
            state = kept if kept is not None else resumed(plan, self._plan(user))
            applied = state["applied"]
            if self._values(user, list(applied)) != applied:
                self.client.patch(f"/Users({int(user['Id'])})", self._patch_body(applied))
            return state

    def _kept(self, plan: Mapping[str, Any] | None, user: Mapping[str, Any]) -> dict[str, Any] | None:
        """`plan` when it recorded a change of this very user the way this connector closes
        now (then nothing needs asking again); else None."""
        if not plan or not plan.get("changed"):
            return None
        extension = {"id": str(user["Id"]), "number": text_of(user.get("Number"))}
        fresh = {"family": TYPE, "version": STATE_VERSION, "close_by": self.close_by,
                 "extension": extension}
        state = resumed(plan, fresh)
        return None if state is fresh else state

    def _plan(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """What closing `user` the configured way changes: its previous_state."""
        mode = self.close_by
        if mode == "disable":
            before, applied = {"Enabled": user.get("Enabled")}, {"Enabled": False}
        elif mode == "internal":
            before, applied = {"Internal": user.get("Internal")}, {"Internal": True}
        else:
            group_id = self._closed_group_id()
            before = {"Groups": self._memberships(user), "PrimaryGroupId": user.get("PrimaryGroupId")}
            applied = {"Groups": [{"GroupId": group_id, "RoleName": self.config["closed_role"]}]}
        return {
            "family": TYPE,
            "version": STATE_VERSION,
            "close_by": mode,
            "extension": {"id": str(user["Id"]), "number": text_of(user.get("Number"))},
            "changed": self._values(user, list(applied)) != applied,
            "before": before,
            "applied": applied,
        }

    def reopen(self, ext: str | Extension, previous_state: Mapping[str, Any]) -> ReopenResult:
        state = self._checked_state(ext, previous_state)
        number = state["extension"]["number"]
        with self._write_lock:
            try:
                user = self._user_by_id(state["extension"]["id"], number)
            except UnknownExtension:
                return ReopenResult(ReopenStatus.GONE, number, message=f"extension {number} no longer exists")
            if text_of(user.get("Number")) != number:
                return ReopenResult(
                    ReopenStatus.GONE,
                    number,
                    message=f"user {user['Id']} now has number {user.get('Number')}, not {number}",
                )
            applied, before = state["applied"], state["before"]
            current = self._values(user, list(applied))
            restore = {name: before.get(name) for name in applied}
            if not state["changed"]:
                return ReopenResult(ReopenStatus.ALREADY, number, message="close() changed nothing")
            if current == restore:
                return ReopenResult(ReopenStatus.ALREADY, number, message="already in its previous state")
            if current != applied:
                differences = tuple(
                    Difference(name, applied[name], current[name])
                    for name in applied
                    if current[name] != applied[name]
                )
                names = ", ".join(d.field for d in differences)
                return ReopenResult(
                    ReopenStatus.CONFLICT,
                    number,
                    differences,
                    message=f"changed on the PBX since it was closed ({names}); nothing was written",
                )
            if "Groups" in applied:
                restore["PrimaryGroupId"] = before.get("PrimaryGroupId")
            self.client.patch(f"/Users({int(user['Id'])})", self._patch_body(restore))
            return ReopenResult(ReopenStatus.RESTORED, number, message="previous state restored")

    def _checked_state(self, ext: str | Extension, state: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            ok = (
                state["family"] == TYPE
                and state["version"] == STATE_VERSION
                and state["close_by"] in self.close_by_choices
                and isinstance(state["before"], dict)
                and isinstance(state["applied"], dict)
                and {"id", "number"} <= set(state["extension"])
            )
        except (KeyError, TypeError):
            ok = False
        return state_checked(TYPE, ext, state, ok)

    def _closed_group_id(self) -> int:
        """The closed group's id, after making sure that closing into it bars calls; the
        answer is kept CLOSED_GROUP_CHECK_SECONDS, so that a burst of closures asks once."""
        checked = self._closed_group
        if checked is not None and self.clock() - checked[1] < CLOSED_GROUP_CHECK_SECONDS:
            return checked[0]
        group_id = self._closed_group_checked()
        self._closed_group = (group_id, self.clock())
        return group_id

    def _closed_group_checked(self) -> int:
        name = self.config["closed_group"]
        groups = self.client.get_values(
            "/Groups", {"$filter": f"Name eq {odata_string(name)}", "$select": "Id,Name"}
        )
        if not groups:
            raise PbxRefused(
                f"3CX at {self.config['url']}: no group named '{name}' (closed_group); create it, "
                "and let no outbound rule but the emergency ones serve it"
            )
        group_id = groups[0]["Id"]
        serving = [
            rule
            for rule in self._outbound_rules()
            if group_id in (rule.get("GroupIds") or []) and not rule.get("EmergencyRule")
        ]
        if serving:
            names = ", ".join(f"'{rule.get('Name')}'" for rule in serving)
            raise PbxRefused(
                f"3CX at {self.config['url']}: outbound rule {names} serves group '{name}': closing "
                "into it would not bar external calls"
            )
        return group_id

    def _outbound_rules(self) -> list[dict[str, Any]]:
        return self.client.get_all(
            "/OutboundRules", {"$select": "Id,Name,GroupIds,EmergencyRule", "$orderby": "Id"}, page_size=200
        )

    def check(self) -> list[str]:
        problems = []
        self.client.get_values("/Users", {"$select": "Id", "$top": 1})  # the credentials work
        if self.close_by == "group":
            try:
                group_id = self._closed_group_id()
            except PbxRefused as error:
                return [str(error)]
            emergency = [r for r in self._outbound_rules() if r.get("EmergencyRule")]
            if not any(group_id in (r.get("GroupIds") or []) for r in emergency):
                problems.append(
                    f"no emergency outbound rule lists group '{self.config['closed_group']}': make sure "
                    "closed extensions can still call emergency numbers"
                )
        return problems

    # -- calls --------------------------------------------------------------------------------
    def active_calls(self) -> list[ActiveCall]:
        return [self._active_call(row) for row in self.client.get_values("/ActiveCalls")]

    @staticmethod
    def _active_call(row: Mapping[str, Any]) -> ActiveCall:
        caller, callee = text_of(row.get("Caller")), text_of(row.get("Callee"))
        return ActiveCall(
            id=str(row["Id"]),
            caller=caller,
            callee=callee,
            status=text_of(row.get("Status")),
            established_at=parse_datetime(row.get("EstablishedAt")),
            last_change_at=parse_datetime(row.get("LastChangeStatus")),
            server_now=parse_datetime(row.get("ServerNow")),
            caller_number=leading_number(caller),
            callee_number=leading_number(callee),
        )

    def drop_call(self, call_id: str) -> bool:
        if not str(call_id).lstrip("-").isdigit():
            raise PbxRefused(f"{call_id!r} is not a 3CX active call id")
        try:
            self.client.post(f"/ActiveCalls({int(call_id)})/Pbx.DropCall")
        except PbxRefused as error:
            if error.status == 404:
                return False
            raise
        return True

    # -- reports ------------------------------------------------------------------------------
    def _chunks(self, period: Period) -> list[Period]:
        return period.chunks(timedelta(hours=self.config["report_chunk_hours"]))

    def queue_calls(self, period: Period) -> list[QueueCall]:
        queues = self.client.get_all(
            "/Queues", {"$select": "Id,Number,Name", "$orderby": "Id"}, page_size=200
        )
        wanted = self.config.get("queues")
        if wanted:
            queues = [q for q in queues if q.get("Number") in wanted]
        calls: dict[tuple, QueueCall] = {}
        for piece in self._chunks(period):
            start, end = format_utc(piece.start), format_utc(piece.end)
            for queue in queues:
                number, name = text_of(queue.get("Number")), text_of(queue.get("Name"))
                dn = path_literal(number)
                answered = self.client.get_all(
                    "/ReportQueueAnsweredCallsByWaitTime/Pbx.GetQueueAnsweredCallsByWaitTimeData("
                    f"queueDnStr={dn},startDt={start},endDt={end},answerInterval={path_literal('0:00:00')})",
                    {"$orderby": "CallTime"},
                    page_size=self.config["page_size"],
                )
                for row in answered:
                    call = self._answered_queue_call(row, number, name)
                    calls.setdefault(("answered", number, call.caller, call.started_at, call.agent), call)
                abandoned = self.client.get_all(
                    "/ReportAbandonedQueueCalls/Pbx.GetAbandonedQueueCallsData("
                    f"periodFrom={start},periodTo={end},queueDns={dn},waitInterval={path_literal('0:00:00')})",
                    {"$orderby": "CallTime"},
                    page_size=self.config["page_size"],
                )
                for row in abandoned:
                    call = self._abandoned_queue_call(row, number, name)
                    key = ("abandoned", number, call.call_id or call.caller, call.started_at)
                    calls.setdefault(key, call)
        inside = [
            c for c in calls.values() if c.started_at is None or period.start <= c.started_at < period.end
        ]
        return sorted(inside, key=lambda c: (c.started_at is None, c.started_at or period.start, c.queue))

    @staticmethod
    def _answered_queue_call(row: Mapping[str, Any], number: str, name: str) -> QueueCall:
        started, answered_at = parse_datetime(row.get("CallTime")), parse_datetime(row.get("AnsweredTime"))
        destination = text_of(row.get("Destination"))
        return QueueCall(
            queue=text_of(row.get("DnNumber")) or number,
            queue_name=name or text_of(row.get("Dn")),
            caller=text_of(row.get("Source")),
            started_at=started,
            answered=True,
            agent=leading_number(destination) or destination,
            agent_name=destination,
            answered_at=answered_at,
            wait_seconds=(answered_at - started).total_seconds() if started and answered_at else None,
            ring_seconds=parse_duration(row.get("RingTime")),
        )

    @staticmethod
    def _abandoned_queue_call(row: Mapping[str, Any], number: str, name: str) -> QueueCall:
        return QueueCall(
            queue=text_of(row.get("QueueDn")) or number,
            queue_name=text_of(row.get("QueueDisplayName")) or name,
            caller=text_of(row.get("CallerId")),
            started_at=parse_datetime(row.get("CallTime")),
            answered=False,
            agent=text_of(row.get("ExtensionDn")),
            agent_name=text_of(row.get("ExtensionDisplayName")),
            wait_seconds=parse_duration(row.get("WaitTime")),
            polling_attempts=row.get("PollingAttempts"),
            call_id=text_of(row.get("CallHistoryId")),
        )

    def call_legs(self, period: Period) -> list[CallLeg]:
        legs: dict[tuple, CallLeg] = {}
        empty = path_literal("")
        zero = path_literal("0:00:0")
        for piece in self._chunks(period):
            rows = self.client.get_all(
                "/ReportCallLogData/Pbx.GetCallLogData("
                f"periodFrom={format_utc(piece.start)},periodTo={format_utc(piece.end)},"
                f"sourceType=0,sourceFilter={empty},destinationType=0,destinationFilter={empty},"
                f"callsType=0,callTimeFilterType=0,callTimeFilterFrom={zero},callTimeFilterTo={zero},"
                "hidePcalls=false)",
                {"$orderby": "StartTime,SegmentId"},
                page_size=self.config["page_size"],
            )
            for row in rows:
                leg = self._call_leg(row)
                legs.setdefault((leg.call_id, leg.leg_id, text_of(row.get("CdrId"))), leg)
        inside = [
            leg
            for leg in legs.values()
            if leg.started_at is None or period.start <= leg.started_at < period.end
        ]
        return sorted(inside, key=lambda leg: (leg.call_id, leg.started_at or period.start, leg.leg_id))

    @staticmethod
    def _call_leg(row: Mapping[str, Any]) -> CallLeg:
        cost = row.get("CallCost")
        try:
            cost = None if cost is None else Decimal(str(cost))
        except InvalidOperation:
            cost = None
        segment = row.get("SegmentId")
        return CallLeg(
            call_id=text_of(row.get("CallId")),
            leg_id=text_of(segment) if segment is not None else text_of(row.get("CdrId")),
            started_at=parse_datetime(row.get("StartTime")),
            source=text_of(row.get("SourceDn")) or text_of(row.get("SourceCallerId")),
            destination=text_of(row.get("DestinationDn")) or text_of(row.get("DestinationCallerId")),
            source_name=text_of(row.get("SourceDisplayName")),
            destination_name=text_of(row.get("DestinationDisplayName")),
            source_caller_id=text_of(row.get("SourceCallerId")),
            destination_caller_id=text_of(row.get("DestinationCallerId")),
            answered=row.get("Answered"),
            ring_seconds=parse_duration(row.get("RingingDuration")),
            talk_seconds=parse_duration(row.get("TalkingDuration")),
            action=row.get("ActionType"),
            reason=text_of(row.get("Reason")),
            cost=cost,
            main_call_id=text_of(row.get("MainCallHistoryId")),
            history_id=text_of(row.get("CallHistoryId")),
        )
