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


def test_parsers_directions_are_the_call_directions():
    # given the Django-free directions parsers use
    from observers.parsers.base import Direction as ParserDirection
    from tariffs.models import Direction

    # when compared with the model's choices
    # then every value means the same
    assert {d.name: d.value for d in ParserDirection} == {d.name: d.value for d in Direction}
