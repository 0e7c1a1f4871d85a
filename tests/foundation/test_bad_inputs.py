"""Every door an input comes through, tried with bad input: one line, exit 2, store unchanged.

Each case runs ``evalkit ...`` in-process (``evalkit.cli.main``) against a copy of a small store
that already holds runs, and asserts: exit status 2, exactly one line on stderr that names the
file / record / field or the option, no traceback, and the store's tables byte-for-byte as they
were (sha256 of ``iterdump``). The table is built from three parts: every file-reading command x
every way a file can be unreadable; format-specific bad records; every numeric / enumerated option
with a value outside its range.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evalkit.cli import main


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {d}: the case's folder, {f}: its input file
    content: bytes | None = None  # what {f} holds; None: no file
    expect: tuple[str, ...] = ()  # substrings the error line must hold ({f} / {d} substituted)
    layout: str = "file"  # file | missing | folder | under-file
    extra: dict[str, bytes] = field(default_factory=dict)  # more files in {d}


# -- fixtures ------------------------------------------------------------------------------------

GOOD_RESPONSES = b'{"instruction": "Name a colour.", "input": "", "output": "Red.", "model_response": "Blue."}\n'
PREFERENCES = "".join(
    json.dumps({"instruction": f"Q{i}?", "input": "", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n" for i in range(4)
).encode()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with a generate run and an arena-imported human run, and a rating bundle's key."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "responses.jsonl").write_bytes(GOOD_RESPONSES)
    battles = root / "battles.jsonl"
    battles.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a", "question_id": "q1", "tstamp": 1.7e9}) + "\n")
    prefs = root / "prefs.jsonl"
    prefs.write_bytes(PREFERENCES)
    store = root / "evalkit.db"
    for argv in (["import", "responses", str(root / "responses.jsonl"), "--name", "m"], ["import", "arena", str(battles)],
                 ["pairs", "from-preference", str(prefs), "--n", "all", "--out", str(root / "bundle")]):
        assert main(["--store", str(store), *argv]) == 0
    key = json.loads((root / "bundle" / "key.json").read_text(encoding="utf-8"))
    return {"store": store, "key": root / "bundle" / "key.json", "pair": next(iter(key["pairs"])), "bundle": key.get("bundle")}


def _dump(store: Path) -> str:
    """sha256 of every table's rows (the store's content, whatever its pages look like).

    The ``cache`` table is left out: it memoises file hashes and judge answers, so reading a
    checkpoint's weights may add a row there before the weights turn out to be corrupt; runs,
    metrics, samples and meta must not change at all."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        lines = [line for line in conn.iterdump() if not line.startswith('INSERT INTO "cache"')]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()
    finally:
        conn.close()


def _bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the table -----------------------------------------------------------------------------------

#: Commands that read one file named {f}, with the extension they expect.
FILE_COMMANDS = {
    "import-responses": (("import", "responses", "{f}"), ".jsonl"),
    "import-alpaca-eval": (("import", "alpaca-eval", "{f}"), ".json"),
    "import-lm-eval": (("import", "lm-eval", "{f}"), ".json"),
    "import-arena": (("import", "arena", "{f}"), ".jsonl"),
    "runs-import": (("runs", "import", "{f}"), ".json"),
    "pairs-from-preference": (("pairs", "from-preference", "{f}", "--out", "{d}/bundle"), ".jsonl"),
    "pairs-import-key": (("pairs", "import", "{f}", "{d}/ratings.jsonl"), ".json"),
    "pairs-import-ratings": (("pairs", "import", "{key}", "{f}"), ".jsonl"),
    "judge-responses": (("judge", "--responses", "{f}", "--host", "http://127.0.0.1:9"), ".jsonl"),
    "judge-eval-set": (("judge", "--responses", "{d}/good.jsonl", "--eval-set", "{f}", "--host", "http://127.0.0.1:9"), ".jsonl"),
    "judge-prompt-template": (("judge", "--responses", "{d}/good.jsonl", "--prompt-template", "{f}", "--host", "http://127.0.0.1:9"), ".txt"),
    "finetune-data": (("finetune", "--init", "random", "--model", "gpt2-tiny", "--data", "{f}", "--out", "{d}/ft", "--no-progress"), ".json"),
    "finetune-style": (("finetune", "--init", "random", "--model", "gpt2-tiny", "--style", "{f}", "--out", "{d}/ft", "--no-progress"), ".json"),
}

