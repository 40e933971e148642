// Drafts save themselves: a change in the application form is posted (as the save button
// would) a moment after the typing stops, and the page says when it was saved.
(function () {
  var form = document.querySelector("form[data-autosave]");
  if (!form) return;
  var status = form.querySelector("[data-autosave-status]");
  var timer = null;
  function save() {
    var body = new FormData(form);
    fetch(form.dataset.autosave, { method: "POST", body: body, headers: { "X-Autosave": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (answer) {
        var at = new Date(answer.saved_at);
        status.textContent = "已自动保存 " + at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
        status.dataset.saved = "1";
      })
      .catch(function () { status.textContent = "自动保存失败，请点击“保存草稿”"; });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(save, 1200);
  });
})();

// A form that undoes something (删除草稿, 撤回) asks first.
document.addEventListener("submit", function (event) {
  var question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// 打印照面: the page prints only the licence face (the print styles hide the rest).
document.addEventListener("click", function (event) {
  if (event.target.closest && event.target.closest("[data-print]")) window.print();
});
