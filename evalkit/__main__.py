"""The ``evalkit`` command and ``python -m evalkit``: :func:`evalkit.cli.main`, then a quick exit."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from evalkit.cli import main


def run() -> NoReturn:
    """Run the command, then leave as the interpreter would, minus tearing down every module.

    Once torch and transformers are loaded, CPython's finalisation (freeing their few thousand
    modules and the C++ state behind them) takes 2-3 s on a 2-core CPU after the command's
    work is done, durable and printed: a fine-tune's "last step to exit" budget is 3 s; a
    20-model report spends 0.7 s freeing the records it read. The steps of a normal exit that
    matter still happen, in the interpreter's order: other threads are waited for, atexit
    handlers run (library clean-ups, log handlers), stdio is flushed. Every file evalkit
    writes is closed by the command itself (the store, reports, exports). Tests call
    :func:`main`.
    """
    code = main(process_exits=True)
    threading._shutdown()  # what interpreter exit does first: join non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # as CPython does when the final flush fails (a reader that went away)
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    run()
