"""Reading back what runs wrote: every ``metrics.json`` under a folder, as rows and a markdown table."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device")


def collect(root: str | Path) -> list[dict]:
    """All metrics.json files below root, sorted by task, then m (descending), then seed."""
    rows = [json.loads(p.read_text()) | {"path": str(p.parent)} for p in Path(root).rglob("metrics.json")]
    return sorted(rows, key=lambda r: (r["task"], -r["m"], r["seed"]))


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
    """A markdown table of the given columns; accuracies as percentages."""
    def cell(row, col):
        v = row.get(col, "")
        if col.endswith("accuracy"):
            return f"{100 * v:.1f} %"
        return f"{v:.0f}" if col == "wall_seconds" else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def mean_by(rows: list[dict], keys: tuple[str, ...], value: str) -> dict[tuple, dict]:
    """Group rows by keys; for each group the mean of ``value``, the count n and the values themselves."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r[value])
    return {k: {"mean": sum(v) / len(v), "n": len(v), "values": v} for k, v in groups.items()}
