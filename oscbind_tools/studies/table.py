"""What a chapter displays: ``Table``, a real HTML ``<table>`` with a caption on the book's pages and in JupyterLab
(plain text in a terminal), and the formats of its cells (``percent``, ``signed_points``, ...).
``markdown_table`` is for the command line.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import NamedTuple

from .stats import interval95

PM = " ±\u00a0"  # " ± ": a narrow table cell may break before the ±, never between the ± and its half-width


TASKS = (("same-different", "same/different"), ("rmts", "RMTS"))


class Link(NamedTuple):
    """A table cell that links to another page of the book (``href`` relative to the page), text in a terminal."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


def _html_cell(value) -> str:
    if isinstance(value, Link):
        return f'<a href="{html.escape(value.href, quote=True)}">{html.escape(value.text)}</a>'
    return html.escape(str(value))


@dataclass
class Table:
    """A table for a page: an HTML ``<table>`` with a caption (book and JupyterLab), text elsewhere."""

    header: list[str]
    rows: list[list]
    caption: str = ""

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{_html_cell(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{_html_cell(v)}</td>" for v in row) + "</tr>" for row in self.rows)
        caption = f"<caption>{_html_cell(self.caption)}</caption>" if self.caption else ""
        return f'<table class="oscbind-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __repr__(self) -> str:
        widths = [max(len(str(v)) for v in col) for col in zip(self.header, *self.rows)]
        line = lambda vals: "  ".join(str(v).ljust(w) for v, w in zip(vals, widths))  # noqa: E731
        return "\n".join(([self.caption] if self.caption else []) + [line(self.header)] + [line(r) for r in self.rows])


def seeds_in_words(seeds) -> str:
    """Seeds as a page writes them: "seed 0", "seeds 0 and 3", "seeds 0-4" (a run of three or more), "seeds 0, 2 and
    7"; never a Python list."""
    seeds = sorted(set(int(s) for s in seeds))
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if len(seeds) >= 3 and seeds[-1] - seeds[0] == len(seeds) - 1:
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return f"seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]}"


def percent(values) -> str:
    """Mean ± 95 % half-width of fractions, in percent ("97.5 ± 1.2"); one value alone; "n/a" for none."""
    mean, half, n = interval95(values)
    if n == 0:
        return "n/a"
    return f"{100 * mean:.1f}{PM}{100 * half:.1f}" if n > 1 else f"{100 * mean:.1f}"


def signed(values, digits: int = 3) -> str:
    """Mean ± 95 % half-width of plain numbers ("-0.166 ± 0.025"), one value alone, "n/a" for none."""
    mean, half, n = interval95(values)
    if n == 0:
        return "n/a"
    return f"{mean:+.{digits}f}{PM}{half:.{digits}f}" if n > 1 else f"{mean:+.{digits}f}"


def signed_points(differences) -> str:
    """Accuracy differences (fractions) as signed percentage points with their 95 % half-width ("+3.9 ± 1.5")."""
    return signed([100 * d for d in differences], 1)


def approx_difference(a: tuple[float, float], b: tuple[float, float]) -> str:
    """a - b of two independent (mean, 95 % half-width) cells, with the half-widths added in quadrature:
    an approximate 95 % interval for the difference of two unpaired means, in points."""
    return f"{a[0] - b[0]:+.1f}{PM}{math.hypot(a[1], b[1]):.1f}"


def comparison_table(comparisons: list[dict]) -> Table:
    """Oscillator minus each other model (``resolve``'d rows with "other", "task", "m"): one row per comparison."""
    rows = [[c["other"], c["task"], c["m"], len(c["differences"]), signed_points(c["differences"]), f"{c['p']:.3f}",
             f"{c['holm']:.3f}", c["said"]] for c in comparisons]
    family = max((c["family"] for c in comparisons), default=0)
    return Table(["oscillator minus", "task", "m", "seeds", "difference (points)", "p (paired t)",
                  f"Holm p (family of {family})", "after Holm"], rows,
                 caption="Paired differences in held-out accuracy, oscillator minus each model, mean"
                         f"{PM}95 % half-width over seeds; Holm's correction within each task's family")


COLUMNS = ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device")


def _cell(row: dict, col: str) -> str:
    v = row.get(col, "")
    if col.endswith("accuracy"):
        return f"{100 * v:.1f} %" if isinstance(v, (int, float)) else "n/a"
    return f"{v:.0f}" if col == "wall_seconds" and isinstance(v, (int, float)) else str(v)


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
    """A markdown table of the given columns; accuracies as percentages (the ``summary`` command's output)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
