"""Is the Hugging Face Hub reachable? Asked once, quickly, before anything waits on it.

``transformers``/``huggingface_hub`` retry an unreachable hub with back-off, which made a
`evalkit finetune` on an offline machine wait about a minute before saying so. Here one TCP
connection with a short timeout (name resolution included) decides, and ``HF_HUB_OFFLINE`` /
``TRANSFORMERS_OFFLINE`` are honoured without any connection at all. Offline, hub ids are still
loaded from the local Hugging Face cache when they are there (``local_files_only``).
"""

from __future__ import annotations

import os
import socket
import threading
from functools import lru_cache

HUB_HOST = ("huggingface.co", 443)
CONNECT_TIMEOUT = 3.0  # seconds, name resolution and TCP connect together
_TRUE = ("1", "true", "yes", "on")


def hub_offline_by_env() -> bool:
    return any((os.environ.get(name) or "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@lru_cache(maxsize=1)
def _connects(timeout: float) -> bool:
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection(HUB_HOST, timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    # getaddrinfo has no timeout of its own: a resolver that hangs must not hang the command
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


def hub_reachable(timeout: float = CONNECT_TIMEOUT) -> bool:
    """False at once under HF_HUB_OFFLINE=1; else whether a connection opens within ``timeout``
    (asked once per process)."""
    if hub_offline_by_env():
        return False
    return _connects(timeout)


def hub_load_kwargs() -> dict[str, bool]:
    """Extra ``from_pretrained`` arguments for a hub id: the local cache only when the hub is out
    of reach, so a missing model fails in seconds with evalkit's message instead of retrying."""
    return {} if hub_reachable() else {"local_files_only": True}

