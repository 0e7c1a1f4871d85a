"""The loss plot: training and validation loss against epochs, with tokens seen on a second
axis (the book's ``plot_losses``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plot_losses(log: Sequence[dict], path: str | Path, *, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [e["epoch"] for e in log]
    fig, ax1 = plt.subplots(figsize=(6, 3.5))
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
    plt.close(fig)
    tmp.replace(path)
    return path
