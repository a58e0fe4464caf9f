// Keel console: refresh the page when an incident it shows changes (server-sent events from
// /admin/events). The console works without this script; it only saves a reload. A page
// being edited (focus in a field, or a field changed) is not reloaded, so no typing is lost:
// a notice says there is news instead.
(function () {
  "use strict";
  var watch = document.body.getAttribute("data-refresh");
  if (!watch || !window.EventSource) { return; }
  var dirty = false;
  document.addEventListener("input", function () { dirty = true; });
  var source = new EventSource("/admin/events");
  source.addEventListener("incident", function (e) {
    if (watch !== "*" && e.data !== "*" && e.data !== watch) { return; }
    var active = document.activeElement;
    var typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    if (dirty || typing) {
      if (!document.getElementById("news")) {
        var p = document.createElement("p");
        p.id = "news";
        p.className = "flash info";
        p.setAttribute("role", "status");
        p.textContent = document.documentElement.lang === "ja"
          ? "更新があります。再読み込みすると表示されます。"
          : "There is news: reload to see it.";
        document.getElementById("main").prepend(p);
      }
      return;
    }
    source.close();
    window.location.reload();
  });
})();
