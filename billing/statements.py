"""R7.3: a subscriber's statement for a period: opening balance, charges, payments,
closing balance; as a page and as a PDF."""
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.db.models import Sum

from billing.models import Charge, Payment, Subscriber
from tariffs.rating import quantize_money

_ZERO = Decimal(0)
# A font with Cyrillic (subscribers' names are often Ukrainian), shipped with the code
# (billing/fonts/LICENSE); the system's copy where a packager removed ours; reportlab's
# Helvetica, which lacks Cyrillic, only when there is none.
_FONTS = (
    str(Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


@dataclass
class Statement:
    subscriber: Subscriber
    period_start: date
    period_end: date
    opening: Decimal
    charges: list[Charge]
    payments: list[Payment]
    currency: str

    @property
    def charged(self) -> Decimal:
        return sum((c.amount for c in self.charges), _ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), _ZERO)

    @property
    def closing(self) -> Decimal:
        return self.opening + self.paid - self.charged

    def money(self, amount: Decimal) -> str:
        return f"{quantize_money(amount, self.currency):f}"


def statement_build(*, subscriber: Subscriber, period_start: date, period_end: date) -> Statement:
    """R7.3: charges of the periods that start within [period_start, period_end], payments
    made within it, and the balances before and after (R7.2: payments minus charges)."""
    if period_start > period_end:
        raise ValueError("the period ends before it starts")
    paid_before = Payment.objects.filter(subscriber=subscriber, date__lt=period_start).aggregate(
        s=Sum("amount"))["s"] or _ZERO
    charged_before = Charge.objects.filter(
        subscriber=subscriber, period_start__lt=period_start).aggregate(s=Sum("amount"))["s"]
    charges = list(Charge.objects.filter(subscriber=subscriber, period_start__gte=period_start,
                                         period_start__lte=period_end)
                   .order_by("period_start", "service_name"))
    payments = list(Payment.objects.filter(subscriber=subscriber, date__gte=period_start,
                                           date__lte=period_end).order_by("date", "id"))
    currency = next((c.currency for c in charges if c.currency), "") or "UAH"
    return Statement(subscriber, period_start, period_end, paid_before - (charged_before or _ZERO),
                     charges, payments, currency)


def statement_pdf(statement: Statement) -> bytes:
    """The statement as an A4 PDF (reportlab)."""
    # reportlab is loaded only when a PDF is made: the web and worker processes that never
    # make one do not pay for importing it.
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "Helvetica"
    for path in _FONTS:
        if Path(path).exists():
            pdfmetrics.registerFont(TTFont("StatementFont", path))
            font = "StatementFont"
            break
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    s, money = statement.subscriber, statement.money
    story = [
        Paragraph(f"Statement of account {s.account_number}", styles["Title"]),
        Paragraph(f"{s.full_name}; contract {s.contract_number or '—'}", styles["Normal"]),
        Paragraph(f"Period {statement.period_start:%Y-%m-%d} – {statement.period_end:%Y-%m-%d}; "
                  f"amounts in {statement.currency}", styles["Normal"]),
        Spacer(1, 12),
    ]
    rows = [["", "Date / period", "Service or payment", "Count", "Amount"],
            ["Opening balance", "", "", "", money(statement.opening)]]
    rows += [["Charge", f"{c.period_start:%Y-%m}", c.service_name, str(c.count),
              f"-{money(c.amount)}"] for c in statement.charges]
    rows += [["Payment", f"{p.date:%Y-%m-%d}", f"{p.get_type_display()} {p.bank}".strip(), "",
              money(p.amount)] for p in statement.payments]
    rows.append(["Closing balance", "", "", "", money(statement.closing)])
    table = Table(rows, colWidths=[80, 70, 200, 50, 80])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
        ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
        ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.grey),
    ]))
    story.append(table)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=f"Statement {s.account_number}").build(story)
    return buffer.getvalue()
