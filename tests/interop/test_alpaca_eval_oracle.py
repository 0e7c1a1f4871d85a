"""AlpacaEval's own code as the oracle for evalkit's AlpacaEval numbers and files.

Needs the test extra ``alpaca-eval`` (with ``setuptools<81``: it imports ``pkg_resources``).
"""

from __future__ import annotations

import json
import warnings

import pytest

from evalkit.interop import pairwise_metrics
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
