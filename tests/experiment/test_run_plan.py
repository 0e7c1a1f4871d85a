"""The shipped tiny plan end to end on a random-init GPT-2: killed with SIGKILL mid-plan, resumed,
compared; a further run adds no runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from evalkit.experiment import load_plan, plan_steps
from evalkit.store import ResultsStore
from tests.conftest import shared_path

pytestmark = pytest.mark.slow


def _cmd(data_dir, out, store):
    return [sys.executable, "-m", "evalkit", "--store", str(store), "experiment", "tiny", "--data-dir", str(data_dir),
            "--out", str(out), "--no-progress", "--format", "json"]


@pytest.fixture(scope="module")
def plan_run(tmp_path_factory):
    shared_path("book-ch07", "instruction-data.json")
    data_dir = shared_path("mmlu", "test.jsonl").parent.parent
    root = tmp_path_factory.mktemp("plan")
    out, store = root / "out", root / "evalkit.db"
    env = {**os.environ, "OLLAMA_HOST": "http://127.0.0.1:9"}  # no judge answers there: the judge step is skipped
    ledger = out / "experiment.json"
    killed = subprocess.Popen(_cmd(data_dir, out, store), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and killed.poll() is None:
        if ledger.is_file() and json.loads(ledger.read_text())["steps"]:
            break
        time.sleep(0.2)
    assert killed.poll() is None, "the plan ended before it could be killed"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    steps_at_kill = set(json.loads(ledger.read_text())["steps"])

    resumed = subprocess.run(_cmd(data_dir, out, store), env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    with ResultsStore(store) as s:
        runs_after_resume = s.list_runs()
    again = subprocess.run(_cmd(data_dir, out, store), env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    with ResultsStore(store) as s:
        runs_after_again = s.list_runs()
    return {"out": out, "steps_at_kill": steps_at_kill, "resumed": json.loads(resumed.stdout), "stderr": resumed.stderr,
            "again": json.loads(again.stdout), "runs": runs_after_resume, "runs_again": runs_after_again}


def test_the_killed_plan_resumes_and_makes_each_run_once(plan_run):
    assert plan_run["steps_at_kill"] and "bundle" not in plan_run["steps_at_kill"]
    statuses = {s["key"]: s["status"] for s in plan_run["resumed"]["steps"]}
    assert all(statuses[key] == "skipped" for key in plan_run["steps_at_kill"])  # finished before the kill: not redone
    assert set(statuses) == {f"{kind}/{v}/s123" for kind in ("finetune", "generate", "mmlu") for v in ("alpaca", "masked")} | {"bundle"}
    done = Counter((r.kind, r.model) for r in plan_run["runs"] if r.status == "done")
    assert done == Counter({("finetune", "random:gpt2-tiny"): 2, ("generate", "tiny-alpaca"): 1, ("generate", "tiny-masked"): 1,
                            ("mmlu", "tiny-alpaca"): 1, ("mmlu", "tiny-masked"): 1})
    out = plan_run["out"]
    for variant in ("alpaca", "masked"):
        meta = json.loads((out / "models" / f"tiny-{variant}" / "evalkit_finetune.json").read_text())
        assert meta["finished"] and meta["hyperparameters"]["mask_instruction"] is (variant == "masked")
    assert (out / "rating-bundle" / "key.json").is_file() and (out / "rating-bundle" / "rate.html").is_file()


def test_the_comparison_rows_hold_numbers_and_the_judge_is_skipped_with_a_note(plan_run):
    rows = plan_run["resumed"]["rows"]
    assert [(r["variant"], r["mode"]) for r in rows] == [("masked", "mmlu")]
    row = rows[0]
    assert row["baseline"] == "tiny-alpaca" and row["model"] == "tiny-masked" and row["n"] == 8
    assert row["diff"] == pytest.approx(row["b"] - row["a"])
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert 0 <= row["p_value"] <= row["p_holm"] <= 1
    assert row["verdict"] in ("variant better", "baseline better", "no difference")
    assert any(note.startswith("no judge reachable (cannot reach Ollama at http://127.0.0.1:9") for note in plan_run["resumed"]["notes"])
    html = Path(plan_run["resumed"]["report"]).read_text()
    assert 'id="experiment"' in html and "Experiment: tiny" in html and "tiny-masked" in html


def test_running_the_plan_again_adds_no_runs(plan_run):
    assert [r.id for r in plan_run["runs_again"]] == [r.id for r in plan_run["runs"]]
    assert {s["status"] for s in plan_run["again"]["steps"]} == {"skipped"}
    assert plan_run["again"]["rows"][0]["diff"] == plan_run["resumed"]["rows"][0]["diff"]


def test_only_runs_one_variant_and_trains_what_it_starts_from(tmp_path):
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text("name: p\nbase: {model: gpt2-tiny, init: random}\nbaseline: a\n"
                         "evaluations: {mmlu: {limit: 2}, bundle: {n: 2}}\n"
                         "variants: {a: {}, b: {style: phi3}, c: {method: dpo, from: a, data: prefs.json}}\n")
    plan = load_plan(plan_file)
    with ResultsStore(tmp_path / "s.db") as store:
        keys = lambda only: [s.key for s in plan_steps(plan, plan_file, store, tmp_path / "out", only=only)]  # noqa: E731
        assert keys("b") == ["finetune/b/s123", "generate/b/s123", "mmlu/b/s123"]
        assert keys("c") == ["finetune/a/s123", "finetune/c/s123", "generate/c/s123", "mmlu/c/s123"]
        assert keys(None)[-1] == "bundle" and len(keys(None)) == 3 * 3 + 1
        dpo = next(s for s in plan_steps(plan, plan_file, store, tmp_path / "out", only="c") if s.key == "finetune/c/s123")
        assert dpo.settings["model"] == str(tmp_path / "out" / "models" / "p-a") and dpo.settings["method"] == "dpo"
        assert dpo.settings["data"] == str(tmp_path / "prefs.json")
