"""The evidence: every (model or variant, split, seed) run of a profile as one submitit job.

    python -m oscbind_tools evidence --profile paper [--executor auto|local|slurm] [--workers 2]

* A job trains (or loads from the checkpoint cache) the same/different model of its variant, trains
  the RMTS head on its frozen bottleneck, measures the fidelity numbers where they apply, and writes
  ``RESULTS/runs/<id>.json`` atomically with a ``provenance.stamp`` (spec, config, package version,
  code fingerprint). A job whose saved stamp matches is not redone, so an interrupted profile
  resumes, and an edit of the code makes every job stale (the sweep's rule too); a failed job is
  reported with its log and does not stop the others.
* submitit runs the jobs: its local executor on one machine (``workers`` at a time, ``threads``
  torch threads each, so they do not fight over cores), its Slurm executor where a Slurm controller answers.
* ``tidy`` turns the run files into ``runs.csv`` (one row per run and task, with provenance) and
  ``fidelity.csv``; ``studies.Evidence`` reads them back for the book, with 95 % intervals over seeds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from oscbind_lite import __version__
from oscbind_lite.cache import writable_folder, write_csv, write_json
from oscbind_lite.config import RunConfig, smoke as smoke_config, with_overrides

from .provenance import git_commit, is_current, stamp

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
MECHANISM = {
    "oscillator": {},
    "no coupling": {"learn_j_in": False, "learn_j_out": False, "learn_omega": False},
    "J_OUT = 0": {"learn_j_out": False},
    "comparator": {"bottleneck": "comparator"},
    "CoRelNet": {"bottleneck": "corelnet"},
    "difference": {"bottleneck": "difference"},
    "concat": {"bottleneck": "concat"},
}
# Issue 13, generalising from few icons: the default model against each candidate remedy alone, on validation icons.
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
    "steps 1000": {"steps": 1000},  # a third of it: does a faster schedule (issue 13's time-to-97 % goal) cost accuracy?
}
# The three candidates that leaned towards helping RMTS in the gap study (seeds 0-4), together, against the default
# on fresh seeds 5-9 (other validation icons, other training draws): chosen after seeing those runs, so only new
# seeds can test it fairly.
COMBINED = {"default": {}, "dropout 0.1 + hard negatives 0.25 + rotation 30":
            {"dropout": 0.1, "hard_negatives": 0.25, "rotation": 30.0}}
# The trajectory readout (issue 13's last candidate, fixed before any run of it): the coherence averaged over the last
# 5 of the 25 states, or over the second half of the run, against the default's x(T) alone, on the gap study's seeds.
TRAJECTORY = {"default": {}, "readout of the last 5 states": {"readout_steps": 5},
              "readout of the last 13 states": {"readout_steps": 13}}
# The validation protocol: every model tries the same grid on validation icons carved out of the training
# icons of TUNE_M (holdout = "validation"); the final runs use each model's best setting.
GRID = {"lr 1e-3": {"lr": 1e-3}, "lr 3e-3": {"lr": 3e-3}}
TUNE_M, TUNE_SEEDS = 50, (0,)


def authors_protocol(m: int, glyphs: str) -> dict:
    """The protocol of the authors' released runs (``Elder453/osc-network``), as our settings.

    ESBN's icons in their own 32 x 32 frames, scaled by U(0.7, 1.0) and placed at random; icons 0..m-1
    train, the rest test; a fixed set of 2,000 pairs (4,000 at m = 95) in 50 epochs of batch 64, AdamW
    at 1e-3 with their warm-up and cosine; D = 16, gamma = 0.1, Omega fixed from a von Mises(0, 2),
    oscillators starting at their drives, Xavier init, their two-layer strided CNN, rho read by the MLP;
    the RMTS head on as many trials for as many epochs with plain Adam at 1e-3; 10,000 test pairs.
    """
    n = 4000 if m == 95 else 2000
    steps = 50 * -(-n // 64)  # 50 epochs of ceil(n / 64) batches
    return dict(glyphs=glyphs, crop=False, glyph_size=1.0, scale_min=0.7, scale_max=1.0, split="first",
                D=16, N=2, T=25, gamma=0.1, learn_omega=False, fixed_omega=True, start="drive", init="xavier",
                encoder="strided", readout="rho", hidden=64,
                pool=n, steps=steps, batch_size=64, lr=1e-3, weight_decay=1e-4, clip=1.0, schedule="authors",
                eval_every=steps, eval_size=10000,
                rmts_pool=n, rmts_steps=steps, rmts_batch_size=64, rmts_lr=1e-3, rmts_optimizer="adam",
                rmts_weight_decay=0.0, rmts_clip=0.0, rmts_schedule="constant", rmts_patience=0, rmts_eval_every=steps,
                rmts_eval_size=10000)


# Their five variants, on their protocol.
AUTHORS = {"default": {}, "no J_OUT": {"learn_j_out": False}, "no Omega": {"fixed_omega": False},
           "symmetric J, no Omega": {"fixed_omega": False, "symmetric": True}, "baseline": {"bottleneck": "projection"}}
_OURS = RunConfig()
# From their protocol to our defaults, one change at a time (each rung keeps the changes above it).
LADDER = (
    ("their protocol", {}),
    ("+ our augmentation", {"crop": True, "glyph_size": _OURS.data.glyph_size, "scale_max": _OURS.data.scale_max}),
    ("+ random split", {"split": "random"}),
    ("+ D = 32", {"D": _OURS.model.D}),
    ("+ gamma = 0.5", {"gamma": _OURS.model.gamma}),
    ("+ learned Omega", {"fixed_omega": False, "learn_omega": True}),
    ("+ shared random start", {"start": _OURS.model.start}),
    ("+ our initialisation", {"init": _OURS.model.init}),
    ("+ chord readout", {"readout": _OURS.model.readout}),
    ("+ our optimisation", {"pool": 0, "steps": _OURS.stage1.steps, "lr": _OURS.stage1.lr, "schedule": "cosine",
                            "eval_every": _OURS.stage1.eval_every, "rmts_pool": 0, "rmts_steps": _OURS.stage2.steps,
                            "rmts_lr": _OURS.stage2.lr, "rmts_optimizer": "adamw",
                            "rmts_weight_decay": _OURS.stage2.weight_decay, "rmts_clip": _OURS.stage2.clip,
                            "rmts_schedule": "cosine", "rmts_patience": _OURS.stage2.patience,
                            "rmts_eval_every": _OURS.stage2.eval_every}),
    ("+ our CNN", {"encoder": _OURS.model.encoder}),
    ("+ our icons (our defaults)", {"glyphs": None}),
)
# When does binding through coupling matter? J_OUT learned and J_OUT = 0 at every ladder rung that fits its training
# icons, paired by seed (both runs of a pair on one machine: the ladder's own runs came from another CPU model).
FIT = 0.8  # a rung fits when every ladder seed reaches this same/different training accuracy at FIT_M
FIT_M = 50
LADDER_RUNS = Path("results/ladder/runs.csv")  # the ladder profile's runs, read to find the rungs that fit
NO_J_OUT = {"learn_j_out": False}
J_OUT_WAYS = (("", {}), (" | J_OUT = 0", NO_J_OUT))  # each rung with J_OUT learned, then with J_OUT = 0
COUPLING_CHOICE = Path("results/coupling/choice.json")  # the change the factorial tests, chosen by CHANGE_RULE
FACTORIAL_SEEDS = tuple(range(5, 15))  # fresh seeds: not the ones whose runs chose the change
DOSE_WIDTHS = ((2, 4, 8), (4, 8, 16), (8, 16, 32))  # our CNN narrower than its default (16, 32, 64), at rung 11
CHANGE_RULE = ("among the steps between consecutive fitting rungs, the one across which J_OUT's effect at m = 50 (J_OUT "
               "learned minus J_OUT = 0, paired by seed, averaged over both tasks and the pairs whose two runs fit) "
               "falls most")
ESBN = os.environ.get("OSCBIND_ESBN", "../shared/esbn-glyphs")  # ESBN's imgs/ folder (a clone of taylorwwebb/emergent_symbols)
POWER_SEEDS = tuple(range(5, 20))  # m = 95 folds 5..19 for the oscillator and the strongest baseline
PROFILES = {
    # name: (splits, seeds, ablation split; None: the energy study; "validation"/"mechanism"/"gap": those studies;
    # "few": the main models alone)
    "paper": ((95, 50, 15), (0, 1, 2, 3, 4), 50),
    "smoke": ((95,), (0,), 95),
    "energy": ((95, 50, 15), (0, 1, 2, 3, 4), None),
    "energy-smoke": ((95,), (0,), None),
    "validation": ((TUNE_M,), TUNE_SEEDS, "validation"),
    "validation-smoke": ((TUNE_M,), (0,), "validation"),
    "mechanism": ((15, 50, 95), (0, 1, 2, 3, 4), "mechanism"),
    "mechanism-smoke": ((15, 95), (0,), "mechanism"),
    "authors": ((95, 50, 15), (0, 1, 2, 3, 4), "authors"),
    "ladder": ((50, 15), (0, 1, 2, 3, 4), "ladder"),
    "few": ((5, 2), (0, 1, 2, 3, 4), "few"),  # fewest training icons: RMTS training trials reuse icons at m = 2
    "gap": ((15,), (0, 1, 2, 3, 4), "gap"),  # issue 13's remedies, validation icons only: at m = 15 it fits on 10
    "gap-50": ((50,), (0, 1, 2, 3, 4), "gap"),  # the same at m = 50 (fits on 40, validates on 10)
    "gap-combined": ((15,), (5, 6, 7, 8, 9), "combined"),  # COMBINED on fresh seeds, validation icons only
    "gap-trajectory": ((15,), (0, 1, 2, 3, 4), "trajectory"),  # TRAJECTORY, validation icons only
    "coupling": ((50,), (0, 1, 2, 3, 4), "coupling"),  # J_OUT learned and 0 at every ladder rung that fits
    "coupling-factorial": ((50, 15), FACTORIAL_SEEDS, "factorial"),  # the chosen change on/off x J_OUT learned/0
    "coupling-dose": ((50,), (0, 1, 2, 3, 4), "dose"),  # J_OUT learned/0 at rung 11 with narrower CNNs
}
SMOKE_PROFILES = ("smoke", "energy-smoke", "validation-smoke", "mechanism-smoke")
CHOICE = Path("results/validation/choice.json")  # what the validation profile chose, read by the mechanism profile
FIDELITY_PAIRS = 256  # held-out pairs of each kind for the fidelity numbers
GAMMAS = (0.5, 0.25, 0.1, 0.05)  # Euler steps of the descent curve, each run over the same time span
SPAN = 50.0  # gamma * T of the descent curve and of "converged" dynamics: the symmetric models settle well before
RTOL = 1e-9  # relative change of E that counts as double-precision rounding, not an increase
EVIDENCE_CODE = ("evidence", "provenance")  # the tooling an evidence job runs (with all of oscbind_lite)


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


def plan(profile: str, choice: Path = CHOICE) -> list[Spec]:
    """All jobs of a profile: main models at every split, the symmetric variant at every split, ablations at one;
    for the energy profiles, the default and the two symmetric models at every split with the energy study;
    for validation, every MECHANISM model at every GRID setting on validation icons; for mechanism, every
    model at its chosen setting, m = 95 on disjoint folds, then more folds for the oscillator and the
    strongest baseline; for few, the main models at every split, as the paper profile runs them; for gap, the
    default and every REMEDIES candidate on validation icons (gap-combined: COMBINED; gap-trajectory: TRAJECTORY);
    for coupling, J_OUT learned and J_OUT = 0 at every ladder rung that fits (``fitting_rungs``); for coupling-factorial,
    the same at the two rungs of the chosen change (``chosen_change``) on fresh seeds; for coupling-dose, the same at
    the top rung with each of DOSE_WIDTHS.
    Jobs are ordered so that whole splits finish first."""
    splits, seeds, ablation_m = PROFILES[profile]
    if ablation_m in ("gap", "combined", "trajectory"):
        candidates = {"gap": REMEDIES, "combined": COMBINED, "trajectory": TRAJECTORY}[ablation_m]
        return [Spec(name, m, seed, {**over, "holdout": "validation"})
                for m in splits for seed in seeds for name, over in candidates.items()]
    if ablation_m == "few":
        return [Spec(name, m, seed, over, "dynamics" if name == "oscillator" else "")
                for m in splits for seed in seeds for name, over in MAIN.items()]
    if ablation_m is None:
        return [Spec(name, m, seed, over, "energy") for seed in seeds for m in splits for name, over in ENERGY.items()]
    if ablation_m == "validation":
        return [Spec(f"{name} | {label}", m, seed, {**over, **setting, "holdout": "validation"})
                for m in splits for seed in seeds for name, over in MECHANISM.items() for label, setting in GRID.items()]
    if ablation_m == "authors":
        return [Spec(name, m, seed, {**authors_protocol(m, esbn_folder()), **over}, "" if name == "baseline" else "released")
                for m in splits for seed in seeds for name, over in AUTHORS.items()]
    if ablation_m == "ladder":
        return [Spec(name, m, seed, over) for m in splits for seed in seeds for name, over in ladder_rungs(m)]
    if ablation_m == "coupling":
        fits = fitting_rungs()
        return [Spec(f"{name}{label}", m, seed, {**over, **change}) for m in splits for seed in seeds
                for k, (name, over) in enumerate(ladder_rungs(m)) if k in fits for label, change in J_OUT_WAYS]
    if ablation_m == "factorial":  # the models with J_OUT learned at the primary split also measure the dynamics
        off, on = chosen_change(COUPLING_CHOICE)
        return [Spec(f"{name}{label}", m, seed, {**over, **change}, "coupling" if not change and m == FIT_M else "")
                for m in splits for seed in seeds for k, (name, over) in enumerate(ladder_rungs(m)) if k in (off, on)
                for label, change in J_OUT_WAYS]
    if ablation_m == "dose":
        return [Spec(f"{name} | channels {'-'.join(map(str, width))}{label}", m, seed, {**over, "channels": width, **change})
                for m in splits for seed in seeds for name, over in ladder_rungs(m)[-1:] for width in DOSE_WIDTHS
                for label, change in J_OUT_WAYS]
    if ablation_m == "mechanism":
        settings, strongest = chosen(choice) if profile == "mechanism" else ({}, "difference")
        fold = lambda m: {"split": "folds"} if m == 95 else {}  # noqa: E731  m = 95: 20 disjoint 5-icon folds
        specs = [Spec(name, m, seed, {**over, **settings.get(name, {}), **fold(m)})
                 for m in splits for seed in seeds for name, over in MECHANISM.items()]
        power = POWER_SEEDS if profile == "mechanism" else (1,)
        return specs + [Spec(name, 95, seed, {**MECHANISM[name], **settings.get(name, {}), **fold(95)})
                        for seed in power for name in ("oscillator", strongest)]
    specs = []
    for seed in seeds:
        for m in splits:
            for name, over in MAIN.items():
                specs.append(Spec(name, m, seed, over, "dynamics" if name == "oscillator" else ""))
            for name, over in SYMMETRIC.items():
                specs.append(Spec(name, m, seed, over, "descent"))
        for name, over in ABLATIONS.items():
            specs.append(Spec(name, ablation_m, seed, over))
    return specs


def ladder_rungs(m: int) -> list[tuple[str, dict]]:
    """The ladder at split m: (rung name "kk change", its whole override set), each rung keeping the changes below."""
    over, rungs = authors_protocol(m, esbn_folder()), []
    for k, (name, change) in enumerate(LADDER):
        over = {**over, **change}
        rungs.append((f"{k:02d} {name}", dict(over)))
    return rungs


def fitting_rungs(runs: Path = LADDER_RUNS) -> list[int]:
    """The ladder rungs (indices into LADDER) at which every seed of the ladder profile reached FIT training accuracy
    on same/different at m = FIT_M: the rungs where a model's held-out accuracy measures generalisation, not a failure
    to train."""
    import csv

    try:
        with open(runs, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["task"] == "same-different" and int(r["m"]) == FIT_M]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"profile: coupling needs the ladder profile's runs in {runs} ({type(err).__name__}); "
                         "run `make ladder` first") from None
    fits = []
    for k, (name, _) in enumerate(LADDER):
        train = [float(r["train_accuracy"]) for r in rows if r["variant"] == f"{k:02d} {name}"]
        if train and min(train) >= FIT:
            fits.append(k)
    return fits


def j_out_effects(rows: list[dict], rung: str, m: int = FIT_M) -> dict[str, dict[int, float]]:
    """J_OUT's effect at one rung, per task and seed: held-out accuracy with J_OUT learned minus with J_OUT = 0, over
    the seeds whose two runs both fit (same/different training accuracy at least FIT)."""
    def runs(variant):
        return {(r["task"], int(r["seed"])): r for r in rows if r["variant"] == variant and int(r["m"]) == m}

    learned, removed = runs(rung), runs(f"{rung}{J_OUT_WAYS[1][0]}")
    fits = lambda by, seed: float(by[("same-different", seed)]["train_accuracy"]) >= FIT  # noqa: E731
    out = {}
    for (task, seed), row in learned.items():
        if (task, seed) in removed and ("same-different", seed) in removed and fits(learned, seed) and fits(removed, seed):
            out.setdefault(task, {})[seed] = float(row["test_accuracy"]) - float(removed[task, seed]["test_accuracy"])
    return out


def choose_change(rows: list[dict]) -> dict:
    """CHANGE_RULE on the coupling profile's rows: the step (lower rung, upper rung) across which J_OUT's effect falls
    most, with every rung's effect; rungs are indices into LADDER."""
    names = {int(r["variant"][:2]): r["variant"] for r in rows if " | " not in r["variant"]}
    effect = {}
    for k, name in sorted(names.items()):
        by_task = j_out_effects(rows, name)
        means = [sum(v.values()) / len(v) for v in by_task.values() if v]
        if len(means) == 2:
            effect[k] = sum(means) / 2
    rungs = sorted(effect)
    if len(rungs) < 2:
        raise ValueError("profile: the coupling profile measured J_OUT's effect at fewer than two rungs")
    off, on = max(zip(rungs, rungs[1:]), key=lambda step: effect[step[0]] - effect[step[1]])
    return {"off": off, "on": on, "off_rung": names[off], "on_rung": names[on], "effects": effect, "rule": CHANGE_RULE}


