"""The HTML file itself, parsed: every stored metric with its provenance, the leaderboard
hooks, the Content-Security-Policy and the safety of embedded model text."""

from __future__ import annotations

import base64
import gzip
import json
import re
from html.parser import HTMLParser

import pytest

from evalkit.report import render_report
from evalkit.report.render import encode_block, script_json
from tests.conftest import shared_path
from tests.report import builders as b


class Page(HTMLParser):
    """Elements as (tag, attrs, text) with the text of simple elements, plus script bodies."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.scripts: dict[str, str] = {}
        self._stack: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "children": []}
        if self._stack:
            self._stack[-1]["children"].append(el)
        self.elements.append(el)
        if tag not in ("meta", "link", "br", "img", "input", "hr"):
            self._stack.append(el)

    def handle_endtag(self, tag):
        while self._stack:
            el = self._stack.pop()
            if el["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self._stack:
            el["text"] += data
        if self._stack and self._stack[-1]["tag"] == "script":
            self.scripts[self._stack[-1]["attrs"].get("id", "")] = self.scripts.get(self._stack[-1]["attrs"].get("id", ""), "") + data

    def find(self, tag=None, **attrs):
        return [e for e in self.elements if (tag is None or e["tag"] == tag)
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]


def walk(el):
    yield el
    for child in el["children"]:
        yield from walk(child)


def _block(page: Page, node: dict):
    text = page.scripts[node["attrs"]["id"]]
    if node["attrs"]["data-encoding"] == "gzip+base64":
        text = gzip.decompress(base64.b64decode(text)).decode("utf-8")
    return json.loads(text)


def decode_items(page: Page) -> dict:
    """``{"runs": {run_id: {**description, "items": rows}}}`` with shared values put back in
    place (a number in a text field is an index into the shared block), as the page decodes them."""
    meta = json.loads(page.scripts["report-meta"])
    shared: list = []
    for group in meta["shared_groups"]:  # consecutive slices of one list of shared texts
        assert group["start"] == len(shared)
        values = _block(page, page.find("script", id=group["id"])[0])
        assert len(values) == group["count"]
        shared += values
    runs = {}
    for node in page.find("script"):
        run_id = node["attrs"].get("data-run")
        if run_id is None:
            continue
        run = meta["runs"][run_id]
        rows = [
            [row[0], *(shared[v] if text and isinstance(v, int) else v for v, text in zip(row[1:], run["text"]))]
            for row in _block(page, node)
        ]
        runs[run_id] = {**run, "items": rows}
    assert set(runs) == set(meta["runs"])  # every run described has its block
    return {"runs": runs, "shared": shared}


def rounded(value):
    """A stored value as the page holds it (numbers to 4 decimals)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


@pytest.fixture
def rendered(small_store, tmp_path):
    out = render_report(small_store, tmp_path / "reports" / "lb.html", title="Run <b>&</b> report")
    html = out.read_text(encoding="utf-8")
    return small_store, html, Page(html)


def test_every_stored_metric_appears_with_its_provenance(rendered):
    store, html, page = rendered
    runs = store.list_runs()
    assert len(runs) == 7
    for run in runs:
        section = page.find("section", id=f"run-{run.id}")
        assert len(section) == 1, run.id
        text = section[0]["text"]
        for needle in (run.id, run.created_at, run.evalkit_version, run.kind == "judge-score" and "sha256:aaaa"):
            if needle:
                assert needle in text, (run.id, needle)
        if run.kind == "judge-score":
            assert "llama3" in text and "tpl-1" in text and "eval-example" in text
        if run.kind == "mmlu":
            assert "0.4.9" in text and "few-shot" in text
        rows = {e["attrs"]["data-metric"]: e["attrs"] for e in walk(section[0]) if e["tag"] == "tr" and "data-metric" in e["attrs"]}
        assert set(rows) == set(run.metrics), run.id
        for name, metric in run.metrics.items():
            assert float(rows[name]["data-value"]) == metric.value
            assert rows[name]["data-stderr"] == ("" if metric.stderr is None else repr(metric.stderr))
            assert rows[name]["data-n"] == ("" if metric.n is None else repr(metric.n))


