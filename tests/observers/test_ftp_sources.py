"""R2.2: the FTP sources (observers/sources/ftp.py) against real FTP peers on localhost:
our server with ftplib and lftp as the uploading PBX, our client against a pyftpdlib
server standing in for the PBX. No database: `deliver` collects bytes."""
import ftplib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from observers.sources.ftp import FtpClientSource, FtpServerSource
from tests.conftest import free_port, needs, wait_for
from tests.observers.helpers import Deliveries, Events, running, serving

CUCM_CDR = (
    b'"cdrRecordType","globalCallID_callManagerId","globalCallID_callId",'
    b'"dateTimeOrigination","callingPartyNumber","finalCalledPartyNumber",'
    b'"dateTimeConnect","dateTimeDisconnect","duration"\r\n'
    b"INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(50),VARCHAR(50),INTEGER,INTEGER,INTEGER\r\n"
    b'1,1,1001,1705314600,"2001","0442223344",1705314605,1705314665,60\r\n'
    b'1,1,1002,1705314700,"2002","0501112233",1705314702,1705314722,20\r\n'
)
CUCM_NAME = "cdr_StandAloneCluster_01_202401151030_1001"
USER, PASSWORD = "cucm", "s3cret"


# --- our FTP server --------------------------------------------------------------------------


def server_source(tmp_path, name="cucm", deliver=None, notify=None, **settings):
    home = tmp_path / f"home-{name}"
    config = {"user": USER, "password": PASSWORD, "host": "127.0.0.1", "port": 0,
              "home": str(home), "auth_failed_delay": 0.05, "sweep_interval": 0.1, **settings}
    return FtpServerSource(name=name, settings=config, deliver=deliver or Deliveries(),
                           log=logging.getLogger(f"test.observer.{name}"),
                           notify=notify or Events())


def connect(source) -> ftplib.FTP:
    ftp = ftplib.FTP()  # noqa: S321 -- plain FTP is what the PBX speaks here
    ftp.connect(*source.address, timeout=2)
    return ftp


def login(source, user=USER, password=PASSWORD) -> ftplib.FTP:
    ftp = connect(source)
    ftp.login(user, password)
    return ftp


def upload(ftp, name, data):
    ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_upload_is_delivered_once_when_complete_and_moved_to_done(tmp_path):
    # given our FTP server for a CUCM profile
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    with serving(source):
        # when CUCM logs in and uploads a CDR file
        ftp = login(source)
        upload(ftp, CUCM_NAME, CUCM_CDR)
        # then it is delivered once, with its name, and kept in done/
        wait_for(lambda: deliver.received, timeout=2)
        ftp.quit()
        time.sleep(0.3)  # a few sweeps pass
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert files_in(source.home) == [f"done/{CUCM_NAME}"]


def test_the_home_lists_the_pbxs_files_but_not_the_sources_own_folders(tmp_path):
    # given our FTP server, with a file delivered (in done/) and one set aside (in failed/)
    source = server_source(tmp_path)
    with serving(source):
        (source.home / "done" / "old.cdr").write_bytes(CUCM_CDR)
        (source.home / "failed" / "bad.cdr").write_bytes(b"x")
        ftp = login(source)
        # when the PBX lists its home, by NLST, LIST and MLSD
        names = ftp.nlst()
        listing = []
        ftp.retrlines("LIST", listing.append)
        entries = [name for name, _ in ftp.mlsd()]
        # then done/ and failed/ are not there, and cannot be entered either
        with pytest.raises(ftplib.error_perm):
            ftp.nlst("done")
        ftp.quit()
    assert "done" not in names and "failed" not in names
    assert not any(line.endswith((" done", " failed")) for line in listing)
    assert "done" not in entries and "failed" not in entries


def test_lftp_upload_is_delivered_once(tmp_path):
    needs(shutil.which("lftp") is not None, "needs lftp (package lftp)")
    # given our FTP server and a CDR file on the "PBX"
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    local = tmp_path / CUCM_NAME
    local.write_bytes(CUCM_CDR)
    with serving(source):
        # when lftp uploads it
        lftp_put(source, local, "set ftp:ssl-allow no")
        # then it is delivered once and moved to done/
        wait_for(lambda: deliver.received, timeout=2)
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert files_in(source.home) == [f"done/{CUCM_NAME}"]


