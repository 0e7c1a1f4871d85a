"""One checkpoint, one hash: a generate run and an MMLU run of the same weights record the same
model hash, so provenance can show that two runs used the same model."""

from __future__ import annotations

from evalkit.generate_run import generate_responses
from evalkit.mmlu.model import resolve_model
from evalkit.schema import model_hash


def test_generate_and_mmlu_record_the_same_model_hash(tiny_gpt2, store):
    records = [{"id": f"r{i}", "instruction": f"Say {i}", "input": "", "output": str(i)} for i in range(2)]
    run_id = generate_responses(tiny_gpt2, records, store=store, eval_set="hash-check", max_new_tokens=2,
                                batch_size=2, device="cpu", progress=False)
    generated = store.get_run(run_id).model_hash
    mmlu_source = resolve_model(tiny_gpt2, store=store)
    assert generated is not None and len(generated) == 64
    assert generated == mmlu_source.sha256 == model_hash(tiny_gpt2)
    assert store.get_run(run_id).config["model_hash"] == generated


def test_finetune_does_not_import_the_results_store():
    import subprocess
    import sys

    code = (
        "import sys, finetune, finetune.generate, finetune.train, finetune.prompts, finetune.book_import\n"
        "print('evalkit.store' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
