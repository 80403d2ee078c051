"""Every study of the evidence engine, declared once: its variants (in the order its tables show them), splits, seeds,
holdout, measurements, the variant its comparisons are made against and, where a study chooses something for the
next, the rule it applies when it is complete.

``STUDIES[name]`` is the one record of a study: ``evidence.run_profile`` plans its jobs from it, the readers in
``studies`` and ``protocols`` take from it the order and membership of its models and its seeds, and its results live
in ``results_folder(name)``. Adding a study, or a model to one, is one entry here (and a chapter that reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .ladder import (AUTHORS, COUPLING_CHOICE, DOSE_WIDTHS, FACTORIAL_SEEDS, FIT_M, J_OUT_WAYS, NO_J_OUT, add_one,
                     authors_protocol, choose_add_one, choose_change, chosen_change, esbn_folder, fitting_rungs,
                     ladder_rungs, leave_one_out)

# Variants: name -> config overrides. "oscillator" is the poster's model with every default.
MAIN = {"oscillator": {}, "difference": {"bottleneck": "difference"}, "concat": {"bottleneck": "concat"}}
SYMMETRIC = {"symmetric J, Omega = 0": {"symmetric": True, "learn_omega": False}}
ABLATIONS = {
    "J_OUT = 0": {"learn_j_out": False},
    "Omega = 0": {"learn_omega": False},
    "independent start": {"start": "independent"},
    "T = 5": {"T": 5},
    "T = 10": {"T": 10},
    "T = 50": {"T": 50},
    "N = 4": {"N": 4},
    "readout rho": {"readout": "rho"},
}
# The poster's energy claims, measured over every split and seed (issue: "the science, measured properly").
ENERGY = {"oscillator": {}, **SYMMETRIC,
          "symmetric J, Omega = 0, gamma = 0.1": {"symmetric": True, "learn_omega": False, "gamma": 0.1}}
# Does binding through coupling matter? The poster's model against variants that keep the encoder and
# budget and take the coupling away step by step, and against relational baselines.
MECHANISM = {  # in the order the tables show them: the model, its coupling taken away step by step, the baselines
    "oscillator": {},
    "J_OUT = 0": {"learn_j_out": False},
    "no coupling": {"learn_j_in": False, "learn_j_out": False, "learn_omega": False},
    "comparator": {"bottleneck": "comparator"},
    "CoRelNet": {"bottleneck": "corelnet"},
    "difference": {"bottleneck": "difference"},
    "concat": {"bottleneck": "concat"},
}
# Generalising from few icons: the default model against each candidate remedy alone, on validation icons.
# Training-time remedies (augmentation that teaches invariance, feature dropout, hard negatives), some at two strengths
# where the right strength is unclear; test-time ones (more steps, a vote over starts) at one.
REMEDIES = {
    "default": {},
    "rotation 15": {"rotation": 15.0},
    "rotation 30": {"rotation": 30.0},
    "shear 0.2": {"shear": 0.2},
    "stroke 1": {"stroke": 1},
    "dropout 0.1": {"dropout": 0.1},
    "dropout 0.3": {"dropout": 0.3},
    "hard negatives 0.25": {"hard_negatives": 0.25},
    "hard negatives 0.5": {"hard_negatives": 0.5},
    "T_eval 50": {"T_eval": 50},
    "votes 5": {"votes": 5},
    "weight decay 1e-2": {"weight_decay": 1e-2},  # stage 1's AdamW decay, 100x the default
    "channels 8-16-32": {"channels": (8, 16, 32)},  # a CNN with about a quarter of the parameters
    "steps 6000": {"steps": 6000},  # twice the default training, the same schedule stretched
    "steps 1000": {"steps": 1000},  # a third of it: does a schedule fast enough for 97 % within 20 s cost accuracy?
}
# The three candidates that leaned towards helping RMTS in the gap study (seeds 0-4), together, against the default
# on fresh seeds 5-9 (other validation icons, other training draws): chosen after seeing those runs, so only new
# seeds can test it fairly.
COMBINED = {"default": {}, "dropout 0.1 + hard negatives 0.25 + rotation 30":
            {"dropout": 0.1, "hard_negatives": 0.25, "rotation": 30.0}}
# The trajectory readout (the gap study's last candidate, fixed before any run of it): the coherence averaged over the
# last 5 of the 25 states, or over the second half of the run, against the default's x(T) alone, on the gap study's
# seeds.
TRAJECTORY = {"default": {}, "readout of the last 5 states": {"readout_steps": 5},
              "readout of the last 13 states": {"readout_steps": 13}}
# What the encoder hands the oscillators, at m = 15 on validation icons (the gap study's design and rule): temporal
# context normalisation over the pair for the oscillator model and for the difference baseline (each against itself
# without it, since it may lift every model), and three encoder-side candidates against the oscillator model.
TCN = {"oscillator": {}, "oscillator + TCN": {"context_norm": True}, "difference": {"bottleneck": "difference"},
       "difference + TCN": {"bottleneck": "difference", "context_norm": True},
       "CNN 32-64-128": {"channels": (32, 64, 128)},  # twice as wide
       "first block 32": {"channels": (32, 32, 64)},  # a wider first block, where strokes become features
       "D = 64": {"D": 64}}  # twice the features handed to the oscillators
TCN_REFERENCES = {"difference + TCN": "difference"}  # every other candidate against the oscillator model
TCN_CHOICE = Path("results/tcn/choice.json")  # what the tcn study kept, read by the tcn-test study
# The validation protocol: every model tries the same grid on validation icons carved out of the training
# icons of TUNE_M (holdout = "validation"); the final runs use each model's best setting.
GRID = {"lr 1e-3": {"lr": 1e-3}, "lr 3e-3": {"lr": 3e-3}}
TUNE_M, TUNE_SEEDS = 50, (0,)


CHOICE = Path("results/validation/choice.json")  # what the validation profile chose, read by the mechanism profile


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


def chosen(choice: Path = CHOICE) -> tuple[dict[str, dict], str]:
    """(each model's chosen GRID setting, the strongest baseline) as the validation profile recorded them."""
    try:
        saved = json.loads(Path(choice).read_text())
        return {name: GRID[label] for name, label in saved["setting"].items()}, saved["strongest_baseline"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: mechanism needs the validation profile's choices in {choice} "
                         f"({type(err).__name__}); run `make validation` first") from None


RULE = ("per model, the grid setting with the best mean validation accuracy (same/different and RMTS averaged); "
        "the strongest baseline is the non-oscillator model whose chosen setting scores best")


def choose(rows: list[dict], baselines: tuple[str, ...]) -> dict:
    """The validation rule: per model, the GRID setting with the best mean validation accuracy, same/different
    and RMTS averaged (ties: the first setting); the strongest baseline is the one of ``baselines`` whose
    chosen setting scores best. Reads only validation icons."""
    scores: dict[str, dict[str, list]] = {}
    for r in rows:
        name, label = r["variant"].split(" | ")
        scores.setdefault(name, {}).setdefault(label, []).append(r["test_accuracy"])
    best = {name: max(GRID, key=lambda lb: sum(by[lb]) / len(by[lb]) if by.get(lb) else -1)
            for name, by in scores.items()}
    value = {name: sum(scores[name][lb]) / len(scores[name][lb]) for name, lb in best.items()}
    found = [n for n in baselines if n in value]
    return {"setting": best, "validation_accuracy": value, "rule": RULE,
            "strongest_baseline": max(found, key=value.get) if found else "difference",
            "grid": {k: v for k, v in GRID.items()}}


SEEDS = (0, 1, 2, 3, 4)
POWER_SEEDS = tuple(range(5, 20))  # m = 95 folds 5..19 for the oscillator and the strongest baseline
MECHANISM_BASELINES = ("comparator", "CoRelNet", "difference", "concat")  # not the oscillator or its ablations


def each_variant(study: Study) -> list[Spec]:
    """Every variant at every split and seed, whole splits first; the study's holdout and measurements applied."""
    holdout = {"holdout": study.holdout} if study.holdout != "test" else {}
    return [Spec(name, m, seed, {**over, **holdout}, study.fidelity.get(name, ""))
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()]


def paper_plan(study: Study) -> list[Spec]:
    """The main models and the symmetric variant at every split (with their fidelity numbers), the ablations at
    m = 50."""
    specs = []
    for seed in study.seeds:
        for m in study.splits:
            specs += [Spec(name, m, seed, over, study.fidelity.get(name, ""))
                      for name, over in {**MAIN, **SYMMETRIC}.items()]
        specs += [Spec(name, 50 if 50 in study.splits else study.splits[0], seed, over)
                  for name, over in ABLATIONS.items()]
    return specs


def energy_plan(study: Study) -> list[Spec]:
    """Every variant at every split and seed with the energy study, seed by seed."""
    return [Spec(name, m, seed, over, "energy")
            for seed in study.seeds for m in study.splits for name, over in study.variants.items()]


def validation_plan(study: Study) -> list[Spec]:
    """Every model at every GRID setting on validation icons."""
    return [Spec(f"{name} | {label}", m, seed, {**over, **setting, "holdout": "validation"})
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()
            for label, setting in GRID.items()]


def mechanism_plan(study: Study, choice: Path | None = None) -> list[Spec]:
    """Every model at its validation-chosen setting, m = 95 on disjoint 5-icon folds, then more folds for the oscillator
    and the strongest baseline (a smoke study: no choice, one more fold)."""
    settings, strongest = chosen(choice or CHOICE) if not study.smoke else ({}, "difference")
    missing = [name for name in study.variants if name not in settings and not study.smoke]
    if missing:  # a model the validation study never tuned would train at a default no rule chose
        raise ValueError(f"profile: mechanism: the validation choice in {choice or CHOICE} has no setting for "
                         f"{', '.join(missing)}; run `make validation` again (it tunes every model of the study)")
    fold = lambda m: {"split": "folds"} if m == 95 else {}  # noqa: E731  m = 95: 20 disjoint 5-icon folds
    specs = [Spec(name, m, seed, {**over, **settings.get(name, {}), **fold(m)})
             for m in study.splits for seed in study.seeds for name, over in study.variants.items()]
    power = POWER_SEEDS if not study.smoke else (1,)
    return specs + [Spec(name, 95, seed, {**study.variants[name], **settings.get(name, {}), **fold(95)})
                    for seed in power for name in (study.reference, strongest)]


def authors_plan(study: Study) -> list[Spec]:
    """Their variants on their protocol; the oscillator variants measure both energies."""
    return [Spec(name, m, seed, {**authors_protocol(m, esbn_folder()), **over}, study.fidelity.get(name, ""))
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()]


def ladder_plan(study: Study) -> list[Spec]:
    """Every rung of LADDER at every split and seed."""
    return [Spec(name, m, seed, over) for m in study.splits for seed in study.seeds for name, over in ladder_rungs(m)]


def coupling_plan(study: Study) -> list[Spec]:
    """J_OUT learned and J_OUT = 0 at every ladder rung that fits (``fitting_rungs``)."""
    fits = fitting_rungs()
    return [Spec(f"{name}{label}", m, seed, {**over, **change}) for m in study.splits for seed in study.seeds
            for k, (name, over) in enumerate(ladder_rungs(m)) if k in fits for label, change in J_OUT_WAYS]


def factorial_plan(study: Study) -> list[Spec]:
    """J_OUT learned and J_OUT = 0 at the two rungs of the chosen change (``chosen_change``); the models with J_OUT
    learned at the primary split also measure what J_OUT does to the dynamics."""
    off, on = chosen_change(COUPLING_CHOICE)
    return [Spec(f"{name}{label}", m, seed, {**over, **change}, "coupling" if not change and m == FIT_M else "")
            for m in study.splits for seed in study.seeds for k, (name, over) in enumerate(ladder_rungs(m))
            if k in (off, on) for label, change in J_OUT_WAYS]


def dose_plan(study: Study) -> list[Spec]:
    """J_OUT learned and J_OUT = 0 at the top rung with each of DOSE_WIDTHS."""
    return [Spec(f"{name} | channels {'-'.join(map(str, width))}{label}", m, seed,
                 {**over, "channels": width, **change})
            for m in study.splits for seed in study.seeds for name, over in ladder_rungs(m)[-1:]
            for width in DOSE_WIDTHS for label, change in J_OUT_WAYS]


def _j_out_crossed(study: Study, configs: Callable[[int], list[tuple[str, dict]]]) -> list[Spec]:
    """J_OUT learned and J_OUT = 0 at each configuration, seed by seed (a study stopped early stays balanced); the
    models with J_OUT learned also measure what J_OUT does to the dynamics."""
    return [Spec(f"{name}{label}", m, seed, {**over, **change}, "" if change else "coupling")
            for seed in study.seeds for m in study.splits for name, over in configs(m) for label, change in J_OUT_WAYS]


def unbundle_plan(study: Study) -> list[Spec]:
    """Leave-one-out on the chosen step (``ladder.leave_one_out``): its upper rung, and that rung with each change
    reverted, J_OUT learned and 0."""
    return _j_out_crossed(study, leave_one_out)


def add_one_plan(study: Study) -> list[Spec]:
    """Add-one on the chosen step (``ladder.add_one``): its lower rung, and that rung plus the change the unbundling
    named, J_OUT learned and 0."""
    return _j_out_crossed(study, add_one)


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


KEEP_RULE = ("a candidate is kept when Holm's correction (within each task, over every candidate at every split) "
             "resolves it higher than the variant it is compared with on at least one task and lower on none")


def kept(rows: list[dict], study: Study) -> dict:
    """KEEP_RULE on a study's rows (``runs.csv`` or run files): the candidates kept, with the rule."""
    from .stats import resolve

    by = {}
    for r in rows:
        by[(r["variant"], r["task"], int(r["m"]), int(r["seed"]))] = float(r["test_accuracy"])
    splits = sorted({m for _, _, m, _ in by})
    verdicts = []
    for task in ("same-different", "rmts"):
        family = []
        for c in study.candidates:
            ref = study.compared_with(c)
            for m in splits:
                seeds = sorted(s for v, t, mm, s in by if (v, t, mm) == (c, task, m) and (ref, task, m, s) in by)
                family.append({"candidate": c,
                               "differences": [by[(c, task, m, s)] - by[(ref, task, m, s)] for s in seeds]})
        verdicts += resolve([f for f in family if len(f["differences"]) >= 2], "higher", "lower")
    keep = [c for c in study.candidates if any(v["candidate"] == c and v["said"] == "higher" for v in verdicts)
            and not any(v["candidate"] == c and v["said"] == "lower" for v in verdicts)]
    return {"kept": keep, "rule": KEEP_RULE}


def tcn_test_plan(study: Study) -> list[Spec]:
    """The oscillator model and the difference baseline, each with what the tcn study kept, at every split of the
    study on the test icons (m = 95 on disjoint 5-icon folds, as the mechanism study runs it); with TCN kept, also
    J_OUT = 0 with it at m = 50 and 15. Nothing kept: no job."""
    try:
        keep = json.loads(TCN_CHOICE.read_text())["kept"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: tcn-test needs the tcn study's choice in {TCN_CHOICE} ({type(err).__name__}); run "
                         "`make tcn` first") from None
    settings = {k: v for name in keep for k, v in TCN[name].items() if k != "bottleneck"}
    if not settings:
        return []
    fold = lambda m: {"split": "folds"} if m == 95 else {}  # noqa: E731
    label = " + " + ", ".join(dict.fromkeys(name.split(" + ", 1)[-1] for name in keep))  # "oscillator + TCN" -> TCN
    models = (("oscillator", {}), ("difference", {"bottleneck": "difference"}))
    specs = [Spec(f"{name}{label}", m, seed, {**over, **settings, **fold(m)})
             for m in study.splits for seed in study.seeds for name, over in models]
    if settings.get("context_norm"):
        specs += [Spec(f"J_OUT = 0{label}", m, seed, {**NO_J_OUT, **settings})
                  for m in (50, 15) for seed in study.seeds]
    return specs


_DYNAMICS = {"oscillator": "dynamics"}
STUDIES: dict[str, Study] = {
    "paper": Study((95, 50, 15), SEEDS, {**MAIN, **SYMMETRIC, **ABLATIONS}, paper_plan, "oscillator",
                   ("difference", "concat"), fidelity={**_DYNAMICS, "symmetric J, Omega = 0": "descent"}),
    "smoke": Study((95,), (0,), {**MAIN, **SYMMETRIC, **ABLATIONS}, paper_plan, "oscillator", ("difference", "concat"),
                   fidelity={**_DYNAMICS, "symmetric J, Omega = 0": "descent"}, smoke=True),
    "energy": Study((95, 50, 15), SEEDS, ENERGY, energy_plan),
    "energy-smoke": Study((95,), (0,), ENERGY, energy_plan, smoke=True),
    "validation": Study((TUNE_M,), TUNE_SEEDS, MECHANISM, validation_plan, "oscillator", MECHANISM_BASELINES,
                        holdout="validation", after=lambda rows: choose(rows, MECHANISM_BASELINES)),
    "validation-smoke": Study((TUNE_M,), (0,), MECHANISM, validation_plan, "oscillator", MECHANISM_BASELINES,
                              holdout="validation", smoke=True, after=lambda rows: choose(rows, MECHANISM_BASELINES)),
    "mechanism": Study((15, 50, 95), SEEDS, MECHANISM, mechanism_plan, "oscillator", MECHANISM_BASELINES),
    "mechanism-smoke": Study((15, 95), (0,), MECHANISM, mechanism_plan, "oscillator", MECHANISM_BASELINES, smoke=True),
    "authors": Study((95, 50, 15), SEEDS, AUTHORS, authors_plan, "default", ("baseline",),
                     fidelity={name: "released" for name in AUTHORS if name != "baseline"}),
    "ladder": Study((50, 15), SEEDS, plan=ladder_plan),
    "few": Study((5, 2), SEEDS, MAIN, reference="oscillator", baselines=("difference", "concat"), fidelity=_DYNAMICS),
    # m = 15 fits on 10, validates on 5
    "gap": Study((15,), SEEDS, REMEDIES, reference="default", holdout="validation"),
    "gap-50": Study((50,), SEEDS, REMEDIES, reference="default", holdout="validation"),
    "gap-combined": Study((15,), (5, 6, 7, 8, 9), COMBINED, reference="default", holdout="validation"),
    "gap-trajectory": Study((15,), SEEDS, TRAJECTORY, reference="default", holdout="validation"),
    "coupling": Study((50,), SEEDS, plan=coupling_plan, after=choose_change),
    "coupling-factorial": Study((50, 15), FACTORIAL_SEEDS, plan=factorial_plan),
    "coupling-dose": Study((50,), SEEDS, plan=dose_plan),
    "coupling-unbundle": Study((FIT_M,), FACTORIAL_SEEDS, plan=unbundle_plan, after=choose_add_one),
    "coupling-add-one": Study((FIT_M,), FACTORIAL_SEEDS, plan=add_one_plan),
    "tcn": Study((15,), SEEDS, TCN, reference="oscillator", holdout="validation", references=TCN_REFERENCES,
                 after=lambda rows: kept(rows, STUDIES["tcn"])),
    "tcn-test": Study((95, 50, 15, 5, 2), SEEDS, plan=tcn_test_plan),
}


def plan(profile: str) -> list[Spec]:
    """All jobs of a declared study (``STUDIES``), in the order they run."""
    return STUDIES[profile].jobs()


def results_folder(profile: str) -> Path:
    """Where a study's results go unless told: results/ for the paper study, results/NAME for every other."""
    return Path("results") if profile == "paper" else Path("results") / profile
