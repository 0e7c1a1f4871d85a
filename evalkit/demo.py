"""`evalkit demo`: the whole job end to end on defaults, on a laptop CPU, in minutes.

Steps (each one's result is printed with where it went):

1. fine-tune a small GPT-2 on the book's instruction data (``finetune.train``);
2. generate responses to the test split, before and after fine-tuning
   (``evalkit.generate_run.generate_responses``);
3. MMLU on a few subjects with a per-subject limit (``evalkit.mmlu.run_mmlu``);
4. judge the responses with Ollama when a server answers (``evalkit.judge.run_judge``);
   otherwise say so, skip, and say how to enable it;
5. export a blind rating bundle of the two models' responses (``evalkit.human``);
6. render the leaderboard (``evalkit.report.render_report``).

Without the Hugging Face Hub (``--offline``, or when it cannot be reached) the model is a
randomly initialised small GPT-2 and the tokenizer and data come from local files; the output
and the report say so plainly, and the model names carry ``random-init``, so such numbers are
never taken for a pretrained model's.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from evalkit.errors import EvalkitError
from evalkit.output import console

HUB_HOST = ("huggingface.co", 443)
RANDOM_SIZE = "gpt2-tiny"  # 2 layers, width 64: trains and generates in seconds on a CPU
RANDOM_LR = 1e-3


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("evalkit-demo")
    offline: bool = False
    data: str | None = None  # instruction data; None: discover (shared data, else the book's URL)
    mmlu_data: str | None = None  # MMLU test.jsonl; None: discover (shared data, else the hub)
    tokenizer: str | None = None  # 'gpt2' or a folder with vocab.json + merges.txt; None: discover
    base_model: str = "gpt2"
    epochs: int = 1
    # the first 200 of the book's 1,100 records (170 train, 20 test, 10 validation): a CPU fine-tunes
    # them in minutes; most of a step is GPT-2's 50,257-way output layer, whatever the model size
    max_records: int = 200  # 0: every record
    batch_size: int = 8
    eval_every: int = 5
    eval_batches: int = 2
    max_new_tokens: int = 64
    mmlu_subjects: tuple[str, ...] | list[str] = ("high_school_computer_science", "philosophy", "sociology", "nutrition")
    mmlu_limit: int = 5
    judge_model: str = "llama3"
    n_pairs: int = 20
    store: str | None = None
    progress: bool = True


DEFAULTS = DemoOptions()


def shared_data_dirs() -> list[Path]:
    """Where a checkout keeps the staged public data (``../shared/data``), most specific first."""
    candidates = []
    if os.environ.get("EVALKIT_SHARED_DATA"):
        candidates.append(Path(os.environ["EVALKIT_SHARED_DATA"]))
    candidates += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    return [c for c in dict.fromkeys(candidates) if c.is_dir()]


def _shared_file(*parts: str) -> Path | None:
    for folder in shared_data_dirs():
        path = folder.joinpath(*parts)
        if path.exists():
            return path
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _tiktoken_gpt2_cached() -> bool:
    from evalkit.assets import GPT2_ENCODER_URL, GPT2_VOCAB_BPE_URL, _tiktoken_cache_file

    return _tiktoken_cache_file(GPT2_ENCODER_URL) is not None and _tiktoken_cache_file(GPT2_VOCAB_BPE_URL) is not None


def resolve_tokenizer(spec: str | None, *, online: bool) -> str:
    """'gpt2' (tiktoken; cached in TIKTOKEN_CACHE_DIR or downloadable) or a tokenizer folder."""
    if spec:
        return spec
    if _tiktoken_gpt2_cached() or online:
        return "gpt2"
    folder = _shared_file("gpt2-tokenizer")
    if folder is not None:
        return str(folder)
    raise EvalkitError(
        "no GPT-2 tokenizer available offline: point TIKTOKEN_CACHE_DIR at a folder holding tiktoken's gpt2 "
        "files, or pass --tokenizer DIR (a folder with vocab.json and merges.txt)"
    )


def resolve_data(spec: str | None) -> str | None:
    """The instruction data: --data, else the staged copy of the book's file, else None (the book's URL)."""
    if spec:
        return spec
    found = _shared_file("book-ch07", "instruction-data.json")
    return str(found) if found else None


def resolve_mmlu_data(spec: str | None) -> str | None:
    if spec:
        path = Path(spec)
        return str(path.parent if path.is_file() else path)  # evalkit.mmlu reads a folder holding test.jsonl
    found = _shared_file("mmlu", "test.jsonl")
    if found is not None:
        return str(found.parent)
    return None  # lm-eval loads cais/mmlu from the hub (fails clearly offline; the step is then skipped)


class _Steps:
    """Prints what each step produced and where, and keeps a summary for the end."""

    def __init__(self) -> None:
        self.out = console()
        self.summary: list[tuple[str, str]] = []

    def start(self, title: str) -> float:
        self.out.print(Text(f"\n▶ {title}", style="bold"))
        return time.perf_counter()

    def done(self, title: str, what: str, started: float) -> None:
        self.out.print(Text(f"  ✓ {what}  ({time.perf_counter() - started:.0f} s)"))
        self.summary.append((title, what))

    def skipped(self, title: str, why: str) -> None:
        self.out.print(Text(f"  – skipped: {why}"))
        self.summary.append((title, f"skipped: {why.splitlines()[0]}"))

    def say(self, text: str, style: str | None = None) -> None:
        self.out.print(Text(text, style=style or ""))


def _ollama_host() -> str:
    from evalkit.judge import resolve_hosts

    return resolve_hosts(None)[0]


def run_demo(options: DemoOptions = DEFAULTS) -> dict[str, Any]:
    """Run every step; returns what was produced (paths and run ids)."""
    from evalkit.store import ResultsStore

    steps = _Steps()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    online = not options.offline and hub_reachable()
    random_init = not online
    tokenizer = resolve_tokenizer(options.tokenizer, online=online)
    data = resolve_data(options.data)
    mmlu_data = resolve_mmlu_data(options.mmlu_data)
    store_path = Path(options.store) if options.store else out / "evalkit.db"
    result: dict[str, Any] = {"out": out, "store": store_path, "random_init": random_init}

    steps.say(f"evalkit demo → {out.resolve()}  (results store: {store_path})", "bold")
    notice = None
    if random_init:
        why = "--offline" if options.offline else "the Hugging Face Hub cannot be reached"
        notice = (
            f"Offline demo ({why}): the models here start from RANDOMLY INITIALISED weights ({RANDOM_SIZE}), not a "
            "pretrained GPT-2, so their scores are near chance and say nothing about GPT-2. Run `evalkit demo` with "
            "internet access to fine-tune the pretrained model."
        )
        steps.say("⚠ " + notice, "bold red")
    steps.say(f"tokenizer: {tokenizer}; instruction data: {data or 'the book’s URL'}; MMLU data: {mmlu_data or 'the hub (cais/mmlu)'}")

    with ResultsStore(store_path) as store:
        base_dir, base_name, ft_name = _base_model(steps, options, out, tokenizer, random_init)
        result["base_model"] = base_dir

        # 1. fine-tune
        from finetune import load_records, split_records, train

        t = steps.start("1/6 fine-tune")
        trained = train(
            model=base_dir, data=data, out=out / "finetuned", epochs=options.epochs, batch_size=options.batch_size,
            # the book's 5e-5 suits pretrained weights; a random start learns nothing visible in a few
            # dozen steps at that rate
            lr=RANDOM_LR if random_init else 5e-5,
            eval_every=options.eval_every, eval_batches=options.eval_batches,
            limit=options.max_records or None, tokenizer=tokenizer, name=ft_name, store=store, resume=True,
            progress=options.progress,
        )
        result["finetuned"] = trained.out_dir
        result["finetune_run"] = trained.run_id
        loss = f"train loss {trained.train_loss:.3f}, val loss {trained.val_loss:.3f}" if trained.val_loss is not None else ""
        steps.done("fine-tune", f"{trained.out_dir} after {trained.steps} steps, {trained.tokens_seen} tokens; {loss} (run {trained.run_id})", t)

        # 2. responses to the test split, before and after fine-tuning
        from evalkit.generate_run import generate_responses
        from finetune.generate import default_device

        t = steps.start("2/6 generate test-split responses")
        records = load_records(data)
        if options.max_records:
            records = records[: options.max_records]
        test = split_records(records)["test"]
        eval_set = "book-ch07-test" if not options.max_records else f"book-ch07-test-first{options.max_records}"
        generate = {}
        for name, model in ((base_name, base_dir), (ft_name, trained.out_dir)):
            generate[name] = generate_responses(model, test, store=store, eval_set=eval_set, model_name=name,
                                                max_new_tokens=options.max_new_tokens)
        result["generate_runs"] = generate
        steps.done("generate", f"{len(test)} responses each from {', '.join(generate)} (runs {', '.join(generate.values())})", t)

        # 3. MMLU
        t = steps.start("3/6 MMLU")
        try:
            from evalkit.mmlu import run_mmlu

            mmlu = {}
            for name, model in ((base_name, base_dir), (ft_name, trained.out_dir)):
                res = run_mmlu(store, model, subjects=list(options.mmlu_subjects), limit=options.mmlu_limit, data=mmlu_data,
                               device=default_device(), progress=options.progress)
                mmlu[name] = getattr(res, "run_id", None) or getattr(res, "id", None)
            result["mmlu_runs"] = mmlu
            steps.done("MMLU", f"{len(options.mmlu_subjects)} subjects × {options.mmlu_limit} questions per model (runs {', '.join(map(str, mmlu.values()))})", t)
        except EvalkitError as exc:
            steps.skipped("MMLU", str(exc))

        # 4. judge, when an Ollama server answers
        t = steps.start("4/6 LLM judge (Ollama)")
        host = _ollama_host()
        if not _ollama_answers(host):
            steps.skipped("judge", f"no Ollama server answers at {host}. To enable: install Ollama (https://ollama.com), "
                          f"`ollama pull {options.judge_model}`, start `ollama serve` (or set OLLAMA_HOST), then run "
                          "`evalkit demo` again: finished steps are reused.")
        else:
            from evalkit.judge import run_judge

            try:
                judged = {name: run_judge(store, responses_run=rid, judge_model=options.judge_model, mode="score",
                                          progress=options.progress)
                          for name, rid in generate.items()}
                result["judge_runs"] = judged
                steps.done("judge", f"0-100 scores by {options.judge_model} at {host} (runs {', '.join(judged.values())})", t)
            except EvalkitError as exc:
                steps.skipped("judge", f"{exc}")

        # 5. a blind rating bundle
        t = steps.start("5/6 rating bundle for people")
        from evalkit.human.bundle import export_pairs

        bundle = export_pairs(store, runs=list(generate.values()), n=options.n_pairs, seed=0,
                              title="evalkit demo: which response is better?")
        paths = bundle.write(out / "rating", force=True)
        result["bundle"] = paths
        steps.done("rating bundle", f"{len(bundle.pairs)} blind pairs: open {paths['page']} in a browser to rate them, then "
                   f"`evalkit pairs import {paths['key']} ratings-NAME.jsonl` and `evalkit arena`", t)

        # 6. the leaderboard
        t = steps.start("6/6 leaderboard report")
        from evalkit.report import render_report

        title = "evalkit demo" + (" (offline: randomly initialised models)" if random_init else "")
        # the report finds the random-init models itself and says so at the top
        report = render_report(store, out / "leaderboard.html", title=title)
        result["report"] = report
        steps.done("report", f"{report} (open it in a browser)", t)

    steps.say("\nSummary", "bold")
    for title, what in steps.summary:
        steps.say(f"  {title:>14}: {what}")
    if notice:
        steps.say("⚠ " + notice, "bold red")
    return result


def _base_model(steps: _Steps, options: DemoOptions, out: Path, tokenizer: str, random_init: bool) -> tuple[str, str, str]:
    """(model to start from, its name, the fine-tuned model's name)."""
    if not random_init:
        base = options.base_model
        return base, base, f"{Path(base).name}-demo-sft"
    from finetune.model import random_model, save_checkpoint_dir

    folder = out / f"base-{RANDOM_SIZE}-random-init"
    name = f"{RANDOM_SIZE}-random-init"
    if not (folder / "config.json").is_file():
        save_checkpoint_dir(random_model(RANDOM_SIZE, seed=123), folder, tokenizer=tokenizer,
                            metadata={"name": name, "init": "random", "model_size": RANDOM_SIZE, "seed": 123})
    steps.say(f"base model: {folder} (random weights, {RANDOM_SIZE})")
    return str(folder), name, f"{name}-demo-sft"


def _ollama_answers(host: str, timeout: float = 3.0) -> bool:
    import ollama

    try:
        ollama.Client(host=host, timeout=timeout).list()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no usable server here"; the step says so
        return False


__all__ = ["DEFAULTS", "DemoOptions", "hub_reachable", "run_demo"]
