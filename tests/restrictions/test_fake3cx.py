"""The fake 3CX is held to 3CX's XAPI description: what the description does not allow, in a
request or in one of the fake's own answers, is caught. And the fake behaves as 3CX does
where the connector depends on it (OData options, PATCH, one token at a time)."""
# ruff: noqa: S310 - every URL opened here is the fake's, on 127.0.0.1

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.restrictions.fake3cx import FilterParser, ODataError, parse_expand, split_top_level


def token(fake):
    form = urllib.parse.urlencode(
        {"client_id": fake.client_id, "client_secret": fake.client_secret, "grant_type": "client_credentials"}
    ).encode()
    with urllib.request.urlopen(urllib.request.Request(fake.url + "/connect/token", data=form)) as answer:
        return json.load(answer)["access_token"]


def call(fake, method, path, body=None, *, bearer=None, headers=None):
    """(status, JSON, text or None) of one request to the fake."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(fake.url + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None and not request.has_header("Content-type"):
        request.add_header("Content-Type", "application/json")
    if path.startswith("/xapi/"):
        request.add_header("Authorization", f"Bearer {bearer or token(fake)}")
    try:
        with urllib.request.urlopen(request) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, (json.loads(raw) if raw else None)
    except ValueError:
        return status, raw.decode()


def caught(fake, text):
    """Assert a violation mentioning `text` was recorded, then forgive them all (expected)."""
    assert any(text in v for v in fake.violations), fake.violations
    fake.violations.clear()


# -- what the description does not allow is caught ---------------------------------------------
def test_a_request_to_an_undocumented_path_is_caught(fake3cx):
    status, answer = call(fake3cx, "GET", "/xapi/v1/Extensions")
    assert status == 404 and answer["error"]["message"]
    caught(fake3cx, "GET /Extensions is not in the description")


def test_a_documented_path_with_an_undocumented_method_is_caught(fake3cx):
    status, _ = call(fake3cx, "DELETE", "/xapi/v1/ActiveCalls")
    assert status == 404
    caught(fake3cx, "is documented for other methods only")


def test_a_request_body_with_an_unlisted_property_is_caught_and_refused(fake3cx):
    status, _ = call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"OutboundCallsBlocked": True})
    assert status == 400 and fake3cx.user("100")["Enabled"] is True
    caught(fake3cx, "OutboundCallsBlocked: not a property the description lists")


def test_a_request_body_of_the_wrong_type_is_caught(fake3cx):
    status, _ = call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"Enabled": "no"})
    assert status == 400
    caught(fake3cx, "Enabled: 'no' is not of type 'boolean', 'null'")


def test_a_body_where_the_description_has_none_is_caught(fake3cx):
    call(fake3cx, "POST", "/xapi/v1/ActiveCalls(501)/Pbx.DropCall", {"Id": 501})
    caught(fake3cx, "takes no request body")


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("$select=Id,Extension", "$select names Extension"),
        ("$expand=Phonebook", "$expand names Phonebook, which is not a navigation property"),
        ("$expand=Groups($select=GroupId,Role)", "GET /Users > Groups: $select names Role"),
        ("$orderby=Surname", "$orderby names Surname"),
        ("$top=ten", "$top='ten' is not an integer"),
        ("$limit=5", "query parameter $limit is not in the description"),
        ("$filter=Extension eq '100'", "could not find a property named 'Extension'"),
    ],
)
def test_odata_options_naming_what_the_entity_lacks_are_caught(fake3cx, query, problem):
    status, _ = call(fake3cx, "GET", "/xapi/v1/Users?" + urllib.parse.quote(query, safe="=&$,()"))
    assert status == 400
    caught(fake3cx, problem)


def test_an_answer_missing_a_required_property_is_caught(fake3cx):
    # given the fake's next 404 for a user loses the error's message
    fake3cx.corrupt("GetUser", lambda status, payload: (status, {"error": {"code": "404"}}))
    # when a missing user is read
    status, _ = call(fake3cx, "GET", "/xapi/v1/Users(999)")
    # then the answer breaks the description, and that is recorded
    assert status == 404
    caught(fake3cx, "GET /Users({Id}) -> 404: error: 'message' is a required property")


def test_an_answer_with_a_wrong_type_or_an_unlisted_property_is_caught(fake3cx):
    def spoil(status, payload):
        payload["value"][0]["Id"] = "11"
        payload["value"][0]["Extension"] = "100"
        return status, payload

    fake3cx.corrupt("ListUser", spoil)
    call(fake3cx, "GET", "/xapi/v1/Users?$select=Id,Number")
    caught(fake3cx, "value/0/Id: '11' is not of type 'integer'")
    fake3cx.corrupt("ListUser", spoil)
    call(fake3cx, "GET", "/xapi/v1/Users?$select=Id,Number")
    caught(fake3cx, "value/0: Extension: not a property the description lists")


def test_an_answer_with_a_body_where_the_description_has_none_is_caught(fake3cx):
    fake3cx.corrupt("UpdateUser", lambda status, payload: (204, {"Id": 11}))
    call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"FirstName": "Anna"})
    caught(fake3cx, "-> 204: the description has no body here")


def test_an_answer_status_the_description_lacks_is_caught_only_without_a_default(fake3cx, xapi_contract):
    route = xapi_contract.match("GET", "/Users")[0]
    assert (
        xapi_contract.check_response(route, 418, "application/json", b'{"error":{"code":"x","message":"y"}}')
        == []
    )
    assert xapi_contract.check_response(route, 418, "application/json", b"{}") != []


def test_a_date_time_path_parameter_is_checked_against_its_pattern(fake3cx):
    path = (
        "/xapi/v1/ReportAbandonedQueueCalls/Pbx.GetAbandonedQueueCallsData(periodFrom=2025-13-01T00:00:00Z,"
        "periodTo=2025-03-02T00:00:00Z,queueDns='800',waitInterval='0:00:00')"
    )
    status, _ = call(fake3cx, "GET", path)
    assert status == 400
    caught(fake3cx, "path parameter periodFrom")


def test_the_token_request_is_checked_too(fake3cx):
    form = urllib.parse.urlencode(
        {"client_id": fake3cx.client_id, "client_secret": fake3cx.client_secret}
    ).encode()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(fake3cx.url + "/connect/token", data=form))
    caught(fake3cx, "'grant_type' is a required property")


def test_a_v18_post_without_the_xsrf_header_is_caught(fake3cx_v18):
    login = urllib.request.Request(
        fake3cx_v18.url + "/api/login",
        method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"Username": "admin", "Password": fake3cx_v18.password}).encode(),
    )
    with urllib.request.urlopen(login) as answer:
        cookies = "; ".join(h.split(";")[0] for h in answer.headers.get_all("Set-Cookie"))
    status, _ = call(fake3cx_v18, "POST", "/api/activeCalls/drop", {"Id": 501}, headers={"Cookie": cookies})
    assert status == 400 and 501 in fake3cx_v18.active_calls
    caught(fake3cx_v18, "without the XSRF-TOKEN value")


# -- the fake behaves as 3CX does ----------------------------------------------------------------
def test_every_seeded_collection_conforms_to_the_description(fake3cx):
    bearer = token(fake3cx)
    for path in [
        "/Users?$expand=Groups($expand=Rights)",
        "/Groups?$expand=Members",
        "/OutboundRules",
        "/OutboundRules/Pbx.GetEmergencyOutboundRules()",
        "/ActiveCalls",
        "/Queues",
        "/CallHistoryView",
        "/Groups(2)/Members",
        "/Users(Number='101')",
        "/ReportQueuePerformanceOverview/Pbx.GetQueuePerformanceOverviewData(periodFrom=2025-03-01T00:00:00Z,"
        "periodTo=2025-04-01T00:00:00Z,queueDns='',waitInterval='0:00:00')",
    ]:
        status, answer = call(
            fake3cx, "GET", "/xapi/v1" + urllib.parse.quote(path, safe="/?=&$,()'"), bearer=bearer
        )
        assert status == 200 and answer, path
    assert fake3cx.violations == []


def test_select_and_expand_shape_the_answer(fake3cx):
    status, answer = call(
        fake3cx, "GET", "/xapi/v1/Users(12)?$select=Id,Number&$expand=Groups($select=GroupId)"
    )
    assert answer == {"Id": 12, "Number": "101", "Groups": [{"GroupId": 2}, {"GroupId": 3}]}
    # Rights is a navigation property of UserGroup: present only when expanded
    _, answer = call(
        fake3cx, "GET", "/xapi/v1/Users(12)?$select=Id&$expand=Groups($select=Name;$expand=Rights)"
    )
    assert answer["Groups"][1] == {"Name": "Support", "Rights": {"RoleName": "group_admins"}}


def test_top_skip_and_count_page_a_collection(fake3cx):
    _, answer = call(
        fake3cx, "GET", "/xapi/v1/Users?$select=Number&$orderby=Number%20desc&$top=2&$skip=1&$count=true"
    )
    assert answer["@odata.count"] == 4 and [u["Number"] for u in answer["value"]] == ["102", "101"]


@pytest.mark.parametrize(
    ("expression", "numbers"),
    [
        ("Number eq '101'", ["101"]),
        ("Id eq 11 or Id eq 13", ["100", "102"]),
        ("LastName eq 'O''Brien' and Enabled eq true", ["101"]),
        ("not (Number eq '100') and (Internal eq true or Enabled eq false)", ["102", "103"]),
        ("startswith(DisplayName,'Ca') or contains(tolower(EmailAddress),'dan')", ["102", "103"]),
        ("Number eq '100'' or Number ne '''", []),
    ],
)
def test_filter_expressions(fake3cx, expression, numbers):
    rows = sorted(fake3cx.users.values(), key=lambda u: u["Id"])
    keep = FilterParser(expression, set(rows[0])).parse()
    assert [u["Number"] for u in rows if keep(u)] == numbers


def test_a_filter_on_times_compares_instants(fake3cx):
    query = urllib.parse.quote(
        "SegmentStartTime ge 2025-03-10T09:01:00Z and date(SegmentStartTime) eq 2025-03-10"
    )
    _, answer = call(fake3cx, "GET", f"/xapi/v1/CallHistoryView?$filter={query}&$select=SegmentId")
    assert answer["value"] == [{"SegmentId": 2}]


@pytest.mark.parametrize("expression", ["Number eq", "Number eq '1", "Number eq '1' and", "(Number eq '1'"])
def test_a_malformed_filter_is_an_error(expression):
    with pytest.raises(ODataError):
        FilterParser(expression, {"Number"}).parse()


def test_top_level_splitting_keeps_nested_options_together():
    assert split_top_level("Id,Groups($select=A,B;$expand=Rights($select=C)),Number") == [
        "Id",
        "Groups($select=A,B;$expand=Rights($select=C))",
        "Number",
    ]
    assert parse_expand("Groups($select=A,B;$expand=Rights)") == [
        ("Groups", {"$select": "A,B", "$expand": "Rights"})
    ]


def test_patch_changes_only_the_given_properties_and_answers_204_without_body(fake3cx):
    before = fake3cx.user("100")
    status, body = call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"FirstName": "Anna"})
    after = fake3cx.user("100")
    assert (status, body) == (204, None)
    assert {k for k in before if before[k] != after[k]} == {"FirstName"}


def test_the_number_of_a_user_cannot_change(fake3cx):
    status, answer = call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"Number": "200"})
    assert status == 400 and fake3cx.user("100")["Number"] == "100"
    status, _ = call(fake3cx, "PATCH", "/xapi/v1/Users(11)", {"Number": "100"})
    assert status == 204


def test_patch_groups_members_replaces_the_member_list(fake3cx):
    status, _ = call(
        fake3cx,
        "PATCH",
        "/xapi/v1/Groups(3)",
        {"Members": [{"Number": "100", "Rights": {"RoleName": "users"}}]},
    )
    assert status == 204
    assert fake3cx.memberships("100") == [("Sales", "users"), ("Support", "users")]
    assert fake3cx.memberships("101") == [("Sales", "users")] and fake3cx.memberships("102") == []


def test_a_second_token_invalidates_the_first(fake3cx):
    first = token(fake3cx)
    assert call(fake3cx, "GET", "/xapi/v1/ActiveCalls", bearer=first)[0] == 200
    second = token(fake3cx)
    assert call(fake3cx, "GET", "/xapi/v1/ActiveCalls", bearer=first)[0] == 401
    assert call(fake3cx, "GET", "/xapi/v1/ActiveCalls", bearer=second)[0] == 200


def test_a_token_expires_with_the_clock(fake3cx, clock):
    bearer = token(fake3cx)
    clock.advance(fake3cx.token_lifetime)
    assert call(fake3cx, "GET", "/xapi/v1/ActiveCalls", bearer=bearer)[0] == 401
