"""R2.2 FTP sources: `FtpServerSource` (the PBX uploads files to us; CUCM works this way)
and `FtpClientSource` (we download files from the PBX's FTP server).

Both follow the source interface of observers/sources/__init__.py: built with
`name, settings, deliver, log, notify`, run with `run(stop)`, `ready` set once serving.
Both speak plain FTP, or FTPS with explicit TLS ("AUTH TLS", RFC 4217) when `tls` is set.
"""
import contextlib
import fnmatch
import ftplib
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
import posixpath
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from OpenSSL import SSL
from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from observers.backoff import backoff
from observers.sources.folder import DONE, FAILED, move_into
from observers.sources.keys import (
    COUNT,
    FLAG,
    HOST,
    NAME,
    PARSER,
    PORT,
    SECONDS,
    TEXT,
    Setting,
    schema_list,
    settings_with_defaults,
)

logger = logging.getLogger(__name__)

DONE_SUFFIX = ".done"
DEFAULT_BANNER = "Tariscope FTP server ready."

# Keys both FTP sources take.
_USER = Setting("user", NAME, "the FTP user", required=True)
_PASSWORD = Setting("password", {"type": "string", "maxLength": 200}, "the FTP user's password",
                    required=True, secret=True)
_PORT = Setting("port", PORT, "the FTP control port", default=21)
_TLS = Setting("tls", FLAG, "FTPS: explicit TLS (AUTH TLS, RFC 4217)", default=False)
_MAX_FILE_BYTES = Setting("max_file_bytes", COUNT, "a larger file is not taken",
                          default=512 * 1024 * 1024)


def _required(settings: dict, key: str, source: str, name: str) -> str:
    value = settings.get(key)
    if value in (None, ""):
        raise ValueError(f"observer {name}: an {source} source needs settings.{key}")
    return str(value)


def _flag(settings: dict, key: str, name: str) -> bool:
    """A true/false key of `settings` (settings_with_defaults)."""
    value = settings[key]
    if not isinstance(value, bool):
        raise ValueError(f"observer {name}: settings.{key} must be true or false, not {value!r}")
    return value


def _readable(settings: dict, key: str, name: str) -> str:
    """The path in `settings.key`, checked now so that a missing certificate stops the
    collector at start with the key named, not at the first TLS handshake."""
    path = str(settings[key])
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"observer {name}: settings.{key} {path!r} cannot be read: "
                         f"{exc.strerror or exc}") from None
    return path


def _openssl_reason(exc: SSL.Error) -> str:
    reasons = [str(part[-1]) for part in (exc.args[0] if exc.args else [])
               if isinstance(part, tuple) and part]
    return "; ".join(reasons) or str(exc)


def _server_tls_context(settings: dict, name: str) -> SSL.Context:
    """The TLS context of an FTPS server source: `certfile` (PEM: the certificate, then any
    intermediate certificates) and `keyfile` (PEM private key; default: in `certfile`)."""
    if settings.get("certfile") in (None, ""):
        raise ValueError(f"observer {name}: settings.tls needs settings.certfile "
                         "(the server's certificate, PEM)")
    certfile = _readable(settings, "certfile", name)
    key = "keyfile" if settings.get("keyfile") else "certfile"
    keyfile = _readable(settings, key, name)
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_options(TLS_FTPHandler.ssl_options)  # no SSLv2/v3, no compression
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    try:
        context.use_certificate_chain_file(certfile)
    except SSL.Error as exc:
        raise ValueError(f"observer {name}: settings.certfile {certfile!r} holds no PEM "
                         f"certificate: {_openssl_reason(exc)}") from None
    try:
        context.use_privatekey_file(keyfile)
        context.check_privatekey()
    except SSL.Error as exc:
        raise ValueError(f"observer {name}: settings.{key} {keyfile!r} holds no PEM private key "
                         f"of the certificate in settings.certfile: {_openssl_reason(exc)}") from None
    return context


def _data_dir(settings: dict) -> Path:
    """`settings.data_dir`, else TARISCOPE's data dir; read only when needed, so the sources
    run (and are tested) without Django when the folders are given explicitly."""
    if settings.get("data_dir"):
        return Path(settings["data_dir"])
    from django.conf import settings as django_settings

    return Path(django_settings.DATA_DIR)


