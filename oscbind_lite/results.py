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


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond 30, the normal 1.96 is
# within 2 % of the true value).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def interval95(values) -> tuple[float, float, int]:
    """Mean, half-width of its 95 % t-interval (nan for one value), and n."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(v) / n
    if n < 2:
        return mean, float("nan"), n
    sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return mean, t * sd / n**0.5, n


def read_json(path: str | Path) -> dict:
    """A JSON file as a dict."""
    return json.loads(Path(path).read_text())
