"""The ``evalkit`` command line.

This module only maps subcommands to library functions: each ``cmd_*`` function reads the
parsed arguments, calls one library function and prints its result. Options and defaults are
declared here once; ``evalkit SUB --help`` lists them all. Each command group has its own
``_add_<group>`` function, so groups can grow without touching each other.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.output import FORMATS, print_rows

# -- shared option helpers ------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)parser shows defaults in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _common_parent() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after the subcommand name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help="results database (default: $EVALKIT_STORE or evalkit-results/evalkit.db)",
    )
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug output")
    return parent


def _add_format(parser: argparse.ArgumentParser, choices: Sequence[str] = FORMATS, default: str = "table") -> None:
    parser.add_argument("--format", choices=list(choices), default=default, help="output format")


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def open_store(args: argparse.Namespace):
    from evalkit.store import ResultsStore, default_store_path

    return ResultsStore(getattr(args, "store", None) or default_store_path())


# -- runs -----------------------------------------------------------------------------------


def _runs_rows(records) -> list[dict]:
    rows = []
    for r in records:
        headline = next((n for n in ("acc", "score_mean", "win_rate", "val_loss") if n in r.metrics), None)
        rows.append(
            {
                "id": r.id,
                "kind": r.kind,
                "model": r.model,
                "status": r.status,
                "created_at": r.created_at,
                "metric": f"{headline}={r.metrics[headline].value:.4g}" if headline and r.metrics[headline].value is not None else None,
            }
        )
    return rows


def cmd_runs_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        records = store.list_runs(kind=args.kind, model=args.model, status=args.status)
    if args.format == "json":
        print_rows([], "json", json_value=[r.as_dict() for r in records])
    else:
        print_rows(_runs_rows(records), args.format, columns=["id", "kind", "model", "status", "created_at", "metric"], title="runs")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        record = store.get_run(args.run_id)
        n_samples = store.sample_count(record.id)
    if args.format == "json":
        print_rows([], "json", json_value={**record.as_dict(), "samples": n_samples})
        return 0
    rows = [{"metric": name, "value": m.value, "stderr": m.stderr, "n": m.n} for name, m in record.metrics.items()]
    if args.format == "csv":
        print_rows(rows, "csv", columns=["metric", "value", "stderr", "n"])
        return 0
    from evalkit.output import console

    info = record.as_dict(with_metrics=False)
    out = console()
    for key in ("id", "kind", "model", "model_path", "status", "created_at", "finished_at", "evalkit_version", "git_commit"):
        out.print(f"{key:>16}: {info[key] if info[key] is not None else '-'}", markup=False)
    out.print(f"{'samples':>16}: {n_samples}", markup=False)
    out.print(f"{'config':>16}: {json.dumps(info['config'], ensure_ascii=False)}", markup=False)
    print_rows(rows, "table", columns=["metric", "value", "stderr", "n"], title="metrics")
    return 0


def cmd_runs_export(args: argparse.Namespace) -> int:
    from evalkit.runs_export import export_run

    with open_store(args) as store:
        written = export_run(store, args.run_id, args.format, args.out)
    if written is not None:
        print(f"wrote {written}", file=sys.stderr)
    return 0


def cmd_runs_import(args: argparse.Namespace) -> int:
    from evalkit.runs_export import import_run_file

    with open_store(args) as store:
        run_id = import_run_file(store, args.file)
    print(run_id)
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        deleted = store.delete_run(args.run_id)
    print(f"deleted {deleted}", file=sys.stderr)
    return 0


def _add_runs(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from evalkit.runs_export import EXPORT_FORMATS
    from evalkit.store import RUN_KINDS, STATUSES

    runs = sub.add_parser("runs", parents=[parent], help="list, show, export, import and delete stored runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = runs_sub.add_parser("list", parents=[parent], help="list runs (newest last)")
    p.add_argument("--kind", choices=RUN_KINDS, help="only runs of this kind")
    p.add_argument("--model", help="only runs of this model")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    _add_format(p)
    p.set_defaults(func=cmd_runs_list)

    p = runs_sub.add_parser("show", parents=[parent], help="one run: provenance and metrics")
    p.add_argument("run_id", metavar="ID", help="run id (or an unambiguous prefix)")
    _add_format(p)
    p.set_defaults(func=cmd_runs_show)

    p = runs_sub.add_parser("export", parents=[parent], help="write a run's metrics and samples")
    p.add_argument("run_id", metavar="ID", help="run id (or an unambiguous prefix)")
    p.add_argument(
        "--format",
        choices=list(EXPORT_FORMATS),
        default="json",
        help="json: the whole run (re-importable with `runs import`); jsonl: one sample a line; "
        "csv: samples flattened; table: metrics",
    )
    p.add_argument("--out", type=Path, help="file or folder to write (default: standard output)")
    p.set_defaults(func=cmd_runs_export)

    p = runs_sub.add_parser("import", parents=[parent], help="store a run written by `runs export --format json`")
    p.add_argument("file", type=Path, help="exported run (JSON)")
    p.set_defaults(func=cmd_runs_import)

    p = runs_sub.add_parser("delete", parents=[parent], help="delete a run with its metrics and samples")
    p.add_argument("run_id", metavar="ID", help="run id")
    p.set_defaults(func=cmd_runs_delete)


# -- import (files produced elsewhere) ------------------------------------------------------


def _add_import(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    imp = sub.add_parser("import", parents=[parent], help="store results produced elsewhere as evalkit runs")
    imp_sub = imp.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    # Each importer registers itself below (responses, alpaca-eval, lm-eval, arena).
    _add_import_sources(imp_sub, parent)


def _add_import_sources(imp_sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [judge issue] responses, alpaca-eval
    # [interop issue] lm-eval, arena
    pass


# -- finetune and generate (finetune package) -----------------------------------------------


def _add_finetune(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [finetune issue] finetune, generate
    pass


# -- mmlu -----------------------------------------------------------------------------------


def _add_mmlu(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [mmlu issue] mmlu
    pass


# -- judge ----------------------------------------------------------------------------------


def cmd_judge(args: argparse.Namespace) -> int:
    from evalkit.judge.pipeline import judge

    with open_store(args) as store:
        run_id = judge(
            store,
            model=args.model,
            responses=args.responses,
            eval_set=args.eval_set,
            judge_model=args.judge_model,
            mode=args.mode,
            reference=args.reference,
            hosts=args.host,
            concurrency=args.concurrency,
            prompt_template=args.prompt_template,
            refresh=args.refresh,
            order=args.order,
            discrete=args.discrete,
            seed=args.seed,
            temperature=args.temperature,
            num_ctx=args.num_ctx,
            timeout=args.timeout,
            retries=args.retries,
            progress=not args.no_progress,
        )
        record = store.get_run(run_id)
    rows = [{"metric": name, "value": m.value, "stderr": m.stderr, "n": m.n} for name, m in record.metrics.items()]
    if args.format == "json":
        print_rows([], "json", json_value=record.as_dict())
    else:
        print_rows(rows, args.format, columns=["metric", "value", "stderr", "n"], title=f"{record.kind} {record.id} ({record.model})")
    print(record.id, file=sys.stderr)
    return 0


def _add_judge(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "judge",
        parents=[parent],
        help="LLM-as-judge through Ollama: the book's 0-100 score or AlpacaEval-style pairwise win rates",
        description="Judge a model's responses with an Ollama model. Answers are cached in the store (a re-run "
        "sends no judge requests), every item is stored as it finishes, and re-running resumes an interrupted run.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="checkpoint (folder, hub id or book .pth): generate responses for the eval set first")
    source.add_argument("--responses", type=Path, help="JSON/JSONL file of responses (book or AlpacaEval shapes)")
    p.add_argument("--judge-model", default="llama3", help="Ollama model that judges")
    p.add_argument("--eval-set", help="book-test | alpaca-eval | FILE (default with --model: book-test)")
    p.add_argument("--mode", choices=["score", "pairwise"], help="default: pairwise for alpaca-eval, else score")
    p.add_argument("--reference", help="pairwise: reference outputs, a FILE or a generate RUN_ID (default: the eval set's)")
    p.add_argument("--host", action="append", metavar="URL", help="Ollama server; repeat to spread requests (default: $OLLAMA_HOST or http://localhost:11434)")
    p.add_argument("--concurrency", type=int, default=4, help="judge requests in flight")
    p.add_argument("--prompt-template", type=Path, metavar="FILE", help="your own judge prompt (see README)")
    p.add_argument("--refresh", action="store_true", help="ignore cached answers and finished runs; ask the judge again")
    p.add_argument("--order", choices=["swap", "random"], help="pairwise: swap = both orders averaged (default), random = one seeded order per instruction (default for alpaca-eval)")
    p.add_argument("--discrete", action="store_true", help="pairwise: discrete verdicts (1, 1.5, 2) instead of logprob-weighted ones")
    p.add_argument("--seed", type=int, default=123, help="judge seed (also seeds --order random)")
    p.add_argument("--temperature", type=float, default=0.0, help="judge temperature")
    p.add_argument("--num-ctx", type=int, help="judge context length (default: 2048 for score as in the book, 4096 for pairwise)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per judge request")
    p.add_argument("--retries", type=int, default=5, help="retries per request on connection errors, timeouts, 5xx and 429")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_format(p)
    p.set_defaults(func=cmd_judge)


# -- human rating ---------------------------------------------------------------------------


def _add_human(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [human-rating issue] pairs export|from-preference|import, arena
    pass


# -- report, leaderboard, demo --------------------------------------------------------------


def _add_report(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [report issue] report, leaderboard, demo
    pass


# -- compare --------------------------------------------------------------------------------


def _add_compare(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [compare issue] compare
    pass


# -- entry point ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from evalkit import __version__

    parent = _common_parent()
    parser = _Parser(
        prog="evalkit",
        parents=[parent],
        description="Fine-tune small instruction models and compare checkpoints: MMLU (lm-eval), "
        "LLM-as-judge (Ollama), blind human preference, HTML leaderboards. Every result lands in one store.",
    )
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_finetune, _add_mmlu, _add_judge, _add_human, _add_report, _add_compare, _add_import, _add_runs):
        add(sub, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    try:
        return int(args.func(args) or 0)
    except EvalkitError as exc:
        if verbose:
            raise
        print(f"evalkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit: interrupted; finished items are kept in the store, re-run the command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `evalkit runs list | head`: the reader went away, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
