// 态势图: Shandong's 136 counties (offline GeoJSON), each tinted by its most severe alarm not
// closed, with the cities' outlines and names over them, and the devices on duty's ground, each
// coloured by its most severe alarm; a click on one with an alarm opens it.
(function () {
  var box = document.getElementById("situation-map");
  var data = document.getElementById("situation-data");
  var areas = document.getElementById("situation-counties");
  if (!box || !data || !areas || !window.echarts) return;
  var places = JSON.parse(data.textContent);
  var alarmed = {};
  JSON.parse(areas.textContent).forEach(function (c) { alarmed[c.code] = c; });
  var colours = { 1: "#c62828", 2: "#ef6c00", 3: "#f9d71c", 4: "#1e5bb8" };  // as qilu.css's badges
  var tints = { 1: "#f6c9c9", 2: "#fbdcbf", 3: "#fdf3b5", 4: "#cddcf3" };
  var html = echarts.format.encodeHTML;  // names are registered text, not markup
  // The officer's own ground: the middle of their devices, zoomed to show them all (a county
  // officer starts on the county, a province officer on the province). `province`: degrees of
  // longitude the whole map spans at zoom 1.
  function around(points, province) {
    if (!points.length) return { center: null, zoom: 1 };
    var lngs = points.map(function (p) { return p.value[0]; });
    var lats = points.map(function (p) { return p.value[1]; });
    var west = Math.min.apply(null, lngs), east = Math.max.apply(null, lngs);
    var south = Math.min.apply(null, lats), north = Math.max.apply(null, lats);
    var span = Math.max(east - west, (north - south) * 1.6, 0.3);
    var zoom = Math.min(Math.max(province / span / 1.2, 1), 12);
    return zoom === 1 ? { center: null, zoom: 1 }
                      : { center: [(west + east) / 2, (south + north) / 2], zoom: zoom };
  }
  fetch(box.dataset.geo, { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (geo) {
      echarts.registerMap("shandong", geo);
      var names = {};
      geo.features.forEach(function (f) { names[f.id] = f.properties.name; });
      var chart = echarts.init(box, null, { renderer: "canvas" });
      var lngs = [].concat.apply([], geo.cities.map(function (city) {
        return [].concat.apply([], city.outline).map(function (point) { return point[0]; });
      }));
      var ground = around(places, Math.max.apply(null, lngs) - Math.min.apply(null, lngs));
      chart.setOption({
        tooltip: {
          trigger: "item",
          formatter: function (item) {
            if (item.componentType === "geo") {
              var area = alarmed[item.name];
              var where = html(names[item.name] || item.name);
              return area ? where + "<br>" + area.alarms + " 条报警，最高" + html(area.level_name)
                          : where + "<br>无报警";
            }
            if (!item.data || !item.data.kind) return html(item.name || "");
            var level = item.data.level_name ? item.data.level_name + "报警" : "正常";
            return html(item.data.name) + "<br>" + html(item.data.kind_name) + " · " + html(level);
          }
        },
        geo: {
          map: "shandong", nameProperty: "code", roam: true, aspectScale: 0.85,
          layoutCenter: ["50%", "50%"], layoutSize: "100%", center: ground.center, zoom: ground.zoom,
          tooltip: { show: true },
          label: { show: false },
          itemStyle: { areaColor: "#f3f6f9", borderColor: "#c3ccd8", borderWidth: 0.5 },
          emphasis: { itemStyle: { areaColor: "#e3ecf5" }, label: { show: false } },
          regions: Object.keys(alarmed).map(function (code) {
            return { name: code, itemStyle: { areaColor: tints[alarmed[code].level] } };
          })
        },
        series: [{
          type: "lines", coordinateSystem: "geo", polyline: true, silent: true,
          data: geo.cities.reduce(function (all, city) {
            return all.concat(city.outline.map(function (ring) { return { coords: ring }; }));
          }, []),
          lineStyle: { color: "#6b7c93", width: 1.2, opacity: 1 }
        }, {
          type: "scatter", coordinateSystem: "geo", silent: true, symbolSize: 0,
          data: geo.cities.map(function (city) { return { name: city.name, value: city.label }; }),
          label: { show: true, formatter: "{b}", fontSize: 11, color: "#3c4a5c" }
        }, {
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
      var whole = document.querySelector("[data-map-whole]");
      if (whole) {
        whole.hidden = ground.zoom === 1;
        whole.addEventListener("click", function () {
          chart.setOption({ geo: { center: null, zoom: 1 } });
          whole.hidden = true;
        });
      }
      box.dataset.ready = "1";
    });
})();
