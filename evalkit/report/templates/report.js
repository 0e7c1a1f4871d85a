// evalkit report: sorting, drill-down, side by side, comparison. Model and judge text is
// untrusted: it only ever reaches the page through textContent, never innerHTML.
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("report-meta").textContent);
  var KIND = meta.kind_labels;
  var FIELD = meta.field_labels;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function option(value, text) { var o = el("option", null, text); o.value = value; return o; }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 10000) / 10000);
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }

  // -- leaderboard sorting ------------------------------------------------------------------
  var board = document.getElementById("leaderboard");
  var heads = Array.prototype.slice.call(board.tHead.rows[0].cells);
  function sortKey(row, index) {
    var cell = row.cells[index];
    return cell ? cell.getAttribute("data-sort") : "";
  }
  function sortBy(index) {
    var th = heads[index];
    var numeric = th.getAttribute("data-type") === "number";
    var current = th.getAttribute("aria-sort");
    var dir = current ? (current === "descending" ? "ascending" : "descending") : (numeric ? "descending" : "ascending");
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var body = board.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a, index), y = sortKey(b, index);
      if (x === "" && y === "") return 0;
      if (x === "") return 1; // missing numbers always last
      if (y === "") return -1;
      if (numeric) return sign * (parseFloat(x) - parseFloat(y));
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  heads.forEach(function (th, i) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(i); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i); } });
  });

  // -- items --------------------------------------------------------------------------------
  // Runs are described in the metadata; a run's rows are decoded only when the run is opened.
  // The item blocks follow this script in the page, so a click that comes before the page has
  // finished loading waits for them. While a run decodes, body[data-items-ready] is removed.
  var RUNS = meta.runs || {};
  var rowsOf = {};       // run id -> decoded rows
  var itemCache = {};    // run id -> decoded item objects (they keep their search text)
  var pending = {};      // block id -> promise of its decoded value
  var shared = [];       // texts that occur more than once (a number in a text field is an index here)
  var sharedLoaded = {}; // group id -> true once its slice of shared is in place
  var GROUPS = {};
  (meta.shared_groups || []).forEach(function (g) { GROUPS[g.id] = g; });
  function placeShared(groupId, values) {
    var start = GROUPS[groupId].start;
    for (var i = 0; i < values.length; i++) shared[start + i] = values[i];
    sharedLoaded[groupId] = true;
  }
  var busy = 0;
  var started = false;

  // A data block can be read once the parser is past it (a node after it exists), so a run near
  // the top of a large page opens before the rest of the page has been parsed.
  function complete(node) {
    return node !== null && (document.readyState !== "loading" || node.nextSibling !== null);
  }
  function blocksOf(ids) {
    var out = [];
    ids.forEach(function (id) {
      (RUNS[id] ? RUNS[id].shared : []).forEach(function (groupId) { out.push(document.getElementById(groupId)); });
      if (RUNS[id]) out.push(blockOf(id));
    });
    return out;
  }
  function parsed(ids) {
    if (blocksOf(ids).every(complete)) return null;
    return new Promise(function (resolve) {
      function check() {
        if (blocksOf(ids).every(complete)) { resolve(); return; }
        if (document.readyState === "loading") setTimeout(check, 20);
      }
      document.addEventListener("DOMContentLoaded", check);
      setTimeout(check, 20);
    });
  }
  function decodeNode(node) {
    if (node.getAttribute("data-encoding") === "gzip+base64") {
      var bin = atob(node.textContent.trim());
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Response(stream).text().then(JSON.parse);
    }
    return JSON.parse(node.textContent);
  }
  function blockOf(runId) {
    return document.querySelector("script[data-run=\"" + CSS.escape(runId) + "\"]");
  }
  // Decode what the runs need: null when it is all there now, else a promise.
  function need(ids) {
    var waits = [];
    var loading = parsed(ids);
    if (loading) return loading.then(function () { return need(ids) || null; });
    ids.forEach(function (id) {
      (RUNS[id] ? RUNS[id].shared : []).forEach(function (groupId) {
        if (sharedLoaded[groupId]) return;
        var node = document.getElementById(groupId);
        if (node.getAttribute("data-encoding") !== "gzip+base64") { placeShared(groupId, decodeNode(node)); return; }
        if (!pending[groupId]) pending[groupId] = decodeNode(node).then(function (v) { placeShared(groupId, v); });
        waits.push(pending[groupId]);
      });
    });
    ids.forEach(function (id) {
      if (rowsOf[id] || !RUNS[id]) return;
      var block = blockOf(id);
      if (block.getAttribute("data-encoding") !== "gzip+base64") { rowsOf[id] = decodeNode(block); return; }
      if (!pending[id]) pending[id] = decodeNode(block).then(function (rows) { rowsOf[id] = rows; });
      waits.push(pending[id]);
    });
    return waits.length ? Promise.all(waits) : null;
  }
  function setReady() { if (started && busy === 0) document.body.setAttribute("data-items-ready", "1"); }
  // Run fn once the runs are decoded: now when they are, else when they are. Per slot ("list",
  // "detail") only the latest call's fn runs, so a slow decode never overwrites a newer choice.
  var generation = { list: 0, detail: 0 };
  function withRuns(slot, ids, fn) {
    var wait = need(ids);
    var mine = ++generation[slot];
    if (!wait) { fn(); setReady(); return; }
    busy++;
    document.body.removeAttribute("data-items-ready");
    ddStatus.textContent = "Loading items…";
    wait.then(function () {
      busy--;
      if (mine === generation[slot]) fn();
      setReady();
    }).catch(function (err) {
      busy--;
      ddStatus.textContent = "Could not read the embedded items: " + err;
    });
  }

  var ddModel = document.getElementById("dd-model");
  var ddRun = document.getElementById("dd-run");
  var ddFilter = document.getElementById("dd-filter");
  var ddOther = document.getElementById("dd-other");
  var ddStatus = document.getElementById("dd-status");
  var ddBody = document.querySelector("#dd-items tbody");
  var ddDetail = document.getElementById("dd-detail");
  var LIST_LIMIT = 300;
  var current = { items: [], shown: [], selected: null };

  function runsOf(model) {
    return Object.keys(RUNS).filter(function (id) { return RUNS[id].models.indexOf(model) >= 0; })
      .sort(function (a, b) {
        var ka = meta.kind_order.indexOf(RUNS[a].kind), kb = meta.kind_order.indexOf(RUNS[b].kind);
        return ka - kb || (RUNS[a].date < RUNS[b].date ? 1 : -1);
      });
  }
  function decode(run, row) {
    var item = { _id: row[0] };
    run.fields.forEach(function (f, i) {
      var v = row[i + 1];
      item[f] = run.text[i] && typeof v === "number" ? shared[v] : v;
    });
    return item;
  }
  function itemsOf(runId, model) {
    if (!itemCache[runId]) {
      var run = RUNS[runId];
      itemCache[runId] = rowsOf[runId].map(function (row) { return decode(run, row); });
    }
    var items = itemCache[runId];
    if (RUNS[runId].kind === "human" && model) {
      items = items.filter(function (it) { return it.model_a === model || it.model_b === model; });
    }
    return items;
  }
  function runLabel(id) {
    var r = RUNS[id];
    var parts = [KIND[r.kind] || r.kind, r.date.slice(0, 16).replace("T", " ")];
    if (r.setup) parts.push("setup " + r.setup);
    parts.push(r.n + " items");
    if (r.status !== "done") parts.push(r.status);
    return parts.join(" · ");
  }
  function searchText(item) {
    if (item._search === undefined) {
      item._search = Object.keys(item).map(function (k) {
        var v = item[k];
        return typeof v === "string" ? v : (v === null || v === undefined ? "" : JSON.stringify(v));
      }).join("\n").toLowerCase();
    }
    return item._search;
  }
  function title(run, item) {
    var t = item[run.title];
    if (t === undefined || t === null) t = item.instruction || item.question || item._id;
    t = typeof t === "string" ? t : JSON.stringify(t);
    return t.length > 110 ? t.slice(0, 109) + "…" : t;
  }

  function fillModels() {
    var models = meta.models.slice();
    Object.keys(RUNS).forEach(function (id) {
      RUNS[id].models.forEach(function (m) { if (models.indexOf(m) < 0) models.push(m); });
    });
    clear(ddModel);
    clear(ddOther);
    ddOther.appendChild(option("", "(none)"));
    models.forEach(function (m) { ddModel.appendChild(option(m, m)); ddOther.appendChild(option(m, m)); });
  }
  function fillRuns(preferRun, then) {
    clear(ddRun);
    var ids = runsOf(ddModel.value);
    ids.forEach(function (id) { ddRun.appendChild(option(id, runLabel(id))); });
    if (preferRun && ids.indexOf(preferRun) >= 0) ddRun.value = preferRun;
    showList(then);
  }
  function showList(then) {
    var runId = ddRun.value;
    if (!runId) {
      clear(ddBody); clear(ddDetail); current.selected = null;
      ddStatus.textContent = "No runs for this model."; current.items = []; current.shown = [];
      setReady();
      return;
    }
    withRuns("list", [runId], function () { listRun(runId); if (typeof then === "function") then(); });
  }
  function listRun(runId) {
    clear(ddBody);
    clear(ddDetail);
    current.selected = null;
    var run = RUNS[runId];
    document.getElementById("dd-verdict-head").textContent = run.verdict ? (FIELD[run.verdict] || run.verdict) : "";
    current.items = itemsOf(runId, ddModel.value);
    var q = ddFilter.value.trim().toLowerCase();
    current.shown = q ? current.items.filter(function (it) { return searchText(it).indexOf(q) >= 0; }) : current.items;
    current.shown.slice(0, LIST_LIMIT).forEach(function (item, i) {
      var tr = el("tr");
      tr.setAttribute("data-item", item._id);
      tr.appendChild(el("td", "num", i + 1));
      tr.appendChild(el("td", null, title(run, item)));
      tr.appendChild(el("td", "num", run.verdict ? fmt(item[run.verdict]) : ""));
      tr.addEventListener("click", function () { select(item, tr); });
      ddBody.appendChild(tr);
    });
    var msg = current.shown.length + " of " + current.items.length + " items";
    if (q) msg += " match “" + ddFilter.value.trim() + "”";
    if (current.shown.length > LIST_LIMIT) msg += "; the first " + LIST_LIMIT + " are listed, refine the filter to see others";
    ddStatus.textContent = msg + ". Run " + runId + ".";
    if (current.shown.length) select(current.shown[0], ddBody.rows[0]);
  }
  function card(heading, run, item) {
    var box = el("div", "card");
    box.appendChild(el("h4", null, heading));
    if (!item) { box.appendChild(el("p", "empty", "No such item in this model's runs of this kind.")); return box; }
    box.appendChild(field("item id", item._id, true));
    run.fields.forEach(function (f) {
      if (f === "choices" && Array.isArray(item[f])) { box.appendChild(field(FIELD[f] || f, lettered(item[f]), false)); return; }
      box.appendChild(field(FIELD[f] || f, item[f], typeof item[f] !== "string" || item[f].length < 40 && item[f].indexOf("\n") < 0));
    });
    return box;
  }
  function lettered(choices) {
    // MMLU's answers are letters (gold, pred): show which choice each letter is
    return choices.map(function (c, i) { return String.fromCharCode(65 + i) + ". " + c; }).join("\n");
  }
  function field(name, value, short) {
    var div = el("div", "field");
    div.appendChild(el("div", "name", name));
    var text = typeof value === "string" ? (value === "" ? "(empty)" : value) : fmt(value);
    if (Array.isArray(value) && value.every(function (v) { return typeof v === "string"; })) {
      text = value.join("\n\n— next answer —\n\n");  // a judge asked several times
      short = false;
    }
    div.appendChild(el("div", "value" + (short ? " short" : ""), text));
    return div;
  }
  function counterpart(runId, model) {
    // the other model's run of the same kind, preferably in the same setup
    var run = RUNS[runId];
    var ids = runsOf(model).filter(function (id) { return RUNS[id].kind === run.kind; });
    var same = ids.filter(function (id) { return RUNS[id].setup_key === run.setup_key; });
    return same[0] || ids[0] || null;
  }
  function select(item, tr) {
    Array.prototype.forEach.call(ddBody.rows, function (r) { r.classList.remove("selected"); });
    if (tr) tr.classList.add("selected");
    current.selected = item;
    var runId = ddRun.value;
    var other = ddOther.value;
    var otherRun = other && other !== ddModel.value ? counterpart(runId, other) : null;
    withRuns("detail", otherRun ? [runId, otherRun] : [runId], function () {
      if (current.selected !== item) return;
      clear(ddDetail);
      var run = RUNS[runId];
      var wrap = el("div", "sbs");
      wrap.appendChild(card(ddModel.value + " · " + (KIND[run.kind] || run.kind), run, item));
      if (other && other !== ddModel.value) {
        var otherItem = null;
        if (otherRun) {
          var match = rowsOf[otherRun].filter(function (row) { return row[0] === item._id; })[0];
          otherItem = match ? decode(RUNS[otherRun], match) : null;
        }
        var heading = other + " · " + (otherRun ? (KIND[RUNS[otherRun].kind] || "") : "no run of this kind");
        if (otherRun && RUNS[otherRun].setup_key !== run.setup_key) heading += " (⚠ different setup: not comparable)";
        wrap.appendChild(card(heading, otherRun ? RUNS[otherRun] : run, otherItem));
      }
      ddDetail.appendChild(wrap);
    });
  }
  function showPairItem(a, b, kind, itemId) {
    var ids = runsOf(a).filter(function (id) { return RUNS[id].kind === kind; });
    if (!ids.length) return;
    ddModel.value = a;
    ddFilter.value = "";
    ddOther.value = b;
    fillRuns(ids[0], function () {
      var index = -1;
      current.shown.forEach(function (it, i) { if (it._id === itemId) index = i; });
      if (index >= 0) select(current.shown[index], index < LIST_LIMIT ? ddBody.rows[index] : null);
    });
    document.getElementById("items").scrollIntoView();
  }
  function openRun(model, runId) {
    ddModel.value = model;
    fillRuns(runId);
    document.getElementById("items").scrollIntoView();
  }

  // Wired at once, before any item is decoded: a click on a model's name always does something.
  fillModels();
  ddModel.addEventListener("change", function () { fillRuns(); });
  ddRun.addEventListener("change", function () { showList(); });
  ddFilter.addEventListener("input", function () { showList(); });
  ddOther.addEventListener("change", function () { if (current.selected) select(current.selected, ddBody.querySelector("tr.selected")); });
  Array.prototype.forEach.call(document.querySelectorAll(".model-link"), function (b) {
    b.addEventListener("click", function () {
      var model = b.getAttribute("data-model");
      openRun(model, runsOf(model)[0]);
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".show-items"), function (b) {
    b.addEventListener("click", function () {
      var id = b.getAttribute("data-run");
      var run = RUNS[id];
      openRun(run.model || run.models[0], id);
    });
  });
  started = true;
  if (ddModel.options.length) fillRuns();
  else { ddStatus.textContent = "No items in this report."; setReady(); }

  // -- comparison ---------------------------------------------------------------------------
  var cmpA = document.getElementById("cmp-a"), cmpB = document.getElementById("cmp-b"), cmpOut = document.getElementById("cmp-out");
  var pairs = meta.comparisons || [];
  function findPair(a, b) {
    for (var i = 0; i < pairs.length; i++) {
      if (pairs[i].a === a && pairs[i].b === b) return { pair: pairs[i], swapped: false };
      if (pairs[i].a === b && pairs[i].b === a) return { pair: pairs[i], swapped: true };
    }
    return null;
  }
  function showComparison() {
    if (!pairs.length) return;
    clear(cmpOut);
    var a = cmpA.value, b = cmpB.value;
    if (a === b) { cmpOut.appendChild(el("p", "empty", "Pick two different models.")); return; }
    var found = findPair(a, b);
    if (!found) {
      cmpOut.appendChild(el("p", "empty", "This pair was not compared when the report was made (" + pairs.length +
        " pairs were); run: evalkit compare " + a + " " + b));
      return;
    }
    var p = found.pair;
    if (found.swapped) cmpOut.appendChild(el("p", "help", "Computed with A = " + p.a + " and B = " + p.b + " (differences are B − A)."));
    var table = el("table", "cmp-table");
    var cols = ["mode", "a", "b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "n", "verdict"];
    var names = { mode: "mode", a: "A: " + p.a, b: "B: " + p.b, diff: "B − A", ci_low: "95% CI low", ci_high: "95% CI high",
      p_value: "p", p_holm: "p (Holm)", n: "n", verdict: "verdict" };
    var head = el("tr");
    cols.forEach(function (c) { head.appendChild(el("th", null, names[c])); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    p.rows.forEach(function (r) {
      var tr = el("tr");
      cols.forEach(function (c) {
        var v = c === "verdict" && r.refused ? "not compared: " + r.refused : r[c];
        if (c === "mode" && r.unit) v = r.mode + " (" + r.unit + ")";
        var td = el("td", typeof r[c] === "number" ? "num" : null, fmt(v));
        if (c === "verdict" && !r.refused) td.className = /B better/.test(String(v)) ? "verdict-b" : (/A better/.test(String(v)) ? "verdict-a" : "");
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    var wrap = el("div", "table-wrap"); wrap.appendChild(table); cmpOut.appendChild(wrap);
    if (p.error) cmpOut.appendChild(el("p", "warning", p.error));
    if (p.differing && p.differing.length) {
      cmpOut.appendChild(el("h3", null, "Items where they differ most"));
      var list = el("table", "cmp-table");
      var h = el("tr");
      ["mode", "item", "A", "B", "difference"].forEach(function (c) { h.appendChild(el("th", null, c)); });
      var th2 = el("thead"); th2.appendChild(h); list.appendChild(th2);
      var tb = el("tbody");
      p.differing.forEach(function (d) {
        var tr = el("tr");
        tr.className = "clickable";
        tr.title = "read both responses side by side";
        tr.addEventListener("click", function () { showPairItem(p.a, p.b, d.mode, d.item_id); });
        tr.appendChild(el("td", null, d.mode));
        tr.appendChild(el("td", null, d.title || d.item_id));
        tr.appendChild(el("td", null, fmt(d.a)));
        tr.appendChild(el("td", null, fmt(d.b)));
        tr.appendChild(el("td", "num", fmt(d.diff)));
        tb.appendChild(tr);
      });
      list.appendChild(tb);
      var w2 = el("div", "table-wrap"); w2.appendChild(list); cmpOut.appendChild(w2);
    }
  }
  if (pairs.length) {
    var names = [];
    pairs.forEach(function (p) { [p.a, p.b].forEach(function (m) { if (names.indexOf(m) < 0) names.push(m); }); });
    names.forEach(function (m) { cmpA.appendChild(option(m, m)); cmpB.appendChild(option(m, m)); });
    cmpA.value = pairs[0].a; cmpB.value = pairs[0].b;
    cmpA.addEventListener("change", showComparison);
    cmpB.addEventListener("change", showComparison);
    showComparison();
  }
})();
