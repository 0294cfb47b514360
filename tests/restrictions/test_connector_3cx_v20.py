"""R8: the 3CX v20 connector (XAPI) against the fake 3CX, which holds every request and answer
to 3CX's OpenAPI description (a violation fails the test at teardown)."""

import json
import logging
import socket
import threading
import traceback
from datetime import UTC, datetime

import pytest

from restrictions.connectors import (
    Difference,
    PbxAuthRejected,
    PbxRefused,
    PbxServerError,
    PbxTimeout,
    PbxUnavailable,
    PbxUnreachable,
    Period,
    ReopenStatus,
    UnknownExtension,
    config_problems,
    connector_for,
)
from restrictions.connectors.threecx_v20 import ThreeCXv20Connector
from restrictions.connectors.threecx_v20.client import odata_string
from restrictions.connectors.threecx_v20.connector import parse_duration

MARCH_10_11 = Period(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 12, tzinfo=UTC))


def writes(fake, path=""):
    return [r for r in fake.requests("v20", path=f"/xapi/v1{path}") if r.method != "GET"]


def with_mode(v20_config, clock, close_by):
    return connector_for({**v20_config, "close_by": close_by}, clock=clock)


# -- configuration ------------------------------------------------------------------------------
def test_connector_for_chooses_the_family_by_type(v20_config):
    # given a device's connector configuration of type 3cx-v20
    # when the connector is made
    connector = connector_for(v20_config)
    # then it is the v20 connector, with the pinned keys and the documented defaults
    assert isinstance(connector, ThreeCXv20Connector)
    assert (connector.close_by, connector.poll_seconds, connector.sync_minutes) == ("group", 2, 60)
    assert connector.config["verify_tls"] is True and connector.config["page_size"] == 500


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"type": "3cx-v21"}, "'type' must be one of '3cx-v20', '3cx-v18', not '3cx-v21'"),
        ({"client_secret": None}, "'client_secret' is required"),
        ({"url": "pbx.example.com:5001"}, "'url' must start with https://"),
        ({"url": "https://admin:pw@pbx.example.com"}, "'url' must not contain a user name or password"),
        ({"close_by": "block"}, "'close_by' must be one of 'group', 'internal', 'disable', not 'block'"),
        ({"closed_group": None}, "'closed_group' is required when close_by is 'group'"),
        ({"poll_seconds": "2"}, "'poll_seconds' must be a number"),
        ({"poll_seconds": 0}, "'poll_seconds' must be at least 0.2"),
        ({"sync_minutes": 1.5}, "'sync_minutes' must be a whole number"),
        ({"verify_tls": "yes"}, "'verify_tls' must be true or false"),
        ({"ca_file": "/nonexistent/ca.pem"}, "'ca_file': no file at /nonexistent/ca.pem"),
        ({"clientid": "x"}, "unknown key 'clientid' (did you mean 'client_id'?)"),
    ],
)
def test_config_problems_name_the_wrong_key(v20_config, change, problem):
    # given a configuration with one mistake
    config = {key: value for key, value in {**v20_config, **change}.items() if value is not None}
    # when it is checked
    problems = config_problems(config)
    # then the problem says which key and what is wrong, and never repeats the secret
    assert any(p.startswith(problem) for p in problems), problems
    assert not any(v20_config["client_secret"] in p for p in problems)


def test_closed_group_is_not_needed_when_closing_another_way(v20_config):
    config = {**v20_config, "close_by": "disable"}
    del config["closed_group"]
    assert config_problems(config) == []


def test_a_wrong_configuration_is_refused_with_every_problem(v20_config):
    with pytest.raises(ValueError) as raised:
        connector_for({**v20_config, "timeout": "slow", "x": 1})
    assert sorted(raised.value.problems) == ["'timeout' must be a number", "unknown key 'x'"]
    assert isinstance(raised.value, PbxRefused)  # retrying cannot help either