def chosen_change(choice: Path = COUPLING_CHOICE) -> tuple[int, int]:
    """(change off, change on) as rung indices, as the coupling profile recorded them."""
    try:
        saved = json.loads(Path(choice).read_text())
        return int(saved["off"]), int(saved["on"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"profile: coupling-factorial needs the coupling profile's choice in {choice} "
                         f"({type(err).__name__}); run `make coupling` first") from None


def esbn_folder() -> str:
    """ESBN's icon folder for the authors' protocol, checked: 100 images (OSCBIND_ESBN, else ../shared/esbn-glyphs)."""
    folder = Path(ESBN)
    if not folder.is_dir() or len([p for p in folder.iterdir() if p.suffix == ".png"]) != 100:
        raise ValueError(f"OSCBIND_ESBN: {folder} is not ESBN's folder of 100 icons; clone "
                         "https://github.com/taylorwwebb/emergent_symbols and set OSCBIND_ESBN to its imgs/ folder")
    return str(folder.resolve())


def chosen(choice: Path = CHOICE) -> tuple[dict[str, dict], str]:
    """(each model's chosen GRID setting, the strongest baseline) as the validation profile recorded them."""
    try:
        saved = json.loads(Path(choice).read_text())
        return {name: GRID[label] for name, label in saved["setting"].items()}, saved["strongest_baseline"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: mechanism needs the validation profile's choices in {choice} ({type(err).__name__}); "
                         "run `make validation` first") from None


RULE = ("per model, the grid setting with the best mean validation accuracy (same/different and RMTS averaged); "
        "the strongest baseline is the non-oscillator model whose chosen setting scores best")


def choose(rows: list[dict]) -> dict:
    """The validation rule: per model, the GRID setting with the best mean validation accuracy, same/different
    and RMTS averaged (ties: the first setting); the strongest baseline is the non-oscillator model whose
    chosen setting scores best. Reads only validation icons."""
    scores: dict[str, dict[str, list]] = {}
    for r in rows:
        name, label = r["variant"].split(" | ")
        scores.setdefault(name, {}).setdefault(label, []).append(r["test_accuracy"])
    best = {name: max(GRID, key=lambda lb: sum(by[lb]) / len(by[lb]) if by.get(lb) else -1)
            for name, by in scores.items()}
    value = {name: sum(scores[name][lb]) / len(scores[name][lb]) for name, lb in best.items()}
    baselines = [n for n in value if n not in ("oscillator", "no coupling", "J_OUT = 0")]
    return {"setting": best, "validation_accuracy": value, "rule": RULE,
            "strongest_baseline": max(baselines, key=value.get) if baselines else "difference",
            "grid": {k: v for k, v in GRID.items()}}


def run_job(spec: Spec, results: str, cache: str, threads: int, device: str, smoke: bool) -> str:
    """Train, transfer and measure one spec; write RESULTS/runs/<id>.json; return its path."""
    import torch

    from oscbind_lite import analysis
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import accuracy, environment, eval_sets, resolve_device, train_rmts, train_same_different

    torch.set_num_threads(threads)
    start = time.perf_counter()
    run = spec_config(spec, smoke)
    stage1 = train_same_different(run, device, Path(cache), progress=False)
    stage2 = train_rmts(run, device, Path(cache), progress=False)
    fidelity = {}
    if spec.fidelity == "energy":
        tasks = IconTasks.from_config(run.data, stage1.model.encoder.out.weight.device)
        fidelity = energy_study(stage1.model, tasks, spec.seed)
    elif spec.fidelity == "released":  # the poster's E and the released code's quantity, same trajectories
        tasks = IconTasks.from_config(run.data, stage1.model.encoder.out.weight.device)
        both = analysis.two_energies(stage1.model, tasks, "test", FIDELITY_PAIRS, spec.seed)
        fidelity = {"tables": {"two_energies": [{"quantity": "poster", **both.poster._asdict()},
                                                {"quantity": "released", **both.released._asdict()}]},
                    "curves": both.curves, "pairs": FIDELITY_PAIRS}
    elif spec.fidelity == "coupling":  # what J_OUT does to the dynamics, and to accuracy when lesioned at test time
        tasks = IconTasks.from_config(run.data, stage1.model.encoder.out.weight.device)
        tables = analysis.coupling_inside(stage1.model, tasks, "test", FIDELITY_PAIRS, spec.seed)
        test = eval_sets(run, "same-different", stage1.model.encoder.out.weight.device)["test"]
        tables["lesion"] = [{"task": "same-different", "learned": accuracy(stage1.model, test, spec.seed),
                             "without": accuracy(analysis.without_j_out(stage1.model), test, spec.seed)}]
        fidelity = {"tables": tables, "curves": {}, "pairs": FIDELITY_PAIRS}
    elif spec.fidelity:
        tasks = IconTasks.from_config(run.data, stage1.model.encoder.out.weight.device)
        dyn = analysis.pair_dynamics(stage1.model, tasks, "test", FIDELITY_PAIRS, spec.seed, dtype=torch.float64)
        both = torch.cat([dyn.same.energies, dyn.different.energies], 1)
        gap = analysis.energy_gap(dyn.same.energies[-1], dyn.different.energies[-1])
        fidelity = {"descent": analysis.descent(both)._asdict(), "gap": gap._asdict(),
                    "locked_same": analysis.locked_share(dyn.same.states[-1]),
                    "locked_different": analysis.locked_share(dyn.different.states[-1]), "pairs": FIDELITY_PAIRS}
    dev = resolve_device(device)  # where this job ran (a cached model may have been trained elsewhere)
    env = environment(dev)
    provenance = {"version": __version__, "git_commit": git_commit(), "device": str(dev),
                  "threads": threads, "smoke": smoke, "torch": env["torch"], "compile": env["compile"], "cpu": env["cpu"],
                  "gpu": env["gpu"] or ""}
    rows = []
    for task, r in (("same-different", stage1), ("rmts", stage2)):
        rows.append({"run": spec.id, "variant": spec.variant, "task": task, "m": spec.m, "seed": spec.seed,
                     "test_accuracy": r.metrics["test_accuracy"], "train_accuracy": r.metrics["train_accuracy"],
                     "steps": r.metrics["steps"], "wall_seconds": r.metrics["wall_seconds"], "cached": r.cached,
                     "holdout": run.data.holdout, "split": run.data.split, "n_test_icons": r.metrics["n_test_icons"],
                     "lr": run.stage1.lr,
                     "config_hash": r.metrics["key"][:16], **provenance})
    out = Path(results) / "runs" / f"{spec.id}.json"
    write_json(out, {"spec": asdict(spec), "rows": rows, "fidelity": fidelity, "config": run.to_dict(),
                     "job_seconds": round(time.perf_counter() - start, 1), "stamp": job_stamp(spec, smoke),
                     "environment": env, **provenance})
    return str(out)


def energy_study(model, tasks, seed: int, pairs: int = FIDELITY_PAIRS) -> dict:
    """The poster's energy and locking claims on one trained model, on held-out icons, in double precision.

    * descent: per Euler step gamma (the trained one, then GAMMAS over the time span SPAN), the share
      of non-increasing steps, strictly and within RTOL, and the share of monotone trajectories;
    * swap: the partner-swap same-minus-different energy per pair at the trained dynamics and at
      converged ones (gamma 0.05 over SPAN), with its terms, and the mean curves over t;
    * locking: locked share of same and different pairs with shared and with independent starts,
      and P(lock | angle between the two drives) for different pairs.
    """
    import torch

    from oscbind_lite import analysis

    cfg = model.cfg
    settings = [("trained", cfg.gamma, cfg.T)] + [("curve", g, round(SPAN / g)) for g in GAMMAS]
    descent = []
    for kind, gamma, T in settings:
        energies = analysis.pair_dynamics(analysis.with_dynamics(model, gamma=gamma, T=T), tasks, "test", pairs, seed,
                                          dtype=torch.float64).together().energies
        for rtol in (0.0, RTOL):
            descent.append({"dynamics": kind, "gamma": gamma, "T": T, **analysis.descent(energies, rtol)._asdict()})
    swap, curves = [], {}
    for kind, gamma, T in (("trained", cfg.gamma, cfg.T), ("converged", GAMMAS[-1], round(SPAN / GAMMAS[-1]))):
        s = analysis.partner_swap(analysis.with_dynamics(model, gamma=gamma, T=T), tasks, "test", pairs, seed)
        per_pair = s.difference[-1] / 2  # a group holds two same and two different pairs
        terms = s.terms[-1] / 2
        swap.append({"dynamics": kind, "gamma": gamma, "T": T, "groups": len(per_pair), "mean": per_pair.mean().item(),
                     "sd": per_pair.std().item(), "paired_d": (per_pair.mean() / per_pair.std()).item(),
                     "share_same_lower": (per_pair < 0).double().mean().item(), "drive": terms[0].mean().item(),
                     "within": terms[1].mean().item(), "between": terms[2].mean().item()})
        keep = torch.linspace(0, T, min(T + 1, 101)).round().long()
        curves[kind] = {"t": (keep.double() * gamma).tolist(), "same": (s.same[keep] / 2).mean(1).tolist(),
                        "different": (s.different[keep] / 2).mean(1).tolist(),
                        "difference_sd": (s.difference[keep] / 2).std(1).tolist()}
    locking, angles = [], []
    for start in ("shared", "independent"):
        dyn = analysis.pair_dynamics(analysis.with_dynamics(model, start=start), tasks, "test", pairs, seed)
        locking.append({"start": start, "locked_same": analysis.locked_share(dyn.same.states[-1]),
                        "locked_different": analysis.locked_share(dyn.different.states[-1])})
        if start == "shared":
            angles = [{"angle_low": lo, "angle_high": hi, "locked": p, "features": n}
                      for lo, hi, p, n in analysis.lock_by_drive_angle(dyn.different)]
    return {"tables": {"descent": descent, "swap": swap, "locking": locking, "lock_by_angle": angles},
            "curves": curves, "pairs": pairs}


def spec_config(spec: Spec, smoke: bool) -> RunConfig:
    """The RunConfig a spec trains."""
    base = smoke_config() if smoke else RunConfig()
    return with_overrides(base, **{**spec.overrides, "m": spec.m, "seed": spec.seed})


def job_stamp(spec: Spec, smoke: bool) -> dict:
    """What a job's result depends on (``provenance.stamp``): its spec, its config, the code."""
    return stamp(EVIDENCE_CODE, spec=asdict(spec), smoke=smoke, config=spec_config(spec, smoke).to_dict())


def done(spec: Spec, results: Path, smoke: bool) -> bool:
    """Whether a finished result file exists for this spec whose stamp matches today's (same rule as the sweep)."""
    path = results / "runs" / f"{spec.id}.json"
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    return isinstance(saved, dict) and is_current(saved.get("stamp"), job_stamp(spec, smoke))


PING_SECONDS = 5  # how long "auto" waits for `scontrol ping`


def slurm_answers() -> bool:
    """Whether a Slurm controller answers here (``scontrol ping`` within PING_SECONDS): sbatch alone is not a
    cluster (a stopped one, or a client with no controller, would take every job and run none)."""
    if not (shutil.which("sbatch") and shutil.which("scontrol")):
        return False
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=PING_SECONDS).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def make_executor(kind: str, folder: Path, workers: int, threads: int, timeout_min: int):
    """A submitit executor: "local", "slurm", or "auto" (Slurm where a controller answers, else local)."""
    import submitit

    if kind == "auto":
        kind = "slurm" if slurm_answers() else "local"
    if kind == "local":
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=timeout_min)
    elif kind == "slurm":
        if not (shutil.which("srun") and slurm_answers()):
            raise ValueError("executor: slurm needs Slurm's srun and sbatch on PATH and a controller that answers "
                             "`scontrol ping`; use --executor local here")
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        executor.update_parameters(timeout_min=timeout_min, cpus_per_task=threads, slurm_array_parallelism=workers,
                                   name="oscbind")
    else:
        raise ValueError(f"executor: must be auto, local or slurm, got {kind!r}")
    return kind, executor


