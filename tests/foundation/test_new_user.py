"""The README's first command as a new user runs it: a fresh copy of the project outside this
workplace (so no ``../shared`` beside it), a clean virtual environment, no network setting and no
evalkit or tiktoken environment variables (``env -i``), then ``evalkit demo`` and the next
commands it names. Torch and the other dependencies come from the system site-packages (a full
install would download gigabytes); evalkit itself is installed from the copy (``pip install -e .``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [name for name in listed if (REPO_ROOT / name).is_file()]


def _clean_env(home: Path, venv: Path) -> dict[str, str]:
    # what `env -i HOME=... PATH=...` leaves, with the venv activated
    return {"HOME": str(home), "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(venv),
            "LANG": "C.UTF-8"}


def _run(argv, *, cwd, env, timeout=1800):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_readme_first_command_on_a_fresh_machine(tmp_path_factory):
    root = tmp_path_factory.mktemp("newuser")
    home, project = root / "home", root / "evalkit"
    home.mkdir()
    for name in _project_files():
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    assert not (project.parent / "shared").exists()
    venv = project / ".venv"
    # --without-pip: the venv's own bundled setuptools (older, no bdist_wheel) would shadow the system's;
    # the system's pip and setuptools install evalkit into the venv without the network
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=300)
    env = _clean_env(home, venv)
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                "-e", "."], cwd=project, env=env, timeout=600)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    where = _run([str(venv / "bin" / "python"), "-c", "import evalkit; print(evalkit.__file__)"], cwd=home, env=env)
    assert where.stdout.strip() == str(project / "evalkit" / "__init__.py"), where.stdout + where.stderr

    # the README's command, in the project folder, as typed (the demo needs no option)
    assert "pip install torch==2.13.0 -e . && evalkit demo" in (project / "README.md").read_text(encoding="utf-8")
    env_demo = {**env, "OLLAMA_HOST": "http://127.0.0.1:9", "COLUMNS": "80"}  # no judge server here
    first = _run([str(venv / "bin" / "evalkit"), "demo"], cwd=project, env=env_demo)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    text = first.stdout
    assert "RANDOMLY INITIALISED" in text  # no hub here: the demo says what its models are
    non_empty = int(re.search(r"demo-sft: (\d+) of 20 non-empty", text).group(1))
    assert non_empty >= 10, text[-3000:]
    tail = [line.strip() for line in text.strip().splitlines()[-5:]]
    assert tail[0] == "Next" and tail[1] == "evalkit runs list" and tail[2] == "evalkit leaderboard"
    assert (project / "evalkit-demo" / "leaderboard.html").is_file()
    assert (project / "evalkit-results" / "evalkit.db").is_file()

    # the next commands it names find its store, with the book's real model in the leaderboard
    listed = _run([str(venv / "bin" / "evalkit"), "runs", "list", "--format", "json"], cwd=project, env=env, timeout=600)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert {r["model"] for r in runs} == {"gpt2-tiny-random-init", "gpt2-tiny-random-init-demo-sft", "book-gpt2-medium-sft"}
    board = _run([str(venv / "bin" / "evalkit"), "leaderboard"], cwd=project, env={**env, "COLUMNS": "80"}, timeout=600)
    assert board.returncode == 0 and "book-gpt2-medium-sft" in board.stdout, board.stderr
    assert max(len(line) for line in board.stdout.splitlines()) <= 80

    # a second demo adds no run and says so
    second = _run([str(venv / "bin" / "evalkit"), "demo"], cwd=project, env=env_demo)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "nothing new was added to the store" in second.stdout
    again = _run([str(venv / "bin" / "evalkit"), "runs", "list", "--format", "json"], cwd=project, env=env, timeout=600)
    assert [r["id"] for r in json.loads(again.stdout)] == [r["id"] for r in runs]
    # nothing was written outside the project and the home folder
    assert not any(name.startswith("evalkit") for name in os.listdir(root) if name not in ("evalkit",))
