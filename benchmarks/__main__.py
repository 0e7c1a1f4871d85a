"""python -m benchmarks [NAME ...]: run benchmarks, print tables, write JSON results."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import pkgutil
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PACKAGES = ("evalkit", "torch", "transformers", "tiktoken", "lm_eval", "ollama", "numpy", "scipy", "scikit-learn")


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def machine() -> dict:
    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        # others' work on a shared machine shows here: read the figures with it
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "versions": {p: v(p) for p in PACKAGES},
    }


def show(name: str, result: dict, console: Console) -> None:
    rows = result.get("rows") or []
    table = Table(title=result.get("title", name))
    columns = list(rows[0].keys()) if rows else []
    for col in columns:
        table.add_column(Text(col))
    for row in rows:
        table.add_row(*(Text(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])) for c in columns))
    console.print(table)
    for key, value in (result.get("ratios") or {}).items():
        console.print(Text(f"  {key}: {value:.3g}x" if isinstance(value, (int, float)) else f"  {key}: {value}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(available())}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    # options after the names go to the benchmarks whose run() takes them (run(argv))
    args, extra = parser.parse_known_args(argv)
    names = [n if n.startswith("bench_") else f"bench_{n}" for n in args.names] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}")
    # piped to a file, rich would wrap wide tables at 80 columns into unreadable ellipses
    console = Console() if sys.stdout.isatty() else Console(width=240)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        takes_options = "argv" in inspect.signature(module.run).parameters
        if extra and not takes_options:
            parser.error(f"{name} takes no options (got {' '.join(extra)})")
        result = module.run(extra) if takes_options else module.run()
        result["wall_seconds"] = time.perf_counter() - started
        result["machine"] = machine()
        result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        show(name, result, console)
        path = args.out / f"{name.removeprefix('bench_')}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        console.print(Text(f"wrote {path}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