def lftp_put(source, local, settings: str) -> None:
    """lftp (with `settings`, its `set` commands) uploads `local` to our server `source`,
    as a PBX would; it must succeed."""
    host, port = source.address
    script = (f"{settings}; set net:max-retries 1; set net:timeout 2; "
              f"open -u {USER},{PASSWORD} -p {port} {host}; put {local}; bye")
    result = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_connect_and_disconnect_of_each_session_are_notified(tmp_path):
    # given our FTP server
    events = Events()
    source = server_source(tmp_path, notify=events)
    with serving(source):
        # when a PBX logs in and out
        login(source).quit()
        # then the session was announced and its end too
        wait_for(lambda: events.names == ["connected", "disconnected"], timeout=2)


def test_wrong_password_is_refused_and_logged(tmp_path, caplog):
    # given our FTP server
    source = server_source(tmp_path)
    # when a client logs in with a wrong password
    with (serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"),
          pytest.raises(ftplib.error_perm, match="530")):
        login(source, password="guess")
    # then the failure is in the profile's log
    assert any("login of 'cucm'" in r.getMessage() and "failed" in r.getMessage()
               for r in caplog.records)


def test_repeated_login_failures_disconnect_the_client(tmp_path, caplog):
    # given our FTP server allowing 3 attempts per connection
    source = server_source(tmp_path, max_login_attempts=3)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = connect(source)
        # when three wrong passwords are tried on one connection
        for _ in range(3):
            with pytest.raises(ftplib.error_perm, match="530"):
                ftp.login(USER, "guess")
        # then the server hangs up
        with pytest.raises((EOFError, OSError)):
            ftp.login(USER, PASSWORD)
            ftp.nlst()
        ftp.close()
    assert any("disconnected" in r.getMessage() for r in caplog.records)


def test_upload_cannot_leave_the_home(tmp_path):
    # given our FTP server and, inside its home, a link to a folder outside it
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    outside = tmp_path / "outside"
    outside.mkdir()
    source.home.mkdir(parents=True)
    (source.home / "escape").symlink_to(outside)
    with serving(source):
        ftp = login(source)
        # when files are stored through the link and above the root
        with pytest.raises(ftplib.error_perm, match="550"):
            upload(ftp, "/escape/evil.csv", b"x")
        upload(ftp, "../../up.csv", b"up")
        wait_for(lambda: deliver.received, timeout=2)
        ftp.quit()
    # then nothing lands outside: "../../up.csv" is the home's own "up.csv"
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "up.csv").exists()
    assert deliver.received == [(b"up", "up.csv")]


def test_user_can_neither_download_nor_touch_delivered_files(tmp_path):
    # given a delivered file in done/
    source = server_source(tmp_path)
    with serving(source):
        ftp = login(source)
        upload(ftp, CUCM_NAME, CUCM_CDR)
        wait_for(lambda: (source.home / "done" / CUCM_NAME).exists(), timeout=2)
        # when the user tries to read, list, delete or replace it
        attempts = [
            lambda: ftp.retrbinary(f"RETR done/{CUCM_NAME}", lambda _: None),
            lambda: ftp.nlst("done"),
            lambda: ftp.delete(f"done/{CUCM_NAME}"),
            lambda: upload(ftp, f"done/{CUCM_NAME}", b"forged"),
            lambda: ftp.rename("done", "gone"),
            lambda: ftp.mkd("sub"),
            lambda: ftp.sendcmd("STOU"),
        ]
        # then each is refused
        for attempt in attempts:
            with pytest.raises(ftplib.error_perm, match="550|500"):
                attempt()
        ftp.quit()
    assert (source.home / "done" / CUCM_NAME).read_bytes() == CUCM_CDR


def test_hidden_name_is_refused(tmp_path, caplog):
    # given our FTP server
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = login(source)
        # when a file with a hidden name is uploaded
        with pytest.raises(ftplib.error_perm, match="550"):
            upload(ftp, ".hidden", b"x")
        ftp.quit()
    # then nothing was stored or delivered, and the refusal is logged
    assert files_in(source.home) == []
    assert deliver.received == []
    assert any("hidden name" in r.getMessage() for r in caplog.records)


