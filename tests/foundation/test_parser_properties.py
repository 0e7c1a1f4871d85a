"""Property tests of evalkit's file parsers (hypothesis): what evalkit writes it reads back
exactly, and no input, however odd, raises anything but evalkit's own InputError."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.errors import InputError
from evalkit.interop._records import read_csv_records
from evalkit.interop.arena import battles_text, read_battles
from evalkit.interop.lm_eval_format import read_results
from evalkit.records import json_lines, read_json_document, read_json_records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: text that stresses line splitting: the separators str.splitlines() breaks at, quotes, commas
TRICKY = st.text(
    alphabet=st.one_of(st.sampled_from('\u0085\u2028\u2029\n\r\t",\\{}[]\x00 é😀'), st.characters(blacklist_categories=("Cs",))),
    max_size=30,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | TRICKY,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TRICKY, children, max_size=4),
    max_leaves=20,
)
OBJECTS = st.lists(st.dictionaries(TRICKY, JSON_VALUES, max_size=5), min_size=1, max_size=6)


@SETTINGS
@given(records=OBJECTS)
def test_json_lines_written_with_raw_unicode_read_back_exactly(tmp_path, records):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert [r.value for r in read_json_records(path)] == records
    assert [r.line for r in read_json_records(path)] == list(range(1, len(records) + 1))


@SETTINGS
@given(records=OBJECTS, indent=st.sampled_from([None, 2]))
def test_json_lists_read_back_exactly(tmp_path, records, indent):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=indent), encoding="utf-8")
    assert [r.value for r in read_json_records(path)] == records


@SETTINGS
@given(lines=st.lists(TRICKY.filter(lambda t: "\n" not in t), max_size=6))
def test_json_lines_splits_on_newline_only(lines):
    assert [line for _, line in json_lines("\n".join(lines))] == [line.removesuffix("\r") for line in lines] or not lines


BATTLES = st.lists(
    st.fixed_dictionaries({
        "question_id": TRICKY.filter(str.strip),
        "model_a": st.sampled_from(["alpha", "beta, the second", 'g"amma']),
        "model_b": st.sampled_from(["delta", "eps\u2028ilon"]),
        "winner": st.sampled_from(["model_a", "model_b", "tie", "tie (bothbad)"]),
        "judge": TRICKY.filter(str.strip),
        "turn": st.just(1),
        "anony": st.just(True),
        "tstamp": st.floats(0, 4e9),
        "conversation_a": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TRICKY}), max_size=2),
        "conversation_b": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TRICKY}), max_size=2),
    }),
    min_size=1, max_size=5,
)


@SETTINGS
@given(battles=BATTLES)
def test_csv_reader_reads_evalkits_own_battle_export_back(tmp_path, battles):
    path = tmp_path / "b.csv"
    path.write_bytes(battles_text(battles, as_csv=True).encode("utf-8"))
    rows = read_csv_records(path, expected="battles", empty="")
    assert len(rows) == len(battles)
    for row, battle in zip(rows, battles):
        for key, value in battle.items():
            cell = row[key]
            if isinstance(value, (list, dict)):
                assert json.loads(cell) == value
            elif isinstance(value, float):
                assert float(cell) == value
            else:
                assert cell == str(value)
    votes = read_battles(path)
    assert [(v["model_a"], v["model_b"]) for v in votes] == [(b["model_a"], b["model_b"]) for b in battles]


def _only_input_errors(call):
    try:
        call()
    except InputError:
        pass


READERS = [
    lambda p: read_json_records(p),
    lambda p: read_json_records(p, objects_only=False, nan_as_null=True),
    lambda p: read_json_document(p),
    lambda p: read_csv_records(p, expected="x"),
    lambda p: read_battles(p),
    lambda p: read_results(p),
]
NASTY_TEXT = st.one_of(
    st.binary(max_size=200),
    TRICKY.map(lambda t: t.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.lists(JSON_VALUES.map(lambda v: json.dumps(v)), max_size=4).map(lambda ls: "\n".join(ls).encode()),
    st.sampled_from([b"[" * 5000, b'{"a": NaN}', b'"\\ud800"', b"1e999", b'a,"b\n1,2', b"\xef\xbb\xbf[]", b'{"results": {"mmlu": {"acc,none": []}}}']),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=NASTY_TEXT, reader=st.sampled_from(range(len(READERS))), suffix=st.sampled_from([".json", ".jsonl", ".csv"]))
def test_no_input_raises_anything_but_input_error(tmp_path, data, reader, suffix):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(data)
    _only_input_errors(lambda: READERS[reader](path))


@SETTINGS
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_a_number_read_is_finite_or_refused(tmp_path, value):
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps({"x": value}) + "\n", encoding="utf-8")
    try:
        read = read_json_records(path)[0].value["x"]
    except InputError as exc:
        assert not math.isfinite(value) and "field 'x'" in str(exc)
    else:
        assert read == value and math.isfinite(read)
