"""A local copy of MMLU laid out like the ``cais/mmlu`` data set, read and checked.

``DIR/test.jsonl`` (required) and ``DIR/dev.jsonl`` (optional, the few-shot pool): one JSON
object a line with ``subject``, ``question``, ``choices`` (four strings) and ``answer`` (0-3),
the fields of ``cais/mmlu``. Every line is checked before anything runs, so a bad file fails
at once with its path, line and field instead of deep inside lm-eval.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import EvalkitError, InputError
from evalkit.records import parse_json

SPLITS = ("test", "dev")  # cais/mmlu's split names; lm-eval's template reads test_split and fewshot_split
FIELDS = ("question", "subject", "choices", "answer")  # cais/mmlu's column order
N_CHOICES = 4  # the template's doc_to_text names choices[0]..choices[3]


@dataclass
class LocalMmlu:
    folder: Path
    files: dict[str, Path]  # split -> file
    sha256: dict[str, str]  # split -> digest of the file
    docs: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # split -> subject -> docs in file order

    @property
    def has_dev(self) -> bool:
        return "dev" in self.files

    def write_subject_files(self, out_dir: Path, subjects: list[str]) -> dict[str, dict[str, Path]]:
        """One file per subject and split (``out_dir/<subject>/<split>.jsonl``), as the hub data
        set has one config per subject; returns ``{subject: {split: path}}``."""
        written: dict[str, dict[str, Path]] = {}
        for subject in subjects:
            folder = out_dir / subject
            folder.mkdir(parents=True, exist_ok=True)
            for split, by_subject in self.docs.items():
                if subject not in by_subject:
                    continue
                path = folder / f"{split}.jsonl"
                with path.open("w", encoding="utf-8") as fh:
                    for doc in by_subject[subject]:
                        fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
                written.setdefault(subject, {})[split] = path.resolve()
        return written


def _check(record: object, path: Path, lineno: int, known_subjects: set[str]) -> dict:
    where = f"{path}, line {lineno}"
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", path=where)
    for name in FIELDS:
        if name not in record:
            raise InputError("missing (cais/mmlu records have subject, question, choices, answer)", path=where, field=name)
    subject, question, choices, answer = record["subject"], record["question"], record["choices"], record["answer"]
    if not isinstance(subject, str) or subject not in known_subjects:
        raise InputError(
            f"{subject!r} is not one of lm-eval's {len(known_subjects)} MMLU subjects (snake_case, e.g. 'abstract_algebra')",
            path=where,
            field="subject",
        )
    if not isinstance(question, str):
        raise InputError(f"expected a string, got {type(question).__name__}", path=where, field="question")
    if not (isinstance(choices, list) and len(choices) == N_CHOICES and all(isinstance(c, str) for c in choices)):
        raise InputError(f"expected a list of {N_CHOICES} strings, got {json.dumps(choices)[:80]}", path=where, field="choices")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < N_CHOICES:
        raise InputError(f"expected an integer 0-{N_CHOICES - 1} (index of the right choice), got {answer!r}", path=where, field="answer")
    return {"question": question, "subject": subject, "choices": choices, "answer": answer}


def read_split(path: Path, known_subjects: set[str]) -> tuple[dict[str, list[dict]], str]:
    """Docs of one split grouped by subject (file order kept), and the file's sha256."""
    by_subject: dict[str, list[dict]] = {}
    digest = hashlib.sha256()
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path) from exc
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)", path=f"{path}, line {lineno}") from None
            record = parse_json(text, shown=path, line=lineno, expected="one MMLU question a line (subject, question, choices, answer)")
            doc = _check(record, path, lineno, known_subjects)
            by_subject.setdefault(doc["subject"], []).append(doc)
    if not by_subject:
        raise InputError("no records (expected one JSON object a line)", path=path)
    return by_subject, digest.hexdigest()


def read_local_mmlu(folder: str | Path, known_subjects: set[str]) -> LocalMmlu:
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalkitError(f"{folder}: --data must be a folder holding test.jsonl (and optionally dev.jsonl), laid out like cais/mmlu")
    files = {split: folder / f"{split}.jsonl" for split in SPLITS if (folder / f"{split}.jsonl").is_file()}
    if "test" not in files:
        raise InputError("missing: the test split is required (one JSON object a line: subject, question, choices, answer)", path=folder / "test.jsonl")
    local = LocalMmlu(folder=folder.resolve(), files={k: v.resolve() for k, v in files.items()}, sha256={})
    for split, path in files.items():
        local.docs[split], local.sha256[split] = read_split(path, known_subjects)
    return local
