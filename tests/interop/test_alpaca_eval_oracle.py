"""AlpacaEval's own code as the oracle for evalkit's AlpacaEval numbers and files.

Needs the test extra ``alpaca-eval`` (with ``setuptools<81``: it imports ``pkg_resources``).
"""

from __future__ import annotations

import json
import warnings

import pytest

from evalkit.metrics import pairwise_metrics
from tests.interop.conftest import ANNOTATION_MODELS, annotations_path

# scikit-learn's deprecation notices about the arguments alpaca_eval's own GLM code passes
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pkg_resources' deprecation notice on import
    glm_winrate = pytest.importorskip(
        "alpaca_eval.metrics.glm_winrate", reason="alpaca-eval not installed (test extra: pip install alpaca-eval 'setuptools<81')"
    )
    from alpaca_eval.metrics import get_winrate


@pytest.fixture
def offline_glm(monkeypatch, tmp_path):
    """AlpacaEval's GLM code downloads ``df_gamed.csv`` (gamed baselines and instruction difficulty)
    from the hub even for the ``length_controlled_minimal`` formula, which uses neither: give it a
    table of the right layout whose values that formula never reads."""
    import pandas as pd

    path = tmp_path / "df_gamed.csv"
    pd.DataFrame({"model": "unused", "index": range(805), "instruction_difficulty": 0.0}).to_csv(path, index=False)
    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **_: str(path))
    import sklearn

    # alpaca_eval's GLM turns on scikit-learn's metadata routing globally; keep that out of other tests
    with sklearn.config_context():
        yield
    assert not sklearn.get_config()["enable_metadata_routing"]


@pytest.mark.parametrize("model", ANNOTATION_MODELS)
def test_metrics_equal_alpaca_eval(model, offline_glm):
    import pandas as pd

    records = json.loads(annotations_path(model).read_text(encoding="utf-8"))
    ours = pairwise_metrics(records)
    theirs = get_winrate(records)
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert ours[key].value == pytest.approx(float(theirs[key]), abs=1e-9), key
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total"):
        assert ours[key].value == int(theirs[key]), key
    lc = glm_winrate.get_length_controlled_winrate(
        pd.DataFrame(records), glm_name="length_controlled_minimal", save_weights_dir=None, is_warn_extreme_changes=False
    )
    assert ours["length_controlled_winrate"].value == pytest.approx(float(lc["length_controlled_winrate"]), abs=1e-6)


def test_get_winrate_on_exported_annotations_equals_run_metrics(store, tmp_path, book_pairwise_run):
    from evalkit.runs_export import export_run

    path = export_run(store, book_pairwise_run, "alpaca-eval", tmp_path / "annotations.json")
    theirs = get_winrate(json.loads(path.read_text(encoding="utf-8")))
    ours = store.metrics(book_pairwise_run)
    assert ours["n_total"].value == 37 and ours["n_draws"].value > 0  # the fixture has unparsed items and ties
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert ours[key].value == pytest.approx(float(theirs[key]), abs=1e-9), key
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total"):
        assert ours[key].value == int(theirs[key]), key


def _length_judge(prompts, model_name, **_):
    """Stands in for the OpenAI judge (no network here): prefers the longer output, deterministically."""
    answers = []
    for prompt in prompts:
        first, second = prompt.split("\n[A]\n", 1)[1].split("\n[B]\n", 1)
        answers.append("Output (a)" if len(first) >= len(second.rsplit("\n[END]", 1)[0]) else "Output (b)")
    zeros = [0.0] * len(answers)
    return {"completions": answers, "price_per_example": zeros, "time_per_example": zeros, "completions_all": answers}


def test_alpaca_eval_evaluate_accepts_exported_model_outputs(store, tmp_path, monkeypatch):
    """`alpaca_eval --model_outputs` (its evaluate()) on evalkit's model_outputs.json; the
    annotations.json it writes imports back with AlpacaEval's own numbers."""
    import alpaca_eval.decoders.openai as openai_decoder
    import pandas as pd
    from alpaca_eval.main import evaluate

    from evalkit.interop import import_annotations, import_responses
    from evalkit.runs_export import export_run

    published = json.loads(annotations_path("OpenHermes-2.5-Mistral-7B").read_text(encoding="utf-8"))[:12]
    responses = tmp_path / "hermes.jsonl"
    responses.write_text(
        "".join(json.dumps({"instruction": a["instruction"], "output": a["output_2"], "generator": a["generator_2"], "dataset": a["dataset"]}) + "\n" for a in published),
        encoding="utf-8",
    )
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps([{"instruction": a["instruction"], "output": a["output_1"], "generator": a["generator_1"], "dataset": a["dataset"]} for a in published]))
    model_outputs = export_run(store, import_responses(store, responses), "alpaca-eval", tmp_path / "model_outputs.json")

    judge_dir = tmp_path / "length_judge"
    judge_dir.mkdir()
    (judge_dir / "prompt.txt").write_text("{instruction}\n[A]\n{output_1}\n[B]\n{output_2}\n[END]", encoding="utf-8")
    (judge_dir / "configs.yaml").write_text(
        "length_judge:\n"
        f"  prompt_template: \"{judge_dir / 'prompt.txt'}\"\n"
        "  fn_completions: openai_completions\n"
        "  completions_kwargs: {model_name: length-judge, max_tokens: 5}\n"
        "  fn_completion_parser: regex_parser\n"
        "  completion_parser_kwargs:\n"
        "    outputs_to_match: {1: '(?:^|\\n) ?Output \\(a\\)', 2: '(?:^|\\n) ?Output \\(b\\)'}\n"
        "  batch_size: 1\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(openai_decoder, "openai_completions", _length_judge)
    leaderboard, _ = evaluate(
        model_outputs=str(model_outputs), reference_outputs=str(reference), annotators_config=str(judge_dir / "configs.yaml"),
        output_path=str(tmp_path / "alpaca_eval_out"), precomputed_leaderboard=None, is_cache_leaderboard=False,
        is_return_instead_of_print=True, fn_metric="get_winrate", sort_by="win_rate", caching_path=None,
    )
    row = leaderboard.loc["OpenHermes-2.5-Mistral-7B"]
    written = tmp_path / "alpaca_eval_out" / "annotations.json"
    run_id = import_annotations(store, written)
    ours = store.metrics(run_id)
    assert ours["n_total"].value == 12 == int(row["n_total"])
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert ours[key].value == pytest.approx(float(row[key]), abs=1e-9), key
    # the judge preferred the longer output: check AlpacaEval used evalkit's outputs as written
    expected = [2.0 if len(a["output_2"]) > len(a["output_1"]) else 1.0 for a in published]
    annotations = pd.read_json(written)
    assert sorted(annotations["preference"]) == sorted(expected)
    assert ours["avg_length"].value == int(row["avg_length"])
