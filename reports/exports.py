"""R11.3: a report as CSV, XLSX (openpyxl: numbers as numbers, dates as dates, the totals,
the chart's data on a sheet of its own with a chart of it) and PDF (reportlab, as the
statements are made: the table, the totals and the chart drawn as a bar chart)."""
import csv
import io
import json
from datetime import date
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

from django.utils.translation import gettext as _

from reports.catalogue import DATE, MONTH, SLOT, ReportKind
from reports.charts import MONEY_AXIS, chart_data
from reports.selectors import Report
from reports.tables import (
    MONEY,
    amount_json,
    as_json,
    header,
    key_cell,
    key_json,
    text_rows,
    text_totals,
)
from tariffs.spreadsheets import cell_text

# A font with Cyrillic, the one the statements use (billing/fonts), else the system's.
_FONTS = (
    str(files("billing") / "fonts" / "DejaVuSans.ttf"),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
_KEY_FORMATS = {DATE: "yyyy-mm-dd", SLOT: "yyyy-mm-dd hh:mm", MONTH: "yyyy-mm"}
_MONEY_FORMAT = "#,##0.0000"


def total_label() -> str:
    return _("Total")


def write_csv(kind: ReportKind, report: Report, stream) -> None:
    """The rows with a header, then a row per currency whose key is "Total"; amounts
    exact; text that a spreadsheet would take for a formula is escaped."""
    writer = csv.writer(stream)
    writer.writerow(header(kind, report))
    for row in report.rows:
        key = key_json(kind, row["key"])
        writer.writerow([cell_text("" if key is None else str(key)),
                         *(_csv_value(m, row[m]) for m in report.measures), row["currency"]])
    for total in report.totals:
        writer.writerow([total_label(), *(_csv_value(m, total[m]) for m in report.measures),
                         total["currency"]])


def _csv_value(measure, value):
    return amount_json(value) if measure in MONEY else value


def csv_bytes(kind: ReportKind, report: Report, lines: list[str] = ()) -> bytes:
    buffer = io.StringIO()
    write_csv(kind, report, buffer)
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(kind: ReportKind, report: Report, lines: list[str] = ()) -> bytes:
    """Sheet "Report": the title, the filters, the table and the totals per currency;
    sheet "Chart data": the chart's labels and series, with a bar chart of them."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    bold = Font(bold=True)
    book = Workbook()
    sheet = book.active
    sheet.title = _("Report")[:31]
    sheet.append([str(kind.title)])
    sheet["A1"].font = Font(bold=True, size=14)
    for line in lines:
        sheet.append([cell_text(line)])
    sheet.append([])
    sheet.append(header(kind, report))
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    first_row = sheet.max_row + 1
    for row in report.rows:
        sheet.append([key_cell(kind, row["key"]), *(row[m] for m in report.measures),
                      row["currency"]])
    for total in report.totals:
        sheet.append([total_label(), *(total[m] for m in report.measures), total["currency"]])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
    key_format = _KEY_FORMATS.get(kind.key_kind)
    for number, line in enumerate(sheet.iter_rows(min_row=first_row), start=first_row):
        if key_format and number < first_row + len(report.rows):
            line[0].number_format = key_format
        for measure, cell in zip(report.measures, line[1:], strict=False):
            if measure in MONEY:
                cell.number_format = _MONEY_FORMAT
    sheet.column_dimensions["A"].width = 40

    chart = chart_data(kind, report)
    data = book.create_sheet(_("Chart data")[:31])
    data.append([str(kind.key_label), *(d["label"] for d in chart["datasets"])])
    for cell in data[1]:
        cell.font = bold
    for position, label in enumerate(chart["labels"]):
        data.append([cell_text(label),
                     *(_number(d, d["data"][position]) for d in chart["datasets"])])
    money = [i for i, d in enumerate(chart["datasets"]) if d["axis"] == MONEY_AXIS]
    drawn = money or list(range(len(chart["datasets"])))
    if chart["labels"] and drawn:
        bars = BarChart()
        bars.title = str(kind.title)
        bars.y_axis.title = chart["money_label"] if money else chart["count_label"]
        for i in drawn:
            bars.add_data(Reference(data, min_col=i + 2, min_row=1,
                                    max_row=len(chart["labels"]) + 1), titles_from_data=True)
        bars.set_categories(Reference(data, min_col=1, min_row=2,
                                      max_row=len(chart["labels"]) + 1))
        bars.width, bars.height = 24, 12
        data.add_chart(bars, f"{chr(ord('B') + len(chart['datasets']) + 1)}2")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _number(dataset, value):
    return Decimal(value) if dataset["axis"] == MONEY_AXIS else value


def pdf_bytes(kind: ReportKind, report: Report, lines: list[str] = ()) -> bytes:
    """An A4 PDF: the title and filters, the chart (bars of money per currency, or of the
    counts where there is no money), the table and the totals per currency."""
    # Loaded only when a PDF is made (as billing.statements does).
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "Helvetica"
    for path in _FONTS:
        if Path(path).exists():
            pdfmetrics.registerFont(TTFont("ReportFont", path))
            font = "ReportFont"
            break
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    story = [Paragraph(_escape(str(kind.title)), styles["Title"])]
    story += [Paragraph(_escape(line), styles["Normal"]) for line in lines]
    story.append(Spacer(1, 10))

    chart = chart_data(kind, report)
    money = [d for d in chart["datasets"] if d["axis"] == MONEY_AXIS]
    drawn = money or chart["datasets"]
    palette = [colors.HexColor(c) for c in ("#1f5fa8", "#e07b39", "#3a9d5d", "#b03a48",
                                            "#7c5cbf", "#8c8c8c")]
    if chart["labels"] and drawn:
        drawing = Drawing(480, 230)
        bars = VerticalBarChart()
        bars.x, bars.y, bars.width, bars.height = 45, 60, 420, 140
        bars.data = [[float(v) for v in d["data"]] for d in drawn]
        bars.categoryAxis.categoryNames = [label[:14] for label in chart["labels"]]
        bars.categoryAxis.labels.angle = 30
        bars.categoryAxis.labels.boxAnchor = "ne"
        bars.categoryAxis.labels.fontName = font
        bars.categoryAxis.labels.fontSize = 7
        bars.valueAxis.labels.fontName = font
        bars.valueAxis.labels.fontSize = 7
        bars.valueAxis.valueMin = 0
        for i in range(len(drawn)):
            bars.bars[i].fillColor = palette[i % len(palette)]
        drawing.add(bars)
        legend = Legend()
        legend.x, legend.y = 50, 225
        legend.fontName, legend.fontSize = font, 8
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.colorNamePairs = [(palette[i % len(palette)], d["label"])
                                 for i, d in enumerate(drawn)]
        drawing.add(legend)
        story += [drawing, Spacer(1, 10)]

    rows = [header(kind, report)]
    rows += [[("  " * r["level"]) + r["key"], *(str(v) for v in r["values"]), r["currency"]]
             for r in text_rows(kind, report)]
    count = len(rows)
    rows += [[total_label(), *(str(v) for v in t["values"]), t["currency"]]
             for t in text_totals(report)]
    table = Table(rows, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
        ("ALIGN", (1, 0), (-2, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
        ("LINEABOVE", (0, count), (-1, count), 0.5, colors.grey),
    ]))
    story.append(table)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=str(kind.title)).build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    """Paragraph text is a mark-up: names with < or & are shown, not parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def export(kind: ReportKind, report: Report, fmt: str, lines: list[str] = ()) -> bytes:
    """The report in `fmt` (csv, json, xlsx, pdf)."""
    if fmt == "json":
        return (json.dumps(as_json(kind, report), ensure_ascii=False, indent=2) + "\n").encode()
    return {"csv": csv_bytes, "xlsx": xlsx_bytes, "pdf": pdf_bytes}[fmt](kind, report, lines)


def filename(kind: ReportKind, day_from: date | None, day_to: date | None, fmt: str) -> str:
    period = f"_{day_from:%Y%m%d}-{day_to:%Y%m%d}" if day_from and day_to else ""
    return f"{kind.name}{period}.{fmt}"

