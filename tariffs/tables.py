"""R11.1: the Tariffs pages' lists, one django-tables2 table each (columns, sorting and
paging defined once). The rows come from tariffs.selectors; cells read only what the
selector annotated or prefetched, so a page costs a fixed number of queries."""
from decimal import Decimal

import django_tables2 as tables
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from tariffs.forms import CALL_TYPE_LABELS, DIRECTION_LABELS

PER_PAGE = 50
TEMPLATE = "tariffs/table.html"
NUM = {"td": {"class": "num"}, "th": {"class": "num"}}


def amount(value: Decimal | None) -> str:
    """A price as people write it in the page's language, without trailing zeros past the
    second decimal (0.500000 -> 0.50; 0,50 in Ukrainian)."""
    if value is None:
        return ""
    fraction = format(value.normalize(), "f").partition(".")[2]
    return number_format(value, decimal_pos=max(2, len(fraction)))


class _Actions(tables.TemplateColumn):
    """A row's links, each shown only to users with its right (`perms` of the page)."""

    def __init__(self, template_name):
        super().__init__(template_name=template_name, verbose_name="", orderable=False,
                         attrs={"td": {"class": "actions"}})


class OperatorTable(tables.Table):
    name = tables.Column(verbose_name=_("Operator"), linkify=("tariff_operator", {"pk": tables.A("pk")}))
    currency = tables.Column(verbose_name=_("Currency"))
    tariff_count = tables.Column(verbose_name=_("Tariffs"), attrs=NUM)
    code_count = tables.Column(verbose_name=_("Codes"), attrs=NUM)
    band_count = tables.Column(verbose_name=_("Time bands"), attrs=NUM)
    description = tables.Column(verbose_name=_("Description"), orderable=False)
    actions = _Actions("tariffs/actions/operator.html")

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No operators yet.")
        fields = ()
        order_by = ("name",)


class PlanTable(tables.Table):
    name = tables.Column(verbose_name=_("Tariff plan"))
    description = tables.Column(verbose_name=_("Description"), orderable=False)
    operator_count = tables.Column(verbose_name=_("Operators priced"), attrs=NUM)
    price_count = tables.Column(verbose_name=_("Prices"), attrs=NUM)
    actions = _Actions("tariffs/actions/plan.html")

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No tariff plans yet.")
        fields = ()
        order_by = ("name",)