def test_leaderboard_hooks_best_and_missing(rendered):
    store, html, page = rendered
    table = page.find("table", id="leaderboard")
    assert len(table) == 1
    body_rows = [e for e in walk(table[0]) if e["tag"] == "tr" and "data-model" in e["attrs"]]
    assert [r["attrs"]["data-model"] for r in body_rows] == ["model-1", "model-2"]
    heads = [e for e in walk(table[0]) if e["tag"] == "th" and e["attrs"].get("scope") == "col"]
    assert len(heads) == 14 and all(len([c for c in r["children"] if c["tag"] in ("td", "th")]) == 14 for r in body_rows)
    cells = {(r["attrs"]["data-model"], c["attrs"].get("data-run")): c for r in body_rows for c in r["children"] if c["attrs"].get("data-run")}
    js1 = cells[("model-1", store.ids["js1"])]
    assert "best" in js1["attrs"]["class"] and "★" in js1["text"] and "71.4" in js1["text"] and "± 4.1" in js1["text"]
    link = [e for e in walk(js1) if e["tag"] == "a"][0]
    assert link["attrs"]["href"] == f"#run-{store.ids['js1']}" and store.ids["js1"] in link["attrs"]["title"] and "llama3" in link["attrs"]["title"]
    m2_missing = [c for c in body_rows[1]["children"] if "missing" in c["attrs"].get("class", "")]
    assert len(m2_missing) == 9 and all(c["text"].strip() == "–" and c["attrs"]["data-sort"] == "" for c in m2_missing)
    assert "0.0" not in "".join(c["text"] for c in m2_missing)


def test_title_escaped_csp_and_no_network(rendered):
    _, html, page = rendered
    assert "<title>Run &lt;b&gt;&amp;&lt;/b&gt; report</title>" in html
    csp = page.find("meta", http_equiv="Content-Security-Policy")[0]["attrs"]["content"]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "img-src data:" in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp) and "unsafe-eval" not in csp
    for el in page.elements:
        for attr in ("src", "href", "action", "xlink:href"):
            value = el["attrs"].get(attr)
            assert value is None or value.startswith("#"), (el["tag"], attr, value)
    assert not re.search(r"@import|url\((?!#)", html)
    # the only scripts: the metadata, the page's own code, then data blocks (shared values, one per run)
    types = [s["attrs"].get("type") for s in page.find("script")]
    meta = json.loads(page.scripts["report-meta"])
    assert types[:2] == ["application/json", None] and len(types) == 2 + len(meta["shared_groups"]) + len(meta["runs"])
    assert set(types[2:]) <= {"application/json", "application/octet-stream"}


def test_embedded_json_cannot_break_out_and_round_trips(rendered):
    store, html, page = rendered
    assert b.XSS not in html
    assert html.count("</script>") == len(page.find("script")) and "<!--" not in html
    items = decode_items(page)
    run = items["runs"][store.ids["gen1"]]
    response = run["fields"].index("response")
    assert run["items"][0][response + 1].endswith(b.XSS)  # the exact text survives, as data
    assert script_json({"x": "</script><!--&"}) == '{"x":"\\u003c/script\\u003e\\u003c!--\\u0026"}'


def test_large_item_data_is_compressed_and_identical(small_store, tmp_path):
    small = Page(render_report(small_store, tmp_path / "a.html").read_text())
    packed = Page(render_report(small_store, tmp_path / "b.html", compress_over=0).read_text())
    blocks = [s for s in packed.find("script") if s["attrs"].get("data-run") or s["attrs"].get("id", "").startswith("report-shared-")]
    assert blocks and all(s["attrs"]["data-encoding"] == "gzip+base64" for s in blocks)
    assert all(s["attrs"]["data-encoding"] == "json" for s in small.find("script") if s["attrs"].get("data-run"))
    assert decode_items(packed) == decode_items(small)


def test_drilldown_data_has_every_sample(rendered):
    store, _, page = rendered
    items = decode_items(page)
    for run in store.list_runs():
        samples = list(store.samples(run.id))
        packed = items["runs"][run.id]
        assert [row[0] for row in packed["items"]] == [i for i, _ in samples]
        for row, (_, payload) in zip(packed["items"], samples):
            for i, name in enumerate(packed["fields"]):
                assert row[i + 1] == rounded(payload.get(name)), (run.id, name)


def test_charts_are_inline_svg_with_unique_ids(rendered):
    _, html, page = rendered
    svgs = page.find("svg")
    assert len(svgs) == 4  # judge score, human rating, MMLU, loss curves
    ids = [e["attrs"]["id"] for e in page.elements if "id" in e["attrs"]]
    assert len(ids) == len(set(ids))
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_report_command(small_store, run_cli, tmp_path):
    out = tmp_path / "r" / "leaderboard.html"
    rc, stdout, err = run_cli("report", "--out", out, "--title", "T", "--runs", f"{small_store.ids['js1']},{small_store.ids['js2']}",
                              store=small_store.path)
    assert rc == 0, err
    assert stdout.strip() == f"wrote {out}: open {out.resolve().as_uri()} in a browser"
    page = Page(out.read_text())
    assert len(page.find("section", **{"class": "run"})) == 2
    rc, _, err = run_cli("report", "--out", out, "--runs", "nope", store=small_store.path)
    assert rc == 2 and "no run 'nope'" in err


