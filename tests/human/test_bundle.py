"""Rating bundles from generate runs and from preference data; the page's escaping and CSP."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter

import pytest

from evalkit.errors import EvalkitError, InputError
from evalkit.human.bundle import export_pairs, load_key, pairs_from_preference
from evalkit.human.page import json_for_script, render_rate_page
from evalkit.items import instruction_item_id
from tests.human.conftest import EVAL_SET, MODELS, add_generate_run


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_from_two_generate_runs(store, generate_runs, book_eval_records, tmp_path, run_cli):
    rc, out, err = run_cli("pairs", "export", "--runs", ",".join(generate_runs), "--n", "20", "--seed", "3",
                           "--out", tmp_path / "b", store=store.path)
    assert rc == 0, err
    assert "20 pairs of book-model-1, book-model-2" in out
    pairs = read_jsonl(tmp_path / "b" / "pairs.jsonl")
    key = load_key(tmp_path / "b" / "key.json")
    assert len(pairs) == 20 and len({p["pair_id"] for p in pairs}) == 20
    assert all(p["pair_id"].startswith(key["bundle"][:8] + "-") for p in pairs)
    assert set(pairs[0]) == {"pair_id", "instruction", "input", "response_a", "response_b"}
    by_item = {instruction_item_id(r["instruction"], r["input"]): r for r in book_eval_records}
    sides = Counter()
    for p in pairs:
        entry = key["pairs"][p["pair_id"]]
        record = by_item[entry["item_id"]]
        # the key says truthfully which model wrote each side
        for side in ("a", "b"):
            field = f"model {MODELS.index(entry[side]) + 1} response"
            assert p[f"response_{side}"] == record[field] == entry[f"response_{side}"]
        assert {entry["a"], entry["b"]} == set(MODELS)
        assert entry["run_a"] in generate_runs and entry["run_b"] in generate_runs
        sides[entry["a"]] += 1
    assert sides["book-model-1"] > 0 and sides["book-model-2"] > 0  # left/right shuffled
    # names stay hidden from raters: not in what they get
    page = (tmp_path / "b" / "rate.html").read_text(encoding="utf-8")
    listing = (tmp_path / "b" / "pairs.jsonl").read_text(encoding="utf-8")
    for model in MODELS:
        assert model not in page and model not in listing
    assert key["source"]["runs"] == dict(zip(MODELS, generate_runs))


def test_export_is_seeded(store, generate_runs):
    one = export_pairs(store, runs=list(generate_runs), n=10, seed=1)
    two = export_pairs(store, runs=list(generate_runs), n=10, seed=1)
    other = export_pairs(store, runs=list(generate_runs), n=10, seed=2)
    assert one.bundle_id == two.bundle_id
    assert [(p.item_id, p.model_a) for p in one.pairs] == [(p.item_id, p.model_a) for p in two.pairs]
    assert one.bundle_id != other.bundle_id


def test_only_items_every_model_answered_and_baseline_pairs(store, generate_runs, book_eval_records):
    third = add_generate_run(store, "book-model-1-again", book_eval_records[:30], "model 1 response")
    bundle = export_pairs(store, models=[*MODELS, "book-model-1-again"], eval_set=EVAL_SET, n=None, seed=0)
    assert len({p.item_id for p in bundle.pairs}) == 30  # the third model answered 30 items
    assert len(bundle.pairs) == 30 * 3  # all three model pairs per item
    vs_baseline = export_pairs(store, runs=list(generate_runs), baseline=third, n=None, seed=0)
    assert len(vs_baseline.pairs) == 30 * 2
    assert all("book-model-1-again" in (p.model_a, p.model_b) for p in vs_baseline.pairs)
    by_name = export_pairs(store, runs=[third], baseline="book-model-2", n=5, seed=0)
    assert {frozenset((p.model_a, p.model_b)) for p in by_name.pairs} == {frozenset(("book-model-2", "book-model-1-again"))}


def test_export_errors(store, generate_runs, tmp_path):
    with pytest.raises(EvalkitError, match="at least two models"):
        export_pairs(store, runs=[generate_runs[0]])
    with pytest.raises(EvalkitError, match="no finished generate run of model 'nobody'"):
        export_pairs(store, models=["book-model-1", "nobody"])
    bundle = export_pairs(store, runs=list(generate_runs), n=3)
    bundle.write(tmp_path / "b")
    other = export_pairs(store, runs=list(generate_runs), n=3, seed=9)
    with pytest.raises(EvalkitError, match="belongs to another bundle"):
        other.write(tmp_path / "b")
    other.write(tmp_path / "b", force=True)
    assert load_key(tmp_path / "b" / "key.json")["bundle"] == other.bundle_id


def test_from_preference_keeps_the_answer_in_the_key(preference_file, tmp_path, run_cli):
    rc, out, err = run_cli("pairs", "from-preference", preference_file, "--n", "40", "--out", tmp_path / "p")
    assert rc == 0, err
    records = json.loads(preference_file.read_text(encoding="utf-8"))
    by_item = {}
    for r in records:  # an instruction can occur more than once, with other responses
        by_item.setdefault(instruction_item_id(r["instruction"], r["input"]), []).append((r["chosen"], r["rejected"]))
    key = load_key(tmp_path / "p" / "key.json")
    assert len(key["pairs"]) == 40
    chosen_sides = Counter()
    for entry in key["pairs"].values():
        side = entry["chosen"]
        other = "b" if side == "a" else "a"
        assert entry[side] == "chosen" and entry[other] == "rejected"
        assert (entry[f"response_{side}"], entry[f"response_{other}"]) in by_item[entry["item_id"]]
        chosen_sides[side] += 1
    assert chosen_sides["a"] > 5 and chosen_sides["b"] > 5
    for line in read_jsonl(tmp_path / "p" / "pairs.jsonl"):  # raters never see the answer
        assert set(line) == {"pair_id", "instruction", "input", "response_a", "response_b"}


def test_from_preference_errors_name_file_record_and_field(tmp_path):
    bad = tmp_path / "prefs.json"
    bad.write_text(json.dumps([{"instruction": "x", "chosen": "y", "rejected": "z"}, {"instruction": "x", "chosen": "y"}]))
    with pytest.raises(InputError, match=r"prefs\.json, record 1, field 'rejected'"):
        pairs_from_preference(bad)
    broken = tmp_path / "prefs.jsonl"
    broken.write_text('{"instruction": "x", "chosen": "y", "rejected": "z"}\n{"instruction": \n')
    with pytest.raises(InputError, match=r"prefs\.jsonl, record on line 2: malformed JSON"):
        pairs_from_preference(broken)


HOSTILE = '</script><script>window.pwned = 1</script><!-- <img src=x onerror="window.pwned = 2"> & \u2028'


def test_json_for_script_cannot_end_the_script_block():
    text = str(json_for_script({"response": HOSTILE}))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"response": HOSTILE}


def test_page_embeds_text_safely_under_a_strict_csp():
    page = render_rate_page("bundle123456", "<b>Title</b>", [
        {"pair_id": "p1", "instruction": HOSTILE, "input": "", "response_a": HOSTILE, "response_b": "ok"}
    ])
    assert page.count("</script>") == 2  # the data block and the page's own script, nothing else
    assert "<!--" not in page
    assert "&lt;b&gt;Title&lt;/b&gt;" in page and "<b>Title" not in page  # autoescaped
    data = re.search(r'<script type="application/json" id="bundle-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["pairs"][0]["response_a"] == HOSTILE
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1).replace("&#39;", "'")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "img-src 'none'" in csp
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp  # only the page's own script may run
    assert "innerHTML" not in script.replace("never innerHTML", "")
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
