"""The evidence studies: each in one file of this package (its declaration, plan, reader, figures and the claims the
findings page quotes), with the engine that runs them and the code they share.

    engine      Study, Spec, the measurements a job may take, the grading scale
    evidence    runs a study's jobs through submitit (locally or on Slurm), resumable; tidies them into CSVs
    reading     reads results back: metrics.json, a study's runs.csv, one-line refusals of empty or foreign tables
    stats       intervals, paired t, Welch, Holm
    forest      the figure of paired comparisons every comparative study draws
    table       what a chapter displays: tables and the formats of their cells

    paper, energy, mechanism (with validation), few, gap, tcn, authors (with the ladder), coupling, unbundling

``STUDIES`` gathers every study file's own ``STUDIES``: a new study is a new file here (and a chapter that reads it).
"""

from __future__ import annotations

import importlib
import pkgutil

from .engine import Spec, Study, results_folder

SHARED = ("engine", "evidence", "forest", "reading", "stats", "table")  # the files that declare no study
ORDER = ("paper", "energy", "mechanism", "few", "gap", "authors", "coupling", "unbundling", "tcn")  # as they were run

STUDIES: dict[str, Study] = {}
_found = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in SHARED]
for _module in sorted(_found, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name)):
    STUDIES.update(importlib.import_module(f"{__name__}.{_module}").STUDIES)


def listed() -> dict[str, Study]:
    """The studies a reader runs (not the smoke checks of the machinery), in the order they were run."""
    return {name: study for name, study in STUDIES.items() if not study.smoke}


def markdown() -> str:
    """The studies as the README's table: the command that runs each, what it measures, where its results go."""
    rows = [f"| `make study-{name}` | {study.about} | `{results_folder(name).as_posix()}/` |"
            for name, study in listed().items()]
    return "\n".join(["| command | what it measures | results |", "|---|---|---|", *rows])


def plan(profile: str) -> list[Spec]:
    """All jobs of a declared study, in the order they run."""
    return STUDIES[profile].jobs()


__all__ = ["STUDIES", "Spec", "Study", "listed", "markdown", "plan", "results_folder"]
