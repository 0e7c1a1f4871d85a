"""The ``evalkit`` command line.

This module only maps subcommands to library functions: each ``cmd_*`` function reads the
parsed arguments, calls one library function and prints its result. Options and defaults are
declared here once; ``evalkit SUB --help`` lists them all. Each command group has its own
``_add_<group>`` function, so groups can grow without touching each other.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from evalkit.cli_types import (
    device, fraction, int_range, jobs, nonneg_float, nonneg_int, output_file, output_folder, output_path, positive_float, positive_int,
    probability, seed, url,
)
from evalkit.errors import EvalkitError
from evalkit.output import FORMATS, print_rows

# -- shared option helpers ------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        # identity, not ==: a default of 0 (== False) is shown; None and store_true's False are not
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            text = action.help
        else:
            text = super()._get_help_string(action)
        shown_range = getattr(action.type, "shown_range", None)  # evalkit.cli_types converters
        if shown_range and text != argparse.SUPPRESS:
            text = f"{text or ''} [{shown_range}]".strip()
        return text


class _Parser(argparse.ArgumentParser):
    """Every (sub)parser shows defaults and accepted ranges in --help, and reports a bad option
    in one line (argparse's usage block is one `--help` away)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


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


def open_store(args: argparse.Namespace, *, read_only: bool = False, must_exist: bool | None = None):
    """The command's results store. ``read_only``: never created or changed. A command that needs
    results already stored (``must_exist``, every read-only one) never creates a store: where
    none exists it stops and names the stores nearby (``evalkit.store_location``)."""
    from evalkit.store import ResultsStore, default_store_path

    path = getattr(args, "store", None) or default_store_path()
    if read_only if must_exist is None else must_exist:
        from evalkit.store_location import require_store

        require_store(path)
    return ResultsStore(path, read_only=read_only)


def _finished_ids(store, kind: str) -> set[str]:
    return {r.id for r in store.list_runs(kind=kind, status="done")}


def _say_if_reused(run_id: str | None, before: set[str], what: str) -> None:
    """Commands reuse a finished run with the same inputs instead of storing a duplicate; say so."""
    if run_id in before:
        print(f"reused finished run {run_id}: {what} were stored before with the same inputs; nothing new was added",
              file=sys.stderr)


# -- runs -----------------------------------------------------------------------------------


def _runs_rows(records) -> list[dict]:
    rows = []
    for r in records:
        headline = next((n for n in ("acc", "score_mean", "win_rate", "val_loss", "n_votes", "n") if n in r.metrics), None)
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
    with open_store(args, read_only=True) as store:
        records = store.list_runs(kind=args.kind, model=args.model, status=args.status)
    if args.format == "json":
        print_rows([], "json", json_value=[r.as_dict() for r in records])
    else:
        rows = _runs_rows(records)
        columns = ["id", "kind", "model", "status", "created_at", "metric"]
        if args.format == "table":  # minutes are enough on a screen; csv keeps the full timestamp
            rows = [{**row, "created_at": row["created_at"][:16].replace("T", " ")} for row in rows]
            from evalkit.output import console

            if console().width < 120:  # a run id begins with its kind and creation time: room for the rest
                columns = ["id", "model", "status", "metric"]
        print_rows(rows, args.format, columns=columns, title="runs")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    with open_store(args, read_only=True) as store:
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

    with open_store(args, read_only=True) as store:
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
    with open_store(args, must_exist=True) as store:
        deleted = store.delete_run(args.run_id, force=args.force)
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
    p.add_argument("--out", type=output_path, help="file or folder to write (default: standard output)")
    p.set_defaults(func=cmd_runs_export)

    p = runs_sub.add_parser("import", parents=[parent], help="store a run written by `runs export --format json`")
    p.add_argument("file", type=Path, help="exported run (JSON)")
    p.set_defaults(func=cmd_runs_import)

    p = runs_sub.add_parser("delete", parents=[parent], help="delete a run with its metrics and samples")
    p.add_argument("run_id", metavar="ID", help="run id")
    p.add_argument("--force", action="store_true", help="delete even a run another live process is still writing")
    p.set_defaults(func=cmd_runs_delete)


# -- import (files produced elsewhere) ------------------------------------------------------


def _add_import(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    imp = sub.add_parser("import", parents=[parent], help="store results produced elsewhere as evalkit runs")
    imp_sub = imp.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    # Each importer registers itself below (responses, alpaca-eval, lm-eval, arena).
    _add_import_sources(imp_sub, parent)


def cmd_import_responses(args: argparse.Namespace) -> int:
    from evalkit.interop.responses import import_responses

    with open_store(args) as store:
        before = _finished_ids(store, "generate")
        run_id = import_responses(store, args.file, name=args.name)
        field = store.get_run(run_id, with_metrics=False).config["response_field"]
    print(f"responses read from field {field!r}", file=sys.stderr)
    _say_if_reused(run_id, before, "these responses")
    print(run_id)
    return 0


def cmd_import_alpaca_eval(args: argparse.Namespace) -> int:
    from evalkit.interop.alpaca_eval import import_annotations

    with open_store(args) as store:
        before = _finished_ids(store, "judge-pairwise")
        run_id = import_annotations(store, args.file, name=args.name)
    _say_if_reused(run_id, before, "these annotations")
    print(run_id)
    return 0


def cmd_import_lm_eval(args: argparse.Namespace) -> int:
    from evalkit.interop.lm_eval_format import import_results

    with open_store(args) as store:
        before = _finished_ids(store, "mmlu")
        run_id = import_results(store, args.file, name=args.name)
    _say_if_reused(run_id, before, "these results")
    print(run_id)
    return 0


def cmd_import_arena(args: argparse.Namespace) -> int:
    from evalkit.interop.arena import import_battles

    with open_store(args) as store:
        before = _finished_ids(store, "human")
        run_id = import_battles(store, args.file, name=args.name)
    _say_if_reused(run_id, before, "these battles")
    print(run_id)
    return 0


def _add_import_sources(imp_sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    # [judge issue] responses, alpaca-eval (owned by the interop helper)
    p = imp_sub.add_parser(
        "responses",
        parents=[parent],
        help="a JSON/JSONL file of model responses (book's model_response, AlpacaEval's output+generator) as a generate run",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="responses file (JSON list or JSON Lines)")
    p.add_argument("--name", help="model name (default: the file's generator field; required when it has none)")
    p.set_defaults(func=cmd_import_responses)

    p = imp_sub.add_parser(
        "alpaca-eval", parents=[parent], help="an AlpacaEval annotations.json as a judge-pairwise run (metrics recomputed)"
    )
    p.add_argument("file", type=Path, metavar="ANNOTATIONS.json", help="AlpacaEval annotations file")
    p.add_argument("--name", help="model name (default: the file's generator_2)")
    p.set_defaults(func=cmd_import_alpaca_eval)
    # [interop issue] lm-eval, arena
    p = imp_sub.add_parser("lm-eval", parents=[parent], help="an lm-eval MMLU results JSON as an mmlu run (per subject and category)")
    p.add_argument("file", type=Path, metavar="RESULTS.json", help="results file written by `lm_eval --output_path`")
    p.add_argument("--name", help="model name (default: the file's model_name)")
    p.set_defaults(func=cmd_import_lm_eval)

    p = imp_sub.add_parser("arena", parents=[parent], help="Chatbot Arena battles as a human run (ranked by `evalkit arena`)")
    p.add_argument("file", type=Path, metavar="BATTLES", help="battles file: .jsonl, .json (a list) or .csv")
    p.add_argument("--name", help="label of the run (default: the models, 'a vs b vs ...')")
    p.set_defaults(func=cmd_import_arena)


# -- finetune and generate (finetune package) -----------------------------------------------


def cmd_finetune(args: argparse.Namespace) -> int:
    from finetune import train

    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "store", "verbose", "no_progress", "format", "method", "ref_model", "beta")}
    if args.method == "dpo":
        from finetune.dpo import train_dpo as train

        options.update(ref_model=args.ref_model, beta=args.beta)
    elif args.ref_model is not None:
        raise EvalkitError("--ref-model is for --method dpo")
    with open_store(args) as store:
        before = _finished_ids(store, "finetune")
        result = train(**options, store=store, progress=not args.no_progress)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, one summary
        return 0
    _say_if_reused(result.run_id, before, "this fine-tune's weights and losses")
    summary = result.summary()
    if args.format == "json":
        print(json.dumps(summary))
        return 0
    loss = " ".join(f"{name} {value:.3f}" for name, value in (("train loss", result.train_loss), ("val loss", result.val_loss))
                    if value is not None)
    speed = f", {result.tokens_per_second:,.0f} tokens/s" if result.tokens_per_second else ""
    print(f"fine-tuned model: {result.out_dir} (run {result.run_id})")
    print(f"  {result.steps} steps, {result.tokens_seen:,} tokens seen{speed}; {loss}; {result.precision}")
    if summary.get("trainable_fraction") is not None and summary["trainable_fraction"] < 1:
        print(f"  LoRA: {summary['trainable_params']:,} trainable parameters ({summary['trainable_fraction']:.2%}), "
              f"optimizer state {summary['optimizer_state_mib']:.1f} MiB")
    print(f"next: evalkit generate --model {result.out_dir}   (responses to the test split)")
    print(f"      evalkit mmlu --model {result.out_dir} --limit 20   then `evalkit leaderboard`")
    return 0


def _add_finetune_methods(p: argparse.ArgumentParser) -> None:
    """LoRA (finetune.lora) and preference tuning (finetune.dpo) on top of the SFT options."""
    from finetune.lora import TARGETS

    group = p.add_argument_group("LoRA (only low-rank adapters train; the saved model is merged, adapters in OUT/adapter)")
    group.add_argument("--lora-rank", type=positive_int, metavar="R", help="train LoRA adapters of rank R instead of all weights")
    group.add_argument("--lora-alpha", type=positive_float, metavar="A", help="LoRA scaling alpha (update scaled by A/R; default: R; the book's alpha=16 at rank 16 is 256)")
    group.add_argument("--lora-targets", type=_csv_list, metavar="M,N", help=f"GPT-2 modules to adapt (default: {','.join(TARGETS)})")
    group = p.add_argument_group("preference tuning (DPO)")
    group.add_argument("--method", choices=["sft", "dpo"], default="sft", help="sft: instruction fine-tuning; dpo: Direct Preference Optimization on chosen/rejected records")
    group.add_argument("--ref-model", metavar="DIR", help="dpo: the frozen reference model (default: --model)")
    group.add_argument("--beta", type=positive_float, default=0.1, help="dpo: strength of the pull towards the reference model (the book's DPO: --beta 0.1 --lr 5e-6 --weight-decay 0.01 --epochs 1)")


def cmd_generate(args: argparse.Namespace) -> int:
    from evalkit.generate_run import responses_for_split

    with open_store(args) as store:
        before = _finished_ids(store, "generate")
        run_id, records, out = responses_for_split(
            args.model, store=store, out=args.out, data=args.data, split=args.split, style=args.style,
            eval_set=args.eval_set, skip_invalid=args.skip_invalid, max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size, temperature=args.temperature, top_k=args.top_k, seed=args.seed,
            device=args.device, precision=args.precision, model_name=args.name, progress=not args.no_progress,
        )
    _say_if_reused(run_id, before, "these responses")
    print(run_id)
    print(f"{len(records)} responses" + (f" in {out}" if out else "") + f" (run {run_id})", file=sys.stderr)
    print(f"next: evalkit runs show {run_id}; `evalkit pairs export --runs {run_id},OTHER_RUN --out rating` "
          "to have people compare it with another model", file=sys.stderr)
    return 0


def _add_finetune(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from finetune.model import MODEL_SIZES

    p = sub.add_parser("finetune", parents=[parent], help="instruction fine-tune GPT-2 (the book's chapter 7, crash-safe)",
                       description="Fine-tune GPT-2 on instruction data. Also runs under `torchrun --nproc_per_node N`.")
    p.add_argument("--model", default="gpt2-medium", help="hub id, checkpoint directory or book .pth (with --init random: a size name)")
    p.add_argument("--init", choices=["pretrained", "random"], default="pretrained", help="start from the model's weights or a random init")
    p.add_argument("--model-size", choices=list(MODEL_SIZES), help="architecture for --init random (default: --model)")
    p.add_argument("--data", help="JSON/JSONL file or URL of instruction records (default: the book's instruction data)")
    p.add_argument("--style", default="alpaca", help="prompt style: alpaca, phi3 or a JSON template file")
    p.add_argument("--epochs", type=positive_int, default=2, help="passes over the training split (the book's)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="records per batch (split across processes under torchrun)")
    p.add_argument("--lr", type=positive_float, default=5e-5, help="peak learning rate (the book's; a random init wants ~1e-3)")
    p.add_argument("--weight-decay", type=nonneg_float, default=0.1, help="AdamW weight decay (the book's)")
    p.add_argument("--max-length", type=int_range(2), default=1024, help="truncate batches to this many tokens (at most the model's context)")
    p.add_argument("--mask-instruction", action="store_true", help="no loss on the prompt's tokens (the book's exercise 7.2)")
    p.add_argument("--bucket", action="store_true", help="batch records of similar length (less padding)")
    p.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--seed", type=seed, default=123, help="seed of the weights' init, dropout and batch order")
    p.add_argument("--shuffle-seed", type=seed, help="shuffle records before the 85/10/5 split (default: file order)")
    p.add_argument("--skip-invalid", action="store_true", help="skip invalid records with a warning instead of stopping")
    p.add_argument("--limit", type=positive_int, help="use only the first N records")
    p.add_argument("--dropout", type=fraction, default=0.0, help="dropout while fine-tuning (the book uses 0.0)")
    p.add_argument("--eval-every", type=positive_int, default=5, help="evaluate train/val loss every N steps")
    p.add_argument("--eval-batches", type=positive_int, default=5, help="batches per loss evaluation")
    p.add_argument("--save-every", type=positive_int, default=50, help="write a resumable checkpoint every N steps")
    p.add_argument("--keep-checkpoints", type=positive_int, default=1, help="resumable checkpoints to keep")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--stop-after-steps", type=positive_int, help="checkpoint and exit after N steps (time-sliced jobs)")
    p.add_argument("--max-steps", type=positive_int, help="stop training after N optimizer steps in total")
    p.add_argument("--warmup-steps", type=nonneg_int, default=0, help="steps of linear warm-up to --lr")
    p.add_argument("--schedule", choices=["constant", "linear", "cosine"], default="constant", help="learning-rate schedule")
    p.add_argument("--tokenizer", help="GPT-2 tokenizer directory (default: the model's, else tiktoken gpt2)")
    p.add_argument("--name", help="model name in the results store (default: the --out folder name)")
    p.add_argument("--device", type=device, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: bf16 autocast (fp32 master weights) on a GPU or CPU with native bf16, else fp32; fp16: GPU only")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (pays on a GPU; on a CPU compiling costs a minute and bucketed batches recompile)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", type=output_folder, required=True, help="output directory (a Hugging Face checkpoint)")
    _add_finetune_methods(p)
    _add_format(p, choices=("table", "json"))
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("generate", parents=[parent], help="generate responses (batched, KV cache) into the store and a JSONL file")
    p.add_argument("--model", required=True, help="checkpoint directory, hub id or book .pth")
    p.add_argument("--data", help="instruction records (default: the data the model was fine-tuned on, else the book's)")
    p.add_argument("--split", choices=["test", "val", "train", "all"], default="test",
                   help="records to answer: a split saved by `evalkit finetune`, else the book's 85/10/5 split")
    p.add_argument("--style", help="prompt style (default: the one the model was fine-tuned with, else alpaca)")
    p.add_argument("--out", type=output_file, help="JSONL file, one line per record, written as responses arrive")
    p.add_argument("--max-new-tokens", type=positive_int, default=256, help="tokens to generate per response (below the model's context length)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="records per generation batch")
    p.add_argument("--temperature", type=nonneg_float, default=0.0, help="0 = greedy (the book's)")
    p.add_argument("--top-k", type=positive_int, help="sample among the k most likely tokens (default: all)")
    p.add_argument("--seed", type=seed, default=123, help="sampling seed (per record, batch-independent)")
    p.add_argument("--eval-set", help="name of the record set in the store (default: DATA-stem/SPLIT)")
    p.add_argument("--skip-invalid", action="store_true")
    p.add_argument("--name", help="model name in the store (default: the fine-tune's name or folder)")
    p.add_argument("--device", type=device, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: weights in bf16, faster where the hardware has it; recorded in the run's config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)


# -- mmlu -----------------------------------------------------------------------------------


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    return value


def cmd_mmlu(args: argparse.Namespace) -> int:
    from evalkit.mmlu import run_mmlu

    with open_store(args) as store:
        result = run_mmlu(
            store,
            args.model,
            subjects=args.subjects,
            categories=args.categories,
            num_fewshot=args.num_fewshot,
            limit=args.limit,
            batch_size=args.batch_size,
            device=args.device,
            data=args.data,
            backend=args.backend,
            model_args=args.model_args,
            cache=args.cache,
            precision=args.precision,
        )
    title = f"MMLU: {result.model} (run {result.run_id})"
    json_value = {"run_id": result.run_id, "model": result.model, "lm_eval_results": result.results_file, "rows": result.rows}
    print_rows(result.rows, args.format, columns=["level", "name", "category", "acc", "stderr", "n"], title=title, json_value=json_value)
    if result.reused:
        print(f"reused finished run {result.run_id} (same model weights, data and settings): nothing recomputed; "
              "`evalkit runs delete` it to measure again", file=sys.stderr)
    else:
        print(f"stored run {result.run_id}; lm-eval's results JSON: {result.results_file}", file=sys.stderr)
    return 0


MMLU_BACKENDS = ("hf", "vllm")  # = evalkit.mmlu.BACKENDS (a test checks), so `evalkit --help` need not import the mmlu package


def _add_mmlu(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "mmlu",
        parents=[parent],
        help="MMLU accuracy through lm-evaluation-harness (overall, per category, per subject)",
        description="Evaluate a model on MMLU with lm-evaluation-harness as a library: lm-eval's tasks, "
        "scoring and aggregation, stored as one `mmlu` run. lm-eval's results JSON and sample files are "
        "written beside the run (evalkit-results/runs/RUN_ID/). Interrupted runs resume with --cache: "
        "lm-eval's request cache keeps every answered request, so re-running the same command with the "
        "same --cache skips them.",
    )
    p.add_argument("--model", required=True, metavar="DIR|hub-id|book.pth", help="Hugging Face model folder, hub id, or a checkpoint saved by the book's code (.pth, converted once)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--subjects", type=_csv_list, metavar="A,B", help="only these subjects (e.g. abstract_algebra,anatomy; default: all 57)")
    which.add_argument("--categories", type=_csv_list, metavar="C,D", help="only the subjects of these categories: stem, humanities, social_sciences, other")
    p.add_argument("--num-fewshot", type=int_range(0, 5), default=0, metavar="N", help="few-shot examples per question (from the dev split)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N questions per subject (for quick checks; default: all)")
    p.add_argument("--batch-size", type=_batch_size, default=1, metavar="auto|N", help="lm-eval's batch size; auto: the largest that fits (lm-eval probes with long inputs: meant for GPUs)")
    p.add_argument("--device", type=device, metavar="cpu|cuda", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--data", type=Path, metavar="DIR", help="local copy laid out like cais/mmlu: test.jsonl (+ dev.jsonl for few-shot); default: lm-eval's own mmlu tasks (hub data set cais/mmlu)")
    p.add_argument("--backend", choices=list(MMLU_BACKENDS), default="hf", help="lm-eval model type (vllm only when installed)")
    p.add_argument("--model-args", metavar="k=v,...", help="extra lm-eval model arguments, e.g. dtype=float32")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: weights in bf16 (lm-eval's dtype=bfloat16), faster where the hardware has it; recorded in the run's config")
    p.add_argument("--cache", type=output_folder, metavar="DIR", help="lm-eval's request cache: keeps every answered request, so an interrupted run started again with the same --cache resumes where it stopped (default: no cache; an interrupted run starts over)")
    _add_format(p)
    p.set_defaults(func=cmd_mmlu)


# -- judge ----------------------------------------------------------------------------------


def cmd_judge(args: argparse.Namespace) -> int:
    from evalkit.judge.pipeline import judge

    if args.list_templates:
        from evalkit.judge.templates import named_templates

        for name, summary in named_templates():
            print(f"{name}\t{summary}")
        return 0
    if args.model is None and args.responses is None:
        raise EvalkitError("give --model (generate responses) or --responses FILE|RUN_ID")
    with open_store(args) as store:
        run_id = judge(
            store,
            model=args.model,
            responses=args.responses,
            name=args.name,
            eval_set=args.eval_set,
            judge_model=args.judge_model,
            mode=args.mode,
            reference=args.reference,
            backend=args.backend,
            hosts=args.host,
            api_key_env=args.api_key_env,
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


def _judge_epilog() -> str:
    from evalkit.judge.scores import RULES

    return (
        f"Score parsing: {RULES} "
        "Options sent to the judge server: evalkit's templates send seed (--seed, 123), temperature "
        "(--temperature, 0), num_ctx (--num-ctx; Ollama only) and num_predict (128 for a JSON or text answer, "
        "1 for a logprob-weighted verdict), a JSON schema as `format` (Ollama) or `response_format` (openai), and "
        "logprobs with top_logprobs 5 for weighted verdicts. `book` sends exactly the book's options (seed 123, "
        "temperature 0, num_ctx 2048; no num_predict, no format), streamed. `alpaca-eval:ANNOTATOR` sends the "
        "annotator's completions_kwargs (temperature, max_tokens as num_predict, top_p, logprobs, top_logprobs) "
        "plus seed and num_ctx. With --backend openai, num_predict goes out as max_tokens and num_ctx is not sent."
    )


def _add_judge(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "judge",
        parents=[parent],
        help="LLM-as-judge through Ollama or an OpenAI-compatible server: 0-100 scores or AlpacaEval-style pairwise win rates",
        description="Judge a model's responses with a model served by Ollama or an OpenAI-compatible server (vLLM, "
        "llama.cpp, LM Studio, hosted). The judge is checked before any response is generated. Answers are cached "
        "in the store (a re-run sends no judge requests), every item is stored as it finishes, and re-running "
        "resumes an interrupted run.",
        epilog=_judge_epilog(),
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help="checkpoint (folder, hub id or book .pth): generate responses for the eval set first")
    source.add_argument("--responses", metavar="FILE|RUN_ID", help="JSON/JSONL file of responses (book or AlpacaEval shapes), or a generate run id")
    source.add_argument("--list-templates", action="store_true", help="list the named prompt templates, one a line, and exit")
    p.add_argument("--name", help="the judged model's name (default: the checkpoint's, or the file's generator or name)")
    p.add_argument("--judge-model", default="llama3", help="model that judges: an Ollama tag, or the model id an OpenAI-compatible server lists at /v1/models")
    p.add_argument("--backend", choices=["ollama", "openai"], default="ollama", help="ollama = Ollama's API (official ollama client); openai = any OpenAI-compatible server: vLLM, llama.cpp llama-server, LM Studio, Ollama's /v1, a hosted API (official openai client)")
    p.add_argument("--api-key-env", metavar="NAME", help="--backend openai: environment variable holding the API key (default OPENAI_API_KEY); the key is never stored, cached or printed")
    p.add_argument("--eval-set", help="book-test | alpaca-eval | FILE (default with --model: book-test)")
    p.add_argument("--mode", choices=["score", "pairwise"], help="default: pairwise for alpaca-eval, else score")
    p.add_argument("--reference", help="pairwise: reference outputs, a FILE or a generate RUN_ID (default: the eval set's)")
    p.add_argument("--host", action="append", type=url, metavar="URL", help="judge server; repeat to spread requests over replicas. ollama: default $OLLAMA_HOST or http://localhost:11434; openai: the base URL ending in /v1, default $OPENAI_BASE_URL or http://localhost:8000/v1")
    p.add_argument("--concurrency", type=positive_int, default=4, help="judge requests in flight")
    p.add_argument("--prompt-template", metavar="NAME|FILE", help="evalkit (default), book (the book's chapter 7 judge), alpaca-eval:ANNOTATOR (read from the installed alpaca_eval), or your own file (see README and --list-templates)")
    p.add_argument("--refresh", action="store_true", help="ignore cached answers and finished runs; ask the judge again")
    p.add_argument("--order", choices=["swap", "random"], help="pairwise: swap = both orders averaged (default), random = one order per instruction by AlpacaEval's own rule, seeded by --seed (default for alpaca-eval)")
    p.add_argument("--discrete", action="store_true", help="pairwise: discrete verdicts (1, 1.5, 2) instead of logprob-weighted ones")
    p.add_argument("--seed", type=seed, help="judge seed, also seeds --order random (default: 123, or the template's)")
    p.add_argument("--temperature", type=nonneg_float, help="judge temperature (default: 0, or the template's)")
    p.add_argument("--num-ctx", type=positive_int, help="judge context length (default: 2048 for score as in the book, 4096 for pairwise)")
    p.add_argument("--timeout", type=positive_float, default=300.0, help="seconds per judge request")
    p.add_argument("--retries", type=nonneg_int, default=5, help="retries per request on connection errors, timeouts, 5xx and 429")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_format(p)
    p.set_defaults(func=cmd_judge)


# -- human rating ---------------------------------------------------------------------------


def _count_or_all(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all', got {text!r}") from None


def cmd_pairs_export(args: argparse.Namespace) -> int:
    from evalkit.human.bundle import export_pairs

    if not args.runs and not args.models:
        raise EvalkitError("pass --runs RUN_A,RUN_B or --models NAME,NAME")
    with open_store(args, read_only=True) as store:
        bundle = export_pairs(store, runs=args.runs, models=args.models, eval_set=args.eval_set, n=args.n,
                              baseline=args.baseline, seed=args.seed, title=args.title)
    paths = bundle.write(args.out, force=args.force)
    print(f"bundle {bundle.bundle_id}: {len(bundle.pairs)} pairs of {', '.join(bundle.models)}")
    print(f"open {paths['page']} in a browser (or send it to raters); keep {paths['key']} to yourself")
    return 0


def cmd_pairs_from_preference(args: argparse.Namespace) -> int:
    from evalkit.human.bundle import pairs_from_preference

    bundle = pairs_from_preference(args.file, n=args.n, seed=args.seed, chosen_name=args.chosen_name,
                                   rejected_name=args.rejected_name, title=args.title)
    paths = bundle.write(args.out or Path(f"pairs-{args.file.stem}"), force=args.force)
    print(f"bundle {bundle.bundle_id}: {len(bundle.pairs)} pairs ({args.chosen_name} vs {args.rejected_name}; answers in the key)")
    print(f"open {paths['page']} in a browser (or send it to raters); keep {paths['key']} to yourself")
    return 0


def cmd_pairs_import(args: argparse.Namespace) -> int:
    from evalkit.human.ratings import import_ratings
    from evalkit.human.show import print_import

    with open_store(args) as store:
        result = import_ratings(store, args.key, args.ratings)
    print_import(result)
    return 0


def cmd_pairs_agreement(args: argparse.Namespace) -> int:
    from evalkit.human.agreement import agreement_report
    from evalkit.human.show import print_agreement

    with open_store(args, read_only=True) as store:
        report = agreement_report(store, human_runs=args.human, judge_runs=args.judge)
    print_agreement(report, args.format)
    return 0


def cmd_arena(args: argparse.Namespace) -> int:
    from evalkit.human.arena import run_arena
    from evalkit.human.show import bootstrap_progress, print_arena

    with open_store(args, must_exist=True) as store, bootstrap_progress(args.bootstrap) as progress:
        result = run_arena(store, human_runs=args.runs, include_judge=args.include_judge or (),
                           rounds=args.bootstrap, seed=args.seed, progress=progress, n_jobs=args.jobs)
    print_arena(result, args.format)
    return 0


def _add_human(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    pairs = sub.add_parser("pairs", parents=[parent], help="blind pairwise rating: bundles for the browser, ratings import")
    pairs_sub = pairs.add_subparsers(dest="pairs_command", metavar="ACTION", required=True)

    p = pairs_sub.add_parser("export", parents=[parent], help="a rating bundle (pairs.jsonl, key.json, rate.html) from generate runs")
    p.add_argument("--runs", type=_csv_list, help="generate run ids, comma-separated")
    p.add_argument("--models", type=_csv_list, help="model names (their newest finished generate run), comma-separated")
    p.add_argument("--eval-set", help="with --models: only generate runs on this eval set")
    p.add_argument("--n", type=_count_or_all, default=100, help="items to sample (every model pair per item), or 'all'")
    p.add_argument("--baseline", help="run id or model name: pair every model with it instead of all pairs")
    p.add_argument("--seed", type=seed, default=0, help="seed for sampling items and shuffling sides and order (default: 0)")
    p.add_argument("--title", help="heading shown to raters")
    p.add_argument("--force", action="store_true", help="replace a different bundle already in --out")
    p.add_argument("--out", type=output_folder, required=True, help="folder to write the bundle to")
    p.set_defaults(func=cmd_pairs_export)

    p = pairs_sub.add_parser("from-preference", parents=[parent], help="a rating bundle from records with chosen/rejected responses")
    p.add_argument("file", type=Path, help="JSON list or JSON lines with instruction, input, chosen, rejected")
    p.add_argument("--n", type=_count_or_all, default=100, help="records to sample, or 'all'")
    p.add_argument("--seed", type=seed, default=0, help="seed for sampling and shuffling sides and order (default: 0)")
    p.add_argument("--chosen-name", default="chosen", help="model name for the chosen responses")
    p.add_argument("--rejected-name", default="rejected", help="model name for the rejected responses")
    p.add_argument("--title", help="heading shown to raters")
    p.add_argument("--force", action="store_true", help="replace a different bundle already in --out")
    p.add_argument("--out", type=output_folder, help="folder to write the bundle to (default: pairs-<file name>)")
    p.set_defaults(func=cmd_pairs_from_preference)

    p = pairs_sub.add_parser("import", parents=[parent], help="store exported ratings in the bundle's human run")
    p.add_argument("key", type=Path, help="the bundle's key.json")
    p.add_argument("ratings", type=Path, nargs="+", help="ratings-<rater>.jsonl files exported by rate.html")
    p.set_defaults(func=cmd_pairs_import)

    p = pairs_sub.add_parser("agreement", parents=[parent], help="inter-rater and judge-human agreement, accuracy on known answers")
    p.add_argument("--human", type=_csv_list, help="human run ids (default: all)")
    p.add_argument("--judge", type=_csv_list, help="judge-pairwise run ids (default: all that share pairs)")
    _add_format(p)
    p.set_defaults(func=cmd_pairs_agreement)

    p = sub.add_parser("arena", parents=[parent], help="Bradley-Terry ratings with bootstrap intervals (Chatbot Arena's method)")
    p.add_argument("--runs", type=_csv_list, help="human run ids (default: all finished human runs)")
    p.add_argument("--include-judge", type=_csv_list, metavar="RUN,...", help="judge-pairwise runs whose verdicts count as battles")
    p.add_argument("--bootstrap", type=nonneg_int, default=1000, help="bootstrap rounds for the 95%% intervals (0: none)")
    p.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--jobs", type=jobs, default=1, help="processes for the bootstrap (-1: all cores); same result for any value")
    _add_format(p)
    p.set_defaults(func=cmd_arena)


# -- report, leaderboard, demo --------------------------------------------------------------


def _report_runs(args: argparse.Namespace) -> tuple[list[str] | None, bool]:
    """(run ids or None for every finished run, include unfinished runs)."""
    return (_csv_list(args.runs) if args.runs else None), bool(args.all)


def cmd_report(args: argparse.Namespace) -> int:
    from evalkit.report import render_report

    runs, include_unfinished = _report_runs(args)
    with open_store(args, read_only=True) as store:
        out = render_report(store, args.out, runs=runs, title=args.title, include_unfinished=include_unfinished)
    print(f"wrote {out}: open {Path(out).resolve().as_uri()} in a browser")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from evalkit.report.leaderboard_output import write_leaderboard

    runs, include_unfinished = _report_runs(args)
    with open_store(args, read_only=True) as store:
        written = write_leaderboard(store, args.format, args.out, runs=runs, include_unfinished=include_unfinished)
    if written is not None:
        print(f"wrote {written}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from evalkit.demo import DemoOptions, run_demo

    options = DemoOptions(
        out=args.out, offline=args.offline, data=args.data, mmlu_data=args.mmlu_data, tokenizer=args.tokenizer,
        base_model=args.base_model, epochs=args.epochs, max_records=args.max_records, n_test=args.n_test,
        mmlu_subjects=_csv_list(args.mmlu_subjects),
        mmlu_limit=args.mmlu_limit, judge_model=args.judge_model, store=getattr(args, "store", None),
    )
    run_demo(options)
    return 0


def _add_report(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    def runs_options(p: argparse.ArgumentParser) -> None:
        which = p.add_mutually_exclusive_group()
        which.add_argument("--runs", metavar="ID,...", help="only these runs (ids or unambiguous prefixes); default: every finished run")
        which.add_argument("--all", action="store_true", help="every run, including unfinished ones (marked as such)")

    p = sub.add_parser("report", parents=[parent], help="render a self-contained HTML leaderboard with provenance, charts and items")
    runs_options(p)
    p.add_argument("--title", help="page title (default: evalkit leaderboard)")
    p.add_argument("--out", type=output_file, default=Path("evalkit-report.html"), help="HTML file to write (in the working directory unless a path is given)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("leaderboard", parents=[parent], help="the leaderboard in the terminal or as JSON, CSV or Markdown")
    runs_options(p)
    _add_format(p, choices=("table", "json", "csv", "md"))
    p.add_argument("--out", type=output_file, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_leaderboard)

    from evalkit.demo import DEFAULTS

    p = sub.add_parser(
        "demo", parents=[parent],
        help="the whole job end to end on defaults: fine-tune, generate, MMLU, judge, rating bundle, report",
        description="Run the whole job on defaults, on a laptop CPU, in a few minutes: fine-tune a small GPT-2 on the "
        "book's chapter 7 data, generate responses to the book's test split, import the book's own fine-tuned "
        "GPT-2 medium responses as a model to compare with, MMLU on four subjects, an LLM judge when Ollama "
        "answers, a blind rating bundle and an HTML report. Everything it needs ships with evalkit: no network, "
        "no environment. Without the Hugging Face Hub the demo's own models start from random weights (it says "
        "so). Results go to the results store every other command reads (--store); running it again reuses "
        "every finished step.",
    )
    p.add_argument("--out", type=output_folder, default=DEFAULTS.out, help="folder for the files the demo writes: checkpoints, rating bundle, report")
    p.add_argument("--offline", action="store_true", help="do not try the Hugging Face Hub: the demo's models start from random weights")
    p.add_argument("--data", help="instruction data (JSON/JSONL file or URL; default: the book's chapter 7 data, shipped with evalkit)")
    p.add_argument("--mmlu-data", help="MMLU data: a folder holding test.jsonl (cais/mmlu fields) or that file "
                   "(default: the four subjects shipped with evalkit; other subjects: the hub's cais/mmlu)")
    p.add_argument("--tokenizer", help="GPT-2 tokenizer: a folder with vocab.json and merges.txt "
                   "(default: gpt2, from tiktoken's cache or the BPE files shipped with evalkit)")
    p.add_argument("--base-model", default=DEFAULTS.base_model, help="model to fine-tune (hub id or folder); ignored with --offline")
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs, help="fine-tuning epochs")
    p.add_argument("--max-records", type=nonneg_int, default=DEFAULTS.max_records, help="fine-tune on the first N instruction records (0: all)")
    p.add_argument("--n-test", type=nonneg_int, default=DEFAULTS.n_test, help="answer the first N records of the book's 110-record test split (0: all)")
    p.add_argument("--mmlu-subjects", default=",".join(DEFAULTS.mmlu_subjects), help="MMLU subjects to run")
    p.add_argument("--mmlu-limit", type=positive_int, default=DEFAULTS.mmlu_limit, help="questions per MMLU subject")
    p.add_argument("--judge-model", default=DEFAULTS.judge_model, help="Ollama model that judges (when a server answers at OLLAMA_HOST)")
    p.set_defaults(func=cmd_demo)


# -- compare --------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    from evalkit.compare import compare_models
    from evalkit.compare.display import write

    with open_store(args, read_only=True) as store:
        rows = compare_models(
            store, args.model_a, args.model_b, metrics=args.metrics, alpha=args.alpha, bootstrap=args.bootstrap,
            seed=args.seed, progress=sys.stderr.isatty(),
        )
    write(rows, args.format, args.model_a, args.model_b)
    return 0


def _add_compare(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "compare",
        parents=[parent],
        help="is model B better than A? paired tests on the items both were measured on",
        description="Compare two models mode by mode on the items both have (each model's latest finished run "
        "per mode; runs with a different eval set, judge, template, reference or few-shot are refused, never "
        "mixed): MMLU (exact McNemar), judge score (Wilcoxon), judge pairwise (sign test; head-to-head judge run "
        "if one exists), human votes (exact binomial, ties excluded; Bradley-Terry difference). Intervals are "
        "seeded paired bootstraps at level 1 - alpha; verdicts use Holm-adjusted p-values across the modes shown.",
    )
    p.add_argument("model_a", metavar="MODEL_A", help="model name as stored (see `evalkit runs list`)")
    p.add_argument("model_b", metavar="MODEL_B", help="the model compared with A (B - A > 0 favours B)")
    p.add_argument(
        "--metrics",
        type=_csv_list,
        default=None,
        help="comma-separated modes among mmlu,judge-score,judge-pairwise,human "
        "(default: every mode where either model has results)",
    )
    p.add_argument("--alpha", type=probability, default=0.05, help="significance level (family-wise, Holm)")
    p.add_argument("--bootstrap", type=nonneg_int, default=10000, help="bootstrap rounds for intervals (Bradley-Terry: at most 1000)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the resampling")
    _add_format(p)
    p.set_defaults(func=cmd_compare)


# -- experiment and store merge -------------------------------------------------------------


def cmd_experiment(args: argparse.Namespace) -> int:
    from evalkit.experiment import load_plan, run_experiment
    from evalkit.experiment.plan import find_plan
    from evalkit.experiment.report import HEADINGS, TABLE_COLUMNS, table_rows

    plan_file = find_plan(args.plan)
    plan = load_plan(plan_file)
    out = args.out or Path("experiments") / plan.name
    with open_store(args) as store:
        result = run_experiment(plan, plan_file, store, out, data_dir=args.data_dir, only=args.only,
                                progress=not args.no_progress)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    done = sum(1 for s in result.steps if s.status == "done")
    print(f"{done} step(s) run, {len(result.steps) - done} already finished; state in {out}", file=sys.stderr)
    if args.only is None:
        columns = [HEADINGS[c] for c in TABLE_COLUMNS]
        rows = [{HEADINGS[k]: v for k, v in r.items() if k in HEADINGS} for r in table_rows(result.rows)]
        print_rows(rows, args.format, columns=columns, title=f"{plan.name}: each variant against {plan.baseline!r}",
                   json_value={"plan": plan.name, "baseline": plan.baseline, "rows": result.rows,
                               "steps": [vars(s) for s in result.steps], "notes": result.notes,
                               "report": str(result.report) if result.report else None})
        if result.report:
            print(f"wrote {result.report}", file=sys.stderr)
    return 0


def _add_experiment(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "experiment", parents=[parent], help="train, evaluate and compare the variants of a plan (YAML)",
        description="Run a plan: fine-tune every variant (style, masking, LoRA, DPO, data, seeds), generate, "
        "MMLU, judge and a rating bundle, each an ordinary run in the store; steps already finished are skipped, "
        "so re-running resumes. Ends with every variant compared against the baseline variant in every mode "
        "(Holm-adjusted across variants and modes) and an HTML report.",
    )
    p.add_argument("plan", metavar="PLAN.yaml", help="the plan file, or a shipped plan: tiny, ch07-exercises")
    p.add_argument("--out", type=output_folder, help="folder for models, responses, state and report (default: experiments/PLAN-NAME)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="resolve the plan's relative data paths here (default: the plan's folder)")
    p.add_argument("--only", metavar="VARIANT", help="run one variant (and train what it starts from); no comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_format(p)
    p.set_defaults(func=cmd_experiment)


def cmd_store_merge(args: argparse.Namespace) -> int:
    from evalkit.store_merge import merge_stores

    with open_store(args) as store:
        result = merge_stores(store, args.other)
    print(f"merged {len(result.added)} run(s) from {args.other}; {len(result.already_present)} already present")
    return 0


def _add_store(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("store", parents=[parent], help="manage the results store")
    store_sub = p.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    m = store_sub.add_parser("merge", parents=[parent], help="copy another store's runs into this one (refuses conflicting ids)")
    m.add_argument("other", type=Path, metavar="OTHER.db", help="the store to merge in")
    m.set_defaults(func=cmd_store_merge)


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
    for add in (_add_finetune, _add_mmlu, _add_judge, _add_human, _add_report, _add_compare, _add_import, _add_runs,
                _add_experiment, _add_store):
        add(sub, parent)
    return parser


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process"
    reason = str(exc).strip().split("\n")[0][:300] or type(exc).__name__
    return f"{reason} ({type(exc).__name__}; run with -v for details)"


# Commands that read or import records and exit: the cycle collector's full passes over their
# heap (every sample of 20 runs for a report) free nothing, as the records hold no cycles; see
# evalkit.heap. Long-running commands (finetune, generate, judge, experiment) keep it on.
_RECORD_COMMANDS = frozenset({
    "cmd_report", "cmd_leaderboard", "cmd_compare", "cmd_runs_list", "cmd_runs_show", "cmd_runs_export",
    "cmd_runs_import", "cmd_import_responses", "cmd_import_alpaca_eval", "cmd_import_lm_eval", "cmd_import_arena",
    "cmd_pairs_export", "cmd_pairs_import", "cmd_pairs_agreement", "cmd_arena", "cmd_store_merge",
})


def main(argv: Sequence[str] | None = None, *, process_exits: bool = False) -> int:
    """Run one command; ``process_exits``: the process ends after it (the ``evalkit`` command),
    so a record command may leave the cycle collector off until then."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    if process_exits and getattr(args.func, "__name__", "") in _RECORD_COMMANDS:
        gc.disable()
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
    except (OSError, UnicodeError, RecursionError, sqlite3.Error) as exc:
        # The last net for what user files and folders can still cause (a disk that fills up,
        # a file that vanishes mid-run, a corrupt store): one line, as for any bad input. Known
        # causes are turned into InputErrors where they happen; -v shows the traceback.
        if verbose:
            raise
        print(f"evalkit: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 2
