"""Bradley-Terry ratings with 1,000 bootstrap rounds on 100,000 battles among 50 models (goal:
under 30 s on 2 cores), against Chatbot Arena's per-battle computation in the same process: one
regression row per battle entered twice, and a bootstrap that resamples battle rows (measured on
a few rounds and projected to 1,000). Also checks that both give the same ratings."""

from __future__ import annotations

import math
import os
import time
import tracemalloc

import numpy as np
import pandas as pd

from evalkit.metrics.bradley_terry import bootstrap_bradley_terry, fit_bradley_terry
from tests.human.simulate import simulate_battles

N_BATTLES = 100_000
N_MODELS = 50
ROUNDS = 1000
BASELINE_ROUNDS = 3
MEMORY_ROUNDS = 50
GOAL_SECONDS = 30.0


def arena_per_battle_fit(battles: pd.DataFrame) -> pd.Series:
    """Chatbot Arena's compute_mle_elo as published: a dense row per battle, every battle twice."""
    from sklearn.linear_model import LogisticRegression

    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    index = pd.Series(np.arange(len(models)), index=models)
    doubled = pd.concat([battles, battles], ignore_index=True)
    n = len(doubled)
    x = np.zeros((n, len(models)))
    x[np.arange(n), index[doubled["model_a"]].to_numpy()] = math.log(10)
    x[np.arange(n), index[doubled["model_b"]].to_numpy()] = -math.log(10)
    y = np.zeros(n)
    y[(doubled["winner"] == "model_a").to_numpy()] = 1.0
    tie = np.array(doubled["winner"].isin(["tie", "tie (bothbad)"]))
    tie[n // 2:] = False
    y[tie] = 1.0
    fit = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8, max_iter=1000).fit(x, y)
    scaled = 400 * fit.coef_[0]
    return pd.Series(scaled - scaled.mean() + 1000, index=models)


def _seconds(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _peak_mib(fn) -> float:
    """Peak Python + NumPy allocations (tracemalloc), measured in a separate run because
    tracing slows everything down several times."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run() -> dict:
    rng = np.random.default_rng(0)
    battles = simulate_battles(rng.normal(0, 120, N_MODELS).clip(-250, 250), N_BATTLES, rng, tie_rate=0.1)
    fit_bradley_terry(battles.head(100))  # imports and first-call costs out of the timings
    load_before = os.getloadavg()[0]

    ours, fit_s = _seconds(lambda: fit_bradley_terry(battles))
    arena, arena_fit_s = _seconds(lambda: arena_per_battle_fit(battles))
    boot, boot_s = _seconds(lambda: bootstrap_bradley_terry(battles, rounds=ROUNDS, seed=0))
    boot2, boot2_s = _seconds(lambda: bootstrap_bradley_terry(battles, rounds=ROUNDS, seed=0, n_jobs=2))

    def arena_bootstrap(rounds):
        # Arena's get_bootstrap_result: battles.sample(frac=1, replace=True), refit each round
        return [arena_per_battle_fit(battles.sample(frac=1.0, replace=True, random_state=r)) for r in range(rounds)]

    _, arena_boot_s = _seconds(lambda: arena_bootstrap(BASELINE_ROUNDS))
    arena_boot_projected = arena_boot_s / BASELINE_ROUNDS * ROUNDS
    load_after = os.getloadavg()[0]

    # memory: a round's working set does not grow with the number of rounds (only the
    # rounds x models result does), so fewer rounds are traced
    fit_mb = _peak_mib(lambda: fit_bradley_terry(battles))
    arena_fit_mb = _peak_mib(lambda: arena_per_battle_fit(battles))
    boot_mb = _peak_mib(lambda: bootstrap_bradley_terry(battles, rounds=MEMORY_ROUNDS, seed=0))
    arena_boot_mb = _peak_mib(lambda: arena_bootstrap(1))
    max_diff = float((ours.sort_index() - arena.sort_index()).abs().max())
    width = float((boot.quantile(0.975) - boot.quantile(0.025)).median())

    rows = [
        {"what": "single fit, aggregated weighted rows (evalkit)", "rounds": 1, "seconds": fit_s, "peak_MiB": fit_mb},
        {"what": "single fit, one row per battle x2 (Arena, baseline)", "rounds": 1, "seconds": arena_fit_s, "peak_MiB": arena_fit_mb},
        {"what": f"bootstrap {ROUNDS} rounds (evalkit; memory traced on {MEMORY_ROUNDS})", "rounds": ROUNDS, "seconds": boot_s, "peak_MiB": boot_mb},
        {"what": f"bootstrap {ROUNDS} rounds, 2 processes (evalkit --jobs 2)", "rounds": ROUNDS, "seconds": boot2_s, "peak_MiB": None},
        {
            "what": f"bootstrap by resampling rows (Arena, baseline): {BASELINE_ROUNDS} rounds timed, projected to {ROUNDS}; memory of 1",
            "rounds": BASELINE_ROUNDS,
            "seconds": arena_boot_projected,
            "peak_MiB": arena_boot_mb,
        },
    ]
    return {
        "title": f"Bradley-Terry + bootstrap CIs: {N_BATTLES:,} battles, {N_MODELS} models",
        "rows": rows,
        "ratios": {
            "single fit: Arena per-battle / evalkit (time)": arena_fit_s / fit_s,
            "bootstrap: Arena per-battle (projected) / evalkit (time)": arena_boot_projected / boot_s,
            "bootstrap: Arena per-battle / evalkit (peak memory)": arena_boot_mb / boot_mb,
            # shown by the runner as text: the two computations agree, and the goal
            "max |rating difference| vs Arena per-battle fit": f"{max_diff:.2g} rating points",
            f"evalkit bootstrap under {GOAL_SECONDS:.0f} s (1 / 2 processes)": f"{'yes' if boot_s < GOAL_SECONDS else 'NO'} / {'yes' if boot2_s < GOAL_SECONDS else 'NO'}",
            "2 processes give the same intervals": "yes" if boot.equals(boot2) else "NO",
            "machine load (1-min average, before / after)": f"{load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores",
        },
        "load_average_1min": {"before": load_before, "after": load_after, "cpus": os.cpu_count()},
        "checks": {
            "max_rating_difference_vs_arena_per_battle": max_diff,
            "median_ci_width": width,
            "meets_goal": boot_s < GOAL_SECONDS,
            "meets_goal_2_processes": boot2_s < GOAL_SECONDS,
            "same_result_2_processes": bool(boot.equals(boot2)),
        },
    }
