"""The codes that pure modules (rating, numbering, parsers) share with the models: call
directions and call types. Pure: no Django, so that those modules stay testable without a
database; the models take their field choices from here (`Direction.choices`)."""
from enum import IntEnum


class _ChoicesOf:
    """`Codes.choices` read on the class: [(value, label), ...] as a Django field takes them."""

    def __get__(self, instance, owner) -> list[tuple[int, str]]:
        return [(member.value, member.label) for member in owner]


class _ValuesOf:
    """`Codes.values` read on the class: every value, in order."""

    def __get__(self, instance, owner) -> list[int]:
        return [member.value for member in owner]


class Codes(IntEnum):
    """An IntEnum whose members carry a label, with `choices` and `values` on the class: what
    Django's IntegerChoices gives, without importing Django. Members compare, hash and print
    as their integers, so a stored column value and a member are interchangeable."""

    choices = _ChoicesOf()
    values = _ValuesOf()

    def __new__(cls, value: int, label: str):
        member = int.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class Direction(Codes):
    """Call direction; 0 and 1 are the original's tariff directions (R4.2)."""

    OUTGOING = 0, "outgoing"
    INCOMING = 1, "incoming"
    INTERNAL = 2, "internal"


class CallType(Codes):
    """Call types. 3-6 are the original's fixed codes (R3.3); the rest are ours."""

    UNKNOWN = 0, "unknown"
    INTERNAL = 1, "internal"
    INCOMING = 2, "incoming"
    LOCAL = 3, "local"
    LONG_DISTANCE = 4, "long-distance"
    INTERNATIONAL = 5, "international"
    MOBILE = 6, "mobile"
    SERVICE = 7, "emergency/service"