def _folder_name(name: str) -> str:
    """The profile name as one path component (it names the default home and state file)."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise ValueError(f"observer {name!r}: the name cannot be used as a folder name")
    return name


def _port_range(value) -> list[int] | None:
    """"60000-60100" (or a list of ports) as the list pyftpdlib expects."""
    if not value:
        return None
    if isinstance(value, list | tuple):
        return [int(port) for port in value]
    first, _, last = str(value).partition("-")
    ports = list(range(int(first), int(last or first) + 1))
    if not ports or ports[0] < 1 or ports[-1] > 65535:
        raise ValueError(f"passive_ports {value!r}: expected a range such as 60000-60100")
    return ports


def _hidden(name: str) -> bool:
    return name.startswith(".")


# --- FTP server ----------------------------------------------------------------------------


class _HomeFilesystem(AbstractedFS):
    """The FTP user's view of the home: the source's own `done/` and `failed/`, where the
    user may do nothing anyway, are not listed in it."""

    def listdir(self, path):
        names = super().listdir(path)
        if os.path.realpath(path) == os.path.realpath(self.root):
            names = [name for name in names if name not in (DONE, FAILED)]
        return names


class _Server(FTPServer):
    """pyftpdlib's server, whose per-address limit does not apply to the PBX's addresses
    (`unlimited`): a PBX behind NAT may open many sessions."""

    unlimited: Callable[[str], bool] = staticmethod(lambda ip: False)

    def handle_accepted(self, sock, addr):
        if not self.unlimited(addr[0]):
            return super().handle_accepted(sock, addr)
        # The loop is one thread: the limit is lifted for this one connection only.
        limit, self.max_cons_per_ip = self.max_cons_per_ip, 0
        try:
            return super().handle_accepted(sock, addr)
        finally:
            self.max_cons_per_ip = limit


class _Authorizer(DummyAuthorizer):
    """The one profile user; the password compared in constant time."""

    def validate_authentication(self, username, password, handler):
        entry = self.user_table.get(username)
        if entry is None or not hmac.compare_digest(entry["pwd"].encode(), password.encode()):
            raise AuthenticationFailed("Authentication failed.")


class _LimitedDTPHandler(DTPHandler):
    """pyftpdlib has no per-file size limit: an upload is cut off with 552 (RFC 959:
    exceeded storage allocation) as soon as it passes `max_file_bytes`; the partial file
    is then deleted by `on_incomplete_file_received`."""

    def handle_read(self):
        super().handle_read()
        limit = self.cmd_channel.source.max_file_bytes
        if self.receive and not self._closed and self.tot_bytes_received > limit:
            self.cmd_channel.too_big.add(self.file_obj.name)
            self.transfer_finished = False
            self._resp = (f"552 Upload exceeds the {limit}-byte file limit; transfer aborted.",
                          logging.getLogger("pyftpdlib").warning)
            self.close()

    # DTPHandler binds this alias to its own handle_read: rebind it to the override.
    handle_read_event = handle_read


def _upload_commands(commands: dict) -> dict:
    # STOU makes up a name after the upload has begun, so it could not be kept out of the
    # sweep while it is written; nobody needs it to push CDR files.
    return {cmd: spec for cmd, spec in commands.items() if cmd != "STOU"}


class _UploadHandler(FTPHandler):
    """One FTP session of the uploading PBX. `FtpServerSource` makes a subclass per source
    holding its authorizer and limits, since pyftpdlib configures handlers through class
    attributes and two profiles in one process must not share them."""

    source: "FtpServerSource"
    dtp_handler = _LimitedDTPHandler
    proto_cmds = _upload_commands(FTPHandler.proto_cmds)

    def __init__(self, *args, **kwargs):
        self.uploads: set[str] = set()
        self.too_big: set[str] = set()
        super().__init__(*args, **kwargs)

    @property
    def peer(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"

    def handle(self):
        """A new connection: refused (421) when it would take one of the slots kept for the
        PBX's addresses. (Before login it may idle `login_timeout` seconds: the class's
        `timeout`, which pyftpdlib's first idle timer uses.)"""
        source = self.source
        if source.pbx_networks and source.reserved_slots and not source.is_pbx(self.remote_ip) and (
                len(self.ioloop.socket_map) > self.server.max_cons - source.reserved_slots):
            self.respond_w_warning("421 Too many connections. Service temporarily unavailable.")
            source.log.warning("FTP connection from %s refused: the free slots are kept for "
                               "the PBX", self.peer)
            self.close()
            return
        super().handle()

    def on_connect(self):
        self.source._session_opened(self)

    def on_disconnect(self):
        # A STOR accepted whose data connection never opened leaves an empty file behind
        # and no callback: treat it as incomplete.
        for path in list(self.uploads):
            self.on_incomplete_file_received(path)
        self.source._session_closed(self)

    def on_login(self, username):
        # Logged in: pyftpdlib's usual idle timeout from now on. pyftpdlib re-arms its idle
        # timer with the delay it was made with and has no call to change it: make it anew.
        self.timeout = FTPHandler.timeout
        if self._idler is not None and not self._idler.cancelled:
            self._idler.cancel()
        self._idler = self.ioloop.call_later(self.timeout, self.handle_timeout,
                                             _errback=self.handle_error)
        self.source.log.info("FTP login of %r from %s", username, self.peer)

    def on_login_failed(self, username, password):
        if self.attempted_logins >= self.max_login_attempts:
            self.source.log.warning("FTP login of %r from %s failed; %d failed attempts, "
                                    "disconnected", username, self.peer, self.attempted_logins)
        else:
            self.source.log.warning("FTP login of %r from %s failed", username, self.peer)

    def ftp_STOR(self, file, mode="w"):
        name = os.path.relpath(file, self.fs.root)
        if any(_hidden(part) for part in Path(name).parts):
            self.respond("550 Names starting with '.' are not accepted.")
            self.source.log.warning("upload of %r from %s refused: hidden name", name, self.peer)
            return None
        if os.path.islink(file):
            self.respond("550 Not a regular file.")
            self.source.log.warning("upload of %r from %s refused: a symlink", name, self.peer)
            return None
        if os.path.lexists(file) and not os.path.isdir(file):
            # A file of that name is still waiting to be delivered: overwriting it would
            # lose it. 450 tells the client to try again later.
            self.respond("450 A file of that name is waiting to be processed; try again later.")
            self.source.log.warning("upload of %r from %s refused: %s is still waiting to be "
                                    "processed", name, self.peer, name)
            return None
        self.source.receiving.add(file)
        self.uploads.add(file)
        result = super().ftp_STOR(file, mode)
        if result is None:
            self._upload_ended(file)
        return result

    def ftp_RNTO(self, path):
        if _hidden(os.path.basename(path)):
            self._rnfr = None
            self.respond("550 Names starting with '.' are not accepted.")
            return None
        return super().ftp_RNTO(path)

    def _upload_ended(self, file: str) -> None:
        self.uploads.discard(file)
        self.source.receiving.discard(file)

    def on_file_received(self, file):
        self._upload_ended(file)
        try:
            self.source._take(Path(file), peer=self.peer)
        except Exception as exc:  # say done/ is unwritable: the sweep tries again
            self.source.log.error("taking %s failed: %s", os.path.basename(file), exc)
            logger.exception("observer %s: taking %s failed", self.source.name, file)

    def on_incomplete_file_received(self, file):
        self._upload_ended(file)
        name = os.path.basename(file)
        if file in self.too_big:
            self.too_big.discard(file)
            self.source.log.error("upload of %s from %s refused: over the %d-byte limit; "
                                  "partial file deleted", name, self.peer,
                                  self.source.max_file_bytes)
        else:
            self.source.log.warning("upload of %s from %s incomplete (aborted or "
                                    "disconnected); partial file deleted", name, self.peer)
        with contextlib.suppress(FileNotFoundError):
            os.remove(file)


