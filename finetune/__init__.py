"""finetune: instruction fine-tuning of GPT-2 as in chapter 7 of *Build a Large Language Model (From Scratch)*.

Same tokens as the book (:class:`InstructionDataset`, :func:`collate_batch`), then faster and
safer: crash-safe resumable training (:func:`train`), batched KV-cache generation
(:func:`generate_texts`; ``generate`` runs in the results store are
:func:`evalkit.generate_run.generate_responses`), and import of checkpoints saved by the book's
code (:func:`import_book_checkpoint`). Nothing here imports the results store.

Names are imported on first use (PEP 562), so ``import finetune`` (and the ``evalkit`` command
line, which reads :data:`MODEL_SIZES`) does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "import_book_checkpoint": "finetune.book_import",
    "IGNORE_INDEX": "finetune.collate",
    "PAD_TOKEN_ID": "finetune.collate",
    "collate_batch": "finetune.collate",
    "BOOK_DATA_URL": "finetune.data",
    "InvalidRecordsWarning": "finetune.data",
    "load_records": "finetune.data",
    "split_records": "finetune.data",
    "InstructionDataset": "finetune.dataset",
    "encode_text": "finetune.dataset",
    "epoch_batches": "finetune.dataset",
    "padding_fraction": "finetune.dataset",
    "train_dpo": "finetune.dpo",
    "book_generate": "finetune.generate",
    "generate_batch": "finetune.generate",
    "generate_texts": "finetune.generate",
    "MODEL_SIZES": "finetune.model",
    "load_model": "finetune.model",
    "random_model": "finetune.model",
    "STYLES": "finetune.prompts",
    "PromptStyle": "finetune.prompts",
    "format_prompt": "finetune.prompts",
    "format_response": "finetune.prompts",
    "get_style": "finetune.prompts",
    "register_style": "finetune.prompts",
    "TrainResult": "finetune.train",
    "train": "finetune.train",
}

__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """``finetune.train`` is both a submodule and the exported function. Importing the submodule
    (``from finetune.train import X``, as :mod:`finetune.dpo` does) would set the package's
    ``train`` to the module; the public name stays the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'finetune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from finetune.book_import import import_book_checkpoint
    from finetune.collate import IGNORE_INDEX, PAD_TOKEN_ID, collate_batch
    from finetune.data import BOOK_DATA_URL, InvalidRecordsWarning, load_records, split_records
    from finetune.dataset import InstructionDataset, encode_text, epoch_batches, padding_fraction
    from finetune.dpo import train_dpo
    from finetune.generate import (
        book_generate,
        generate_batch,
        generate_texts,
    )
    from finetune.model import MODEL_SIZES, load_model, random_model
    from finetune.prompts import STYLES, PromptStyle, format_prompt, format_response, get_style, register_style
    from finetune.train import TrainResult, train