# -- extensions ---------------------------------------------------------------------------------
def test_extensions_are_listed_with_names_groups_and_department(v20):
    # when the extensions are read
    extensions = {e.number: e for e in v20.extensions()}
    # then each has what 3CX holds, the department being the primary group
    assert set(extensions) == {"100", "101", "102", "103"}
    bob = extensions["101"]
    assert (bob.id, bob.first_name, bob.last_name, bob.display_name) == (
        "12",
        "Bob",
        "O'Brien",
        "Bob O'Brien",
    )
    assert bob.email == "bob@example.com" and bob.enabled is True
    assert bob.groups == ("Sales", "Support") and bob.department == "Support"
    assert extensions["102"].enabled is False
    assert extensions["103"].internal_only is True


def test_ten_thousand_extensions_are_read_page_by_page(fake3cx, v20):
    # given a PBX with 10,004 users
    fake3cx.add_users(10_000)
    # when the extensions are read
    extensions = v20.extensions()
    # then all come, each once, in pages of $top=500 following each other by $skip
    assert len(extensions) == 10_004
    assert len({e.number for e in extensions}) == 10_004
    pages = fake3cx.requests("v20", "GET", "/xapi/v1/Users")
    assert [int(r.query["$skip"]) for r in pages] == list(range(0, 10_001, 500))
    assert {r.query["$top"] for r in pages} == {"500"} and {r.query["$orderby"] for r in pages} == {"Id"}


def test_one_extension_is_found_by_its_number(v20):
    assert v20.extension("103").display_name == "Dan Wu"


def test_an_unknown_extension_is_refused_not_retried(v20):
    with pytest.raises(UnknownExtension) as raised:
        v20.close("999")
    assert isinstance(raised.value, PbxRefused) and not raised.value.retryable


def test_the_number_is_an_escaped_string_literal_in_the_filter(fake3cx, v20):
    # given a "number" that would widen an unescaped $filter to every other user
    sneaky = "100' or Number ne '"
    # when it is closed
    with pytest.raises(UnknownExtension):
        v20.close(sneaky)
    # then 3CX received it as one literal with its quotes doubled, and nobody was changed
    lookup = fake3cx.requests("v20", "GET", "/xapi/v1/Users")[-1]
    assert lookup.query["$filter"] == "Number eq '100'' or Number ne '''"
    assert writes(fake3cx) == []


@pytest.mark.parametrize(("text", "literal"), [("100", "'100'"), ("O'Brien", "'O''Brien'"), ("''", "''''''")])
def test_odata_string_literals_double_their_quotes(text, literal):
    assert odata_string(text) == literal


# -- close and reopen ---------------------------------------------------------------------------
CLOSED = {
    "group": lambda user: (
        [(g["Name"], g["Rights"]["RoleName"]) for g in user["Groups"]] == [("No outbound", "users")]
    ),
    "internal": lambda user: user["Internal"] is True,
    "disable": lambda user: user["Enabled"] is False,
}
CHANGED_FIELDS = {"group": {"Groups", "PrimaryGroupId"}, "internal": {"Internal"}, "disable": {"Enabled"}}


@pytest.mark.parametrize("close_by", ["group", "internal", "disable"])
def test_close_then_reopen_restores_exactly_the_previous_state(fake3cx, v20_config, clock, close_by):
    # given Bob, in Sales (users) and Support (group_admins, his primary group)
    connector = with_mode(v20_config, clock, close_by)
    before, everything_before = fake3cx.user("101"), fake3cx.snapshot()
    # when he is closed
    state = connector.close("101")
    # then only the setting of this close_by changed
    closed = fake3cx.user("101")
    assert CLOSED[close_by](closed)
    assert {k for k in before if before[k] != closed[k]} == CHANGED_FIELDS[close_by]
    # and previous_state survives being stored as JSON
    state = json.loads(json.dumps(state))
    assert state["changed"] is True and state["close_by"] == close_by
    # when he is reopened
    result = connector.reopen("101", state)
    # then 3CX holds exactly what it held before, for him and for everything else
    assert result.status == ReopenStatus.RESTORED and result.ok
    assert fake3cx.user("101") == before
    assert fake3cx.snapshot() == everything_before


def test_group_close_records_groups_with_roles_and_the_primary_group(v20):
    state = v20.close("101")
    assert state["before"] == {
        "Groups": [{"GroupId": 2, "RoleName": "users"}, {"GroupId": 3, "RoleName": "group_admins"}],
        "PrimaryGroupId": 3,
    }
    assert state["applied"] == {"Groups": [{"GroupId": 9, "RoleName": "users"}]}


