"""Tokens and batches equal the book's, on every record of its data."""

from __future__ import annotations

import pytest
import torch

from finetune import InstructionDataset, collate_batch, encode_text, epoch_batches, padding_fraction
from llms_from_scratch import ch07 as book  # the book's own chapter-7 code (PyPI: llms-from-scratch)


def test_collate_matches_the_books_printed_example():
    # the book's section 7.3 example batch and the tensors it prints
    inputs, targets = collate_batch([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]])
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256], [7, 8, 9, 50256, 50256]]
    assert targets.tolist() == [[1, 2, 3, 4, 50256], [6, 50256, -100, -100, -100], [8, 9, 50256, -100, -100]]
    assert inputs.dtype == targets.dtype == torch.long


def test_exact_token_ids(tiktoken_gpt2):
    # GPT-2 BPE ids published with the tokenizer (e.g. "Hello, world" in the tiktoken README)
    assert encode_text(tiktoken_gpt2, "Hello, world") == [15496, 11, 995]
    record = {"instruction": "Name a color.", "input": "", "output": "Blue."}
    item = InstructionDataset([record], tiktoken_gpt2)[0]
    # "...### Instruction:\nName a color." then "\n\n### Response:\nBlue."
    assert item["input_ids"][-8:] == [198, 198, 21017, 18261, 25, 198, 14573, 13]
    prompt_ids = encode_text(tiktoken_gpt2, book.format_input(record))
    assert item["prompt_length"] == len(prompt_ids)
    assert item["input_ids"][: len(prompt_ids)] == prompt_ids
    assert tiktoken_gpt2.decode(item["input_ids"]) == book.format_input(record) + "\n\n### Response:\nBlue."
    assert encode_text(tiktoken_gpt2, "\n\n### Response:\nBlue.") == [198, 198, 21017, 18261, 25, 198, 14573, 13]


def test_endoftext_in_a_record_is_ordinary_text(tiktoken_gpt2):
    record = {"instruction": "Repeat <|endoftext|> please.", "input": "", "output": "<|endoftext|>"}
    with pytest.raises(ValueError):  # what the book's tokenizer.encode(full_text) does
        book.InstructionDataset([record], tiktoken_gpt2)
    item = InstructionDataset([record], tiktoken_gpt2)[0]
    assert 50256 not in item["input_ids"]
    assert encode_text(tiktoken_gpt2, "<|endoftext|>") == [27, 91, 437, 1659, 5239, 91, 29]
    assert tiktoken_gpt2.decode(item["input_ids"]).endswith("### Response:\n<|endoftext|>")
    inputs, targets = collate_batch([item, InstructionDataset([record | {"output": "x"}], tiktoken_gpt2)[0]])
    n = len(item["input_ids"])
    assert targets[0, n - 1] == 50256 and (targets[0, :n - 1] != -100).all()  # the text's characters are all trained on


@pytest.fixture(scope="module")
def both_datasets(book_records, tiktoken_gpt2):
    theirs = book.InstructionDataset(book_records, tiktoken_gpt2)
    # exercise 7.2 (mask the instruction) needs each prompt's length in tokens, as its solution computes it
    theirs.instruction_lengths = [len(tiktoken_gpt2.encode(book.format_input(r))) for r in book_records]
    return theirs, InstructionDataset(book_records, tiktoken_gpt2)


def test_dataset_equals_the_books_on_all_records(both_datasets):
    theirs, ours = both_datasets
    assert len(ours) == len(theirs) == 1100
    for i in range(len(ours)):
        assert ours[i]["input_ids"] == theirs[i]
        assert ours[i]["prompt_length"] == theirs.instruction_lengths[i]


@pytest.mark.parametrize("allowed_max_length", [None, 1024, 64, 7])
@pytest.mark.parametrize("mask_instruction", [False, True])
def test_collate_equals_the_books_on_all_records(both_datasets, allowed_max_length, mask_instruction):
    theirs, ours = both_datasets
    batch_size = 8  # the book's; the last batch has 4 records
    for start in range(0, len(ours), batch_size):
        indices = range(start, min(start + batch_size, len(ours)))
        expected = book.custom_collate_fn([theirs[i] for i in indices], allowed_max_length=allowed_max_length)
        if mask_instruction:  # exercise 7.2's solution: the instruction's targets are ignored too
            for row, i in enumerate(indices):
                expected[1][row, : theirs.instruction_lengths[i] - 1] = -100
        got = collate_batch([ours[i] for i in indices], allowed_max_length=allowed_max_length, mask_instruction=mask_instruction)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1]), f"batch at record {start}"


def test_mask_instruction_hides_exactly_the_prompt(tiktoken_gpt2):
    record = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    item = InstructionDataset([record], tiktoken_gpt2)[0]
    _, targets = collate_batch([item], mask_instruction=True)
    p = item["prompt_length"]
    assert (targets[0, : p - 1] == -100).all()
    # the first trained target is the first response token (position p - 1 predicts token p)
    assert targets[0, p - 1 :].tolist() == item["input_ids"][p:] + [50256]


def test_bucketing_reduces_padding_and_stays_random_per_epoch(both_datasets):
    _, ours = both_datasets
    lengths = ours.lengths()
    plain = epoch_batches(lengths, 8, seed=123, epoch=0)
    bucketed = epoch_batches(lengths, 8, seed=123, epoch=0, bucket=True)
    assert len(plain) == len(bucketed) == 1100 // 8  # drop_last, as the book's train loader
    for batches in (plain, bucketed):
        used = [i for b in batches for i in b]
        assert len(set(used)) == len(used) == 1096 and all(0 <= i < 1100 for i in used)
    assert padding_fraction(lengths, bucketed) < padding_fraction(lengths, plain) / 3
    assert epoch_batches(lengths, 8, seed=123, epoch=1, bucket=True) != bucketed
    assert epoch_batches(lengths, 8, seed=123, epoch=0, bucket=True) == bucketed  # deterministic: resumable
    # the padding fraction is what collate produces
    inputs, _ = collate_batch([ours[i] for i in plain[0]])
    real = sum(len(ours[i]["input_ids"]) for i in plain[0])
    assert padding_fraction(lengths, plain[:1]) == pytest.approx(1 - real / inputs.numel())
