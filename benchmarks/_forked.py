"""Run a benchmark variant in a forked child, so each variant's peak RSS is its own.

The child inherits the imported modules (no import cost in the timing) and reports its result
and its peak resident memory (Linux VmHWM, reset at the fork; elsewhere ``ru_maxrss``) back
through a pipe.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import traceback
from collections.abc import Callable
from typing import Any


def _reset_peak() -> bool:
    """Linux: restart the VmHWM high-water mark (a fork inherits its parent's)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_kib(reset: bool) -> float:
    if reset:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else peak


def _child(conn, fn, args):
    try:
        reset = _reset_peak()
        result = fn(*args)
        conn.send(("ok", result, _peak_kib(reset)))
    except BaseException:  # report, do not hang the parent
        conn.send(("error", traceback.format_exc(), 0))
    finally:
        conn.close()


def run_forked(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``(fn(*args), peak RSS in MiB)`` measured in a fresh fork of this process."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args))
    proc.start()
    child.close()
    status, value, peak_kib = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmark variant failed:\n{value}")
    return value, peak_kib / 1024
