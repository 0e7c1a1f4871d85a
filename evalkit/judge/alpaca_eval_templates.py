"""AlpacaEval's annotators as judge templates, read from the installed ``alpaca_eval`` package.

``--prompt-template alpaca-eval:ANNOTATOR`` takes everything from that annotator's
``evaluators_configs/ANNOTATOR/configs.yaml`` and its prompt file, at run time (no template text
is copied into evalkit):

* messages: the prompt file filled in by AlpacaEval's own ``utils.make_prompts`` (its placeholder
  rule, literal braces kept), stripped and split into chat turns by its ``utils.prompt_to_chatml``,
  as its ``openai_completions`` does for chat models;
* completion options: ``completions_kwargs`` (``max_tokens`` -> ``num_predict``, ``temperature``,
  ``top_p``, ``logprobs``, ``top_logprobs``; ``model_name`` is replaced by ``--judge-model``);
* reading the answer: ``logprob_parser`` (weighted verdicts: evalkit's exact mirror,
  :func:`evalkit.judge.verdicts.alpaca_eval_logprob_preference`) or, for any other parser
  (``ranking_parser``, ``regex_parser``, ...), the package's own function on the answer's text.

Annotators that need what a chat completion cannot carry here (function calling, logit biases)
are refused with a clear message.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import InputError
from evalkit.judge.templates import ALPACA_EVAL_PREFIX, Template

INSTALL_HINT = "AlpacaEval's annotators need the alpaca_eval package: pip install alpaca-eval"
# completions_kwargs evalkit maps onto a chat request; anything else is refused
_OPTION_NAMES = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p"}
_HANDLED = set(_OPTION_NAMES) | {"model_name", "logprobs", "top_logprobs", "requires_chatml", "is_chat"}


def _package_dir() -> Path:
    spec = importlib.util.find_spec("alpaca_eval")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(INSTALL_HINT, field="prompt-template")
    return Path(next(iter(spec.submodule_search_locations)))


def configs_dir() -> Path:
    return _package_dir() / "evaluators_configs"


def _alpaca_eval_module(name: str) -> Any:
    """``alpaca_eval.<name>``, imported quietly (it imports the deprecated pkg_resources)."""
    import importlib

    _package_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"alpaca_eval.{name}")


def read_config(annotator: str) -> tuple[dict[str, Any], Path]:
    """The annotator's configuration (the one entry of its ``configs.yaml``) and that file."""
    base = configs_dir()
    path = base / annotator / "configs.yaml"
    if "/" in annotator or "\\" in annotator or annotator.startswith(".") or not path.is_file():
        known = ", ".join(sorted(p.parent.name for p in base.glob("*/configs.yaml"))[:8])
        raise InputError(f"alpaca_eval has no annotator {annotator!r} (e.g. {known}, ...; "
                         "see `evalkit judge --list-templates`)", field="prompt-template")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or len(loaded) != 1:
        raise InputError("expected one annotator entry", path=path)
    config = next(iter(loaded.values()))
    if not isinstance(config, dict) or "prompt_template" not in config:
        raise InputError("the annotator has no prompt_template", path=path)
    return config, path


def _unsupported(config: dict[str, Any]) -> str | None:
    kwargs = config.get("completions_kwargs") or {}
    extra = sorted(set(kwargs) - _HANDLED)
    if extra:
        return f"its completions_kwargs use {', '.join(extra)}"
    if (config.get("batch_size") or 1) != 1:
        return f"it batches {config['batch_size']} examples per prompt"
    if config.get("fn_completion_parser") == "logprob_parser" and config.get("completion_parser_kwargs", {}).get(
        "log_prob_index", "batch"
    ) != "batch":
        return "it reads the verdict from a later token (chain of thought)"
    return None


