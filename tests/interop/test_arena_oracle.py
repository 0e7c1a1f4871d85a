"""FastChat's Chatbot Arena code as the oracle for battles evalkit exports and ranks.

Needs the test extras ``fschat`` (plain: its heavy model-worker dependencies are an extra that
is not installed) plus what ``fastchat.serve.monitor.elo_analysis`` imports (plotly, pytz).
"""

from __future__ import annotations

import json

import pytest

from evalkit.interop import import_annotations
from evalkit.interop.arena import import_battles
from evalkit.runs_export import export_run
from tests.interop.conftest import ANNOTATION_MODELS, annotations_path

try:
    from fastchat.serve.monitor.elo_analysis import compute_elo_mle_with_tie
except ImportError as exc:  # not a pip-resolvable extra: see the README's test command
    pytest.skip(
        f"FastChat's elo_analysis is not importable ({exc}); install the test extras "
        "(fschat, plotly, pytz: see pyproject.toml)",
        allow_module_level=True,
    )
from evalkit.human import arena as human_arena  # noqa: E402
from evalkit.metrics.bradley_terry import fit_bradley_terry  # noqa: E402


def test_fastchat_ratings_equal_evalkit_arena(store, tmp_path, run_cli):
    import pandas as pd

    lines = []
    for model in ANNOTATION_MODELS:
        run_id = import_annotations(store, annotations_path(model))
        lines += export_run(store, run_id, "arena", tmp_path / f"{model}.jsonl").read_text(encoding="utf-8").splitlines()
    battles_file = tmp_path / "battles.jsonl"
    battles_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    theirs = compute_elo_mle_with_tie(pd.DataFrame([json.loads(line) for line in lines]))
    human_run = import_battles(store, battles_file)
    ours = fit_bradley_terry(human_arena.battles_from_store(store, [human_run]))
    assert sorted(ours.index) == sorted(theirs.index) == sorted([*ANNOTATION_MODELS, "gpt4_1106_preview"])
    assert ours.mean() == pytest.approx(1000) and theirs.mean() == pytest.approx(1000)
    for model in theirs.index:
        assert ours[model] == pytest.approx(theirs[model], abs=1.0), model
    # the command users run ranks the imported battles the same way
    rc, out, err = run_cli("arena", "--runs", human_run, "--bootstrap", "0", "--format", "json", store=store.path)
    assert rc == 0, err
    shown = {row["model"]: row["rating"] for row in json.loads(out)}
    assert shown.keys() == set(theirs.index)
    for model, rating in shown.items():
        assert rating == pytest.approx(theirs[model], abs=1.0), model
