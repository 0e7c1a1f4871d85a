"""``run_judge``: judge a ``generate`` run with an Ollama model and store a judge run.

Two modes:

* ``score`` (the book's evaluation): the judge rates each response against the reference
  output, 0-100, through a JSON schema. An empty response scores 0 without a call.
  Metrics: ``score_mean`` (stderr, n), ``parse_rate``, ``score_median`` and the distribution
  ``score_dist/<lo>-<hi>`` (items per tenth of the scale).
* ``pairwise`` (AlpacaEval's): the judge compares the response (``output_2``) with a
  reference (``output_1``); preference in [1, 2], 2 = model better. Weighted verdicts from
  the first token's logprobs, or discrete ones (1, 1.5, 2) through a JSON schema when the
  server returns no logprobs or ``discrete=True``. Identical outputs are 1.5 without a call.
  ``order="swap"`` judges both orders and averages them (FastChat), ``order="random"`` one
  order chosen by a seed per instruction, the same for every model (AlpacaEval). Metrics:
  AlpacaEval's, from :func:`evalkit.metrics.win_rate.pairwise_metrics`.

Answers that do not parse are retried (with a corrective turn) a bounded number of times,
then read leniently, else stored as ``unparsed`` with the raw text. Each item is written to
the store as it finishes, so a killed run keeps its items and the same call resumes it.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, InputError
from evalkit.judge.eval_sets import EvalSet
from evalkit.judge.ollama_client import Answer, CacheMiss, OllamaJudgeClient
from evalkit.judge.templates import RETRY_MESSAGE, Template, describe, load_template
from evalkit.judge.verdicts import (
    SCORE_SCHEMA,
    lenient_discrete,
    lenient_score,
    parse_discrete,
    parse_score,
    verdict_schema,
    weighted_preference,
)
from evalkit.store import Metric, ResultsStore, content_hash

MODES = ("score", "pairwise")
ORDERS = ("swap", "random")
BOOK_OPTIONS = {"seed": 123, "temperature": 0.0, "num_ctx": 2048}  # chapter 7's query_model
PAIRWISE_NUM_CTX = 4096  # two outputs and a template rarely fit the book's 2048
TOP_LOGPROBS = 5  # as AlpacaEval asks
JSON_NUM_PREDICT = 128  # a JSON verdict is a few tokens; this bounds a runaway answer
CACHED_BATCH = 64  # items answered from the cache, written per transaction
CONTEXT_MARGIN = 8  # an answer whose prompt and output came this close to num_ctx was likely cut


@dataclass
class JudgeItem:
    id: str
    instruction: str
    input: str
    reference: str
    reference_generator: str | None
    response: str
    generator: str | None


# -- building the items ---------------------------------------------------------------------


def _generate_samples(store: ResultsStore, run_id: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    record = store.get_run(run_id, with_metrics=False)
    if record.kind != "generate":
        raise EvalkitError(f"run {record.id} is a {record.kind} run; the judge needs a generate run (responses)")
    return record, dict(store.samples(record.id))


def _reference_map(store: ResultsStore, reference: Any) -> tuple[dict[str, tuple[str, str | None]], str]:
    """item id -> (reference text, its generator), and a description for the run config."""
    if isinstance(reference, EvalSet):
        return {r["id"]: (r["output"], r.get("generator")) for r in reference.records}, f"eval-set:{reference.name}"
    if isinstance(reference, (str, Path)) and Path(reference).is_file():
        from evalkit.interop.responses import read_responses
        from evalkit.items import instruction_item_id

        records, _field = read_responses(reference)
        name = Path(reference).stem
        refs = {
            instruction_item_id(r["instruction"], r.get("input") or ""): (r["response"], r.get("generator") or name)
            for r in records
        }
        return refs, f"file:{Path(reference).name}"
    record, samples = _generate_samples(store, str(reference))
    return {i: (p.get("response") or "", record.model) for i, p in samples.items()}, f"run:{record.id}"


def build_items(
    store: ResultsStore,
    responses_run: str,
    *,
    eval_set: EvalSet | None = None,
    reference: Any = None,
    need_reference: bool = True,
) -> tuple[Any, list[JudgeItem], str]:
    """The items to judge: the responses run's samples (restricted to the eval set's
    instructions when one is given) with their references."""
    record, samples = _generate_samples(store, responses_run)
    if not samples:
        raise EvalkitError(f"generate run {record.id} has no responses")
    ids = list(samples)
    if eval_set is not None:
        missing = [r for r in eval_set.records if r["id"] not in samples]
        if missing:
            raise InputError(
                f"{len(missing)} of the eval set's {len(eval_set.records)} instructions have no response in run "
                f"{record.id}, e.g. {missing[0]['instruction'][:80]!r}",
                field="instruction",
            )
        ids = [r["id"] for r in eval_set.records]
    refs: dict[str, tuple[str, str | None]] = {}
    ref_name = "responses:output"
    if reference is not None:
        refs, ref_name = _reference_map(store, reference)
    elif eval_set is not None:
        refs, ref_name = _reference_map(store, eval_set)
    default_generator = record.config.get("reference_generator") or "reference"
    items = []
    for item_id in ids:
        payload = samples[item_id]
        text, generator = refs.get(item_id, (None, None))
        if text is None and reference is None:
            text = payload.get("output") or ""
        if need_reference and not (text or "").strip():
            raise InputError(
                f"no reference output for {payload.get('instruction', '')[:80]!r} (item {item_id}); give --reference "
                "FILE|RUN_ID or an --eval-set with reference outputs",
                field="output",
            )
        items.append(
            JudgeItem(
                id=item_id,
                instruction=payload.get("instruction") or "",
                input=payload.get("input") or "",
                reference=text or "",
                reference_generator=generator or default_generator,
                response=payload.get("response") or "",
                generator=record.model,
            )
        )
    return record, items, ref_name


# -- judging one item -----------------------------------------------------------------------


class _Judge:
    """Judges items with one client and template (shared by the worker threads)."""

    def __init__(self, client: OllamaJudgeClient, template: Template, mode: str, options: dict[str, Any], *,
                 order: str, discrete: bool, seed: int, parse_retries: int, num_ctx: int):
        self.client = client
        self.template = template
        self.mode = mode
        self.options = options
        self.order = order
        self.seed = seed
        self.parse_retries = parse_retries
        self.num_ctx = num_ctx
        self.use_logprobs = mode == "pairwise" and not discrete
        self.no_logprobs_seen = threading.Event()
        self.unparsed = 0
        self.truncated = 0
        self._lock = threading.Lock()

    # one request, the answer's raw record
    def _raw(self, answer: Answer, kind: str) -> dict[str, Any]:
        raw: dict[str, Any] = {"kind": kind, "content": answer.content}
        if answer.logprobs:
            raw["top_logprobs"] = answer.logprobs[0].get("top_logprobs")
        used = (answer.prompt_eval_count or 0) + (answer.eval_count or 0)
        if answer.prompt_eval_count is not None and used >= self.num_ctx - CONTEXT_MARGIN:
            raw["truncated"] = True
            with self._lock:
                self.truncated += 1
        return raw

    def _ask_parsed(self, messages: list[dict[str, str]], strict, lenient, schema: Any) -> tuple[Any, list[dict[str, Any]]]:
        """Structured request; corrective retries; then the lenient parser; else None."""
        structured = self.template.format == "schema"
        options = {**self.options, "num_predict": JSON_NUM_PREDICT}
        raws, answers = [], []
        for attempt in range(self.parse_retries + 1):
            answer = self.client.chat(messages, options=options, format=schema if structured else None)
            raws.append(self._raw(answer, "structured" if structured else "text"))
            answers.append(answer.content)
            value = strict(answer.content)
            if value is not None:
                return value, raws
            if attempt < self.parse_retries:
                retry = RETRY_MESSAGE.format(answer_format=self.template.answer_format("schema" if structured else "none"))
                messages = [*messages, {"role": "assistant", "content": answer.content}, {"role": "user", "content": retry}]
        for text in answers:
            value = lenient(text)
            if value is not None:
                raws[-1]["parsed"] = "lenient"
                return value, raws
        return None, raws

    def values(self, item: JudgeItem, **texts: str) -> dict[str, str]:
        return {"instruction": item.instruction, "input": item.input, **texts}

    def score(self, item: JudgeItem) -> dict[str, Any]:
        payload = {
            "instruction": item.instruction,
            "input": item.input,
            "reference": item.reference,
            "response": item.response,
        }
        if not item.response.strip():
            return {**payload, "score": 0, "status": "empty", "raw": []}
        answer_kind = "schema" if self.template.format == "schema" else "none"
        messages = self.template.render(self.values(item, reference=item.reference, response=item.response), answer_kind)
        structured = self.template.format == "schema"
        score, raws = self._ask_parsed(
            messages, lambda t: parse_score(t, structured), lenient_score, SCORE_SCHEMA
        )
        if score is None:
            self._count_unparsed()
        return {**payload, "score": score, "status": "ok" if score is not None else "unparsed", "raw": raws}

    def _count_unparsed(self) -> None:
        with self._lock:
            self.unparsed += 1

    def swap_first(self, item: JudgeItem) -> bool:
        """AlpacaEval's way: one order per instruction from a seed, the same for every model."""
        digest = hashlib.sha256(f"{self.seed}\x00{item.instruction}\x00{item.input}".encode()).digest()
        return bool(digest[0] & 1)

    def _one_order(self, item: JudgeItem, swapped: bool) -> tuple[float | None, dict[str, Any]]:
        """Preference for output_2 (the model) over output_1 (the reference), judged with the
        two shown in the given order, and the raw answer."""
        first, second = (item.response, item.reference) if swapped else (item.reference, item.response)
        values = self.values(item, output_1=first, output_2=second)
        verdict = self.template.verdict
        shown: float | None = None
        weighted: dict[str, Any] | None = None
        if self.use_logprobs and not self.no_logprobs_seen.is_set():
            messages = self.template.render(values, "logprobs")
            options = {**self.options, "num_predict": 1}
            answer = self.client.chat(messages, options=options, logprobs=True, top_logprobs=TOP_LOGPROBS)
            weighted = self._raw(answer, "logprobs")
            if answer.logprobs:
                shown, weighted["probabilities"] = weighted_preference(answer.logprobs, verdict)
            else:
                if not self.no_logprobs_seen.is_set():
                    self.no_logprobs_seen.set()  # an Ollama before 0.12.11: ask for discrete verdicts
                    _warn("the judge server returned no logprobs (Ollama 0.12.11 or later does); using discrete verdicts")
        if weighted is not None and "probabilities" in weighted:
            raw = weighted  # both verdict tokens missing stays unparsed, as in AlpacaEval
        else:
            structured = self.template.format == "schema"
            messages = self.template.render(values, "schema" if structured else "none")
            shown, raws = self._ask_parsed(
                messages,
                lambda t: parse_discrete(t, verdict, structured),
                lambda t: lenient_discrete(t, verdict),
                verdict_schema(verdict),
            )
            raw = {"kind": "discrete", "attempts": raws}
            if weighted is not None:
                raw["without_logprobs"] = weighted
        raw["order"] = "model-first" if swapped else "reference-first"
        if shown is None:
            return None, raw
        return (3.0 - shown if swapped else shown), raw

    def pairwise(self, item: JudgeItem) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "instruction": item.instruction,
            "input": item.input,
            "output_1": item.reference,
            "generator_1": item.reference_generator,
            "output_2": item.response,
            "generator_2": item.generator,
        }
        if item.reference == item.response:
            return {**payload, "preference": 1.5, "status": "identical", "raw_completion": [], "orders": [], "order_preferences": []}
        orders = [False, True] if self.order == "swap" else [self.swap_first(item)]
        results = [self._one_order(item, swapped) for swapped in orders]
        prefs = [p for p, _ in results]
        raws = [r for _, r in results]
        parsed = all(p is not None for p in prefs)
        if not parsed:
            self._count_unparsed()
        return {
            **payload,
            # never half an answer: with --order swap, one unreadable order makes the item unparsed
            "preference": sum(prefs) / len(prefs) if parsed else None,  # type: ignore[arg-type]
            "status": "ok" if parsed else "unparsed",
            "raw_completion": raws,
            "orders": [r["order"] for r in raws],
            "order_preferences": prefs,
        }

    def __call__(self, item: JudgeItem) -> dict[str, Any]:
        return self.score(item) if self.mode == "score" else self.pairwise(item)