def test_close_writes_the_user_only_through_patch_users(fake3cx, v20):
    v20.close("100")
    assert [(r.method, r.path) for r in writes(fake3cx)] == [("PATCH", "/xapi/v1/Users(11)")]
    assert set(json.loads(writes(fake3cx)[0].body)) == {"Groups"}


def test_reopen_reports_a_conflict_when_an_administrator_moved_the_extension_meanwhile(fake3cx, v20):
    # given Bob closed, then moved by an administrator into Support only
    state = v20.close("101")
    fake3cx.admin_change("101", groups=[(3, "users")])
    writes_before = len(writes(fake3cx))
    # when he is reopened
    result = v20.reopen("101", state)
    # then nothing is written and the result says what differs
    assert result.status == ReopenStatus.CONFLICT and not result.ok
    assert result.differences == (
        Difference("Groups", [{"GroupId": 9, "RoleName": "users"}], [{"GroupId": 3, "RoleName": "users"}]),
    )
    assert len(writes(fake3cx)) == writes_before
    assert fake3cx.memberships("101") == [("Support", "users")]


@pytest.mark.parametrize(
    ("close_by", "reopened_by_admin"), [("internal", {"Internal": False}), ("disable", {"Enabled": True})]
)
def test_reopen_writes_nothing_when_an_administrator_restored_it_already(
    fake3cx, v20_config, clock, close_by, reopened_by_admin
):
    connector = with_mode(v20_config, clock, close_by)
    state = connector.close("100")
    fake3cx.admin_change("100", **reopened_by_admin)
    writes_before = len(writes(fake3cx))
    result = connector.reopen("100", state)
    assert result.status == ReopenStatus.ALREADY and result.ok
    assert len(writes(fake3cx)) == writes_before


def test_reopen_of_an_extension_deleted_meanwhile_says_it_is_gone(fake3cx, v20):
    state = v20.close("100")
    del fake3cx.users[11]
    result = v20.reopen("100", state)
    assert result.status == ReopenStatus.GONE and not result.ok


def test_closing_an_extension_already_in_the_closed_state_changes_nothing_and_reopen_leaves_it(
    fake3cx, v20_config, clock
):
    # given Carla, disabled by an administrator long ago
    connector = with_mode(v20_config, clock, "disable")
    # when she is closed by disabling and later reopened
    state = connector.close("102")
    result = connector.reopen("102", state)
    # then neither wrote anything: she stays disabled, as the administrator wanted
    assert state["changed"] is False and result.status == ReopenStatus.ALREADY
    assert writes(fake3cx) == [] and fake3cx.user("102")["Enabled"] is False


def test_reopen_uses_the_mode_recorded_at_close_even_after_the_device_changed_it(fake3cx, v20_config, clock):
    before = fake3cx.user("101")
    state = with_mode(v20_config, clock, "group").close("101")
    result = with_mode(v20_config, clock, "disable").reopen("101", state)
    assert result.status == ReopenStatus.RESTORED and fake3cx.user("101") == before


def test_a_previous_state_from_elsewhere_is_refused(v20):
    with pytest.raises(PbxRefused, match="not recorded by a 3cx-v20"):
        v20.reopen("100", {"family": "3cx-v18", "version": 1})


@pytest.mark.parametrize("close_by", ["group", "internal", "disable"])
def test_outbound_rules_and_the_emergency_rule_are_never_written(fake3cx, v20_config, clock, close_by):
    rules_before = json.dumps(fake3cx.outbound_rules, sort_keys=True)
    connector = with_mode(v20_config, clock, close_by)
    connector.reopen("101", connector.close("101"))
    assert writes(fake3cx, "/OutboundRules") == []
    assert json.dumps(fake3cx.outbound_rules, sort_keys=True) == rules_before
    assert fake3cx.outbound_rules[1]["EmergencyRule"] is True


def test_closing_into_a_group_an_outbound_rule_serves_is_refused(fake3cx, v20):
    # given an administrator let the National rule serve the closed group
    fake3cx.outbound_rules[2]["GroupIds"].append(9)
    before = fake3cx.user("100")
    # when an extension is closed by group
    with pytest.raises(PbxRefused, match="'National' serves group 'No outbound'"):
        v20.close("100")
    # then it is left as it was: moving it would not have barred anything
    assert fake3cx.user("100") == before and writes(fake3cx) == []


