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
  function loadItems() {
    var node = document.getElementById("report-items");
    if (node.getAttribute("data-encoding") === "gzip+base64") {
      var bin = atob(node.textContent.trim());
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Response(stream).text().then(JSON.parse);
    }
    return Promise.resolve(JSON.parse(node.textContent));
  }

  var data = null;
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
    return Object.keys(data.runs).filter(function (id) { return data.runs[id].models.indexOf(model) >= 0; })
      .sort(function (a, b) {
        var ka = meta.kind_order.indexOf(data.runs[a].kind), kb = meta.kind_order.indexOf(data.runs[b].kind);
        return ka - kb || (data.runs[a].date < data.runs[b].date ? 1 : -1);
      });
  }
  function decode(run, row) {
    var item = { _id: row[0] };
    run.fields.forEach(function (f, i) {
      var v = row[i + 1];
      item[f] = run.text[i] && v !== null && v !== undefined ? data.texts[v] : v;
    });
    return item;
  }
  function itemsOf(runId, model) {
    var run = data.runs[runId];
    var items = run.items.map(function (row) { return decode(run, row); });
    if (run.kind === "human" && model) {
      items = items.filter(function (it) { return it.model_a === model || it.model_b === model; });
    }
    return items;
  }
  function runLabel(id) {
    var r = data.runs[id];
    var parts = [KIND[r.kind] || r.kind, r.date.slice(0, 16).replace("T", " ")];
    if (r.setup) parts.push("setup " + r.setup);
    parts.push(r.items.length + " items");
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
    Object.keys(data.runs).forEach(function (id) {
      data.runs[id].models.forEach(function (m) { if (models.indexOf(m) < 0) models.push(m); });
    });
    clear(ddModel);
    clear(ddOther);
    ddOther.appendChild(option("", "(none)"));
    models.forEach(function (m) { ddModel.appendChild(option(m, m)); ddOther.appendChild(option(m, m)); });
  }
  function fillRuns(preferRun) {
    clear(ddRun);
    var ids = runsOf(ddModel.value);
    ids.forEach(function (id) { ddRun.appendChild(option(id, runLabel(id))); });
    if (preferRun && ids.indexOf(preferRun) >= 0) ddRun.value = preferRun;
    showList();
  }
  function showList() {
    clear(ddBody);
    clear(ddDetail);
    current.selected = null;
    var runId = ddRun.value;
    if (!runId) { ddStatus.textContent = "No runs for this model."; current.items = []; return; }
    var run = data.runs[runId];
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
    var run = data.runs[runId];
    var ids = runsOf(model).filter(function (id) { return data.runs[id].kind === run.kind; });
    var same = ids.filter(function (id) { return data.runs[id].setup_key === run.setup_key; });
    return same[0] || ids[0] || null;
  }
  function select(item, tr) {
    Array.prototype.forEach.call(ddBody.rows, function (r) { r.classList.remove("selected"); });
    if (tr) tr.classList.add("selected");
    current.selected = item;
    clear(ddDetail);
    var runId = ddRun.value;
    var run = data.runs[runId];
    var wrap = el("div", "sbs");
    wrap.appendChild(card(ddModel.value + " · " + (KIND[run.kind] || run.kind), run, item));
    var other = ddOther.value;
    if (other && other !== ddModel.value) {
      var otherRun = counterpart(runId, other);
      var otherItem = null;
      if (otherRun) {
        var match = data.runs[otherRun].items.filter(function (row) { return row[0] === item._id; })[0];
        otherItem = match ? decode(data.runs[otherRun], match) : null;
      }
      var heading = other + " · " + (otherRun ? (KIND[data.runs[otherRun].kind] || "") : "no run of this kind");
      if (otherRun && data.runs[otherRun].setup_key !== run.setup_key) heading += " (⚠ different setup: not comparable)";
      wrap.appendChild(card(heading, otherRun ? data.runs[otherRun] : run, otherItem));
    }
    ddDetail.appendChild(wrap);
  }
  function showPairItem(a, b, kind, itemId) {
    if (!data) return;
    var ids = runsOf(a).filter(function (id) { return data.runs[id].kind === kind; });
    if (!ids.length) return;
    ddModel.value = a;
    ddFilter.value = "";
    fillRuns(ids[0]);
    ddOther.value = b;
    var index = -1;
    current.shown.forEach(function (it, i) { if (it._id === itemId) index = i; });
    if (index >= 0) select(current.shown[index], index < LIST_LIMIT ? ddBody.rows[index] : null);
    document.getElementById("items").scrollIntoView();
  }
  function openRun(model, runId) {
    if (!data) return;
    ddModel.value = model;
    fillRuns(runId);
    document.getElementById("items").scrollIntoView();
  }

  loadItems().then(function (loaded) {
    data = loaded;
    fillModels();
    ddModel.addEventListener("change", function () { fillRuns(); });
    ddRun.addEventListener("change", showList);
    ddFilter.addEventListener("input", showList);
    ddOther.addEventListener("change", function () { if (current.selected) select(current.selected, ddBody.querySelector("tr.selected")); });
    Array.prototype.forEach.call(document.querySelectorAll(".model-link"), function (b) {
      b.addEventListener("click", function () {
        var model = b.getAttribute("data-model");
        var ids = runsOf(model);
        openRun(model, ids[0]);
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll(".show-items"), function (b) {
      b.addEventListener("click", function () {
        var id = b.getAttribute("data-run");
        var run = data.runs[id];
        openRun(run.model || run.models[0], id);
      });
    });
    if (ddModel.options.length) fillRuns();
    else ddStatus.textContent = "No items in this report.";
    document.body.setAttribute("data-items-ready", "1");
  }).catch(function (err) {
    ddStatus.textContent = "Could not read the embedded items: " + err;
  });

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
