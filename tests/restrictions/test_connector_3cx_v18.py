"""R8.11: the 3CX v18 connector (the management API its web console uses) against the fake."""

import json
import logging
import traceback
from datetime import UTC, datetime

import pytest

from restrictions.connectors import (
    NotSupported,
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
from restrictions.connectors.threecx_v18 import ThreeCXv18Connector
from tests.restrictions.fake3cx import Fake3CX


def edits(fake):
    return [
        r.path
        for r in fake.requests("v18", "POST")
        if r.path.startswith(("/api/ExtensionList/set", "/api/edit"))
    ]


def test_connector_for_chooses_v18_by_type(v18):
    assert isinstance(v18, ThreeCXv18Connector)
    assert v18.close_by == "disable" and v18.capabilities == {
        "extensions",
        "close",
        "active_calls",
        "drop_call",
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"close_by": "group"}, "'close_by' must be one of 'disable', not 'group'"),
        ({"password": None}, "'password' is required"),
        ({"client_id": "x"}, "unknown key 'client_id'"),
    ],
)
def test_config_problems_of_v18(v18_config, change, problem):
    config = {key: value for key, value in {**v18_config, **change}.items() if value is not None}
    assert any(p.startswith(problem) for p in config_problems(config))


def test_extensions_are_listed_after_one_sign_in(fake3cx_v18, v18):
    # when the extensions are read twice
    v18.extensions()
    extensions = {e.number: e for e in v18.extensions()}
    # then they come with their names, and the connector signed in once, sending the cookies
    # and the XSRF-TOKEN value back (the fake records a violation otherwise)
    assert (extensions["101"].first_name, extensions["101"].last_name) == ("Bob", "O'Brien")
    assert extensions["102"].enabled is False and extensions["100"].email == "ann@example.com"
    assert v18.client.logins == 1
    assert all(
        "cookie" in r.headers and "x-xsrf-token" in r.headers
        for r in fake3cx_v18.requests("v18")
        if r.path != "/api/login"
    )


def test_close_then_reopen_restores_exactly_the_previous_state(fake3cx_v18, v18):
    # given Bob, enabled
    before, everything_before = fake3cx_v18.user("101"), fake3cx_v18.snapshot()
    # when he is closed
    state = json.loads(json.dumps(v18.close("101")))
    # then he is disabled through one saved edit session
    assert fake3cx_v18.user("101")["Enabled"] is False
    assert edits(fake3cx_v18) == ["/api/ExtensionList/set", "/api/edit/update", "/api/edit/save"]
    assert state["before"] == {"Disabled": False} and state["changed"] is True
    # when he is reopened
    result = v18.reopen("101", state)
    # then all is as before and no edit session is left open
    assert result.status == ReopenStatus.RESTORED
    assert fake3cx_v18.user("101") == before and fake3cx_v18.snapshot() == everything_before
    assert fake3cx_v18.open_edit_sessions == 0


def test_reopen_writes_nothing_when_an_administrator_enabled_it_already(fake3cx_v18, v18):
    state = v18.close("100")
    fake3cx_v18.admin_change("100", Enabled=True)
    saves = edits(fake3cx_v18).count("/api/edit/save")
    result = v18.reopen("100", state)
    assert result.status == ReopenStatus.ALREADY
    assert edits(fake3cx_v18).count("/api/edit/save") == saves and fake3cx_v18.open_edit_sessions == 0


def test_reopen_of_an_extension_deleted_meanwhile_says_it_is_gone(fake3cx_v18, v18):
    state = v18.close("100")
    del fake3cx_v18.users[11]
    assert v18.reopen("100", state).status == ReopenStatus.GONE


def test_closing_an_extension_disabled_already_changes_nothing(fake3cx_v18, v18):
    state = v18.close("102")
    assert state["changed"] is False and "/api/edit/save" not in edits(fake3cx_v18)
    assert v18.reopen("102", state).status == ReopenStatus.ALREADY
    assert fake3cx_v18.user("102")["Enabled"] is False and fake3cx_v18.open_edit_sessions == 0


def test_an_unknown_extension_is_refused(v18):
    with pytest.raises(UnknownExtension):
        v18.close("999")


def test_a_failure_inside_the_edit_session_cancels_it(fake3cx_v18, v18):
    fake3cx_v18.fail("status", status=500, path="/api/edit/save")
    with pytest.raises(PbxServerError):
        v18.close("100")
    assert fake3cx_v18.open_edit_sessions == 0 and fake3cx_v18.user("100")["Enabled"] is True


def test_an_expired_session_signs_in_again_once(fake3cx_v18, v18):
    v18.extensions()
    fake3cx_v18.expire_sessions()
    assert len(v18.active_calls()) == 2
    assert v18.client.logins == 2
    assert [r.status for r in fake3cx_v18.requests("v18")[-3:]] == [401, 200, 200]