def test_a_closed_group_missing_on_the_pbx_is_refused_and_reported_by_check(fake3cx, v20):
    del fake3cx.groups[9]
    with pytest.raises(PbxRefused, match="no group named 'No outbound'"):
        v20.close("100")
    problems = v20.check()
    assert len(problems) == 1 and "no group named 'No outbound'" in problems[0]


def test_check_passes_for_a_closed_group_only_the_emergency_rule_serves(v20):
    assert v20.check() == []


def test_check_warns_when_no_emergency_rule_serves_the_closed_group(fake3cx, v20):
    fake3cx.outbound_rules[1]["GroupIds"].remove(9)
    problems = v20.check()
    assert len(problems) == 1 and "emergency" in problems[0]


# -- calls --------------------------------------------------------------------------------------
def test_active_calls_come_with_aware_utc_times(v20):
    calls = {c.id: c for c in v20.active_calls()}
    first, second = calls["501"], calls["502"]
    assert (first.caller, first.callee, first.status) == ("100 Ann Lee", "0441234567", "Talking")
    assert (first.caller_number, second.caller_number) == ("100", "101")
    # 3CX writes seven fractional digits; +02:00 is moved to UTC
    assert first.established_at == datetime(2025, 3, 10, 9, 0, 0, 123456, tzinfo=UTC)
    assert second.established_at == datetime(2025, 3, 10, 7, 5, tzinfo=UTC)
    assert second.server_now.tzinfo is UTC
    assert second.duration_seconds(datetime(2025, 3, 10, 7, 6, tzinfo=UTC)) == 60


def test_drop_call_ends_the_call_and_reports_one_that_ended_already(fake3cx, v20):
    assert v20.drop_call("501") is True
    assert 501 not in fake3cx.active_calls
    assert v20.drop_call("501") is False
    assert [c.id for c in v20.active_calls()] == ["502"]


def test_queue_calls_of_a_period_answered_and_abandoned_each_once(fake3cx, v20):
    # when the queue calls of 10-11 March are read (in two daily pieces)
    calls = v20.queue_calls(MARCH_10_11)
    # then the answered and the abandoned calls of both queues come, none from 12 March, and
    # the abandoned call at midnight, which both pieces return, comes once
    assert [(c.queue, c.caller, c.answered) for c in calls] == [
        ("800", "0441234567", True),
        ("801", "0501112233", True),
        ("800", "0447654321", False),
    ]
    answered, _, abandoned = calls
    assert (answered.agent, answered.wait_seconds, answered.ring_seconds) == ("100", 25.0, 5.0)
    assert (abandoned.wait_seconds, abandoned.polling_attempts, abandoned.agent) == (42.0, 2, "100")
    assert abandoned.call_id == "00000001A2B3C4D5" and abandoned.queue_name == "Sales queue"
    assert len(fake3cx.requests("v20", "GET", "/xapi/v1/ReportAbandonedQueueCalls")) == 4  # 2 days x 2 queues


def test_queue_calls_only_of_the_configured_queues(fake3cx, v20_config, clock):
    connector = connector_for({**v20_config, "queues": ["801"]}, clock=clock)
    assert {c.queue for c in connector.queue_calls(MARCH_10_11)} == {"801"}


def test_call_legs_of_a_transferred_call_carry_each_party_s_own_duration(v20):
    legs = [leg for leg in v20.call_legs(MARCH_10_11) if leg.call_id == "9001"]
    assert [(leg.source, leg.destination, leg.talk_seconds, leg.ring_seconds) for leg in legs] == [
        ("0441234567", "100", 60.0, 5.0),
        ("100", "101", 150.0, 2.0),
    ]
    assert legs[0].started_at == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    assert {leg.main_call_id for leg in legs} == {"main-9001"}
    assert "9003" not in {leg.call_id for leg in v20.call_legs(MARCH_10_11)}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1M5.5S", 65.5), ("P1DT2H", 93600.0), ("PT0S", 0.0), ("-PT3S", -3.0), ("", None), ("01:00", None)],
)
def test_iso_durations_are_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_a_period_must_be_aware_and_forward():
    with pytest.raises(ValueError, match="aware"):
        Period(datetime(2025, 3, 1), datetime(2025, 3, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="after"):
        Period(datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))


