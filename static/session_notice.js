// Added by minibinder to a session's pages: warns before the session is stopped and offers a
// download of the user's work. Asks minibinder every 20 s; never counts as activity.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script.dataset.base;
  var banner = null;

  function show(warning, downloadUrl) {
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "minibinder-notice";
      banner.setAttribute("role", "alert");
      banner.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:100000;" +
        "background:#fff3cd;color:#533f03;border-bottom:2px solid #e0b000;padding:8px 12px;" +
        "font:14px system-ui,sans-serif;display:flex;gap:12px;align-items:center;" +
        "justify-content:center;flex-wrap:wrap";
      document.body.appendChild(banner);
    }
    banner.textContent = warning.message + " ";
    var link = document.createElement("a");
    link.href = downloadUrl;
    link.textContent = "Download your work (zip)";
    link.style.cssText = "font-weight:600;color:#533f03";
    link.setAttribute("download", "");
    banner.appendChild(link);
  }

  function hide() {
    if (banner) { banner.remove(); banner = null; }
  }

  function check() {
    fetch(base + "_minibinder/status", {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.warning) { show(status.warning, status.download_url); }
        else { hide(); }
      })
      .catch(function () {});
  }

  check();
  setInterval(check, 20000);
})();
