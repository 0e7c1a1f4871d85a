"""Typed CLI options (evalkit.cli_types): ranges enforced when parsed and shown in --help."""

from __future__ import annotations

import argparse

import pytest

from evalkit import cli_types
from evalkit.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser, prog=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prog, name), sub
                yield from _subparsers(sub, (*prog, name))


def test_no_option_of_any_command_takes_a_bare_int_or_float():
    """Every numeric option goes through a checked converter, so none can be out of range."""
    bare = [
        f"{' '.join(prog)} {action.option_strings[0]}"
        for prog, sub in _subparsers(build_parser())
        for action in sub._actions
        if action.type in (int, float)
    ]
    assert bare == []


def test_help_shows_each_checked_range():
    for prog, sub in _subparsers(build_parser()):
        text = sub.format_help()
        for action in sub._actions:
            shown = getattr(action.type, "shown_range", None)
            if shown and action.help != argparse.SUPPRESS:
                assert f"[{shown}]" in " ".join(text.split()), (prog, action.option_strings)
    arena = dict(_subparsers(build_parser()))[("arena",)].format_help()
    assert "[>= 1, or -1 for all cores]" in " ".join(arena.split())


@pytest.mark.parametrize(
    "converter, good, bad",
    [
        (cli_types.positive_int, {"1": 1, "42": 42}, ["0", "-1", "1.5", "x", ""]),
        (cli_types.nonneg_int, {"0": 0, "7": 7}, ["-1", "nan"]),
        (cli_types.seed, {"0": 0, "4294967295": 4294967295}, ["-1", "4294967296"]),
        (cli_types.positive_float, {"1e-5": 1e-5, "3": 3.0}, ["0", "-1", "nan", "inf", "-inf"]),
        (cli_types.nonneg_float, {"0": 0.0, "0.7": 0.7}, ["-0.1", "nan", "infinity"]),
        (cli_types.probability, {"0.05": 0.05}, ["0", "1", "1.5", "nan"]),
        (cli_types.fraction, {"0": 0.0, "0.5": 0.5}, ["1", "-0.1", "1.5"]),
        (cli_types.jobs, {"1": 1, "-1": -1, "8": 8}, ["0", "-2", "x"]),
        (cli_types.int_range(0, 5), {"0": 0, "5": 5}, ["6", "-1"]),
        (cli_types.url, {"localhost:11434": "localhost:11434", "http://[::1]:11434": "http://[::1]:11434",
                         "https://judge.example.org/ollama": "https://judge.example.org/ollama"},
         ["::::", "", "ftp://x", "http://", "http://h:99999", "http://a b"]),
    ],
)
def test_converters_accept_their_range_and_refuse_the_rest(converter, good, bad):
    for text, value in good.items():
        assert converter(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}"):
            converter(text)


def test_output_places(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert cli_types.output_file(str(tmp_path / "new" / "r.html")) == tmp_path / "new" / "r.html"
    assert cli_types.output_folder(str(tmp_path)) == tmp_path
    assert cli_types.output_path(str(tmp_path)) == tmp_path
    for converter, text, message in [
        (cli_types.output_file, tmp_path / "afile" / "r.html", "which is a file"),
        (cli_types.output_file, tmp_path, "is a folder"),
        (cli_types.output_folder, tmp_path / "afile", "is a file"),
        (cli_types.output_folder, tmp_path / "afile" / "deeper" / "x", "which is a file"),
        (cli_types.output_path, tmp_path / "afile" / "x.json", "which is a file"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            converter(str(text))


def test_a_bad_option_is_one_line_naming_it(capsys):
    from evalkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", "m", "--top-k", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "evalkit generate: error: argument --top-k: expected an integer (>= 1), got '0' (see `evalkit generate --help`)\n"
