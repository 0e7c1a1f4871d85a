"""lm-eval results files: one written by the `lm_eval` CLI (tiny random GPT-2, local MMLU) is the oracle."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evalkit.errors import InputError
from evalkit.interop.lm_eval_format import import_results, read_results
from evalkit.runs_export import export_run
from tests.conftest import shared_path

# every test here but the bad-file ones waits for one real `lm_eval` run (tens of seconds)
SUBJECTS = {"abstract_algebra": "stem", "astronomy": "stem", "philosophy": "humanities", "marketing": "other"}
LIMIT = 5

TEMPLATE = """dataset_path: json
test_split: test
output_type: multiple_choice
doc_to_text: "{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\nD. {{choices[3]}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def _write_tasks(folder, mmlu_jsonl):
    """lm-eval's own MMLU task layout (mmlu -> mmlu_<category> -> mmlu_<subject>) over the local
    MMLU test split; these override lm-eval's hub-backed tasks of the same names."""
    rows = [json.loads(line) for line in mmlu_jsonl.read_text(encoding="utf-8").splitlines()]
    (folder / "_template_yaml").write_text(TEMPLATE, encoding="utf-8")
    by_category: dict[str, list[str]] = {}
    for subject, category in SUBJECTS.items():
        data = folder / f"{subject}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows if r["subject"] == subject), encoding="utf-8")
        (folder / f"mmlu_{subject}.yaml").write_text(
            f"include: _template_yaml\ntask: mmlu_{subject}\ntask_alias: {subject}\n"
            f"dataset_kwargs:\n  data_files:\n    test: {data}\n",
            encoding="utf-8",
        )
        by_category.setdefault(category, []).append(f"mmlu_{subject}")
    aggregate = "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: True\nmetadata:\n  version: 2\n"
    for category, tasks in by_category.items():
        (folder / f"_mmlu_{category}.yaml").write_text(
            f"group: mmlu_{category}\ngroup_alias: {category}\ntask:\n" + "".join(f"  - {t}\n" for t in tasks) + aggregate,
            encoding="utf-8",
        )
    (folder / "_mmlu.yaml").write_text(
        "group: mmlu\ntask:\n" + "".join(f"  - mmlu_{c}\n" for c in by_category) + aggregate, encoding="utf-8"
    )


@pytest.fixture(scope="session")
def lm_eval_results(tmp_path_factory, tiny_gpt2):
    """(results file, stdout) of a real `lm_eval` CLI run."""
    mmlu = shared_path("mmlu", "test.jsonl")
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    _write_tasks(folder, mmlu)
    out = tmp_path_factory.mktemp("lm_eval_out")
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_gpt2}", "--tasks", "mmlu",
         "--include_path", str(folder), "--limit", str(LIMIT), "--device", "cpu", "--batch_size", "8", "--output_path", str(out), "--log_samples"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(out.rglob("results_*.json"))
    assert len(list(out.rglob("samples_mmlu_*.jsonl"))) == len(SUBJECTS)
    assert len(files) == 1
    return files[0], proc.stdout


def _table(stdout: str) -> dict[str, tuple[float, float]]:
    """alias -> (value, stderr) from the first markdown table lm_eval prints."""
    shown = {}
    for line in stdout.split("\n\n")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and cells[4] == "acc":
            shown[re.sub(r"^-\s*", "", cells[0])] = (float(cells[6]), float(cells[8]))
    return shown


@pytest.mark.slow
def test_import_equals_what_lm_eval_shows(store, run_cli, lm_eval_results, tiny_gpt2):
    path, stdout = lm_eval_results
    rc, out, err = run_cli("import", "lm-eval", path, "--name", "tiny-gpt2", store=store.path)
    assert rc == 0, err
    record = store.get_run(out.strip())
    assert (record.kind, record.model) == ("mmlu", "tiny-gpt2")
    assert record.config["num_fewshot"] == 0 and record.config["limit"] == LIMIT
    expected_names = {"acc", *(f"acc/{s}" for s in SUBJECTS), *(f"acc/{c}" for c in set(SUBJECTS.values()))}
    assert set(record.metrics) == expected_names
    shown = _table(stdout)
    assert len(shown) == len(expected_names)
    for alias, (value, stderr) in shown.items():
        m = record.metrics["acc" if alias == "mmlu" else f"acc/{alias}"]
        assert (round(m.value, 4), round(m.stderr, 4)) == (value, stderr), alias
    doc = json.loads(path.read_text(encoding="utf-8"))
    for task, result in doc["results"].items():
        m = record.metrics["acc" if task == "mmlu" else f"acc/{task.removeprefix('mmlu_')}"]
        assert (m.value, m.stderr) == (result["acc,none"], result["acc_stderr,none"]), task
    assert record.metrics["acc/astronomy"].n == LIMIT and record.metrics["acc/stem"].n == 2 * LIMIT and record.metrics["acc"].n == 4 * LIMIT
    # per-question samples from the --log_samples files, agreeing with the accuracies
    samples = dict(store.samples(record.id))
    assert len(samples) == len(SUBJECTS) * LIMIT
    first = samples["astronomy/0"]
    assert first["category"] == "stem" and first["gold"] in "ABCD" and len(first["loglikelihoods"]) == 4
    assert first["prompt"].startswith(first["question"].strip()) and first["prompt"].endswith("Answer:")
    assert first["pred"] == "ABCD"[first["loglikelihoods"].index(max(first["loglikelihoods"]))]
    for subject in SUBJECTS:
        correct = [p["correct"] for p in samples.values() if p["subject"] == subject]
        assert sum(correct) / len(correct) == pytest.approx(record.metrics[f"acc/{subject}"].value)
        assert all(p["correct"] == (p["pred"] == p["gold"]) for p in samples.values())
    # without --name the model is the file's model_name
    assert store.get_run(import_results(store, path)).model == str(tiny_gpt2)


