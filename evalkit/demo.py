"""`evalkit demo`: the whole job end to end on defaults, on a laptop CPU, in minutes.

Steps (each one's result is printed with where it went):

1. fine-tune a small GPT-2 on the book's instruction data (``finetune.train``);
2. generate responses to the book's test split, before and after fine-tuning
   (``evalkit.generate_run.generate_responses``), and say how many are non-empty;
3. import the book's own fine-tuned GPT-2 medium responses to the same test split
   (``instruction-data-with-response.json``) as a model of its own, so that the rating
   bundle, the leaderboard and the report have text a person can read and judge;
4. MMLU on a few subjects with a per-subject limit (``evalkit.mmlu.run_mmlu``);
5. judge the responses with Ollama when a server answers (``evalkit.judge.run_judge``);
   otherwise say so, skip, and say how to enable it;
6. export a blind rating bundle: each demo model against the book's model (``evalkit.human``);
7. render the leaderboard (``evalkit.report.render_report``).

Everything the demo needs ships with evalkit (the book's data and responses, GPT-2's BPE files,
four MMLU subjects; see ``evalkit/data/manifest.json``), so it runs with no network and no
environment set. Without the Hugging Face Hub (``--offline``, ``HF_HUB_OFFLINE=1``, or when it
cannot be reached) the model is a randomly initialised small GPT-2; the output and the report
say so plainly, and the model names carry ``random-init``, so such numbers are never taken for a
pretrained model's.

Results go to the default results store (``$EVALKIT_STORE`` or ``evalkit-results/evalkit.db``),
so ``evalkit runs list``, ``leaderboard``, ``compare`` and ``report`` run next in the same folder
find them. Every step reuses its finished run when run again with the same inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from evalkit.errors import EvalkitError
from evalkit.hub import hub_reachable
from evalkit.output import console

RANDOM_SIZE = "gpt2-tiny"  # 2 layers, width 64: trains and generates in seconds on a CPU
# a random start learns nothing visible in a few dozen steps at the book's 5e-5 (meant for
# pretrained weights); at 3e-3 the tiny model reaches the book's answer format within one epoch
RANDOM_LR = 3e-3
PRETRAINED_LR = 5e-5
BOOK_MODEL = "book-gpt2-medium-sft"  # the book's fine-tuned GPT-2 medium (its responses file)


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("evalkit-demo")
    offline: bool = False
    data: str | None = None  # instruction data; None: the book's file shipped with evalkit
    mmlu_data: str | None = None  # MMLU test.jsonl or its folder; None: the subjects shipped with evalkit, else the hub
    tokenizer: str | None = None  # 'gpt2' or a folder with vocab.json + merges.txt; None: 'gpt2'
    base_model: str = "gpt2"
    epochs: int = 1
    # the first 600 of the book's 1,100 records (510 train, 60 held out, 30 validation), all from
    # the book's training part, so the book's test split stays unseen. Batches of 4: 127 steps in
    # one epoch, and a tiny model learns more from more, smaller steps. Measured on the 2-core CI
    # machine (seed 123): about 15 of the first 20 test responses are text after ~120 such steps,
    # 5 after 50 steps of 8. Most of a step is GPT-2's 50,257-way output layer.
    max_records: int = 600  # 0: every record
    batch_size: int = 4
    eval_every: int = 20
    eval_batches: int = 1
    n_test: int = 20  # responses to the first N records of the book's test split (0: all 110)
    max_new_tokens: int = 64
    mmlu_subjects: tuple[str, ...] | list[str] = ("high_school_computer_science", "philosophy", "sociology", "nutrition")
    mmlu_limit: int = 5
    judge_model: str = "llama3"
    n_pairs: int = 10  # test items in the rating bundle; each demo model is paired with the book's model
    store: str | None = None  # None: $EVALKIT_STORE or evalkit-results/evalkit.db
    progress: bool = True


DEFAULTS = DemoOptions()


def resolve_mmlu_data(spec: str | None, subjects) -> str | None:
    """A folder holding test.jsonl: --mmlu-data, else the subjects shipped with evalkit when they
    cover ``subjects``, else None (lm-eval loads cais/mmlu from the hub)."""
    if spec:
        path = Path(spec)
        return str(path.parent if path.is_file() else path)  # evalkit.mmlu reads a folder holding test.jsonl
    import json

    from evalkit.assets import MMLU_SUBSET, embedded_file

    shipped = embedded_file(MMLU_SUBSET)
    with open(shipped, encoding="utf-8") as fh:
        available = {json.loads(line)["subject"] for line in fh if line.strip()}
    return str(shipped.parent) if set(subjects) <= available else None


def book_test_records(data: str | None, n_test: int) -> tuple[list[dict], str]:
    """The first ``n_test`` records of the book's 110-record test split and the eval set's name."""
    from finetune import load_records, split_records

    test = split_records(load_records(data))["test"]
    if n_test and n_test < len(test):
        return test[:n_test], f"book-ch07-test-first{n_test}"
    return test, "book-ch07-test"


class _Steps:
    """Prints what each step produced and where, and keeps a summary for the end."""

    def __init__(self, store) -> None:
        self.out = console()
        self.summary: list[tuple[str, str]] = []
        self.store = store
        self.known = {r.id for r in store.list_runs()}
        self.reused: list[str] = []
        self.new: list[str] = []

    def start(self, title: str) -> float:
        self.out.print(Text(f"\n▶ {title}", style="bold"))
        return time.perf_counter()

    def track(self, *run_ids: str | None) -> str:
        """'' for runs this step made, ' (reused)' when every run existed before the demo started."""
        ids = [r for r in run_ids if r]
        old = [r for r in ids if r in self.known]
        self.reused += [r for r in old if r not in self.reused]
        self.new += [r for r in ids if r not in self.known and r not in self.new]
        if ids and len(old) == len(ids):
            return " (reused: finished with the same inputs before)"
        if old:
            return f" ({len(old)} of {len(ids)} reused)"
        return ""

    def done(self, title: str, what: str, started: float) -> None:
        self.out.print(Text(f"  ✓ {what}  ({time.perf_counter() - started:.0f} s)"), soft_wrap=True)
        self.summary.append((title, what))

    def skipped(self, title: str, why: str) -> None:
        self.out.print(Text(f"  – skipped: {why}"), soft_wrap=True)
        self.summary.append((title, f"skipped: {why.splitlines()[0]}"))

    def say(self, text: str, style: str | None = None) -> None:
        # soft wrap: the terminal folds long lines; commands and paths stay one line when copied
        self.out.print(Text(text, style=style or ""), soft_wrap=True)


def _ollama_host() -> str:
    from evalkit.judge import resolve_hosts

    return resolve_hosts(None)[0]


def run_demo(options: DemoOptions = DEFAULTS) -> dict[str, Any]:
    """Run every step; returns what was produced (paths and run ids)."""
    from evalkit.store import ResultsStore, default_store_path

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    online = not options.offline and hub_reachable()
    random_init = not online
    tokenizer = options.tokenizer or "gpt2"
    mmlu_data = resolve_mmlu_data(options.mmlu_data, options.mmlu_subjects)
    store_path = Path(options.store) if options.store else default_store_path()
    result: dict[str, Any] = {"out": out, "store": store_path, "random_init": random_init}
    say = console()
    say.print(Text(f"evalkit demo → files in {out}/, results in the store {store_path}", style="bold"))
    notice = None
    if random_init:
        why = "--offline" if options.offline else "the Hugging Face Hub cannot be reached"
        notice = (
            f"Offline demo ({why}): the demo's own models start from RANDOMLY INITIALISED weights ({RANDOM_SIZE}), "
            "not a pretrained GPT-2, so their scores are near chance and say nothing about GPT-2. The book's "
            f"fine-tuned GPT-2 medium ({BOOK_MODEL}) is real text from the book. Run `evalkit demo` with "
            "internet access to fine-tune the pretrained model."
        )
        say.print(Text("⚠ " + notice, style="bold red"))
    say.print(Text(f"tokenizer: {tokenizer}; instruction data: {options.data or 'the book’s (shipped with evalkit)'}; "
                   f"MMLU data: {'the hub (cais/mmlu)' if mmlu_data is None else (options.mmlu_data or 'four subjects shipped with evalkit')}"))

    with ResultsStore(store_path) as store:
        steps = _Steps(store)
        base_dir, base_name, ft_name = _base_model(steps, options, out, tokenizer, random_init)
        result["base_model"] = base_dir

        # 1. fine-tune
        from finetune import train

        t = steps.start("1/7 fine-tune")
        trained = train(
            model=base_dir, data=options.data, out=out / "finetuned", epochs=options.epochs, batch_size=options.batch_size,
            lr=RANDOM_LR if random_init else PRETRAINED_LR, bucket=True,
            eval_every=options.eval_every, eval_batches=options.eval_batches,
            limit=options.max_records or None, tokenizer=tokenizer, name=ft_name, store=store, resume=True,
            progress=options.progress,
        )
        result["finetuned"] = trained.out_dir
        result["finetune_run"] = trained.run_id
        loss = f"; train loss {trained.train_loss:.2f}, val loss {trained.val_loss:.2f}" if trained.val_loss is not None else ""
        steps.done("fine-tune", f"{trained.out_dir} after {trained.steps} steps{loss} (run {trained.run_id})"
                   f"{steps.track(trained.run_id)}", t)

        # 2. responses to the book's test split, before and after fine-tuning
        from evalkit.generate_run import generate_responses

        t = steps.start("2/7 generate test-split responses")
        test, eval_set = book_test_records(options.data, options.n_test)
        generate = {}
        for name, model in ((base_name, base_dir), (ft_name, trained.out_dir)):
            generate[name] = generate_responses(model, test, store=store, eval_set=eval_set, model_name=name,
                                                max_new_tokens=options.max_new_tokens, progress=options.progress)
        result["generate_runs"] = generate
        non_empty = _non_empty(store, generate[ft_name])
        result["non_empty"] = non_empty
        steps.done("generate", f"{len(test)} responses each from {', '.join(generate)}; {ft_name}: "
                   f"{non_empty} of {len(test)} non-empty (runs {', '.join(generate.values())})"
                   f"{steps.track(*generate.values())}", t)

        # 3. the book's fine-tuned GPT-2 medium: real responses to the same test split
        from evalkit.assets import BOOK_RESPONSES, embedded_file
        from evalkit.interop.responses import import_responses

        t = steps.start("3/7 import the book's fine-tuned GPT-2 medium responses")
        book_run = import_responses(store, embedded_file(BOOK_RESPONSES), name=BOOK_MODEL)
        result["book_run"] = book_run
        steps.done("book responses", f"{store.sample_count(book_run)} responses of {BOOK_MODEL} "
                   f"(instruction-data-with-response.json; run {book_run}){steps.track(book_run)}", t)
        responses = {**generate, BOOK_MODEL: book_run}

        # 4. MMLU
        t = steps.start("4/7 MMLU")
        try:
            from evalkit.mmlu import run_mmlu
            from finetune.generate import default_device

            mmlu = {}
            for name, model in ((base_name, base_dir), (ft_name, trained.out_dir)):
                res = run_mmlu(store, model, subjects=list(options.mmlu_subjects), limit=options.mmlu_limit, data=mmlu_data,
                               device=default_device(), progress=options.progress)
                mmlu[name] = res.run_id
            result["mmlu_runs"] = mmlu
            steps.done("MMLU", f"{len(options.mmlu_subjects)} subjects × {options.mmlu_limit} questions per model "
                       f"(runs {', '.join(mmlu.values())}){steps.track(*mmlu.values())}", t)
        except EvalkitError as exc:
            steps.skipped("MMLU", str(exc))

        # 5. judge, when an Ollama server answers
        t = steps.start("5/7 LLM judge (Ollama)")
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
                          for name, rid in responses.items()}
                result["judge_runs"] = judged
                steps.done("judge", f"0-100 scores by {options.judge_model} at {host} (runs {', '.join(judged.values())})"
                           f"{steps.track(*judged.values())}", t)
            except EvalkitError as exc:
                steps.skipped("judge", f"{exc}")

        # 6. a blind rating bundle: each demo model against the book's
        t = steps.start("6/7 rating bundle for people")
        from evalkit.human.bundle import export_pairs

        bundle = export_pairs(store, runs=list(responses.values()), baseline=book_run, n=options.n_pairs, seed=0,
                              title="evalkit demo: which response is better?")
        paths = bundle.write(out / "rating", force=True)
        result["bundle"] = paths
        steps.done("rating bundle", f"{len(bundle.pairs)} blind pairs in {paths['page']}", t)

        # 7. the leaderboard of the demo's runs
        t = steps.start("7/7 leaderboard report")
        from evalkit.report import render_report

        title = "evalkit demo" + (" (offline: the demo's own models are randomly initialised)" if random_init else "")
        demo_runs = [r for r in (trained.run_id, *responses.values(), *result.get("mmlu_runs", {}).values(),
                                 *result.get("judge_runs", {}).values()) if r]
        # the report finds the random-init models itself and says so at the top
        report = render_report(store, out / "leaderboard.html", runs=demo_runs, title=title)
        result["report"] = report
        steps.done("report", f"{report}", t)
        result["new_runs"], result["reused_runs"] = list(steps.new), list(steps.reused)

    steps.say("\nSummary", "bold")
    for title, what in steps.summary:
        steps.say(f"  {title}: {what}")
    if notice:
        steps.say("⚠ " + notice, "bold red")
    if steps.reused and not steps.new:
        steps.say(f"Every step reused its finished run ({len(steps.reused)} runs): nothing new was added to the store.")
    elif steps.reused:
        steps.say(f"{len(steps.new)} new run(s); {len(steps.reused)} finished run(s) reused.")
    _next_steps(steps, store_path, options, base_name, ft_name, paths, report)
    return result


def _next_steps(steps: _Steps, store_path: Path, options: DemoOptions, base_name: str, ft_name: str,
                paths: dict[str, Path], report: Path) -> None:
    """The last lines: where everything is and what to run next, in this folder."""
    steps.say("\nWhere things are", "bold")
    steps.say(f"  results store: {store_path}")
    steps.say(f"  report:        {report}  (open it in a browser)")
    steps.say(f"  rating page:   {paths['page']}  (rate the pairs, export ratings-NAME.jsonl)")
    steps.say("Next", "bold")
    if options.store:
        steps.say(f"  export EVALKIT_STORE={store_path}   # so the commands below read the demo's store")
    steps.say("  evalkit runs list")
    steps.say("  evalkit leaderboard")
    steps.say(f"  evalkit compare {base_name} {ft_name}")
    steps.say(f"  evalkit pairs import {paths['key']} ratings-NAME.jsonl && evalkit arena")


def _non_empty(store, run_id: str) -> int:
    return sum(1 for _, payload in store.samples(run_id) if str(payload.get("response") or "").strip())


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


__all__ = ["BOOK_MODEL", "DEFAULTS", "DemoOptions", "hub_reachable", "run_demo"]
