"""Static charts as SVG text (matplotlib), inlined into the report.

Text stays text in the SVG (``svg.fonttype: none``), so charts are small, searchable and
printable; math text parsing is off because model names are untrusted and may contain ``$``.
Each chart's element ids get a unique prefix so several charts can live in one HTML page.

Charts are drawn at the size they are shown (about 450 px wide, one column of the page's chart
grid) with every text in one size, the page's (14 px = 10.5 pt), and the SVG keeps its natural
width: scaling a wide figure down to its box shrank its labels to about 7 px.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display needed, nothing opened
from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "evalkit-report",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 10.5,  # points: 14 px, the page's text size
    "legend.fontsize": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"
MMLU_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def _svg(fig: Figure, prefix: str, label: str) -> str:
    buffer = io.StringIO()
    with rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}-{m.group(1)}"', text)
    # natural width in CSS pixels (matplotlib writes points); CSS only ever shrinks it (max-width)
    text = re.sub(r'(<svg\b[^>]*?)\swidth="([\d.]+)pt"\sheight="[^"]*"',
                  lambda m: f'{m.group(1)} class="chart" width="{float(m.group(2)) * 4 / 3:.0f}"', text, count=1)
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


CHART_WIDTH = 4.6  # inches: about 440 px, one column of the report's chart grid


def _figure(n_rows: int, width: float = CHART_WIDTH) -> Figure:
    with rc_context(_RC):
        return Figure(figsize=(width, max(1.6, 0.32 * n_rows + 0.9)))


def _label(row: dict[str, Any], key: str, mixed: bool) -> str:
    return f"{row['model']} [{row[f'{key}_setup']}]" if mixed else row["model"]


def interval_chart(
    rows: Sequence[dict[str, Any]], key: str, *, title: str, xlabel: str, prefix: str, mixed: bool = False,
    second_key: str | None = None, second_label: str | None = None,
) -> str | None:
    """Horizontal bars (or points for ratings) with ±1 standard error or a confidence interval."""
    shown = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r[key])
    if not shown:
        return None
    with rc_context(_RC):
        fig = _figure(len(shown))
        ax = fig.add_subplot()
        ys = list(range(len(shown)))
        values = [r[key] for r in shown]
        if key == "bt_rating":
            lows = [r.get("bt_rating_ci_low") for r in shown]
            highs = [r.get("bt_rating_ci_high") for r in shown]
            err = [[v - lo if lo is not None else 0 for v, lo in zip(values, lows)],
                   [hi - v if hi is not None else 0 for v, hi in zip(values, highs)]]
            ax.errorbar(values, ys, xerr=err, fmt="o", color=BLUE, ecolor=BLUE, capsize=3, label="rating, 95% interval")
            ax.axvline(1000, color=GREY, lw=0.8, ls="--")
        else:
            err = [r.get(f"{key}_stderr") or 0 for r in shown]
            ax.barh(ys, values, xerr=err, color=BLUE, alpha=0.85, capsize=3, label=f"{xlabel} ± 1 s.e.")
            if second_key:
                pts = [(r[second_key], y) for r, y in zip(shown, ys) if r.get(second_key) is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "D", color=ORANGE, label=second_label)
        ax.set_yticks(ys, [_label(r, key, mixed) for r in shown])
        ax.set_xlabel(xlabel)
        ax.set_title(title + ("  (⚠ setups differ: compare within a letter only)" if mixed else ""), loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18 - 0.6 / max(1, len(shown))), frameon=False, ncols=1)
        return _svg(fig, prefix, title)


def mmlu_chart(rows: Sequence[dict[str, Any]], *, prefix: str, mixed: bool = False) -> str | None:
    keys = [("mmlu_acc", "all"), ("mmlu_stem", "STEM"), ("mmlu_humanities", "humanities"),
            ("mmlu_social_sciences", "social sciences"), ("mmlu_other", "other")]
    shown = [r for r in rows if r.get("mmlu_acc") is not None]
    if not shown:
        return None
    with rc_context(_RC):
        fig = _figure(len(shown) * 2.2)
        ax = fig.add_subplot()
        height = 0.8 / len(keys)
        for i, ((key, name), colour) in enumerate(zip(keys, MMLU_COLOURS)):
            ys = [y + (i - 2) * height for y in range(len(shown))]
            vals = [100 * r[key] if r.get(key) is not None else 0 for r in shown]
            err = [100 * (r.get(f"{key}_stderr") or 0) for r in shown]
            ax.barh(ys, vals, height=height, xerr=err, color=colour, label=name, capsize=1.5)
        ax.axvline(25, color=GREY, lw=0.8, ls="--", label="chance (25%)")
        ax.set_yticks(range(len(shown)), [_label(r, "mmlu_acc", mixed) for r in shown])
        ax.set_xlabel("accuracy, % (± 1 s.e.)")
        ax.set_xlim(0, 100)
        ax.set_title("MMLU by category" + ("  (⚠ setups differ)" if mixed else ""), loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12 - 0.5 / len(shown)), frameon=False, ncols=3)
        return _svg(fig, prefix, "MMLU accuracy by category")


def loss_chart(curves: Sequence[tuple[str, list[dict[str, Any]]]], *, prefix: str) -> str | None:
    """``curves``: (label, fine-tune samples) per run; train and validation loss against tokens seen."""
    curves = [(label, pts) for label, pts in curves if pts]
    if not curves:
        return None
    cols = 1  # one curve under another: side by side would be shrunk to the chart's box
    nrows = math.ceil(len(curves) / cols)
    with rc_context(_RC):
        fig = Figure(figsize=(CHART_WIDTH, 2.8 * nrows))
        for i, (label, points) in enumerate(curves):
            ax = fig.add_subplot(nrows, cols, i + 1)
            xkey = "tokens_seen" if all(p.get("tokens_seen") is not None for p in points) else "step"
            for key, colour, name in (("train_loss", BLUE, "train"), ("val_loss", ORANGE, "validation")):
                pts = [(p[xkey], p[key]) for p in points if p.get(key) is not None and p.get(xkey) is not None]
                if pts:
                    ax.plot([x for x, _ in pts], [y for _, y in pts], "-o", ms=2.5, color=colour, label=name)
            ax.set_xlabel("tokens seen" if xkey == "tokens_seen" else "step")
            ax.set_ylabel("loss")
            ax.set_title(label, loc="left")
            ax.legend(frameon=False)
        fig.tight_layout()
        return _svg(fig, prefix, "training and validation loss")
