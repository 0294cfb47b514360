"""R2.2: the FTP sources over FTPS (explicit TLS, "AUTH TLS") against real peers on
localhost: our server with ftplib.FTP_TLS and lftp as the uploading PBX, our client against
a pyftpdlib TLS server standing in for the PBX. The certificate is made by each test."""
import datetime
import ftplib
import io
import ipaddress
import logging
import re
import shutil
import ssl
import time
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyftpdlib.handlers import TLS_FTPHandler

from observers.sources.ftp import FtpClientSource, FtpServerSource
from tariscope.siteconfig.checks import site_config_validate
from tests.conftest import needs, wait_for
from tests.observers.helpers import Deliveries, Events, running, serving
from tests.observers.test_ftp_sources import (
    CUCM_CDR,
    CUCM_NAME,
    PASSWORD,
    USER,
    PbxFtpServer,
    client_source,
    files_in,
    lftp_put,
    server_source,
)
from tests.tariscope.test_siteconfig import minimal


def make_certificate(folder, name="server"):
    """A self-signed certificate for 127.0.0.1 (an IP subjectAltName, which hostname
    checking needs for an address) and its key, as PEM files in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt.pem", folder / f"{name}.key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return SimpleNamespace(cert=cert_path, key=key_path)


@pytest.fixture
def cert(tmp_path):
    return make_certificate(tmp_path)


def tls_server_source(tmp_path, cert, **settings):
    return server_source(tmp_path, tls=True, certfile=str(cert.cert), keyfile=str(cert.key),
                         **settings)


def tls_connect(source, cert) -> ftplib.FTP_TLS:
    """Connect as the PBX's FTPS client, trusting only the test certificate."""
    context = ssl.create_default_context(cafile=str(cert.cert))
    ftp = ftplib.FTP_TLS(context=context)  # noqa: S321 -- FTPS
    ftp.connect(*source.address, timeout=2)
    return ftp


def tls_login(source, cert) -> ftplib.FTP_TLS:
    """Log in as the PBX over FTPS, with PROT P."""
    ftp = tls_connect(source, cert)
    ftp.login(USER, PASSWORD)  # AUTH TLS first
    ftp.prot_p()
    return ftp


# --- our FTP server over TLS ---------------------------------------------------------------


def test_ftps_upload_is_delivered_once_and_moved_to_done(tmp_path, cert):
    # given our FTP server with TLS on
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver)
    with serving(source):
        # when CUCM logs in over TLS and uploads a CDR file on a protected data connection
        ftp = tls_login(source, cert)
        ftp.storbinary(f"STOR {CUCM_NAME}", io.BytesIO(CUCM_CDR))
        # then it is delivered once, with its name, and kept in done/
        wait_for(lambda: deliver.received, timeout=2)
        ftp.quit()
        time.sleep(0.3)  # a few sweeps pass
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert files_in(source.home) == [f"done/{CUCM_NAME}"]


def test_plain_ftp_login_is_refused_when_tls_is_required(tmp_path, cert):
    # given our FTP server with TLS on (required by default)
    source = tls_server_source(tmp_path, cert)
    with serving(source):
        ftp = ftplib.FTP()  # noqa: S321 -- the client that must be turned away
        ftp.connect(*source.address, timeout=2)
        # when a client sends the password without AUTH TLS, then it is refused
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the control channel"):
            ftp.login(USER, PASSWORD)
        ftp.close()


def test_data_connection_without_prot_p_is_refused_when_tls_is_required(tmp_path, cert):
    # given a PBX logged in over TLS that did not protect the data channel
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver)
    with serving(source):
        ftp = tls_connect(source, cert)
        ftp.login(USER, PASSWORD)
        # when it uploads on a clear data connection, then that is refused
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the data channel"):
            ftp.storbinary(f"STOR {CUCM_NAME}", io.BytesIO(CUCM_CDR))
        ftp.quit()
    assert deliver.received == []
    assert files_in(source.home) == []


