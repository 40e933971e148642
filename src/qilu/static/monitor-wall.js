// The live alarm wall: the server says (server-sent events) when what the wall shows has
// changed, and the list is fetched again and put in place, without reloading the page.
(function () {
  var wall = document.querySelector("[data-live-wall]");
  if (!wall || !window.EventSource) return;
  var status = wall.querySelector("[data-live-status]");
  var seen = null;
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-wall]");
        if (!fresh) return;
        ["#wall-title", ".alarm-wall"].forEach(function (selector) {
          var now = wall.querySelector(selector), then = fresh.querySelector(selector);
          if (now && then) now.innerHTML = then.innerHTML;
        });
        wall.dataset.refreshed = String(Number(wall.dataset.refreshed || 0) + 1);
      });
  }
  var events = new EventSource(wall.dataset.liveWall);
  events.addEventListener("wall", function (event) {
    status.textContent = "实时更新中 · " + new Date().toLocaleTimeString("zh-CN");
    if (seen !== null && event.data !== seen) refresh();
    seen = event.data;
  });
  events.onerror = function () { status.textContent = "实时更新：正在重新连接…"; };
})();