# FTPS: pyftpdlib's TLS classes combined with the upload rules above, not a copy of them.
# The TLS classes come first in each: their handle_read_event/handle_write_event run the
# TLS handshake and shutdown, then hand over through super() to the upload rules (the size
# limit's handle_read, ftp_STOR, on_file_received, ...), which stay in one place.


class _TlsLimitedDTPHandler(TLS_DTPHandler, _LimitedDTPHandler):
    """A data connection under PROT P, with the per-file size limit."""


class _TlsUploadHandler(TLS_FTPHandler, _UploadHandler):
    """One FTPS session of the uploading PBX: AUTH TLS, PBSZ and PROT added to
    `_UploadHandler`. Whether TLS is required before login and for data connections is
    set per source (`tls_control_required`, `tls_data_required`)."""

    dtp_handler = _TlsLimitedDTPHandler
    proto_cmds = _upload_commands(TLS_FTPHandler.proto_cmds)


class FtpServerSource:
    """R2.2: an FTP server the PBX uploads CDR files to (CUCM's "application billing server").

    Its keys and their defaults: SETTINGS. `data_dir`, which is no profile key (tests give
    it), stands in for the data directory of the default `home`.

    FTPS: `tls` turns on explicit TLS ("AUTH TLS", RFC 4217) with the certificate in
    `certfile` and its private key in `keyfile` (PEM files; the key may also be in
    `certfile`); a missing, unreadable or mismatched file stops the source at construction
    with a ValueError naming the key. `tls_required` (when `tls` is on) refuses USER
    and PASS before AUTH TLS and data connections before "PROT P", so that neither the
    password nor a CDR file crosses the network in clear; false also lets plain FTP
    clients in. TLS 1.2 is the oldest version accepted. Everything else below holds over
    TLS as it does over plain FTP.

    The user is locked into the home with the permissions `PERMISSIONS` = "elwdf": change
    directory, list, store, delete and rename — enough for CUCM, which lists, uploads and
    deletes its test file — and nothing else: no download (RETR), append, mkdir, chmod or
    MFMT, and STOU is switched off. `done/` and `failed/` inside the home have no
    permission at all, so delivered files can be neither read, listed, changed nor replaced.
    Each profile has its own home, port and user, so profiles never see each other's files.
    Names starting with '.' and uploads through or onto symlinks are refused; pyftpdlib
    itself resolves every path inside the home ("../x" is the home's "x").

    A finished upload is delivered at once, in the server's thread (other sessions wait
    meanwhile; their transfers are merely buffered), then moved to `done/`. When `deliver`
    raises, the file stays in the home and a sweep every `sweep_interval` seconds delivers
    what is left there, oldest first — this also takes files that arrived while the
    collector was down. A file already over the limit in the home is moved to `failed/`.
    An upload cut off (ABOR, lost connection, over `max_file_bytes`) is deleted and logged:
    the sender did not get "226" and sends it again. An empty upload carries no calls and is
    left for the sender to delete (CUCM tests a new billing server with an empty file);
    the sweep removes it after `EMPTY_FILE_GRACE` seconds. Clients that upload under a
    temporary name and rename afterwards are not supported: the file is taken as soon as
    its upload completes.

    "connected" and "disconnected" (with `peer="ip:port"`) are notified for each FTP
    session, when its connection opens and closes; sessions still open at stop are
    notified "disconnected" too.
    """

    PERMISSIONS = "elwdf"
    POLL_SECONDS = 0.2
    EMPTY_FILE_GRACE = 60.0
    # Seconds between attempts to serve again after a failure: 1 s, doubling, up to a minute.
    RESTART_MIN, RESTART_MAX = 1.0, 60.0

    SETTINGS = (
        _USER,
        _PASSWORD,
        _PORT,
        # The PBX connects from outside, so every interface by default.
        Setting("host", HOST, "the address to listen on", default="0.0.0.0"),  # noqa: S104
        Setting("passive_ports", {"type": "string", "pattern": r"^[0-9]{1,5}-[0-9]{1,5}$",
                                  "description": "a port range such as 60000-60100"},
                "the ports of passive data connections (default any free port)"),
        Setting("home", TEXT, "the folder uploads go to (default <data dir>/ftp/<profile>)"),
        _MAX_FILE_BYTES,
        Setting("max_login_attempts", COUNT, "failed logins before the connection is closed",
                default=3),
        Setting("auth_failed_delay", SECONDS, "the wait before each \"530\" answer, which "
                "slows password guessing", default=3),
        Setting("sweep_interval", SECONDS, "how often files left in the home are delivered",
                default=5),
        Setting("banner", {"type": "string", "maxLength": 200}, "the greeting (220)",
                default=DEFAULT_BANNER),
        _TLS,
        Setting("certfile", TEXT, "FTPS: the server's certificate (PEM), then intermediates"),
        Setting("keyfile", TEXT, "FTPS: the certificate's private key (PEM; default in "
                "certfile)"),
        Setting("tls_required", FLAG, "FTPS: no login and no data connection without TLS",
                default=True),
        # One client must not take every slot (700 idle connections from one address made
        # the PBX's own upload fail with 421).
        Setting("max_connections", COUNT, "connections served at once", default=64),
        Setting("max_connections_per_address", COUNT, "connections from one address at once "
                "(the PBX's addresses excepted)", default=5),
        Setting("login_timeout", SECONDS, "how long a connection may wait before it logs in",
                default=15),
        Setting("pbx_addresses", schema_list({"type": "string", "minLength": 1, "maxLength": 253}),
                "the PBX's addresses or networks: no per-address limit for them, and "
                "`reserved_slots` of the connections are kept for them"),
        Setting("reserved_slots", {"type": "integer", "minimum": 0},
                "connections only the PBX's addresses may take (with pbx_addresses)", default=4),
        PARSER,
    )

    def __init__(self, *, name: str, settings: dict, deliver: Callable[[bytes, str], object],
                 log: logging.Logger, notify: Callable[..., object]):
        self.name = name
        self.deliver = deliver
        self.log = log
        self.notify = notify
        settings = settings_with_defaults(settings, self.SETTINGS)
        self.user = _required(settings, "user", "ftp_server", name)
        self.password = _required(settings, "password", "ftp_server", name)
        if self.user == "anonymous":
            raise ValueError(f"observer {name}: anonymous FTP uploads are not allowed")
        self.host = settings["host"]
        self.port = int(settings["port"])
        self.home = Path(settings["home"] or _data_dir(settings) / "ftp" / _folder_name(name))
        self.passive_ports = _port_range(settings["passive_ports"])
        self.max_file_bytes = int(settings["max_file_bytes"])
        self.max_login_attempts = int(settings["max_login_attempts"])
        self.auth_failed_delay = float(settings["auth_failed_delay"])
        self.sweep_interval = float(settings["sweep_interval"])
        self.max_connections = int(settings["max_connections"])
        self.max_connections_per_address = int(settings["max_connections_per_address"])
        self.login_timeout = float(settings["login_timeout"])
        try:
            self.pbx_networks = tuple(ipaddress.ip_network(address, strict=False)
                                      for address in settings["pbx_addresses"] or ())
        except ValueError as exc:
            raise ValueError(f"observer {name}: pbx_addresses: {exc}") from None
        self.reserved_slots = int(settings["reserved_slots"])  # (kept only with pbx_addresses)
        # An empty banner, which the check of a profile allows, takes the default as well.
        self.banner = str(settings["banner"] or DEFAULT_BANNER)
        self.tls = _flag(settings, "tls", name)
        self.tls_required = _flag(settings, "tls_required", name)
        self._tls_context = _server_tls_context(settings, name) if self.tls else None
        self.ready = threading.Event()
        self.address: tuple[str, int] | None = None
        # Paths being uploaded right now, which the sweep must leave alone. Only the
        # server's thread touches it (sessions and sweep run in the same loop).
        self.receiving: set[str] = set()
        self._sessions: dict[int, str] = {}

    def is_pbx(self, ip: str) -> bool:
        """Whether `ip` is one of `pbx_addresses`."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.pbx_networks)

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                self._serve(stop)
                return
            except Exception as exc:  # cannot listen (port taken), home unwritable, …
                delay = backoff(failures, self.RESTART_MIN, self.RESTART_MAX)
                failures += 1
                self.log.error("FTP server on port %s failed: %s; retrying in %.0f s",
                               self.port, exc, delay)
                logger.exception("observer %s: FTP server failed", self.name)
                stop.wait(delay)

    def _serve(self, stop: threading.Event) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.home = Path(os.path.realpath(self.home))
        ioloop = IOLoop()
        try:
            server = _Server((self.host, self.port), self._handler_class(), ioloop=ioloop)
            server.max_cons = self.max_connections
            server.max_cons_per_ip = self.max_connections_per_address
            server.unlimited = self.is_pbx
            self.address = server.address
            self.ready.set()
            self.log.info("FTP%s server listening on %s:%s, files go to %s",
                          "S" if self.tls else "", *self.address, self.home)
            next_sweep = 0.0
            wait = self.POLL_SECONDS
            while not stop.is_set():
                if time.monotonic() >= next_sweep:
                    self._sweep_logged()
                    next_sweep = time.monotonic() + self.sweep_interval
                # serve_forever(blocking=False) would log "starting FTP server" on every
                # call: the loop it runs is called directly instead.
                soonest = ioloop.loop(timeout=wait, blocking=False)
                wait = self.POLL_SECONDS if soonest is None else min(self.POLL_SECONDS, soonest)
        finally:
            self.ready.clear()
            ioloop.close()  # the listening socket and every session
            for peer in self._sessions.values():
                self._notify("disconnected", peer=peer)
            self._sessions.clear()
            self.receiving.clear()

    def _handler_class(self) -> type[_UploadHandler]:
        for sub in (DONE, FAILED):
            (self.home / sub).mkdir(exist_ok=True)
        authorizer = _Authorizer()
        authorizer.add_user(self.user, self.password, str(self.home), perm=self.PERMISSIONS)
        for sub in (DONE, FAILED):
            authorizer.override_perm(self.user, str(self.home / sub), "", recursive=True)

        class Handler(_TlsUploadHandler if self.tls else _UploadHandler):
            pass

        if self.tls:
            Handler.ssl_context = self._tls_context
            Handler.tls_control_required = self.tls_required
            Handler.tls_data_required = self.tls_required
        Handler.source = self
        Handler.abstracted_fs = _HomeFilesystem
        Handler.timeout = self.login_timeout
        Handler.authorizer = authorizer
        Handler.banner = self.banner
        Handler.max_login_attempts = self.max_login_attempts
        Handler.auth_failed_timeout = self.auth_failed_delay
        Handler.passive_ports = self.passive_ports
        return Handler

    def _notify(self, event: str, **params) -> None:
        try:
            self.notify(event, **params)
        except Exception:
            logger.exception("observer %s: notify(%s) failed", self.name, event)

    def _session_opened(self, handler: _UploadHandler) -> None:
        self._sessions[id(handler)] = handler.peer
        self._notify("connected", peer=handler.peer)

    def _session_closed(self, handler: _UploadHandler) -> None:
        if self._sessions.pop(id(handler), None) is not None:
            self._notify("disconnected", peer=handler.peer)

    def _take(self, path: Path, peer: str = "") -> bool:
        """Deliver one finished file and move it to done/; False when it stays in the home
        because `deliver` failed (the sweep retries it)."""
        try:
            with path.open("rb") as f:
                data = f.read(self.max_file_bytes + 1)
        except FileNotFoundError:
            return True  # taken meanwhile (by the sweep, or deleted by the sender)
        if not data:
            return True  # empty: see EMPTY_FILE_GRACE
        if len(data) > self.max_file_bytes:
            self.log.error("%s is over the %d-byte limit; moved to %s/", path.name,
                           self.max_file_bytes, FAILED)
            move_into(path, self.home / FAILED)
            return True
        try:
            self.deliver(data, path.name)
        except Exception as exc:
            self.log.error("delivering %s failed: %s; it stays for the next sweep", path.name, exc)
            logger.exception("observer %s: delivering %s failed", self.name, path.name)
            return False
        move_into(path, self.home / DONE)
        self.log.info("received %s (%d bytes)%s", path.name, len(data),
                      f" from {peer}" if peer else "")
        return True

    def sweep(self) -> int:
        """Deliver the files left in the home, oldest first; return how many were taken."""
        waiting = []
        for item in self.home.iterdir():
            if _hidden(item.name) or item.is_symlink() or not item.is_file():
                continue
            if str(item) in self.receiving:
                continue
            stat = item.stat()
            waiting.append((stat.st_mtime_ns, item.name, stat.st_size, item))
        taken = 0
        for mtime_ns, _name, size, item in sorted(waiting):
            if size == 0:
                if time.time() - mtime_ns / 1e9 > self.EMPTY_FILE_GRACE:
                    item.unlink(missing_ok=True)
                    self.log.info("empty file %s removed", item.name)
                continue
            if not self._take(item):
                break  # deliver is failing: keep the order and try again next sweep
            taken += 1
        return taken

    def _sweep_logged(self) -> None:
        try:
            self.sweep()
        except Exception as exc:
            self.log.error("sweep of %s failed: %s", self.home, exc)
            logger.exception("observer %s: sweep failed", self.name)


# --- FTP client ----------------------------------------------------------------------------


class _TooBig(Exception):
    pass


class UntrustedCertificate(ConnectionError):
    """The FTPS server's certificate failed verification (`tls_verify`)."""


