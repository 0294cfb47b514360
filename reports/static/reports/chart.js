// R11.3: a report's chart. The data come from the page's <script type="application/json"
// id="report-chart-data"> (reports.charts.chart_data): bars of money, one series per
// currency, on the left axis; counts (calls, calls at once) as a line on the right one.
(function () {
  "use strict";
  var source = document.getElementById("report-chart-data");
  var canvas = document.getElementById("report-chart");
  if (!source || !canvas || typeof Chart === "undefined") { return; }
  var chart = JSON.parse(source.textContent);
  var style = getComputedStyle(document.documentElement);
  var fg = style.getPropertyValue("--fg").trim() || "#1d2430";
  var grid = style.getPropertyValue("--line").trim() || "#d8dde6";
  var palette = ["#1f5fa8", "#e07b39", "#3a9d5d", "#b03a48", "#7c5cbf", "#8c8c8c"];
  var hasMoney = chart.datasets.some(function (d) { return d.axis === "money"; });
  var datasets = chart.datasets.map(function (d, i) {
    var money = d.axis === "money";
    return {
      label: d.label,
      type: money || !hasMoney ? "bar" : "line",
      yAxisID: money ? "money" : "count",
      data: d.data.map(Number),
      backgroundColor: palette[i % palette.length],
      borderColor: palette[i % palette.length]
    };
  });
  var scales = {x: {ticks: {color: fg}, grid: {color: grid}}};
  if (hasMoney) {
    scales.money = {type: "linear", position: "left", beginAtZero: true,
                    title: {display: true, text: chart.money_label, color: fg},
                    ticks: {color: fg}, grid: {color: grid}};
  }
  if (chart.datasets.some(function (d) { return d.axis === "count"; })) {
    scales.count = {type: "linear", position: hasMoney ? "right" : "left", beginAtZero: true,
                    title: {display: true, text: chart.count_label, color: fg},
                    ticks: {color: fg, precision: 0}, grid: {drawOnChartArea: !hasMoney, color: grid}};
  }
  new Chart(canvas, {
    type: "bar",
    data: {labels: chart.labels, datasets: datasets},
    options: {responsive: true, animation: false, scales: scales,
              plugins: {legend: {labels: {color: fg}}}}
  });
})();