def test_a_wrong_password_is_refused_and_never_repeated(fake3cx_v18, v18_config):
    connector = connector_for({**v18_config, "password": "not-the-Password-1"})
    with pytest.raises(PbxAuthRejected, match="check username and password") as raised:
        connector.extensions()
    assert not raised.value.retryable and "not-the-Password-1" not in str(raised.value)


def test_active_calls_and_drop(fake3cx_v18, v18):
    calls = {c.id: c for c in v18.active_calls()}
    assert calls["502"].established_at == datetime(2025, 3, 10, 7, 5, tzinfo=UTC)
    assert v18.drop_call("502") is True and v18.drop_call("502") is False
    assert list(fake3cx_v18.active_calls) == [501]


def test_queue_calls_and_legs_are_not_offered_by_v18(v18):
    period = Period(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    with pytest.raises(NotSupported):
        v18.queue_calls(period)
    with pytest.raises(NotSupported):
        v18.call_legs(period)


def test_a_pbx_that_is_down_is_unavailable_not_refused(fake3cx_v18, v18):
    fake3cx_v18.fail("down")
    with pytest.raises(PbxUnreachable) as raised:
        v18.extensions()
    assert isinstance(raised.value, PbxUnavailable) and not isinstance(raised.value, PbxRefused)


def test_a_slow_pbx_times_out(fake3cx_v18, v18_config):
    connector = connector_for({**v18_config, "timeout": 0.3})
    fake3cx_v18.fail("slow", delay=1.0, times=1)
    with pytest.raises(PbxTimeout):
        connector.extensions()


@pytest.mark.parametrize(
    ("status", "error"), [(500, PbxServerError), (503, PbxServerError), (404, PbxRefused), (400, PbxRefused)]
)
def test_http_errors_are_classified(fake3cx_v18, v18, status, error):
    fake3cx_v18.fail("status", status=status, path="/api/ExtensionList")
    with pytest.raises(error) as raised:
        v18.extensions()
    assert raised.value.retryable is (status >= 500)


def test_a_login_failing_with_500_is_unavailable(fake3cx_v18, v18):
    fake3cx_v18.fail("status", status=500, path="/api/login")
    with pytest.raises(PbxUnavailable):
        v18.extensions()


def test_password_and_session_are_never_in_logs_or_exceptions(fake3cx_v18, v18_config, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connector_for(v18_config)
    connector.reopen("101", connector.close("101"))
    fake3cx_v18.expire_sessions()
    connector.extensions()
    fake3cx_v18.fail("status", status=500, times=1)
    errors = []
    for action in (
        connector.extensions,
        connector_for({**v18_config, "password": "Wrong-pass-99"}).extensions,
    ):
        try:
            action()
        except Exception as error:  # noqa: BLE001 - inspected below
            errors.append(error)
    cookies = [
        v
        for r in fake3cx_v18.requests("v18")
        for c in r.headers.get("cookie", "").split("; ")
        for v in [c.partition("=")[2]]
        if v
    ]
    assert len(errors) == 2 and cookies
    texts = [caplog.text, repr(connector), json.dumps(connector.config)]
    texts += [t for e in errors for t in (str(e), repr(e), "".join(traceback.format_exception(e)))]
    for secret in [fake3cx_v18.password, "Wrong-pass-99", *cookies]:
        assert not any(secret in text for text in texts), secret


# -- TLS (the transport both families share) ------------------------------------------------------
@pytest.fixture
def tls_pbx(tmp_path, clock):
    """The fake over HTTPS with a self-signed certificate for 127.0.0.1."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pbx.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "pbx.pem", tmp_path / "pbx.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    fake = Fake3CX(None, clock=clock).start(tls=(str(certfile), str(keyfile)))
    yield fake, str(certfile)
    fake.stop()


def tls_config(fake, **more):
    return {
        "type": "3cx-v18",
        "url": fake.url,
        "username": fake.username,
        "password": fake.password,
        "timeout": 2,
        **more,
    }


def test_a_certificate_the_system_does_not_trust_is_refused_with_advice(tls_pbx):
    fake, _ = tls_pbx
    with pytest.raises(PbxRefused, match="TLS certificate is not trusted.*set ca_file") as raised:
        connector_for(tls_config(fake)).extensions()
    assert not raised.value.retryable


def test_the_pbx_certificate_is_trusted_through_ca_file(tls_pbx):
    fake, certfile = tls_pbx
    assert len(connector_for(tls_config(fake, ca_file=certfile)).extensions()) == 4


def test_verify_tls_false_accepts_any_certificate(tls_pbx):
    fake, _ = tls_pbx
    assert len(connector_for(tls_config(fake, verify_tls=False)).extensions()) == 4
