"""Chatbot Arena's battle tables: evalkit human (and judge-pairwise) runs out, human runs in.

A battle, as FastChat's ``clean_battle_data`` and the published Arena data sets have it:
``question_id``, ``model_a``, ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie`` or
``tie (bothbad)``), ``judge`` (who voted), ``turn``, ``anony``, ``tstamp`` (Unix seconds) and the
two conversations as lists of ``{"role", "content"}`` messages. Files are JSON Lines, a JSON list
or CSV (conversations as JSON text in their cells).

From a judge-pairwise run, ``model_a`` is the reference (``generator_1``) and ``model_b`` the
judged model; a preference above 1.5 is a win for ``model_b``, below for ``model_a``, exactly 1.5
a tie (AlpacaEval's ``n_wins`` / ``n_wins_base`` / ``n_draws``); unparsed verdicts are left out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.errors import InputError
from evalkit.interop._records import is_missing_number, read_records, require_text
from evalkit.interop.alpaca_eval import alpaca_instruction, reference_name, split_alpaca_instruction
from evalkit.items import instruction_item_id
from evalkit.store import Metric, ResultsStore

BATTLES = "Chatbot Arena battles (records with model_a, model_b, winner in model_a|model_b|tie|tie (bothbad))"
OUTCOME_TO_WINNER = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
WINNER_TO_OUTCOME = {winner: outcome for outcome, winner in OUTCOME_TO_WINNER.items()}
BATTLE_COLUMNS = ("question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp", "conversation_a", "conversation_b")


def _epoch(timestamp: Any) -> float | None:
    if is_missing_number(timestamp):
        return None
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        return float(timestamp)
    try:
        parsed = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _iso(tstamp: float) -> str:
    return datetime.fromtimestamp(tstamp, timezone.utc).isoformat(timespec="milliseconds")


def _conversation(instruction: str, input_text: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": alpaca_instruction(instruction, input_text)}, {"role": "assistant", "content": response}]


def battles_from_run(store: ResultsStore, run_id: str) -> list[dict[str, Any]]:
    """A human or judge-pairwise run as Arena battle records."""
    record = store.get_run(run_id, with_metrics=False)
    battles = []
    if record.kind == "human":
        for item_id, p in store.samples(record.id):
            winner = OUTCOME_TO_WINNER.get(p.get("outcome"))
            if winner is None:
                raise InputError(f"run {record.id}, sample {item_id}: outcome {p.get('outcome')!r} is not one of a, b, tie, both_bad")
            battles.append(
                _battle(p.get("pair_id") or item_id, p.get("model_a"), p.get("model_b"), winner, p.get("rater"),
                        _epoch(p.get("timestamp")), p.get("instruction"), p.get("input") or "",
                        p.get("response_a") or "", p.get("response_b") or "")
            )
    elif record.kind == "judge-pairwise":
        judge = record.config.get("judge_model")
        tstamp = _epoch(record.finished_at or record.created_at)
        for item_id, p in store.samples(record.id):
            pref = p.get("preference")
            if is_missing_number(pref) or not isinstance(pref, (int, float)):
                continue  # an unparsed verdict is no battle
            winner = "model_b" if pref > 1.5 else "model_a" if pref < 1.5 else "tie"
            battles.append(
                _battle(item_id, p.get("generator_1") or reference_name(record.config), p.get("generator_2") or record.model,
                        winner, p.get("annotator") or judge, tstamp, p.get("instruction") or "", p.get("input") or "",
                        p.get("output_1") or "", p.get("output_2") or "")
            )
    else:
        raise InputError(
            f"run {record.id} has kind {record.kind!r}; the arena format exports human runs and judge-pairwise runs (battles)"
        )
    for index, battle in enumerate(battles):
        for side in ("model_a", "model_b"):
            if not battle[side]:
                raise InputError(f"run {record.id}: battle {index} has no {side} name; Arena battles need both models")
    return battles


def _battle(question_id, model_a, model_b, winner, judge, tstamp, instruction, input_text, response_a, response_b) -> dict[str, Any]:
    battle = {
        "question_id": question_id,
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "judge": judge,
        "turn": 1,
        "anony": True,  # evalkit shows pairs blind
        "tstamp": tstamp,
        # battles imported without conversations are exported without them
        "conversation_a": _conversation(instruction, input_text, response_a) if instruction is not None else None,
        "conversation_b": _conversation(instruction, input_text, response_b) if instruction is not None else None,
    }
    if input_text:
        battle["input"] = input_text  # evalkit's own field, so an import recovers the item id
    return battle


def battles_text(battles: list[dict[str, Any]], *, as_csv: bool) -> str:
    """JSON Lines, or CSV with the conversations as JSON text."""
    if not as_csv:
        return "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in battles)
    columns = list(BATTLE_COLUMNS) + (["input"] if any("input" in b for b in battles) else [])
    buffer = io.StringIO()
    # CRLF rows (RFC 4180): the csv writer quotes a cell only for characters of its line
    # terminator, so with "\n" a model's "\r" would go out bare and split the row on reading
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for b in battles:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in b.items()})
    return buffer.getvalue()


# -- import -----------------------------------------------------------------------------------


def _messages(value: Any, *, path: Path, index: int, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):  # CSV cells hold JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError("is not a JSON list of messages", path=path, record=index, field=field) from None
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise InputError("expected a list of {role, content} messages", path=path, record=index, field=field)
    return value


def _first(messages: list[dict[str, Any]], role: str) -> str:
    return next((str(m.get("content") or "") for m in messages if m.get("role") == role), "")


def _battle_time(tstamp: Any, *, path: Path, index: int) -> str | None:
    """A battle's ``tstamp`` (Unix seconds; a number or, in CSV, its text) as an ISO time; None when absent."""
    if tstamp is None or tstamp == "" or is_missing_number(tstamp):
        return None
    seconds = tstamp
    if isinstance(tstamp, str):
        try:
            seconds = float(tstamp)
        except ValueError:
            seconds = None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InputError(f"is {str(tstamp)[:40]!r}; expected Unix seconds", path=path, record=index, field="tstamp")
    try:
        return _iso(float(seconds))
    except (OverflowError, ValueError, OSError):  # 1e300, Infinity: no date at all
        raise InputError(f"is {seconds!r}, not a date; expected Unix seconds", path=path, record=index, field="tstamp") from None


