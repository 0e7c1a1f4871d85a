"""Stable item ids, so that runs of different models can be compared item by item.

An instruction item is identified by its text, not its position in a file: the same
instruction judged from AlpacaEval's file, the book's test split or a generate run gets the
same id everywhere.
"""

from __future__ import annotations

from evalkit.hashing import content_hash


def instruction_item_id(instruction: str, input: str = "") -> str:  # noqa: A002 - the field's name
    return content_hash(["instruction-v1", instruction, input or ""], length=16)


def mmlu_item_id(subject: str, doc_id: int) -> str:
    return f"{subject}/{doc_id}"
