"""A rich progress bar over lm-eval's loglikelihood requests, instead of lm-eval's tqdm bars.

lm-eval reports each answered request to its model's cache hook (that is how its request cache
stores answers as they come). evalkit chains onto that hook to advance the bar, so the requests,
their batching and their order stay exactly lm-eval's. The hook is installed through the model's
own ``set_cache_hook`` so that lm-eval's request cache, which installs its hook later, is still
fed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import tqdm
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evalkit.output import console


class _ChainedHook:
    """Forwards to lm-eval's hook (its request cache, or nothing) and counts answers."""

    def __init__(self, inner: Any, on_answer: Callable[[], None]):
        self.inner = inner
        self.dbdict = getattr(inner, "dbdict", None)
        self._on_answer = on_answer

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        self.inner.add_partial(attr, req, res)
        self._on_answer()


def attach_counter(lm: Any, on_answer: Callable[[], None]) -> None:
    """Call ``on_answer`` for every request ``lm`` answers, keeping whatever hook lm-eval installs."""
    original = lm.set_cache_hook

    def set_cache_hook(hook: Any) -> None:
        original(_ChainedHook(hook, on_answer))

    lm.set_cache_hook = set_cache_hook  # instance attribute: only this model object is affected
    set_cache_hook(lm.cache_hook)


class _SilentTqdm(tqdm.tqdm):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


@contextlib.contextmanager
def quiet_library_bars() -> Iterator[None]:
    """Silence lm-eval's, datasets' and transformers' own progress bars for a while.

    datasets and transformers have switches for it. lm-eval has none in its library API (each
    call passes ``disable=`` explicitly, which also beats tqdm's TQDM_DISABLE), so the ``tqdm``
    name in its already-imported modules is pointed at a silent subclass and restored afterwards.
    Only what is drawn changes, never what is computed.
    """
    import datasets.utils as ds_utils
    import transformers.utils.logging as tf_logging

    patched = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("lm_eval") and getattr(module, "tqdm", None) is tqdm.tqdm
    ]
    ds_was_on = not ds_utils.are_progress_bars_disabled()
    tf_was_on = tf_logging.is_progress_bar_enabled()
    for module in patched:
        module.tqdm = _SilentTqdm
    ds_utils.disable_progress_bars()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        for module in patched:
            module.tqdm = tqdm.tqdm
        if ds_was_on:
            ds_utils.enable_progress_bars()
        if tf_was_on:
            tf_logging.enable_progress_bar()


@contextlib.contextmanager
def request_progress(total: int, *, enabled: bool = True, description: str = "MMLU") -> Iterator[Callable[[], None]]:
    """A bar on stderr counting ``total`` requests; yields the per-answer callback."""
    if not enabled:
        yield lambda: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=False,
    )
    task = progress.add_task(description, total=total)
    with quiet_library_bars(), progress:
        yield lambda: progress.advance(task)
        # answers that came from the request cache never reach the model: finish the bar honestly
        progress.update(task, completed=total)