def test_failed_delivery_keeps_the_file_and_the_sweep_delivers_it_once(tmp_path):
    # given a deliver that fails once (the database is briefly down)
    deliver = Deliveries(failures=1)
    source = server_source(tmp_path, deliver=deliver)
    with serving(source):
        # when a file is uploaded
        ftp = login(source)
        upload(ftp, CUCM_NAME, CUCM_CDR)
        ftp.quit()
        # then it is delivered by a later sweep
        wait_for(lambda: deliver.received, timeout=2)
        time.sleep(0.3)
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert files_in(source.home) == [f"done/{CUCM_NAME}"]


def test_files_left_while_down_are_delivered_oldest_first(tmp_path):
    # given files that arrived while the collector was down, the newer one first by name
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    source.home.mkdir(parents=True)
    for name, age in (("a_new.csv", 10), ("b_old.csv", 100)):
        (source.home / name).write_bytes(name.encode())
        then = time.time() - age
        os.utime(source.home / name, (then, then))
    # when the server starts
    with serving(source):
        wait_for(lambda: len(deliver.received) == 2, timeout=2)
    # then both are delivered, oldest first
    assert deliver.names == ["b_old.csv", "a_new.csv"]


def test_sweep_moves_oversize_files_to_failed_and_removes_stale_empty_files(tmp_path):
    # given, in the home, a file over the limit, an old empty file and a fresh empty one
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver, max_file_bytes=10)
    source.home.mkdir(parents=True)
    (source.home / "big.csv").write_bytes(b"x" * 11)
    (source.home / "old_empty").write_bytes(b"")
    then = time.time() - source.EMPTY_FILE_GRACE - 1
    os.utime(source.home / "old_empty", (then, then))
    (source.home / "new_empty").write_bytes(b"")
    # when the home is swept
    source.sweep()
    # then the big file is set aside, the old empty one removed, the new one left alone
    assert deliver.received == []
    assert files_in(source.home) == ["failed/big.csv", "new_empty"]


def test_oversize_upload_is_refused_and_deleted(tmp_path, caplog):
    # given a server with a 1 KiB file limit
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver, max_file_bytes=1024)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = login(source)
        # when a 256 KiB file is uploaded
        with pytest.raises((ftplib.error_perm, ftplib.error_temp, OSError)):
            upload(ftp, "big.csv", b"x" * 256 * 1024)
        wait_for(lambda: any("over the 1024-byte limit" in r.getMessage()
                             for r in caplog.records), timeout=2)
        ftp.close()
    # then it was cut off, nothing delivered, no trace left
    assert deliver.received == []
    assert files_in(source.home) == []


def test_incomplete_upload_is_deleted_and_logged(tmp_path, caplog):
    # given a PBX halfway through an upload
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    with serving(source), caplog.at_level(logging.WARNING, logger="test.observer.cucm"):
        ftp = login(source)
        ftp.voidcmd("TYPE I")
        data = ftp.transfercmd(f"STOR {CUCM_NAME}")
        data.sendall(CUCM_CDR[:40])
        # when its control connection drops before the data is finished
        ftp.close()
        wait_for(lambda: any("incomplete" in r.getMessage() for r in caplog.records), timeout=2)
        data.close()
    # then the partial file is gone and nothing was delivered
    assert deliver.received == []
    assert files_in(source.home) == []


def test_empty_upload_is_not_delivered_and_can_be_deleted_by_the_sender(tmp_path):
    # given our server (CUCM tests a new billing server with an empty file)
    deliver = Deliveries()
    source = server_source(tmp_path, deliver=deliver)
    with serving(source):
        ftp = login(source)
        # when an empty file is uploaded, then deleted by the sender
        upload(ftp, "test.txt", b"")
        time.sleep(0.3)
        ftp.delete("test.txt")
        ftp.quit()
    # then nothing was delivered and nothing is left
    assert deliver.received == []
    assert files_in(source.home) == []


