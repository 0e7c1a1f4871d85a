"""Self-contained HTML reports and leaderboards.

Public API:

* :func:`render_report`: one HTML file with the leaderboard, charts, provenance, a comparison
  view and every item behind every number.
* :func:`leaderboard_rows`, :func:`build_leaderboard`: the leaderboard as data.
* :data:`COLUMNS`: the leaderboard's columns.
"""

from typing import Any

from evalkit.report.leaderboard import COLUMNS, Leaderboard, build_leaderboard, leaderboard_rows, to_markdown


def __getattr__(name: str) -> Any:
    # the HTML side (Jinja2, matplotlib) loads only when a report is rendered, not for `leaderboard`
    if name == "render_report":
        from evalkit.report.render import render_report

        return render_report
    raise AttributeError(f"module 'evalkit.report' has no attribute {name!r}")

__all__ = ["COLUMNS", "Leaderboard", "build_leaderboard", "leaderboard_rows", "render_report", "to_markdown"]
