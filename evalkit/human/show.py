"""Printing the human-rating results: ratings table, win-rate matrix, agreement, import summary."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from evalkit.human.arena import ArenaResult
from evalkit.human.ratings import ImportResult
from evalkit.output import console, print_rows

ARENA_COLUMNS = ["model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties"]


@contextlib.contextmanager
def bootstrap_progress(rounds: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for the bootstrap rounds."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("bootstrap"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console(stderr=True), transient=True,
    ) as progress:
        task = progress.add_task("bootstrap", total=rounds)
        yield lambda n: progress.advance(task, n)


def _rank(rows: list[dict[str, Any]]) -> list[int]:
    """Arena's rank: 1 + the number of models whose interval lies wholly above this one's."""
    ranks = []
    for row in rows:
        above = 0
        for other in rows:
            if other is not row and other["ci_low"] is not None and row["ci_high"] is not None and other["ci_low"] > row["ci_high"]:
                above += 1
        ranks.append(1 + above)
    return ranks


def print_arena(result: ArenaResult, fmt: str) -> None:
    if fmt in ("json", "csv"):
        print_rows(result.rows, fmt, columns=ARENA_COLUMNS)
    else:
        table = []
        for rank, row in zip(_rank(result.rows), result.rows):
            ci = (
                f"{row['ci_low']:.0f} .. {row['ci_high']:.0f}"
                if row["ci_low"] is not None and row["ci_high"] is not None
                else "-"
            )
            table.append(
                {
                    "rank": rank,
                    "model": row["model"],
                    "rating": f"{row['rating']:.1f}",
                    "95% CI": ci,
                    "battles": row["battles"],
                    "wins": row["wins"],
                    "losses": row["losses"],
                    "ties": row["ties"],
                }
            )
        print_rows(table, "table", title=f"Bradley-Terry ratings ({result.n_battles} battles)")
        models = list(result.win_rate.index)
        matrix = [
            {"model": m, **{o: ("-" if m == o or result.win_rate.loc[m, o] != result.win_rate.loc[m, o] else f"{result.win_rate.loc[m, o]:.2f}") for o in models}}
            for m in models
        ]
        print_rows(matrix, "table", columns=["model", *models], title="win rate of row over column (ties left out)")
        if result.run_id:
            print(f"stored as arena run {result.run_id}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)


def print_import(result: ImportResult) -> None:
    """The run id on stdout (for scripts); what happened on stderr, unwrapped (paths stay whole)."""
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(result.run_id)
    print(
        f"human run {result.run_id} (bundle {result.bundle}): {result.votes_read} rating(s) from "
        f"{', '.join(result.raters)} imported; {result.votes_in_run} vote(s) in the run",
        file=sys.stderr,
    )
    m = result.metrics
    if m.get("inter_rater_agreement") is not None:
        kappa = m.get("inter_rater_kappa")
        print(f"inter-rater agreement {m['inter_rater_agreement']:.3f}, kappa {'-' if kappa is None else f'{kappa:.3f}'}", file=sys.stderr)
    if m.get("accuracy") is not None:
        print(f"accuracy against the known better response: {m['accuracy']:.3f}", file=sys.stderr)


def print_agreement(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print_rows([], "json", json_value=report)
        return
    stat_cols = ["n", "agreement", "n_without_ties", "agreement_without_ties", "kappa"]
    inter = report["inter_rater"]
    rows = [{"raters": "all (kappa: Light's)", **{c: inter[c] for c in stat_cols}}]
    rows += [{"raters": f"{r['rater_1']} / {r['rater_2']}", **{c: r[c] for c in stat_cols}} for r in inter["by_rater_pair"]]
    judges = [{"judge": j["judge"], "run": j["run"], "pairs": j["pairs"], **{c: j[c] for c in stat_cols}} for j in report["judge_human"]]
    if fmt == "csv":
        flat = [{"comparison": "inter-rater", "who": r["raters"], **r} for r in rows]
        flat += [{"comparison": "judge-human", "who": f"{j['judge']} ({j['run']})", **j} for j in judges]
        flat += [{"comparison": "accuracy", "who": a["rater"], "n": a["n"], "agreement": a["accuracy"],
                  "n_without_ties": a["n_without_ties"], "agreement_without_ties": a["accuracy_without_ties"]} for a in report["accuracy"]]
        print_rows(flat, "csv", columns=["comparison", "who", *stat_cols])
        return
    print_rows(rows if inter["n"] else [], "table", columns=["raters", *stat_cols], title="inter-rater agreement")
    print_rows(judges, "table", columns=["judge", "run", "pairs", *stat_cols], title="judge-human agreement")
    if report["accuracy"]:
        print_rows(report["accuracy"], "table", title="accuracy against the known better response")
    sys.stdout.flush()
