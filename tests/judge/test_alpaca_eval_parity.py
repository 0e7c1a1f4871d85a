"""AlpacaEval's annotators through evalkit equal alpaca_eval's own: the messages it would send,
the order it would show the outputs in, and how it reads logprobs into a preference."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.errors import InputError
from evalkit.judge.runner import model_shown_first
from evalkit.judge.templates import load_template
from evalkit.judge.verdicts import alpaca_eval_logprob_preference
from tests.conftest import shared_path
from tests.judge.fake_ollama import Reply, Token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pd = pytest.importorskip("pandas")
    ae_parsers = pytest.importorskip("alpaca_eval.completion_parsers", reason="AlpacaEval is the oracle: pip install alpaca-eval")
    from alpaca_eval import constants as ae_constants
    from alpaca_eval import utils as ae_utils
    from alpaca_eval.annotators.pairwise_evaluator import SinglePairwiseAnnotator

WEIGHTED = "weighted_alpaca_eval_gpt4_turbo"


def _config(annotator: str) -> dict:
    import yaml

    return next(iter(yaml.safe_load((ae_constants.EVALUATORS_CONFIG_DIR / annotator / "configs.yaml").read_text()).values()))


@pytest.fixture(scope="module")
def alpaca_items():
    reference = json.loads(shared_path("alpaca_eval", "alpaca_eval_gpt4_1106_preview_reference.json").read_text())
    annotations = json.loads(
        shared_path("alpaca_eval", "annotations", "OpenHermes-2.5-Mistral-7B.weighted_alpaca_eval_gpt4_turbo.json").read_text()
    )
    refs = {r["instruction"]: r["output"] for r in reference}
    return [{"instruction": a["instruction"], "output_1": refs[a["instruction"]], "output_2": a["output_2"],
             "generator_2": a["generator_2"], "dataset": a["dataset"]} for a in annotations]


@pytest.fixture(scope="module")
def alpaca_rendering(alpaca_items):
    """alpaca_eval's own pipeline for the weighted annotator: its processors choose the order,
    its make_prompts fills the template, prompt_to_chatml makes the messages."""
    config = _config(WEIGHTED)
    annotator = SinglePairwiseAnnotator(**config, base_dir=ae_constants.EVALUATORS_CONFIG_DIR)
    frame = pd.DataFrame([{k: item[k] for k in ("instruction", "output_1", "output_2")} for item in alpaca_items])
    processed = annotator._preprocess(frame)
    prompts, processed = annotator._make_prompts(processed)
    messages = [ae_utils.prompt_to_chatml(p.strip()) for p in prompts]
    return {row.instruction: (bool(row.is_switched_outputs), msgs) for row, msgs in zip(processed.itertuples(), messages)}


def test_orders_equal_alpaca_evals_processor_on_all_805(alpaca_items, alpaca_rendering):
    assert len(alpaca_items) == 805
    switched = [model_shown_first(item["instruction"], "", 123) for item in alpaca_items]
    assert switched == [alpaca_rendering[item["instruction"]][0] for item in alpaca_items]
    assert 300 < sum(switched) < 505  # both orders occur


def test_messages_equal_alpaca_evals_rendering(alpaca_items, alpaca_rendering):
    template = load_template(f"alpaca-eval:{WEIGHTED}", "pairwise")
    assert template.verdict == ("m", "M") and template.options == {"num_predict": 1, "temperature": 1}
    assert template.top_logprobs == 5
    for item in alpaca_items[::7]:  # 115 of the 805
        swapped, expected = alpaca_rendering[item["instruction"]]
        first, second = (item["output_2"], item["output_1"]) if swapped else (item["output_1"], item["output_2"])
        ours = template.render({"instruction": item["instruction"], "input": "", "output_1": first, "output_2": second})
        assert ours == expected


def test_a_run_sends_alpaca_evals_messages_and_reads_logprobs_as_its_parser(run_cli, fake_ollama, alpaca_items,
                                                                           alpaca_rendering, tmp_path, monkeypatch):
    sample = alpaca_items[:40]
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps([{"instruction": i["instruction"], "output": i["output_1"]} for i in sample]))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps([{"instruction": i["instruction"], "output": i["output_2"], "generator": "hermes"}
                                   for i in sample]))
    monkeypatch.setenv("EVALKIT_ALPACA_EVAL", str(reference))
    # the judge's first token and its alternatives, with spaced variants AlpacaEval does not count
    shapes = [
        [Token("m", math.log(0.7), {"M": math.log(0.2), " m": math.log(0.05)})],
        [Token("M", math.log(0.6), {" M": math.log(0.3), "m": math.log(0.05)})],
        [Token(" m", math.log(0.9), {"M": math.log(0.05)})],
        [Token(" M", math.log(0.9), {" m": math.log(0.05)})],  # neither exact token: unparsed
    ]
    fake_ollama.script(lambda req: Reply(tokens=shapes[len(req.messages[1]["content"]) % len(shapes)]))
    rc, out, err = run_cli("judge", "--responses", outputs, "--eval-set", "alpaca-eval", "--prompt-template",
                           f"alpaca-eval:{WEIGHTED}", "--host", fake_ollama.url, "--no-progress", "--format", "json")
    assert rc == 0, err
    run = json.loads(out)
    assert run["config"]["order"] == "random" and run["config"]["template"]["name"] == f"alpaca-eval:{WEIGHTED}"
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as store:
        samples = {p["instruction"]: p for _, p in store.samples(run["id"])}
    requests = {r.messages[1]["content"]: r for r in fake_ollama.requests if r.path == "/api/chat"}
    checked = 0
    for item in sample:
        if item["output_1"] == item["output_2"]:
            continue
        swapped, expected = alpaca_rendering[item["instruction"]]
        request = requests[expected[1]["content"]]  # alpaca_eval's message was sent, as it is
        assert request.messages == expected
        assert request.options["temperature"] == 1 and request.options["num_predict"] == 1
        assert request.logprobs and request.top_logprobs == 5
        payload = samples[item["instruction"]]
        assert payload["orders"] == ["model-first" if swapped else "reference-first"]
        tops = payload["raw_completion"][0]["top_logprobs"]
        (expected_pref,) = ae_parsers.logprob_parser({"logprobs": {"content": [{"top_logprobs": tops}]}},
                                                     numerator_token="m", denominator_tokens=["m", "M"], is_binarize=False)
        if math.isnan(expected_pref):
            assert payload["status"] == "unparsed" and payload["preference"] is None
        else:
            assert payload["preference"] == (3 - expected_pref if swapped else expected_pref)
        checked += 1
    assert checked >= 35


TOKENS = ["m", "M", " m", "m ", " M", "M ", "mm", "The", "1", ""]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(TOKENS), st.floats(min_value=-40, max_value=0, allow_nan=False)), max_size=6),
    st.booleans(),
)
def test_logprob_reading_equals_alpaca_evals_parser_on_every_input(tops, binarize):
    top_logprobs = [{"token": t, "logprob": lp} for t, lp in tops]
    completion = {"logprobs": {"content": [{"top_logprobs": top_logprobs}]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (expected,) = ae_parsers.logprob_parser(completion, numerator_token="m", denominator_tokens=["m", "M"],
                                                is_binarize=binarize)
    ours = alpaca_eval_logprob_preference(top_logprobs, "m", ["m", "M"], binarize)
    if isinstance(expected, float) and math.isnan(expected):
        assert ours is None
    else:
        assert ours == expected


def test_leading_space_tokens_are_not_verdicts():
    tops = [{"token": " m", "logprob": math.log(0.9)}, {"token": "M", "logprob": math.log(0.1)}]
    assert alpaca_eval_logprob_preference(tops, "m", ["m", "M"]) == 2.0
    assert alpaca_eval_logprob_preference([{"token": " m", "logprob": 0.0}], "m", ["m", "M"]) is None


def test_ranking_annotator_reads_its_answer_with_alpaca_evals_parser():
    template = load_template("alpaca-eval:alpaca_eval_gpt4", "pairwise")
    assert template.options == {"num_predict": 100, "temperature": 0} and template.top_logprobs is None
    assert template.parse_text("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]") == 1.0
    assert template.parse_text("[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}]") == 2.0
    assert template.parse_text("model_1 is better") is None
    messages = template.render({"instruction": "Say {hi}", "input": "", "output_1": "a {b}", "output_2": "c"})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert '"instruction": """Say {hi}""",' in messages[1]["content"] and '"answer": """a {b}"""' in messages[1]["content"]


def test_unknown_or_unsupported_annotators_are_clear_errors():
    with pytest.raises(InputError, match="no annotator 'nope'"):
        load_template("alpaca-eval:nope", "pairwise")
    with pytest.raises(InputError, match="cannot run this annotator"):
        load_template("alpaca-eval:alpaca_eval_gpt4_turbo_fn", "pairwise")
    with pytest.raises(InputError, match="--mode pairwise"):
        load_template(f"alpaca-eval:{WEIGHTED}", "score")


def test_a_weighted_annotator_without_logprobs_stops_with_a_clear_error(store, book_responses):
    from evalkit.errors import EvalkitError
    from evalkit.judge import run_judge
    from tests.judge.conftest import add_generate_run
    from tests.judge.fake_ollama import FakeOllama

    gen = add_generate_run(store, book_responses[:2])
    with FakeOllama(supports_logprobs=False) as server:
        server.script(lambda req: "m")
        with pytest.raises(EvalkitError, match="returned no logprobs; alpaca-eval:weighted_alpaca_eval_gpt4_turbo reads"):
            run_judge(store, responses_run=gen, hosts=[server.url], prompt_template=f"alpaca-eval:{WEIGHTED}",
                      progress=False, concurrency=1)
