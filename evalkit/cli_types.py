"""Typed values of command-line options, checked when argparse parses them.

Each factory returns a converter for ``add_argument(type=...)`` that refuses a value outside its
range with argparse's one-line error (exit status 2) before any command runs, so a nonsense
option can never start a run. Converters carry ``shown_range``, which the CLI's help formatter
appends to the option's help, so ``--help`` documents exactly what is accepted.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: numpy's seeds are unsigned 32-bit; torch's are wider, so this is the range every seed fits.
SEED_MAX = 2**32 - 1


class _Checked:
    """A converter: ``convert(text)`` then ``accept(value)``; ``shown_range`` is what --help says."""

    def __init__(self, convert: Callable[[str], Any], accept: Callable[[Any], bool], shown_range: str, what: str):
        self.convert = convert
        self.accept = accept
        self.shown_range = shown_range
        self.what = what
        self.__name__ = what  # argparse names the type in some messages

    def __call__(self, text: str) -> Any:
        try:
            value = self.convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {self.what} ({self.shown_range}), got {text!r}") from None
        if not self.accept(value):
            raise argparse.ArgumentTypeError(f"expected {self.what} ({self.shown_range}), got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"<{self.what}: {self.shown_range}>"


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # float() accepts "nan" and "inf"
        raise ValueError(text)
    return value


def int_range(low: int | None = None, high: int | None = None) -> _Checked:
    """An integer in ``[low, high]`` (either end may be open-ended)."""
    if low is not None and high is not None:
        shown = f"{low} to {high}"
    elif low is not None:
        shown = f">= {low}"
    else:
        shown = f"<= {high}"
    return _Checked(
        int, lambda v: (low is None or v >= low) and (high is None or v <= high), shown, "an integer"
    )


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> _Checked:
    """A finite number between ``low`` and ``high``, each end included unless ``*_open``."""

    def accept(v: float) -> bool:
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return _Checked(_finite_float, accept, " and ".join(parts) or "finite", "a number")


positive_int = int_range(1)
nonneg_int = int_range(0)
seed = int_range(0, SEED_MAX)
positive_float = float_range(0, low_open=True)
nonneg_float = float_range(0)
#: a significance level or any probability strictly between 0 and 1
probability = float_range(0, 1, low_open=True, high_open=True)
#: a dropout rate: 0 is "none", 1 would drop everything
fraction = float_range(0, 1, high_open=True)


def _jobs(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        raise ValueError(text)
    return value


#: worker processes: N >= 1, or -1 for every core (joblib's convention)
jobs = _Checked(_jobs, lambda v: True, ">= 1, or -1 for all cores", "a process count")


def _url(text: str) -> str:
    """An http(s) server address; a bare ``host[:port]`` means ``http://host[:port]`` (Ollama's
    own reading of OLLAMA_HOST). Refuses what no client could connect to, such as ``::::``."""
    value = text.strip()
    if not value:
        raise ValueError(text)
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(text)
    parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
    if any(ch.isspace() for ch in value):
        raise ValueError(text)
    return value


url = _Checked(_url, lambda v: True, "http(s)://host[:port] or host[:port]", "a server URL")


def _writable_place(path: Path, *, folder: bool) -> Path:
    """``path`` if a file (or, with ``folder``, a folder) can be written there: nothing on the
    way is a file, the path itself is not the other kind, and the nearest existing folder is
    writable. Checked when parsed, so a command never does its work only to fail on writing."""
    if path.exists():
        if folder and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{str(path)!r} is a file; expected a folder to write into")
        if not folder and path.is_dir():
            raise argparse.ArgumentTypeError(f"{str(path)!r} is a folder; expected a file name to write")
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{str(path)!r} is not writable")
        return path
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{str(path)!r} lies under {str(parent)!r}, which is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"cannot create {str(path)!r}: {str(parent)!r} is not writable")
            return path
    return path


def output_file(text: str) -> Path:
    """A file to write (its folders are created)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file name, got ''")
    return _writable_place(Path(text), folder=False)


def output_folder(text: str) -> Path:
    """A folder to write into (created when missing)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder name, got ''")
    return _writable_place(Path(text), folder=True)




def output_path(text: str) -> Path:
    """A file or a folder to write, whichever the command makes of it (e.g. by format)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file or folder name, got ''")
    path = Path(text)
    return path if path.is_dir() else _writable_place(path, folder=False)


def _device(text: str) -> str:
    """A torch device this machine has (torch is imported only when the option is given)."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(text) from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(f"{text!r}: no such CUDA device on this machine (use cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine (use cpu)")
    return text


device = _Checked(_device, lambda v: True, "cpu, cuda, cuda:N, mps", "a torch device")