Signature = tuple[int | None, str | None]  # (size, modification time) as the server lists it


class FtpClientSource:
    """R2.2: downloads CDR files from the PBX's FTP server, every `interval` seconds.

    Its keys and their defaults: SETTINGS. `data_dir`, which is no profile key (tests give
    it), stands in for the data directory of the default `state_dir`.

    FTPS: `tls` logs in over explicit TLS ("AUTH TLS", RFC 4217) and protects the
    data connections ("PROT P"), so listings and downloads are encrypted too. `tls_verify`
    checks the server's certificate and that it names `host` (a DNS name, or an IP
    address in the certificate's subjectAltName); `cafile` (a PEM bundle) is then trusted
    instead of the system's certificate authorities — for a PBX with a self-signed
    certificate, that certificate itself. A certificate that fails the check ends the
    poll with an error saying so, before the password is sent; nothing is downloaded.

    Each poll connects, lists `remote_path` (MLSD; NLST with SIZE and MDTM when the server
    has no MLSD), skips hidden names, names ending in ".done" and names not matching
    `pattern`, and takes a file once its (size, modification time) is the same on two
    polls in a row — a file still being written waits (without SIZE/MDTM a file is taken
    the second time it is seen). A download shorter than the listed size is not
    delivered. After `deliver` returns the file is deleted or renamed; when that fails
    (say the user may not delete), the file's name, size, time and SHA-256 go into
    `<state_dir>/<profile>.ftpstate.json`, so later polls (and restarts) do not deliver it
    again but only retry the removal; an entry is dropped once its file is gone. A file
    of the same name with another size, time or content is a new file. Files over
    `max_file_bytes` are skipped and logged.

    A server that is down, refuses the login or drops the connection ends the poll: logged,
    retried after `interval`, doubled after each failure up to `max(interval, min(300,
    10 * interval))`. "connected"/"disconnected" are notified when reaching the server
    starts or stops working, not for every poll.
    """

    SETTINGS = (
        Setting("host", HOST, "the PBX's FTP server", required=True),
        _USER,
        _PASSWORD,
        _PORT,
        Setting("remote_path", TEXT, "the folder on the server the files are in", default="/"),
        Setting("after", {"enum": ["delete", "rename"], "description": "what to do with a fetched file"},
                "what becomes of a delivered file: deleted, or renamed to name.done",
                default="delete"),
        Setting("pattern", NAME, "the names taken: a shell glob, case-sensitive", default="*"),
        Setting("interval", SECONDS, "the wait between polls", default=60),
        Setting("passive", FLAG, "passive data connections", default=True),
        Setting("timeout", SECONDS, "the wait for an answer of the server", default=30),
        _TLS,
        Setting("tls_verify", FLAG, "FTPS: check the server's certificate and name",
                default=True),
        Setting("cafile", TEXT, "FTPS: the certificates trusted (PEM; default the system's)"),
        _MAX_FILE_BYTES,
        Setting("state_dir", TEXT, "where files delivered but not removed are remembered "
                "(default the data dir)"),
        PARSER,
    )

    def __init__(self, *, name: str, settings: dict, deliver: Callable[[bytes, str], object],
                 log: logging.Logger, notify: Callable[..., object]):
        self.name = name
        self.deliver = deliver
        self.log = log
        self.notify = notify
        settings = settings_with_defaults(settings, self.SETTINGS)
        self.host = _required(settings, "host", "ftp_client", name)
        self.user = _required(settings, "user", "ftp_client", name)
        self.password = _required(settings, "password", "ftp_client", name)
        self.port = int(settings["port"])
        self.remote_path = str(settings["remote_path"])
        self.after = str(settings["after"])
        if self.after not in ("delete", "rename"):
            raise ValueError(f"observer {name}: after must be 'delete' or 'rename', not {self.after!r}")
        self.pattern = str(settings["pattern"])
        self.interval = float(settings["interval"])
        self.passive = bool(settings["passive"])
        self.timeout = float(settings["timeout"])
        self.tls = _flag(settings, "tls", name)
        self.tls_verify = _flag(settings, "tls_verify", name)
        self.cafile = (_readable(settings, "cafile", name)
                       if self.tls and self.tls_verify and settings["cafile"] else None)
        self.max_file_bytes = int(settings["max_file_bytes"])
        state_dir = Path(settings["state_dir"] or _data_dir(settings))
        self.state_path = state_dir / f"{_folder_name(name)}.ftpstate.json"
        self.ready = threading.Event()
        self.peer = f"{self.host}:{self.port}"
        self._tls_context = self._client_tls_context() if self.tls else None
        self._connected = False
        self._seen: dict[str, Signature] = {}
        self._too_big: dict[str, Signature] = {}
        self._state: dict[str, dict] = self._load_state()

    # -- the loop

    def run(self, stop: threading.Event) -> None:
        failures = 0
        cap = max(self.interval, min(300.0, 10 * self.interval))
        while not stop.is_set():
            try:
                self.poll(stop)
                failures = 0
                delay = self.interval
            except Exception as exc:
                delay = backoff(failures, self.interval, cap)
                failures += 1
                self._set_connected(False)
                self.log.error("FTP %s: %s; retrying in %.1f s", self.peer,
                               str(exc) or type(exc).__name__, delay)
                logger.debug("observer %s: poll failed", self.name, exc_info=True)
            if stop.wait(delay):
                break
        self._set_connected(False)

    def poll(self, stop: threading.Event | None = None) -> int:
        """One pass: take every stable file; return how many were delivered. Raises when
        the server cannot be reached or the connection is lost."""
        ftp = self._connect()
        try:
            self._set_connected(True)
            listing = self._list(ftp)
            self._forget_missing(listing)
            delivered = 0
            for name in sorted(listing):
                if stop is not None and stop.is_set():
                    break
                signature = listing[name]
                if self._remembered(name, signature):
                    self._remove(ftp, name, signature, None, retry=True)
                    continue
                previous = self._seen.get(name)
                self._seen[name] = signature
                if previous != signature:
                    continue  # new, or still being written: look again next poll
                outcome = self._take(ftp, name, signature)
                if outcome is None:
                    break  # deliver failed: try again next poll
                delivered += outcome
            return delivered
        finally:
            with contextlib.suppress(*ftplib.all_errors):
                ftp.quit()
            ftp.close()

    # -- one file

    def _take(self, ftp: ftplib.FTP, name: str, signature: Signature) -> int | None:
        """Download, deliver and remove one file: 1 when delivered, 0 when skipped, None
        when `deliver` raised."""
        size = signature[0]
        if (size is not None and size > self.max_file_bytes) or self._too_big.get(name) == signature:
            if self._too_big.get(name) != signature:
                self.log.error("%s is %s bytes, over the %d-byte limit; skipped", name, size,
                               self.max_file_bytes)
                self._too_big[name] = signature
            return 0
        try:
            data = self._download(ftp, name)
        except ftplib.error_perm as exc:  # not a readable file (a folder, no permission)
            self.log.warning("cannot download %s: %s", name, exc)
            return 0
        except _TooBig:
            self.log.error("%s is over the %d-byte limit; skipped", name, self.max_file_bytes)
            self._too_big[name] = signature
            raise ConnectionAbortedError(f"download of {name} cut off") from None
        if size is not None and len(data) != size:
            self.log.warning("%s: got %d of %d bytes; retried next poll", name, len(data), size)
            self._seen.pop(name, None)
            return 0
        digest = hashlib.sha256(data).hexdigest()
        if self._state.get(name, {}).get("sha256") == digest:
            self._remove(ftp, name, signature, digest, retry=True)
            return 0  # delivered before; only the removal was missing
        try:
            self.deliver(data, name)
        except Exception as exc:
            self.log.error("delivering %s failed: %s; it stays on the server", name, exc)
            logger.exception("observer %s: delivering %s failed", self.name, name)
            return None
        self._seen.pop(name, None)
        self.log.info("received %s (%d bytes) from %s", name, len(data), self.peer)
        self._remove(ftp, name, signature, digest, retry=False)
        return 1

    def _download(self, ftp: ftplib.FTP, name: str) -> bytes:
        buffer = io.BytesIO()

        def write(chunk: bytes) -> None:
            buffer.write(chunk)
            if buffer.tell() > self.max_file_bytes:
                raise _TooBig

        ftp.retrbinary(f"RETR {name}", write)
        return buffer.getvalue()

    def _remove(self, ftp: ftplib.FTP, name: str, signature: Signature, digest: str | None,
                *, retry: bool) -> None:
        """Delete or rename `name` on the server; remember it when that fails."""
        try:
            if self.after == "rename":
                ftp.rename(name, name + DONE_SUFFIX)
            else:
                ftp.delete(name)
        except ftplib.all_errors as exc:
            if not retry:
                self._state[name] = {"size": signature[0], "mtime": signature[1], "sha256": digest}
                self._save_state()
                self.log.warning("%s delivered but could not be %sd on the server (%s); "
                                 "remembered in %s so it is not delivered again", name,
                                 self.after, exc, self.state_path)
            if not isinstance(exc, ftplib.Error):
                raise  # the connection is gone
            return
        if self._state.pop(name, None) is not None:
            self._save_state()

    # -- listing

    def _list(self, ftp: ftplib.FTP) -> dict[str, Signature]:
        try:
            entries = [(name, facts) for name, facts in ftp.mlsd()
                       if facts.get("type", "file").lower() == "file"]
            listing = {name: (int(facts["size"]) if facts.get("size", "").isdigit() else None,
                              facts.get("modify")) for name, facts in entries}
        except ftplib.error_perm as exc:
            if not str(exc).startswith(("500", "501", "502", "504")):
                raise
            listing = self._list_without_mlsd(ftp)
        return {name: signature for name, signature in listing.items() if self._wanted(name)}

    def _list_without_mlsd(self, ftp: ftplib.FTP) -> dict[str, Signature]:
        try:
            names = ftp.nlst()
        except ftplib.error_perm as exc:
            if str(exc).startswith(("450", "550")):
                return {}  # some servers answer an empty folder so
            raise
        ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode by some servers
        listing = {}
        for raw in names:
            name = posixpath.basename(raw.rstrip("/"))
            if not self._wanted(name):
                continue
            listing[name] = (self._size(ftp, name), self._mdtm(ftp, name))
        return listing

    def _wanted(self, name: str) -> bool:
        return (bool(name) and not _hidden(name) and not name.endswith(DONE_SUFFIX)
                and fnmatch.fnmatchcase(name, self.pattern))

    @staticmethod
    def _size(ftp: ftplib.FTP, name: str) -> int | None:
        try:
            return ftp.size(name)
        except ftplib.error_perm:
            return None

    @staticmethod
    def _mdtm(ftp: ftplib.FTP, name: str) -> str | None:
        try:
            return ftp.voidcmd(f"MDTM {name}")[4:].strip()
        except ftplib.error_perm:
            return None

    # -- connection

    def _client_tls_context(self) -> ssl.SSLContext:
        if not self.tls_verify:
            self.log.warning("FTPS to %s without checking its certificate (tls_verify is "
                             "false): the connection is encrypted but the server unproven",
                             self.peer)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self.cafile)
        except ssl.SSLError as exc:
            raise ValueError(f"observer {self.name}: settings.cafile {self.cafile!r} holds no "
                             f"PEM certificate: {exc.reason or exc}") from None

    def _connect(self) -> ftplib.FTP:
        # Plain FTP is what many PBXs offer (R2.2); `tls` switches to FTPS where they can.
        if self.tls:
            ftp = ftplib.FTP_TLS(context=self._tls_context, timeout=self.timeout)  # noqa: S321 -- FTPS
        else:
            ftp = ftplib.FTP(timeout=self.timeout)  # noqa: S321 -- what the PBX offers
        try:
            ftp.connect(self.host, self.port)
            try:
                ftp.login(self.user, self.password)  # FTP_TLS sends AUTH TLS first
            except ssl.SSLCertVerificationError as exc:
                raise UntrustedCertificate(
                    f"the TLS certificate of {self.peer} is not trusted ({exc.verify_message}); "
                    "set cafile to the server's certificate or its CA's, or tls_verify to "
                    "false") from None
            if self.tls:
                ftp.prot_p()  # listings and downloads encrypted too
            ftp.set_pasv(self.passive)
            ftp.cwd(self.remote_path)
        except BaseException:
            ftp.close()
            raise
        return ftp

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self.ready.set()
        if connected == self._connected:
            return
        self._connected = connected
        if connected:
            self.log.info("connected to FTP server %s", self.peer)
        try:
            self.notify("connected" if connected else "disconnected", peer=self.peer)
        except Exception:
            logger.exception("observer %s: notify failed", self.name)

    # -- state of files delivered but not removed

    def _remembered(self, name: str, signature: Signature) -> bool:
        """True when `name` was delivered before and the listing shows the same file.
        Without size and time from the server, the content decides (after download)."""
        entry = self._state.get(name)
        if entry is None or signature[0] is None or signature[1] is None:
            return False
        return (entry.get("size"), entry.get("mtime")) == signature

    def _forget_missing(self, listing: dict[str, Signature]) -> None:
        gone = [name for name in self._state if name not in listing]
        for name in gone:
            del self._state[name]
        if gone:
            self._save_state()
        self._seen = {name: sig for name, sig in self._seen.items() if name in listing}
        self._too_big = {name: sig for name, sig in self._too_big.items() if name in listing}

    def _load_state(self) -> dict[str, dict]:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.log.warning("ignoring unreadable state file %s: %s", self.state_path, exc)
            return {}
        files = state.get("delivered", {}) if isinstance(state, dict) else {}
        return {name: entry for name, entry in files.items() if isinstance(entry, dict)}

    def _save_state(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        temporary.write_text(json.dumps({"delivered": self._state}, indent=1, sort_keys=True))
        os.replace(temporary, self.state_path)
