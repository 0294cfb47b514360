"""R12.1: a large delivery of a line-by-line format is cut into processing tasks at line
ends (observers.pipeline.delivery_pieces, observers.delivery.profile_deliver). Tasks go through a real
worker when a broker is configured, in-process on the embedded default."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Call
from observers.delivery import profile_deliver
from observers.pipeline import delivery_pieces
from tests.factories import DeviceFactory, ObserverProfileFactory
from tests.observers.threecx_cdr import cdr_file, cdr_line


@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       st.booleans(), st.integers(min_value=1, max_value=120))
def test_pieces_cover_the_data_in_order_and_end_at_line_ends(lines, final_newline, size):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    pieces = delivery_pieces(data, size)
    # every byte once, in order
    assert b"".join(data[o:o + n] for o, n, _ in pieces) == data
    assert all(n > 0 for _, n, _ in pieces)
    for index, (offset, length, lines_before) in enumerate(pieces):
        # the lines before a piece are the newlines before its offset
        assert lines_before == data.count(b"\n", 0, offset)
        # every piece but the last ends a line, and is at least `size` long unless it is last
        if index < len(pieces) - 1:
            assert data[offset + length - 1:offset + length] == b"\n"
            assert length >= size


def test_a_file_in_one_piece_when_small_or_of_a_format_with_a_header(transactional_db,
                                                                     pipeline_worker, settings):
    data = cdr_file(*(cdr_line(historyid=f"Call {n}", callid=f"c{n}") for n in range(3)))
    line = data.index(b"\n") + 1
    settings.TARISCOPE_TASK_BYTES = line  # a piece per line
    three_cx = ObserverProfileFactory()
    small = profile_deliver(profile=three_cx, data=data[:line])
    assert len(small.results) == 1
    small.get(timeout=30)
    large = profile_deliver(profile=three_cx, data=data)
    assert len(large.results) == 3
    assert large.get(timeout=30)["received"] == 3
    # a CUCM file names its columns in its header lines: never cut
    cucm = ObserverProfileFactory(name="cucm", device=DeviceFactory(type="cucm"))
    whole = profile_deliver(profile=cucm, data=b"x\n" * 400)
    assert len(whole.results) == 1
    whole.get(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_pieces_store_every_call_once(pipeline_worker, settings):
    # given pieces of one line each
    settings.TARISCOPE_TASK_BYTES = 1
    profile = ObserverProfileFactory()
    lines = [cdr_line(historyid=f"Call {n}", callid=f"c{n}") for n in range(5)]
    lines.insert(3, "Call 99,c99,garbage")
    # when the file is delivered
    summary = profile_deliver(profile=profile, data=cdr_file(*lines),
                              source_name="f.log").get(timeout=30)
    # then the summary is the whole file's, and the bad line keeps its number (4)
    assert summary == {"received": 6, "calls": 5, "duplicates": 0, "rejected": 1}
    assert Call.objects.count() == 5
    assert profile.rejects.get().line_number == 4
