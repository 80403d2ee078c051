"""The forest of paired comparisons that every comparative study draws: per task, each comparison's per-seed
differences as dots and their mean with its 95 % interval as a bar, starred where Holm's correction resolves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..plotting import readable
from .stats import interval95
from .table import TASKS


def paired_differences(comparisons: list[dict], label, xlabel: str, title: str) -> Figure:
    """A forest of paired comparisons, one panel per task (``TASKS``): every seed a dot, the mean difference and its
    95 % interval a bar, a star and a colour (green above 0, red below) where Holm's correction resolves it.

    ``comparisons``: ``stats.resolve``'d rows with "task" (the short name), "differences" (fractions) and "said";
    ``label(row)`` names a row on the y axis."""
    tasks = [short for _, short in TASKS if any(c["task"] == short for c in comparisons)]
    rows_per_task = max(sum(c["task"] == short for c in comparisons) for short in tasks)
    height = max(2.4, 0.9 + 0.32 * rows_per_task)  # at least room for the title and the axis
    fig, axes = plt.subplots(1, len(tasks), figsize=(10, height), sharey=True, squeeze=False)
    for ax, short in zip(axes[0], tasks):
        rows = [c for c in comparisons if c["task"] == short]
        for y, c in enumerate(rows):
            diffs = [100 * d for d in c["differences"]]
            mean, half, n = interval95(diffs)
            resolved = c.get("holm", 0.0 if c["said"] != "not resolved" else 1.0) < 0.05
            colour = ("#1b7837" if mean > 0 else "#b2182b") if resolved else "0.3"
            ax.errorbar(mean, y, xerr=np.nan_to_num(half), fmt="o", color=colour, capsize=3)
            ax.plot(diffs, np.full(len(diffs), y + 0.22), ".", ms=4, alpha=0.6, color=colour)
            if resolved:
                ax.annotate("*", (mean, y), xytext=(0, 4), textcoords="offset points", ha="center", color=colour)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(range(len(rows)), [label(c) for c in rows], fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        n = max((len(c["differences"]) for c in rows), default=0)
        ax.set_title(f"{short} ({n} seeds)", fontsize=9)
        ax.grid(axis="x", lw=0.3)
    axes[0, 0].invert_yaxis()  # shared: the first row on top
    fig.suptitle(title + "; dots: seeds; bar: mean and 95 % interval; * resolved after Holm", fontsize=9)
    return readable(fig)
