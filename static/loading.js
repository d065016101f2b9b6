// The launch page: follow /build/... (server-sent events), show the log, then enter the session.
(function () {
  "use strict";
  var root = document.getElementById("launch");
  var buildUrl = root.dataset.buildUrl + window.location.search;
  var landing = root.dataset.landing;
  var logEl = document.getElementById("log");
  var phaseEl = document.getElementById("phase");
  var barEl = document.getElementById("bar");
  var progressEl = barEl.parentElement;
  var failureEl = document.getElementById("failure");
  var noticesEl = document.getElementById("notices");
  var elapsedEl = document.getElementById("elapsed");
  var started = Date.now();
  var PROGRESS = {waiting: 5, fetching: 15, building: 35, built: 70, launching: 85, ready: 100,
                  failed: 100};
  var LABELS = {waiting: "Waiting", fetching: "Fetching the repository",
                building: "Building the environment", built: "Environment ready",
                launching: "Starting the server", ready: "Ready: opening",
                failed: "Failed"};
  var COLOURS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
  var style = {};

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // Turn ANSI SGR colour codes into spans; everything else is escaped text.
  function ansiToHtml(text) {
    var out = "";
    var parts = text.split(/\x1b\[([0-9;]*)m/);
    for (var i = 0; i < parts.length; i++) {
      if (i % 2 === 1) {
        parts[i].split(";").forEach(function (code) {
          var n = parseInt(code || "0", 10);
          if (n === 0) { style = {}; }
          else if (n === 1) { style.bold = true; }
          else if (n >= 30 && n <= 37) { style.fg = COLOURS[n - 30]; }
          else if (n >= 90 && n <= 97) { style.fg = COLOURS[n - 90]; }
          else if (n === 39) { delete style.fg; }
        });
        continue;
      }
      var chunk = escapeHtml(parts[i].replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r(?!\n)/g, "\n"));
      if (!chunk) { continue; }
      var classes = [];
      if (style.fg) { classes.push("ansi-" + style.fg); }
      if (style.bold) { classes.push("ansi-bold"); }
      out += classes.length ? '<span class="' + classes.join(" ") + '">' + chunk + "</span>" : chunk;
    }
    return out;
  }

  function appendLog(text) {
    var atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 20;
    logEl.insertAdjacentHTML("beforeend", ansiToHtml(text));
    if (atBottom) { logEl.scrollTop = logEl.scrollHeight; }
  }

  function setPhase(phase) {
    phaseEl.textContent = LABELS[phase] || phase;
    barEl.style.width = (PROGRESS[phase] || 0) + "%";
    progressEl.setAttribute("aria-valuenow", String(PROGRESS[phase] || 0));
    root.dataset.phase = phase;
  }

  var timer = setInterval(function () {
    elapsedEl.textContent = Math.round((Date.now() - started) / 1000) + " s";
  }, 1000);

  var source = new EventSource(buildUrl);
  source.onmessage = function (message) {
    var data = JSON.parse(message.data);
    setPhase(data.phase);
    if (data.message) { appendLog(data.message); }
    if (data.notice && data.message) {  // how the environment was made, or a warning about it
      var item = document.createElement("li");
      item.textContent = data.message.trim();
      if (/^WARNING/.test(item.textContent)) { item.className = "warning"; }
      noticesEl.appendChild(item);
      noticesEl.hidden = false;
    }
    if (data.phase === "failed") {
      source.close();
      clearInterval(timer);
      barEl.classList.add("failed");
      failureEl.textContent = data.message.split("\n")[0];
      failureEl.hidden = false;
    } else if (data.phase === "ready" && data.url) {
      source.close();
      clearInterval(timer);
      var target = new URL(data.url + landing, window.location.href);
      var base = new URL(data.url, window.location.href);
      // The token goes only to this session: same origin, a path under its own base.
      if (target.origin !== base.origin || target.pathname.indexOf(base.pathname) !== 0) {
        failureEl.textContent = "This launch link points outside the session; not following it.";
        failureEl.hidden = false;
        return;
      }
      target.searchParams.set("token", data.token);
      if (data.kept_work) {  // say what came back, and offer a clean start, before going on
        showKeptWork(data.kept_work, target.href);
        return;
      }
      window.location.replace(target.href);
    }
  };

  // Kept work (keep_work) was put back: the time in the reader's own zone, what the repository
  // changed too (the user's copy is beside it), what did not fit; continue after a moment.
  function showKeptWork(kept, href) {
    var box = document.getElementById("kept-work");
    var when = new Date(kept.saved_at * 1000).toLocaleString();
    document.getElementById("kept-summary").textContent =
      "Your work from " + when + " was restored (" + kept.files + " files).";
    var list = document.getElementById("kept-details");
    kept.conflicts.forEach(function (clash) {
      var item = document.createElement("li");
      item.textContent = "The repository changed " + clash.path + " too: your copy is " +
        clash.mine + ".";
      list.appendChild(item);
    });
    kept.skipped.forEach(function (left) {
      var item = document.createElement("li");
      item.textContent = "Not kept (too large): " + left.path + " (" +
        Math.round(left.size / 1024) + " kB).";
      list.appendChild(item);
    });
    var clean = new URL(window.location.href);
    clean.searchParams.set("clean", "1");
    document.getElementById("start-clean").href = clean.href;
    document.getElementById("continue").href = href;
    box.hidden = false;
    setTimeout(function () { window.location.replace(href); }, 5000);
  }
  source.onerror = function () {
    if (root.dataset.phase === "ready" || root.dataset.phase === "failed") { return; }
    source.close();
    clearInterval(timer);
    failureEl.textContent = "Lost the connection to the server. Reload the page to try again.";
    failureEl.hidden = false;
  };
})();
