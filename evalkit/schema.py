"""What a run of each kind holds: the one typed definition every part of evalkit reads.

Per run kind (README, "Run kinds, metric names and sample payloads"):

* a **config model**: the settings a producer records (unknown keys are kept, known ones typed);
* the **comparability settings**: the config entries that change the numbers, so two runs may
  be ranked or compared together only when these agree (:func:`comparability_values`);
* the **metric names** (exact names and ``prefix/<part>`` families);
* the **sample payload model**: one item's fields and their types.

The results store validates every run, metric and sample against these models on write
(:func:`validate_config`, :func:`validate_metric`, :func:`validate_sample`), so a value of the
wrong type or a NaN/Infinity is refused with a message naming run, item and field instead of
being stored. Floats are finite everywhere (pydantic's ``allow_inf_nan=False``); the one
documented exception is a free-text field (:data:`NAN_MEANS_MISSING`) where pandas writes NaN for
"no value": it is stored as null. Identifiers that become file names are checked by
:func:`check_safe_id`. :func:`model_hash` is the one content hash of a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

RUN_KINDS = ("finetune", "generate", "mmlu", "judge-score", "judge-pairwise", "human", "arena")
STATUSES = ("running", "done", "failed", "interrupted")


class SchemaError(EvalkitError):
    """A run, metric or sample that does not match its kind's schema."""


# -- identifiers ------------------------------------------------------------------------------

_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_safe_id(value: Any, what: str, *, allow_slash: bool = False) -> str:
    """``value`` if it is usable as (part of) a file name: a non-empty string without NUL or
    control characters, without ``..`` and without path separators (``allow_slash``: ``/`` may
    separate parts, as in a hub id ``org/model`` or lm-eval's ``pretrained=/path``, but no part may
    be ``.`` or ``..``). Raises :class:`SchemaError` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{what} must be a non-empty string, not {value!r}")
    text = value.replace("/", "") if allow_slash else value
    bad = _UNSAFE_CHARS.search(text)
    if bad:
        raise SchemaError(f"{what} {value!r} contains {bad.group()!r}: ids may not hold path separators or control characters")
    if allow_slash:
        # a name with parts (a hub id "org/model", lm-eval's pretrained=/path) only must not climb
        if any(p in (".", "..") for p in value.split("/")):
            raise SchemaError(f"{what} {value!r} is not a safe name (no '.' or '..' parts)")
    elif ".." in value or value == "." or value.startswith("-"):
        raise SchemaError(f"{what} {value!r} is not a safe name (no '..', not '.', no leading '-')")
    return value


def is_safe_id(value: Any, *, allow_slash: bool = False) -> bool:
    try:
        check_safe_id(value, "id", allow_slash=allow_slash)
    except SchemaError:
        return False
    return True


# -- comparability ----------------------------------------------------------------------------

# kind -> (setting, config key it is read from, label). Equal settings = numbers that may be
# ranked or compared together; a setting absent from both runs' configs is equal. Each config key
# is the one the kind's producers write (the lm-eval importer records ``task`` where evalkit's
# own MMLU runs record ``eval_set``: both name the task set, so both feed ``eval_set``).
COMPARABILITY: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "mmlu": (
        ("eval_set", ("eval_set", "task"), "eval set"),
        ("data", ("data",), "data"),
        ("num_fewshot", ("num_fewshot",), "few-shot"),
        ("limit", ("limit",), "limit per subject"),
        ("template_hash", ("template_hash",), "prompt template hash"),
        ("lm_eval_version", ("lm_eval_version",), "lm-eval version"),
        ("precision", ("precision",), "precision"),
    ),
    "judge-score": (
        ("eval_set", ("eval_set",), "eval set"),
        ("judge_model", ("judge_model",), "judge model"),
        ("judge_digest", ("judge_digest",), "judge digest"),
        ("template_hash", ("template_hash",), "prompt template hash"),
        ("options", ("options",), "judge options"),
    ),
    "judge-pairwise": (
        ("eval_set", ("eval_set",), "eval set"),
        ("judge_model", ("judge_model",), "judge model"),
        ("judge_digest", ("judge_digest",), "judge digest"),
        ("template_hash", ("template_hash",), "prompt template hash"),
        ("options", ("options",), "judge options"),
        ("reference", ("reference",), "baseline"),
        ("order", ("order",), "answer order"),
        ("order_seed", ("order_seed",), "order seed"),
        ("verdict", ("verdict",), "verdict"),
    ),
    "generate": (
        ("eval_set", ("eval_set",), "eval set"),
        ("records_hash", ("records_hash",), "eval set hash"),
        ("template_hash", ("prompt_template_hash",), "prompt template hash"),
        ("max_new_tokens", ("max_new_tokens",), "max new tokens"),
        ("temperature", ("temperature",), "temperature"),
        ("top_k", ("top_k",), "top-k"),
        ("precision", ("precision",), "precision"),
    ),
    "finetune": (),
    "human": (),
    "arena": (),
}

# Per-item fields that must agree where two runs are compared item by item: what each item was
# measured against (the rendered MMLU prompt and gold letter, the judge's reference output).
ITEM_COMPARABILITY: dict[str, tuple[tuple[str, str], ...]] = {
    "mmlu": (("prompt", "prompts (different few-shot examples or template)"), ("gold", "gold answers (different data)")),
    "judge-score": (("reference", "reference outputs"),),
    "judge-pairwise": (("output_1", "reference outputs"), ("generator_1", "reference models")),
}

SETTING_LABELS = {name: label for settings in COMPARABILITY.values() for name, _, label in settings}


def _setting_value(name: str, value: Any) -> Any:
    # Descriptions: only the identity part matters (where MMLU data came from and its checksum,
    # not the folder it sat in; which reference model, not a hash over the items judged, since
    # each item's reference is checked where items are paired).
    if name == "data" and isinstance(value, dict):
        return {part: value.get(part) for part in ("source", "sha256")}
    if name == "reference" and isinstance(value, dict):
        return value.get("source")
    # runs from before precision was recorded (and lm-eval's own files) computed in fp32, so they
    # stay comparable with fp32 runs; a bf16 run is a setup of its own
    if name == "precision" and value in (None, ""):
        return "fp32"
    return None if value == "" else value


def comparability_values(kind: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """setting -> value, for the settings that make numbers of ``kind`` comparable."""
    config = config or {}
    out = {}
    for name, keys, _ in COMPARABILITY.get(kind, ()):
        value = next((config[k] for k in keys if config.get(k) not in (None, "")), None)
        out[name] = _setting_value(name, value)
    return out


def config_differences(kind: str, config_a: dict[str, Any], config_b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value in A, value in B) for every comparability setting that differs."""
    a, b = comparability_values(kind, config_a), comparability_values(kind, config_b)
    return [(name, a[name], b[name]) for name in a if a[name] != b[name]]


