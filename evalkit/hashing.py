"""Stable JSON text and content hashes: the basis of fingerprints and cache keys.

Kept apart from the store so that code which only needs a hash (``finetune``'s prompt styles
and checkpoint imports) does not depend on the results store.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Stable JSON text: the basis of fingerprints and cache keys."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(value: Any, length: int = 16) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
