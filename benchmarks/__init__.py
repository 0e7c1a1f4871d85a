"""Benchmarks: one module per benchmark, run with ``python -m benchmarks [NAME ...]``.

Each module defines ``run() -> dict`` returning ``{"title": str, "rows": [dict, ...],
"ratios": {name: float}, ...}``; the runner prints the rows as a rich table and writes the
whole dict, with machine facts and package versions, to ``benchmarks/results/NAME.json``.
Figures are compared as ratios against a baseline measured in the same process.
"""