def comparability_key(kind: str, config: dict[str, Any] | None, items_hash: str | None = None) -> str:
    """Equal keys = numbers that may be ranked in one column (settings and, when given, item set)."""
    values = comparability_values(kind, config)
    text = json.dumps([kind, sorted(values.items()), items_hash], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# -- metrics ----------------------------------------------------------------------------------

METRIC_NAMES: dict[str, tuple[str, ...]] = {
    # DPO fine-tunes (finetune --method dpo) also record their validation preference accuracy and reward margin
    "finetune": ("train_loss", "val_loss", "tokens_seen", "steps", "val_preference_accuracy", "val_reward_margin"),
    "generate": ("n", "tokens_per_second", "avg_length"),
    "mmlu": ("acc", "acc/*"),
    "judge-score": ("score_mean", "parse_rate", "score_median", "score_dist/*"),
    "judge-pairwise": (
        "win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate",
        "avg_length", "length_controlled_winrate", "parse_rate",
    ),
    "human": ("n_votes", "n_raters", "inter_rater_agreement", "inter_rater_kappa", "accuracy"),
    "arena": ("bt_rating/*", "bt_ci_low/*", "bt_ci_high/*", "battles/*"),
}


def metric_name_known(kind: str, name: str) -> bool:
    for pattern in METRIC_NAMES.get(kind, ()):
        if pattern.endswith("/*") and name.startswith(pattern[:-1]) and len(name) > len(pattern) - 1:
            return True
        if name == pattern:
            return True
    return False


# Free-text fields where a NaN means "no value" (pandas writes NaN for a missing cell, and
# AlpacaEval's annotation files come from pandas): stored as null. Everywhere else a NaN or an
# Infinity is refused.
NAN_MEANS_MISSING: dict[str, frozenset[str]] = {
    "judge-pairwise": frozenset({"raw_completion", "annotator", "dataset"}),
    "human": frozenset({"comment"}),
}


# -- validation -------------------------------------------------------------------------------


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _first_non_finite(value: Any, path: str) -> str | None:
    """The JSON path of the first NaN/Infinity inside ``value`` (None when there is none).

    The C encoder with ``allow_nan=False`` finds out whether there is one at all (a 14,042-sample
    import: 0.3 s instead of 1.7 s for walking every value in Python); only then is the value
    walked to name the field."""
    try:
        json.dumps(value, allow_nan=False, check_circular=False)
        return None
    except (ValueError, TypeError, RecursionError):  # a NaN/Infinity, or something JSON cannot hold: walk it
        return _walk_non_finite(value, path)


def _walk_non_finite(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _walk_non_finite(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _walk_non_finite(v, f"{path}[{i}]")
            if found:
                return found
    return None


_MODELS: Any = None


def _models() -> Any:
    # the pydantic models are built on first validation, not on import (see _schema_models)
    global _MODELS
    if _MODELS is None:
        from evalkit import _schema_models

        _MODELS = _schema_models
    return _MODELS


def __getattr__(name: str) -> Any:
    # schema.CONFIG_MODELS, schema.MmluPayload, ... still resolve, loading the models on demand
    if not name.startswith("__"):
        models = _models()
        if hasattr(models, name):
            return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _describe(error: Any) -> tuple[str, str]:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "value"
    value = first.get("input")
    return field, f"{first.get('msg', 'invalid')} (got {value!r:.80})"


def check_kind(kind: Any, where: str = "run") -> str:
    if kind not in RUN_KINDS:
        raise SchemaError(f"{where}: unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
    return kind


def check_status(status: Any, where: str = "run") -> str:
    if status not in STATUSES:
        raise SchemaError(f"{where}: unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def validate_config(kind: str, config: Any, *, where: str = "run") -> dict[str, Any]:
    """The config as stored: a JSON object of finite values matching the kind's config model."""
    check_kind(kind, where)
    if not isinstance(config, dict):
        raise SchemaError(f"{where}: field 'config' must be a JSON object, not {type(config).__name__}")
    bad = _first_non_finite(config, "")
    if bad:
        raise SchemaError(f"{where}: field 'config.{bad}' is NaN or Infinity; only finite numbers are stored")
    models = _models()
    try:
        models.CONFIG_MODELS[kind].model_validate(config)
    except models.ValidationError as exc:
        field, msg = _describe(exc)
        raise SchemaError(f"{where}: field 'config.{field}': {msg}") from None
    return config


def validate_metric(kind: str, name: Any, value: float | None, stderr: float | None, n: int | None, *, where: str = "run") -> None:
    if not isinstance(name, str) or not metric_name_known(kind, name):
        expected = ", ".join(METRIC_NAMES.get(kind, ()))
        raise SchemaError(f"{where}: unknown {kind} metric {name!r}; expected {expected}")
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    models = _models()
    try:
        models.MetricModel(value=value, stderr=stderr, n=n)
    except models.ValidationError as exc:
        field, msg = _describe(exc)
        raise SchemaError(f"{where}: metric {name!r}, field {field!r}: {msg}; a number that cannot be trusted is not stored") from None


def validate_sample(kind: str, item_id: Any, payload: Any, *, where: str = "run") -> dict[str, Any]:
    """The payload as it is stored (NaN in a :data:`NAN_MEANS_MISSING` field becomes null);
    raises :class:`SchemaError` naming run, item and field."""
    if not isinstance(item_id, str) or not item_id or "\x00" in item_id:
        raise SchemaError(f"{where}: item id must be a non-empty string without NUL, not {item_id!r}")
    if not isinstance(payload, dict):
        raise SchemaError(f"{where}, item {item_id!r}: the payload must be a JSON object, not {type(payload).__name__}")
    missing_ok = NAN_MEANS_MISSING.get(kind, frozenset())
    if any(_is_nan(payload.get(k)) for k in missing_ok):
        payload = {k: (None if k in missing_ok and _is_nan(v) else v) for k, v in payload.items()}
    bad = _first_non_finite(payload, "")
    if bad:
        raise SchemaError(f"{where}, item {item_id!r}: field {bad!r} is NaN or Infinity; only finite numbers are stored")
    models = _models()
    try:
        models.PAYLOAD_MODELS[kind].model_validate(payload)
    except models.ValidationError as exc:
        field, msg = _describe(exc)
        raise SchemaError(f"{where}, item {item_id!r}: field {field!r}: {msg}") from None
    return payload


class CheckedSamples(list):
    """Samples as :func:`validate_samples` returned them for ``kind``: the store writes these
    without checking them a second time (an importer checks a whole run before creating it)."""

    def __init__(self, kind: str, items: Iterable[tuple[str, dict[str, Any]]]):
        super().__init__(items)
        self.kind = kind


def validate_samples(kind: str, items: Iterable[tuple[str, dict[str, Any]]], *, where: str = "run") -> CheckedSamples:
    """Every sample checked before any is written (imports call this before creating a run)."""
    return CheckedSamples(kind, ((item_id, validate_sample(kind, item_id, payload, where=where)) for item_id, payload in items))


# -- model hash -------------------------------------------------------------------------------

# what makes a checkpoint folder's weights (tokenizer files do not change the numbers' model)
WEIGHT_GLOBS = ("config.json", "*.safetensors", "*.bin", "*.pth", "*.safetensors.index.json", "*.bin.index.json")


def _file_sha256(path: Path, cache: Any = None) -> str:
    """sha256 of a file, remembered in ``cache`` (the store's) by (path, size, mtime) so a large
    checkpoint is read once, not on every run."""
    stat = path.stat()
    key = f"file-sha256:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if cache is not None and (hit := cache.cache_get(key)):
        return hit
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if cache is not None:
        cache.cache_put(key, value)
    return value


def model_hash(checkpoint: str | Path, *, cache: Any = None) -> str | None:
    """The content hash of a checkpoint's weights: sha256 of a checkpoint file, or of the
    ``name\\0sha256\\0`` list of a folder's weight files; None for a hub id (no local weights).
    Every run kind that records a model hash uses this one function."""
    path = Path(str(checkpoint)).expanduser()
    if path.is_file():
        return _file_sha256(path, cache)
    if not path.is_dir():
        return None
    files = sorted({p for pattern in WEIGHT_GLOBS for p in path.glob(pattern) if p.is_file()})
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{_file_sha256(p, cache)}\0".encode())
    return digest.hexdigest()
