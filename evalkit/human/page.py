"""The rating page: one self-contained HTML file (no network) with the pairs embedded.

Model text is untrusted. It reaches the page only as JSON inside
``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as ``\\u003c`` etc., so
neither ``</script>`` nor ``<!--`` can end the block early; the page's script reads it with
``JSON.parse`` and shows it with ``textContent`` only. A Content-Security-Policy forbids every
fetch and lets only the page's own script and style (by hash) run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib.resources import files
from typing import Any

from markupsafe import Markup

_TEMPLATES = files("evalkit.human") / "templates"


def json_for_script(value: Any) -> Markup:
    """JSON that is safe between ``<script ...>`` and ``</script>``.

    HTML-escaping would corrupt it (a script element's text is not entity-decoded), so the
    characters that could start a tag or a comment are written as JSON unicode escapes instead;
    JSON.parse turns them back into the same characters. U+2028/U+2029 are escaped too so the
    text is also valid as a JavaScript literal.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return Markup(text)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_rate_page(bundle_id: str, title: str, pairs: list[dict[str, Any]]) -> str:
    """rate.html for these pairs (each: pair_id, instruction, input, response_a, response_b)."""
    from jinja2 import Environment

    script = (_TEMPLATES / "rate.js").read_text(encoding="utf-8")
    style = (_TEMPLATES / "rate.css").read_text(encoding="utf-8")
    env = Environment(autoescape=True, keep_trailing_newline=True)
    template = env.from_string((_TEMPLATES / "rate.html.j2").read_text(encoding="utf-8"))
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(script)}; "
        f"style-src {_csp_hash(style)}; "
        "img-src 'none'; connect-src 'none'; font-src 'none'; media-src 'none'; object-src 'none'; "
        "frame-src 'none'; worker-src 'none'; manifest-src 'none'; form-action 'none'; base-uri 'none'"
    )
    return template.render(
        title=title,
        bundle_id=bundle_id,
        n_pairs=len(pairs),
        csp=csp,
        data=json_for_script({"bundle": bundle_id, "title": title, "pairs": pairs}),
        script=Markup(script),  # our own code, hashed into the CSP above
        style=Markup(style),
    )
