"""A judge run killed with SIGKILL keeps its items; the same call resumes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from evalkit.judge import run_judge
from evalkit.store import ResultsStore
from tests.conftest import shared_path
from tests.judge.conftest import add_generate_run
from tests.judge.fake_ollama import FakeOllama, wait_until
from tests.judge.fake_openai import FakeOpenAI


@pytest.mark.parametrize(("backend", "server_class"), [("ollama", FakeOllama), ("openai", FakeOpenAI)])
def test_resume_after_kill_9(tmp_path, book_responses, backend, server_class):
    db = tmp_path / "evalkit.db"
    with ResultsStore(db) as store:
        gen = add_generate_run(store, book_responses[:20])
    with server_class(latency=0.1) as server:
        server.script(lambda req: {"score": 10 + len(req.messages[1]["content"]) % 80})
        script = textwrap.dedent(
            f"""
            from evalkit.judge import run_judge
            from evalkit.store import ResultsStore
            run_judge(ResultsStore({str(db)!r}), responses_run={gen!r}, hosts=[{server.url!r}],
                      backend={backend!r}, concurrency=1, progress=False)
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with ResultsStore(db) as watcher:
                def stored() -> int:
                    runs = watcher.list_runs(kind="judge-score")
                    return watcher.sample_count(runs[0].id) if runs else 0

                assert wait_until(lambda: stored() >= 4 or child.poll() is not None, timeout=60)
                assert child.poll() is None, child.communicate()
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                (killed,) = watcher.list_runs(kind="judge-score")
                kept = dict(watcher.samples(killed.id))
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        assert killed.status == "interrupted" and 4 <= len(kept) < 20

        calls_before = server.judge_calls
        with ResultsStore(db) as store:
            run_id = run_judge(store, responses_run=gen, hosts=[server.url], backend=backend, concurrency=4,
                               progress=False)
            assert run_id == killed.id
            samples = dict(store.samples(run_id))
            assert len(samples) == 20 and store.get_run(run_id).status == "done"
            assert all(samples[i] == p for i, p in kept.items())  # finished items were not judged again
        new_calls = server.judge_calls - calls_before
        # an answer in flight at the kill may already be cached: at most one fewer call
        assert 20 - len(kept) - 1 <= new_calls <= 20 - len(kept)


def test_ctrl_c_keeps_items_and_says_how_to_resume(tmp_path):
    book = shared_path("book-ch07", "instruction-data-with-response.json")
    db = tmp_path / "evalkit.db"
    with FakeOllama(latency=0.1) as server:
        server.script(lambda req: {"score": 42})
        child = subprocess.Popen(
            [sys.executable, "-m", "evalkit", "--store", str(db), "judge", "--responses", str(book), "--host", server.url,
             "--concurrency", "1", "--no-progress"],
            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # as from a terminal: a suite started in the background (`cmd &` in a script) passes
            # SIGINT down ignored, and Python then never raises KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            assert wait_until(lambda: server.judge_calls >= 4 or child.poll() is not None, timeout=60)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        assert child.returncode == 130, err
        assert "interrupted; finished items are kept in the store, re-run the command to resume" in err
        with ResultsStore(db) as store:
            (run,) = store.list_runs(kind="judge-score")
            assert run.status == "interrupted" and 1 <= store.sample_count(run.id) < 109
