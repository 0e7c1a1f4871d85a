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


# -- JSON Lines split on "\n" only ---------------------------------------------------------------

SEPARATORS = "\u0085\u2028\u2029"


def _mmlu_questions_with_separators(shared_data):
    """MMLU test questions holding raw U+0085 (management #39 and sociology #69), with their index
    within their subject, as lm-eval numbers doc_id."""
    seen: dict[str, int] = {}
    found = []
    for raw in (shared_data / "mmlu" / "test.jsonl").read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        doc = json.loads(raw)
        seen[doc["subject"]] = seen.get(doc["subject"], -1) + 1
        if any(ch in json.dumps(doc, ensure_ascii=False) for ch in SEPARATORS):
            found.append((doc["subject"], seen[doc["subject"]], doc))
    return found


def _lm_eval_sample(doc_id, doc):
    """A sample line as `lm_eval --log_samples` writes it (json.dumps(..., ensure_ascii=False))."""
    context = f"{doc['question'].strip()}\nA. {doc['choices'][0]}\nB. {doc['choices'][1]}\nC. {doc['choices'][2]}\nD. {doc['choices'][3]}\nAnswer:"
    lls = [[-1.5 - i, False] for i in range(4)]
    return {
        "doc_id": doc_id, "doc": doc, "target": doc["answer"],
        "arguments": {f"gen_args_{i}": {"arg_0": context, "arg_1": f" {letter}"} for i, letter in enumerate("ABCD")},
        "resps": [[ll] for ll in lls], "filtered_resps": lls, "filter": "none", "metrics": ["acc"],
        "doc_hash": "x", "prompt_hash": "y", "target_hash": "z", "acc": float(doc["answer"] == 0),
    }


def test_mmlu_questions_with_u0085_survive_lm_eval_sample_files(shared_data, tmp_path):
    from evalkit.interop.lm_eval_format import import_results
    from evalkit.store import ResultsStore

    questions = _mmlu_questions_with_separators(shared_data)
    assert {(s, i) for s, i, _ in questions} >= {("management", 39), ("sociology", 69)}
    stamp = "2026-01-01T00-00-00.000000"
    results = {"results": {"mmlu": {"acc,none": 0.5, "acc_stderr,none": 0.1}}, "group_subtasks": {"mmlu": []}, "model_name": "m"}
    for subject in ("management", "sociology"):
        results["results"][f"mmlu_{subject}"] = {"acc,none": 0.5, "acc_stderr,none": 0.1, "sample_len": 1}
        results["group_subtasks"]["mmlu"].append(f"mmlu_{subject}")
        lines = [json.dumps(_lm_eval_sample(i, d), ensure_ascii=False) for s, i, d in questions if s == subject]
        text = "\n".join(lines) + "\n"
        assert len(text.splitlines()) > len(lines)  # str.splitlines() would cut these lines apart
        (tmp_path / f"samples_mmlu_{subject}_{stamp}.jsonl").write_text(text, encoding="utf-8")
    path = tmp_path / f"results_{stamp}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    with ResultsStore(tmp_path / "s.db") as store:
        samples = dict(store.samples(import_results(store, path)))
    assert samples["management/39"]["question"] == next(d["question"] for s, i, d in questions if (s, i) == ("management", 39))
    assert "\u0085" in samples["management/39"]["question"] and "\u0085" in samples["sociology/69"]["question"]


@pytest.mark.parametrize("separator", list(SEPARATORS))
def test_json_lines_split_on_newline_only(tmp_path, separator):
    path = tmp_path / "r.jsonl"
    path.write_text(f'{{"a": "x{separator}y"}}\r\n{{"a": "{separator}"}}\n', encoding="utf-8")
    assert [r.value["a"] for r in read_json_records(path)] == [f"x{separator}y", separator]


def test_ratings_lines_keep_raw_line_separators(tmp_path):
    from evalkit.records import json_lines

    text = '{"comment": "a\u2028b\u0085c"}\n\n{"comment": "\u2029"}'
    assert list(json_lines(text)) == [(1, '{"comment": "a\u2028b\u0085c"}'), (2, ""), (3, '{"comment": "\u2029"}')]


# -- values JSON parses but evalkit must not take -----------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"a": 1}\n{"a": NaN}\n', 'record 1 (line 2), field \'a\': is nan'),
        ('[{"a": {"b": [1, Infinity]}}]', "record 0, field 'a.b[1]': is inf"),
        ('{"a": -Infinity}\n', "record 0 (line 1), field 'a': is -inf"),
        ('{"a": 1e400}\n', "record 0 (line 1), field 'a': is inf"),
        ('{"a": "\\ud800"}\n', "record 0 (line 1), field 'a': holds a lone UTF-16 surrogate"),
        ('[{"x": 1}, {"\\udfff": 1}]', "record 1, field '\\\\udfff': a key holds a lone UTF-16 surrogate"),
        ("[" * 200000, "nested too deeply"),
        ('{"a": ' * 100000, "nested too deeply"),
        ('{"a": ' + "1" * 5000 + "}\n", "not a usable JSON value"),
    ],
)
def test_untrusted_values_are_refused_with_their_place(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_json_records(path)
    assert str(info.value).startswith(f"{path}") and message in str(info.value), str(info.value)[:300]


def test_escaped_surrogate_pairs_and_nan_as_null(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('[{"a": "\\ud83d\\ude00", "b": NaN, "c": [NaN]}]', encoding="utf-8")
    assert read_json_records(path, nan_as_null=True)[0].value == {"a": "\U0001f600", "b": None, "c": [None]}


def test_overflowing_exponents_are_still_refused_but_hex_hashes_are_not_walked():
    from evalkit.records import _decode_flagged, parse_json

    def flagged(text):
        return _decode_flagged(text, shown="f.jsonl", index=None, line=1, context="")[1]

    too_large = "1" + "0" * 400 + ".5"  # no exponent, still beyond a float
    for text in ('{"a": 1e400}', "[1.9E+308]", '{"x":-2e999}', "[0.1e1000]", '{"v": [3,\n 7e310]}', f"[{too_large}]",
                 '{"n": NaN}', '[-Infinity]', '{"s": "\\udc00"}'):
        assert flagged(text), text
        with pytest.raises(InputError, match="finite number|surrogate"):
            parse_json(text, shown="f.jsonl", line=1)
    # the largest float, a huge integer and an escaped surrogate pair are values evalkit takes
    assert parse_json('[1.7976931348623157e308, 1e-400]', shown="f.jsonl", line=1) == [1.7976931348623157e308, 0.0]
    assert parse_json("[" + "9" * 400 + "]", shown="f.jsonl", line=1) == [int("9" * 400)]
    assert parse_json('["\\ud83d\\ude00"]', shown="f.jsonl", line=1) == ["\U0001f600"]
    # lm-eval's doc/prompt/target hashes (sha256 hex) hold digit-e-digits runs in every sample line
    line = '{"doc_hash": "768f5b55c447f54df816d3618f29ed3e524a24ec6a27d164dc4b68ec", "acc": 1.0}'
    assert not flagged(line)
    assert parse_json(line, shown="f.jsonl", line=1)["acc"] == 1.0
