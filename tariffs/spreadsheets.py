"""R12.2: text that every CSV and XLSX file the system writes (calls, rejected rows, reports)
passes through, so that a subscriber's name or a caller's "number" cannot become a
spreadsheet formula on the operator's machine (CSV injection: `=HYPERLINK(…)`,
`=1+cmd|' /C calc'!A0`).

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
apostrophe, as OWASP advises, unless the whole cell is a plain number: `+380441234567`
(a number in E.164) and `-1.20` stay as they are, since no spreadsheet runs anything in
them. It sits in the lowest app so that the exports of every app above use the same rule.
Pure: no Django.
"""
import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


def cell_text(value):
    """`value` as a spreadsheet may safely show it: a text that could start a formula gets
    a leading apostrophe; numbers, dates and other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def row_cells(values):
    """Every value of a row through `cell_text`."""
    return [cell_text(value) for value in values]
