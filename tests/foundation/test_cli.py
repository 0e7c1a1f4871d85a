"""The command line: help, output formats, errors as one line, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from evalkit.cli import build_parser, main
from evalkit.store import Metric, ResultsStore


def _subcommand_parsers(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommand_parsers(sub, (*prefix, name))


def test_every_subcommand_has_help_listing_its_options(capsys):
    parser = build_parser()
    commands = list(_subcommand_parsers(parser))
    assert ("runs", "list") in [c for c, _ in commands]
    for command, sub in commands:
        with pytest.raises(SystemExit) as exc:
            main([*command, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: evalkit " + " ".join(command))
        for action in sub._actions:
            for option in action.option_strings:
                assert option in out, f"{' '.join(command)} --help does not list {option}"


def test_top_level_help_names_store_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    flat = " ".join(out.split()).replace("evalkit- results", "evalkit-results")  # argparse wraps at hyphens
    assert "--store" in out and "$EVALKIT_STORE or evalkit-results/evalkit.db" in flat


def test_defaults_are_shown_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["runs", "list", "--help"])
    assert "(default: table)" in capsys.readouterr().out


def test_runs_list_json_on_empty_store_is_empty_list(run_cli, tmp_path):
    ResultsStore(tmp_path / "evalkit.db").close()
    rc, out, err = run_cli("runs", "list", "--format", "json")
    assert rc == 0 and json.loads(out) == []


def test_read_only_command_on_missing_store_fails_without_creating_it(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "runs", "list", "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, env={**__import__("os").environ, "EVALKIT_STORE": str(tmp_path / "s.db")},
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no results store at" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.db").exists() and list(tmp_path.iterdir()) == []


def _fill(db):
    with ResultsStore(db) as store:
        with store.start_run("judge-score", "model-a", {"eval_set": "book-test"}) as run:
            run.add_sample("x1", {"response": "comma, \"quote\"\nnewline", "score": 80})
            run.log_metric("score_mean", 80.0, 0.0, 1)
    return run.id


def test_runs_list_json_shape_and_csv(run_cli, tmp_path):
    run_id = _fill(tmp_path / "evalkit.db")
    rc, out, _ = run_cli("runs", "list", "--format", "json")
    [run] = json.loads(out)
    assert {k: run[k] for k in ("id", "kind", "model", "status")} == {"id": run_id, "kind": "judge-score", "model": "model-a", "status": "done"}
    assert run["created_at"]
    assert run["metrics"] == {"score_mean": {"value": 80.0, "stderr": 0.0, "n": 1}}
    rc, out, _ = run_cli("runs", "list", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["id"] == run_id and rows[0]["metric"] == "score_mean=80"
    rc, out, _ = run_cli("runs", "list", "--kind", "mmlu", "--format", "json")
    assert json.loads(out) == []


def test_runs_show_and_export_formats(run_cli, tmp_path):
    run_id = _fill(tmp_path / "evalkit.db")
    rc, out, _ = run_cli("runs", "show", run_id, "--format", "json")
    assert rc == 0 and json.loads(out)["samples"] == 1
    rc, out, _ = run_cli("runs", "show", run_id)
    assert run_id in out and "score_mean" in out
    rc, out, _ = run_cli("runs", "export", run_id, "--format", "jsonl")
    assert json.loads(out.splitlines()[0])["response"] == "comma, \"quote\"\nnewline"
    rc, out, _ = run_cli("runs", "export", run_id, "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["response"] == "comma, \"quote\"\nnewline" and row["score"] == "80"
    exported = tmp_path / "out" / "run.json"
    rc, _, err = run_cli("runs", "export", run_id, "--format", "json", "--out", exported)
    assert rc == 0 and exported.exists()
    other = tmp_path / "other.db"
    rc, out, _ = run_cli("runs", "import", exported, store=other)
    assert rc == 0 and out.strip() == run_id
    with ResultsStore(other) as s:
        assert s.get_run(run_id).metrics["score_mean"] == Metric(80.0, 0.0, 1)


def test_runs_delete(run_cli, tmp_path):
    run_id = _fill(tmp_path / "evalkit.db")
    rc, _, err = run_cli("runs", "delete", run_id)
    assert rc == 0 and "deleted" in err
    rc, out, _ = run_cli("runs", "list", "--format", "json")
    assert json.loads(out) == []


@pytest.mark.parametrize("action", [("show",), ("export",), ("delete",)])
def test_unknown_run_id_is_one_line_error(run_cli, action, tmp_path):
    ResultsStore(tmp_path / "evalkit.db").close()
    rc, out, err = run_cli("runs", *action, "does-not-exist")
    assert rc == 2
    assert err.strip().count("\n") == 0
    assert err.startswith("evalkit: error: no run 'does-not-exist'")
    assert "Traceback" not in err


def test_verbose_shows_traceback(tmp_path):
    ResultsStore(tmp_path / "s.db").close()
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "--store", str(tmp_path / "s.db"), "-v", "runs", "show", "nope"],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "UnknownRunError" in proc.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["runs", "list", "--format", "xml"], "invalid choice: 'xml'"),
        (["runs", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["runs", "show"], "required: ID"),
    ],
)
def test_bad_arguments_exit_2_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_import_of_non_export_file_names_the_file(run_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, _, err = run_cli("runs", "import", bad)
    assert rc == 2 and str(bad) in err and "line 1" in err


def test_store_option_before_or_after_subcommand(tmp_path, capsys):
    db = tmp_path / "x.db"
    _fill(db)
    assert main(["runs", "list", "--store", str(db), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