def test_two_profiles_do_not_see_each_others_files(tmp_path):
    # given two profiles' servers on two ports, with different users
    first_deliver, second_deliver = Deliveries(), Deliveries()
    first = server_source(tmp_path, name="cucm1", deliver=first_deliver)
    second = server_source(tmp_path, name="cucm2", deliver=second_deliver, user="other")
    with serving(first), serving(second):
        assert first.address[1] != second.address[1]
        # when a file is uploaded to the first
        ftp = login(first)
        upload(ftp, CUCM_NAME, CUCM_CDR)
        wait_for(lambda: first_deliver.received, timeout=2)
        ftp.quit()
        # then the second neither lists it nor lets the first profile's user in
        other = login(second, user="other")
        assert CUCM_NAME not in other.nlst()
        other.quit()
        with pytest.raises(ftplib.error_perm, match="530"):
            login(second)
    assert second_deliver.received == []
    assert files_in(second.home) == []


def test_server_retries_when_the_port_is_taken_and_stops_promptly(tmp_path, caplog):
    # given a port some other program listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        source = server_source(tmp_path, port=taken.getsockname()[1])
        # when the server starts there, then it logs the failure and keeps trying
        with caplog.at_level(logging.ERROR, logger="test.observer.cucm"), running(source):
            wait_for(lambda: any("failed" in r.getMessage() for r in caplog.records), timeout=2)
            assert not source.ready.is_set()


# --- our FTP client against a PBX's FTP server ------------------------------------------------


class PbxFtpServer:
    """A pyftpdlib server in its own thread standing in for the PBX; restartable on the
    same port."""

    def __init__(self, root, perm="elradfmw", handler=FTPHandler):
        self.root = root
        self.perm = perm
        self.handler = handler
        self.port = 0
        self._thread = None

    def start(self):
        authorizer = DummyAuthorizer()
        authorizer.add_user("pbx", "pbxpass", str(self.root), perm=self.perm)
        handler = type("PbxHandler", (self.handler,), {"authorizer": authorizer})
        ioloop = IOLoop()
        server = FTPServer(("127.0.0.1", self.port), handler, ioloop=ioloop)
        self.port = server.address[1]
        self._stop = threading.Event()

        def serve():
            while not self._stop.is_set():
                ioloop.loop(timeout=0.02, blocking=False)
            ioloop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def pbx(tmp_path):
    root = tmp_path / "pbx"
    root.mkdir()
    servers = []

    def start(**kwargs):
        server = PbxFtpServer(root, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client_source(tmp_path, server, deliver=None, notify=None, **settings):
    config = {"host": "127.0.0.1", "port": server.port, "user": "pbx", "password": "pbxpass",
              "interval": 0.1, "timeout": 2, "state_dir": str(tmp_path / "state"), **settings}
    return FtpClientSource(name="pbx", settings=config, deliver=deliver or Deliveries(),
                           log=logging.getLogger("test.observer.pbx"), notify=notify or Events())


def test_client_delivers_each_file_once_and_deletes_it(tmp_path, pbx):
    # given two CDR files on the PBX's FTP server
    server = pbx()
    (server.root / CUCM_NAME).write_bytes(CUCM_CDR)
    (server.root / "second.cdr").write_bytes(b"2,2\n")
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    # when the client polls for a while
    with running(source):
        wait_for(lambda: len(deliver.received) == 2, timeout=2)
        time.sleep(0.3)
    # then each was delivered once and deleted on the server
    assert sorted(deliver.received) == sorted([(CUCM_CDR, CUCM_NAME), (b"2,2\n", "second.cdr")])
    assert list(server.root.iterdir()) == []


def test_client_renames_delivered_files_to_done_and_skips_hidden_and_unmatched(tmp_path, pbx):
    # given a CDR file, a hidden file, a file of another pattern and an earlier .done
    server = pbx()
    for name in (CUCM_NAME, ".partial", "notes.txt", "cdr_old.done"):
        (server.root / name).write_bytes(b"data")
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver, after="rename", pattern="cdr_*")
    # when polled three times
    counts = [source.poll() for _ in range(3)]
    # then only the CDR file was delivered (on the second look) and renamed to .done
    assert counts == [0, 1, 0]
    assert deliver.names == [CUCM_NAME]
    assert sorted(os.listdir(server.root)) == sorted(
        [f"{CUCM_NAME}.done", ".partial", "notes.txt", "cdr_old.done"])


def test_client_waits_while_a_file_grows(tmp_path, pbx):
    # given a file being written on the PBX
    server = pbx()
    growing = server.root / CUCM_NAME
    growing.write_bytes(CUCM_CDR[:60])
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    # when it grows between the first two polls and then stays the same
    first = source.poll()
    growing.write_bytes(CUCM_CDR)
    second = source.poll()
    third = source.poll()
    # then it is delivered only once stable, whole
    assert (first, second, third) == (0, 0, 1)
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]


