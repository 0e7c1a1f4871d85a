"""Blind pairwise human rating: bundles for the rating page, ratings import, Bradley-Terry
ratings (Chatbot Arena's method) and agreement between raters, judges and known answers."""

from evalkit.human.agreement import (
    agreement_report,
    agreement_stats,
    inter_rater_agreement,
    judge_human_agreement,
)
from evalkit.human.arena import ArenaResult, arena_ratings, battles_from_store, run_arena
from evalkit.metrics.bradley_terry import (
    battle_counts,
    bootstrap_bradley_terry,
    fit_bradley_terry,
    separated_groups,
    unbounded_models,
    win_rate_matrix,
)
from evalkit.human.bundle import Bundle, Pair, export_pairs, load_key, pairs_from_preference
from evalkit.human.page import render_rate_page
from evalkit.human.ratings import ImportResult, import_ratings, read_ratings

__all__ = [
    "ArenaResult",
    "Bundle",
    "ImportResult",
    "Pair",
    "agreement_report",
    "agreement_stats",
    "arena_ratings",
    "battle_counts",
    "battles_from_store",
    "bootstrap_bradley_terry",
    "export_pairs",
    "fit_bradley_terry",
    "import_ratings",
    "inter_rater_agreement",
    "judge_human_agreement",
    "load_key",
    "pairs_from_preference",
    "read_ratings",
    "render_rate_page",
    "run_arena",
    "separated_groups",
    "unbounded_models",
    "win_rate_matrix",
]
