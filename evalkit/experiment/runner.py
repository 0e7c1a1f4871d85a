"""Run a plan: every step an ordinary evalkit run, finished steps skipped, one progress bar.

Steps, per variant and seed: ``finetune`` (SFT or DPO, optionally LoRA, optionally on top of
another variant's model), ``generate`` (responses to the plan's held-out records, the same
records for every variant so that judge and human modes pair item by item), ``mmlu``, ``judge``;
then one rating ``bundle`` of all variants. Each calls the library function the CLI command
calls. ``OUT/experiment.json`` records each finished step (with a hash of its settings) as soon
as it finishes, so a plan stopped by Ctrl-C or kill -9 resumes at the step it was in; the step
itself resumes too (training from its last checkpoint, generation and judging from the items
already stored, MMLU from lm-eval's request cache).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.experiment.plan import JudgeOptions, Plan, resolve_data
from evalkit.store import ResultsStore, canonical_json, content_hash

STATE_FILE = "experiment.json"


@dataclass
class Step:
    key: str  # "finetune/phi3/s123": stable across invocations
    kind: str
    variant: str | None
    seed: int | None
    settings: dict[str, Any]  # what the step's result depends on; a change re-runs it
    action: Callable[[], str | None]  # returns the run (or bundle) id
    weight: float = 1.0  # rough cost, for the time-left estimate


@dataclass
class StepOutcome:
    key: str
    kind: str
    variant: str | None
    seed: int | None
    status: str  # done | skipped (already finished) | not run (with a note)
    result: str | None = None
    note: str | None = None


@dataclass
class ExperimentResult:
    plan: Plan
    out_dir: Path
    steps: list[StepOutcome] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # variant x mode comparisons
    notes: list[str] = field(default_factory=list)
    report: Path | None = None


class _Ledger:
    """``OUT/experiment.json``: finished steps, rewritten atomically after each one."""

    def __init__(self, path: Path):
        self.path = path
        self.steps: dict[str, dict[str, Any]] = {}
        if path.is_file():
            try:
                self.steps = json.loads(path.read_text(encoding="utf-8")).get("steps", {})
            except (OSError, json.JSONDecodeError) as exc:
                raise EvalkitError(f"{path}: unreadable experiment state ({exc}); delete it to start the plan over") from exc

    def finished(self, step: Step) -> dict[str, Any] | None:
        entry = self.steps.get(step.key)
        return entry if entry and entry.get("settings_hash") == _hash(step.settings) else None

    def record(self, step: Step, result: str | None) -> None:
        self.steps[step.key] = {"settings_hash": _hash(step.settings), "result": result, "finished_at": time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"steps": self.steps}, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _hash(settings: dict[str, Any]) -> str:
    return content_hash(json.loads(canonical_json(settings)))


class _PlanSteps:
    """Builds the steps of a plan (closures over the store and the output folder)."""

    def __init__(self, plan: Plan, plan_file: Path, store: ResultsStore, out: Path, data_dir: Path | None):
        self.plan, self.store, self.out = plan, store, out
        self.data = lambda spec: resolve_data(spec, plan_file=plan_file, data_dir=data_dir)
        self.judge_note: str | None = None

    def model_dir(self, variant: str, seed: int) -> Path:
        return self.out / "models" / self.plan.model_name(variant, seed)

    def finetune(self, variant: str, seed: int) -> Step:
        plan, v = self.plan, self.plan.variants[variant]
        options: dict[str, Any] = {**plan.finetune.given(), **v.given(), "seed": seed}
        for name in ("mask_instruction", "lora_rank", "lora_alpha", "lora_targets"):
            if getattr(v, name) is not None:
                options[name] = getattr(v, name)
        options["style"] = self.style_of(variant)
        options["data"] = self.data(v.data if v.data is not None else plan.data)
        if v.start_from is not None:  # on top of another variant's model, same seed when it has it
            parent_seeds = plan.seeds_of(v.start_from)
            options["model"] = str(self.model_dir(v.start_from, seed if seed in parent_seeds else parent_seeds[0]))
            options["init"] = "pretrained"
        else:
            options.update(model=plan.base.model, init=plan.base.init)
            if plan.base.model_size:
                options["model_size"] = plan.base.model_size
        if v.method == "dpo":
            options["ref_model"] = self.data(v.ref_model) if v.ref_model else None
            options["beta"] = v.beta if v.beta is not None else 0.1
        out, name = self.model_dir(variant, seed), plan.model_name(variant, seed)

        def action() -> str | None:
            if v.method == "dpo":
                from finetune.dpo import train_dpo as trainer
            else:
                from finetune.train import train as trainer
            result = trainer(**options, out=out, name=name, store=self.store, resume=True, progress=False)
            return result.run_id

        return Step(f"finetune/{variant}/s{seed}", "finetune", variant, seed, {**options, "method": v.method}, action, weight=10)

    def style_of(self, variant: str) -> str:
        """The variant's prompt style, else that of the variant it starts from, else alpaca."""
        for name in self.plan._chain(variant):
            if self.plan.variants[name].style is not None:
                return self.plan.variants[name].style
        return "alpaca"

    def eval_records(self) -> list[dict]:
        """The held-out records every variant answers: the test split of the plan's data."""
        from finetune.data import load_records, split_records

        split = self.plan.evaluations.generate.split
        records = load_records(self.data(self.plan.data))
        return records if split == "all" else split_records(records)[split]

    def generate(self, variant: str, seed: int) -> Step:
        options = self.plan.evaluations.generate
        settings = {"model": str(self.model_dir(variant, seed)), "data": self.data(self.plan.data), **options.model_dump(),
                    "style": self.style_of(variant)}
        name = self.plan.model_name(variant, seed)

        def action() -> str:
            from evalkit.generate_run import generate_responses

            return generate_responses(
                self.model_dir(variant, seed), self.eval_records(), store=self.store, eval_set=self.eval_set,
                style=settings["style"], max_new_tokens=options.max_new_tokens, batch_size=options.batch_size,
                model_name=name, progress=False,
            )

        return Step(f"generate/{variant}/s{seed}", "generate", variant, seed, settings, action, weight=3)

    @property
    def eval_set(self) -> str:
        return f"{self.plan.name}/{self.plan.evaluations.generate.split}"

    def mmlu(self, variant: str, seed: int) -> Step:
        options = self.plan.evaluations.mmlu
        assert options is not None
        settings = {"model": str(self.model_dir(variant, seed)), **options.model_dump(), "data": self.data(options.data)}

        def action() -> str:
            from evalkit.mmlu import run_mmlu
            from evalkit.mmlu.progress import quiet_library_bars

            import lm_eval.evaluator  # noqa: F401  imported first, so that their bars are silenced too
            import lm_eval.models.huggingface  # noqa: F401

            with quiet_library_bars():  # the plan's bar is the one progress display
                result = run_mmlu(self.store, self.model_dir(variant, seed), subjects=options.subjects, categories=options.categories,
                                  num_fewshot=options.num_fewshot, limit=options.limit, batch_size=options.batch_size,
                                  data=settings["data"], cache=self.out / "mmlu-cache" / self.plan.model_name(variant, seed),
                                  progress=False)
            return result.run_id

        return Step(f"mmlu/{variant}/s{seed}", "mmlu", variant, seed, settings, action, weight=4)

    def judge(self, variant: str, seed: int, generate_key: str, ledger: _Ledger) -> Step:
        options = self.plan.evaluations.judge
        assert options is not None
        settings = {"model": str(self.model_dir(variant, seed)), **options.model_dump()}

        def action() -> str:
            from evalkit.judge.runner import run_judge

            responses_run = (ledger.steps.get(generate_key) or {}).get("result")
            if responses_run is None:
                raise EvalkitError(f"judge {variant}: its responses were not generated")
            return run_judge(self.store, responses_run=responses_run, judge_model=options.model, mode=options.mode,
                             backend=options.backend, hosts=options.host, api_key_env=options.api_key_env,
                             concurrency=options.concurrency, prompt_template=self.data(options.template),
                             timeout=options.timeout, progress=False)

        return Step(f"judge/{variant}/s{seed}", "judge", variant, seed, settings, action, weight=3)

    def bundle(self, names: list[str]) -> Step:
        options = self.plan.evaluations.bundle
        assert options is not None
        folder = self.out / "rating-bundle"
        settings = {"models": names, **options.model_dump(), "eval_set": self.eval_set}

        def action() -> str:
            from evalkit.human.bundle import export_pairs

            bundle = export_pairs(self.store, models=names, eval_set=self.eval_set, n=options.n, seed=options.seed,
                                  baseline=self.plan.model_name(self.plan.baseline, self.plan.seeds_of(self.plan.baseline)[0]),
                                  title=f"{self.plan.name}: which response is better?")
            bundle.write(folder, force=True)
            return bundle.bundle_id

        return Step("bundle", "bundle", None, None, settings, action, weight=0.5)