#: Ways a file can be unusable whatever it should hold: (id, layout, content, expected words).
FILE_FAULTS = [
    ("missing", "missing", None, ("no such file",)),
    ("folder", "folder", None, ("is a folder",)),
    ("under-a-file", "under-file", None, ()),
    ("empty", "file", b"", ()),
    ("not-utf8", "file", b'{"instruction": "caf\xe9"}\n', ("UTF-8",)),
    ("deep-nesting", "file", b"[" * 200_000, ("nested too deeply",)),
    ("not-json", "file", b"{oops\n", ()),
]
#: JSON values no reader may take (the template is read as text, so not these).
JSON_FAULTS = [
    ("lone-surrogate", b'{"instruction": "\\ud800", "input": "", "output": "", "model_response": "x"}\n', ("surrogate", "instruction")),
    ("infinity", b'{"instruction": "q", "input": "", "output": "", "model_response": "x", "seconds": Infinity}\n', ("inf", "seconds")),
    ("huge-number", b'{"instruction": "q", "input": "", "output": "", "model_response": "x", "seconds": 1e999}\n', ("inf", "seconds")),
    ("top-level-string", b'"just text"\n', ()),
    ("top-level-number", b"42\n", ()),
]

FILE_CASES = [
    Case(f"{command}/{fault}", argv, content, expect, layout)
    for command, (argv, _ext) in FILE_COMMANDS.items()
    for fault, layout, content, expect in FILE_FAULTS
    if not (command == "judge-prompt-template" and fault in ("deep-nesting", "not-json"))  # a template is text
] + [
    Case(f"{command}/{fault}", argv, content, expect)
    for command, (argv, _ext) in FILE_COMMANDS.items()
    if command != "judge-prompt-template"
    for fault, content, expect in JSON_FAULTS
]

LM_EVAL = {"results": {"mmlu": {"acc,none": 0.5, "acc_stderr,none": 0.1}}, "model_name": "m"}


def _lm_eval(**changes) -> bytes:
    doc = json.loads(json.dumps(LM_EVAL))
    for dotted, value in changes.items():
        target = doc
        *parents, last = dotted.split("/")
        for part in parents:
            target = target[part]
        target[last] = value
    return json.dumps(doc).encode()


def _battle(**changes) -> bytes:
    return (json.dumps({"model_a": "a", "model_b": "b", "winner": "model_a", "question_id": "q", **changes}) + "\n").encode()