# -- metrics --------------------------------------------------------------------------------


def score_metrics(samples: list[dict[str, Any]]) -> dict[str, Metric]:
    """Mean with its standard error (sample sd / sqrt(n)), parse rate and the distribution."""
    scores = [s["score"] for s in samples if s.get("score") is not None]
    asked = [s for s in samples if s.get("status") in ("ok", "unparsed")]
    n = len(scores)
    mean = statistics.fmean(scores) if scores else None
    stderr = statistics.stdev(scores) / math.sqrt(n) if n > 1 else None
    parsed = sum(1 for s in asked if s.get("status") == "ok")
    metrics = {
        "score_mean": Metric(mean, stderr, n),
        "parse_rate": Metric(parsed / len(asked) if asked else 1.0, None, len(asked)),
        "score_median": Metric(statistics.median(scores) if scores else None, None, n),
    }
    for lo in range(0, 100, 10):
        hi = 100 if lo == 90 else lo + 9
        count = sum(1 for s in scores if lo <= s <= hi)
        metrics[f"score_dist/{lo:02d}-{hi:02d}"] = Metric(float(count), None, n)
    return metrics


def pairwise_run_metrics(samples: list[dict[str, Any]]) -> dict[str, Metric]:
    from evalkit.metrics.win_rate import pairwise_metrics

    metrics = dict(pairwise_metrics(samples))
    if "parse_rate" not in metrics:
        asked = [s for s in samples if s.get("status") in ("ok", "unparsed")]
        parsed = sum(1 for s in asked if s.get("status") == "ok")
        metrics["parse_rate"] = Metric(parsed / len(asked) if asked else 1.0, None, len(asked))
    return metrics


