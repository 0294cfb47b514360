"""R11.3: reports/static/reports/chart.js turns the page's chart data into a Chart.js chart:
run under Node.js with a stand-in for the page and for Chart, whose configuration is read
back."""
import json
import shutil
import subprocess
from pathlib import Path

from reports.catalogue import REPORTS
from reports.charts import chart_data
from tests.conftest import needs
from tests.reports.conftest import JANUARY

SCRIPT = Path(__file__).resolve().parents[2] / "reports" / "static" / "reports" / "chart.js"
HARNESS = """
const fs = require("fs");
const data = fs.readFileSync(0, "utf8");
const made = [];
global.document = {documentElement: {}, getElementById: (id) =>
  ({"report-chart-data": {textContent: data}, "report-chart": {id: "report-chart"}})[id]};
global.getComputedStyle = () => ({getPropertyValue: (name) => name === "--fg" ? " #e4e7ec" : ""});
global.Chart = function (canvas, config) { made.push({canvas: canvas.id, config: config}); };
eval(fs.readFileSync(process.argv[1], "utf8"));
process.stdout.write(JSON.stringify(made));
"""


def run_script(chart: dict) -> list[dict]:
    node = shutil.which("node")
    needs(bool(node), "needs Node.js (package nodejs)")
    done = subprocess.run([node, "-e", HARNESS, str(SCRIPT)], input=json.dumps(chart),
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_money_is_drawn_as_bars_per_currency_and_calls_as_a_line(calls):
    # given the chart data of the report by destination
    kind = REPORTS["by_destination"]
    chart = chart_data(kind, kind.run(dict(JANUARY)))
    # when the page's script draws it
    (made,) = run_script(chart)
    config = made["config"]
    # then the bars are the cost per currency on the money axis, numbers (not strings), and
    # the calls a line on an axis of their own, with the page's colours
    assert made["canvas"] == "report-chart"
    assert config["data"]["labels"] == chart["labels"]
    assert [(d["label"], d["type"], d["yAxisID"], d["data"]) for d in config["data"]["datasets"]] == [
        ("Cost, UAH", "bar", "money", [1.75, 1.5, 0, 2, 0]),
        ("Cost, USD", "bar", "money", [0, 0, 2.1, 0, 0]),
        ("Calls", "line", "count", [3, 2, 3, 1, 1]),
    ]
    assert config["options"]["scales"]["money"]["position"] == "left"
    assert config["options"]["scales"]["count"]["position"] == "right"
    assert config["options"]["scales"]["x"]["ticks"]["color"] == "#e4e7ec"


def test_a_chart_without_money_draws_its_counts_as_bars(calls):
    chart = {"labels": ["a"], "datasets": [{"label": "Calls", "axis": "count", "data": [4]}],
             "money_label": "Amount", "count_label": "Count"}
    (made,) = run_script(chart)
    (dataset,) = made["config"]["data"]["datasets"]
    assert (dataset["type"], dataset["yAxisID"]) == ("bar", "count")
    assert "money" not in made["config"]["options"]["scales"]
