"""Blind pairwise human rating: bundles for the rating page, ratings import, Bradley-Terry
ratings (Chatbot Arena's method) and agreement between raters, judges and ground truth."""

from evalkit.human.arena import (
    ArenaResult,
    arena_ratings,
    battle_counts,
    battles_from_store,
    bootstrap_bradley_terry,
    fit_bradley_terry,
    run_arena,
    unbounded_models,
    win_rate_matrix,
)

__all__ = [
    "ArenaResult",
    "arena_ratings",
    "battle_counts",
    "battles_from_store",
    "bootstrap_bradley_terry",
    "fit_bradley_terry",
    "run_arena",
    "unbounded_models",
    "win_rate_matrix",
]
