"""The command line: help, output formats, errors as one line, exit codes."""

from __future__ import annotations

import argparse
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
    # a read-only command never creates the store it was pointed at
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"evalkit: error: no results store at {tmp_path / 's.db'} ($EVALKIT_STORE; nothing was created)")
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


def test_tables_at_80_columns_never_fold_inside_a_word():
    """At 80 columns words are never cut over two lines: text wraps at spaces, a name too long
    for its column keeps both ends around "…", ids stay whole."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from evalkit.output import fit_words

    table = Table()
    table.add_column(Text("id"), no_wrap=True)
    for name in ("model", "verdict", "p"):
        table.add_column(Text(name))
    rid = "judge-pairwise-20261129-052100-1a2b3c"
    table.add_row(Text(rid), Text("gpt2-tiny-random-init-demo-sft"), Text("no detectable difference at alpha 0.05"), Text("0.1234"))
    console = Console(width=80, record=True, soft_wrap=False)
    console.print(fit_words(table, width=80))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    assert cells[0][0] == rid and "0.1234" in [c for row in cells for c in row]
    model = cells[0][1]
    assert model.startswith("gpt2-") and model.endswith("-sft") and "…" in model and len(model) >= 12
    words = " ".join(row[2] for row in cells).split()
    assert words == "no detectable difference at alpha 0.05".split()  # every word whole, in order


def test_a_table_that_fits_is_left_alone():
    from rich.table import Table
    from rich.text import Text

    from evalkit.output import fit_words

    table = Table()
    table.add_column(Text("model"))
    table.add_row(Text("gpt2"))
    fit_words(table, width=80)
    assert table.columns[0].width is None


def test_every_option_default_is_in_help():
    """Every option with a default says it in --help (0 included: it is not "no default")."""
    parser = build_parser()
    for command, sub in _subcommand_parsers(parser):
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.default is False:
                continue
            if action.help == argparse.SUPPRESS or action.__class__.__name__ in ("_HelpAction", "_VersionAction"):
                continue
            shown = formatter._get_help_string(action) or ""
            assert action.help and "default" in shown, f"{' '.join(command)} {action.option_strings[0]}: no default in help"


def test_demo_help_describes_it_and_names_the_real_store_default(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split()).replace("evalkit- results", "evalkit-results")
    assert "Run the whole job on defaults" in out and "no network" in out
    assert "$EVALKIT_STORE or evalkit-results/evalkit.db" in out
    assert "its results store (evalkit.db) included" not in out


def test_importing_the_same_file_again_reuses_the_run_and_says_so(run_cli, tmp_path):
    from evalkit.assets import BOOK_RESPONSES, embedded_file

    book = embedded_file(BOOK_RESPONSES)
    rc, out, err = run_cli("import", "responses", book, "--name", "book")
    assert rc == 0 and "reused" not in err
    first = out.strip()
    rc, out, err = run_cli("import", "responses", book, "--name", "book")
    assert rc == 0 and out.strip() == first
    assert f"reused finished run {first}: these responses were stored before with the same inputs" in err
    with ResultsStore(tmp_path / "evalkit.db") as store:
        assert [r.id for r in store.list_runs()] == [first]


_QUICK_EXIT_SCRIPT = r"""
import atexit, sys, threading, time
from pathlib import Path
import torch  # what makes the quick exit matter most: tearing down torch's modules
import evalkit.__main__ as entry

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))

def late_writer():
    time.sleep(0.3)
    (out / "thread").write_text("joined")

def command(**_):
    threading.Thread(target=late_writer).start()  # not a daemon: exit waits for it
    sys.stdout.write("x" * 200_000)  # more than a pipe holds: all of it must be flushed
    sys.stderr.write("done\n")
    return 3

entry.main = command
entry.run()
raise AssertionError("run() returned")
"""


def test_the_command_exits_quickly_yet_like_the_interpreter(tmp_path):
    # after the work, `evalkit` skips tearing down torch's modules but keeps what exit guarantees
    proc = subprocess.run([sys.executable, "-c", _QUICK_EXIT_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stdout == "x" * 200_000 and proc.stderr == "done\n"
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "joined"


def test_record_commands_of_the_evalkit_process_leave_the_cycle_collector_off(tmp_path):
    # `evalkit report` & co. hold acyclic records and exit: no full collections over them; the
    # Python API (main without process_exits, as tests and notebooks call it) leaves gc alone
    with ResultsStore(tmp_path / "s.db") as store:
        with store.start_run("mmlu", "m", {}) as run:
            run.add_sample("q1", {"correct": True})
    code = ("import gc, sys; from evalkit.cli import main\n"
            "main(['--store', sys.argv[1], 'runs', 'list'], process_exits=sys.argv[2] == '1'); print('GC', gc.isenabled())")
    for exits, enabled in (("1", False), ("0", True)):
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.db"), exits], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().endswith(f"GC {enabled}")
