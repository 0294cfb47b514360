"""R3: turn a number as the PBX recorded it into international form, and classify calls.

Pure: plain values in, plain values out; no database access.
"""
import re
from dataclasses import dataclass, field

from tariffs.models import CallType, Direction

_NON_DIGITS = re.compile(r"\D")


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
        )

    def is_extension(self, number: str) -> bool:
        """True when `number` is one of the device's internal numbers."""
        if not number:
            return False
        if self.extension_pattern:
            return re.fullmatch(self.extension_pattern, number) is not None
        if self.extension_length:
            return number.isdigit() and len(number) == self.extension_length
        return False


def digits_of(raw: str) -> str:
    """The digits of a number; authorization codes and other noise are handled by callers."""
    return _NON_DIGITS.sub("", raw or "")


def normalize(dialled: str, plan: DialPlan) -> str:
    """The number in international form (country code first, digits only).

    Internal and service numbers are returned as their digits, unchanged.
    """
    raw = (dialled or "").strip()
    number = digits_of(raw)
    if not number:
        return ""
    if raw.startswith("+"):
        return number
    if plan.is_extension(number) or number in plan.service_numbers:
        return number
    if plan.access_code and number.startswith(plan.access_code) and len(number) > len(
        plan.access_code
    ):
        number = number[len(plan.access_code):]
        if number in plan.service_numbers:
            return number
    if plan.international_prefix and number.startswith(plan.international_prefix):
        return number[len(plan.international_prefix):]
    if plan.national_prefix and number.startswith(plan.national_prefix):
        return plan.country_code + number[len(plan.national_prefix):]
    return plan.country_code + plan.area_code + number


def classify(
    *, direction: int, normalized: str, plan: DialPlan, code_call_type: int | None
) -> int:
    """R3.3: the call type from the direction, the dial plan and the matched code."""
    if direction == Direction.INTERNAL or plan.is_extension(normalized):
        return CallType.INTERNAL
    if direction == Direction.INCOMING:
        return CallType.INCOMING
    if normalized in plan.service_numbers:
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
