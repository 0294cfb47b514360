"""R11.3: a report's columns, defined once for the page, JSON, CSV, XLSX and PDF: what each
column is called and how a key or an amount is written in each.

Amounts are exact (4 places, as calls are stored) in JSON, CSV and XLSX, where someone
goes on computing with them; the page and the PDF show them to the currency's minor unit,
as the calls page does. The rows are a report's aggregates, not a model's list, so they
are not a django-tables2 table: there is nothing to sort or page on the server."""
from datetime import date, datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from reports.catalogue import DATE, HOUR, MONTH, SLOT, ReportKind
from reports.selectors import Report
from tariffs.choices import CallType, Direction
from tariffs.rating import quantize_money
from tariffs.spreadsheets import cell_text

MEASURE_LABELS = {
    "calls": _("Calls"),
    "seconds": _("Talk time, s"),
    "cost": _("Cost"),
    "concurrent": _("Most at once"),
    "charges": _("Charged"),
    "payments": _("Paid"),
    "balance": _("Balance"),
}
MONEY = {"cost", "charges", "payments", "balance"}
CURRENCY_LABEL = _("Currency")
NOT_PRICED = _("not priced")
# The call types' names as the pages show them (tariffs.choices is pure: no translations).
CALL_TYPE_LABELS = {
    CallType.UNKNOWN.label: _("unknown"),
    CallType.INTERNAL.label: _("internal"),
    CallType.INCOMING.label: _("incoming"),
    CallType.LOCAL.label: _("local"),
    CallType.LONG_DISTANCE.label: _("long-distance"),
    CallType.INTERNATIONAL.label: _("international"),
    CallType.MOBILE.label: _("mobile"),
    CallType.SERVICE.label: _("emergency/service"),
}
DIRECTION_LABELS = {
    Direction.OUTGOING.label: _("outgoing"),
    Direction.INCOMING.label: _("incoming"),
    Direction.INTERNAL.label: _("internal"),
}


def header(kind: ReportKind, report: Report) -> list[str]:
    """The column titles: the key, the measures, the currency."""
    return [str(kind.key_label), *(str(MEASURE_LABELS[m]) for m in report.measures),
            str(CURRENCY_LABEL)]


def key_json(kind: ReportKind, key):
    """A key as JSON and CSV write it: dates in ISO 8601, an hour of day as 0-23, a month
    as YYYY-MM, None as null (CSV: empty)."""
    if key is None:
        return None
    if kind.key_kind == MONTH:
        return f"{key:%Y-%m}"
    if kind.key_kind == SLOT:
        return f"{key:%Y-%m-%dT%H:%M}"
    if kind.key_kind == DATE:
        return key.isoformat()
    return key


def key_text(kind: ReportKind, key) -> str:
    """A key as the page and the PDF show it."""
    if key is None:
        return str(kind.none_label)
    if kind.key_kind == HOUR:
        return f"{key:02d}:00"
    if kind.key_kind == SLOT:
        return f"{key:%Y-%m-%d %H:%M}"
    if kind.name == "by_call_type":
        return str(CALL_TYPE_LABELS.get(key, key))
    return str(key_json(kind, key))


def key_cell(kind: ReportKind, key):
    """A key as an XLSX cell: dates as dates, an hour as a number, text made safe from
    being taken for a formula."""
    if key is None:
        return str(kind.none_label)
    if isinstance(key, date | datetime | int):
        return key
    return cell_text(key_text(kind, key))


def amount_json(value) -> str:
    """An amount exactly, as a decimal string."""
    return f"{value:f}"


def amount_text(value: Decimal, currency: str) -> str:
    """An amount to the currency's minor unit."""
    return f"{quantize_money(value, currency):f}"


def currency_text(currency: str) -> str:
    return currency or str(NOT_PRICED)


def measure_json(measure: str, value):
    return amount_json(value) if measure in MONEY else value


def as_json(kind: ReportKind, report: Report) -> dict:
    """{"rows": [{key, <measures>, currency}], "totals": [{<measures>, currency}]}."""
    return {
        "rows": [{"key": key_json(kind, row["key"]),
                  **{m: measure_json(m, row[m]) for m in report.measures},
                  "currency": row["currency"]} for row in report.rows],
        "totals": [{**{m: measure_json(m, t[m]) for m in report.measures},
                    "currency": t["currency"]} for t in report.totals],
    }


def text_rows(kind: ReportKind, report: Report) -> list[dict]:
    """The rows as the page and the PDF show them: {key, level, values, currency, ref}."""
    return [{"key": key_text(kind, row["key"]), "level": row.get("level", 0),
             "ref": row.get("ref"), "currency": currency_text(row["currency"]),
             "values": [_shown(m, row[m], row["currency"]) for m in report.measures]}
            for row in report.rows]


def text_totals(report: Report) -> list[dict]:
    """The totals as the page and the PDF show them: {currency, values, pairs}, `pairs`
    being (column title, value)."""
    totals = []
    for t in report.totals:
        values = [_shown(m, t[m], t["currency"]) for m in report.measures]
        totals.append({"currency": currency_text(t["currency"]), "values": values,
                       "pairs": [(MEASURE_LABELS[m], v) for m, v in zip(report.measures, values,
                                                                         strict=True)]})
    return totals


def _shown(measure, value, currency):
    return amount_text(value, currency) if measure in MONEY else value
