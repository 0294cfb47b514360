"""Call export rows, shared by `manage.py export_calls` and the calls page (R11.2)."""
import csv
import zoneinfo

from tariffs.choices import CallType, Direction
from tariffs.rating import quantize_money
from tariffs.spreadsheets import cell_text

# The first columns are a contract (issue 3); add new ones after them.
CALL_COLUMNS = (
    "start", "device", "subscriber", "extension", "dialled", "normalized", "direction",
    "call_type", "duration", "billable_seconds", "operator", "code", "tariff", "cost",
    "currency",
)


def call_row(call) -> dict:
    """One call as export values; `start` is ISO 8601 in the device's time zone."""
    zone = zoneinfo.ZoneInfo(call.device.timezone)
    return {
        "start": call.start.astimezone(zone).isoformat(),
        "device": call.device.name,
        "subscriber": call.subscriber.full_name if call.subscriber else "",
        "extension": call.extension,
        "dialled": call.dialled,
        "normalized": call.normalized,
        "direction": Direction(call.direction).label,
        "call_type": CallType(call.call_type).value,
        "duration": call.duration,
        "billable_seconds": call.billable_seconds,
        "operator": call.operator.name if call.operator else "",
        "code": call.code,
        "tariff": call.tariff.name if call.tariff else "",
        "cost": "" if call.cost is None else f"{quantize_money(call.cost, call.currency):f}",
        "currency": call.currency,
    }


def call_cells(call) -> list:
    """One call as the cells of a CSV or XLSX row, in CALL_COLUMNS' order; text that a
    spreadsheet would take for a formula is escaped (tariffs.spreadsheets)."""
    return [cell_text(value) for value in call_row(call).values()]


def write_calls_csv(calls, stream) -> int:
    """Write `calls` as CSV with a header row; return the number of calls written."""
    writer = csv.writer(stream)
    writer.writerow(CALL_COLUMNS)
    count = 0
    for call in calls:
        writer.writerow(call_cells(call))
        count += 1
    return count