def test_plain_ftp_is_still_accepted_when_tls_is_optional(tmp_path, cert):
    # given our FTP server with TLS on but not required
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver, tls_required=False)
    with serving(source):
        # when a PBX without TLS uploads
        ftp = ftplib.FTP()  # noqa: S321 -- an old PBX without TLS
        ftp.connect(*source.address, timeout=2)
        ftp.login(USER, PASSWORD)
        ftp.storbinary(f"STOR {CUCM_NAME}", io.BytesIO(CUCM_CDR))
        # then it is delivered as over TLS
        wait_for(lambda: deliver.received, timeout=2)
        ftp.quit()
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]


def test_lftp_ftps_upload_is_delivered_once(tmp_path, cert):
    needs(shutil.which("lftp") is not None, "needs lftp (package lftp)")
    # given our FTP server with TLS required and a CDR file on the "PBX"
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver)
    local = tmp_path / CUCM_NAME
    local.write_bytes(CUCM_CDR)
    with serving(source):
        # when lftp uploads it over TLS, control and data protected
        lftp_put(source, local, "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
                                "set ssl:verify-certificate no")
        # then it is delivered once and moved to done/
        wait_for(lambda: deliver.received, timeout=2)
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert files_in(source.home) == [f"done/{CUCM_NAME}"]


def test_oversize_ftps_upload_is_refused_and_deleted(tmp_path, cert, caplog):
    # given an FTPS server with a 1 KiB file limit
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver, max_file_bytes=1024)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = tls_login(source, cert)
        # when a 256 KiB file is uploaded over TLS
        with pytest.raises((ftplib.error_perm, ftplib.error_temp, OSError)):
            ftp.storbinary("STOR big.csv", io.BytesIO(b"x" * 256 * 1024))
        wait_for(lambda: any("over the 1024-byte limit" in r.getMessage()
                             for r in caplog.records), timeout=2)
        ftp.close()
    # then it was cut off, nothing delivered, no trace left
    assert deliver.received == []
    assert files_in(source.home) == []


def test_ftps_session_keeps_the_upload_rules(tmp_path, cert, caplog):
    # given our FTPS server
    deliver = Deliveries()
    source = tls_server_source(tmp_path, cert, deliver=deliver)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = tls_login(source, cert)
        # when the PBX uploads a hidden name, outside its home, and tries to download
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.storbinary("STOR .hidden", io.BytesIO(b"x"))
        ftp.storbinary("STOR ../../escape.csv", io.BytesIO(b"1,2\n"))
        wait_for(lambda: deliver.received, timeout=2)
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.retrbinary("RETR done/escape.csv", lambda chunk: None)
        ftp.quit()
    # then the hidden name was refused and the other upload stayed inside the home
    assert deliver.received == [(b"1,2\n", "escape.csv")]
    assert files_in(source.home) == ["done/escape.csv"]
    assert not (tmp_path / "escape.csv").exists()
    assert any("hidden name" in r.getMessage() for r in caplog.records)


def test_wrong_password_over_tls_is_refused_and_logged(tmp_path, cert, caplog):
    # given our FTPS server
    source = tls_server_source(tmp_path, cert)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = tls_connect(source, cert)
        # when a client logs in over TLS with a wrong password, then it is refused
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login(USER, "guess")
        ftp.close()
    # and the failure is in the profile's log
    assert any("login of 'cucm'" in r.getMessage() and "failed" in r.getMessage()
               for r in caplog.records)


def test_connect_and_disconnect_of_an_ftps_session_are_notified(tmp_path, cert):
    # given our FTPS server
    events = Events()
    source = tls_server_source(tmp_path, cert, notify=events)
    with serving(source):
        # when a PBX logs in over TLS and out
        tls_login(source, cert).quit()
        # then the session was announced and its end too
        wait_for(lambda: events.names == ["connected", "disconnected"], timeout=2)


def test_key_in_the_certificate_file_is_enough(tmp_path, cert):
    # given one PEM file holding the certificate and its key, and no keyfile
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert.cert.read_bytes() + cert.key.read_bytes())
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver, tls=True, certfile=str(combined))
    # when a PBX uploads over TLS, then it is delivered
    with serving(source):
        ftp = tls_login(source, cert)
        ftp.storbinary(f"STOR {CUCM_NAME}", io.BytesIO(CUCM_CDR))
        wait_for(lambda: deliver.received, timeout=2)
        ftp.quit()
    assert deliver.names == [CUCM_NAME]


