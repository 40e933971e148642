// 态势图: Shandong's cities (offline GeoJSON) with the devices on duty's ground on them, each
// coloured by its most severe alarm; a click on one with an alarm opens it.
(function () {
  var box = document.getElementById("situation-map");
  var data = document.getElementById("situation-data");
  if (!box || !data || !window.echarts) return;
  var places = JSON.parse(data.textContent);
  var colours = { 1: "#c62828", 2: "#ef6c00", 3: "#f9d71c", 4: "#1e5bb8" };  // as qilu.css's badges
  fetch(box.dataset.geo, { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (geo) {
      echarts.registerMap("shandong", geo);
      var chart = echarts.init(box, null, { renderer: "canvas" });
      chart.setOption({
        tooltip: {
          trigger: "item",
          formatter: function (item) {
            if (!item.data || !item.data.kind) return item.name;
            var level = item.data.level_name ? item.data.level_name + "报警" : "正常";
            var html = echarts.format.encodeHTML;  // names are registered text, not markup
            return html(item.data.name) + "<br>" + html(item.data.kind_name) + " · " + html(level);
          }
        },
        geo: {
          map: "shandong", roam: true, aspectScale: 0.85, layoutCenter: ["50%", "50%"], layoutSize: "100%",
          label: { show: true, fontSize: 10, color: "#555" },
          itemStyle: { areaColor: "#f3f6f9", borderColor: "#8a9bb0" },
          emphasis: { itemStyle: { areaColor: "#e3ecf5" }, label: { show: true } }
        },
        series: [{
          type: "scatter", coordinateSystem: "geo", data: places,
          symbolSize: function (value, item) { return item.data.level ? 14 : 6; },
          itemStyle: { color: function (item) { return colours[item.data.level] || "#7f8c8d"; } },
          zlevel: 1
        }]
      });
      chart.on("click", function (item) {
        if (item.data && item.data.alarm) window.location.href = "/monitor/alarms/" + item.data.alarm;
      });
      window.addEventListener("resize", function () { chart.resize(); });
      box.dataset.ready = "1";
    });
})();
