"""R2.4: the raw archive (observers/archive.py): every byte received, appended durably."""
import os
from datetime import UTC, date, datetime

import pytest

from observers import archive
from observers.archive import archive_append, archive_file_name

NOW = datetime(2024, 6, 17, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("day", date(2024, 6, 17), "Kyiv1_2024-06-17.cdr"),
        ("week", date(2024, 6, 17), "Kyiv1_2024-W25.cdr"),
        ("month", date(2024, 6, 17), "Kyiv1_2024-06.cdr"),
        # ISO weeks: the last days of December may belong to week 1 of the next year,
        ("week", date(2024, 12, 30), "Kyiv1_2025-W01.cdr"),
        # and the first days of January to the last week of the year before
        ("week", date(2021, 1, 3), "Kyiv1_2020-W53.cdr"),
        ("month", date(2024, 12, 31), "Kyiv1_2024-12.cdr"),
    ],
)
def test_archive_file_is_named_by_profile_and_period(period, day, expected):
    # given a profile name, an archive period and a day
    # when the archive file is named; then it is <profile>_<period stamp>.cdr
    assert archive_file_name("Kyiv1", period, day) == expected


def test_bytes_are_appended_exactly(tmp_path):
    # given two deliveries of raw bytes, one not valid UTF-8
    first = b"line 1\r\nline 2\n"
    second = b"\xff\xfe binary \x00\n"
    # when both are archived
    path_1 = archive_append(folder=tmp_path, profile_name="P", period="month", data=first,
                            now=NOW)
    path_2 = archive_append(folder=tmp_path, profile_name="P", period="month", data=second,
                            now=NOW)
    # then one file holds both, byte for byte, in order
    assert path_1 == path_2 == tmp_path / "P_2024-06.cdr"
    assert path_1.read_bytes() == first + second


def test_missing_final_newline_is_added_so_the_next_delivery_does_not_run_on(tmp_path):
    # given a delivery that ends in the middle of a line's end
    # when it and another delivery are archived
    archive_append(folder=tmp_path, profile_name="P", period="day", data=b"a,b,c", now=NOW)
    path = archive_append(folder=tmp_path, profile_name="P", period="day", data=b"d,e\n",
                          now=NOW)
    # then each delivery starts on its own line
    assert path.read_bytes() == b"a,b,c\nd,e\n"


def test_empty_delivery_adds_nothing(tmp_path):
    # given an archive with one line
    path = archive_append(folder=tmp_path, profile_name="P", period="day", data=b"x\n", now=NOW)
    # when an empty delivery is archived
    archive_append(folder=tmp_path, profile_name="P", period="day", data=b"", now=NOW)
    # then the file is unchanged (no blank line added)
    assert path.read_bytes() == b"x\n"


def test_missing_archive_folder_is_created(tmp_path):
    # given an archive folder that does not exist yet, two levels deep
    folder = tmp_path / "archive" / "Kyiv1"
    # when data is archived
    path = archive_append(folder=folder, profile_name="Kyiv1", period="week", data=b"x\n",
                          now=NOW)
    # then the folder exists and holds the week's file
    assert path == folder / "Kyiv1_2024-W25.cdr"
    assert path.read_bytes() == b"x\n"


def test_deliveries_on_different_days_go_to_their_period_files(tmp_path):
    # given a daily archive
    # when data arrives on two days
    day_1 = archive_append(folder=tmp_path, profile_name="P", period="day", data=b"1\n",
                           now=datetime(2024, 6, 17, 23, 59, tzinfo=UTC))
    day_2 = archive_append(folder=tmp_path, profile_name="P", period="day", data=b"2\n",
                           now=datetime(2024, 6, 18, 0, 0, tzinfo=UTC))
    # then each day has its own file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P_2024-06-17.cdr", "P_2024-06-18.cdr"]
    assert (day_1.read_bytes(), day_2.read_bytes()) == (b"1\n", b"2\n")


def test_data_is_written_and_fsynced_before_returning(tmp_path, monkeypatch):
    # given fsync observed: the size of the file behind each synced descriptor is noted
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(archive.os, "fsync", fsync)
    # when 11 bytes are archived (10 and the added newline)
    path = archive_append(folder=tmp_path, profile_name="P", period="month", data=b"0123456789",
                          now=NOW)
    # then the file was synced once, with all its bytes already written, and it exists
    assert synced == [11]
    assert path.is_file()
    assert path.stat().st_size == 11
