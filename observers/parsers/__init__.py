"""One parser per PBX format; a device's type selects it (R1.1, R2.7)."""
from observers.parsers import threecx

PARSERS = {
    "3cx": threecx.parse,
}


def parser_for(device_type: str):
    """The parse function for a device type, or a clear error when there is none yet."""
    try:
        return PARSERS[device_type]
    except KeyError:
        raise LookupError(
            f"no CDR parser for device type {device_type!r} yet; available: {sorted(PARSERS)}"
        ) from None
