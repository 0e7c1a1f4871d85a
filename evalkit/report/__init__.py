"""Self-contained HTML reports and leaderboards.

Public API:

* :func:`render_report`: one HTML file with the leaderboard, charts, provenance, a comparison
  view and every item behind every number.
* :func:`leaderboard_rows`, :func:`build_leaderboard`: the leaderboard as data.
* :data:`COLUMNS`: the leaderboard's columns.
"""

from evalkit.report.leaderboard import COLUMNS, Leaderboard, build_leaderboard, leaderboard_rows, to_markdown
from evalkit.report.render import render_report

__all__ = ["COLUMNS", "Leaderboard", "build_leaderboard", "leaderboard_rows", "render_report", "to_markdown"]
