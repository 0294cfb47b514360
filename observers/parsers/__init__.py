"""One parser per PBX format; a device's type selects it (R1.1, R2.7).

Every parser is a pure function `parse(data: bytes, options: Mapping | None = None)` that
yields, for each record in `data`, a `base.CallRecord` or a `base.Reject`; it never raises
on bad input. `options` are the observer profile's `settings["parser"]` (the generic parser
needs them; others may use them for variants).
"""
from observers.parsers import asterisk, cucm, freeswitch, threecx

PARSERS = {
    "3cx": threecx.parse,
    "cucm": cucm.parse,
    "asterisk": asterisk.parse,
    "freeswitch": freeswitch.parse,
}


def parser_for(device_type: str):
    """The parse function for a device type, or a clear error when there is none yet."""
    try:
        return PARSERS[device_type]
    except KeyError:
        raise LookupError(
            f"no CDR parser for device type {device_type!r} yet; available: {sorted(PARSERS)}"
        ) from None
