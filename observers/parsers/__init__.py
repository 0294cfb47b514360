"""One parser per PBX format; a device's type selects it (R1.1, R2.7).

Every parser is a pure function `parse(data: bytes, options: Mapping | None = None)` that
yields, for each record in `data`, a `base.CallRecord` or a `base.Reject`; it never raises
on bad input. `options` are the observer profile's `settings["parser"]` (the generic parser
needs them; others may use them for variants). A parser given options it cannot use
raises ValueError before reading any data: a configuration error, not a data error.
"""
from observers.parsers import asterisk, cucm, freeswitch, generic, radius, threecx

PARSERS = {
    "3cx": threecx.parse,
    "cucm": cucm.parse,
    "asterisk": asterisk.parse,
    "freeswitch": freeswitch.parse,
    "generic": generic.parse,
    "radius": radius.parse,
}
# Formats with one record per line and nothing that later lines depend on (no header that
# names the columns): a large delivery of theirs can be cut at any line end.
_LINE_BY_LINE = frozenset({"3cx", "asterisk", "freeswitch"})
# Parsers whose options can be wrong; each returns a list of messages naming the bad key.
_OPTION_CHECKS = {
    "3cx": threecx.validate_options,
    "generic": generic.validate_options,
}


def parser_for(device_type: str):
    """The parse function for a device type, or a clear error when there is none yet."""
    try:
        return PARSERS[device_type]
    except KeyError:
        raise LookupError(
            f"no CDR parser for device type {device_type!r} yet; available: {sorted(PARSERS)}"
        ) from None


def line_by_line(device_type: str) -> bool:
    """Whether records of this device type can be parsed a piece of a file at a time."""
    return device_type in _LINE_BY_LINE


def parser_options_problems(device_type: str, options) -> list[str]:
    """What is wrong with a profile's parser options (empty: nothing)."""
    check = _OPTION_CHECKS.get(device_type)
    return check(options or {}) if check else []
