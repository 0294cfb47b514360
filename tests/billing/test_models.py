"""Invariants of the data model that other modules rely on."""
from billing.models import Call
from observers.parsers import base


def test_parser_limits_match_the_call_table_columns():
    # given the limits parsers check records against
    # when compared with the call table's columns
    sizes = {f.name: f.max_length for f in Call._meta.get_fields() if hasattr(f, "max_length")}
    # then a record that passes the check always fits the table
    assert sizes["extension"] == base.MAX_NUMBER
    assert sizes["dialled"] == base.MAX_NUMBER
    assert sizes["normalized"] == base.MAX_NUMBER
    assert sizes["trunk"] == base.MAX_TRUNK
    assert sizes["source_key"] == base.MAX_SOURCE_KEY


def test_call_fields_take_their_choices_from_the_pure_codes():
    # given the Django-free codes that parsers, numbering and rating use
    from tariffs.choices import CallType, Direction

    # when compared with the call table's choices
    fields = {f.name: f for f in Call._meta.get_fields()}
    # then every value means the same, with the same label
    assert fields["direction"].choices == [(0, "outgoing"), (1, "incoming"), (2, "internal")]
    assert fields["direction"].choices == Direction.choices
    assert dict(fields["call_type"].choices)[5] == "international"
    assert fields["call_type"].choices == CallType.choices