@dataclass(frozen=True)
class AlpacaEvalTemplate(Template):
    """An AlpacaEval annotator: rendered and read exactly as alpaca_eval does."""

    annotator: str = ""
    prompt: str = ""
    completion_parser: str = ""
    parser_kwargs: dict[str, Any] = field(default_factory=dict)
    top_logprobs: int | None = None

    @property
    def weighted(self) -> bool:
        return self.completion_parser == "logprob_parser"

    def render(self, values: dict[str, str], answer_kind: str = "") -> list[dict[str, str]]:
        import pandas as pd

        utils = _alpaca_eval_module("utils")
        instruction, item_input = values.get("instruction", ""), values.get("input", "")
        # AlpacaEval's instructions carry their input inside; evalkit's are joined the same way
        # as for its own templates
        row = {"instruction": f"{instruction}\n\n{item_input}" if item_input else instruction,
               "output_1": values["output_1"], "output_2": values["output_2"]}
        (prompt,), _ = utils.make_prompts(pd.DataFrame([row]), template=self.prompt, batch_size=1)
        return [dict(m) for m in utils.prompt_to_chatml(prompt.strip())]

    def parse_text(self, text: str) -> float | None:
        """A discrete preference (1 or 2, or in between) by the annotator's own parser; None if unreadable."""
        parsers = _alpaca_eval_module("completion_parsers")
        try:
            values = list(getattr(parsers, self.completion_parser)(text, **self.parser_kwargs))
        except Exception:  # noqa: BLE001 - alpaca_eval's parsers raise anything on a bad answer; it is unparsed
            return None
        if len(values) != 1:
            return None
        value = values[0]
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) and 1.0 <= value <= 2.0 else None


def load_annotator(annotator: str) -> AlpacaEvalTemplate:
    config, path = read_config(annotator)
    problem = _unsupported(config)
    if problem:
        raise InputError(f"evalkit cannot run this annotator: {problem}", path=path)
    prompt_file = configs_dir() / config["prompt_template"]
    try:
        prompt = prompt_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the annotator's prompt ({exc.strerror})", path=prompt_file) from exc
    if not prompt.strip().startswith("<|im_start|>"):
        raise InputError("the annotator's prompt is not a chat (<|im_start|>) prompt", path=prompt_file)
    _alpaca_eval_module("utils")  # fail now, not mid-run, if the package cannot be imported
    kwargs = dict(config.get("completions_kwargs") or {})
    options = {_OPTION_NAMES[k]: v for k, v in kwargs.items() if k in _OPTION_NAMES}
    parser = config.get("fn_completion_parser") or "regex_parser"
    parser_kwargs = dict(config.get("completion_parser_kwargs") or {})
    if parser == "logprob_parser":
        numerator = parser_kwargs["numerator_token"]
        others = [t for t in parser_kwargs["denominator_tokens"] if t != numerator]
        verdict = (numerator, others[0] if others else numerator + "'")
    else:
        verdict = ("1", "2")
    version = _alpaca_eval_version()
    return AlpacaEvalTemplate(
        name=ALPACA_EVAL_PREFIX + annotator,
        mode="pairwise",
        # the hash covers the prompt, the configuration and the package's version
        text="\n".join([prompt, yaml.safe_dump(config, sort_keys=True), f"alpaca_eval {version}"]),
        source=f"alpaca_eval {version}: {path.parent.name}/configs.yaml",
        turns=(),
        fields=frozenset({"instruction", "output_1", "output_2"}),
        verdict=verdict,  # type: ignore[arg-type]
        format="none",
        options=options,
        parser=f"alpaca-eval:{parser}",
        parse_retries=0,
        placeholders="alpaca-eval",
        annotator=annotator,
        prompt=prompt,
        completion_parser=parser,
        parser_kwargs=parser_kwargs,
        top_logprobs=kwargs.get("top_logprobs") if kwargs.get("logprobs") else None,
    )


def _alpaca_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alpaca_eval")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def annotator_summaries() -> tuple[tuple[str, str], ...]:
    """``(annotator, one line)`` for every annotator of the installed package evalkit can run."""
    try:
        base = configs_dir()
    except InputError:
        return (("ANNOTATOR", INSTALL_HINT),)
    rows = []
    for path in sorted(base.glob("*/configs.yaml")):
        try:
            config, _ = read_config(path.parent.name)
        except (InputError, yaml.YAMLError):
            continue
        if _unsupported(config) or not (base / config["prompt_template"]).is_file():
            continue
        kwargs = config.get("completions_kwargs") or {}
        parser = config.get("fn_completion_parser") or "regex_parser"
        how = "logprob-weighted verdict" if parser == "logprob_parser" else f"discrete verdict ({parser})"
        options = ", ".join(f"{k} {kwargs[k]}" for k in ("temperature", "max_tokens") if k in kwargs)
        rows.append((path.parent.name, f"AlpacaEval's annotator (pairwise, {how}; {options}; written for {kwargs.get('model_name', '?')})"))
    return tuple(rows)
