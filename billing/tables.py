"""R11.2: the one definition of a call row (STYLE "One definition per list").

`CallTable`'s columns render the calls page's HTML table (`render_<column>`) and, in the
same order and under their names, the CSV and XLSX exports (each column's field, through
`export_<column>` where the stored value is not the export's: typed values, numbers,
datetimes, text; billing.exports writes them). The columns up to `currency` are a
contract (issue 3: `manage.py export_calls` and the page's CSV): keep their names and
their order, and add new columns after them.
"""
import zoneinfo
from functools import lru_cache
from operator import attrgetter

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tariffs.choices import CallType, Direction
from tariffs.rating import quantize_money

NUMBER = {"th": {"class": "num"}, "td": {"class": "num"}}


def _by(field: str) -> tuple[str, str]:
    """A column's sort: the field, then the call id, so that paging through equal values
    neither repeats nor skips a call."""
    return (field, "id")


class CallTable(tables.Table):
    """R11.2: calls as the calls page lists them and as the exports write them."""

    start = tables.Column(_("Start (device time)"), order_by=("start", "id"),
                          initial_sort_descending=True)
    device = tables.Column(_("Device"), accessor="device__name", order_by=_by("device__name"))
    subscriber = tables.Column(_("Subscriber"), accessor="subscriber__full_name",
                               order_by=_by("subscriber__full_name"), empty_values=())
    extension = tables.Column(_("Extension"), order_by=_by("extension"))
    dialled = tables.Column(_("Dialled"), order_by=_by("dialled"))
    normalized = tables.Column(_("Normalised"), order_by=_by("normalized"))
    direction = tables.Column(_("Direction"), order_by=_by("direction"))
    call_type = tables.Column(_("Type"), order_by=_by("call_type"))
    duration = tables.Column(_("Duration, s"), attrs=NUMBER, order_by=_by("duration"),
                             initial_sort_descending=True)
    billable_seconds = tables.Column(_("Billed, s"), attrs=NUMBER,
                                     order_by=_by("billable_seconds"),
                                     initial_sort_descending=True)
    operator = tables.Column(_("Operator"), accessor="operator__name",
                             order_by=_by("operator__name"))
    code = tables.Column(_("Code"), order_by=_by("code"))
    tariff = tables.Column(_("Tariff"), accessor="tariff__name", order_by=_by("tariff__name"))
    # The page shows the currency in the cost's cell; the exports have a column of it.
    cost = tables.Column(_("Cost"), attrs=NUMBER, order_by=_by("cost"),
                         initial_sort_descending=True)
    currency = tables.Column(_("Currency"), visible=False)
    # -- the contract ends here; columns added after it:
    id = tables.Column(_("Call id"), visible=False)
    group = tables.Column(_("Group"), accessor="subscriber__group__name",
                          order_by=_by("subscriber__group__name"))
    route = tables.Column(_("Route"), accessor="route__name", order_by=_by("route__name"))

    class Meta:
        order_by = "-start"
        default = ""
        empty_text = _("No calls match these filters.")
        attrs = {"class": "calls"}

    def ordered_calls(self):
        """The table's calls in the table's order (a queryset, for an export to read)."""
        return self.data.data

    # -- the page's cells

    def render_start(self, record):
        local = record.local_start
        return format_html('<a href="{}">{}</a>', reverse("call_detail", args=[record.pk]),
                           local.strftime("%Y-%m-%d %H:%M:%S"))

    def render_subscriber(self, record):
        if record.subscriber is not None:
            return record.subscriber.full_name
        if record.is_unknown_number:
            return format_html('<span class="muted">{}</span>', gettext("unknown number"))
        return ""

    def render_direction(self, record):
        return gettext(Direction(record.direction).label)

    def render_call_type(self, record):
        return gettext(CallType(record.call_type).label)

    def render_cost(self, record):
        if record.cost is None:
            return ""
        return f"{quantize_money(record.cost, record.currency):f} {record.currency}"

    # -- the exports: each column's field (its accessor), read as a flat row of values
    # (`values_list`: some 4 times faster than building the calls and their related rows,
    # which a million calls feel), made an export's value by `export_<column>` where the
    # stored value is not it. Numbers stay numbers; a missing related row is None (an
    # empty cell); the writers escape text against formulas.

    # Read for the exports besides the columns' own fields.
    EXPORT_EXTRA_FIELDS = ("device__timezone",)

    @staticmethod
    def export_start(value, row):
        # In the device's zone, as the page shows it (R3.2).
        return value.astimezone(_zone(row.device__timezone))

    @staticmethod
    def export_direction(value, row):
        # The English word, whatever the page's language: the column is a contract.
        return Direction(value).label

    @staticmethod
    def export_cost(value, row):
        # To the currency's minor unit, as the page shows it (tariffs.rating: one rule).
        return None if value is None else quantize_money(value, row.currency)

    @classmethod
    def export_columns(cls) -> tuple[str, ...]:
        """The exports' header: every column's name, in the table's order."""
        return tuple(cls.base_columns)

    @classmethod
    def export_fields(cls) -> tuple[str, ...]:
        """What an export reads of each call (`values_list`): the columns' fields, in
        their order, then EXPORT_EXTRA_FIELDS."""
        return (*(str(column.accessor or name) for name, column in cls.base_columns.items()),
                *cls.EXPORT_EXTRA_FIELDS)

    @classmethod
    def export_values(cls) -> list:
        """One function per column, flat row -> the export's value, in column order."""
        values = []
        for name, field in zip(cls.export_columns(), cls.export_fields(), strict=False):
            convert = getattr(cls, f"export_{name}", None)
            values.append(_converted(field, convert) if convert else attrgetter(field))
        return values


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _converted(field, convert):
    read = attrgetter(field)

    def value(row):
        return convert(read(row), row)
    return value