def test_random_init_models_are_flagged(store, eval_example, tmp_path):
    b.add_judge_score(store, "gpt2-tiny-random-init-demo-sft", eval_example[:2], "model 1 response", [1, 2], mean=1.5, stderr=0.5)
    with store.start_run("finetune", "other", {"init": "random", "base_model": "random:gpt2-tiny"}) as run:
        run.log_metric("val_loss", 9.0)
    notices = [e["text"] for e in Page(render_report(store, tmp_path / "r.html").read_text()).find("p", **{"class": "notice"})]
    assert len(notices) == 1
    assert "gpt2-tiny-random-init-demo-sft" in notices[0] and "other" in notices[0] and "not a pretrained" in notices[0]


def test_comparison_view_embeds_compare_models(rendered):
    from evalkit.compare import compare_models
    from evalkit.report.comparison import REPORT_BOOTSTRAP

    store, _, page = rendered
    meta = json.loads(page.scripts["report-meta"])
    (pair,) = meta["comparisons"]
    assert (pair["a"], pair["b"], pair["error"]) == ("model-1", "model-2", None)
    expected = compare_models(store, "model-1", "model-2", bootstrap=REPORT_BOOTSTRAP, seed=0)
    by_mode = {r["mode"]: r for r in pair["rows"]}
    for row in expected:
        shown = by_mode[row["mode"]]
        for key in ("a", "b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "n", "verdict", "refused"):
            assert shown[key] == pytest.approx(row[key]) if isinstance(row[key], float) else shown[key] == row[key], (row["mode"], key)
    judged = [d for d in pair["differing"] if d["mode"] == "judge-score"]
    assert judged and abs(judged[0]["diff"]) == max(abs(d["diff"]) for d in judged)


def test_report_without_out_writes_into_the_working_directory(small_store, run_cli, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, stdout, err = run_cli("report", "--runs", small_store.ids["js1"], store=small_store.path)
    assert rc == 0, err
    assert stdout.strip() == f"wrote evalkit-report.html: open {(work / 'evalkit-report.html').as_uri()} in a browser"
    assert [p.name for p in work.iterdir()] == ["evalkit-report.html"]


def test_content_shared_by_runs_is_in_the_page_once(store, tmp_path):
    questions = [json.loads(line) for line in open(shared_path("mmlu", "test.jsonl"), encoding="utf-8")][:40]
    questions = [{**q, "doc_id": k} for k, q in enumerate(questions)]
    for m in range(3):
        b.add_mmlu(store, f"model-{m}", {"acc": (0.25, 0.05, 40)}, questions=questions)
    html = render_report(store, tmp_path / "m.html").read_text(encoding="utf-8")
    items = decode_items(Page(html))
    # every question text and every choices list once in the shared values, none in a run's block
    shared_texts = [v for v in items["shared"] if isinstance(v, str)]
    assert sorted(shared_texts) == sorted({q["question"] for q in questions})
    assert sum(1 for v in items["shared"] if isinstance(v, list)) == len({tuple(q["choices"]) for q in questions})
    for run in items["runs"].values():
        assert [row[0] for row in run["items"]] and all(
            row[run["fields"].index("question") + 1] == q["question"] for row, q in zip(run["items"], questions))


def test_blocks_stream_into_gzip_and_decode_to_the_same_json():
    rows = [[f"item-{k}", "<b>&</b>" * (k % 5), k / 7, None, ["x", "y"]] for k in range(5000)]
    plain, kind, encoding = encode_block(rows, 10**9)
    assert (kind, encoding) == ("application/json", "json") and "<" not in plain and "&" not in plain
    packed, kind, encoding = encode_block(rows, 1000)
    assert (kind, encoding) == ("application/octet-stream", "gzip+base64")
    assert json.loads(gzip.decompress(base64.b64decode(packed))) == json.loads(plain) == rows


def test_numbers_rounded_to_what_the_page_shows(store, tmp_path):
    with store.start_run("mmlu", "m", {"eval_set": "mmlu"}) as run:
        run.add_sample("anatomy/0", {"question": "q", "loglikelihoods": [-1.23456789, -0.00004], "correct": True, "n": 7})
    items = decode_items(Page(render_report(store, tmp_path / "r.html").read_text(encoding="utf-8")))
    row = items["runs"][run.id]["items"][0]
    fields = items["runs"][run.id]["fields"]
    assert row[fields.index("loglikelihoods") + 1] == [-1.2346, -0.0]
    assert row[fields.index("correct") + 1] is True and row[fields.index("n") + 1] == 7
    assert next(iter(store.samples(run.id)))[1]["loglikelihoods"] == [-1.23456789, -0.00004]  # the store keeps them


def test_a_run_decodes_only_the_shared_texts_of_its_kind(small_store, eval_example, tmp_path):
    questions = [{**json.loads(line), "doc_id": k} for k, line in enumerate(open(shared_path("mmlu", "test.jsonl"), encoding="utf-8")) if k < 10]
    for m in ("model-1", "model-2"):
        b.add_mmlu(small_store, m, {"acc": (0.25, 0.05, 10)}, questions=questions)
    page = Page(render_report(small_store, tmp_path / "g.html").read_text(encoding="utf-8"))
    meta = json.loads(page.scripts["report-meta"])
    items = decode_items(page)
    group_of = {}
    for g in meta["shared_groups"]:
        for k in range(g["start"], g["start"] + g["count"]):
            group_of[items["shared"][k] if isinstance(items["shared"][k], str) else tuple(items["shared"][k])] = g["id"]
    mmlu_group = group_of[questions[0]["question"]]
    for run_id, run in meta["runs"].items():
        if run["kind"] == "mmlu" and run["n"]:
            assert run["shared"] == [mmlu_group]
        else:
            assert mmlu_group not in run["shared"]
        # every shared text a run's rows point to is in a group it names
        rows = items["runs"][run_id]["items"]
        for row in rows:
            for v, text in zip(row[1:], run["text"]):
                key = v if isinstance(v, str) else tuple(v) if isinstance(v, list) else None
                if text and key in group_of:
                    assert group_of[key] in run["shared"]


def test_loss_chart_names_each_fine_tunes_precision(store, tmp_path):
    bf16 = b.add_finetune(store, "fast", [(5, 3.2, 3.4), (10, 2.6, 2.9)], precision="bf16")
    older = b.add_finetune(store, "older", [(5, 3.1, 3.3), (10, 2.5, 2.8)])  # from before precision was recorded
    html = render_report(store, tmp_path / "r.html").read_text()
    assert f"fast ({bf16}, bf16)" in html and f"older ({older}, fp32)" in html


def test_texts_the_store_keeps_once_reach_the_page_as_written(store, tmp_path):
    # the drill-down reads stored texts as content hashes: a long response written once is inline
    # in its run's block, one written by two runs (judge and human) is a shared value, and a
    # stored text in a field whose other values are numbers is put back as its text
    long_once = "a response long enough to be kept once in the store's contents table <b>&</b>" * 2
    long_twice = "the same response in a judge run and a human vote, stored once in contents" * 2
    with store.start_run("judge-pairwise", "m", {}) as judged:
        judged.add_samples([
            ("i/1", {"instruction": "q1", "output_1": "ref", "output_2": long_twice, "preference": 2.0}),
            ("i/2", {"instruction": "q2", "output_1": "ref", "output_2": long_once, "preference": 1.0}),
            ("i/3", {"instruction": "q3", "output_1": "ref", "output_2": "short", "preference": 1.5}),
            ("i/4", {"instruction": "q4", "output_1": long_once + " reference", "output_2": None, "preference": 1.0}),
        ])
    with store.start_run("human", "m vs n", {}) as voted:
        voted.add_samples([("p/r", {"model_a": "m", "response_a": long_twice, "model_b": "n", "response_b": "short",
                                     "outcome": "a", "rater": "r"}),
                           ("q/r", {"model_a": "m", "model_b": "n", "response_b": long_once + " b", "outcome": "b", "rater": "r"}),
                           ("s/r", {"model_a": "m", "model_b": "n", "response_b": 7.5, "outcome": "b", "rater": "r"})])
    items = decode_items(Page(render_report(store, tmp_path / "s.html").read_text(encoding="utf-8")))
    judged_rows = {row[0]: row for row in items["runs"][judged.id]["items"]}
    fields = items["runs"][judged.id]["fields"]
    expected = dict(store.samples(judged.id))
    for item, row in judged_rows.items():
        for name, value in zip(fields, row[1:]):
            assert value == expected[item].get(name), (item, name)
    assert long_twice in items["shared"] and long_once not in items["shared"]
    votes, vote_fields = items["runs"][voted.id]["items"], items["runs"][voted.id]["fields"]
    assert items["runs"][voted.id]["text"][vote_fields.index("response_b")] == 0  # a number among its texts
    assert [row[vote_fields.index("response_b") + 1] for row in votes] == ["short", long_once + " b", 7.5]
    assert [row[vote_fields.index("response_a") + 1] for row in votes] == [long_twice, None, None]