class NoMlsd(FTPHandler):
    """An older FTP server: no MLSD (answers 500), only NLST, SIZE and MDTM."""

    proto_cmds = {cmd: spec for cmd, spec in FTPHandler.proto_cmds.items() if cmd != "MLSD"}


def test_client_without_mlsd_lists_with_nlst_size_and_mdtm(tmp_path, pbx):
    # given a server without MLSD and a file being written on it
    server = pbx(handler=NoMlsd)
    growing = server.root / CUCM_NAME
    growing.write_bytes(CUCM_CDR[:60])
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    # when it grows between the first two polls and then stays the same
    first = source.poll()
    growing.write_bytes(CUCM_CDR)
    counts = [first, source.poll(), source.poll(), source.poll()]
    # then it is delivered once, whole, when stable, and deleted
    assert counts == [0, 0, 1, 0]
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert list(server.root.iterdir()) == []


def test_client_survives_the_server_going_away_and_coming_back(tmp_path, pbx):
    # given a client that has connected to the PBX
    server = pbx()
    events = Events()
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver, notify=events)
    with running(source):
        assert source.ready.wait(2)
        # when the server stops, and comes back with a new file on the same port
        server.stop()
        wait_for(lambda: "disconnected" in events.names, timeout=2)
        (server.root / CUCM_NAME).write_bytes(CUCM_CDR)
        server.start()
        # then the client reconnects and delivers it
        wait_for(lambda: deliver.received, timeout=2)
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert events.names[:3] == ["connected", "disconnected", "connected"]


class DropsFirstDownload(FTPHandler):
    """Sends half of the first download, then fails the transfer (426)."""

    drops = 1

    def ftp_RETR(self, file):
        if DropsFirstDownload.drops:
            DropsFirstDownload.drops -= 1
            with open(file, "rb") as f:
                half = f.read()[:20]

            class HalfThenFail:
                sent = False

                def more(self):
                    if self.sent:
                        raise OSError("connection lost")
                    self.sent = True
                    return half

            self.push_dtp_data(HalfThenFail(), isproducer=True, cmd="RETR")
            return file
        return super().ftp_RETR(file)


