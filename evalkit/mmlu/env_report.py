"""torch's environment report for lm-eval's results JSON, collected while the model works.

Every ``lm_eval.simple_evaluate`` call ends by writing ``pretty_env_info`` (torch's
``collect_env`` report: it runs pip, lscpu, nvidia-smi and more) into its results. That takes
5-30 s on a busy machine, after the evaluation, on the critical path. evalkit starts the very
same function in a background thread before it loads the model, and hands lm-eval the finished
report when it asks: the JSON is identical, the wait overlaps with the evaluation.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class _Background:
    def __init__(self, fn):
        self._fn = fn
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        # a daemon thread: a run that fails early exits at once instead of waiting for pip
        threading.Thread(target=self._run, name="collect-env", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller, which handles it as before
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@contextlib.contextmanager
def env_report_in_background() -> Iterator[None]:
    """While inside, ``torch.utils.collect_env.get_pretty_env_info`` (which lm-eval imports when
    it writes its results) returns the report started on entry."""
    try:
        import torch.utils.collect_env as collect_env
    except ImportError:  # lm-eval writes "N/A" without torch; nothing to prepare
        yield
        return
    original = collect_env.get_pretty_env_info
    collect_env.get_pretty_env_info = _Background(original).result
    try:
        yield
    finally:
        collect_env.get_pretty_env_info = original