# -- the access token ---------------------------------------------------------------------------
def test_the_token_is_reused_and_renewed_shortly_before_it_expires(fake3cx, v20, clock):
    # given a token valid for an hour, used twice
    v20.active_calls()
    v20.active_calls()
    assert fake3cx.tokens_issued == 1
    # when 59 minutes 30 seconds have passed
    clock.advance(3600 - 30)
    v20.active_calls()
    # then a new token was taken before the request, which 3CX never had to refuse
    assert fake3cx.tokens_issued == 2
    assert [r.status for r in fake3cx.requests("v20")] == [200, 200, 200]


def test_a_token_refused_with_401_is_renewed_once_and_the_request_repeated(fake3cx, v20):
    v20.active_calls()
    fake3cx.revoke_tokens()
    calls = v20.active_calls()
    assert len(calls) == 2 and fake3cx.tokens_issued == 2
    assert [(r.api, r.status) for r in fake3cx.log[-3:]] == [("v20", 401), ("token", 200), ("v20", 200)]


def test_a_token_taken_by_another_program_is_replaced_once(fake3cx, v20):
    v20.extensions()
    fake3cx.take_token_elsewhere()  # 3CX keeps only the newest token of an API client
    assert len(v20.extensions()) == 4
    assert fake3cx.tokens_issued == 3


def test_a_fresh_token_refused_too_is_not_retried_again(fake3cx, v20):
    fake3cx.fail("status", status=401, path="/xapi/v1/")
    with pytest.raises(PbxAuthRejected, match="fresh token was rejected too") as raised:
        v20.active_calls()
    assert not raised.value.retryable
    assert len(fake3cx.requests("v20")) == 2 and fake3cx.tokens_issued == 2


def test_threads_sharing_the_connector_share_one_token(fake3cx, v20, clock):
    # given a control loop and a sync sharing one connector whose token is about to expire
    v20.active_calls()
    clock.advance(3590)
    results, errors = [], []

    def work():
        try:
            results.append(len(v20.active_calls()))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    # when eight threads use it at once
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one new token was taken, and no request was refused for its token
    assert errors == [] and results == [2] * 8
    assert fake3cx.tokens_issued == 2
    assert all(r.status == 200 for r in fake3cx.requests("v20"))


def test_threads_refused_together_renew_the_token_once(fake3cx, v20):
    # given eight requests in flight with a token 3CX has just dropped
    v20.active_calls()
    fake3cx.revoke_tokens()
    fake3cx.fail("slow", delay=0.2, times=8, path="/xapi/v1/ActiveCalls")
    errors = []

    def work():
        try:
            v20.active_calls()
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then all were refused once, one new token was taken, and every repeat used it: a second
    # renewal would have invalidated the first new token (3CX keeps one)
    assert errors == []
    assert fake3cx.tokens_issued == 2
    assert sorted(r.status for r in fake3cx.requests("v20"))[1:] == [200] * 8 + [401] * 8


def test_a_wrong_client_secret_is_refused_and_not_retried(fake3cx, v20_config):
    connector = connector_for({**v20_config, "client_secret": "wrong-secret-value"})
    with pytest.raises(PbxAuthRejected, match="check client_id and client_secret") as raised:
        connector.extensions()
    assert isinstance(raised.value, PbxRefused) and not raised.value.retryable
    assert "wrong-secret-value" not in str(raised.value)
    assert len(fake3cx.requests("token")) == 1


