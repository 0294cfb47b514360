"""R2.7, R12.2: what every parser's records are checked for before they are stored
(observers/parsers/base.py check_record)."""
from dataclasses import replace
from datetime import datetime

import pytest

from observers.parsers.base import CallRecord, ParseError, check_record

RECORD = CallRecord(source_key="k", start=datetime(2024, 6, 17, 10), duration=60, direction=0,
                    extension="101", dialled="90441234567")


@pytest.mark.parametrize("field", ["extension", "dialled"])
@pytest.mark.parametrize("value", ["9044\x001234567", "9044\t1234567", "9044\x7f1", "9044\ufffd12",
                                   "9044\udc8012"])
def test_a_number_with_a_control_character_or_undecodable_bytes_is_refused(field, value):
    # given a record whose number holds a NUL, a control character or bytes no decoder read
    record = replace(RECORD, **{field: value})
    # when it is checked
    # then it is refused, naming the field
    with pytest.raises(ParseError, match=f"^{field} .* holds a control character"):
        check_record(record, now=datetime(2024, 6, 18))


@pytest.mark.parametrize("value", ["+380 (44) 123-45-67", "*72#101", "0441234567", ""])
def test_numbers_as_pbxs_write_them_pass(value):
    # given a record whose number is written with the usual signs and separators
    record = replace(RECORD, dialled=value)
    # when it is checked; then it passes unchanged
    assert check_record(record, now=datetime(2024, 6, 18)) is record
