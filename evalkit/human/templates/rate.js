
// evalkit rating page. Model text is untrusted: it is only ever put into the page with
// textContent (never innerHTML), so nothing in it can run.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("bundle-data").textContent);
  var pairs = data.pairs;
  var PREFIX = "evalkit-rate:" + data.bundle + ":";
  var KEYS = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" };
  var state = null; // { rater, index, ratings: { pair_id: record } }
  var shownAt = 0;

  function el(id) { return document.getElementById(id); }

  function showMessage(text) {
    var box = el("message");
    box.textContent = text;
    box.hidden = !text;
  }

  // -- progress kept in localStorage -------------------------------------------------------

  function storageKey(rater) { return PREFIX + "rater:" + rater; }

  function loadState(rater) {
    try {
      var raw = window.localStorage.getItem(storageKey(rater));
      if (raw) {
        var saved = JSON.parse(raw);
        if (saved && typeof saved === "object" && saved.ratings && typeof saved.ratings === "object") {
          saved.rater = rater;
          saved.index = Math.max(0, Math.min(pairs.length, Number(saved.index) || 0));
          return saved;
        }
      }
    } catch (err) {
      showMessage("Saved progress could not be read (" + err.message + "); starting afresh.");
    }
    return { rater: rater, index: 0, ratings: {} };
  }

  function saveState() {
    try {
      window.localStorage.setItem(storageKey(state.rater), JSON.stringify(state));
      window.localStorage.setItem(PREFIX + "last-rater", state.rater);
    } catch (err) {
      showMessage("This browser did not keep your progress (" + err.message + "). Export your ratings before closing the tab.");
    }
  }

  function lastRater() {
    try { return window.localStorage.getItem(PREFIX + "last-rater") || ""; } catch (err) { return ""; }
  }

  // -- showing model text safely -----------------------------------------------------------

  function appendProse(container, text) {
    text = text.replace(/^\n+/, "").replace(/\n+$/, "");
    if (!text) return;
    var div = document.createElement("div");
    div.className = "prose";
    div.textContent = text;
    container.appendChild(div);
  }

  function appendCode(container, block) {
    var lang = "";
    var newline = block.indexOf("\n");
    if (newline >= 0 && /^[A-Za-z0-9_+#.\-]*$/.test(block.slice(0, newline).trim())) {
      lang = block.slice(0, newline).trim();
      block = block.slice(newline + 1);
    }
    var pre = document.createElement("pre");
    pre.className = "code";
    if (lang) {
      var label = document.createElement("span");
      label.className = "code-lang";
      label.textContent = lang;
      pre.appendChild(label);
    }
    var code = document.createElement("code");
    code.textContent = block.replace(/\n$/, "");
    pre.appendChild(code);
    container.appendChild(pre);
  }

  // Line breaks are kept by white-space: pre-wrap; ``` fences become monospace blocks.
  function renderText(container, text) {
    container.textContent = "";
    text = text == null ? "" : String(text);
    if (!text.trim()) {
      var empty = document.createElement("span");
      empty.className = "empty";
      empty.textContent = "(empty response)";
      container.appendChild(empty);
      return;
    }
    var parts = text.split("```");
    for (var i = 0; i < parts.length; i++) {
      if (i % 2 === 0) appendProse(container, parts[i]);
      else appendCode(container, parts[i]);
    }
  }

  // -- views -------------------------------------------------------------------------------

  function ratedCount() {
    var n = 0;
    for (var i = 0; i < pairs.length; i++) if (state.ratings[pairs[i].pair_id]) n++;
    return n;
  }

  function updateProgress() {
    var done = ratedCount();
    el("progress-fill").style.width = (pairs.length ? (100 * done / pairs.length) : 100) + "%";
    el("progress").setAttribute("aria-valuenow", String(done));
    el("progress-text").textContent = done + " / " + pairs.length + " rated";
  }

  function show(view) {
    el("start-view").hidden = view !== "start";
    el("rate-view").hidden = view !== "rate";
    el("done-view").hidden = view !== "done";
    el("status").hidden = view === "start";
  }

  function render() {
    updateProgress();
    el("rater-name").textContent = state.rater;
    if (state.index >= pairs.length) {
      el("export-name").textContent = exportName();
      renderDoneStatus();
      show("done");
      return;
    }
    var pair = pairs[state.index];
    var previous = state.ratings[pair.pair_id];
    el("position").textContent = "Pair " + (state.index + 1) + " of " + pairs.length;
    el("already").hidden = !previous;
    el("already").textContent = previous ? "rated: " + describe(previous.outcome) + " (press a key to change)" : "";
    renderText(el("instruction"), pair.instruction);
    el("input-block").hidden = !pair.input;
    renderText(el("input"), pair.input || "");
    renderText(el("response-a"), pair.response_a);
    renderText(el("response-b"), pair.response_b);
    el("comment").value = previous ? (previous.comment || "") : "";
    var buttons = document.querySelectorAll("button[data-outcome]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].classList.toggle("selected", !!previous && buttons[i].getAttribute("data-outcome") === previous.outcome);
    }
    show("rate");
    shownAt = Date.now();
    window.scrollTo(0, 0);
  }

  // the completion state: whether the file the rater last exported holds every rating
  function renderDoneStatus() {
    var rated = ratedCount();
    var exported = state.exported || 0;
    var box = el("done-status");
    box.classList.toggle("complete", exported === rated && rated > 0 && !state.changedSinceExport);
    if (!exported) {
      box.textContent = "All " + rated + " pairs rated; not exported yet: press Export ratings.";
    } else if (exported === rated && !state.changedSinceExport) {
      box.textContent = "✓ Complete: all " + rated + " ratings exported to " + exportName() + ". Send that file to the organiser.";
    } else {
      box.textContent = "Your last export held " + exported + " of " + rated + " ratings" +
        (state.changedSinceExport ? " (some changed since)" : "") + ": export again to send them all.";
    }
  }

  function describe(outcome) {
    return { a: "A better", b: "B better", tie: "tie", both_bad: "both bad" }[outcome] || outcome;
  }

  // -- actions -----------------------------------------------------------------------------

  function start(rater) {
    rater = String(rater || "").trim();
    if (!rater) { showMessage("Enter your name to start."); return; }
    showMessage("");
    state = loadState(rater);
    rememberInUrl(rater);
    saveState();
    render();
  }

  // so that a reload resumes this rater's progress at once
  function rememberInUrl(rater) {
    try {
      var params = new URLSearchParams(window.location.search);
      if (params.get("rater") === rater) return;
      params.set("rater", rater);
      window.history.replaceState(null, "", "?" + params.toString() + window.location.hash);
    } catch (err) {
      // some browsers refuse history changes on file:// pages; the name box still works
    }
  }

  function rate(outcome) {
    if (!state || state.index >= pairs.length) return;
    var pair = pairs[state.index];
    state.ratings[pair.pair_id] = {
      rater: state.rater,
      pair_id: pair.pair_id,
      outcome: outcome,
      comment: el("comment").value,
      timestamp: new Date().toISOString(),
      seconds: Math.round((Date.now() - shownAt) / 100) / 10
    };
    state.index += 1;
    state.changedSinceExport = true;
    showMessage("");  // an earlier "Exported ..." no longer describes the ratings
    saveState();
    render();
  }

  function back() {
    if (!state || state.index === 0) return;
    state.index -= 1;
    showMessage("");
    saveState();
    render();
  }

  function exportName() {
    return "ratings-" + state.rater.replace(/[^A-Za-z0-9_.\-]+/g, "_") + ".jsonl";
  }

  function exportRatings() {
    if (!state) return;
    var lines = [];
    for (var i = 0; i < pairs.length; i++) {
      var record = state.ratings[pairs[i].pair_id];
      if (record) {
        lines.push(JSON.stringify({
          rater: state.rater,
          pair_id: record.pair_id,
          outcome: record.outcome,
          comment: record.comment || "",
          timestamp: record.timestamp,
          seconds: record.seconds
        }));
      }
    }
    if (!lines.length) { showMessage("Nothing rated yet: there is nothing to export."); return; }
    var blob = new Blob([lines.join("\n") + "\n"], { type: "application/x-ndjson" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = exportName();
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    state.exported = lines.length;
    state.changedSinceExport = false;
    saveState();
    if (state.index >= pairs.length) {
      showMessage("");
      renderDoneStatus();  // the done view says it, with the count against all ratings
    } else {
      showMessage("Exported " + lines.length + " rating(s) to " + link.download + ".");
    }
  }

  // -- wiring ------------------------------------------------------------------------------

  el("start-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    start(el("rater-input").value);
  });
  el("switch-rater").addEventListener("click", function () {
    state = null;
    try { window.history.replaceState(null, "", window.location.pathname); } catch (err) { /* see rememberInUrl */ }
    el("rater-input").value = "";
    show("start");
    el("rater-input").focus();
  });
  var outcomeButtons = document.querySelectorAll("button[data-outcome]");
  for (var i = 0; i < outcomeButtons.length; i++) {
    outcomeButtons[i].addEventListener("click", function (ev) { rate(ev.currentTarget.getAttribute("data-outcome")); });
  }
  el("back-button").addEventListener("click", back);
  el("done-back-button").addEventListener("click", back);
  var exportButtons = document.querySelectorAll(".export-button");
  for (var j = 0; j < exportButtons.length; j++) exportButtons[j].addEventListener("click", exportRatings);

  document.addEventListener("keydown", function (ev) {
    if (!state) return;
    var target = ev.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT")) {
      if (ev.key === "Escape") target.blur();
      return; // typing a comment: keys are text, not shortcuts
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (Object.prototype.hasOwnProperty.call(KEYS, ev.key)) {
      ev.preventDefault();
      rate(KEYS[ev.key]);
    } else if (ev.key === "Backspace") {
      ev.preventDefault();
      back();
    } else if (ev.key === "e" || ev.key === "E") {
      ev.preventDefault();
      exportRatings();
    }
  });

  var fromUrl = new URLSearchParams(window.location.search).get("rater");
  if (fromUrl && fromUrl.trim()) {
    start(fromUrl);
  } else {
    el("rater-input").value = lastRater();
    show("start");
  }
})();
