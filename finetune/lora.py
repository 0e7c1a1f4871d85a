"""LoRA fine-tuning of GPT-2 through ``peft`` (the book's exercise 7.4 / appendix E).

Only the low-rank adapters train; the base weights stay frozen. What a LoRA fine-tune writes is
still a plain GPT-2 checkpoint: the adapters are merged into a copy of the weights, so lm-eval and
``evalkit generate`` load it unchanged, and the adapters themselves are kept beside it in
``DIR/adapter/`` (``peft``'s own format, loadable with ``PeftModel.from_pretrained``).

Scaling: ``peft`` (like the LoRA paper) scales the update by ``alpha / rank``; the book's
``LoRALayer`` scales it by ``alpha`` alone. The book's ``rank=16, alpha=16`` is therefore
``--lora-rank 16 --lora-alpha 256`` here.

Resuming: the frozen base is re-created from the same source (the same seeded random init or
the same pretrained weights) and the adapters are read back from the checkpoint's ``adapter/``,
so a resumed run continues from exactly the interrupted weights.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

ADAPTER_DIR = "adapter"
# GPT-2's Conv1D projections: the fused query/key/value, both output projections (attention
# and MLP, the same name in both) and the MLP's first layer. The output head is left out: GPT-2
# ties it to the token embedding, so merging an adapter into it would also change the inputs.
TARGETS = ("c_attn", "c_proj", "c_fc")


@dataclass(frozen=True)
class LoraSettings:
    rank: int
    alpha: float
    targets: tuple[str, ...] = TARGETS

    @classmethod
    def build(cls, rank: int, alpha: float | None = None, targets: list[str] | tuple[str, ...] | None = None) -> "LoraSettings":
        if rank < 1:
            raise EvalkitError(f"--lora-rank must be at least 1, not {rank}")
        alpha = float(rank if alpha is None else alpha)
        if not alpha > 0:
            raise EvalkitError(f"--lora-alpha must be positive, not {alpha}")
        chosen = tuple(dict.fromkeys(targets or TARGETS))
        unknown = [t for t in chosen if t not in TARGETS]
        if unknown:
            why = " (GPT-2 ties lm_head to the token embedding)" if "lm_head" in unknown else ""
            raise EvalkitError(f"--lora-targets: unknown module(s) {', '.join(unknown)}{why}; choose from {', '.join(TARGETS)}")
        return cls(rank, alpha, chosen)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": list(self.targets)}


def attach_lora(lm, settings: LoraSettings, *, seed: int = 123, adapter_from: str | os.PathLike[str] | None = None):
    """``lm`` wrapped as a ``peft`` model with fresh adapters (A drawn from ``seed``, B zero, as
    in the paper) or those saved in ``adapter_from/adapter``; only the adapters require gradients."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter_from is not None:
        folder = Path(adapter_from) / ADAPTER_DIR
        if not (folder / "adapter_config.json").is_file():
            raise EvalkitError(f"{adapter_from}: no LoRA adapter to resume ({folder} is missing)")
        return PeftModel.from_pretrained(lm, folder, is_trainable=True)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(settings.targets),
                        lora_dropout=0.0, bias="none", fan_in_fan_out=True)  # GPT-2's Conv1D stores weights (in, out)
    with torch.random.fork_rng(devices=[]):  # the same adapters for the same seed, global RNG untouched
        torch.manual_seed(seed)
        return get_peft_model(lm, config)


def merged_state_dict(peft_model) -> dict[str, Any]:
    """The base model's state dict with each adapter's update added to its weight: what
    ``merge_and_unload`` computes (``W + delta``), without touching the training model and
    without copying the parts that do not change (which a deep copy would)."""
    import torch
    from peft.tuners.lora import LoraLayer

    base = peft_model.get_base_model()
    with torch.no_grad():
        deltas = {f"{name}.weight": module.get_delta_weight(adapter)
                  for name, module in base.named_modules() if isinstance(module, LoraLayer) for adapter in module.active_adapters}
        merged = {}
        for key, value in base.state_dict().items():
            if ".lora_" in key:
                continue
            key = key.replace(".base_layer.", ".")
            merged[key] = value + deltas[key] if key in deltas else value
    return merged


def merged_model(peft_model):
    """A plain ``GPT2LMHeadModel`` holding the merged weights (the training model is untouched)."""
    from transformers import GPT2LMHeadModel

    base = peft_model.get_base_model()
    model = GPT2LMHeadModel(base.config)
    model.load_state_dict(merged_state_dict(peft_model))
    return model


class _MergedWeights:
    """Quacks like a model for :func:`finetune.model.save_checkpoint_dir`: saves the merged
    state dict under the base model's config and class."""

    def __init__(self, peft_model):
        self.base, self.state_dict = peft_model.get_base_model(), merged_state_dict(peft_model)

    def save_pretrained(self, out) -> None:
        self.base.save_pretrained(out, state_dict=self.state_dict)


def save_lora_checkpoint(peft_model, out_dir: str | os.PathLike[str], *, tokenizer: str | None, metadata: dict[str, Any]) -> Path:
    """Same files as :func:`finetune.model.save_checkpoint_dir` (merged weights), plus the
    adapters in ``out_dir/adapter``."""
    from finetune.model import quiet_transformers, save_checkpoint_dir

    model = getattr(peft_model, "module", peft_model)
    out = save_checkpoint_dir(_MergedWeights(model), out_dir, tokenizer=tokenizer, metadata=metadata)
    with quiet_transformers():
        model.save_pretrained(out / ADAPTER_DIR)
    return out


def parameter_counts(lm) -> dict[str, int]:
    """Trainable and total parameters (tied tensors counted once)."""
    seen: dict[int, Any] = {}
    for p in lm.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return {"trainable_params": trainable, "total_params": total}


def optimizer_state_bytes(optimizer) -> int:
    """Bytes held by the optimizer's state (AdamW: two moments per trainable parameter)."""
    import torch

    return sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor))