class PlanPriceColumn(tables.Column):
    """A tariff's base price per minute in one plan, with its connection fee."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__(verbose_name=plan.name, accessor="pk", orderable=False,
                         attrs=NUM)

    def render(self, record):
        for price in record.base_prices:
            if price.plan_id == self.plan.pk:
                if price.connection_fee:
                    return format_html("{}<br><span class=\"muted\">+{}</span>",
                                       amount(price.price_per_minute), amount(price.connection_fee))
                return amount(price.price_per_minute)
        return "—"


class TariffTable(tables.Table):
    name = tables.Column(verbose_name=_("Tariff"), linkify=lambda record: reverse(
        "tariff_detail", kwargs={"pk": record.operator_id, "tariff_pk": record.pk}))
    direction = tables.Column(verbose_name=_("Direction"))
    call_type = tables.Column(verbose_name=_("Call type"), default="—")
    valid_from = tables.DateColumn(verbose_name=_("Valid from"), format="Y-m-d")
    valid_to = tables.DateColumn(verbose_name=_("Valid to"), format="Y-m-d", default="—")
    increments = tables.Column(verbose_name=_("Increments, s"), accessor="first_interval",
                               order_by=("first_interval", "next_interval"))
    free_seconds = tables.Column(verbose_name=_("Free, s"), attrs={"td": {"class": "num"}})
    min_seconds = tables.Column(verbose_name=_("Minimum, s"), attrs={"td": {"class": "num"}})
    account_description = tables.Column(verbose_name=_("Description for personal accounts"))
    code_count = tables.Column(verbose_name=_("Codes"), attrs=NUM)
    actions = _Actions("tariffs/actions/tariff.html")

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No tariffs.")
        fields = ()
        order_by = ("name", "direction", "valid_from")
        sequence = ("name", "direction", "call_type", "valid_from", "valid_to", "increments",
                    "free_seconds", "min_seconds", "account_description", "code_count", "...",
                    "actions")

    def __init__(self, data, *, plans, **kwargs):
        super().__init__(data, extra_columns=[(f"plan_{p.pk}", PlanPriceColumn(p)) for p in plans],
                         **kwargs)

    def render_direction(self, value):
        return DIRECTION_LABELS.get(value, value)

    def render_call_type(self, value):
        return CALL_TYPE_LABELS.get(value, value)

    def render_increments(self, record):
        return f"{record.first_interval}/{record.next_interval}"


class CodeTable(tables.Table):
    code = tables.Column(verbose_name=_("Code"))
    name = tables.Column(verbose_name=_("Name"))
    tariff = tables.Column(verbose_name=_("Tariff"), accessor="tariff__name",
                           linkify=lambda record: reverse(
                               "tariff_detail", kwargs={"pk": record.operator_id,
                                                        "tariff_pk": record.tariff_id}))
    direction = tables.Column(verbose_name=_("Direction"), accessor="tariff__direction")
    call_type = tables.Column(verbose_name=_("Call type"), default="—")
    category = tables.Column(verbose_name=_("Category"))
    valid_from = tables.DateColumn(verbose_name=_("Valid from"), format="Y-m-d")
    valid_to = tables.DateColumn(verbose_name=_("Valid to"), format="Y-m-d", default="—")
    state = tables.Column(verbose_name=_("Today"), accessor="pk", orderable=False)
    actions = _Actions("tariffs/actions/code.html")

    STATES = {"current": _("in force"), "earlier": _("earlier"), "future": _("future")}

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No codes.")
        fields = ()
        row_attrs = {"class": lambda table, record: f"code-{table.states.get(record.pk, '')}"}

    def __init__(self, data, *, states=None, **kwargs):
        super().__init__(data, **kwargs)
        self.states = states or {}

    def render_direction(self, value):
        return DIRECTION_LABELS.get(value, value)

    def render_call_type(self, value):
        return CALL_TYPE_LABELS.get(value, value)

    def render_state(self, record):
        state = self.states.get(record.pk, "")
        if state == "current":
            return format_html('<span class="online">{}</span>', self.STATES[state])
        return format_html('<span class="muted">{}</span>', self.STATES.get(state, ""))


class BandTable(tables.Table):
    name = tables.Column(verbose_name=_("Time band"), linkify=lambda record: reverse(
        "tariff_band_detail", kwargs={"pk": record.operator_id, "band_pk": record.pk}))
    weekdays = tables.Column(verbose_name=_("Weekdays"))
    hours = tables.Column(verbose_name=_("Hours"), accessor="start_time", orderable=False)
    holidays = tables.BooleanColumn(verbose_name=_("Holidays"))
    priority = tables.Column(verbose_name=_("Priority"), attrs={"td": {"class": "num"}})
    price_count = tables.Column(verbose_name=_("Prices"), attrs=NUM)
    actions = _Actions("tariffs/actions/band.html")

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No time bands: every call is priced at its tariff's base price.")
        fields = ()
        order_by = ("priority", "name")

    def render_weekdays(self, value):
        return weekday_names(value)

    def render_hours(self, record):
        return f"{record.start_time:%H:%M}–{record.end_time:%H:%M}"


WEEKDAYS = {"1": _("Mon"), "2": _("Tue"), "3": _("Wed"), "4": _("Thu"), "5": _("Fri"),
            "6": _("Sat"), "7": _("Sun")}


def weekday_names(days: str) -> str:
    return ", ".join(str(WEEKDAYS[d]) for d in days if d in WEEKDAYS)


class BandPriceTable(tables.Table):
    tariff = tables.Column(verbose_name=_("Tariff"), accessor="tariff__name")
    plan = tables.Column(verbose_name=_("Tariff plan"), accessor="plan__name")
    price_per_minute = tables.Column(verbose_name=_("Price per minute"),
                                     attrs=NUM)
    connection_fee = tables.Column(verbose_name=_("Connection fee"),
                                   attrs=NUM)

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No prices in this band yet: set them on a tariff's page.")
        fields = ()
        order_by = ("tariff", "plan")

    def render_price_per_minute(self, value):
        return amount(value)

    def render_connection_fee(self, value):
        return amount(value)


class ValidFromTable(tables.Table):
    operator = tables.Column(verbose_name=_("Operator"), accessor="operator_name")
    valid_from = tables.DateColumn(verbose_name=_("Tariffs valid from"), format="Y-m-d")
    tariffs = tables.Column(verbose_name=_("Tariffs"), attrs=NUM)
    actions = _Actions("tariffs/actions/valid_from.html")

    class Meta:
        template_name = TEMPLATE
        empty_text = _("No tariffs yet.")
        fields = ()
        order_by = ("-valid_from", "operator")
