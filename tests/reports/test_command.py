"""R11.3: `manage.py report NAME --from D --to D ... --format json|csv|xlsx|pdf --output F`."""
import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook


def run(*args) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_is_rows_and_totals_with_exact_decimal_strings(calls):
    # when the January report by destination is printed as JSON
    printed = run("by_destination", "--from", "2024-01-01", "--to", "2024-01-31")
    # then it is exactly the rows {key, calls, seconds, cost, currency} and the totals
    assert json.loads(printed) == {
        "rows": [
            {"key": "Kyiv", "calls": 3, "seconds": 155, "cost": "1.7500", "currency": "UAH"},
            {"key": "Mobile", "calls": 2, "seconds": 60, "cost": "1.5000", "currency": "UAH"},
            {"key": "Poland", "calls": 3, "seconds": 945, "cost": "2.1000", "currency": "USD"},
            {"key": "Ukraine", "calls": 1, "seconds": 90, "cost": "2.0000", "currency": "UAH"},
            {"key": None, "calls": 1, "seconds": 200, "cost": "0.0000", "currency": ""},
        ],
        "totals": [
            {"calls": 1, "seconds": 200, "cost": "0.0000", "currency": ""},
            {"calls": 6, "seconds": 305, "cost": "5.2500", "currency": "UAH"},
            {"calls": 3, "seconds": 945, "cost": "2.1000", "currency": "USD"},
        ],
    }
    assert list(json.loads(printed)["rows"][0]) == ["key", "calls", "seconds", "cost", "currency"]


def test_json_of_a_group_report_by_device_and_of_days(calls):
    # when the report by group is run for Inside, and by day for London's device
    groups = json.loads(run("by_group", "--from", "2024-01-01", "--to", "2024-01-31",
                            "--group", "Inside"))
    days = json.loads(run("by_day", "--from", "2024-01-01", "--to", "2024-01-31",
                          "--device", "LondonPBX"))
    # then the group's subtree and the device's day are what they hold
    assert [(r["key"], r["cost"], r["currency"]) for r in groups["rows"]] == [
        ("Sales / Inside", "2.0000", "UAH"), ("Sales / Inside", "1.2500", "USD"),
        ("Sales / Inside / Key accounts", "1.2500", "USD")]
    assert days == {"rows": [{"key": "2024-01-10", "calls": 1, "seconds": 45, "cost": "0.1000",
                              "currency": "USD"}],
                    "totals": [{"calls": 1, "seconds": 45, "cost": "0.1000", "currency": "USD"}]}


def test_top_n_and_busiest_hours_in_json(calls):
    top = json.loads(run("top_destinations", "--from", "2024-01-01", "--to", "2024-01-31",
                         "--top", "1"))
    busiest = json.loads(run("busiest_hours", "--from", "2024-01-01", "--to", "2024-01-31",
                             "--top", "1"))
    assert [r["key"] for r in top["rows"]] == ["Ukraine", "Poland"]
    assert busiest["rows"][0] == {"key": "2024-01-10T10:00", "calls": 2, "seconds": 180,
                                  "cost": "2.5000", "concurrent": 2, "currency": "UAH"}


def test_csv_goes_to_the_standard_output(calls):
    printed = run("by_call_type", "--from", "2024-01-01", "--to", "2024-01-31", "--format", "csv")
    lines = list(csv.reader(io.StringIO(printed)))
    assert lines[0] == ["Call type", "Calls", "Talk time, s", "Cost", "Currency"]
    assert lines[2] == ["local", "3", "155", "1.7500", "UAH"]
    assert lines[-3:] == [["Total", "1", "200", "0.0000", ""], ["Total", "6", "305", "5.2500", "UAH"],
                          ["Total", "3", "945", "2.1000", "USD"]]


def test_xlsx_and_pdf_are_written_to_the_output(calls, tmp_path):
    # when the report is written as XLSX and PDF
    for fmt in ("xlsx", "pdf"):
        run("by_subscriber", "--from", "2024-01-01", "--to", "2024-01-31", "--format", fmt,
            "--output", str(tmp_path / f"r.{fmt}"))
    # then both files are there, and the XLSX holds the report
    sheet = load_workbook(tmp_path / "r.xlsx")["Report"]
    assert sheet["A1"].value == "By subscriber"
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(("args", "message"), [
    (["by_nothing", "--from", "2024-01-01", "--to", "2024-01-31"], "No report 'by_nothing'"),
    (["by_day", "--from", "2024-13-01", "--to", "2024-01-31"], "--from: Enter a valid date."),
    (["by_day", "--from", "2024-02-01", "--to", "2024-01-31"],
     "--to: The period ends before it starts."),
    (["by_day", "--from", "2024-01-01", "--to", "2024-01-31", "--group", "Nowhere"],
     "--group: No group Nowhere."),
    (["by_day", "--from", "2024-01-01", "--to", "2024-01-31", "--device", "NoPBX"],
     "--device: no device 'NoPBX'"),
    (["by_day", "--from", "2024-01-01", "--to", "2024-01-31", "--format", "pdf"],
     "A PDF report needs --output FILE."),
    (["by_day", "--from", "2024-01-01", "--to", "2024-01-31", "--top", "5"],
     "--top does not apply to by_day."),
    (["top_numbers", "--from", "2024-01-01", "--to", "2024-01-31", "--top", "0"],
     "--top: Ensure this value is greater than or equal to 1."),
    (["by_day", "--from", "2024-01-01", "--to", "2024-01-31", "--call-type", "lunar"],
     "No call type 'lunar'"),
])
def test_wrong_options_are_said_clearly(calls, args, message):
    with pytest.raises(CommandError) as refused:
        run(*args)
    assert message in str(refused.value)
