"""R2.4: the raw archive can be processed again; nothing is doubled."""
import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import Call
from observers.archive import archive_files, archive_period_bounds, read_in_chunks
from observers.pipeline import profile_ingest
from tests.factories import ObserverProfileFactory
from tests.observers.threecx_cdr import cdr_file, cdr_line


@pytest.mark.parametrize(("name", "bounds"), [
    ("PBX1_2024-06-17.cdr", (date(2024, 6, 17), date(2024, 6, 17))),
    ("PBX1_2024-W25.cdr", (date(2024, 6, 17), date(2024, 6, 23))),
    ("PBX1_2024-02.cdr", (date(2024, 2, 1), date(2024, 2, 29))),
    ("PBX1_2024-12.cdr", (date(2024, 12, 1), date(2024, 12, 31))),
    ("PBX2_2024-06.cdr", None),  # another profile's
    ("PBX1_notes.cdr", None),
    ("PBX1_2024-06.txt", None),
])
def test_archive_file_names_give_their_period(name, bounds):
    # given an archive file name; when its period is read; then these are its days
    assert archive_period_bounds(name, "PBX1") == bounds


def test_files_are_chosen_by_overlapping_period(tmp_path):
    # given daily archive files of three days
    for day in ("2024-06-16", "2024-06-17", "2024-06-18"):
        (tmp_path / f"PBX1_{day}.cdr").write_bytes(b"x\n")
    # when the 17th is asked for; then only its file comes back
    assert [p.name for p in archive_files(tmp_path, "PBX1", date(2024, 6, 17),
                                          date(2024, 6, 17))] == ["PBX1_2024-06-17.cdr"]


def test_chunks_end_at_line_ends_and_lose_nothing(tmp_path):
    # given a file of 1,000 lines read in tiny chunks
    path = tmp_path / "a.cdr"
    data = b"".join(f"line {n}\n".encode() for n in range(1000)) + b"no newline at the end"
    path.write_bytes(data)
    # when read in pieces of 100 bytes
    pieces = list(read_in_chunks(path, size=100))
    # then the pieces join to the file, and each but the last ends a line
    assert b"".join(pieces) == data
    assert all(p.endswith(b"\n") for p in pieces[:-1])


def test_reprocess_restores_lost_calls_and_doubles_none(db):
    # given two calls ingested (so archived), then one of them lost from the database
    profile = ObserverProfileFactory(name="Arch1")
    profile_ingest(profile=profile, data=cdr_file(cdr_line(historyid="Call 1"),
                                                  cdr_line(historyid="Call 2")))
    Call.objects.filter(source_key__startswith="Call 1|").delete()
    today = timezone.localdate()
    # when the archive of this period is processed again, twice
    first, second = StringIO(), StringIO()
    for out in (first, second):
        call_command("reprocess", "--profile", "Arch1", "--from",
                     str(today - timedelta(days=1)), "--to", str(today), stdout=out)
    # then the lost call is back, the other counted as a duplicate, and the rerun adds nothing
    assert json.loads(first.getvalue()) == {"received": 2, "calls": 1, "duplicates": 1,
                                            "rejected": 0}
    assert json.loads(second.getvalue())["calls"] == 0
    assert Call.objects.count() == 2


def _november_calls_received_in_december(profile):
    """The month archive of December holding a call of 30 November (collected late, on 1
    December) and one of 1 December."""
    profile.archive_path.mkdir(parents=True, exist_ok=True)
    (profile.archive_path / f"{profile.name}_2024-12.cdr").write_bytes(cdr_file(
        cdr_line(historyid="Call 11", time_start="2024/11/30 23:50:00",
                 time_answered="2024/11/30 23:50:05", time_end="2024/11/30 23:51:06"),
        cdr_line(historyid="Call 12", time_start="2024/12/01 00:10:00",
                 time_answered="2024/12/01 00:10:05", time_end="2024/12/01 00:11:06")))


def test_by_default_the_period_is_of_the_days_the_data_was_received(db):
    # given November's last call collected on 1 December
    profile = ObserverProfileFactory(name="Arch2")
    _november_calls_received_in_december(profile)
    # when November is reprocessed
    out = StringIO()
    call_command("reprocess", "--profile", "Arch2", "--from", "2024-11-01", "--to", "2024-11-30",
                 stdout=out)
    # then nothing is found: the archive of November's days holds nothing
    assert json.loads(out.getvalue())["received"] == 0
    assert not Call.objects.exists()


def test_with_call_dates_the_period_is_of_the_calls_and_late_files_are_read(db):
    # given November's last call collected on 1 December, beside a call of December
    profile = ObserverProfileFactory(name="Arch3")
    _november_calls_received_in_december(profile)
    # when November's calls are reprocessed
    out = StringIO()
    call_command("reprocess", "--profile", "Arch3", "--from", "2024-11-01", "--to", "2024-11-30",
                 "--call-dates", stdout=out)
    # then the November call is stored, and December's is left to its own period
    assert json.loads(out.getvalue()) == {"received": 1, "calls": 1, "duplicates": 0,
                                          "rejected": 0}
    assert [c.source_key.split("|")[0] for c in Call.objects.all()] == ["Call 11"]
    # and with no days allowed for late records, the December file is not read
    Call.objects.all().delete()
    out = StringIO()
    call_command("reprocess", "--profile", "Arch3", "--from", "2024-11-01", "--to", "2024-11-30",
                 "--call-dates", "--late-days", "0", stdout=out)
    assert json.loads(out.getvalue())["received"] == 0
