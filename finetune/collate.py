"""Collate: the book's ``custom_collate_fn`` (chapter 7), token for token, plus exercise 7.2's
instruction masking."""

from __future__ import annotations

from collections.abc import Sequence

import torch

PAD_TOKEN_ID = 50256  # GPT-2's <|endoftext|>, the book's pad and end-of-response token
IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index


def collate_batch(
    items: Sequence[dict | Sequence[int]],
    pad_token_id: int = PAD_TOKEN_ID,
    ignore_index: int = IGNORE_INDEX,
    allowed_max_length: int | None = None,
    mask_instruction: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` as the book builds them.

    Each item (``{"input_ids", "prompt_length"}`` from :class:`InstructionDataset`, or a plain
    list of ids) gets one ``pad_token_id`` appended (the end-of-response token), is padded to the
    batch's longest + 1; inputs are all but the last position, targets the same shifted by one;
    every padding position in the targets except the first becomes ``ignore_index``; then both
    are cut to ``allowed_max_length``. ``mask_instruction`` also sets the targets that predict
    prompt tokens (positions before ``prompt_length - 1``) to ``ignore_index``.

    Padding is found by position, not by comparing with ``pad_token_id`` as the book does; the
    two agree whenever the text itself holds no token ``pad_token_id``, which
    :func:`finetune.dataset.encode_text` guarantees.
    """
    ids = [list(item["input_ids"]) if isinstance(item, dict) else list(item) for item in items]
    prompt_lengths = [int(item["prompt_length"]) if isinstance(item, dict) else 0 for item in items]
    width = max(len(seq) for seq in ids)  # longest + 1 (appended token), minus 1 (the shift)
    inputs = torch.full((len(ids), width), pad_token_id, dtype=torch.long)
    targets = torch.full((len(ids), width), ignore_index, dtype=torch.long)
    for row, seq in enumerate(ids):
        n = len(seq)
        if n:
            inputs[row, :n] = torch.tensor(seq, dtype=torch.long)
            targets[row, : n - 1] = torch.tensor(seq[1:], dtype=torch.long)
        if width:
            targets[row, max(n - 1, 0)] = pad_token_id  # the first padding position: predict end of response
        if mask_instruction and prompt_lengths[row] > 1:
            targets[row, : prompt_lengths[row] - 1] = ignore_index
    if allowed_max_length is not None:
        inputs, targets = inputs[:, :allowed_max_length], targets[:, :allowed_max_length]
    return inputs, targets
