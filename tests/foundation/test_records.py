"""The one reader of JSON list / JSON Lines record files (evalkit.records)."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import InputError
from evalkit.records import JsonRecord, JsonSyntaxError, read_json_records


def test_json_list_records_have_indexes_and_no_line(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"a": 1}, {"a": 2}], indent=2), encoding="utf-8")
    records = read_json_records(path)
    assert records == [JsonRecord(0, None, {"a": 1}), JsonRecord(1, None, {"a": 2})]
    assert [r.label for r in records] == [0, 1]


def test_json_lines_records_keep_their_line_numbers_past_blank_lines(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('\n{"a": 1}\n   \n\n{"a": 2}\n{"a": "é"}\n\n', encoding="utf-8")
    records = read_json_records(path)
    assert [(r.index, r.line, r.value) for r in records] == [(0, 2, {"a": 1}), (1, 5, {"a": 2}), (2, 6, {"a": "é"})]
    assert [r.label for r in records] == ["0 (line 2)", "1 (line 5)", "2 (line 6)"]


def test_a_malformed_line_names_file_line_and_record(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    with pytest.raises(JsonSyntaxError) as info:
        read_json_records(path, expected="test records")
    assert str(info.value) == (
        f"{path}: line 4: not valid JSON (Expecting value); expected test records as a JSON list or JSON Lines"
    )
    assert (info.value.index, info.value.line, info.value.column, info.value.reason) == (2, 4, 7, "Expecting value")
    assert isinstance(info.value, InputError)


def test_a_malformed_list_names_the_line_and_no_record(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"a": 1},\n  {"a" 2}\n]\n', encoding="utf-8")
    with pytest.raises(JsonSyntaxError) as info:
        read_json_records(path)
    assert str(info.value) == f"{path}: line 3: not valid JSON (Expecting ':' delimiter)"
    assert (info.value.index, info.value.line, info.value.column) == (None, 3, 8)


def test_non_object_records_are_an_error_unless_the_caller_checks_them(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n"text"\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_json_records(path, expected="objects")
    assert str(info.value) == f"{path}, record 1: is a JSON list, not an object; expected objects"
    assert [r.value for r in read_json_records(path, objects_only=False)] == [{"a": 1}, [1, 2], "text"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file; expected things"),
        (b" \n\n\t\n", "empty file; expected things"),
        (b"[]", "no records; expected things"),
        (b'{"a": "caf\xe9"}\n', "not UTF-8 text (invalid continuation byte at byte 10); expected things as JSON"),
    ],
)
def test_empty_and_undecodable_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_json_records(path, expected="things")
    assert str(info.value) == f"{path}: {message}"


def test_missing_file_folder_and_shown_name(tmp_path):
    with pytest.raises(InputError) as info:
        read_json_records(tmp_path / "absent.json")
    assert str(info.value) == f"{tmp_path / 'absent.json'}: no such file"
    with pytest.raises(InputError) as info:
        read_json_records(tmp_path, expected="records of a test")
    assert str(info.value) == f"{tmp_path}: is a folder; expected a file of records of a test"
    path = tmp_path / "cached"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_json_records(path, shown_as="https://example.org/data.json")
    assert str(info.value) == "https://example.org/data.json: no records"


def test_read_json_document_names_file_line_and_what_was_expected(tmp_path):
    from evalkit.records import JsonSyntaxError, read_json_document

    good = tmp_path / "key.json"
    good.write_text('{"format": "x", "n": [1, 2]}', encoding="utf-8")
    assert read_json_document(good) == {"format": "x", "n": [1, 2]}
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "a": 1,\n  oops\n}', encoding="utf-8")
    with pytest.raises(JsonSyntaxError) as info:
        read_json_document(bad, expected="a bundle key")
    assert str(info.value) == f"{bad}: line 3: not valid JSON (Expecting property name enclosed in double quotes); expected a bundle key"
    assert info.value.line == 3
    with pytest.raises(InputError, match="missing.json: no such file"):
        read_json_document(tmp_path / "missing.json")
