"""R2.2: the folder source (observers/sources/folder.py): each finished file read once."""
import os
import time

import pytest

from observers.sources.folder import FolderWatcher
from tests.observers.helpers import Deliveries


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def make_old(path, seconds=600):
    """Give the file a modification time `seconds` in the past (a finished upload)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_file_is_processed_once_and_moved_to_done(inbox):
    # given a finished file in the folder
    (inbox / "cdr1.csv").write_bytes(b"a,b\n")
    deliver = Deliveries()
    watcher = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=0)
    # when the folder is polled twice
    first, second = watcher.poll(), watcher.poll()
    # then the file was delivered once, with its name, and now lives in done/
    assert (first, second) == (1, 0)
    assert deliver.received == [(b"a,b\n", "cdr1.csv")]
    assert listing(inbox) == ["done", "done/cdr1.csv"]
    assert (inbox / "done" / "cdr1.csv").read_bytes() == b"a,b\n"


def test_files_are_delivered_in_name_order(inbox):
    # given three finished files
    for name in ("c.csv", "a.csv", "b.csv"):
        (inbox / name).write_bytes(name.encode())
    deliver = Deliveries()
    # when polled
    FolderWatcher(path=inbox, deliver=deliver, settle_seconds=0).poll()
    # then they are delivered in name order (CDR files are named by time)
    assert [name for _, name in deliver.received] == ["a.csv", "b.csv", "c.csv"]


def test_file_still_growing_is_not_read_until_it_settles(inbox):
    # given a file just written, and a watcher that waits 60 s for fresh files to settle
    path = inbox / "cdr.csv"
    path.write_bytes(b"line 1\n")
    deliver = Deliveries()
    watcher = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=60)
    # when polled: the file is new, so it is only noted
    assert watcher.poll() == 0
    # and the writer appends more before the next poll
    with open(path, "ab") as handle:
        handle.write(b"line 2\n")
    assert watcher.poll() == 0
    # and then nothing changes between two polls
    assert watcher.poll() == 1
    # then the whole file was read once, never half-way
    assert deliver.received == [(b"line 1\nline 2\n", "cdr.csv")]


def test_file_older_than_the_settle_time_is_read_on_the_first_poll(inbox):
    # given a file last written ten minutes ago
    path = inbox / "old.csv"
    path.write_bytes(b"x\n")
    make_old(path)
    deliver = Deliveries()
    # when the first poll runs with a 60 s settle time
    processed = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=60).poll()
    # then it is taken at once
    assert processed == 1
    assert deliver.received == [(b"x\n", "old.csv")]


def test_hidden_files_subfolders_and_symlinks_are_ignored(inbox, tmp_path):
    # given a hidden file, a subfolder with a file, and a symlink to a file outside
    (inbox / ".partial.csv").write_bytes(b"hidden\n")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "inner.csv").write_bytes(b"inner\n")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"not for us\n")
    (inbox / "link.csv").symlink_to(outside)
    deliver = Deliveries()
    # when polled
    processed = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=0).poll()
    # then nothing is delivered or moved, and the symlink's target is untouched
    assert processed == 0
    assert deliver.received == []
    assert listing(inbox) == [".partial.csv", "link.csv", "sub", "sub/inner.csv"]
    assert outside.read_bytes() == b"not for us\n"


def test_over_size_file_goes_to_failed_unread(inbox):
    # given a limit of 10 bytes, one file of 11 bytes and one of exactly 10
    (inbox / "big.csv").write_bytes(b"0123456789\n")
    (inbox / "fits.csv").write_bytes(b"012345678\n")
    deliver = Deliveries()
    # when polled
    FolderWatcher(path=inbox, deliver=deliver, max_bytes=10, settle_seconds=0).poll()
    # then the big one is moved to failed/ without being read; the other is processed
    assert deliver.received == [(b"012345678\n", "fits.csv")]
    assert listing(inbox) == ["done", "done/fits.csv", "failed", "failed/big.csv"]


def test_name_collision_in_done_does_not_overwrite(inbox):
    # given done/ already holding cdr.log.csv from an earlier day
    (inbox / "done").mkdir()
    (inbox / "done" / "cdr.log.csv").write_bytes(b"old\n")
    deliver = Deliveries()
    watcher = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=0)
    # when a new file of the same name arrives, twice
    (inbox / "cdr.log.csv").write_bytes(b"new 1\n")
    watcher.poll()
    (inbox / "cdr.log.csv").write_bytes(b"new 2\n")
    watcher.poll()
    # then every version is kept under its own name
    done = inbox / "done"
    assert sorted(p.name for p in done.iterdir()) == [
        "cdr.log.1.csv", "cdr.log.2.csv", "cdr.log.csv"]
    assert (done / "cdr.log.csv").read_bytes() == b"old\n"
    assert (done / "cdr.log.1.csv").read_bytes() == b"new 1\n"
    assert (done / "cdr.log.2.csv").read_bytes() == b"new 2\n"


def test_failing_delivery_leaves_the_file_for_the_next_poll(inbox):
    # given a file and a delivery that fails (the database is down)
    (inbox / "cdr.csv").write_bytes(b"x\n")
    deliver = Deliveries()
    deliver.failing = True
    watcher = FolderWatcher(path=inbox, deliver=deliver, settle_seconds=0)
    # when polled, the failure is raised to the caller
    with pytest.raises(RuntimeError, match="database unavailable"):
        watcher.poll()
    # then the file is still in place, not in done/ or failed/
    assert listing(inbox) == ["cdr.csv"]
    # and once delivery works again it is processed
    deliver.failing = False
    assert watcher.poll() == 1
    assert deliver.received == [(b"x\n", "cdr.csv")]
    assert listing(inbox) == ["done", "done/cdr.csv"]


def test_missing_folder_is_an_error(tmp_path):
    # given a watcher on a folder that does not exist
    watcher = FolderWatcher(path=tmp_path / "nowhere", deliver=Deliveries(), settle_seconds=0)
    # when polled; then it says which folder is missing
    with pytest.raises(FileNotFoundError, match="nowhere"):
        watcher.poll()


def test_a_failing_file_does_not_hold_back_the_others_and_goes_to_failed_in_the_end(tmp_path):
    # given two files, the first of which always fails to deliver
    (tmp_path / "a.log").write_bytes(b"bad")
    (tmp_path / "b.log").write_bytes(b"good")
    delivered = []

    def deliver(data, name):
        if data == b"bad":
            raise ValueError("cannot be parsed")
        delivered.append(name)

    watcher = FolderWatcher(path=tmp_path, deliver=deliver, settle_seconds=0, max_attempts=3)
    # when the folder is polled three times
    for _ in range(3):
        with pytest.raises(ValueError):
            watcher.poll()
    # then the good file went through on the first pass, and the bad one is in failed/
    assert delivered == ["b.log"]
    assert (tmp_path / "done" / "b.log").exists()
    assert (tmp_path / "failed" / "a.log").read_bytes() == b"bad"


def test_a_transient_failure_never_sends_the_file_to_failed(tmp_path):
    # given a file whose delivery fails because the database is away
    (tmp_path / "a.log").write_bytes(b"calls")

    def deliver(data, name):
        raise ConnectionError("database away")

    watcher = FolderWatcher(path=tmp_path, deliver=deliver, settle_seconds=0, max_attempts=2,
                            transient=lambda exc: isinstance(exc, ConnectionError))
    # when it fails many times
    for _ in range(5):
        with pytest.raises(ConnectionError):
            watcher.poll()
    # then it is still waiting in the folder
    assert (tmp_path / "a.log").exists() and not (tmp_path / "failed").exists()
