"""Rating bundles: anonymous response pairs for blind rating in the browser.

A bundle folder holds ``pairs.jsonl`` (what raters see), ``key.json`` (which model wrote which
side; for the organiser only, the page never reads it) and ``rate.html`` (the rating page with the
pairs embedded). Pair ids start with the bundle id, so ratings of another bundle are recognised.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError, InputError
from evalkit.items import instruction_item_id
from evalkit.records import JsonSyntaxError, read_json_document, read_json_records
from evalkit.store import content_hash, utc_now

if TYPE_CHECKING:
    from evalkit.store import ResultsStore

KEY_FORMAT = "evalkit-pairs-key"
KEY_FORMAT_VERSION = 1
KEY_NOTE = "For the organiser only: which model wrote each side. The rating page never reads this file."


@dataclass
class Pair:
    pair_id: str
    item_id: str
    instruction: str
    input: str
    response_a: str
    response_b: str
    model_a: str
    model_b: str
    run_a: str | None = None
    run_b: str | None = None
    chosen: str | None = None  # "a" or "b" when the better response is known (preference data)

    def public(self) -> dict[str, Any]:
        """What a rater may see: no model names, no answer."""
        return {
            "pair_id": self.pair_id,
            "instruction": self.instruction,
            "input": self.input,
            "response_a": self.response_a,
            "response_b": self.response_b,
        }

    def key_entry(self) -> dict[str, Any]:
        entry = {
            "a": self.model_a,
            "b": self.model_b,
            "item_id": self.item_id,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "instruction": self.instruction,
            "input": self.input,
            "response_a": self.response_a,
            "response_b": self.response_b,
        }
        if self.chosen is not None:
            entry["chosen"] = self.chosen
        return entry


@dataclass
class Bundle:
    bundle_id: str
    pairs: list[Pair]
    source: dict[str, Any]
    title: str = "Which response is better?"
    created_at: str = field(default_factory=utc_now)

    @property
    def models(self) -> list[str]:
        return sorted({p.model_a for p in self.pairs} | {p.model_b for p in self.pairs})

    def key_document(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "format_version": KEY_FORMAT_VERSION,
            "note": KEY_NOTE,
            "bundle": self.bundle_id,
            "title": self.title,
            "created_at": self.created_at,
            "models": self.models,
            "source": self.source,
            "pairs": {p.pair_id: p.key_entry() for p in self.pairs},
        }

    def write(self, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
        """Write pairs.jsonl, key.json and rate.html; refuses to replace another bundle's key
        (ratings made with it could no longer be imported) unless ``force``."""
        from evalkit.human.page import render_rate_page

        out = Path(out_dir)
        key_path = out / "key.json"
        if key_path.exists() and not force:
            try:
                existing = json.loads(key_path.read_text(encoding="utf-8")).get("bundle")
            except (OSError, ValueError, AttributeError):
                existing = None
            if existing != self.bundle_id:
                raise EvalkitError(
                    f"{key_path} belongs to another bundle ({existing}); ratings made with it need it to import. "
                    "Choose another --out folder, or pass --force to replace it"
                )
        out.mkdir(parents=True, exist_ok=True)
        paths = {"pairs": out / "pairs.jsonl", "key": key_path, "page": out / "rate.html"}
        with open(paths["pairs"], "w", encoding="utf-8") as fh:
            for p in self.pairs:
                fh.write(json.dumps(p.public(), ensure_ascii=False) + "\n")
        paths["key"].write_text(json.dumps(self.key_document(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        paths["page"].write_text(render_rate_page(self.bundle_id, self.title, [p.public() for p in self.pairs]), encoding="utf-8")
        return paths


def _assign_ids(pairs: list[Pair], source: dict[str, Any], rng: random.Random) -> str:
    """Shuffle the rating order, then name the bundle by its content and number the pairs."""
    rng.shuffle(pairs)
    bundle_id = content_hash(
        [source, [(p.item_id, p.model_a, p.model_b, p.response_a, p.response_b) for p in pairs]], length=12
    )
    for k, p in enumerate(pairs, start=1):
        p.pair_id = f"{bundle_id[:8]}-{k:04d}"
    return bundle_id


def _oriented(rng: random.Random, left: tuple, right: tuple) -> tuple[tuple, tuple, bool]:
    """Put the two sides in a random order (seeded): returns (a, b, swapped)."""
    if rng.random() < 0.5:
        return right, left, True
    return left, right, False


# -- from generate runs ------------------------------------------------------------------------


def _resolve_runs(
    store: ResultsStore, runs: list[str] | None, models: list[str] | None, eval_set: str | None
) -> list[tuple[str, str]]:
    """(label, run id) of the generate runs to pair, in the order given."""
    chosen: list[tuple[str, str]] = []
    for rid in runs or []:
        record = store.get_run(rid, with_metrics=False)
        if record.kind != "generate":
            raise EvalkitError(f"run {record.id} is a {record.kind} run; pairs need generate runs")
        chosen.append((record.model or record.id, record.id))
    for name in models or []:
        candidates = [r for r in store.list_runs(kind="generate", model=name) if r.status == "done"]
        if eval_set is not None:
            candidates = [r for r in candidates if r.config.get("eval_set") == eval_set]
        if not candidates:
            where = f" on eval set {eval_set!r}" if eval_set is not None else ""
            raise EvalkitError(f"no finished generate run of model {name!r}{where}; see `evalkit runs list --kind generate`")
        chosen.append((name, candidates[-1].id))  # the newest
    seen_runs = set()
    unique = []
    for label, rid in chosen:
        if rid not in seen_runs:
            seen_runs.add(rid)
            unique.append((label, rid))
    labels = [label for label, _ in unique]
    # the same model generated twice (other settings): tell the runs apart by id
    return [(f"{label}@{rid}" if labels.count(label) > 1 else label, rid) for label, rid in unique]


def export_pairs(
    store: ResultsStore,
    *,
    runs: list[str] | None = None,
    models: list[str] | None = None,
    eval_set: str | None = None,
    n: int | None = 100,
    baseline: str | None = None,
    seed: int = 0,
    title: str | None = None,
) -> Bundle:
    """Pairs of responses from generate runs on items every model answered.

    All model pairs per item, or each model against ``baseline`` (a run id or model name).
    ``n`` items are sampled with ``seed`` (None: all); sides and rating order are shuffled.
    """
    runs, models = list(runs or []), list(models or [])
    if baseline is not None:
        # --baseline is a run id or a model name; it joins the models if not among them
        if _is_run(store, baseline):
            runs.insert(0, baseline)
        elif baseline not in models:
            models.insert(0, baseline)
    resolved = _resolve_runs(store, runs, models, eval_set)
    if baseline is not None:
        baseline_run = store.get_run(baseline, with_metrics=False).id if _is_run(store, baseline) else None
        baseline_label = next(
            label for label, rid in resolved if rid == baseline_run or (baseline_run is None and label.split("@")[0] == baseline)
        )
    if len(resolved) < 2:
        raise EvalkitError("pairs need at least two models: pass --runs A,B or --models A,B (or --baseline)")
    responses: dict[str, dict[str, dict[str, Any]]] = {}
    for label, rid in resolved:
        answered = {}
        for item_id, payload in store.samples(rid):
            if payload.get("response") is None or payload.get("instruction") is None:
                continue
            answered[item_id] = payload
        responses[label] = answered
    common = set.intersection(*(set(r) for r in responses.values()))
    if not common:
        raise EvalkitError(
            "the runs share no answered item: " + ", ".join(f"{label} ({rid})" for label, rid in resolved)
        )
    rng = random.Random(seed)
    items = sorted(common)
    if n is not None and n < len(items):
        items = sorted(rng.sample(items, n))
    labels = [label for label, _ in resolved]
    if baseline is not None:
        matchups = [(baseline_label, other) for other in labels if other != baseline_label]
    else:
        matchups = list(itertools.combinations(labels, 2))
    run_of = dict(resolved)
    pairs = []
    for item_id in items:
        for left, right in matchups:
            (ma, pa), (mb, pb), _ = _oriented(rng, (left, responses[left][item_id]), (right, responses[right][item_id]))
            pairs.append(
                Pair(
                    pair_id="",
                    item_id=item_id,
                    instruction=pa["instruction"],
                    input=pa.get("input") or "",
                    response_a=str(pa["response"]),
                    response_b=str(pb["response"]),
                    model_a=ma,
                    model_b=mb,
                    run_a=run_of[ma],
                    run_b=run_of[mb],
                )
            )
    source = {
        "kind": "generate",
        "runs": {label: rid for label, rid in resolved},
        "eval_set": eval_set,
        "n": n,
        "items": len(items),
        "baseline": baseline_label if baseline is not None else None,
        "seed": seed,
    }
    bundle_id = _assign_ids(pairs, source, rng)
    return Bundle(bundle_id, pairs, source, title=title or "Which response is better?")


def _is_run(store: ResultsStore, text: str) -> bool:
    try:
        store.get_run(text, with_metrics=False)
    except EvalkitError:
        return False
    return True


# -- from preference data ----------------------------------------------------------------------


def read_preference_records(path: str | Path) -> list[dict[str, Any]]:
    """Records with ``instruction``, optional ``input``, ``chosen`` and ``rejected`` (a JSON list
    or JSON lines). Errors name the file, the record and the field."""
    path = Path(path)
    try:
        entries = read_json_records(path, objects_only=False)
    except JsonSyntaxError as exc:
        if exc.index is None:
            raise InputError(f"malformed JSON at line {exc.line}: {exc.reason}", path=path) from exc
        raise InputError(f"malformed JSON: {exc.reason}", path=path, record=f"on line {exc.line}") from exc
    out = []
    for entry in entries:
        record, where = entry.value, entry.index if entry.line is None else entry.line
        if not isinstance(record, dict):
            raise InputError("expected a JSON object", path=path, record=where)
        for name in ("instruction", "chosen", "rejected"):
            if not isinstance(record.get(name), str):
                raise InputError("missing or not a string", path=path, record=where, field=name)
        if record.get("input") is not None and not isinstance(record["input"], str):
            raise InputError("not a string", path=path, record=where, field="input")
        out.append(record)
    return out


def pairs_from_preference(
    path: str | Path,
    *,
    n: int | None = 100,
    seed: int = 0,
    chosen_name: str = "chosen",
    rejected_name: str = "rejected",
    title: str | None = None,
) -> Bundle:
    """A bundle of ``chosen`` vs ``rejected`` responses, the known answer kept in the key."""
    if chosen_name == rejected_name:
        raise EvalkitError("the chosen and rejected sides need different names")
    records = read_preference_records(path)
    rng = random.Random(seed)
    indices = list(range(len(records)))
    if n is not None and n < len(indices):
        indices = sorted(rng.sample(indices, n))
    pairs = []
    for k in indices:
        r = records[k]
        (ma, ra), (mb, rb), swapped = _oriented(rng, (chosen_name, r["chosen"]), (rejected_name, r["rejected"]))
        pairs.append(
            Pair(
                pair_id="",
                item_id=instruction_item_id(r["instruction"], r.get("input") or ""),
                instruction=r["instruction"],
                input=r.get("input") or "",
                response_a=ra,
                response_b=rb,
                model_a=ma,
                model_b=mb,
                chosen="b" if swapped else "a",
            )
        )
    source = {
        "kind": "preference",
        "file": str(path),
        "file_sha256": content_hash(Path(path).read_bytes().decode("utf-8"), length=64),
        "records": len(records),
        "n": n,
        "seed": seed,
        "chosen_name": chosen_name,
        "rejected_name": rejected_name,
    }
    bundle_id = _assign_ids(pairs, source, rng)
    return Bundle(bundle_id, pairs, source, title=title or "Which response is better?")


# -- reading a key back ------------------------------------------------------------------------


def load_key(path: str | Path) -> dict[str, Any]:
    """A bundle's key.json, checked."""
    path = Path(path)
    try:
        doc = read_json_document(path, expected="a bundle key (DIR/key.json)")
    except JsonSyntaxError as exc:  # the page's organisers know "malformed JSON" from the ratings import
        raise InputError(f"malformed JSON at line {exc.line}: {exc.reason}", path=path) from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise InputError(f"not a bundle key (expected \"format\": \"{KEY_FORMAT}\"; pass DIR/key.json)", path=path)
    if int(doc.get("format_version", 0)) > KEY_FORMAT_VERSION:
        raise InputError(f"key format version {doc['format_version']} is newer than this evalkit", path=path)
    pairs = doc.get("pairs")
    if not isinstance(pairs, dict) or not pairs:
        raise InputError("no pairs", path=path, field="pairs")
    for pair_id, entry in pairs.items():
        for name in ("a", "b", "instruction", "response_a", "response_b"):
            if name not in entry:
                raise InputError("missing", path=path, record=f"pair {pair_id}", field=name)
    return doc
