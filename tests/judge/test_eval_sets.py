"""Eval sets: the book's test split, AlpacaEval's 805 instructions, files (with clear errors)."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import InputError
from evalkit.items import instruction_item_id
from evalkit.judge import load_eval_set
from tests.conftest import shared_path


def test_book_test_is_the_books_10_percent_split(monkeypatch):
    data = shared_path("book-ch07", "instruction-data.json")
    monkeypatch.setenv("EVALKIT_BOOK_DATA", str(data))
    records = json.loads(data.read_text())
    eval_set = load_eval_set("book-test")
    assert eval_set.name == "book-test" and eval_set.default_mode == "score" and eval_set.default_order == "swap"
    assert len(eval_set.records) == 110  # 1100 records: train 935, test 110, val 55
    first = eval_set.records[0]
    assert (first["instruction"], first["input"], first["output"]) == (records[935]["instruction"], records[935]["input"], records[935]["output"])
    assert first["id"] == instruction_item_id(records[935]["instruction"], records[935]["input"])


def test_book_test_needs_no_network_by_default(monkeypatch, tmp_path):
    # the copy shipped with evalkit: the same 110 records as the staged public file
    monkeypatch.delenv("EVALKIT_BOOK_DATA", raising=False)
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "empty-cache"))
    records = json.loads(shared_path("book-ch07", "instruction-data.json").read_text())[935:1045]
    eval_set = load_eval_set("book-test")
    assert [(r["instruction"], r["input"], r["output"]) for r in eval_set.records] == [
        (r["instruction"], r["input"], r["output"]) for r in records
    ]
    assert eval_set.source.startswith("https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/")
    assert not (tmp_path / "empty-cache").exists()  # nothing was downloaded


def test_alpaca_eval_from_a_local_file(monkeypatch):
    monkeypatch.setenv("EVALKIT_ALPACA_EVAL", str(shared_path("alpaca_eval", "alpaca_eval_gpt4_1106_preview_reference.json")))
    eval_set = load_eval_set("alpaca-eval")
    assert len(eval_set.records) == 805 and eval_set.default_mode == "pairwise" and eval_set.default_order == "random"
    assert {r["generator"] for r in eval_set.records} == {"gpt4_1106_preview"}
    assert all(r["input"] == "" and r["output"] for r in eval_set.records)


def test_files_json_and_jsonl_with_errors_naming_record_and_field(tmp_path):
    good = tmp_path / "set.jsonl"
    good.write_text('{"instruction": "Add 2 and 3.", "output": "5"}\n\n{"instruction": "Spell cat.", "input": "", "output": "c-a-t"}\n')
    eval_set = load_eval_set(str(good))
    assert eval_set.name == "file:set.jsonl" and [r["output"] for r in eval_set.records] == ["5", "c-a-t"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "ok"}, {"instruction": "x", "input": 3}]))
    with pytest.raises(InputError, match=r"bad.json, record 1, field 'input': must be a string, not int"):
        load_eval_set(str(bad))
    bad.write_text(json.dumps([{"instruction": "  "}]))
    with pytest.raises(InputError, match=r"record 0, field 'instruction': missing or empty"):
        load_eval_set(str(bad))
    bad.write_text('{"instruction": "a"}\n{oops\n')
    with pytest.raises(InputError, match=r"record 2: not JSON or JSONL"):
        load_eval_set(str(bad))
    with pytest.raises(InputError, match="no such file, and not one of book-test, alpaca-eval"):
        load_eval_set(str(tmp_path / "nope.json"))
