"""Precision: what ``auto`` resolves to, that bf16 really changes the computation, and that
every run records the precision it used (finetune, generate)."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore
from evalkit.generate_run import generate_responses
from finetune import load_records, split_records, train
import finetune.precision as precision
from tests.finetune.conftest import TINY_TRAINING


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set what the CPU detector reports (the real one reads /proc/cpuinfo)."""

    def _set(native: bool):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)

    return _set


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_where_the_cpu_has_native_bf16(cpu_bf16, native, expected):
    cpu_bf16(native)
    assert precision.resolve_precision("auto", "cpu") == expected
    # explicit choices are kept whatever the hardware
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"


@pytest.mark.parametrize(
    ("machine", "flags", "native"),
    [
        ("x86_64", "fpu sse avx2 avx512f avx512bw", False),  # AVX512 without BF16: emulated only
        ("x86_64", "fpu avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4, Intel Cooper Lake
        ("x86_64", "fpu avx512f amx_tile amx_bf16", True),  # Intel Sapphire Rapids
        ("x86_64", "fpu sse avx2 fma", False),
        ("aarch64", "fp asimd sve i8mm bf16", True),  # Arm Neoverse V1/N2, Graviton 3
        ("aarch64", "fp asimd", False),
    ],
)
def test_cpu_detector_reads_the_feature_flags(monkeypatch, machine, flags, native):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: set(flags.split()))
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.cpu_has_native_bf16() is native
    finally:
        precision.cpu_has_native_bf16.cache_clear()


def test_cpu_flags_come_from_this_machines_cpuinfo():
    cpuinfo = "/proc/cpuinfo"
    try:
        text = open(cpuinfo).read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    line = next((x for x in text.splitlines() if x.split(":")[0].strip() in ("flags", "Features")), None)
    if line is None:
        pytest.skip("/proc/cpuinfo lists no feature flags here")
    assert precision._cpu_flags() == set(line.split(":", 1)[1].split())


def test_bad_precision_is_a_clear_error():
    with pytest.raises(EvalkitError, match="fp16 needs a CUDA GPU"):
        precision.resolve_precision("fp16", "cpu")
    with pytest.raises(EvalkitError, match="precision must be one of auto, fp32, bf16, fp16"):
        precision.resolve_precision("int8", "cpu")
    with pytest.raises(EvalkitError, match="precision must be one of fp32, bf16"):
        precision.inference_dtype("auto")


def test_bf16_changes_the_losses_within_tolerance_and_is_recorded(tmp_path, book_data_file, cpu_bf16):
    settings = TINY_TRAINING | {"max_steps": 4, "eval_every": 2, "save_every": 4}
    fp32 = train(data=book_data_file, out=tmp_path / "fp32", **settings)
    cpu_bf16(True)  # auto resolves as on a CPU with native bf16 (the run itself works anywhere)
    with ResultsStore(tmp_path / "evalkit.db") as store:
        bf16 = train(data=book_data_file, out=tmp_path / "bf16", store=store, **settings | {"precision": "auto"})
        config = store.get_run(bf16.run_id).config
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    losses_fp32 = [e[k] for e in fp32.log for k in ("train_loss", "val_loss")]
    losses_bf16 = [e[k] for e in bf16.log for k in ("train_loss", "val_loss")]
    assert losses_bf16 != losses_fp32  # autocast really ran the matmuls in bf16
    assert losses_bf16 == pytest.approx(losses_fp32, rel=1e-2)  # ... and trains the same model
    # the choice is in the run's config and in the checkpoint's metadata, resolved (not "auto")
    assert config["precision"] == "bf16"
    meta = json.loads((tmp_path / "bf16" / "evalkit_finetune.json").read_text())
    assert meta["hyperparameters"]["precision"] == "bf16"
    meta = json.loads((tmp_path / "fp32" / "evalkit_finetune.json").read_text())
    assert meta["hyperparameters"]["precision"] == "fp32"


def test_cli_prints_and_reports_the_precision(tmp_path, book_data_file, run_cli, cpu_bf16):
    cpu_bf16(False)
    args = ["finetune", "--format", "json", "--model", "gpt2-tiny", "--init", "random", "--data", book_data_file, "--limit", "20",
            "--batch-size", "2", "--max-length", "16", "--max-steps", "1", "--out", tmp_path / "out", "--no-progress"]
    rc, stdout, stderr = run_cli(*args)
    assert rc == 0, stderr
    assert json.loads(stdout)["precision"] == "fp32" and "precision: fp32" in stderr
    rc, _, stderr = run_cli(*args[:-3], "--out", tmp_path / "other", "--precision", "fp16")
    assert rc == 2 and "fp16 needs a CUDA GPU" in stderr


def test_generate_records_its_precision_and_bf16_is_a_separate_run(tiny_gpt2, book_data_file, store):
    records = split_records(load_records(book_data_file)[:60])["test"][:2]
    options = dict(store=store, eval_set="book/test", max_new_tokens=4, batch_size=2, progress=False)
    fp32 = generate_responses(tiny_gpt2, records, **options)
    bf16 = generate_responses(tiny_gpt2, records, precision="bf16", **options)
    assert fp32 != bf16  # not reused across precisions
    assert store.get_run(fp32).config["precision"] == "fp32"
    assert store.get_run(bf16).config["precision"] == "bf16"
    assert store.sample_count(bf16) == 2


def test_generate_cli_accepts_bf16(tmp_path, tiny_gpt2, book_data_file, run_cli):
    rc, stdout, stderr = run_cli("generate", "--model", tiny_gpt2, "--data", book_data_file, "--split", "test", "--max-new-tokens", "2",
                                 "--precision", "bf16", "--no-progress")
    assert rc == 0, stderr
    rc, shown, _ = run_cli("runs", "show", stdout.strip(), "--format", "json")
    assert json.loads(shown)["config"]["precision"] == "bf16"