def judge_unreachable(options: JudgeOptions) -> str | None:
    """Why the plan's judge cannot be asked (None when it can): the judge's own preflight (every
    host answers, the judge model is there), with a short timeout and no retries, before the plan
    relies on it."""
    from evalkit.judge.providers import JudgeServerError, make_provider

    try:
        provider = make_provider(options.backend, options.model, options.host, api_key_env=options.api_key_env,
                                 timeout=5.0, retries=0)
    except EvalkitError as exc:  # e.g. the key's environment variable is not set
        return f"no judge reachable ({exc}); judge steps skipped, fix the plan's judge and re-run it to add them"
    try:
        provider.preflight()
        return None
    except JudgeServerError as exc:
        server = "an Ollama server" if options.backend == "ollama" else "the OpenAI-compatible server"
        return f"no judge reachable ({exc}); judge steps skipped, start {server} and re-run the plan to add them"
    finally:
        provider.close()


def plan_steps(plan: Plan, plan_file: Path, store: ResultsStore, out: Path, *, data_dir: Path | None = None,
               only: str | None = None, ledger: _Ledger | None = None, judge_note: str | None = None) -> list[Step]:
    """The plan's steps in the order they run (a variant's parent first)."""
    ledger = ledger or _Ledger(out / STATE_FILE)
    builder = _PlanSteps(plan, plan_file, store, out, data_dir)
    order = _variant_order(plan)
    if only is not None:
        if only not in plan.variants:
            raise EvalkitError(f"--only: no variant {only!r} in the plan (variants: {', '.join(plan.variants)})")
        order = [v for v in plan._chain(only)[::-1]]  # the variant and what it starts from
    steps: list[Step] = []
    for variant in order:
        for seed in plan.seeds_of(variant):
            steps.append(builder.finetune(variant, seed))
            if only is not None and variant != only:
                continue  # a parent is trained (it is needed), not evaluated
            gen = builder.generate(variant, seed)
            steps.append(gen)
            if plan.evaluations.mmlu is not None:
                steps.append(builder.mmlu(variant, seed))
            if plan.evaluations.judge is not None and judge_note is None:
                steps.append(builder.judge(variant, seed, gen.key, ledger))
    if plan.evaluations.bundle is not None and only is None:
        steps.append(builder.bundle([plan.model_name(v, s) for v in order for s in plan.seeds_of(v)]))
    return steps


