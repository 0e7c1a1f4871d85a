"""The pydantic models behind :mod:`evalkit.schema`: per run kind, the config and the sample
payload, and the metric model.

Kept apart so that reading commands (``runs list``, ``leaderboard``) never import pydantic or
build these models: :mod:`evalkit.schema` loads this module the first time it validates.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator  # noqa: F401  (ValidationError: schema catches it)

from evalkit.schema import SchemaError, check_safe_id

# -- shared pieces ----------------------------------------------------------------------------


class _Open(BaseModel):
    """Known fields typed, unknown fields kept (producers may record more than the schema names)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=False)


# -- configs ----------------------------------------------------------------------------------


class FinetuneConfig(_Open):
    base_model: str | None = None
    name: str | None = None


class GenerateConfig(_Open):
    eval_set: str | None = None
    records_hash: str | None = None
    prompt_template_hash: str | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_k: int | None = Field(default=None, ge=1)
    seed: int | None = None


class DataDescription(_Open):
    source: str | None = None
    sha256: str | dict[str, str] | None = None  # of the data, or per split


class MmluConfig(_Open):
    eval_set: str | None = None
    task: str | None = None  # lm-eval imports name the task instead of an eval set
    data: DataDescription | None = None
    num_fewshot: int | list[int] | None = None
    limit: float | None = Field(default=None, ge=0)
    template_hash: str | None = None
    lm_eval_version: str | None = None


class JudgeOptions(_Open):
    seed: int | None = None
    temperature: float | None = Field(default=None, ge=0)
    num_ctx: int | None = Field(default=None, ge=1)


class JudgeScoreConfig(_Open):
    eval_set: str | None = None
    judge_model: str | None = None
    judge_digest: str | None = None
    template_hash: str | None = None
    options: JudgeOptions | None = None


class JudgePairwiseConfig(JudgeScoreConfig):
    reference: str | DataDescription | None = None  # a name, or {"source": name, "hash": ...}
    order: str | None = None
    order_seed: int | None = None
    verdict: str | None = None


class HumanConfig(_Open):
    bundle: str | None = None


class ArenaConfig(_Open):
    bootstrap: int | None = Field(default=None, ge=0)
    seed: int | None = None


CONFIG_MODELS: dict[str, type[_Open]] = {
    "finetune": FinetuneConfig,
    "generate": GenerateConfig,
    "mmlu": MmluConfig,
    "judge-score": JudgeScoreConfig,
    "judge-pairwise": JudgePairwiseConfig,
    "human": HumanConfig,
    "arena": ArenaConfig,
}


class MetricModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float | None = None
    stderr: float | None = Field(default=None, ge=0)
    n: int | None = Field(default=None, ge=0)


# -- sample payloads --------------------------------------------------------------------------


class FinetunePayload(_Open):
    step: int | None = Field(default=None, ge=0)
    epoch: float | None = Field(default=None, ge=0)
    tokens_seen: int | None = Field(default=None, ge=0)
    train_loss: float | None = None
    val_loss: float | None = None


class GeneratePayload(_Open):
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    response: str | None = None
    prompt: str | None = None
    tokens: int | None = Field(default=None, ge=0)
    seconds: float | None = Field(default=None, ge=0)
    generator: str | None = None
    dataset: str | None = None


class MmluPayload(_Open):
    subject: str | None = None
    category: str | None = None
    doc_id: int | None = None
    question: str | None = None
    choices: list[Any] | None = None
    prompt: str | None = None
    loglikelihoods: list[float] | None = None
    pred: str | None = None
    gold: str | None = None
    correct: bool | None = None


class JudgeScorePayload(_Open):
    instruction: str | None = None
    input: str | None = None
    reference: str | None = None
    response: str | None = None
    score: float | None = Field(default=None, ge=0, le=100)
    status: Literal["ok", "empty", "unparsed"] | None = None


class JudgePairwisePayload(_Open):
    instruction: str | None = None
    input: str | None = None
    output_1: str | None = None
    generator_1: str | None = None
    output_2: str | None = None
    generator_2: str | None = None
    # 1-2 (2 = model better); AlpacaEval's old files code a draw as 0
    preference: float | None = Field(default=None, ge=0, le=2)
    status: Literal["ok", "identical", "unparsed"] | None = None
    orders: list[str] | None = None
    order_preferences: list[float | None] | None = None


class HumanPayload(_Open):
    pair_id: str | None = None
    rater: str | None = None
    outcome: Literal["a", "b", "tie", "both_bad"] | None = None
    model_a: str | None = None
    model_b: str | None = None
    seconds: float | None = Field(default=None, ge=0)
    timestamp: str | None = None
    chosen: Literal["a", "b"] | None = None

    @field_validator("rater")
    @classmethod
    def _rater_is_safe(cls, value: str | None) -> str | None:
        # a rater's name is the last part of a vote's item id (<pair_id>/<rater>) and names files
        if value is not None:
            try:
                check_safe_id(value, "rater")
            except SchemaError as exc:
                raise ValueError(str(exc)) from None
        return value


class ArenaPayload(_Open):
    model: str | None = None
    rating: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    battles: int | None = Field(default=None, ge=0)
    wins: int | None = Field(default=None, ge=0)
    losses: int | None = Field(default=None, ge=0)
    ties: int | None = Field(default=None, ge=0)
    win_rate_vs: dict[str, float | None] | None = None


PAYLOAD_MODELS: dict[str, type[_Open]] = {
    "finetune": FinetunePayload,
    "generate": GeneratePayload,
    "mmlu": MmluPayload,
    "judge-score": JudgeScorePayload,
    "judge-pairwise": JudgePairwisePayload,
    "human": HumanPayload,
    "arena": ArenaPayload,
}
