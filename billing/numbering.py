"""R3: turn a number as the PBX recorded it into international form, and classify calls.

Pure: plain values in, plain values out; no database access.
"""
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property

from tariffs.choices import CallType, Direction

_NON_DIGITS = re.compile(r"\D")
# What a number may be written with: digits, the keypad's * and #, a leading +, and the
# separators people and PBXs put between digit groups. Anything else (letters, =, |, !) is
# no number, and its digits must not be priced as one: `=1+cmd|' /C calc'!A0` is not 10.
_DIALLED = re.compile(r"[0-9*#+\s().\-/]*")


@dataclass(frozen=True)
class DialPlan:
    """R3.1: the part of a device's settings that says how its numbers are written."""

    access_code: str = ""
    national_prefix: str = "0"
    international_prefix: str = "00"
    country_code: str = ""
    area_code: str = ""
    extension_length: int | None = None
    extension_pattern: str = ""
    service_numbers: frozenset[str] = field(default_factory=frozenset)
    auth_code_position: str = ""  # "", "before" (after the access code) or "after"
    auth_code_length: int = 0

    @classmethod
    def from_device(cls, device) -> "DialPlan":
        return cls(
            access_code=device.access_code,
            national_prefix=device.national_prefix,
            international_prefix=device.international_prefix,
            country_code=device.country_code,
            area_code=device.area_code,
            extension_length=device.extension_length,
            extension_pattern=device.extension_pattern,
            service_numbers=frozenset(
                n.strip() for n in device.service_numbers.split(",") if n.strip()
            ),
            auth_code_position=device.auth_code_position,
            auth_code_length=device.auth_code_length,
        )

    @cached_property
    def _extension_re(self) -> re.Pattern:
        return re.compile(self.extension_pattern)

    def is_extension(self, number: str) -> bool:
        """True when `number` is one of the device's internal numbers."""
        if not number:
            return False
        if self.extension_pattern:
            return self._extension_re.fullmatch(number) is not None
        if self.extension_length:
            return number.isdigit() and len(number) == self.extension_length
        return False


def digits_of(raw: str) -> str:
    """The digits of a number; authorization codes and other noise are handled by callers."""
    return _NON_DIGITS.sub("", raw or "")


def split_auth_code(dialled: str, plan: DialPlan) -> tuple[str, str]:
    """R8.6: (the number without the authorization code, the code) for a number dialled
    with an authorization code where the dial plan says (before the number, right after
    the access code; or after it). Separators such as `#` or `*` are dropped with it."""
    length = plan.auth_code_length
    raw = (dialled or "").strip()
    if not plan.auth_code_position or not length or not _DIALLED.fullmatch(raw):
        return raw, ""  # (not a number at all: parse_number says so)
    plus = "+" if raw.startswith("+") else ""
    number = digits_of(raw)
    if plan.auth_code_position == "before":
        access = (plan.access_code if plan.access_code and not plus
                  and number.startswith(plan.access_code) else "")
        body = number[len(access):]
        if len(body) <= length:
            return raw, ""
        return plus + access + body[length:], body[:length]
    if len(number) <= length:
        return raw, ""
    return plus + number[:-length], number[-length:]


class Kind:
    """What a dialled number is, as far as the dial plan can tell."""

    EXTENSION = "extension"
    SERVICE = "service"
    EXTERNAL = "external"
    NOT_A_NUMBER = "not a number"  # letters or signs no telephone number has


def parse_number(dialled: str, plan: DialPlan,
                 known_extensions: Collection[str] = ()) -> tuple[str, str]:
    """(number in international form, Kind) for a number as the PBX recorded it.

    Extensions and service numbers are returned as their digits. Precedence: a number
    someone holds on the device (`known_extensions`) is internal; then a service number
    (112), dialled with or without the access code; then a number shaped like an extension;
    everything else is external.
    """
    raw = (dialled or "").strip()
    if raw.isdigit() and raw.isascii():
        number = raw
    elif _DIALLED.fullmatch(raw):
        number = digits_of(raw)
    else:
        return "", Kind.NOT_A_NUMBER
    if not number:
        return "", Kind.EXTERNAL
    if raw.startswith("+"):
        return number, Kind.EXTERNAL
    if number in known_extensions:
        return number, Kind.EXTENSION
    if number in plan.service_numbers:
        return number, Kind.SERVICE
    if plan.is_extension(number):
        return number, Kind.EXTENSION
    access = plan.access_code
    if access and number.startswith(access) and len(number) > len(access):
        number = number[len(access):]
        if number in plan.service_numbers:
            return number, Kind.SERVICE
    if plan.international_prefix and number.startswith(plan.international_prefix):
        return number[len(plan.international_prefix):], Kind.EXTERNAL
    if plan.national_prefix and number.startswith(plan.national_prefix):
        return plan.country_code + number[len(plan.national_prefix):], Kind.EXTERNAL
    return plan.country_code + plan.area_code + number, Kind.EXTERNAL


def normalize(dialled: str, plan: DialPlan) -> str:
    """The number in international form (country code first, digits only)."""
    return parse_number(dialled, plan)[0]


def classify(
    *, direction: int, normalized: str, plan: DialPlan, code_call_type: int | None,
    kind: str | None = None,
) -> int:
    """R3.3: the call type from the direction, the number's kind (from `parse_number`;
    guessed from the dial plan when not given) and the matched code."""
    if kind is None:
        kind = (Kind.SERVICE if normalized in plan.service_numbers
                else Kind.EXTENSION if plan.is_extension(normalized) else Kind.EXTERNAL)
    if direction == Direction.INCOMING:
        return CallType.INCOMING
    if direction == Direction.INTERNAL or kind == Kind.EXTENSION:
        return CallType.INTERNAL
    if kind == Kind.NOT_A_NUMBER:
        return CallType.UNKNOWN
    if kind == Kind.SERVICE:
        return CallType.SERVICE
    if code_call_type is not None:
        return code_call_type
    if not normalized:
        return CallType.UNKNOWN
    if plan.country_code and normalized.startswith(plan.country_code):
        if plan.area_code and normalized.startswith(plan.country_code + plan.area_code):
            return CallType.LOCAL
        return CallType.LONG_DISTANCE
    if plan.country_code:
        return CallType.INTERNATIONAL
    return CallType.UNKNOWN
