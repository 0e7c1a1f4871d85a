"""JSON objects inside a judge's prose (a fenced ```json block, a sentence then ``{...}``): the
one scan both the 0-100 score and the pairwise verdict parsers read."""

from __future__ import annotations

import json
import re
from typing import Any

_DECODER = json.JSONDecoder()


def embedded_json_objects(text: str) -> list[Any]:
    """Every value that parses as JSON from a ``{`` in ``text``, in order (nested ones too)."""
    found = []
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        found.append(value)
    return found
