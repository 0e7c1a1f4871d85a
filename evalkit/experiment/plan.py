"""The experiment plan: a YAML file naming the base model, the data, the evaluations and the
variants to train, validated with pydantic so that a mistake is one line naming the file, the
variant and the field (and nothing runs).

::

    name: ch07                       # prefix of every model name in the store
    base: {model: gpt2-medium}       # or {model: gpt2-tiny, init: random}
    data: book-ch07/instruction-data.json
    finetune: {epochs: 2, batch_size: 8}        # defaults of every variant (`evalkit finetune` options)
    evaluations:
      generate: {max_new_tokens: 256}
      mmlu: {subjects: [abstract_algebra], limit: 50}
      judge: {backend: ollama, model: llama3, mode: score}   # or backend: openai (vLLM, llama.cpp, ...)
      bundle: {n: 50}
    baseline: alpaca
    seeds: [123]
    variants:
      alpaca: {}
      phi3: {style: phi3}
      dpo: {method: dpo, from: alpaca, data: book-ch07/instruction-data-with-preference.json}

Relative data paths are resolved against ``--data-dir`` when given, else the plan's folder; URLs
are kept as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalkit.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TrainingOptions(_Strict):
    """`evalkit finetune` options a plan may set (defaults: the command's)."""

    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=2)
    grad_accum: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    schedule: Literal["constant", "linear", "cosine"] | None = None
    eval_every: int | None = Field(None, ge=1)
    eval_batches: int | None = Field(None, ge=1)
    save_every: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)
    bucket: bool | None = None
    shuffle_seed: int | None = None
    device: str | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16"] | None = None

    def given(self) -> dict[str, Any]:
        """The training options set here (a variant's other fields are not `train` arguments)."""
        return {k: getattr(self, k) for k in TrainingOptions.model_fields if getattr(self, k) is not None}


class Variant(TrainingOptions):
    """One way of fine-tuning: the chapter's exercises are variants (style, masking, LoRA, DPO)."""

    style: str | None = None
    mask_instruction: bool | None = None
    lora_rank: int | None = Field(None, ge=1)
    lora_alpha: float | None = Field(None, gt=0)
    lora_targets: list[str] | None = None
    method: Literal["sft", "dpo"] = "sft"
    data: str | None = None
    start_from: str | None = Field(None, alias="from", description="train on top of another variant's model")
    ref_model: str | None = None
    beta: float | None = Field(None, gt=0)
    seeds: list[int] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _method_options(self) -> "Variant":
        if self.method == "sft" and (self.beta is not None or self.ref_model is not None):
            raise ValueError("beta and ref_model are for method: dpo")
        if self.lora_rank is None and (self.lora_alpha is not None or self.lora_targets is not None):
            raise ValueError("lora_alpha and lora_targets need lora_rank")
        return self


class Base(_Strict):
    model: str
    init: Literal["pretrained", "random"] = "pretrained"
    model_size: str | None = None


class GenerateOptions(_Strict):
    split: Literal["test", "val", "train", "all"] = "test"
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1)


class MmluOptions(_Strict):
    subjects: list[str] | None = None
    categories: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    num_fewshot: int = Field(0, ge=0)
    data: str | None = None
    batch_size: int = Field(1, ge=1)


class JudgeOptions(_Strict):
    backend: Literal["ollama", "openai"] = "ollama"  # `evalkit judge --backend`
    api_key_env: str | None = None  # openai: the environment variable holding the key (never the key itself)
    model: str = "llama3"
    mode: Literal["score", "pairwise"] = "score"
    template: str | None = None
    host: list[str] | None = None
    concurrency: int = Field(4, ge=1)
    timeout: float = Field(300.0, gt=0)


class BundleOptions(_Strict):
    n: int | None = Field(50, ge=1)
    seed: int = 0


class Evaluations(_Strict):
    generate: GenerateOptions = GenerateOptions()
    mmlu: MmluOptions | None = None
    judge: JudgeOptions | None = None
    bundle: BundleOptions | None = None


class CompareOptions(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1)
    bootstrap: int = Field(2000, ge=1)
    seed: int = Field(0, ge=0)


class Plan(_Strict):
    name: str
    base: Base
    data: str | None = None
    finetune: TrainingOptions = TrainingOptions()
    evaluations: Evaluations = Evaluations()
    baseline: str
    seeds: list[int] = Field([123], min_length=1)
    variants: dict[str, Variant] = Field(min_length=1)
    compare: CompareOptions = CompareOptions()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' and '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _references(self) -> "Plan":
        for name, variant in self.variants.items():
            if not _NAME.match(name):
                raise ValueError(f"variant {name!r}: name: use letters, digits, '.', '_' and '-'")
            if variant.start_from is not None:
                if variant.start_from not in self.variants:
                    raise ValueError(f"variant {name!r}: from: no variant {variant.start_from!r}")
                if variant.start_from == name or self._chain(name) is None:
                    raise ValueError(f"variant {name!r}: from: variants start from each other in a cycle")
        if self.baseline not in self.variants:
            raise ValueError(f"baseline: no variant {self.baseline!r} (variants: {', '.join(self.variants)})")
        return self

    def _chain(self, name: str) -> list[str] | None:
        seen = [name]
        while (parent := self.variants[seen[-1]].start_from) is not None:
            if parent in seen:
                return None
            seen.append(parent)
        return seen

    def seeds_of(self, variant: str) -> list[int]:
        return self.variants[variant].seeds or self.seeds

    def model_name(self, variant: str, seed: int) -> str:
        """The variant's model name in the store; the seed is named only when the plan has several."""
        several = len(self.seeds_of(variant)) > 1
        return f"{self.name}-{variant}" + (f"-s{seed}" if several else "")


def _location(loc: tuple) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-after")]
    if len(parts) >= 2 and parts[0] == "variants":
        return f"variant {parts[1]!r}" + (f", field {'.'.join(parts[2:])!r}" if parts[2:] else "")
    return f"field {'.'.join(parts)!r}" if parts else "plan"


SHIPPED = Path(__file__).with_name("plans")


def find_plan(spec: str | Path) -> Path:
    """A plan file, or the name of a plan shipped with evalkit (``tiny``, ``ch07-exercises``)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = SHIPPED / f"{spec}.yaml"
    if not path.suffix and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
    raise InputError(f"no such plan file (shipped plans: {names})", path=path)


def load_plan(path: str | Path) -> Plan:
    """The validated plan in ``path``; an :class:`InputError` naming file, variant and field."""
    import yaml

    path = find_plan(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from exc
    if not isinstance(raw, dict):
        raise InputError("expected a mapping with name, base, baseline and variants", path=path)
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{_location(error['loc'])}: {message}{more}", path=path) from None


def resolve_data(spec: str | None, *, plan_file: Path, data_dir: Path | None) -> str | None:
    """A plan's data path: URLs unchanged, relative paths under ``data_dir`` or the plan's folder."""
    if spec is None or "://" in spec:
        return spec
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (data_dir or plan_file.resolve().parent) / path
    return str(path)
