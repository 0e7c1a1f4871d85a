"""Generation: batched greedy/sampled decoding with a KV cache (no results store: ``generate``
runs in the store are :mod:`evalkit.generate_run`'s job).

Why a hand-written loop instead of ``model.generate``: sampling here draws each record's tokens
from its own generator seeded by ``(seed, record id)``, so a record's text never depends on which
other records shared its batch. That is what lets a resumed run, or one with another
``batch_size``, reproduce the same responses; ``model.generate`` draws a whole batch from one
generator. Greedy decoding equals the book's ``generate`` token for token (tests check it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
import torch

from evalkit.errors import EvalkitError
from finetune.collate import PAD_TOKEN_ID
from finetune.dataset import encode_text

EOS_ID = PAD_TOKEN_ID


def book_generate(model, idx: torch.Tensor, max_new_tokens: int, context_size: int, temperature: float = 0.0,
                  top_k: int | None = None, eos_id: int | None = None) -> torch.Tensor:
    """The book's ``generate`` (chapter 5, used in chapter 7): one sequence at a time, the whole
    context re-run for every new token, no cache. Kept as the reference the fast path is tested
    and benchmarked against."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond, use_cache=False).logits
        logits = logits[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def record_seed(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"{seed}/{key}".encode()).hexdigest()[:15], 16)


def _select(logits: torch.Tensor, temperature: float, top_k: int | None, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """Next token per row, in the book's order: top-k filter, temperature, softmax, multinomial."""
    if top_k is not None:
        min_val = torch.topk(logits, top_k).values[:, -1:]
        logits = torch.where(logits < min_val, torch.full_like(logits, float("-inf")), logits)
    if temperature <= 0.0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.stack([torch.multinomial(probs[j], 1, generator=g)[0] for j, g in enumerate(generators)])


@torch.no_grad()
def generate_batch(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 256,
    eos_id: int = EOS_ID,
    temperature: float = 0.0,
    top_k: int | None = None,
    seeds: Sequence[int] | None = None,
) -> list[list[int]]:
    """New tokens for each prompt (without the end token), decoded together with a KV cache.

    Prompts are left-padded with an attention mask and position ids counted from each prompt's
    first real token, so every row sees exactly what it would see alone. Rows that reach
    ``eos_id`` leave the batch (their cache rows are dropped). A prompt longer than
    ``n_positions - max_new_tokens`` keeps its last tokens (the book's window slides instead).
    """
    if not prompts:
        return []
    device = next(model.parameters()).device
    limit = max(model.config.n_positions - max_new_tokens, 1)
    prompts = [list(p)[-limit:] for p in prompts]
    if any(not p for p in prompts):
        raise EvalkitError("cannot generate from an empty prompt")
    batch, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((batch, width), eos_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    generators: list[torch.Generator | None] = [None] * batch
    if temperature > 0.0:
        generators = [torch.Generator(device=device).manual_seed(int(s)) for s in (seeds or [0] * batch)]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = out.cache, out.logits[:, -1, :]
    next_pos = positions[:, -1] + 1
    active = list(range(batch))
    results: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max_new_tokens):
        tokens = _select(logits.float(), temperature, top_k, [generators[r] for r in active])
        keep = []
        for j, (row, token) in enumerate(zip(active, tokens.tolist())):
            if token != eos_id:
                results[row].append(token)
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_pos, tokens = mask[index], next_pos[index], tokens[index]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                    cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1, :]
        next_pos = next_pos + 1
    return results


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int | None = None,
    seeds: Sequence[int] | None = None,
    on_batch: Callable[[list[int], list[list[int]], float], None] | None = None,
) -> list[list[int]]:
    """Generated token ids for each prompt text, batching prompts of similar length together.

    ``on_batch(indices, tokens, seconds)`` is called after each batch (to write results as they
    come). The result of each prompt does not depend on ``batch_size``.
    """
    encoded = [encode_text(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # less left padding
    results: list[list[int]] = [[] for _ in prompts]
    for start in range(0, len(order), max(1, batch_size)):
        chosen = order[start : start + max(1, batch_size)]
        began = time.perf_counter()
        tokens = generate_batch(
            model, [encoded[i] for i in chosen], max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
            seeds=[seeds[i] for i in chosen] if seeds is not None else None,
        )
        for i, t in zip(chosen, tokens):
            results[i] = t
        if on_batch:
            on_batch(chosen, tokens, time.perf_counter() - began)
    return results



def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