def read_battles(path: str | Path) -> list[dict[str, Any]]:
    """Human-run sample payloads from an Arena battles file (``.csv``, ``.json`` or ``.jsonl``)."""
    path = Path(path)
    rows = read_records(path, expected=BATTLES)
    if not any("winner" in r for r in rows):
        keys = ", ".join(sorted(rows[0])[:8])
        raise InputError(f"no 'winner' field in any record (found: {keys}); expected {BATTLES}", path=path)
    votes = []
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(rows):
        model_a = require_text(row, "model_a", path=path, index=index, expected=BATTLES)
        model_b = require_text(row, "model_b", path=path, index=index, expected=BATTLES)
        if model_a == model_b:
            raise InputError(f"a model cannot battle itself ({model_a!r})", path=path, record=index, field="model_b")
        winner = row.get("winner")
        if winner not in WINNER_TO_OUTCOME:
            raise InputError(
                f"is {winner!r}; expected one of {', '.join(WINNER_TO_OUTCOME)}", path=path, record=index, field="winner"
            )
        rater = str(row.get("judge") or "arena")
        conversation_a = _messages(row.get("conversation_a"), path=path, index=index, field="conversation_a")
        conversation_b = _messages(row.get("conversation_b"), path=path, index=index, field="conversation_b")
        # Arena's public battle tables often carry no conversations: then there is no instruction
        # to match votes on (None, which evalkit's agreement statistics skip), only the battle
        instruction, input_text = (
            split_alpaca_instruction(row, _first(conversation_a, "user")) if conversation_a else (None, "")
        )
        timestamp = _battle_time(row.get("tstamp"), path=path, index=index)
        base = str(row["question_id"]) if row.get("question_id") not in (None, "") else f"battle-{index}"
        pair_id, extra = base, 0
        # the same question voted on again (other models, other turn) gets its record number;
        # a file may already use that name for another question ("q#2", "q", "q"): then count on
        while (pair_id, rater) in seen:
            pair_id = f"{base}#{index}" if extra == 0 else f"{base}#{index}.{extra}"
            extra += 1
        seen.add((pair_id, rater))
        votes.append(
            {
                "pair_id": pair_id,
                "rater": rater,
                "outcome": WINNER_TO_OUTCOME[winner],
                "model_a": model_a,
                "model_b": model_b,
                "instruction": instruction,
                "input": input_text,
                "response_a": _first(conversation_a, "assistant") if conversation_a else None,
                "response_b": _first(conversation_b, "assistant") if conversation_b else None,
                "comment": "",
                "timestamp": timestamp,
                "seconds": None,
                # as the rating pages' votes carry it
                "item_id": instruction_item_id(instruction, input_text) if instruction is not None else None,
            }
        )
    return votes


def import_battles(store: ResultsStore, path: str | Path, *, name: str | None = None) -> str:
    """Store an Arena battles file as a ``human`` run (one sample per vote, ``<pair_id>/<rater>``;
    ``pair_id`` is the battle's ``question_id``, ``rater`` its ``judge``); returns the run id.
    The same file is imported once."""
    path = Path(path)
    votes = read_battles(path)
    config = {"source": "arena-battles", "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    # named like the rating pages' human runs: the models that battled
    model = name or " vs ".join(sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes}))
    existing = store.find_run("human", model, config)
    if existing is not None:
        return existing.id
    raters = {v["rater"] for v in votes}
    metrics = {"n_votes": Metric(float(len(votes)), None, len(votes)), "n_raters": Metric(float(len(raters)), None, len(raters))}
    samples = store.check_run("human", model, config, [(f"{v['pair_id']}/{v['rater']}", v) for v in votes], metrics, source=path)
    with store.start_run("human", model, config, model_path=str(path)) as run:
        run.add_samples(samples)
        run.log_metrics(metrics)
    return run.id
