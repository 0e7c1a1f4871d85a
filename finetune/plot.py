"""The loss plot: training and validation loss against epochs, with tokens seen on a second
axis (the book's ``plot_losses``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path


def _import_matplotlib() -> None:
    # Figure + the Agg canvas, not pyplot: files only (never a display), no global figure state,
    # so a figure may be drawn from any thread
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def prepare_plotting() -> threading.Thread:
    """Import matplotlib in a background thread (about a second on a small CPU), so the plot
    drawn after the final evaluation does not pay for it: the evaluation's matrix products run
    outside the GIL while the import runs."""
    thread = threading.Thread(target=_import_matplotlib, name="import-matplotlib", daemon=True)
    thread.start()
    return thread


def plot_losses(log: Sequence[dict], path: str | Path, *, title: str | None = None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    epochs = [e["epoch"] for e in log]
    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax1 = fig.add_subplot()
    ax1.plot(epochs, [e["train_loss"] for e in log], label="training loss")
    val = [(e["epoch"], e["val_loss"]) for e in log if e.get("val_loss") is not None]
    if val:
        ax1.plot([v[0] for v in val], [v[1] for v in val], linestyle="-.", label="validation loss")
    ax1.set_xlabel("epochs")
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper right")
    ax2 = ax1.twiny()  # same curve against tokens seen, drawn invisibly to align the top axis
    ax2.plot([e["tokens_seen"] for e in log], [e["train_loss"] for e in log], alpha=0)
    ax2.set_xlabel("tokens seen")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    return path
