"""A report rendered from runs made by evalkit's own commands on a tiny model, plus imported
AlpacaEval annotations and the book's responses; parsed, every stored metric must appear with
its provenance, and the leaderboard must hold exactly the stored numbers."""

from __future__ import annotations

import json

import pytest

from evalkit.report import build_leaderboard, leaderboard_rows, render_report
from tests.conftest import shared_path
from tests.report.test_render import Page, decode_items, walk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_store(tmp_path_factory, tiny_gpt2):
    from evalkit.human.arena import run_arena
    from evalkit.human.bundle import export_pairs
    from evalkit.human.ratings import import_ratings
    from evalkit.interop.alpaca_eval import import_annotations
    from evalkit.interop.responses import import_responses
    from evalkit.store import ResultsStore
    from evalkit.generate_run import generate_responses
    from finetune import load_records, split_records, train
    from finetune.model import model_name

    folder = tmp_path_factory.mktemp("real-runs")
    store = ResultsStore(folder / "evalkit.db")
    data = shared_path("book-ch07", "instruction-data.json")
    trained = train(model=tiny_gpt2, data=data, out=folder / "tiny-sft", limit=60, epochs=1, batch_size=4,
                    eval_every=3, eval_batches=1, name="tiny-sft", store=store, progress=False)
    test = split_records(load_records(data)[:60])["test"]
    # every producer names a model folder alike (its metadata name, else the folder's name)
    base = model_name(str(tiny_gpt2))
    gen = {name: generate_responses(model, test, store=store, eval_set="book-first60-test", max_new_tokens=6, batch_size=6)
           for name, model in ((base, tiny_gpt2), ("tiny-sft", trained.out_dir))}
    book = import_responses(store, shared_path("book-ch07", "instruction-data-with-response.json"), name="book-gpt2-medium-sft")
    annotations = sorted(shared_path("alpaca_eval", "annotations").glob("*.json"))[:2]
    pairwise = [import_annotations(store, path) for path in annotations]

    from evalkit.mmlu import run_mmlu

    mmlu = {name: run_mmlu(store, model, subjects=["abstract_algebra", "philosophy"], limit=3,
                           data=shared_path("mmlu"), device="cpu", progress=False).run_id
            for name, model in ((base, tiny_gpt2), ("tiny-sft", trained.out_dir))}

    from evalkit.judge import run_judge
    from tests.judge.fake_ollama import FakeOllama
    from tests.judge.test_pairwise import length_judge

    judged = {}
    with FakeOllama(models={"llama3": {}}) as server:
        # a judge that scores by response length (any deterministic judge will do: the report
        # must show what was stored, whatever it is)
        server.script(lambda req: {"score": len(req.messages[-1]["content"]) % 101})
        for name, rid in gen.items():
            judged[name] = run_judge(store, responses_run=rid, hosts=[server.url], progress=False)
        server.script(length_judge)
        judged["pairwise"] = run_judge(store, responses_run=gen["tiny-sft"], hosts=[server.url], mode="pairwise",
                                       progress=False, retry_backoff=0.01)

    bundle = export_pairs(store, runs=list(gen.values()), n=None, seed=0)
    paths = bundle.write(folder / "rating")
    lines = []
    for i, pair in enumerate(bundle.pairs):  # a test rater who prefers the fine-tuned model's side
        winner = "a" if pair.model_a == "tiny-sft" else "b"
        lines.append({"rater": "tester", "pair_id": pair.pair_id, "outcome": winner if i % 3 else "tie", "comment": "",
                      "timestamp": "2026-01-01T00:00:00Z", "seconds": 3.0})
    ratings = folder / "ratings-tester.jsonl"
    ratings.write_text("".join(json.dumps(line) + "\n" for line in lines))
    human = import_ratings(store, paths["key"], [ratings]).run_id
    arena = run_arena(store, rounds=50, seed=0)
    store.base = base
    store.ids = {"finetune": trained.run_id, "gen": gen, "judge": judged, "mmlu": mmlu, "book": book, "pairwise": pairwise, "human": human,
                 "arena": getattr(arena, "run_id", None)}
    yield store
    store.close()