def test_client_does_not_deliver_a_broken_download_and_retries(tmp_path, pbx, caplog):
    # given a server whose first download breaks off halfway
    DropsFirstDownload.drops = 1
    server = pbx(handler=DropsFirstDownload)
    (server.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    # when the client polls
    logging.getLogger("pyftpdlib").disabled = True  # the server's traceback for the 426
    try:
        with running(source), caplog.at_level(logging.ERROR, logger="test.observer.pbx"):
            wait_for(lambda: deliver.received, timeout=2)
    finally:
        logging.getLogger("pyftpdlib").disabled = False
    # then only the whole file was delivered, once, after a logged failure
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert DropsFirstDownload.drops == 0
    assert any("426" in r.getMessage() for r in caplog.records)


def test_client_remembers_files_it_could_not_delete_and_does_not_deliver_them_again(tmp_path, pbx):
    # given a PBX user who may read but not delete
    server = pbx(perm="elr")
    (server.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    # when the client polls repeatedly, and a restarted client polls again
    counts = [source.poll() for _ in range(4)]
    restarted = client_source(tmp_path, server, deliver=deliver)
    counts += [restarted.poll() for _ in range(2)]
    # then the file was delivered once and is remembered in the state file
    assert counts == [0, 1, 0, 0, 0, 0]
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    state = json.loads((tmp_path / "state" / "pbx.ftpstate.json").read_text())
    assert list(state["delivered"]) == [CUCM_NAME]
    assert state["delivered"][CUCM_NAME]["size"] == len(CUCM_CDR)


def test_remembered_file_is_forgotten_once_removed_and_a_new_one_of_that_name_delivered(
        tmp_path, pbx):
    # given a file delivered but left on the server (no delete permission)
    server = pbx(perm="elr")
    cdr = server.root / CUCM_NAME
    cdr.write_bytes(CUCM_CDR)
    deliver = Deliveries()
    source = client_source(tmp_path, server, deliver=deliver)
    source.poll(), source.poll()
    # when someone removes it and the PBX later writes new data under the same name
    cdr.unlink()
    source.poll()
    cdr.write_bytes(b"new calls\n")
    source.poll(), source.poll()
    # then the state entry was dropped and the new file delivered too
    assert deliver.received == [(CUCM_CDR, CUCM_NAME), (b"new calls\n", CUCM_NAME)]


def test_client_keeps_the_file_when_deliver_fails(tmp_path, pbx):
    # given a deliver that fails once
    server = pbx()
    (server.root / CUCM_NAME).write_bytes(CUCM_CDR)
    deliver = Deliveries(failures=1)
    source = client_source(tmp_path, server, deliver=deliver)
    # when polled
    counts = [source.poll() for _ in range(3)]
    # then the file stayed on the server until delivered, then was deleted
    assert counts == [0, 0, 1]
    assert deliver.received == [(CUCM_CDR, CUCM_NAME)]
    assert list(server.root.iterdir()) == []


def test_client_logs_and_retries_when_the_server_is_down(tmp_path, caplog):
    # given no FTP server on the configured port
    class Nowhere:
        port = free_port()

    events = Events()
    source = client_source(tmp_path, Nowhere, notify=events)
    # when the client runs, then it logs the failure, stays unready, and stops promptly
    with caplog.at_level(logging.ERROR, logger="test.observer.pbx"), running(source):
        wait_for(lambda: sum("retrying" in r.getMessage() for r in caplog.records) >= 2, timeout=2)
        assert not source.ready.is_set()
    assert events.names == []


def _greeting(source, *, address="127.0.0.1") -> tuple[socket.socket, bytes]:
    """A raw TCP connection to our server from `address` (any 127.x is this machine) and
    the first line it answers."""
    sock = socket.create_connection(source.address, timeout=3, source_address=(address, 0))
    return sock, sock.makefile("rb").readline()


def test_one_address_cannot_take_every_connection(tmp_path):
    # given our FTP server, at most 3 connections from one address
    source = server_source(tmp_path, max_connections_per_address=3)
    with serving(source):
        # when one address opens four idle connections
        opened = [_greeting(source) for _ in range(4)]
        # then the fourth is refused, and another address still gets in
        assert [line[:3] for _, line in opened] == [b"220", b"220", b"220", b"421"]
        other, line = _greeting(source, address="127.0.0.2")
        assert line.startswith(b"220")
        for sock, _ in [*opened, (other, line)]:
            sock.close()


def test_a_connection_that_does_not_log_in_is_closed_after_the_login_timeout(tmp_path):
    # given our FTP server that waits half a second for a login
    source = server_source(tmp_path, login_timeout=0.5)
    with serving(source):
        # when a client connects and says nothing
        sock, line = _greeting(source)
        began = time.monotonic()
        rest = sock.makefile("rb").readline()
        waited = time.monotonic() - began
        sock.close()
        # and a client that logs in is not held to it
        ftp = login(source)
        time.sleep(0.8)
        assert ftp.voidcmd("NOOP").startswith("200")
        ftp.quit()
    # then the silent one is told and closed, well before pyftpdlib's five minutes
    assert line.startswith(b"220") and rest.startswith(b"421")
    assert waited < 5


def test_the_last_free_connections_are_kept_for_the_pbx(tmp_path):
    # given our FTP server of 6 connections, 3 of them kept for the PBX at 127.0.0.9
    source = server_source(tmp_path, max_connections=6, max_connections_per_address=10,
                           pbx_addresses=["127.0.0.9"], reserved_slots=3)
    with serving(source):
        # when another address opens connections until it is refused
        taken = [_greeting(source, address="127.0.0.3") for _ in range(4)]
        codes = [line[:3] for _, line in taken]
        # then it gets the free ones but not the PBX's, and the PBX still logs in and uploads
        assert b"421" in codes and codes.index(b"421") <= 3
        ftp = ftplib.FTP()  # noqa: S321 -- plain FTP is what the PBX speaks here
        ftp.connect(*source.address, timeout=3, source_address=("127.0.0.9", 0))
        ftp.login(USER, PASSWORD)
        upload(ftp, CUCM_NAME, CUCM_CDR)
        ftp.quit()
        for sock, _ in taken:
            sock.close()
