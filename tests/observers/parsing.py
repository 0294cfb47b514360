"""What the tests of the CDR parsers (observers/parsers/*) share: sorting what a parser gives
into records and rejects, and what it must do with any input at all, as the Hypothesis tests
of each check it (the generic parser, whose UTF-16 input breaks the count of lines, states
its own)."""
from collections.abc import Iterable

from hypothesis import strategies as st

from observers.parsers.base import CallRecord, Reject

# One field of a CDR line: any short text.
field_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def records_and_rejects(items: Iterable) -> tuple[list[CallRecord], list[Reject]]:
    """What a parser gave, as its records and its rejects (each in the order given)."""
    items = list(items)
    return ([i for i in items if isinstance(i, CallRecord)],
            [i for i in items if isinstance(i, Reject)])


def assert_records_or_rejects_in_line_order(items: list, data: bytes) -> None:
    """Every item is a record or a reject, at most one per line of `data`, in line order."""
    assert all(isinstance(i, CallRecord | Reject) for i in items)
    assert len(items) <= data.count(b"\n") + 1
    numbers = [i.line_number for i in items if isinstance(i, Reject)]
    assert numbers == sorted(set(numbers))