def test_report_from_real_runs_shows_every_metric_with_provenance(real_store, tmp_path):
    out = render_report(real_store, tmp_path / "leaderboard.html", title="real runs")
    page = Page(out.read_text(encoding="utf-8"))
    runs = real_store.list_runs()
    assert {r.kind for r in runs} == {"finetune", "generate", "mmlu", "judge-score", "judge-pairwise", "human", "arena"}
    for run in runs:
        section = page.find("section", id=f"run-{run.id}")
        assert len(section) == 1, run.id
        text = section[0]["text"]
        assert run.id in text and run.created_at in text and (run.evalkit_version or "not recorded") in text
        if run.kind == "judge-pairwise" and run.config.get("source") == "alpaca-eval":
            assert "weighted_alpaca_eval_gpt4_turbo" in text and "gpt4_1106_preview" in text  # judge and baseline
        if run.kind in ("judge-score", "judge-pairwise") and run.config.get("source") != "alpaca-eval":
            for key in ("judge_model", "judge_digest", "template_hash"):
                assert str(run.config[key]) in text, (run.id, key)
        if run.kind == "mmlu":
            for key in ("num_fewshot", "template_hash", "lm_eval_version"):
                assert str(run.config[key]) in text, (run.id, key)
        if run.kind == "generate":
            assert run.config["eval_set"] in text if isinstance(run.config.get("eval_set"), str) else True
        metric_rows = {e["attrs"]["data-metric"]: e["attrs"] for e in walk(section[0]) if "data-metric" in e["attrs"]}
        assert set(metric_rows) == set(run.metrics)
        for name, metric in run.metrics.items():
            shown = metric_rows[name]["data-value"]
            assert (shown == "" and metric.value is None) or float(shown) == metric.value, (run.id, name)


def test_leaderboard_holds_the_stored_numbers(real_store, tmp_path):
    rows = {r["model"]: r for r in leaderboard_rows(real_store)}
    pairwise = [real_store.get_run(rid) for rid in real_store.ids["pairwise"]]
    for run in pairwise:
        row = rows[run.model]
        assert row["win_rate"] == run.metrics["win_rate"].value
        assert row["win_rate_stderr"] == (run.metrics["win_rate"].stderr or run.metrics["standard_error"].value)
        assert row["lc_win_rate"] == run.metrics["length_controlled_winrate"].value
        assert row["win_rate_run"] == run.id
    arena = real_store.list_runs(kind="arena")[-1]
    for model in (real_store.base, "tiny-sft"):
        assert rows[model]["bt_rating"] == arena.metrics[f"bt_rating/{model}"].value
        assert rows[model]["bt_rating_ci_low"] == arena.metrics[f"bt_ci_low/{model}"].value
    assert rows["tiny-sft"]["bt_rating"] > rows[real_store.base]["bt_rating"]  # the rater preferred it
    assert rows["book-gpt2-medium-sft"]["win_rate"] is None  # responses only: dashes, not zeros
    assert set(rows) == {real_store.base, "tiny-sft", "book-gpt2-medium-sft", *(r.model for r in pairwise)}
    for name in (real_store.base, "tiny-sft"):
        run = real_store.get_run(real_store.ids["mmlu"][name])
        assert rows[name]["mmlu_acc"] == run.metrics["acc"].value and rows[name]["mmlu_acc_n"] == 6
        assert rows[name]["mmlu_stem"] == run.metrics["acc/stem"].value  # abstract algebra
        assert rows[name]["mmlu_humanities"] == run.metrics["acc/humanities"].value  # philosophy
        assert rows[name]["mmlu_social_sciences"] is None and rows[name]["mmlu_other"] is None  # not run
        run = real_store.get_run(real_store.ids["judge"][name])
        assert (rows[name]["judge_score"], rows[name]["judge_score_stderr"]) == (run.metrics["score_mean"].value, run.metrics["score_mean"].stderr)
    # our own pairwise run (llama3 against the book's reference outputs) and AlpacaEval's (GPT-4 Turbo
    # against GPT-4 Turbo's outputs) are different setups: never ranked together silently
    board = build_leaderboard(real_store)
    assert board.setups["judge-pairwise"].mixed and any("Win rate" in w for w in board.warnings())
    assert rows["tiny-sft"]["win_rate_setup"] != rows[pairwise[0].model]["win_rate_setup"]


def test_drilldown_has_human_votes_and_loss_curve(real_store, tmp_path):
    out = render_report(real_store, tmp_path / "leaderboard.html")
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    items = decode_items(page)
    human = items["runs"][real_store.ids["human"]]
    assert set(human["models"]) == {real_store.base, "tiny-sft"}
    assert len(human["items"]) == real_store.sample_count(real_store.ids["human"])
    assert any("training and validation loss" in (e["attrs"].get("aria-label") or "") for e in page.find("svg"))
