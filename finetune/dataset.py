"""Tokenized instruction records and the batch orders training draws from.

``InstructionDataset`` is the book's ``InstructionDataset`` (chapter 7) with one deliberate
change: text is encoded as *ordinary* text, so a record containing the literal string
``<|endoftext|>`` becomes the tokens of those characters instead of raising (tiktoken's default
``encode`` refuses special-token text) or silently becoming token 50256, which the collate
function would then mistake for padding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from finetune.prompts import PromptStyle, get_style


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` with special-token strings treated as plain characters."""
    if hasattr(tokenizer, "encode_ordinary"):
        return tokenizer.encode_ordinary(text)
    return tokenizer.encode(text, disallowed_special=())


class InstructionDataset:
    """``dataset[i] -> {"input_ids": [...], "prompt_length": int}``.

    ``input_ids`` encodes prompt part + response part; ``prompt_length`` is the number of tokens
    of the prompt part encoded alone (what ``mask_instruction`` hides from the loss).
    """

    def __init__(self, records: Sequence[dict], tokenizer, style: str | Path | PromptStyle = "alpaca"):
        self.style = get_style(style)
        self.records = list(records)
        self.items = []
        for record in self.records:
            prompt = self.style.format_prompt(record)
            full = prompt + self.style.format_response(record)
            self.items.append({"input_ids": encode_text(tokenizer, full), "prompt_length": len(encode_text(tokenizer, prompt))})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        return {"input_ids": list(item["input_ids"]), "prompt_length": item["prompt_length"]}

    def lengths(self) -> list[int]:
        return [len(item["input_ids"]) for item in self.items]


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_last: bool = True,
    bucket: bool = False,
    bucket_batches: int = 50,
) -> list[list[int]]:
    """The batches (lists of dataset indices) of one epoch, a pure function of its arguments.

    Deterministic per ``(seed, epoch)`` so that a resumed run replays exactly the order the
    interrupted one would have used, by skipping the batches already done. With ``bucket``,
    the shuffled indices are cut into pools of ``bucket_batches`` batches, each pool sorted by
    length and cut into batches, and the batch order shuffled again: similar lengths share a
    batch (less padding) while the order stays random per epoch.
    """
    order = list(range(len(lengths)))
    rng = random.Random(f"{seed}/{epoch}")
    if shuffle:
        rng.shuffle(order)
    if bucket:
        pool_size = batch_size * bucket_batches
        pools = [order[i : i + pool_size] for i in range(0, len(order), pool_size)]
        order = [i for pool in pools for i in sorted(pool, key=lambda j: lengths[j])]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()  # pools hold whole batches, so the short one is always last
    if bucket and shuffle:
        rng.shuffle(batches)
    return batches


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]], max_length: int | None = None) -> float:
    """Share of input positions that are padding when ``batches`` are collated."""
    total = real = 0
    for batch in batches:
        width = max(lengths[i] for i in batch)  # collate pads to longest + 1, inputs drop the last
        if max_length is not None:
            width = min(width, max_length)
        total += width * len(batch)
        real += sum(min(lengths[i], width) for i in batch)
    return 1.0 - real / total if total else 0.0