RECORD_CASES = [
    # lm-eval results with odd types
    Case("lm-eval/acc-string", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc,none": "0.5"}), ("results.mmlu", "acc,none")),
    Case("lm-eval/acc-null", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc,none": None}), ("acc,none",)),
    Case("lm-eval/acc-list", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc,none": [0.5]}), ("acc,none",)),
    Case("lm-eval/acc-above-1", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc,none": 1.5}), ("acc,none",)),
    Case("lm-eval/acc-bool", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc,none": True}), ("acc,none",)),
    Case("lm-eval/stderr-list", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc_stderr,none": [1]}), ("acc_stderr,none",)),
    Case("lm-eval/stderr-negative", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/acc_stderr,none": -0.1}), ("acc_stderr,none",)),
    Case("lm-eval/results-list", ("import", "lm-eval", "{f}"), _lm_eval(results=[1, 2]), ("results",)),
    Case("lm-eval/result-string", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu": "0.5"}), ("results.mmlu",)),
    Case("lm-eval/n-samples-list", ("import", "lm-eval", "{f}"), _lm_eval(**{"n-samples": [1]}), ("n-samples",)),
    Case("lm-eval/n-samples-string", ("import", "lm-eval", "{f}"), _lm_eval(**{"n-samples": {"mmlu": {"effective": "ten"}}}), ("n-samples",)),
    Case("lm-eval/sample-len-float", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/sample_len": 2.5}), ("sample_len",)),
    Case("lm-eval/sample-len-negative", ("import", "lm-eval", "{f}"), _lm_eval(**{"results/mmlu/sample_len": -3}), ("sample_len",)),
    Case("lm-eval/group-subtasks-list", ("import", "lm-eval", "{f}"), _lm_eval(group_subtasks=["mmlu"]), ("group_subtasks",)),
    Case("lm-eval/group-subtasks-string-members", ("import", "lm-eval", "{f}"), _lm_eval(group_subtasks={"mmlu": "mmlu_x"}), ("group_subtasks",)),
    Case("lm-eval/n-shot-list", ("import", "lm-eval", "{f}"), _lm_eval(**{"n-shot": {"mmlu": [0]}}), ("n-shot",)),
    Case("lm-eval/n-shot-list-top", ("import", "lm-eval", "{f}"), _lm_eval(**{"n-shot": [0]}), ("n-shot",)),
    Case("lm-eval/config-list", ("import", "lm-eval", "{f}"), _lm_eval(config=[1]), ("config",)),
    Case("lm-eval/model-name-number", ("import", "lm-eval", "{f}"), _lm_eval(model_name=5), ("model_name",)),
    Case("lm-eval/nan", ("import", "lm-eval", "{f}"), b'{"results": {"mmlu": {"acc,none": NaN}}, "model_name": "m"}', ("results.mmlu", "acc,none")),
    # arena battles
    Case("arena/tstamp-1e300", ("import", "arena", "{f}"), _battle(tstamp=1e300), ("record 0", "tstamp")),
    Case("arena/tstamp-text", ("import", "arena", "{f}"), _battle(tstamp="yesterday"), ("record 0", "tstamp")),
    Case("arena/tstamp-list", ("import", "arena", "{f}"), _battle(tstamp=[1]), ("record 0", "tstamp")),
    Case("arena/tstamp-bool", ("import", "arena", "{f}"), _battle(tstamp=True), ("record 0", "tstamp")),
    Case("arena/tstamp-negative-huge", ("import", "arena", "{f}"), _battle(tstamp=-1e20), ("record 0", "tstamp")),
    Case("arena/winner", ("import", "arena", "{f}"), _battle(winner="nobody"), ("record 0", "winner")),
    Case("arena/model-number", ("import", "arena", "{f}"), _battle(model_a=7), ("record 0", "model_a")),
    Case("arena/model-missing", ("import", "arena", "{f}"), b'{"model_b": "b", "winner": "tie"}\n', ("record 0", "model_a")),
    Case("arena/self-battle", ("import", "arena", "{f}"), _battle(model_b="a"), ("record 0", "model_b")),
    Case("arena/conversation-not-list", ("import", "arena", "{f}"), _battle(conversation_a={"role": "user"}), ("record 0", "conversation_a")),
    Case("arena/no-winner-field", ("import", "arena", "{f}"), b'{"model_a": "a", "model_b": "b"}\n', ("winner",)),
    Case("arena/csv-unterminated-quote", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "line"),
         extra={"b.csv": b'model_a,model_b,winner\na,b,model_a\na,"b,model_b\nc,d,tie\n'}),
    Case("arena/csv-ragged-row", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "record 1", "cells"),
         extra={"b.csv": b"model_a,model_b,winner\na,b,model_a\na,b,tie,extra\n"}),
    Case("arena/csv-short-row", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "record 0", "cells"),
         extra={"b.csv": b"model_a,model_b,winner\na,b\n"}),
    Case("arena/csv-tstamp", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "record 0", "tstamp"),
         extra={"b.csv": b"model_a,model_b,winner,tstamp\na,b,model_a,1e300\n"}),
    Case("arena/csv-header-only", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "no rows"),
         extra={"b.csv": b"model_a,model_b,winner\n"}),
    Case("arena/csv-not-utf8", ("import", "arena", "{d}/b.csv"), None, ("b.csv", "UTF-8"),
         extra={"b.csv": b"model_a,model_b,winner\n\xff,b,tie\n"}),
    # responses
    Case("responses/response-number", ("import", "responses", "{f}"), b'{"instruction": "q", "model_response": 5}\n', ("record 0", "model_response")),
    Case("responses/instruction-missing", ("import", "responses", "{f}"), b'{"model_response": "x"}\n', ("record 0", "instruction")),
    Case("responses/generator-number", ("import", "responses", "{f}"), b'{"instruction": "q", "output": "x", "generator": 3}\n', ("record 0", "generator")),
    Case("responses/no-response-field", ("import", "responses", "{f}"), b'{"instruction": "q"}\n', ("response field",)),
    Case("responses/csv-unterminated", ("import", "responses", "{d}/r.csv"), None, ("r.csv", "line"),
         extra={"r.csv": b'instruction,model_response\n"q,a\nq2,b\n'}),
    Case("responses/record-list", ("import", "responses", "{f}"), b'{"instruction": "q", "model_response": "a"}\n[1]\n', ("record 1",)),
    # AlpacaEval annotations
    Case("alpaca-eval/no-preference", ("import", "alpaca-eval", "{f}"), b'[{"instruction": "q", "output": "a", "generator": "m"}]', ("preference",)),
    Case("alpaca-eval/preference-infinity", ("import", "alpaca-eval", "{f}"),
         b'[{"instruction": "q", "output_1": "a", "output_2": "b", "generator_1": "r", "generator_2": "m", "preference": Infinity}]', ("record 0", "preference")),
    # run exports
    Case("runs-import/not-object", ("runs", "import", "{f}"), b"[1, 2]", ()),
    Case("runs-import/nan-metric", ("runs", "import", "{f}"), b'{"run": {"id": "x"}, "metrics": {"acc": NaN}}', ("metrics.acc",)),
    # ratings
    Case("ratings/outcome", ("pairs", "import", "{key}", "{f}"), None, ("line 1", "outcome"), extra={}),
    Case("ratings/seconds-nan", ("pairs", "import", "{key}", "{f}"), None, ("line 1", "seconds")),
    Case("ratings/pair-unknown", ("pairs", "import", "{key}", "{f}"), None, ("line 1", "pair")),
    Case("ratings/separator-in-comment-then-bad", ("pairs", "import", "{key}", "{f}"), None, ("line 2",)),
    # preference records
    Case("from-preference/chosen-missing", ("pairs", "from-preference", "{f}", "--out", "{d}/b"), b'{"instruction": "q", "rejected": "r"}\n', ("chosen",)),
    # stores that are not stores
    Case("store/not-a-database", ("--store", "{d}/not.db", "runs", "list"), None, ("not.db",), extra={"not.db": b"hello, I am text\n" * 100}),
    Case("store/a-folder", ("--store", "{d}", "runs", "list"), None, ()),
    # mmlu --data
    Case("mmlu/data-not-a-folder", ("mmlu", "--model", "gpt2", "--data", "{f}"), b"{}", ("--data",)),
    Case("mmlu/test-deep", ("mmlu", "--model", "gpt2", "--data", "{d}/m"), None, ("test.jsonl", "nested too deeply"), extra={"m/test.jsonl": b"[" * 200_000}),
    Case("mmlu/test-nan-answer", ("mmlu", "--model", "gpt2", "--data", "{d}/m"), None, ("test.jsonl", "answer"),
         extra={"m/test.jsonl": b'{"subject": "anatomy", "question": "q", "choices": ["a", "b", "c", "d"], "answer": NaN}\n'}),
    Case("mmlu/test-surrogate", ("mmlu", "--model", "gpt2", "--data", "{d}/m"), None, ("test.jsonl", "question"),
         extra={"m/test.jsonl": b'{"subject": "anatomy", "question": "\\udc00", "choices": ["a", "b", "c", "d"], "answer": 0}\n'}),
    Case("finetune/max-length-above-context", ("finetune", "--init", "random", "--model", "gpt2-tiny", "--data", "{d}/many.json",
                                                "--max-length", "4096", "--out", "{d}/ft", "--batch-size", "1", "--no-progress"),
         None, ("--max-length", "4096"),
         extra={"many.json": json.dumps([{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(20)]).encode()}),
    Case("mmlu/cache-under-a-file", ("mmlu", "--model", "gpt2", "--cache", "{d}/afile/c"), None, ("--cache", "afile"), extra={"afile": b"x"}),
    Case("store/under-a-file", ("--store", "{d}/afile/s.db", "runs", "list"), None, ("afile",), extra={"afile": b"x"}),
    Case("generate/metadata-corrupt", ("generate", "--model", "{d}/ck", "--split", "all"), None, ("evalkit_finetune.json",),
         extra={"ck/config.json": b"{}", "ck/model.safetensors": b"", "ck/evalkit_finetune.json": b'{"data": '}),
    Case("generate/metadata-a-list", ("generate", "--model", "{d}/ck", "--split", "all"), None, ("evalkit_finetune.json", "object"),
         extra={"ck/config.json": b"{}", "ck/model.safetensors": b"", "ck/evalkit_finetune.json": b"[1]"}),
    Case("generate/metadata-not-utf8", ("generate", "--model", "{d}/ck", "--split", "all"), None, ("evalkit_finetune.json", "UTF-8"),
         extra={"ck/config.json": b"{}", "ck/model.safetensors": b"", "ck/evalkit_finetune.json": b'{"data": "\xff"}'}),
    Case("generate/weights-corrupt", ("generate", "--model", "{d}/ck", "--data", "{d}/many.json", "--split", "all", "--no-progress"), None, ("ck",),
         extra={"ck/config.json": b'{"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 8}', "ck/model.safetensors": b"garbage",
                "many.json": json.dumps([{"instruction": "q", "input": "", "output": "a"}]).encode()}),
    # run ids and model names that name nothing
    Case("ids/arena-runs", ("arena", "--runs", "human-nope"), None, ("human-nope",)),
    Case("ids/arena-include-judge", ("arena", "--include-judge", "judge-nope"), None, ("judge-nope",)),
    Case("ids/runs-show", ("runs", "show", "nope"), None, ("nope",)),
    Case("ids/runs-delete", ("runs", "delete", "nope"), None, ("nope",)),
    Case("ids/runs-export", ("runs", "export", "nope"), None, ("nope",)),
    Case("ids/pairs-export", ("pairs", "export", "--runs", "nope,nada", "--out", "{d}/b"), None, ("nope",)),
    Case("ids/report-runs", ("report", "--runs", "nope", "--out", "{d}/r.html"), None, ("nope",)),
    Case("ids/leaderboard-runs", ("leaderboard", "--runs", "nope"), None, ("nope",)),
    Case("ids/compare-models", ("compare", "nobody", "noone"), None, ("nobody",)),
    Case("ids/agreement", ("pairs", "agreement", "--human", "nope"), None, ("nope",)),
    Case("ids/judge-reference-run", ("judge", "--responses", "{d}/good.jsonl", "--mode", "pairwise", "--reference", "generate-nope", "--host", "http://127.0.0.1:9"), None, ("generate-nope",)),
    # generate: a checkpoint folder without weights
    Case("judge/reference-file-bad", ("judge", "--responses", "{d}/good.jsonl", "--mode", "pairwise", "--reference", "{f}", "--host", "http://127.0.0.1:9"),
         b'{"instruction": "q"}\n', ("input.json", "response")),
    Case("generate/max-new-tokens-at-context", ("generate", "--model", "random:gpt2-tiny", "--data", "{d}/many.json", "--split", "all",
                                                "--max-new-tokens", "1024", "--no-progress"), None, ("--max-new-tokens", "1024"),
         extra={"many.json": json.dumps([{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(3)]).encode()}),
    Case("generate/empty-split", ("generate", "--model", "random:gpt2-tiny", "--data", "{d}/good.jsonl", "--no-progress"), None, ("no records",)),
    Case("generate/folder-without-weights", ("generate", "--model", "{d}/ckpt", "--data", "{d}/good.jsonl", "--split", "all"), None, ("ckpt",),
         extra={"ckpt/notes.txt": b"nothing here\n"}),
    Case("judge/model-folder-without-weights", ("judge", "--model", "{d}/ckpt", "--eval-set", "{d}/good.jsonl", "--host", "http://127.0.0.1:9"), None, ("ckpt",),
         extra={"ckpt/notes.txt": b"nothing here\n"}),
]

# ratings lines are built against the template's key at run time
RATING_LINES = {
    "ratings/outcome": lambda pair: json.dumps({"rater": "r", "pair_id": pair, "outcome": "maybe"}) + "\n",
    "ratings/seconds-nan": lambda pair: '{"rater": "r", "pair_id": "%s", "outcome": "a", "seconds": NaN}\n' % pair,
    "ratings/pair-unknown": lambda pair: json.dumps({"rater": "r", "pair_id": "nope", "outcome": "a"}) + "\n",
    "ratings/separator-in-comment-then-bad": lambda pair: json.dumps(
        {"rater": "r", "pair_id": pair, "outcome": "a", "comment": "x\u2028y\u0085z"}, ensure_ascii=False
    ) + "\n{bad\n",
}

#: (command argv before the option, option, bad value)
OPTION_BASE = {
    "finetune": ("finetune", "--out", "{d}/ft"),
    "generate": ("generate", "--model", "gpt2"),
    "mmlu": ("mmlu", "--model", "gpt2"),
    "judge": ("judge", "--responses", "{d}/good.jsonl"),
    "pairs-export": ("pairs", "export", "--runs", "a,b", "--out", "{d}/b"),
    "from-preference": ("pairs", "from-preference", "{d}/prefs.jsonl"),
    "arena": ("arena",),
    "compare": ("compare", "a", "b"),
    "demo": ("demo",),
    "report": ("report",),
    "leaderboard": ("leaderboard",),
    "runs-list": ("runs", "list"),
    "runs-export": ("runs", "export", "x"),
}
BAD_OPTIONS = [
    ("finetune", "--max-steps", "0"), ("finetune", "--max-steps", "-3"), ("finetune", "--lr", "-1"), ("finetune", "--lr", "0"),
    ("finetune", "--lr", "nan"), ("finetune", "--lr", "inf"), ("finetune", "--dropout", "1.5"), ("finetune", "--dropout", "1"),
    ("finetune", "--dropout", "-0.1"), ("finetune", "--epochs", "0"), ("finetune", "--epochs", "two"), ("finetune", "--batch-size", "0"),
    ("finetune", "--max-length", "0"), ("finetune", "--max-length", "1"), ("finetune", "--grad-accum", "0"), ("finetune", "--eval-every", "0"),
    ("finetune", "--eval-batches", "0"), ("finetune", "--save-every", "0"), ("finetune", "--keep-checkpoints", "0"),
    ("finetune", "--stop-after-steps", "0"), ("finetune", "--warmup-steps", "-1"), ("finetune", "--weight-decay", "-0.5"),
    ("finetune", "--seed", "-1"), ("finetune", "--seed", "4294967296"), ("finetune", "--shuffle-seed", "x"), ("finetune", "--limit", "0"),
    ("finetune", "--init", "zeros"), ("finetune", "--schedule", "step"), ("finetune", "--model-size", "gpt5"),
    ("generate", "--max-new-tokens", "0"), ("generate", "--max-new-tokens", "-1"), ("generate", "--batch-size", "0"),
    ("generate", "--temperature", "-1"), ("generate", "--temperature", "nan"), ("generate", "--top-k", "0"), ("generate", "--top-k", "1.5"),
    ("generate", "--seed", "-5"), ("generate", "--split", "dev"),
    ("mmlu", "--limit", "0"), ("mmlu", "--num-fewshot", "-1"), ("mmlu", "--num-fewshot", "6"), ("mmlu", "--batch-size", "0"),
    ("mmlu", "--batch-size", "many"), ("mmlu", "--backend", "tpu"), ("mmlu", "--categories", None),
    ("judge", "--retries", "-1"), ("judge", "--concurrency", "0"), ("judge", "--timeout", "0"), ("judge", "--timeout", "-5"),
    ("judge", "--temperature", "-1"), ("judge", "--num-ctx", "0"), ("judge", "--seed", "x"), ("judge", "--host", "::::"),
    ("judge", "--host", "ftp://example.org"), ("judge", "--host", "http://h:99999"), ("judge", "--host", ""), ("judge", "--mode", "rank"),
    ("judge", "--order", "sideways"),
    ("pairs-export", "--n", "0"), ("pairs-export", "--n", "some"), ("pairs-export", "--seed", "-1"),
    ("from-preference", "--n", "-2"), ("from-preference", "--seed", "1.5"),
    ("arena", "--bootstrap", "-1"), ("arena", "--jobs", "0"), ("arena", "--jobs", "-2"), ("arena", "--seed", "-1"), ("arena", "--format", "xml"),
    ("compare", "--alpha", "0"), ("compare", "--alpha", "1"), ("compare", "--alpha", "1.5"), ("compare", "--alpha", "nan"),
    ("compare", "--bootstrap", "-1"), ("compare", "--seed", "x"),
    ("demo", "--epochs", "0"), ("demo", "--max-records", "-1"), ("demo", "--mmlu-limit", "0"),
    ("finetune", "--device", "tpu"), ("finetune", "--device", "cuda:7"), ("generate", "--device", "quantum"), ("mmlu", "--device", "cuda:99"),
    ("runs-list", "--kind", "bogus"), ("runs-list", "--status", "weird"), ("runs-list", "--format", "xml"),
    ("runs-export", "--format", "xml"), ("leaderboard", "--format", "html"),
]
OPTION_CASES = [
    Case(f"option/{command}{option}={value}", (*OPTION_BASE[command], option, *(() if value is None else (value,))), None, (option,))
    for command, option, value in BAD_OPTIONS
]

#: --out where nothing can be written: under an existing file, or a folder where a file goes.
OUT_CASES = [
    Case(f"out-under-a-file/{command}", (*OPTION_BASE[command], "--out", "{d}/afile/out"), None, ("--out", "afile"), extra={"afile": b"x"})
    for command in ("generate", "report", "leaderboard", "runs-export", "demo", "from-preference")
] + [
    Case("out-under-a-file/finetune", ("finetune", "--out", "{d}/afile/out"), None, ("--out", "afile"), extra={"afile": b"x"}),
    Case("out-under-a-file/pairs-export", ("pairs", "export", "--runs", "a,b", "--out", "{d}/afile/b"), None, ("--out", "afile"), extra={"afile": b"x"}),
    Case("out-is-a-folder/report", ("report", "--out", "{d}"), None, ("--out", "is a folder")),
    Case("out-is-a-folder/leaderboard", ("leaderboard", "--out", "{d}"), None, ("--out", "is a folder")),
    Case("out-is-a-file/finetune", ("finetune", "--out", "{d}/afile"), None, ("--out", "is a file"), extra={"afile": b"x"}),
    Case("out-is-a-file/pairs-export", ("pairs", "export", "--runs", "a,b", "--out", "{d}/afile"), None, ("--out", "is a file"), extra={"afile": b"x"}),
    Case("out-unwritable/report", ("report", "--out", "{d}/ro/r.html"), None, ("--out", "ro"), extra={"ro/.keep": b""}),
]

CASES = FILE_CASES + RECORD_CASES + OPTION_CASES + OUT_CASES


def test_the_suite_holds_at_least_150_cases():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


def _materialise(case: Case, folder: Path, template: dict) -> tuple[list[str], Path]:
    command = case.id.split("/")[0]
    ext = FILE_COMMANDS.get(command, (None, ".json"))[1]
    target = folder / f"input{ext}"
    if case.layout == "under-file":
        (folder / "afile").write_bytes(b"x")
        target = folder / "afile" / f"input{ext}"
    elif case.layout == "folder":
        target.mkdir()
    elif case.layout == "file":
        content = case.content
        if case.id in RATING_LINES:
            content = RATING_LINES[case.id](template["pair"]).encode()
        if content is not None:
            target.write_bytes(content)
    (folder / "good.jsonl").write_bytes(GOOD_RESPONSES)
    (folder / "prefs.jsonl").write_bytes(PREFERENCES)
    (folder / "ratings.jsonl").write_text(json.dumps({"rater": "r", "pair_id": template["pair"], "outcome": "a"}) + "\n")
    for name, data in case.extra.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    if "ro/.keep" in case.extra:
        (folder / "ro").chmod(0o500)
    subst = {"{d}": str(folder), "{f}": str(target), "{key}": str(template["key"])}
    argv = []
    for arg in case.argv:
        for k, v in subst.items():
            arg = arg.replace(k, v)
        argv.append(arg)
    return argv, target


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_the_store_unchanged(case, template, tmp_path, capsys, monkeypatch):
    import os

    if case.id == "out-unwritable/report" and os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    monkeypatch.chdir(tmp_path)  # commands with default outputs write here, never into the repo
    store = tmp_path / "evalkit.db"
    shutil.copy(template["store"], store)
    before = _dump(store)
    (tmp_path / "case").mkdir()
    argv, target = _materialise(case, tmp_path / "case", template)
    if argv[0] != "--store":
        argv = ["--store", str(store), *argv]
    watched = Path(argv[1])
    watched_before = _bytes(watched) if watched.is_file() and watched != store else None
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses an option
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, f"exit {rc}; stderr: {err[-2000:]}"
    assert "Traceback" not in err
    lines = err.strip().split("\n")
    assert len(lines) == 1 and lines[0], f"expected one line, got {err!r}"
    for word in case.expect:
        word = word.replace("{f}", str(target))
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    if "{f}" in case.argv and not case.id.startswith("option/"):
        assert target.name in lines[0], f"the file is not named: {lines[0]!r}"
    assert _dump(store) == before, "the store changed"
    if watched_before is not None:
        assert _bytes(watched) == watched_before
