"""The typed definition of a run: payload/config/metric validation, safe ids, comparability,
and the one model hash (property tests with hypothesis where a rule holds for all inputs)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit import schema
from evalkit.schema import SchemaError
from evalkit.store import Metric, ResultsStore

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
text = st.text(max_size=40)


@st.composite
def generate_payloads(draw):
    return {
        "instruction": draw(text), "input": draw(text), "output": draw(text), "response": draw(text),
        "prompt": draw(st.none() | text), "tokens": draw(st.none() | st.integers(0, 10**6)),
        "seconds": draw(st.none() | st.floats(0, 1e6, allow_nan=False)),
    }


@settings(max_examples=60, deadline=None)
@given(generate_payloads())
def test_valid_payload_round_trips_through_the_store_unchanged(tmp_path_factory, payload):
    store = ResultsStore(tmp_path_factory.mktemp("s") / "s.db")
    with store.start_run("generate", "m", {"eval_set": "e"}) as run:
        run.add_sample("item-1", payload)
    assert dict(store.samples(run.id)) == {"item-1": payload}
    store.close()


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["seconds", "tokens", "nested"]),
    non_finite,
)
def test_nan_or_infinity_anywhere_in_a_payload_is_refused(field, bad):
    payload = {"instruction": "i", "response": "r", "seconds": 1.0}
    payload[field] = {"deep": [1.0, bad]} if field == "nested" else bad
    with pytest.raises(SchemaError, match="item 'x1'.*NaN or Infinity|item 'x1'.*field"):
        schema.validate_sample("generate", "x1", payload, where="run r")


@settings(max_examples=60, deadline=None)
@given(st.one_of(finite, non_finite), st.one_of(st.none(), finite, non_finite))
def test_metric_values_must_be_finite(value, stderr):
    ok = math.isfinite(value) and (stderr is None or (math.isfinite(stderr) and stderr >= 0))
    if ok:
        schema.validate_metric("mmlu", "acc", value, stderr, 3)
    else:
        with pytest.raises(SchemaError, match="metric 'acc'"):
            schema.validate_metric("mmlu", "acc", value, stderr, 3)


def test_store_never_writes_a_nan_metric_and_names_run_and_metric(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    run = store.start_run("mmlu", "m", {})
    with pytest.raises(SchemaError, match=rf"run {run.id}: metric 'acc/stem', field 'value'"):
        run.log_metrics({"acc": Metric(0.5, None, 10), "acc/stem": Metric(math.nan, None, 4)})
    assert store.metrics(run.id) == {}  # all or nothing
    with pytest.raises(SchemaError, match="unknown mmlu metric 'accuracy'"):
        run.log_metric("accuracy", 0.5)


@pytest.mark.parametrize(
    "kind, payload, field",
    [
        ("judge-score", {"score": 150}, "score"),
        ("judge-score", {"score": "high"}, "score"),
        ("judge-score", {"status": "weird"}, "status"),
        ("judge-pairwise", {"preference": 3}, "preference"),
        ("human", {"outcome": "maybe"}, "outcome"),
        ("human", {"rater": "../evil"}, "rater"),
        ("human", {"seconds": -1}, "seconds"),
        ("mmlu", {"correct": "yes please"}, "correct"),
        ("mmlu", {"loglikelihoods": [-1.0, "x"]}, "loglikelihoods.1"),
        ("arena", {"battles": -3}, "battles"),
        ("generate", {"tokens": 1.5}, "tokens"),
    ],
)
def test_payload_of_the_wrong_type_names_item_and_field(kind, payload, field):
    with pytest.raises(SchemaError, match=rf"run r1, item 'it': field '{field}'"):
        schema.validate_sample(kind, "it", payload, where="run r1")


def test_payload_must_be_an_object():
    with pytest.raises(SchemaError, match="payload must be a JSON object, not str"):
        schema.validate_sample("generate", "it", "just text")


def test_nan_in_a_free_text_field_the_schema_names_is_stored_as_null(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("judge-pairwise", "m", {}) as run:
        run.add_sample("i1", {"preference": 2.0, "status": "ok", "raw_completion": math.nan})
    assert dict(store.samples(run.id)) == {"i1": {"preference": 2.0, "status": "ok", "raw_completion": None}}


@given(st.text(min_size=1, max_size=30))
def test_safe_ids_never_leave_a_folder(value):
    if schema.is_safe_id(value):
        assert "/" not in value and "\\" not in value and "\x00" not in value and ".." not in value
        assert value not in (".", "")


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".", "a\\b", "a\x00b", "", "/abs", "x/../y"])
def test_unsafe_run_ids_are_refused(bad):
    with pytest.raises(SchemaError):
        schema.check_safe_id(bad, "run id")


def test_hub_model_names_may_have_one_slash_but_not_dot_dot():
    assert schema.check_safe_id("openai-community/gpt2", "model", allow_slash=True)
    assert schema.check_safe_id("/models/tiny-gpt2", "model", allow_slash=True)  # lm-eval's pretrained=/path
    for bad in ("../gpt2", "a/./b", "a/..", "a\\b", "a\x00b"):
        with pytest.raises(SchemaError):
            schema.check_safe_id(bad, "model", allow_slash=True)


def test_config_must_be_an_object_of_finite_values():
    with pytest.raises(SchemaError, match="'config' must be a JSON object, not list"):
        schema.validate_config("mmlu", [1, 2])
    with pytest.raises(SchemaError, match=r"config.options.temperature' is NaN"):
        schema.validate_config("judge-score", {"options": {"temperature": math.nan}})
    with pytest.raises(SchemaError, match=r"config.options.temperature"):
        schema.validate_config("judge-score", {"options": {"temperature": -1}})


@given(st.floats(0, 2, allow_nan=False), st.floats(0, 2, allow_nan=False))
def test_two_judge_runs_are_comparable_exactly_when_their_settings_agree(t1, t2):
    base = {"eval_set": "e", "judge_model": "j", "judge_digest": "d", "template_hash": "t"}
    a = {**base, "options": {"temperature": t1, "seed": 1}}
    b = {**base, "options": {"temperature": t2, "seed": 1}}
    same = schema.comparability_key("judge-score", a) == schema.comparability_key("judge-score", b)
    assert same == (t1 == t2) == (schema.config_differences("judge-score", a, b) == [])


def test_reference_and_data_descriptions_compare_by_identity_only():
    a = {"reference": {"source": "gpt4", "hash": "x"}, "eval_set": "e"}
    b = {"reference": "gpt4", "eval_set": "e"}
    assert schema.config_differences("judge-pairwise", a, b) == []
    m1 = {"data": {"source": "local", "sha256": "s", "folder": "/a"}}
    m2 = {"data": {"source": "local", "sha256": "s", "folder": "/b"}}
    assert schema.config_differences("mmlu", m1, m2) == []


def test_lm_eval_import_task_and_evalkit_eval_set_name_the_same_setting():
    assert schema.comparability_values("mmlu", {"task": "mmlu"})["eval_set"] == "mmlu"
    assert schema.comparability_values("mmlu", {"eval_set": "mmlu"})["eval_set"] == "mmlu"


def test_every_kind_has_a_config_model_a_payload_model_metrics_and_comparability():
    for kind in schema.RUN_KINDS:
        assert kind in schema.CONFIG_MODELS and kind in schema.PAYLOAD_MODELS
        assert schema.METRIC_NAMES[kind] and kind in schema.COMPARABILITY


def test_model_hash_of_a_file_is_its_sha256(tmp_path):
    import hashlib

    path = tmp_path / "w.pth"
    path.write_bytes(b"weights" * 1000)
    assert schema.model_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert schema.model_hash("gpt2-medium") is None


def test_model_hash_of_a_folder_changes_with_the_weights_not_the_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": 1}))
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    (tmp_path / "vocab.json").write_text("{}")
    first = schema.model_hash(tmp_path)
    (tmp_path / "vocab.json").write_text('{"x": 1}')
    assert schema.model_hash(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    assert schema.model_hash(tmp_path) != first


@pytest.mark.parametrize("kind", ["mmlu", "generate"])
def test_bf16_runs_never_share_a_setup_with_fp32_ones(kind):
    # a run from before precision was recorded computed in fp32: it ranks beside an fp32 run
    recorded_fp32, unrecorded, bf16 = {"precision": "fp32"}, {}, {"precision": "bf16"}
    assert schema.comparability_key(kind, recorded_fp32) == schema.comparability_key(kind, unrecorded)
    assert schema.comparability_key(kind, bf16) != schema.comparability_key(kind, recorded_fp32)
    assert schema.config_differences(kind, recorded_fp32, bf16) == [("precision", "fp32", "bf16")]


def test_reading_commands_never_build_the_pydantic_models(tmp_path):
    # runs list / leaderboard read validated rows: importing pydantic and building the models
    # (about 0.2 s) is only paid by a command that writes
    import subprocess
    import sys

    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {"eval_set": "e"}) as run:
        run.add_sample("q1", {"correct": True})
        run.log_metric("acc", 1.0, n=1)
    store.close()
    code = ("import sys; from evalkit.cli import main\n"
            "for argv in (['runs', 'list'], ['leaderboard', '--format', 'json']):\n"
            "    try:\n        main(['--store', sys.argv[1], *argv])\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "print('PYDANTIC', 'pydantic' in sys.modules, 'evalkit._schema_models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.db")], capture_output=True, text=True, check=True).stdout
    assert "PYDANTIC False False" in out
    assert schema.CONFIG_MODELS["mmlu"] is schema.MmluConfig  # still reachable from evalkit.schema
