"""Plan files: validated before anything runs; mistakes name the file, the variant and the field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalkit.errors import InputError
from evalkit.experiment import load_plan
from evalkit.experiment.plan import SHIPPED, resolve_data
from evalkit.store import ResultsStore

GOOD = """
name: t
base: {model: gpt2-tiny, init: random}
baseline: a
variants:
  a: {}
  b: {style: phi3, lora_rank: 4}
  c: {method: dpo, from: a, beta: 0.2, data: prefs.json}
"""


def _write(tmp_path, text):
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_a_good_plan_loads_with_defaults(tmp_path):
    plan = load_plan(_write(tmp_path, GOOD))
    assert plan.seeds == [123] and plan.evaluations.mmlu is None
    assert plan.variants["c"].start_from == "a" and plan.variants["b"].lora_rank == 4
    assert plan.model_name("b", 123) == "t-b"
    assert plan._chain("c") == ["c", "a"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("b: {style: phi3, lora_rank: 4}", "b: {style: phi3, lora_rank: 0}"), "variant 'b', field 'lora_rank'"),
        (("b: {style: phi3, lora_rank: 4}", "b: {stlye: phi3}"), "variant 'b', field 'stlye': Extra inputs are not permitted"),
        (("c: {method: dpo, from: a, beta: 0.2, data: prefs.json}", "c: {method: dpo, from: zz}"), "variant 'c': from: no variant 'zz'"),
        (("baseline: a", "baseline: q"), "baseline: no variant 'q'"),
        (("b: {style: phi3, lora_rank: 4}", "b: {beta: 0.1}"), "beta and ref_model are for method: dpo"),
        (("b: {style: phi3, lora_rank: 4}", "b: {method: ppo}"), "variant 'b', field 'method'"),
        (("name: t", "name: 'a b'"), "field 'name'"),
    ],
)
def test_mistakes_name_the_file_the_variant_and_the_field(tmp_path, change, message):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(InputError) as info:
        load_plan(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_cli_exits_2_with_one_line_and_runs_nothing(tmp_path):
    path = _write(tmp_path, GOOD.replace("lora_rank: 4", "lora_rank: -1"))
    proc = subprocess.run([sys.executable, "-m", "evalkit", "--store", str(tmp_path / "s.db"), "experiment", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"evalkit: error: {path}: variant 'b', field 'lora_rank': Input should be greater than or equal to 1"
    assert not (tmp_path / "out").exists()


def test_shipped_plans_are_valid_and_found_by_name():
    assert {p.stem for p in SHIPPED.glob("*.yaml")} >= {"tiny", "ch07-exercises"}
    tiny, ch07 = load_plan("tiny"), load_plan("ch07-exercises")
    assert list(tiny.variants) == ["alpaca", "masked"] and tiny.base.init == "random"
    assert set(ch07.variants) == {"alpaca", "phi3", "masked", "lora", "dpo"}
    assert ch07.variants["dpo"].start_from == "alpaca" and ch07.variants["dpo"].method == "dpo"
    assert ch07.variants["lora"].lora_rank == 16 and ch07.variants["phi3"].style == "phi3"
    with pytest.raises(InputError, match="shipped plans: ch07-exercises, tiny"):
        load_plan("no-such-plan")


def test_relative_data_paths_resolve_against_data_dir_then_the_plan_folder(tmp_path):
    plan_file = tmp_path / "plans" / "p.yaml"
    assert resolve_data("x/d.json", plan_file=plan_file, data_dir=tmp_path / "data") == str(tmp_path / "data" / "x" / "d.json")
    assert resolve_data("d.json", plan_file=plan_file, data_dir=None) == str((tmp_path / "plans" / "d.json").resolve())
    assert resolve_data("https://h/d.json", plan_file=plan_file, data_dir=tmp_path) == "https://h/d.json"
    assert resolve_data(None, plan_file=plan_file, data_dir=None) is None