@pytest.mark.parametrize(("given", "message"), [
    ({}, "settings.tls needs settings.certfile"),
    ({"certfile": "{missing}"}, "settings.certfile '{missing}' cannot be read"),
    ({"certfile": "{cert}", "keyfile": "{missing}"}, "settings.keyfile '{missing}' cannot be read"),
    ({"certfile": "{folder}"}, "settings.certfile '{folder}' cannot be read"),
    ({"certfile": "{key}", "keyfile": "{key}"}, "settings.certfile '{key}' holds no PEM certificate"),
    ({"certfile": "{cert}", "keyfile": "{other_key}"},
     "settings.keyfile '{other_key}' holds no PEM private key of the certificate"),
    ({"certfile": "{cert}"}, "settings.certfile '{cert}' holds no PEM private key"),
    ({"certfile": "{cert}", "keyfile": "{key}", "tls_required": "no"},
     "settings.tls_required must be true or false"),
])
def test_bad_tls_settings_stop_the_server_source_at_start(tmp_path, cert, given, message):
    # given TLS settings naming a missing, wrong or mismatched file
    other = make_certificate(tmp_path, "other")
    paths = {"missing": tmp_path / "nowhere.pem", "cert": cert.cert, "key": cert.key,
             "other_key": other.key, "folder": tmp_path}
    keys = {key: value.format(**paths) if isinstance(value, str) else value
            for key, value in given.items()}
    # when the source is built, then the error names the key
    with pytest.raises(ValueError, match=re.escape(message.format(**paths))):
        server_source(tmp_path, tls=True, **keys)


# --- our FTP client against a PBX's FTPS server ----------------------------------------------


@pytest.fixture
def tls_pbx(tmp_path, cert):
    """The PBX's FTP server, requiring TLS before login and on every data connection."""
    root = tmp_path / "pbx"
    root.mkdir()
    handler = type("TlsPbxHandler", (TLS_FTPHandler,), {
        "certfile": str(cert.cert), "keyfile": str(cert.key),
        "tls_control_required": True, "tls_data_required": True})
    server = PbxFtpServer(root, handler=handler)
    server.start()
    yield server
    server.stop()


def test_ftps_client_downloads_over_tls_and_deletes(tmp_path, cert, tls_pbx):
    # given a CDR file on the PBX's FTPS server, whose certificate we trust through cafile
    (tls_pbx.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, tls_pbx, deliver=deliver, tls=True, cafile=str(cert.cert))
    # when the client polls (the server refuses listings and downloads without PROT P)
    with running(source):
        wait_for(lambda: deliver.received, timeout=2)
        wait_for(lambda: not any(tls_pbx.root.iterdir()), timeout=2)
    # then the file was delivered once and deleted on the server
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]


def test_ftps_client_refuses_an_untrusted_certificate(tmp_path, tls_pbx, caplog):
    # given the PBX's self-signed certificate, not given to the client
    (tls_pbx.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, tls_pbx, deliver=deliver, tls=True)
    # when the client polls
    with caplog.at_level(logging.ERROR, logger="test.observer.pbx"), running(source):
        wait_for(lambda: sum("not trusted" in r.getMessage() for r in caplog.records) >= 2, timeout=2)
        assert not source.ready.is_set()
    # then it said why, downloaded nothing and left the file on the server
    message = next(r.getMessage() for r in caplog.records if "not trusted" in r.getMessage())
    assert f"TLS certificate of 127.0.0.1:{tls_pbx.port}" in message
    assert "self-signed certificate" in message
    assert "cafile" in message
    assert deliver.received == []
    assert (tls_pbx.root / CUCM_NAME).read_bytes() == CUCM_CDR