@pytest.mark.slow
def test_export_has_lm_eval_keys_and_numbers(store, lm_eval_results, tmp_path):
    path, _ = lm_eval_results
    original = json.loads(path.read_text(encoding="utf-8"))
    run_id = import_results(store, path, name="tiny-gpt2")
    exported = json.loads(export_run(store, run_id, "lm-eval", tmp_path / "results.json").read_text(encoding="utf-8"))
    assert list(exported) == list(original)
    assert exported["results"].keys() == original["results"].keys()
    for task, result in original["results"].items():
        assert exported["results"][task] == result, task
    assert exported["groups"] == original["groups"]
    assert {g: sorted(s) for g, s in exported["group_subtasks"].items()} == {g: sorted(s) for g, s in original["group_subtasks"].items()}
    for key in ("n-shot", "higher_is_better"):
        assert exported[key] == original[key], key
    assert {t: n["effective"] for t, n in exported["n-samples"].items()} == {t: n["effective"] for t, n in original["n-samples"].items()}
    assert exported["configs"].keys() == original["configs"].keys()
    assert exported["lm_eval_version"] == original["lm_eval_version"]
    # and it imports back to the same numbers
    again = import_results(store, tmp_path / "results.json", name="again")
    assert {k: (m.value, m.stderr, m.n) for k, m in store.metrics(again).items()} == {
        k: (m.value, m.stderr, m.n) for k, m in store.metrics(run_id).items()
    }


def test_export_of_an_evalkit_mmlu_run_uses_sample_categories(store, tmp_path):
    """An mmlu run as evalkit's MMLU mode writes it (samples carry subject and category)."""
    with store.start_run("mmlu", "m", {"num_fewshot": 5, "lm_eval_version": "0.4.13"}) as run:
        run.log_metrics({"acc": 0.5, "acc/stem": 0.5, "acc/college_physics": 0.5})
        run.add_sample("college_physics/0", {"subject": "college_physics", "category": "stem", "correct": True})
    doc = json.loads(export_run(store, run.id, "lm-eval", tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["group_subtasks"] == {"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_college_physics"]}
    assert doc["results"]["mmlu"]["acc_stderr,none"] == "N/A"  # lm-eval's spelling of an unknown stderr
    assert doc["n-shot"]["mmlu_college_physics"] == 5
    parsed = read_results(tmp_path / "r.json")
    assert {k: m.value for k, m in parsed["metrics"].items()} == {"acc": 0.5, "acc/stem": 0.5, "acc/college_physics": 0.5}
    assert doc["model_name"] == "m"


@pytest.mark.slow
def test_bad_logged_samples_name_file_and_line(store, lm_eval_results, tmp_path):
    import shutil

    path, _ = lm_eval_results
    copy = tmp_path / path.name
    for f in path.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    broken = next(tmp_path.glob("samples_mmlu_philosophy_*.jsonl"))
    lines = broken.read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "filtered_resps"})
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_results(store, copy, name="x")
    assert str(err.value).startswith(f"{broken}: line 2: not an lm-eval MMLU sample (KeyError")
    assert store.list_runs() == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "not valid JSON"),
        ('[{"results": {}}]', "no 'results' object; expected an lm-eval results file"),
        ('{"results": {"hellaswag": {"acc,none": 0.3}}}', "no MMLU tasks in 'results' (found: hellaswag)"),
        ('{"results": {"mmlu": {"acc_norm,none": 0.3}}}', "'results.mmlu' has no 'acc,none'"),
        ('{"results": {"mmlu_astronomy": {"acc,none": 0.3}}, "model_name": "m"}', "no 'mmlu' result (the whole of MMLU)"),
        ('{"results": {"mmlu": {"acc,none": 0.3}}}', "names no model (model_name); pass --name"),
    ],
)
def test_bad_results_files(store, tmp_path, text, message):
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_results(store, path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert store.list_runs() == []


@pytest.mark.parametrize(
    ("model_args", "precision"),
    [
        ("pretrained=m,dtype=bfloat16", "bf16"),
        ({"pretrained": "m", "dtype": "torch.float16"}, "fp16"),
        ("pretrained=m,dtype=float32", "fp32"),
        ("pretrained=m", None),  # lm-eval's default: not recorded, compared as fp32
        ({"pretrained": "m", "dtype": "auto"}, None),  # the checkpoint's own dtype: unknown here
    ],
)
def test_import_records_the_precision_lm_eval_ran_in(tmp_path, model_args, precision):
    path = tmp_path / "results.json"
    doc = {"results": {"mmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01}}, "config": {"model_args": model_args}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    read = read_results(path)
    assert read["config"]["precision"] == precision and read["model_name"] == "m"
