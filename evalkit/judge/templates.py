"""Judge prompt templates: versioned text files, stored with a content hash.

A template is a text file. An optional front matter block sets its properties::

    ---
    name: evalkit-pairwise-v1
    mode: pairwise          # score | pairwise (else inferred from the placeholders)
    verdict: 1 2            # pairwise: the token meaning "output 1 is better", then "output 2"
    format: schema          # schema (JSON schema through Ollama's `format`) | none
    ---

The body is either plain text (one user message) or chat turns in the
``<|im_start|>ROLE ... <|im_end|>`` markup that AlpacaEval's templates use, so AlpacaEval's
own templates (e.g. ``alpaca_eval_clf.txt``, with ``verdict: m M``) and the book's score
prompt work as they are. Placeholders use Python's ``{name}`` syntax (``{{`` for a brace):

* both modes: ``{instruction}``, ``{input}``, ``{task}`` (instruction, plus the input under
  it when there is one), ``{formatted_input}`` (the book's Alpaca-style prompt),
  ``{answer_format}`` (the answer instructions evalkit needs for the verdict it asks for);
* score: ``{reference}``, ``{response}`` (alias ``{output}``, the reference);
* pairwise: ``{output_1}``, ``{output_2}``.

A template without ``{input}``, ``{task}`` or ``{formatted_input}`` gets the input appended
to ``{instruction}``, so no item's input is silently dropped. The roles are split before the
texts are filled in, so nothing a model wrote can open a new turn.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from evalkit.errors import InputError
from evalkit.hashing import content_hash

MODES = ("score", "pairwise")
BUILTIN = {"score": "score-v1.txt", "pairwise": "pairwise-v1.txt"}
_COMMON_FIELDS = {"instruction", "input", "task", "formatted_input", "answer_format"}
FIELDS = {
    "score": _COMMON_FIELDS | {"reference", "output", "response"},
    "pairwise": _COMMON_FIELDS | {"output_1", "output_2"},
}
REQUIRED = {"score": {"response"}, "pairwise": {"output_1", "output_2"}}
_TURN = re.compile(r"<\|im_start\|>\s*(system|user|assistant)\s*\n(.*?)<\|im_end\|>", re.S)

# What evalkit appends through {answer_format} (str.format text: {v1}/{v2} are the verdict
# tokens, {{ is a brace), and the corrective turn it sends when an answer does not parse.
# Both are part of the template hash.
ANSWER_FORMATS = {
    ("score", "schema"): 'Answer with JSON only, in this form: {{"score": <integer from 0 to 100>}}',
    ("score", "none"): "Answer with the integer score only.",
    ("pairwise", "logprobs"): "Answer with a single character: {v1} if output 1 is better, {v2} if output 2 is better.",
    ("pairwise", "schema"): 'Answer with JSON only: {{"better": "{v1}"}} if output 1 is better, '
    '{{"better": "{v2}"}} if output 2 is better, {{"better": "tie"}} if they are equally good.',
    ("pairwise", "none"): "Answer with {v1} if output 1 is better, {v2} if output 2 is better, or tie.",
}
RETRY_MESSAGE = "Your answer could not be read. Answer again, following exactly this instruction: {answer_format}"


def format_input(instruction: str, input: str = "") -> str:  # noqa: A002 - the field's name
    """The book's Alpaca-style prompt (chapter 7's ``format_input``)."""
    text = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        f"\n\n### Instruction:\n{instruction}"
    )
    return text + (f"\n\n### Input:\n{input}" if input else "")


@dataclass(frozen=True)
class Template:
    name: str
    mode: str
    text: str
    source: str
    turns: tuple[tuple[str, str], ...]
    fields: frozenset[str]
    verdict: tuple[str, str] = ("1", "2")
    format: str = "schema"

    @property
    def hash(self) -> str:
        """Content hash of everything that shapes the judge's prompt."""
        return content_hash(["judge-template-v1", self.text, sorted(ANSWER_FORMATS.items()), RETRY_MESSAGE])

    def answer_format(self, kind: str) -> str:
        """The answer instructions for ``kind``: ``schema``, ``none`` or ``logprobs``."""
        v1, v2 = self.verdict
        return ANSWER_FORMATS[(self.mode, kind)].format(v1=v1, v2=v2)

    def render(self, values: dict[str, str], answer_kind: str) -> list[dict[str, str]]:
        """Chat messages with the placeholders filled in."""
        values = dict(values)
        instruction, item_input = values.get("instruction", ""), values.get("input", "")
        values.setdefault("task", instruction + (f"\n\nInput:\n{item_input}" if item_input else ""))
        values.setdefault("formatted_input", format_input(instruction, item_input))
        if item_input and not self.fields & {"input", "task", "formatted_input"}:
            values["instruction"] = f"{instruction}\n\n{item_input}"
        if "reference" in values:
            values.setdefault("output", values["reference"])
        values["answer_format"] = self.answer_format(answer_kind)
        return [{"role": role, "content": body.format_map(values).strip()} for role, body in self.turns]


