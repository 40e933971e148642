// An alarm's readings as a line, with the rule's levels as dashed lines in their colours.
(function () {
  var box = document.getElementById("alarm-chart");
  var data = document.getElementById("alarm-chart-data");
  if (!box || !data || !window.echarts) return;
  var chart = JSON.parse(data.textContent);
  var colours = { 1: "#c62828", 2: "#ef6c00", 3: "#f9d71c", 4: "#1e5bb8" };  // as qilu.css's badges
  var view = echarts.init(box, null, { renderer: "canvas" });
  view.setOption({
    grid: { left: 48, right: 16, top: 24, bottom: 32 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "time" },
    yAxis: { type: "value", name: chart.unit, scale: true },
    series: [{
      type: "line", data: chart.points, showSymbol: chart.points.length < 40, name: "读数",
      markLine: {
        symbol: "none", silent: true,
        data: chart.levels.map(function (l) {
          return { yAxis: l.value, name: l.name, lineStyle: { color: colours[l.level], type: "dashed" },
                   label: { formatter: l.name + " " + l.value, position: "insideEndTop" } };
        })
      }
    }]
  });
  window.addEventListener("resize", function () { view.resize(); });
  box.dataset.ready = "1";
})();
