"""The evidence engine's vocabulary, shared by every study file: a study's declaration (``Study``), one job of it
(``Spec``), the plan most studies use (``each_variant``), what a job may also measure (``MEASURES``, filled by the
study files), and the one scale every claim is graded on (``GRADES``, ``Claim``).

A study is declared in its own file of this package (``paper``, ``energy``, ``mechanism``, ...): a ``STUDIES`` dict
of name -> ``Study``, its plan, its reader, its figures and the claims the findings page quotes. The package gathers
every file's ``STUDIES``; ``evidence.run_profile`` plans a study's jobs from its declaration and runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .stats import interval95

SEEDS = (0, 1, 2, 3, 4)
FIDELITY_PAIRS = 256  # held-out pairs of each kind for the numbers a job measures beside its accuracy


@dataclass(frozen=True)
class Spec:
    """One job: a variant at one split and seed."""

    variant: str
    m: int
    seed: int
    overrides: dict = field(default_factory=dict)
    fidelity: str = ""  # "dynamics" (energy gap, locking), "descent", "energy" (energy_study), "released" or ""

    @property
    def id(self) -> str:
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.variant.lower()).strip("-")
        while "--" in slug:
            slug = slug.replace("--", "-")
        return f"{slug}-m{self.m}-seed{self.seed}"


def each_variant(study: Study) -> list[Spec]:
    """Every variant at every split and seed, whole splits first; the study's holdout and measurements applied."""
    holdout = {"holdout": study.holdout} if study.holdout != "test" else {}
    return [Spec(name, m, seed, {**over, **holdout}, study.fidelity.get(name, ""))
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()]


@dataclass(frozen=True)
class Study:
    """One study, declared once (see the module docstring)."""

    splits: tuple[int, ...]
    seeds: tuple[int, ...]
    variants: dict[str, dict] = field(default_factory=dict)  # name -> config overrides, in the order tables show them
    plan: Callable[[Study], list[Spec]] = each_variant  # its jobs
    reference: str = ""  # the variant every other one is compared with, paired by seed ("": none)
    baselines: tuple[str, ...] = ()  # the variants that are baselines, not the model or its ablations
    holdout: str = "test"  # "validation": scored on validation icons carved out of the training icons
    # variant -> what its jobs also measure (``evidence.run_job``)
    fidelity: dict[str, str] = field(default_factory=dict)
    smoke: bool = False  # seconds-long trainings (``oscbind_lite.config.smoke``): a check of the machinery
    after: Callable[[list[dict]], dict] | None = None  # once every job is done: the record written to choice.json
    references: dict[str, str] = field(default_factory=dict)  # a variant compared with another than ``reference``
    about: str = ""  # what it measures, in a line (the README's and the Reproducing chapter's tables)

    def jobs(self) -> list[Spec]:
        return self.plan(self)

    def compared_with(self, variant: str) -> str:
        """The variant a candidate is compared with, paired by seed."""
        return self.references.get(variant, self.reference)

    @property
    def candidates(self) -> list[str]:
        """The declared variants that are compared with another (not a reference themselves)."""
        refs = {self.reference, *self.references.values()}
        return [v for v in self.variants if v not in refs]


def results_folder(profile: str) -> Path:
    """Where a study's results go unless told: results/ for the paper study, results/NAME for every other."""
    return Path("results") if profile == "paper" else Path("results") / profile


# What a job measures besides its accuracy, by the name a Spec's ``fidelity`` gives: a function of the trained
# stage-1 model, the run's config and the spec, returning the job's "fidelity" record. The study files register theirs.
MEASURES: dict[str, Callable] = {}


def measures(*kinds: str) -> Callable[[Callable], Callable]:
    """Register a study's measurement under one or more fidelity names."""
    def register(fn: Callable) -> Callable:
        for kind in kinds:
            MEASURES[kind] = fn
        return fn
    return register


# One scale for every claim. A claim is tested in several cells under our protocol (splits, tasks, step sizes, models:
# its row says which); a cell is for the claim when it is resolved in the claimed direction, against it when resolved
# the other way, else neither. What the authors' protocol gives is said in the verdict, beside the grade.
# One scale for every claim. A claim is tested in several cells under our protocol (splits, tasks, step sizes, models:
# its row says which); a cell is for the claim when it is resolved in the claimed direction, against it when resolved
# the other way, else neither. What the authors' protocol gives is said in the verdict, beside the grade.
GRADES = {
    "holds": "resolved in the claimed direction in every cell we tested under our protocol",
    "holds in part": "resolved in the claimed direction in some cells, and against it in fewer",
    "not supported": "resolved in the claimed direction in no cell, or against it at least as often as for it",
}

SHORT_GRADES = {"holds": "for the claim in every cell", "holds in part": "for it in some, against it in fewer",
                "not supported": "for it in none, or against it as often as for it"}

def grade(cells_for: int, cells_against: int, cells: int) -> str:
    """The scale of ``GRADES`` on a claim's cells."""
    if cells and cells_for == cells:
        return "holds"
    if cells_for == 0 or cells_against >= cells_for:
        return "not supported"
    return "holds in part"

@dataclass
class Claim:
    """One claim of the poster, read against our evidence: its grade on the scale of ``GRADES``, the verdict in words
    (where it holds and where not, and what the authors' protocol gives), the numbers that carry it, the chapter."""

    claim: str
    grade: str
    verdict: str
    number: str
    chapter: str  # the chapter notebook with the evidence ("mechanism")


def mean(values) -> float:
    return sum(values) / len(values)


def clear_above(values, level: float = 0.0) -> bool:
    """Whether the 95 % interval of values lies above level."""
    m, half, n = interval95(values)
    return n > 1 and m - half > level


def clear_below(values, level: float = 0.0) -> bool:
    """Whether the 95 % interval of values lies below level."""
    m, half, n = interval95(values)
    return n > 1 and m + half < level


def and_(items: list[str]) -> str:
    """Words joined as a list is said: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
