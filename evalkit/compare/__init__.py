"""Is checkpoint B really better than A? Paired significance across MMLU, judge and human votes.

Public API:

* :func:`compare_models`: one row per mode (``mode``, ``a``, ``b``, ``diff``, ``ci_low``,
  ``ci_high``, ``p_value``, ``p_holm``, ``n``, ``verdict``, then ``unit``, ``alpha``,
  ``refused``, ``runs``, ``detail``).
* :func:`items_differing`: the items where two models differ most (for the report).
* The statistics behind them: :func:`mcnemar_exact`, :func:`sign_test`,
  :func:`wilcoxon_signed_rank`, :func:`binomial_interval`, :func:`bootstrap_mean_ci`,
  :func:`holm`, :func:`verdict`.
"""

from evalkit.compare.comparison import compare_models
from evalkit.compare.differing import items_differing
from evalkit.compare.modes import MODES
from evalkit.compare.stats import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    REFUSED,
    binomial_interval,
    bootstrap_mean_ci,
    holm,
    mcnemar_exact,
    sign_test,
    verdict,
    wilcoxon_signed_rank,
)

__all__ = [
    "A_BETTER",
    "B_BETTER",
    "MODES",
    "NO_DIFFERENCE",
    "REFUSED",
    "binomial_interval",
    "bootstrap_mean_ci",
    "compare_models",
    "holm",
    "items_differing",
    "mcnemar_exact",
    "sign_test",
    "verdict",
    "wilcoxon_signed_rank",
]