def _variant_order(plan: Plan) -> list[str]:
    order: list[str] = []
    for name in plan.variants:
        for v in plan._chain(name)[::-1]:
            if v not in order:
                order.append(v)
    return order


def run_experiment(
    plan: Plan,
    plan_file: str | Path,
    store: ResultsStore,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    only: str | None = None,
    progress: bool = True,
    report: bool = True,
) -> ExperimentResult:
    """Run every unfinished step of ``plan``, then compare each variant with the baseline."""
    from evalkit.experiment.comparison import compare_variants

    out, plan_file = Path(out), Path(plan_file)
    data_dir = Path(data_dir) if data_dir is not None else None
    result = ExperimentResult(plan, out)
    judge_note = judge_unreachable(plan.evaluations.judge) if plan.evaluations.judge is not None else None
    if judge_note:
        result.notes.append(judge_note)
    ledger = _Ledger(out / STATE_FILE)
    steps = plan_steps(plan, plan_file, store, out, data_dir=data_dir, only=only, ledger=ledger, judge_note=judge_note)
    _run_steps(steps, ledger, result, store, progress)
    if only is None:
        result.rows, notes = compare_variants(store, plan)
        result.notes += notes
        if report:
            from evalkit.experiment.report import write_report

            result.report = write_report(store, plan, result, out / "report.html")
    return result


def _run_steps(steps: list[Step], ledger: _Ledger, result: ExperimentResult, store: ResultsStore, progress: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from evalkit.output import console

    todo = []
    for step in steps:
        entry = ledger.finished(step)
        if entry is not None and _still_there(store, step, entry.get("result")):
            result.steps.append(StepOutcome(step.key, step.kind, step.variant, step.seed, "skipped", entry.get("result")))
        else:
            todo.append(step)
    bar = Progress(TextColumn("experiment"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} cost units"),
                   TextColumn("{task.fields[step]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=console(stderr=True), disable=not progress)
    with bar:
        task = bar.add_task("plan", total=sum(s.weight for s in todo) or 1, step="")
        for step in todo:
            bar.update(task, step=step.key)
            run_id = step.action()
            ledger.record(step, run_id)
            result.steps.append(StepOutcome(step.key, step.kind, step.variant, step.seed, "done", run_id))
            bar.advance(task, step.weight)
            if not progress:
                print(f"experiment: {step.key} done ({run_id})", file=sys.stderr)


def _still_there(store: ResultsStore, step: Step, result: str | None) -> bool:
    """A step recorded as finished counts only while its run is in this store (a store deleted
    or swapped re-runs it)."""
    if step.kind == "bundle" or result is None:
        return True
    try:
        return store.get_run(result, with_metrics=False).status == "done"
    except EvalkitError:
        return False