# -- progress -------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar with items/s, cache hits, retries and unparsed answers (stderr)."""

    def __init__(self, total: int, done: int, description: str, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()
        self.done_at_start = done
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from evalkit.output import console

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} items/s"),
            TextColumn("cache {task.fields[hits]}  retries {task.fields[retries]}  unparsed {task.fields[unparsed]}"),
            TimeElapsedColumn(),
            console=console(stderr=True),
        )
        self.task = self.progress.add_task(description, total=total, completed=done, rate="-", hits=0, retries=0, unparsed=0)
        self.progress.start()

    def update(self, completed: int, *, hits: int, retries: int, unparsed: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (completed - self.done_at_start) / elapsed
        self.progress.update(self.task, completed=completed, rate=f"{rate:.1f}", hits=hits, retries=retries, unparsed=unparsed)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


# -- the run --------------------------------------------------------------------------------


def _warn(message: str) -> None:
    print(f"evalkit: warning: {message}", file=sys.stderr)


def _estimate_tokens(messages: list[dict[str, str]]) -> int:
    # No judge tokenizer here; 3 bytes per token over-estimates for English on Llama-style
    # vocabularies, which is the safe side for a "may be truncated" warning.
    return sum(len(m["content"].encode("utf-8")) for m in messages) // 3 + 8 * len(messages)


def run_judge(
    store: ResultsStore,
    *,
    responses_run: str,
    judge_model: str = "llama3",
    mode: str | None = None,
    eval_set: EvalSet | None = None,
    reference: Any = None,
    hosts: list[str] | None = None,
    concurrency: int = 4,
    prompt_template: str | Path | None = None,
    refresh: bool = False,
    order: str | None = None,
    discrete: bool = False,
    seed: int = 123,
    temperature: float = 0.0,
    num_ctx: int | None = None,
    timeout: float = 300.0,
    retries: int = 5,
    retry_backoff: float = 0.5,
    parse_retries: int = 2,
    progress: bool = True,
) -> str:
    """Judge the responses of a ``generate`` run; returns the judge run's id.

    A finished run with the same configuration is reused (``refresh`` starts a new one and
    bypasses the answer cache); an unfinished one is resumed.
    """
    eval_name = eval_set.name if eval_set is not None else None
    mode = mode or (eval_set.default_mode if eval_set is not None else "score")
    if mode not in MODES:
        raise EvalkitError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    order = order or (eval_set.default_order if eval_set is not None else "swap")
    if order not in ORDERS:
        raise EvalkitError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    if concurrency < 1:
        raise EvalkitError("concurrency must be at least 1")
    record, items, ref_name = build_items(store, responses_run, eval_set=eval_set, reference=reference)
    recorded = record.config.get("eval_set")
    if isinstance(recorded, list):  # imported files record the AlpacaEval datasets they hold
        recorded = ",".join(map(str, recorded))
    eval_name = eval_name or recorded or f"run:{record.id}"
    template = load_template(prompt_template, mode)
    num_ctx = num_ctx or (BOOK_OPTIONS["num_ctx"] if mode == "score" else PAIRWISE_NUM_CTX)
    options = {"seed": seed, "temperature": temperature, "num_ctx": num_ctx}
    stop = threading.Event()
    client = OllamaJudgeClient(
        judge_model, hosts, store=store, refresh=refresh, timeout=timeout, retries=retries, backoff=retry_backoff,
        stop=stop, cache_scope={"template": template.hash},
    )
    try:
        info = client.preflight()
        if info.context_length and num_ctx > info.context_length:
            _warn(f"num_ctx {num_ctx} exceeds {judge_model}'s context length {info.context_length}")
        config: dict[str, Any] = {
            "eval_set": eval_name,
            "mode": mode,
            "judge_model": judge_model,
            "judge_digest": info.digest,
            "template": describe(template),
            "template_hash": template.hash,
            "options": options,
            "parse_retries": parse_retries,
            "responses_run": record.id,
            "responses_hash": content_hash([[i.id, i.response] for i in items]),
        }
        if mode == "pairwise":
            config.update(
                order=order,
                verdict="discrete" if discrete else "logprobs",
                reference={"source": ref_name, "hash": content_hash([[i.id, i.reference] for i in items])},
            )
            if order == "random":
                config["order_seed"] = seed
        kind = f"judge-{mode}"
        if not refresh:
            finished = store.find_run(kind, record.model, config)
            if finished is not None:
                return finished.id
        judge = _Judge(client, template, mode, options, order=order, discrete=discrete, seed=seed,
                       parse_retries=parse_retries, num_ctx=num_ctx)
        with store.start_run(kind, record.model, config, resume=not refresh) as run:
            done = run.done_items()
            todo = [i for i in items if i.id not in done]
            _warn_truncation(judge, todo, template, mode, num_ctx)
            _judge_all(run, judge, todo, total=len(items), concurrency=concurrency, stop=stop, progress=progress)
            samples = [p for _, p in run.samples()]
            run.log_metrics(score_metrics(samples) if mode == "score" else pairwise_run_metrics(samples))
            if judge.truncated:
                _warn(
                    f"{judge.truncated} judge prompt(s) filled num_ctx={num_ctx} and were probably truncated; "
                    "raise --num-ctx"
                )
            return run.id
    finally:
        client.close()


def _warn_truncation(judge: _Judge, items: list[JudgeItem], template: Template, mode: str, num_ctx: int) -> None:
    longest = 0
    over = 0
    for item in items:
        if mode == "score":
            texts = judge.values(item, reference=item.reference, response=item.response)
        else:
            texts = judge.values(item, output_1=item.reference, output_2=item.response)
        tokens = _estimate_tokens(template.render(texts, "schema"))
        longest = max(longest, tokens)
        over += tokens > num_ctx - JSON_NUM_PREDICT
    if over:
        _warn(
            f"{over} of {len(items)} judge prompts may not fit num_ctx={num_ctx} (longest ~{longest} tokens) "
            "and may be truncated by Ollama; raise --num-ctx"
        )


def _judge_all(run, judge: _Judge, items: list[JudgeItem], *, total: int, concurrency: int,
               stop: threading.Event, progress: bool) -> None:
    """Judge ``items`` with ``concurrency`` workers; each result is stored as it arrives.

    Items whose answers are all cached are finished here in the calling thread (no hand-off
    to a worker), so a cache-warm re-run costs little more than reading the cache.
    """
    completed = total - len(items)
    bar = _Progress(total, completed, f"judging ({judge.mode})", progress and bool(items))
    stats = judge.client.stats
    pending: dict[cf.Future, JudgeItem] = {}
    ready: list[tuple[str, dict[str, Any]]] = []
    queue = iter(items)
    failure: BaseException | None = None
    executor = cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="judge")

    def store_ready() -> None:
        nonlocal completed
        if ready:
            # everything finished together goes in one transaction
            completed += run.add_samples(ready)
            ready.clear()
            bar.update(completed, hits=stats.cache_hits, retries=stats.retries, unparsed=judge.unparsed)

    try:
        while True:
            # keep a bounded window of work submitted, so Ctrl-C or an error stops quickly
            while failure is None and len(pending) < 2 * concurrency:
                item = next(queue, None)
                if item is None:
                    break
                try:
                    with judge.client.cache_only():
                        ready.append((item.id, judge(item)))
                except CacheMiss:
                    pending[executor.submit(judge, item)] = item
                if len(ready) >= CACHED_BATCH:
                    store_ready()
            store_ready()
            if not pending:
                break
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                item = pending.pop(future)
                try:
                    ready.append((item.id, future.result()))
                except Exception as exc:  # noqa: BLE001 - stop the run, keep what finished
                    if failure is None:
                        failure = exc
                        stop.set()
            store_ready()
    except BaseException:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        bar.close()
        raise
    executor.shutdown(wait=True)
    bar.close()
    if failure is not None:
        if isinstance(failure, EvalkitError):
            raise EvalkitError(f"{failure} ({completed} of {total} items are stored; re-run to resume)") from failure
        raise failure