def _front_matter(text: str, source: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    meta: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            return meta, "".join(lines[number:])
        # a handful of `key: value` lines: simpler than pulling in a YAML parser for it
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        key, sep, value = stripped.partition(":")
        if not sep:
            raise InputError(f"front matter line {number} is not `key: value`", path=source)
        meta[key.strip()] = value.strip()
    raise InputError("front matter opened with `---` is never closed", path=source)


def parse_template(text: str, *, source: str = "<template>", mode: str | None = None) -> Template:
    meta, body = _front_matter(text, source)
    unknown = set(meta) - {"name", "mode", "verdict", "format"}
    if unknown:
        raise InputError(f"unknown front matter key(s) {', '.join(sorted(unknown))}", path=source)
    turns = tuple((m.group(1), m.group(2)) for m in _TURN.finditer(body)) or (("user", body),)
    try:
        fields = {name for _, part in turns for _, name, _, _ in string.Formatter().parse(part) if name is not None}
    except ValueError as exc:
        raise InputError(f"bad placeholder syntax ({exc}); write a literal brace as {{{{ or }}}}", path=source) from exc
    bad = {f for f in fields if not f.isidentifier()}
    if bad:
        raise InputError(f"placeholders must be plain names, not {', '.join(sorted(bad))}", path=source)
    declared = meta.get("mode")
    inferred = "pairwise" if {"output_1", "output_2"} & fields else "score"
    template_mode = declared or (inferred if inferred == "pairwise" else mode or inferred)
    if template_mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}", path=source, field="mode")
    if mode and template_mode != mode:
        raise InputError(f"this is a {template_mode} template, but the judge runs in {mode} mode", path=source)
    unknown_fields = fields - FIELDS[template_mode]
    if unknown_fields:
        raise InputError(
            f"unknown placeholder(s) {', '.join('{' + f + '}' for f in sorted(unknown_fields))}; "
            f"{template_mode} templates know {', '.join('{' + f + '}' for f in sorted(FIELDS[template_mode]))}",
            path=source,
        )
    missing = REQUIRED[template_mode] - fields
    if missing:
        raise InputError(f"a {template_mode} template needs {', '.join('{' + f + '}' for f in sorted(missing))}", path=source)
    verdict = tuple(meta.get("verdict", "1 2").split())
    if len(verdict) != 2 or verdict[0] == verdict[1]:
        raise InputError("verdict must name two different tokens, e.g. `verdict: m M`", path=source, field="verdict")
    fmt = meta.get("format", "schema")
    if fmt not in ("schema", "none"):
        raise InputError("format must be `schema` or `none`", path=source, field="format")
    name = meta.get("name") or Path(source).stem
    return Template(name, template_mode, text, source, turns, frozenset(fields), verdict, fmt)  # type: ignore[arg-type]


def load_template(path: str | Path | None, mode: str) -> Template:
    """The built-in template for ``mode``, or the user's file."""
    if path is None:
        text = resources.files("evalkit.judge").joinpath("templates", BUILTIN[mode]).read_text(encoding="utf-8")
        return parse_template(text, source=f"evalkit:{BUILTIN[mode]}", mode=mode)
    from evalkit.records import read_text

    file = Path(path)
    text = read_text(file, expected="a judge prompt template (text with {instruction} ... placeholders)")
    return parse_template(text, source=str(file), mode=mode)


def describe(template: Template) -> dict[str, Any]:
    """What a run's config records about its template."""
    return {"name": template.name, "hash": template.hash, "source": template.source, "verdict": list(template.verdict)}