# -- the PBX failing ----------------------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_pbx_that_does_not_listen_is_unreachable_and_retryable(v20_config):
    connector = connector_for({**v20_config, "url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(PbxUnreachable) as raised:
        connector.extensions()
    assert raised.value.retryable and not isinstance(raised.value, PbxRefused)


@pytest.mark.parametrize("path", [None, "/connect/token"])
def test_a_pbx_closing_the_connection_is_unavailable_not_refused(fake3cx, v20, path):
    fake3cx.fail("down", path=path)
    with pytest.raises(PbxUnreachable) as raised:
        v20.active_calls()
    assert isinstance(raised.value, PbxUnavailable) and not isinstance(raised.value, PbxRefused)


def test_a_slow_pbx_times_out_as_unavailable(fake3cx, v20_config, clock):
    connector = connector_for({**v20_config, "timeout": 0.3}, clock=clock)
    connector.active_calls()
    fake3cx.fail("slow", delay=1.0, times=1)
    with pytest.raises(PbxTimeout, match="no answer within 0.3 s") as raised:
        connector.active_calls()
    assert raised.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable_and_retryable(fake3cx, v20, status):
    fake3cx.fail("status", status=status, path="/xapi/v1/Users")
    with pytest.raises(PbxServerError) as raised:
        v20.extensions()
    assert raised.value.status == status and raised.value.retryable


def test_a_token_endpoint_failing_transiently_is_unavailable(fake3cx, v20):
    fake3cx.fail("status", status=503, path="/connect/token")
    with pytest.raises(PbxUnavailable):
        v20.active_calls()


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_client_errors_are_refused_and_not_retryable(fake3cx, v20, status):
    fake3cx.fail("status", status=status, path="/xapi/v1/ActiveCalls")
    with pytest.raises(PbxRefused) as raised:
        v20.active_calls()
    assert raised.value.status == status and not raised.value.retryable
    assert not isinstance(raised.value, PbxUnavailable)


def test_the_connector_works_again_once_the_pbx_is_back(fake3cx, v20):
    fake3cx.fail("down", times=1)
    with pytest.raises(PbxUnavailable):
        v20.active_calls()
    assert len(v20.active_calls()) == 2


def test_v20_offers_every_operation(v20):
    assert v20.capabilities == {
        "extensions",
        "close",
        "active_calls",
        "drop_call",
        "queue_calls",
        "call_legs",
    }


# -- secrets ------------------------------------------------------------------------------------
def test_secrets_are_never_in_logs_or_exceptions(fake3cx, v20_config, clock, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connector_for(v20_config, clock=clock)
    raised = []

    def attempt(action):
        try:
            action()
        except Exception as error:  # noqa: BLE001 - every error is inspected below
            raised.append(error)

    # given a working day with a renewal after a 401, failures and a wrong secret
    connector.active_calls()
    fake3cx.revoke_tokens()
    connector.reopen("101", connector.close("101"))
    fake3cx.fail("status", status=500, times=1)
    attempt(connector.extensions)
    fake3cx.fail("status", status=401, path="/xapi/v1/")
    attempt(connector.active_calls)
    fake3cx.heal()
    attempt(connector_for({**v20_config, "client_secret": "another-Secret-123"}, clock=clock).extensions)
    # then neither the client secret nor any access token was logged or raised
    tokens = [r.headers["authorization"][7:] for r in fake3cx.requests("v20") if "authorization" in r.headers]
    assert len(raised) == 3 and tokens
    texts = [caplog.text, repr(connector), json.dumps(connector.config)]
    for error in raised:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for secret in [fake3cx.client_secret, "another-Secret-123", *tokens]:
        assert not any(secret in text for text in texts), secret


def test_a_burst_of_closures_checks_the_closed_group_once_and_again_after_a_minute(
        v20, fake3cx, clock):
    # when three extensions are closed one after the other, then one more a minute later
    for number in ("100", "101", "103"):
        v20.close(number)
    asked = len(fake3cx.requests("v20", "GET", "/xapi/v1/OutboundRules"))
    clock.advance(61)
    v20.close("102")
    # then the outbound rules were read once for the burst, and again after the minute
    assert asked == 1
    assert len(fake3cx.requests("v20", "GET", "/xapi/v1/OutboundRules")) == 2


def test_a_close_resumed_from_its_plan_asks_nothing_but_the_user_and_writes_once(v20, fake3cx):
    # given the plan of a close kept before it was first tried
    plan = v20.close_plan("101")
    before = len(fake3cx.log)
    # when the close is made with it
    state = v20.close("101", plan=plan)
    # then it read the user, wrote once, and recorded what the plan said
    made = [(r.method, r.path) for r in fake3cx.log[before:] if r.api == "v20"]
    assert made == [("GET", "/xapi/v1/Users"), ("PATCH", "/xapi/v1/Users(12)")]
    assert state == plan
