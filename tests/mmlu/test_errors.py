"""Bad input fails at once, before any model is loaded, with an error that says what to fix."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import EvalkitError, InputError
from evalkit.mmlu import load_catalog, read_local_mmlu, resolve_model, select_tasks
from evalkit.mmlu.model import build_lm, parse_model_args
from tests.mmlu.conftest import write_jsonl

GOOD = {"question": "2+2?", "subject": "anatomy", "choices": ["1", "2", "3", "4"], "answer": 3}


def _folder_with(tmp_path, *records, raw: str | None = None):
    folder = tmp_path / "data"
    if raw is not None:
        folder.mkdir()
        (folder / "test.jsonl").write_text(raw)
    else:
        write_jsonl(folder / "test.jsonl", list(records))
    return folder


def test_unknown_subject_lists_the_valid_ones(run_cli):
    rc, out, err = run_cli("mmlu", "--model", "gpt2", "--subjects", "anatomy,astrology")
    assert rc == 2 and out == ""
    assert "unknown MMLU subject(s) 'astrology'" in err
    assert "abstract_algebra" in err and "world_religions" in err and len(err.strip().splitlines()) == 1


def test_unknown_category_lists_the_valid_ones(run_cli):
    rc, _, err = run_cli("mmlu", "--model", "gpt2", "--categories", "stem,science")
    assert rc == 2
    assert "unknown MMLU category(ies) 'science'; valid categories: stem, other, social_sciences, humanities" in err


def test_subjects_and_categories_exclude_each_other(run_cli):
    with pytest.raises(SystemExit):
        run_cli("mmlu", "--model", "gpt2", "--subjects", "anatomy", "--categories", "stem")


@pytest.mark.parametrize(
    "record, field, message",
    [
        ({**GOOD, "answer": 4}, "answer", "expected an integer 0-3"),
        ({**GOOD, "answer": "D"}, "answer", "expected an integer 0-3"),
        ({**GOOD, "answer": True}, "answer", "expected an integer 0-3"),
        ({**GOOD, "choices": ["a", "b", "c"]}, "choices", "expected a list of 4 strings"),
        ({**GOOD, "choices": ["a", "b", "c", 4]}, "choices", "expected a list of 4 strings"),
        ({**GOOD, "subject": "Anatomy"}, "subject", "is not one of lm-eval's 57 MMLU subjects"),
        ({**GOOD, "question": None}, "question", "expected a string"),
        ({k: v for k, v in GOOD.items() if k != "choices"}, "choices", "missing"),
    ],
)
def test_malformed_record_names_file_line_and_field(tmp_path, record, field, message):
    folder = _folder_with(tmp_path, GOOD, GOOD, record, GOOD)
    with pytest.raises(InputError) as caught:
        read_local_mmlu(folder, set(load_catalog().subjects))
    text = str(caught.value)
    assert text.startswith(f"{folder / 'test.jsonl'}, line 3, field '{field}': ")
    assert message in text
    assert caught.value.field == field


def test_line_that_is_not_json(tmp_path):
    folder = _folder_with(tmp_path, raw=json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(InputError, match=r"test.jsonl: line 2: not valid JSON"):
        read_local_mmlu(folder, set(load_catalog().subjects))


def test_line_that_is_not_an_object(tmp_path):
    folder = _folder_with(tmp_path, raw="[1, 2]\n")
    with pytest.raises(InputError, match=r"test.jsonl, line 1: expected a JSON object, got list"):
        read_local_mmlu(folder, set(load_catalog().subjects))


def test_missing_test_split(tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli("mmlu", "--model", "gpt2", "--data", tmp_path / "empty")
    assert rc == 2 and f"{tmp_path / 'empty' / 'test.jsonl'}" in err and "test split is required" in err


def test_data_that_is_not_a_folder(tmp_path, run_cli):
    rc, _, err = run_cli("mmlu", "--model", "gpt2", "--data", tmp_path / "nowhere")
    assert rc == 2 and "--data must be a folder holding test.jsonl" in err


def test_few_shot_without_dev_split_is_an_error(run_cli, mmlu_dir):
    rc, _, err = run_cli("mmlu", "--model", "gpt2", "--data", mmlu_dir, "--num-fewshot", "5", "--subjects", "anatomy")
    assert rc == 2
    assert f"--num-fewshot 5 needs a few-shot pool, but {mmlu_dir.resolve()} has no dev.jsonl" in err


def test_few_shot_larger_than_the_dev_split(small_mmlu):
    with pytest.raises(EvalkitError, match=r"dev.jsonl: fewer than 3 few-shot examples for anatomy"):
        select_tasks(load_catalog(), subjects=["anatomy"], data=small_mmlu, num_fewshot=3)


@pytest.mark.parametrize("spec", ["/no/such/model", "./relative/missing/dir", "missing.pth", "has space"])
def test_model_that_is_nothing_is_an_error(spec):
    with pytest.raises(EvalkitError, match="no such file or folder, and not a Hugging Face hub id"):
        resolve_model(spec)


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(EvalkitError, match=r"a folder, but not a Hugging Face model \(no config.json\)"):
        resolve_model(tmp_path)


def test_file_that_is_not_a_book_checkpoint(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("x")
    with pytest.raises(EvalkitError, match=r"a file, but not a book checkpoint \(.pth\)"):
        resolve_model(path)


def test_hub_id_is_passed_through():
    source = resolve_model("openai-community/gpt2")
    assert (source.name, source.pretrained, source.path, source.sha256) == ("openai-community/gpt2", "openai-community/gpt2", None, None)


def test_hub_model_offline_is_a_clear_error():
    with pytest.raises(EvalkitError, match=r"could not load model 'gpt2-medium' from the Hugging Face Hub"):
        build_lm(resolve_model("gpt2-medium"), backend="hf", model_args={}, batch_size=1, device="cpu")


def test_model_folder_gets_a_content_hash(tiny_gpt2, store):
    source = resolve_model(tiny_gpt2, store=store)
    assert source.name == tiny_gpt2.name and source.pretrained == str(tiny_gpt2.resolve())
    assert len(source.sha256) == 64 and resolve_model(tiny_gpt2, store=store).sha256 == source.sha256


def test_vllm_not_installed_is_a_clear_error(tiny_gpt2):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(EvalkitError, match=r"--backend vllm needs the vllm package, which is not installed"):
        build_lm(resolve_model(tiny_gpt2), backend="vllm", model_args={}, batch_size=1, device="cpu")


def test_model_args_parse_as_lm_eval_does():
    assert parse_model_args("dtype=float32,trust_remote_code=True,max_length=512") == {
        "dtype": "float32",
        "trust_remote_code": True,
        "max_length": 512,
    }
    with pytest.raises(EvalkitError, match="--model-args must not set pretrained"):
        build_lm(resolve_model("gpt2"), backend="hf", model_args={"pretrained": "x"}, batch_size=1, device="cpu")


def test_default_hub_data_offline_is_a_clear_error(run_cli, tiny_gpt2, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rc, out, err = run_cli("mmlu", "--model", tiny_gpt2, "--subjects", "anatomy", "--limit", "1", "--device", "cpu")
    assert rc == 2 and out == ""
    assert "could not load lm-eval's MMLU data set cais/mmlu from the Hugging Face Hub" in err
    assert "pass --data DIR" in err


def test_bad_batch_size_and_limit(run_cli):
    with pytest.raises(SystemExit):
        run_cli("mmlu", "--model", "gpt2", "--batch-size", "0")
    with pytest.raises(SystemExit) as exit_info:  # refused when parsed, with the range
        run_cli("mmlu", "--model", "gpt2", "--limit", "0")
    assert exit_info.value.code == 2


def test_cli_backends_are_the_library_backends():
    from evalkit.cli import MMLU_BACKENDS
    from evalkit.mmlu import BACKENDS

    assert MMLU_BACKENDS == BACKENDS
