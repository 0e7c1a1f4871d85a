"""AlpacaEval's length-controlled win rate: a logistic GLM of the preference on the length gap.

AlpacaEval 2 (Dubois et al., 2024) fits, per model, a logistic regression of the judge's
preference for the model over the baseline on ``tanh(std_delta_len)`` (the standardised
difference of output lengths, baseline minus model), an instruction-difficulty term and a
model term, and reports the mean predicted preference with the length gap set to 0.

Which variant evalkit fits
--------------------------
AlpacaEval's published ``length_controlled_v1`` needs two tables from its hub data set that are
not available offline: the per-instruction difficulty (``instruction_difficulty.csv``) and the
annotations of two deliberately length-gamed baselines used to regularise the fit
(``df_gamed.csv``). evalkit fits AlpacaEval's own ``length_controlled_minimal`` GLM instead:

    preference ~ tanh(std_delta_len) + model_term        (no intercept; the model term is one)

with the same estimator settings as AlpacaEval (scikit-learn ``LogisticRegressionCV``, L1
penalty, liblinear, ``random_state=123``, 5 group folds, no intercept) and the same treatment of
soft preferences (each item counted twice, as a win with weight ``p`` and a loss with weight
``1 - p``, and cross-validated on the soft log-loss). With the length gap set to 0 the prediction
is the same for every instruction, so the value is ``logistic(model_term)``.

How it differs from the published numbers: without the difficulty term the fit cannot separate
"this model's outputs are long" from "this model is good on the instructions where its outputs
are long", and without the gamed baselines there is no regularisation towards the baseline; the
minimal variant's numbers differ from the leaderboard's ``length_controlled_winrate``: by a few
points for most models (OpenHermes-2.5-Mistral-7B: 20.6 here against 16.2 published;
FuseChat-Llama-3.2-1B: 26.0 against 25.3), and by much more for a model whose outputs are far
shorter than the baseline's, which the minimal fit over-corrects (Mixtral-8x7B-Instruct concise:
37.4 against 23.0). Compare length-controlled numbers only between runs fitted the same way. They equal what ``alpaca_eval.metrics.glm_winrate.get_length_controlled_winrate``
gives with ``glm_name="length_controlled_minimal"`` (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Cross-validation folds, as AlpacaEval's GLM_INFO sets them.
N_SPLITS = 5
VARIANT = "alpaca_eval length_controlled_minimal (no instruction-difficulty table offline)"


def length_controlled_winrate(
    preferences: Sequence[float | None], baseline_lengths: Sequence[int], model_lengths: Sequence[int]
) -> float | None:
    """Length-controlled win rate in percent, or None when it cannot be estimated.

    ``preferences`` are AlpacaEval preferences in [1, 2] (2 = model preferred), None for an
    unparsed item; lengths are in characters, as AlpacaEval measures them. The length gap is
    standardised over all items (parsed or not), the GLM is fitted on the parsed ones.
    """
    from sklearn import config_context
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import log_loss, make_scorer
    from sklearn.model_selection import GroupKFold

    pref = np.array([np.nan if p is None else float(p) for p in preferences], dtype=float)
    delta = np.asarray(baseline_lengths, dtype=float) - np.asarray(model_lengths, dtype=float)
    parsed = ~np.isnan(pref)
    if parsed.sum() < N_SPLITS:
        return None  # too few items for AlpacaEval's 5-fold cross-validation
    spread = delta.std(ddof=1) if len(delta) > 1 else 0.0
    if not np.isfinite(spread) or spread == 0:
        # No length differences: the length term is undefined (AlpacaEval would divide by 0),
        # and with the gap already 0 the length-controlled win rate is the win rate itself.
        return float(np.mean(pref[parsed] - 1) * 100)
    target = pref[parsed] - 1  # P(model preferred), in [0, 1]
    features = np.column_stack([np.tanh(delta[parsed] / spread), np.ones(parsed.sum())])

    # Soft labels: scikit-learn's logistic regression takes hard labels, so each item appears
    # once as a win weighted by p and once as a loss weighted by 1 - p (AlpacaEval's construction).
    n = len(target)
    X = np.vstack([features, features])
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    weight = np.concatenate([target, 1 - target])
    groups = np.concatenate([np.arange(n), np.arange(n)])  # both copies of an item in the same fold

    def soft_log_loss(y_true, y_prob, sample_weight):
        # the weighted log-loss over both copies = mean cross-entropy against the soft target
        return log_loss(y_true, y_prob, sample_weight=sample_weight, labels=[0, 1])

    # Metadata routing only inside this block: the scorer needs the weights of the held-out fold.
    with config_context(enable_metadata_routing=True):
        scorer = make_scorer(soft_log_loss, response_method="predict_proba", greater_is_better=False)
        scorer.set_score_request(sample_weight=True)
        model = LogisticRegressionCV(
            cv=GroupKFold(n_splits=N_SPLITS),
            scoring=scorer,
            l1_ratios=(1.0,),  # the L1 penalty (scikit-learn >= 1.8 spelling of penalty="l1")
            solver="liblinear",
            dual=False,
            fit_intercept=False,
            random_state=123,
            use_legacy_attributes=False,
        )
        model.set_fit_request(sample_weight=True)
        model.fit(X, y, sample_weight=weight, groups=groups)
    # gap set to 0: tanh(0) = 0, so only the model term remains
    model_term = np.ravel(model.coef_)[1]
    return float(100 / (1 + np.exp(-model_term)))
