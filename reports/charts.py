"""R11.3: a report's chart, as data: the same labels and series for the page (Chart.js),
the XLSX (its chart sheet) and the PDF (a reportlab bar chart). One series of money per
currency (amounts of different currencies never share a bar), and the counts (calls, or
calls at once) on an axis of their own."""
from django.utils.translation import gettext as _

from reports.catalogue import ReportKind
from reports.selectors import ZERO, Report
from reports.tables import MEASURE_LABELS, MONEY, key_text

# A chart of more bars than this is unreadable; it shows the first ones (the table all).
CHART_KEYS = 25
MONEY_AXIS, COUNT_AXIS = "money", "count"


def chart_data(kind: ReportKind, report: Report, limit: int = CHART_KEYS) -> dict:
    """{"labels": [...], "datasets": [{"label", "measure", "currency", "axis", "data"}],
    "truncated": bool}; money as exact decimal strings, counts as numbers."""
    labels: list[str] = []
    index: dict[object, int] = {}
    for row in report.rows:
        if row["key"] not in index:
            index[row["key"]] = len(labels)
            labels.append(key_text(kind, row["key"]))
    truncated = len(labels) > limit
    labels = labels[:limit]
    series: dict[tuple[str, str], list] = {}
    # Money first (the bars), then the counts.
    for measure in report.measures:
        if measure in MONEY:
            for currency in sorted({row["currency"] for row in report.rows}):
                if currency:  # unrated calls have no money to draw
                    series[(measure, currency)] = [ZERO] * len(labels)
    for measure in report.measures:
        if measure in ("calls", "concurrent"):
            series[(measure, "")] = [0] * len(labels)
    for row in report.rows:
        position = index[row["key"]]
        if position >= limit:
            continue
        for (measure, currency), data in series.items():
            if currency and currency != row["currency"]:
                continue
            if measure == "concurrent":
                data[position] = max(data[position], row[measure])
            else:
                data[position] += row[measure]
    datasets = []
    for (measure, currency), data in series.items():
        name = str(MEASURE_LABELS[measure])
        datasets.append({
            "label": f"{name}, {currency}" if currency else name,
            "measure": measure, "currency": currency,
            "axis": MONEY_AXIS if measure in MONEY else COUNT_AXIS,
            "data": [f"{v:f}" for v in data] if measure in MONEY else data,
        })
    return {"title": str(kind.title), "labels": labels, "datasets": datasets,
            "truncated": truncated, "money_label": _("Amount"), "count_label": _("Count")}
