"""Prompt styles: how a record becomes the text a model is trained on and prompted with.

A style is a pair of parts, as in chapter 7 of the book: the *prompt part* (instruction, plus
the input when it is non-empty) and the *response part* (a header, then the output). Training
text is prompt part + response part; at generation time the model sees the prompt part and
its continuation, minus the response header, is the response.

Built-in styles are registered by name (``alpaca``: the book's; ``phi3``: the book's exercise
7.1). A user style is a JSON file with the same three templates, validated when it is loaded::

    {"prompt": "Q: {instruction}", "input": "\\n{input}", "response": "\\nA: {output}"}
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import InputError
from evalkit.records import read_json_document
from evalkit.hashing import content_hash


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str  # template with {instruction}
    input: str  # appended to the prompt only when the record's input is non-empty; has {input}
    response: str  # template ending in {output}; the text before {output} is the response header

    @property
    def response_header(self) -> str:
        return self.response.format(output="")

    @property
    def template_hash(self) -> str:
        """Identifies the exact templates, so runs with different wording never compare as equal."""
        return content_hash([self.prompt, self.input, self.response])

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "prompt": self.prompt, "input": self.input, "response": self.response}

    def format_prompt(self, record: dict) -> str:
        text = self.prompt.format(instruction=record["instruction"])
        if record.get("input"):
            text += self.input.format(input=record["input"])
        return text

    def format_response(self, record: dict) -> str:
        return self.response.format(output=record["output"])

    def extract_response(self, generated: str) -> str:
        """The response from a generated continuation of the prompt: the book's
        ``generated_text[len(input_text):].replace("### Response:", "").strip()``."""
        header = self.response_header.strip()
        return (generated.replace(header, "") if header else generated).strip()


_ALLOWED = {"prompt": {"instruction"}, "input": {"input"}, "response": {"output"}}


def _fields(template: str, source: object, key: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # a lone brace
        raise InputError(f"bad template ({exc}); write literal braces as {{{{ and }}}}", path=source, field=key) from exc
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in _ALLOWED[key] or spec or conversion:
            allowed = ", ".join("{" + n + "}" for n in sorted(_ALLOWED[key]))
            raise InputError(f"unknown placeholder {{{name}}}; this template may use only {allowed}", path=source, field=key)
        names.append(name)
    return names


def _validate(style: PromptStyle, source: object) -> None:
    for key in ("prompt", "input", "response"):
        value = getattr(style, key)
        if not isinstance(value, str):
            raise InputError(f"must be a string, not {type(value).__name__}", path=source, field=key)
    if _fields(style.prompt, source, "prompt") != ["instruction"]:
        raise InputError("must contain {instruction} exactly once", path=source, field="prompt")
    if _fields(style.input, source, "input") != ["input"]:
        raise InputError("must contain {input} exactly once", path=source, field="input")
    if _fields(style.response, source, "response") != ["output"] or not style.response.endswith("{output}"):
        raise InputError("must end with {output} (and contain it once): the text before it is the response header", path=source, field="response")


STYLES: dict[str, PromptStyle] = {}


def register_style(style: PromptStyle) -> PromptStyle:
    _validate(style, source=f"style {style.name!r}")
    STYLES[style.name] = style
    return style


register_style(
    PromptStyle(
        name="alpaca",
        prompt=(
            "Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request."
            "\n\n### Instruction:\n{instruction}"
        ),
        input="\n\n### Input:\n{input}",
        response="\n\n### Response:\n{output}",
    )
)
register_style(
    PromptStyle(
        name="phi3",
        prompt="<|user|>\n{instruction}",
        input="\n{input}",
        response="\n<|assistant|>:\n{output}",
    )
)


def load_style_file(path: str | Path) -> PromptStyle:
    path = Path(path)
    doc = read_json_document(path, expected="a prompt style file (JSON)")
    if not isinstance(doc, dict):
        raise InputError('expected a JSON object with "prompt", "input" and "response"', path=path)
    for key in ("prompt", "response"):
        if key not in doc:
            raise InputError("is missing", path=path, field=key)
    unknown = sorted(set(doc) - {"name", "prompt", "input", "response"})
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)}", path=path)
    style = PromptStyle(
        name=str(doc.get("name") or path.stem),
        prompt=doc["prompt"],
        input=doc.get("input", "\n{input}"),
        response=doc["response"],
    )
    _validate(style, source=path)
    return style


def get_style(style: str | Path | PromptStyle = "alpaca") -> PromptStyle:
    """A registered style by name, or a user template file (validated now, not mid-run)."""
    if isinstance(style, PromptStyle):
        return style
    if isinstance(style, str) and style in STYLES:
        return STYLES[style]
    if Path(style).is_file() or Path(style).exists() or str(style).endswith(".json"):
        return load_style_file(style)  # its reader names a folder, a missing or unreadable file
    raise InputError(f"unknown prompt style {str(style)!r}: use one of {', '.join(sorted(STYLES))} or a JSON template file")


def format_prompt(record: dict, style: str | Path | PromptStyle = "alpaca") -> str:
    """The prompt part of ``record`` (the book's ``format_input`` for ``alpaca``)."""
    return get_style(style).format_prompt(record)


def format_response(record: dict, style: str | Path | PromptStyle = "alpaca") -> str:
    """The response part of ``record``: header then the output."""
    return get_style(style).format_response(record)
