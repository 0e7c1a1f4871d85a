"""The leaderboard: one row per model, one column per headline number, each traceable to a run.

For every column the runs are grouped into *setups* (runs whose numbers may be ranked together:
same comparability settings and items; see :mod:`evalkit.selection`, which ``compare`` uses too).
The setup covering the most models is the column's reference setup ("A"), and each model's
number comes from its newest run in that setup when it has one. When a column still mixes
setups, every cell carries its setup letter, the column header carries a warning, and the best
value is marked within each setup only, never across them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.report.collect import Collected, collect_runs
from evalkit.report.provenance import Provenance
from evalkit.selection import pick_runs
from evalkit.store import Metric, ResultsStore, RunRecord

MMLU_CATEGORIES = ("stem", "humanities", "social_sciences", "other")
# kinds whose model names make leaderboard rows (fine-tune runs describe training, not a score)
ROW_KINDS = ("mmlu", "judge-score", "judge-pairwise", "generate")
# default row order: the first of these a model has, higher first
SORT_PRIORITY = ("judge_score", "win_rate", "bt_rating", "mmlu_acc")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str
    metric: str  # metric name; "{model}" is replaced by the row's model
    help: str
    percent: bool = False  # stored as a fraction, shown as a percentage
    digits: int = 1


COLUMNS: tuple[Column, ...] = (
    Column("mmlu_acc", "MMLU", "mmlu", "acc", "MMLU accuracy over all questions run (lm-eval), %", percent=True),
    Column("mmlu_stem", "STEM", "mmlu", "acc/stem", "MMLU accuracy, STEM subjects, %", percent=True),
    Column("mmlu_humanities", "Humanities", "mmlu", "acc/humanities", "MMLU accuracy, humanities subjects, %", percent=True),
    Column("mmlu_social_sciences", "Social sci.", "mmlu", "acc/social_sciences", "MMLU accuracy, social sciences, %", percent=True),
    Column("mmlu_other", "Other", "mmlu", "acc/other", "MMLU accuracy, other subjects, %", percent=True),
    Column("judge_score", "Judge score", "judge-score", "score_mean", "LLM judge's 0-100 score of the responses, mean ± standard error"),
    Column("win_rate", "Win rate", "judge-pairwise", "win_rate", "pairwise win rate against the baseline (AlpacaEval-style), % ± standard error"),
    Column("lc_win_rate", "LC win rate", "judge-pairwise", "length_controlled_winrate", "length-controlled win rate against the baseline, %"),
    Column("bt_rating", "Human rating", "arena", "bt_rating/{model}", "Bradley-Terry rating from blind human votes (Elo scale, mean 1000) with its bootstrap confidence interval", digits=0),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}


def _normalise_category(name: str) -> str:
    name = name.lower().removeprefix("mmlu_").removeprefix("mmlu-")
    return re.sub(r"[\s\-]+", "_", name.strip())


def _metric(run: RunRecord, column: Column, model: str) -> Metric | None:
    name = column.metric.replace("{model}", model)
    if name in run.metrics:
        return run.metrics[name]
    if column.kind == "mmlu" and name.startswith("acc/"):
        wanted = name.removeprefix("acc/")
        for metric_name, metric in run.metrics.items():
            if metric_name.startswith("acc/") and _normalise_category(metric_name[4:]) == wanted:
                return metric
    return None


@dataclass
class Setup:
    letter: str
    key: str
    description: list[tuple[str, str]]
    models: list[str]


@dataclass
class KindSetups:
    """How the runs of one kind split into comparable setups."""

    kind: str
    setups: list[Setup] = field(default_factory=list)
    letter_of: dict[str, str] = field(default_factory=dict)  # comparability key -> letter

    @property
    def mixed(self) -> bool:
        return len(self.setups) > 1


@dataclass
class Leaderboard:
    rows: list[dict[str, Any]]
    columns: tuple[Column, ...]
    setups: dict[str, KindSetups]  # kind -> setups among the runs shown
    best: dict[str, set[str]]  # column key -> models holding the best value (per setup)
    collected: Collected

    @property
    def provenance(self) -> dict[str, Provenance]:
        return self.collected.provenance

    def warnings(self) -> list[str]:
        out = []
        for kind, ks in self.setups.items():
            if ks.mixed:
                labels = ", ".join(c.label for c in self.columns if c.kind == kind)
                out.append(
                    f"{labels}: numbers come from {len(ks.setups)} setups that are not comparable "
                    f"({', '.join(s.letter for s in ks.setups)}); compare values only within one setup letter."
                )
        return out


def _pick_runs(collected: Collected, kind: str) -> tuple[dict[str, RunRecord], KindSetups]:
    """model -> run for this kind (the shared selection: reference setup first), and the setups
    among the picked runs."""
    chosen = pick_runs(collected.of_kind(kind), digest_of=lambda r: collected.provenance[r.id].items_hash)
    setups = KindSetups(kind)
    for i, key in enumerate(chosen.setups):
        letter = chr(ord("A") + i) if i < 26 else f"S{i + 1}"
        sample_run = chosen.members[key][0]
        setups.setups.append(
            Setup(letter, key, collected.provenance[sample_run.id].setup_description(),
                  sorted({m for m, r in chosen.runs.items() if chosen.key_of[r.id] == key}))
        )
        setups.letter_of[key] = letter
    return chosen.runs, setups


def _empty_row(model: str) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model}
    for c in COLUMNS:
        row.update({c.key: None, f"{c.key}_stderr": None, f"{c.key}_n": None, f"{c.key}_run": None, f"{c.key}_setup": None})
    row.update({"bt_rating_ci_low": None, "bt_rating_ci_high": None})
    return row


def _sort_key(row: dict[str, Any]) -> tuple:
    for key in SORT_PRIORITY:
        if row.get(key) is not None:
            # the reference setup (A) first: a number from another setup is not ranked above it
            return (SORT_PRIORITY.index(key), row[f"{key}_setup"] or "", -row[key], row["model"])
    return (len(SORT_PRIORITY), "", 0, row["model"])


def build_leaderboard(
    store: ResultsStore, runs: Sequence[str] | None = None, *, include_unfinished: bool = False,
    collected: Collected | None = None,
) -> Leaderboard:
    collected = collected or collect_runs(store, runs, include_unfinished=include_unfinished)
    picked: dict[str, dict[str, RunRecord]] = {}
    setups: dict[str, KindSetups] = {}
    for kind in ("mmlu", "judge-score", "judge-pairwise"):
        picked[kind], setups[kind] = _pick_runs(collected, kind)
    arena_runs = collected.of_kind("arena")
    arena = max(arena_runs, key=lambda r: (r.created_at, r.id)) if arena_runs else None

    models: set[str] = {r.model for r in collected.of_kind(*ROW_KINDS) if r.model}
    if arena is not None:
        models |= {name.removeprefix("bt_rating/") for name in arena.metrics if name.startswith("bt_rating/")}
        setups["arena"] = KindSetups("arena", [Setup("A", "arena", [("run", arena.id)], sorted(models))], {"arena": "A"})

    rows = []
    for model in sorted(models):
        row = _empty_row(model)
        for c in COLUMNS:
            run = arena if c.kind == "arena" else picked[c.kind].get(model)
            if run is None:
                continue
            metric = _metric(run, c, model)
            if metric is None or metric.value is None:
                continue
            stderr = metric.stderr
            if c.key == "win_rate" and stderr is None and "standard_error" in run.metrics:
                stderr = run.metrics["standard_error"].value
            n = metric.n
            if c.key == "bt_rating":
                n = _value(run.metrics.get(f"battles/{model}"))
                row["bt_rating_ci_low"] = _value(run.metrics.get(f"bt_ci_low/{model}"))
                row["bt_rating_ci_high"] = _value(run.metrics.get(f"bt_ci_high/{model}"))
            elif n is None and c.kind == "judge-pairwise" and "n_total" in run.metrics:
                n = _value(run.metrics["n_total"])
            setup = setups.get(c.kind)
            letter = setup.letter_of.get(collected.provenance[run.id].comparability_key(), "A") if c.kind != "arena" else "A"
            row.update({
                c.key: metric.value,
                f"{c.key}_stderr": stderr,
                f"{c.key}_n": int(n) if n is not None else None,
                f"{c.key}_run": run.id,
                f"{c.key}_setup": letter,
            })
        rows.append(row)
    rows.sort(key=_sort_key)

    best: dict[str, set[str]] = {}
    runs_by_id = {r.id: r for r in collected.runs}
    tests: dict[tuple[str, str], dict[str, Any] | None] = {}  # (runner-up run, leader run) -> compare's row
    for c in COLUMNS:
        by_setup: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            if row[c.key] is not None:
                by_setup[row[f"{c.key}_setup"]].append(row)
        best[c.key] = set()
        for group in by_setup.values():
            if len(group) < 2:
                continue  # a lone number is not "best" of anything
            top = max(r[c.key] for r in group)
            leaders = [r for r in group if r[c.key] == top]
            if len(leaders) == len(group):  # when every model ties, nobody is best
                continue
            runner_up = max((r for r in group if r[c.key] != top), key=lambda r: r[c.key])
            if all(_significantly_better(store, c, leader, runner_up, runs_by_id, tests) for leader in leaders):
                best[c.key] |= {r["model"] for r in leaders}
    return Leaderboard(rows, COLUMNS, {k: v for k, v in setups.items() if v.setups}, best, collected)


SIGNIFICANCE_ALPHA = 0.05
STAR_LEGEND = (
    "★ best in its column (within one setup) and significantly better than the runner-up: p < 0.05 by the test "
    "`evalkit compare` uses (exact McNemar for MMLU, Wilcoxon for judge scores, sign test for win rates) on the "
    "items both runs scored; a two-sided z-test on the standard errors when the items are not stored; for the "
    "human rating, 95% intervals that do not overlap. No star: the lead is within the noise."
)


def _significantly_better(store: ResultsStore, column: Column, leader: dict[str, Any], runner_up: dict[str, Any],
                          runs_by_id: dict[str, RunRecord], tests: dict[tuple[str, str], dict[str, Any] | None]) -> bool:
    """Whether the leader's value beats the runner-up's by more than the noise. ``tests``: compare's
    result rows already computed for a pair of runs (the MMLU columns share one test)."""
    if column.kind == "arena":
        low, high = leader["bt_rating_ci_low"], runner_up["bt_rating_ci_high"]
        return low is not None and high is not None and low > high
    from evalkit.compare.comparison import paired_test
    from evalkit.compare.stats import B_BETTER, verdict

    run_leader, run_runner = runs_by_id.get(leader[f"{column.key}_run"]), runs_by_id.get(runner_up[f"{column.key}_run"])
    if column.key != "lc_win_rate" and run_leader is not None and run_runner is not None:
        pair = (run_runner.id, run_leader.id)
        if pair not in tests:
            tests[pair] = paired_test(store, column.kind, run_runner, run_leader)  # B = the leader
        row = tests[pair]
        if row is not None and column.kind == "mmlu" and column.metric != "acc":
            wanted = f"mmlu/{column.metric.removeprefix('acc/')}"
            row = next((r for r in row["detail"].get("categories", ()) if _normalise_category(r["mode"][5:]) == wanted[5:]), None)
        if row is not None and row.get("p_value") is not None:
            direction = row["detail"].get("test_direction")
            return verdict(row["diff"], row["p_value"], SIGNIFICANCE_ALPHA, direction) == B_BETTER
    # aggregate numbers only: the difference against its standard error
    se_a, se_b = leader[f"{column.key}_stderr"], runner_up[f"{column.key}_stderr"]
    if se_a is None or se_b is None or se_a + se_b <= 0:
        return False
    z = (leader[column.key] - runner_up[column.key]) / math.hypot(se_a, se_b)
    # two-sided normal p-value, 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt 2): no scipy.stats import (seconds)
    return math.erfc(abs(z) / math.sqrt(2)) < SIGNIFICANCE_ALPHA and z > 0


def _value(metric: Metric | None) -> float | None:
    return None if metric is None else metric.value


def leaderboard_rows(store: ResultsStore, runs: Sequence[str] | None = None, *, include_unfinished: bool = False) -> list[dict[str, Any]]:
    """One flat dict per model: for each column ``KEY`` (see :data:`COLUMNS`) the value as stored,
    ``KEY_stderr``, ``KEY_n``, ``KEY_run`` (run id) and ``KEY_setup`` (comparability group letter);
    ``bt_rating_ci_low``/``_high``. Missing numbers are ``None``."""
    return build_leaderboard(store, runs, include_unfinished=include_unfinished).rows


# -- text forms -----------------------------------------------------------------------------


def format_cell(row: dict[str, Any], column: Column, *, with_n: bool = True) -> str:
    """'25.3 ± 1.2 (n=110)'; '-' when missing."""
    value = row.get(column.key)
    if value is None:
        return "-"
    scale = 100.0 if column.percent else 1.0
    text = f"{value * scale:.{column.digits}f}"
    stderr = row.get(f"{column.key}_stderr")
    if column.key == "bt_rating":
        lo, hi = row.get("bt_rating_ci_low"), row.get("bt_rating_ci_high")
        if lo is not None and hi is not None:
            text += f" [{lo:.0f}, {hi:.0f}]"
    elif stderr is not None:
        text += f" ± {stderr * scale:.{column.digits}f}"
    n = row.get(f"{column.key}_n")
    if with_n and n is not None:
        text += f" (n={n})"
    return text


def text_table(board: Leaderboard) -> tuple[list[str], list[dict[str, str]]]:
    """Columns that have any value, as display strings (terminal and Markdown)."""
    shown = [c for c in board.columns if any(r[c.key] is not None for r in board.rows)]
    headers = ["model"] + [c.label + (" %" if c.percent else "") for c in shown]
    out = []
    for row in board.rows:
        cells = {"model": row["model"]}
        for c, header in zip(shown, headers[1:]):
            text = format_cell(row, c)
            if text != "-" and board.setups.get(c.kind) and board.setups[c.kind].mixed:
                text += f" [setup {row[f'{c.key}_setup']}]"
            if row["model"] in board.best.get(c.key, ()):
                text = "★ " + text
            cells[header] = text
        out.append(cells)
    return headers, out


def to_markdown(board: Leaderboard) -> str:
    headers, rows = text_table(board)

    def esc(text: str) -> str:  # model names are untrusted: no table breaking, no HTML
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(esc(r.get(h, "-")) for h in headers) + " |" for r in rows]
    notes = board.warnings()
    if any(board.best.values()):
        notes.append(STAR_LEGEND)
    return "\n".join(lines) + "\n" + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
