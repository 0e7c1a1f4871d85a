"""evalkit: decide, with evidence, which instruction-tuned checkpoint is better.

Public API (everything else is private and may change):

* :class:`ResultsStore`, :class:`Run`, :class:`Metric`: the results store every mode writes to.
* :func:`get_tokenizer`, :func:`resolve_data`: offline-aware assets.
* :class:`EvalkitError`: user-facing errors.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("evalkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

from evalkit.assets import get_tokenizer, resolve_data
from evalkit.errors import EvalkitError, InputError
from evalkit.store import Metric, ResultsStore, Run, RunRecord

__all__ = [
    "__version__",
    "EvalkitError",
    "InputError",
    "Metric",
    "ResultsStore",
    "Run",
    "RunRecord",
    "get_tokenizer",
    "resolve_data",
]