def test_ftps_client_checks_the_host_name(tmp_path, cert, tls_pbx):
    # given a trusted certificate for 127.0.0.1 and a client configured with another name
    (tls_pbx.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, tls_pbx, deliver=deliver, tls=True, cafile=str(cert.cert),
                           host="localhost")
    # when it polls, then the certificate is refused for that name and nothing is taken
    with pytest.raises(ConnectionError, match="not trusted.*localhost"):
        source.poll()
    assert deliver.received == []
    assert (tls_pbx.root / CUCM_NAME).exists()


def test_ftps_client_without_verification_downloads(tmp_path, tls_pbx, caplog):
    # given certificate checking switched off
    (tls_pbx.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    with caplog.at_level(logging.WARNING, logger="test.observer.pbx"):
        source = client_source(tmp_path, tls_pbx, deliver=deliver, tls=True, tls_verify=False)
    # when it polls twice (a file is taken once seen unchanged)
    counts = [source.poll() for _ in range(2)]
    # then the file came over TLS, and the missing check was logged
    assert counts == [0, 1]
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert any("without checking its certificate" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("given", "message"), [
    ({"tls": True, "cafile": "{missing}"}, "settings.cafile '{missing}' cannot be read"),
    ({"tls": True, "cafile": "{notpem}"}, "settings.cafile '{notpem}' holds no PEM certificate"),
    ({"tls": "yes"}, "settings.tls must be true or false"),
    ({"tls": True, "tls_verify": 0}, "settings.tls_verify must be true or false"),
])
def test_bad_tls_settings_stop_the_client_source_at_start(tmp_path, given, message):
    # given a missing or wrong cafile, or a flag that is not a boolean
    notpem = tmp_path / "notpem.pem"
    notpem.write_text("not a certificate\n")
    paths = {"missing": tmp_path / "nowhere.pem", "notpem": notpem}
    keys = {key: value.format(**paths) if isinstance(value, str) else value
            for key, value in given.items()}
    config = {"host": "127.0.0.1", "user": "pbx", "password": "pbxpass",
              "state_dir": str(tmp_path), **keys}
    # when the source is built, then the error names the key
    with pytest.raises(ValueError, match=re.escape(message.format(**paths))):
        FtpClientSource(name="pbx", settings=config, deliver=Deliveries(),
                        log=logging.getLogger("test.observer.pbx"), notify=lambda *a, **k: None)


def test_server_source_without_tls_ignores_certificate_keys(tmp_path):
    # given TLS off and certificate keys naming no file (say, staged for later)
    source = FtpServerSource(
        name="cucm", settings={"user": USER, "password": PASSWORD, "home": str(tmp_path),
                               "certfile": str(tmp_path / "later.pem")},
        deliver=Deliveries(), log=logging.getLogger("test.observer.cucm"),
        notify=lambda *a, **k: None)
    # then it is a plain FTP source
    assert source.tls is False


# --- the keys in the site configuration file ---------------------------------------------------

SERVER_KEYS = {"source": "ftp_server", "user": USER, "password": PASSWORD}
CLIENT_KEYS = {"source": "ftp_client", "host": "pbx.example", "user": "pbx", "password": "x"}


@pytest.mark.parametrize(("keys", "problem"), [
    ({**SERVER_KEYS, "tls": True, "certfile": "certs/ftp.crt.pem", "keyfile": "certs/ftp.key.pem",
      "tls_required": False}, None),
    ({**CLIENT_KEYS, "tls": True, "tls_verify": True, "cafile": "certs/pbx.pem"}, None),
    ({**SERVER_KEYS, "tls": True, "tls_verify": False}, "observer.tls_verify"),
    ({**CLIENT_KEYS, "tls": True, "certfile": "certs/ftp.crt.pem"}, "observer.certfile"),
    ({**SERVER_KEYS, "tls": "yes"}, "observer.tls"),
    ({**CLIENT_KEYS, "cafile": ""}, "observer.cafile"),
])
def test_site_configuration_checks_the_ftps_keys(keys, problem):
    # given a site configuration whose device has an FTP observer with FTPS keys
    data = minimal()
    observer = data["nodes"][0]["devices"][0]["observer"]
    del observer["path"]
    observer.update(keys)
    # when it is validated
    problems = site_config_validate(data)
    # then the keys of its source are accepted, the others (or bad values) reported
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert f"{problem}:" in problems[0]
