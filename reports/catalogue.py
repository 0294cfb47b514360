"""R11.3: the reports by name (the names are a contract: the page's URL, `manage.py report
NAME`, docs/reports.md), with their titles, sections and what their key and filters are."""
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from reports import selectors
from reports.selectors import Report

# What a key is: how it is shown, written to JSON and CSV, and typed in XLSX.
TEXT, DATE, HOUR, SLOT, MONTH = "text", "date", "hour", "slot", "month"
# Reports over calls are for those who may see calls; a provider's accounts also need
# the rights to see charges and payments.
CALLS = ("billing.view_call",)
ACCOUNTS = ("billing.view_call", "billing.view_charge", "billing.view_payment")

SECTION_COST = _("Cost and duration")
SECTION_TIME = _("By time")
SECTION_TOP = _("Top")
SECTION_CHECK = _("Calls to look at")
SECTION_ACCOUNTS = _("Accounts")
SECTIONS = (SECTION_COST, SECTION_TIME, SECTION_TOP, SECTION_CHECK, SECTION_ACCOUNTS)


@dataclass(frozen=True)
class ReportKind:
    name: str
    title: str
    section: str
    description: str
    key_label: str
    build: Callable[..., Report]
    key_kind: str = TEXT
    # Shown where the key is None.
    none_label: str = ""
    uses_top: bool = False
    # The filters of calls (device, call type, direction) apply.
    over_calls: bool = True
    permissions: tuple[str, ...] = CALLS

    def run(self, filters: dict) -> Report:
        return self.build(filters=filters)


_NO_SUBSCRIBER = _("no subscriber (number in no directory)")
KINDS = (
    ReportKind("by_subscriber", _("By subscriber"), SECTION_COST,
               _("Calls, talk time and cost of each subscriber."), _("Subscriber"),
               selectors.by_subscriber, none_label=_NO_SUBSCRIBER),
    ReportKind("by_group", _("By group"), SECTION_COST,
               _("Each group with everything below it in the tree."), _("Group"),
               selectors.by_group, none_label=_("no group")),
    ReportKind("by_destination", _("By destination"), SECTION_COST,
               _("By the tariff that priced the call (its destination)."), _("Destination"),
               selectors.by_destination, none_label=_("not priced")),
    ReportKind("by_call_type", _("By call type"), SECTION_COST,
               _("Local, long-distance, international, mobile, internal, incoming…"),
               _("Call type"), selectors.by_call_type),
    ReportKind("by_operator", _("By operator"), SECTION_COST,
               _("By the carrier that carried the call."), _("Operator"),
               selectors.by_operator, none_label=_("no operator")),
    ReportKind("by_route", _("By route"), SECTION_COST,
               _("By the device's route (trunk) as the PBX names it."), _("Route"),
               selectors.by_route, none_label=_("no route")),
    ReportKind("by_day", _("By day"), SECTION_TIME,
               _("Each day of the period, on the device's calendar."), _("Day"),
               selectors.by_day, key_kind=DATE),
    ReportKind("by_hour", _("By hour of day"), SECTION_TIME,
               _("Each hour of the day, on the device's clock."), _("Hour"),
               selectors.by_hour, key_kind=HOUR),
    ReportKind("busiest_hours", _("Busiest hours"), SECTION_TIME,
               _("The hours with most calls, and the most calls at once in each."),
               _("Hour"), selectors.busiest_hours, key_kind=SLOT, uses_top=True),
    ReportKind("top_subscribers", _("Top subscribers"), SECTION_TOP,
               _("The subscribers who cost most, in each currency."), _("Subscriber"),
               selectors.top_subscribers, uses_top=True),
    ReportKind("top_numbers", _("Top numbers"), SECTION_TOP,
               _("The numbers dialled that cost most, in each currency."), _("Number"),
               selectors.top_numbers, uses_top=True),
    ReportKind("top_destinations", _("Top destinations"), SECTION_TOP,
               _("The destinations that cost most, in each currency."), _("Destination"),
               selectors.top_destinations, uses_top=True),
    ReportKind("unknown_numbers", _("Unknown numbers"), SECTION_CHECK,
               _("Calls from numbers that are in no subscriber's directory."), _("Number"),
               selectors.unknown_numbers, none_label=_("no number")),
    ReportKind("unanswered", _("Unanswered calls"), SECTION_CHECK,
               _("Calls without talk time, by subscriber."), _("Subscriber"),
               selectors.unanswered, none_label=_NO_SUBSCRIBER),
    ReportKind("short_calls", _("Short calls"), SECTION_CHECK,
               _("Answered calls of a few seconds, by subscriber."), _("Subscriber"),
               selectors.short_calls, none_label=_NO_SUBSCRIBER),
    ReportKind("charges_payments", _("Charges and payments"), SECTION_ACCOUNTS,
               _("A provider's charges and payments by month."), _("Month"),
               selectors.charges_payments, key_kind=MONTH, over_calls=False,
               permissions=ACCOUNTS),
)
REPORTS = {kind.name: kind for kind in KINDS}
