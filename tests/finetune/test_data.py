"""Records, validation, the book's split and prompt styles."""

from __future__ import annotations

import json
import warnings

import pytest

from evalkit.errors import EvalkitError, InputError
from evalkit.items import instruction_item_id
from finetune import BOOK_DATA_URL, InvalidRecordsWarning, format_prompt, format_response, get_style, load_records, split_records
from llms_from_scratch.ch07 import format_input  # the book's own chapter-7 code


def test_book_data_loads_with_ids(book_data_file, book_records):
    records = load_records(book_data_file)
    assert len(records) == 1100
    assert [{k: r[k] for k in ("instruction", "input", "output")} for r in records] == book_records
    assert records[0]["id"] == instruction_item_id(book_records[0]["instruction"], book_records[0]["input"])


def test_jsonl_is_accepted(tmp_path, book_records):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in book_records[:5]) + "\n")
    assert [r["instruction"] for r in load_records(path)] == [r["instruction"] for r in book_records[:5]]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"input": "", "output": "x"}, "record 1, field 'instruction': is missing"),
        ({"instruction": "x", "input": 3, "output": "x"}, "record 1, field 'input': must be a string, not int"),
        ({"instruction": "  ", "input": "", "output": "x"}, "record 1, field 'instruction': is empty"),
        ({"instruction": "x", "input": "", "output": ""}, "record 1, field 'output': is empty"),
        ({"instruction": "x", "input": None, "output": "y"}, "record 1, field 'input': must be a string, not NoneType"),
        (["x"], "record 1: expected an object"),
    ],
)
def test_invalid_record_names_file_record_and_field(tmp_path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}, record]))
    with pytest.raises(InputError) as info:
        load_records(path)
    assert str(info.value).startswith(f"{path}, {message}")


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "input": "", "output": "b"}\n\n{"instruction": "a", "input": ""}\n')
    with pytest.raises(InputError, match=r"record 1 \(line 3\), field 'output': is missing"):
        load_records(path)
    path.write_text('{"instruction": "a", "input": "", "output": "b"}\n{"instruction": \n')
    with pytest.raises(InputError, match=r"bad.jsonl, record 1 \(line 2\): not valid JSON"):
        load_records(path)


def test_skip_invalid_counts_and_keeps_the_rest(tmp_path):
    path = tmp_path / "mixed.json"
    good = {"instruction": "a", "input": "", "output": "b"}
    path.write_text(json.dumps([good, {"instruction": "x"}, good | {"instruction": "c"}, {"output": 1}]))
    with pytest.warns(InvalidRecordsWarning, match=r"skipped 2 invalid record\(s\); first: .*record 1, field 'input'"):
        records = load_records(path, skip_invalid=True)
    assert [r["instruction"] for r in records] == ["a", "c"]
    empty = tmp_path / "none.json"
    empty.write_text("[{}]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"none.json: no valid records \(1 invalid; first: .*record 0, field 'instruction'"):
            load_records(empty, skip_invalid=True)


def test_missing_file_and_offline_default_url_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(EvalkitError, match="absent.json: no such file"):
        load_records(tmp_path / "absent.json")
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    import evalkit.assets

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(evalkit.assets.urllib.request, "urlopen", offline)
    with pytest.raises(EvalkitError, match="could not download .*instruction-data.json"):
        load_records(None)
    assert BOOK_DATA_URL.endswith("/ch07/01_main-chapter-code/instruction-data.json")


def test_split_is_the_books_85_10_5_in_file_order(book_data_file):
    records = load_records(book_data_file)
    split = split_records(records)
    assert [len(split[k]) for k in ("train", "test", "val")] == [935, 110, 55]
    assert split["train"] == records[:935] and split["test"] == records[935:1045] and split["val"] == records[1045:]
    shuffled = split_records(records, shuffle_seed=7)
    assert shuffled == split_records(records, shuffle_seed=7)
    assert shuffled["train"] != split["train"]
    assert sorted(r["id"] for k in shuffled for r in shuffled[k]) == sorted(r["id"] for r in records)


def test_alpaca_style_is_the_books_format_input(book_records):
    for record in book_records:
        assert format_prompt(record) == format_input(record)
        assert format_response(record) == f"\n\n### Response:\n{record['output']}"


def test_phi3_style_is_exercise_7_1():
    record = {"instruction": "Name a color.", "input": "", "output": "Blue."}
    assert format_prompt(record, "phi3") == "<|user|>\nName a color."
    assert format_prompt(record | {"input": "sky"}, "phi3") == "<|user|>\nName a color.\nsky"
    assert format_response(record, "phi3") == "\n<|assistant|>:\nBlue."
    assert get_style("phi3").extract_response("\n<|assistant|>:\nBlue.  ") == "Blue."
    assert get_style("alpaca").extract_response("\n\n### Response:\nThe answer.") == "The answer."


def test_template_file_style_is_validated_up_front(tmp_path):
    good = tmp_path / "qa.json"
    good.write_text(json.dumps({"prompt": "Q: {instruction} {{braces}}", "input": " ({input})", "response": "\nA: {output}"}))
    style = get_style(str(good))
    record = {"instruction": "Why {x}?", "input": "ctx", "output": "Because."}
    assert style.format_prompt(record) == "Q: Why {x}? {braces} (ctx)"
    assert style.format_response(record) == "\nA: Because."
    assert style.response_header == "\nA: "
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"prompt": "Q: {question}", "response": "\nA: {output}"}))
    with pytest.raises(InputError, match=r"bad.json, field 'prompt': unknown placeholder \{question\}"):
        get_style(str(bad))
    bad.write_text(json.dumps({"prompt": "Q: {instruction}", "response": "{output} (end)"}))
    with pytest.raises(InputError, match="field 'response': must end with {output}"):
        get_style(str(bad))
    with pytest.raises(InputError, match="unknown prompt style 'nope'"):
        get_style("nope")
