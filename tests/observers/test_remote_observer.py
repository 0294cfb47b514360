"""R2.6: a remote observer delivers over HTTP with its own token, spools while the main
server is away, and delivers every call exactly once when it is back."""
import contextlib
import socket
import threading
from pathlib import Path

import pytest

from billing.models import Call
from observers.models import RemoteBatch
from observers.remote import MainServer, MainServerError, RemoteObserver
from observers.services import profile_issue_token
from tests.conftest import wait_for
from tests.factories import ObserverProfileFactory
from tests.observers.helpers import running
from tests.observers.threecx_cdr import cdr_file, cdr_line


class SwitchableProxy:
    """A TCP forwarder in front of the live server that can be taken down and brought back
    on the same port: the main server 'unreachable', then back."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener = None
        self._stop = threading.Event()

    def up(self):
        self._stop.clear()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self):
        self._stop.set()
        self._listener.close()

    def _accept(self, listener):
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def remote_profile(transactional_db, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    profile = ObserverProfileFactory(name="Branch1", remote=True, settings={"path": str(inbox)})
    return profile, profile_issue_token(profile=profile), inbox


def test_calls_arrive_once_across_an_outage_of_the_main_server(remote_profile, live_server,
                                                               pipeline_worker, tmp_path):
    # given a remote observer of a branch office's folder, delivering through a proxy
    profile, token, inbox = remote_profile
    host, port = live_server.thread.host, live_server.thread.port
    proxy = SwitchableProxy((host, port))
    proxy.up()
    observer = RemoteObserver(name="Branch1",
                              main=MainServer(f"http://127.0.0.1:{proxy.port}", token, timeout=5),
                              spool_dir=tmp_path / "spool", poll_interval=0.1, retry_max=0.5)
    try:
        with running(observer, stop_within=10):
            # when a file of two calls is dropped, then both calls reach the main server
            (inbox / "cdr-1.log").write_bytes(cdr_file(cdr_line(historyid="Call 1"),
                                                       cdr_line(historyid="Call 2")))
            wait_for(lambda: Call.objects.count() == 2)
            # and when the main server goes away, the next file waits in the spool
            proxy.down()
            (inbox / "cdr-2.log").write_bytes(cdr_file(cdr_line(historyid="Call 3"),
                                                       cdr_line(historyid="Call 4")))
            wait_for(lambda: not (inbox / "cdr-2.log").exists())
            assert len(observer.spool.pending()) == 1 and Call.objects.count() == 2
            # and when it is back, the spooled batch is delivered and the spool emptied
            proxy.up()
            wait_for(lambda: Call.objects.count() == 4 and not observer.spool.pending())
    finally:
        proxy.down()
    # then every call is there exactly once, from two batches
    assert sorted(Call.objects.values_list("source_key", flat=True)) == [
        f"Call {n}|00000000c0ffee01_1" for n in (1, 2, 3, 4)]
    assert RemoteBatch.objects.filter(profile=profile).count() == 2


def test_a_batch_sent_again_is_acknowledged_not_stored_twice(remote_profile, live_server,
                                                             pipeline_worker):
    # given a batch delivered once
    _, token, _ = remote_profile
    main = MainServer(live_server.url, token)
    data = cdr_file(cdr_line(historyid="Call 7"))
    first = main.send(batch_id="abc-000000000001", data=data, source_name="cdr-7.log")
    # when the same batch is sent again (its answer was lost)
    second = main.send(batch_id="abc-000000000001", data=data, source_name="cdr-7.log")
    # then it is acknowledged as a duplicate and nothing more is stored or archived
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    wait_for(lambda: Call.objects.count() == 1)
    archive = Path(next(iter(Path(live_server_archive()).rglob("Branch1_*.cdr"))))
    assert archive.read_bytes().count(b"Call 7") == 1


def test_a_spool_file_over_the_web_servers_form_limit_arrives_whole(remote_profile, live_server,
                                                                    pipeline_worker, tmp_path):
    # given a remote observer of a 3CX profile with a 3 MB file spooled (14,000 calls, over
    # Django's 2.5 MiB limit, which answered 400 to it on every retry)
    _, token, _ = remote_profile
    observer = RemoteObserver(name="Branch1", main=MainServer(live_server.url, token),
                              spool_dir=tmp_path / "spool")
    observer._profile()  # what run() does first: the profile, with its device's type
    lines = [cdr_line(historyid=f"Call {n}", callid=f"{n:016x}_1") for n in range(14_000)]
    data = cdr_file(*lines)
    assert len(data) > 3 * 1024 * 1024
    observer.spool.put(data, "big.log")
    # when the spool is sent
    sent = observer.send_pending()
    # then every call reaches the main server, once, and the spool is empty
    assert sent == 1 and not observer.spool.pending()
    wait_for(lambda: Call.objects.count() == 14_000, timeout=120)
    assert RemoteBatch.objects.count() == 4  # in pieces of about 1 MiB, cut at line ends


def test_a_batch_refused_for_good_is_set_aside_and_the_next_goes_on(remote_profile, live_server,
                                                                   pipeline_worker, tmp_path,
                                                                   settings):
    # given a main server that takes batches of at most 1,000 bytes, and two spooled
    # batches: one over the limit (of a format that is not cut in pieces), then one under it
    settings.TARISCOPE_REMOTE_BATCH_MAX_BYTES = 1000
    _, token, _ = remote_profile
    observer = RemoteObserver(name="Branch1", main=MainServer(live_server.url, token),
                              spool_dir=tmp_path / "spool")
    observer.device_type = "cucm"
    observer.spool.put(b"x" * 2000, "huge.cdr")
    observer.spool.put(cdr_file(cdr_line(historyid="Call 9")), "small.log")
    # when the spool is sent
    sent = observer.send_pending()
    # then the refused batch is set aside with the main server's reason, and the next went
    assert sent == 1 and not observer.spool.pending()
    (reason,) = observer.spool.refused.glob("*.reason")
    assert reason.read_text().startswith("413 from ")
    assert "TARISCOPE_REMOTE_BATCH_MAX_BYTES" in reason.read_text()
    assert (observer.spool.refused / f"{reason.stem}.batch").read_bytes() == b"x" * 2000
    assert RemoteBatch.objects.count() == 1


def live_server_archive():
    from django.conf import settings

    return settings.ARCHIVE_DIR


@pytest.mark.parametrize("case", ["wrong token", "revoked token", "not remote", "no batch id"])
def test_the_ingest_endpoint_refuses_what_it_must(remote_profile, client, case):
    # given a remote profile with a token
    profile, token, _ = remote_profile
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_BATCH_ID": "b-1"}
    expected = 401
    if case == "wrong token":
        headers["HTTP_AUTHORIZATION"] = "Bearer obs_not-the-token"
    elif case == "revoked token":
        profile_issue_token(profile=profile)  # a new one replaces it
    elif case == "not remote":
        type(profile).objects.filter(pk=profile.pk).update(remote=False)
    else:
        del headers["HTTP_X_BATCH_ID"]
        expected = 400
    # when a batch is posted
    response = client.post("/api/observer/ingest", data=cdr_file(cdr_line()),
                           content_type="application/octet-stream", **headers)
    # then it is refused with a message, and nothing is stored
    assert response.status_code == expected
    assert "message" in response.json()
    assert Call.objects.count() == 0


def test_a_remote_observer_with_a_bad_token_stops_with_a_clear_error(remote_profile, live_server,
                                                                     tmp_path):
    # given a token that is not the profile's
    observer = RemoteObserver(name="Branch1", main=MainServer(live_server.url, "obs_wrong"),
                              spool_dir=tmp_path / "spool")
    # when it starts; then it says the main server refused it
    with pytest.raises(MainServerError, match="401"):
        observer.run(threading.Event())