def run_profile(profile: str, results: Path, cache: Path, executor: str = "auto", workers: int = 2,
                threads: int | None = None, device: str = "auto", timeout_min: int = 180) -> int:
    """Run every job of a profile not already done; returns an exit status (1 if any job failed)."""
    if profile not in PROFILES:
        print(f"error: profile: must be one of {', '.join(PROFILES)}, got {profile!r}", file=sys.stderr)
        return 2
    from oscbind_lite.train import resolve_device

    try:
        if workers < 1:
            raise ValueError(f"workers: must be an integer >= 1, got {workers}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads: must be an integer >= 1, got {threads}")
        resolve_device(device)
        if executor == "auto":
            executor = "slurm" if slurm_answers() else "local"
        # Local jobs share this machine's cores; a Slurm task gets the CPUs it asks for (1 unless told).
        threads = threads or (max(1, (os.cpu_count() or 1) // workers) if executor == "local" else 1)
        specs = plan(profile)
        claim(results, profile)
        kind, ex = make_executor(executor, results / "logs", workers, threads, timeout_min)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    smoke = profile in SMOKE_PROFILES
    todo = [s for s in specs if not done(s, results, smoke)]
    print(f"{profile}: {len(specs)} jobs, {len(specs) - len(todo)} already done, {len(todo)} to run "
          f"({workers} at a time, {threads} thread(s) each)", file=sys.stderr)
    start = time.perf_counter()
    failed, running = [], []
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill, timeout and Slurm stop us as Ctrl-C does
    try:
        if kind == "slurm":
            with ex.batch():
                running = [(s, ex.submit(run_job, s, str(results), str(cache), threads, device, smoke)) for s in todo]
            for spec, job in running:
                failed += _collect(spec, job)
        else:
            queue = list(todo)
            while queue or running:
                while queue and len(running) < workers:
                    spec = queue.pop(0)
                    running.append((spec, ex.submit(run_job, spec, str(results), str(cache), threads, device, smoke)))
                time.sleep(1)
                for item in [r for r in running if r[1].done()]:
                    running.remove(item)
                    failed += _collect(*item)
    except KeyboardInterrupt:  # stop the jobs this run started; finished ones are kept, the rest rerun next time
        for _, job in running:
            job.cancel(check=False)
        print("interrupted: running jobs cancelled; rerun the command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_json(results / "profile.json", {"profile": profile, "jobs": len(specs), "ran": len(todo), "failed": [s.id for s in failed],
                                          "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers,
                                          "threads": threads, "executor": kind, "version": __version__})
    finished = [s for s in specs if done(s, results, smoke)]
    if finished:
        tidy(results, finished)
        if PROFILES[profile][2] in ("validation", "coupling") and len(finished) == len(specs):
            rows = [r for s in finished for r in json.loads((results / "runs" / f"{s.id}.json").read_text())["rows"]]
            write_json(results / "choice.json", (choose if PROFILES[profile][2] == "validation" else choose_change)(rows))
    else:
        print(f"no finished runs: the tables in {results} were left as they were", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} job(s) failed: {', '.join(s.id for s in failed)}", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum, frame):
    """SIGTERM handler: stop the way Ctrl-C does, so that the local jobs this run started are cancelled, not orphaned."""
    raise KeyboardInterrupt


def default_results(profile: str) -> Path:
    """Where a profile's results go unless told: results/ for the paper profile (committed), runs/evidence-NAME else."""
    return Path("results") if profile == "paper" else Path("runs") / f"evidence-{profile}"


def claim(results: Path, profile: str) -> None:
    """Make results a writable folder of this profile; refuse one that holds another profile's results."""
    writable_folder(results, "results")
    marker = results / "profile.json"
    try:
        owner = json.loads(marker.read_text()).get("profile") if marker.exists() else None
    except (OSError, json.JSONDecodeError, AttributeError):
        owner = "an unknown"
    if owner is not None and owner != profile:
        raise ValueError(f"results: {results} holds the {owner} profile's results; give the {profile} profile its own "
                         f"folder (--results {default_results(profile)})")
    if owner is None:
        write_json(marker, {"profile": profile})


def _reason(err: Exception, log: Path) -> str:
    """The clearest line about why a job failed: the last "SomethingError: ..." of its log, else of the error,
    else the state Slurm ended it in (cancelled, timed out, out of memory: submitit found no result)."""
    lines = []
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        pass
    lines += str(err).splitlines()
    errors = [ln.strip() for ln in lines if re.match(r"^\s*[\w.]*(Error|Exception|Diverged|Interrupt)\b", ln)
              and not ln.startswith("Error stream produced")]  # submitit's heading above the log it quotes
    state = re.search(r"has not produced any output \(state: ([^)]+)\)", str(err))
    if not errors and state:
        return f"ended without a result (Slurm state: {state.group(1)})"
    return errors[-1] if errors else (lines[-1].strip() if lines else type(err).__name__)


def _collect(spec: Spec, job) -> list[Spec]:
    """Wait for a job; report it (with its error's own line); return [spec] if it failed."""
    try:
        job.result()
        print(f"done {spec.id}", file=sys.stderr)
        return []
    except Exception as err:  # submitit re-raises the job's error (or a timeout) here
        print(f"failed {spec.id}: {_reason(err, job.paths.stderr)} (log: {job.paths.stderr})", file=sys.stderr)
        return [spec]


RUN_COLUMNS = ("run", "variant", "task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds",
               "cached", "holdout", "split", "n_test_icons", "lr", "config_hash", "version", "git_commit", "device", "threads", "smoke", "torch", "compile", "cpu", "gpu")
FIDELITY_COLUMNS = ("run", "variant", "m", "seed", "share_non_increasing", "transitions", "largest_increase",
                    "energy_same", "energy_different", "energy_gap", "cohens_d", "locked_same", "locked_different", "pairs")


def tidy(results: Path, specs: list[Spec]) -> tuple[Path, Path]:
    """Collect the run files of the given (finished, current) specs into RESULTS/runs.csv and RESULTS/fidelity.csv."""
    runs, fidelity, tables, curves = [], [], {}, {}
    for path in sorted(results / "runs" / f"{s.id}.json" for s in specs):
        saved = json.loads(path.read_text())
        runs += saved["rows"]
        f = saved.get("fidelity")
        spec = saved["spec"]
        if f and "tables" in f:  # the energy study: one CSV per table, the curves in one JSON
            ids = {"run": path.stem, "variant": spec["variant"], "m": spec["m"], "seed": spec["seed"]}
            for name, rows in f["tables"].items():
                tables.setdefault(name, []).extend(ids | row for row in rows)
            if f["curves"]:
                curves[path.stem] = ids | {"curves": f["curves"]}
        elif f:
            spec = saved["spec"]
            fidelity.append({"run": path.stem, "variant": spec["variant"], "m": spec["m"], "seed": spec["seed"],
                             **{k: v for k, v in f["descent"].items()}, "energy_same": f["gap"]["mean_same"],
                             "energy_different": f["gap"]["mean_different"], "energy_gap": f["gap"]["difference"],
                             "cohens_d": f["gap"]["cohens_d"], "locked_same": f["locked_same"],
                             "locked_different": f["locked_different"], "pairs": f["pairs"]})
    runs.sort(key=lambda r: (r["variant"], r["task"], -r["m"], r["seed"]))
    write_csv(results / "runs.csv", RUN_COLUMNS, runs)
    write_csv(results / "fidelity.csv", FIDELITY_COLUMNS, fidelity)
    for name, rows in tables.items():
        write_csv(results / f"{name}.csv", list(dict.fromkeys(k for row in rows for k in row)), rows)
    if curves:
        write_json(results / "curves.json", curves)
    return results / "runs.csv", results / "fidelity.csv"
