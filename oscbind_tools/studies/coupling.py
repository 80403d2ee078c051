"""When does binding through coupling matter? (``make study-coupling``, then ``make study-coupling-factorial``; the
plan is in the chapter "When does coupling matter?")

J_OUT learned against J_OUT = 0 at every ladder rung whose seeds fit their training icons (``fitting_rungs``), m = 50,
seeds 0-4, both runs of a pair on one machine; the rule ``choose_change`` then names the step across which J_OUT's
effect falls most, and the factorial crosses that step with J_OUT on fresh seeds 5-14 at m = 50 and 15, the models
with J_OUT learned also measuring what J_OUT does inside the dynamics. ``Coupling`` reads both back; the coupling
claim of the findings page is here too. Why the effect falls is the unbundling (``unbundling``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..plotting import DIFFERENT_COLOUR, SAME_COLOUR, readable
from .authors import LADDER, ladder_rungs
from .engine import FIDELITY_PAIRS, SEEDS, Claim, Spec, Study, and_, grade, measures
from .reading import Evidence, _number
from .stats import holm, interval95, paired_p, resolve
from .table import TASKS, signed_points

# When does binding through coupling matter? J_OUT learned and J_OUT = 0 at every ladder rung that fits its training
# icons, paired by seed (both runs of a pair on one machine: the ladder's own runs came from another CPU model).
FIT = 0.8  # a rung fits when every ladder seed reaches this same/different training accuracy at FIT_M

FIT_M = 50

MIN_PAIRS = 4  # a configuration with fewer pairs whose two runs fit is shown, not tested

LADDER_RUNS = Path("results/ladder/runs.csv")  # the ladder profile's runs, read to find the rungs that fit

NO_J_OUT = {"learn_j_out": False}

J_OUT_WAYS = (("", {}), (" | J_OUT = 0", NO_J_OUT))  # each rung with J_OUT learned, then with J_OUT = 0

COUPLING_CHOICE = Path("results/coupling/choice.json")  # the change the factorial tests, chosen by CHANGE_RULE

FACTORIAL_SEEDS = tuple(range(5, 15))  # fresh seeds: not the ones whose runs chose the change

CHANGE_RULE = ("among the steps between consecutive fitting rungs, the one across which J_OUT's effect at m = 50 "
               "(J_OUT learned minus J_OUT = 0, paired by seed, averaged over both tasks and the pairs whose two runs "
               "fit) falls most")


def fitting_rungs(runs: Path = LADDER_RUNS) -> list[int]:
    """The ladder rungs (indices into LADDER) at which every seed of the ladder profile reached FIT training accuracy
    on same/different at m = FIT_M: the rungs where a model's held-out accuracy measures generalisation, not a failure
    to train."""

    try:
        with open(runs, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["task"] == "same-different" and int(r["m"]) == FIT_M]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"profile: coupling needs the ladder profile's runs in {runs} ({type(err).__name__}); "
                         "run `make study-ladder` first") from None
    fits = []
    for k, (name, _) in enumerate(LADDER):
        train = [float(r["train_accuracy"]) for r in rows if r["variant"] == f"{k:02d} {name}"]
        if train and min(train) >= FIT:
            fits.append(k)
    return fits

def j_out_effects(rows: list[dict], rung: str, m: int = FIT_M) -> dict[str, dict[int, float]]:
    """J_OUT's effect at one rung, per task and seed: held-out accuracy with J_OUT learned minus with J_OUT = 0, over
    the seeds whose two runs both fit (same/different training accuracy at least FIT) and were made on one CPU model
    (training is not bit-identical across processors, so a pair split across two would not differ in J_OUT alone)."""
    def runs(variant):
        return {(r["task"], int(r["seed"])): r for r in rows if r["variant"] == variant and int(r["m"]) == m}

    learned, removed = runs(rung), runs(f"{rung}{J_OUT_WAYS[1][0]}")
    fits = lambda by, seed: float(by[("same-different", seed)]["train_accuracy"]) >= FIT  # noqa: E731
    out = {}
    for (task, seed), row in learned.items():
        if ((task, seed) in removed and ("same-different", seed) in removed
                and fits(learned, seed) and fits(removed, seed) and row.get("cpu") == removed[task, seed].get("cpu")):
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
                         f"({type(err).__name__}); run `make study-coupling` first") from None


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


@measures("coupling")
def measure(model, run, spec) -> dict:
    """What J_OUT does to the dynamics (``analysis.coupling_inside``) and to same/different accuracy when it is set to 0
    at test time (the lesion), on held-out icons."""
    from oscbind_lite import analysis
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import accuracy, eval_sets

    tasks = IconTasks.from_config(run.data, model.encoder.out.weight.device)
    tables = analysis.coupling_inside(model, tasks, "test", FIDELITY_PAIRS, spec.seed)
    test = eval_sets(run, "same-different", model.encoder.out.weight.device)["test"]
    tables["lesion"] = [{"task": "same-different", "learned": accuracy(model, test, spec.seed),
                         "without": accuracy(analysis.without_j_out(model), test, spec.seed)}]
    return {"tables": tables, "curves": {}, "pairs": FIDELITY_PAIRS}


STUDIES = {
    "coupling": Study((50,), SEEDS, plan=coupling_plan, after=choose_change,
                      about="J_OUT learned and J_OUT = 0 at every ladder rung that fits, m = 50"),
    "coupling-factorial": Study((50, 15), FACTORIAL_SEEDS, plan=factorial_plan,
                                about="the step that takes J_OUT's effect away, crossed with J_OUT, on fresh seeds"),
}


@dataclass
@dataclass
class Coupling:
    """When does binding through coupling matter? J_OUT learned against J_OUT = 0 along the ladder (the coupling
    study), the factorial of the change that removes J_OUT's effect, and what J_OUT does to the dynamics (the
    factorial's coupling tables)."""

    ladder: list[dict]  # the coupling profile's rows
    choice: dict  # choose_change's record: the change the factorial tests
    factorial: list[dict]
    inside: dict[str, list[dict]]  # displacement, lock_by_angle, lesion: one row per run (and kind or bin)
    rungs_run: list[dict] = field(default_factory=list)  # the ladder profile's own runs (another machine)

    @classmethod
    def load(cls, results: str | Path) -> Coupling:
        """Read RESULTS/coupling (with choice.json), RESULTS/coupling-factorial where it exists, and the ladder's
        runs."""
        results = Path(results)
        rows = lambda folder: Evidence.load(folder).runs if (folder / "runs.csv").exists() else []  # noqa: E731
        factorial = results / "coupling-factorial"
        inside = {}
        for name in ("displacement", "lock_by_angle", "lesion"):
            if (factorial / f"{name}.csv").exists():
                with open(factorial / f"{name}.csv", newline="") as f:
                    inside[name] = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
        choice = results / "coupling" / "choice.json"
        return cls(rows(results / "coupling"), json.loads(choice.read_text()) if choice.exists() else {},
                   rows(factorial), inside, rows(results / "ladder"))

    def rerun_shift(self, m: int = 50) -> dict[str, dict]:
        """How far a rerun on another CPU model moves a run: per task, the per-run differences (points) between this
        study's J_OUT-learned runs and the ladder's runs of the same rung, split and seed, and the CPUs of each."""
        key = lambda r: (r["variant"], r["task"], r["m"], r["seed"])  # noqa: E731
        ladder = {key(r): r for r in self.rungs_run}
        out = {}
        for task, short in TASKS:
            pairs = [(r, ladder[key(r)]) for r in self.ladder if key(r) in ladder and r["task"] == task and r["m"] == m]
            out[short] = {"differences": [100 * (a["test_accuracy"] - b["test_accuracy"]) for a, b in pairs],
                          "here": sorted({a["cpu"] for a, _ in pairs}), "there": sorted({b["cpu"] for _, b in pairs})}
        return out

    def rungs(self, runs: list[dict] | None = None) -> list[str]:
        """The rungs measured (J_OUT learned), in ladder order."""
        return sorted({r["variant"] for r in (self.ladder if runs is None else runs) if " | " not in r["variant"]})

    def effects(self, runs: list[dict], rung: str, m: int) -> dict[str, dict[int, float]]:
        """J_OUT's effect at a rung: task -> seed -> accuracy with J_OUT learned minus with J_OUT = 0, over the seeds
        whose two runs fit (``ladder.j_out_effects``)."""
        return j_out_effects(runs, rung, m)

    def along_ladder(self, m: int = 50) -> list[dict]:
        """J_OUT's effect at every rung, paired by seed, Holm over the rungs within each task (the planned test)."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "rung": rung, "m": m,
                       "differences": list(self.effects(self.ladder, rung, m).get(task, {}).values())}
                      for rung in self.rungs()]
            out += resolve([row for row in family if len(row["differences"]) >= MIN_PAIRS],
                           "J_OUT helps", "J_OUT hurts")
        return out

    def interaction(self) -> list[dict]:
        """The factorial's planned test per task and split: J_OUT's effect with the change off minus with it on, per
        seed over the seeds whose four runs fit; Holm over the planned (task x split) family, whatever ran. A cell
        with fewer than MIN_PAIRS such seeds is shown, not tested: it stays in the family with p = 1, so an arm
        that did not run cannot make the others easier to resolve. Each row also carries both effects."""
        if not self.factorial or not self.choice:
            return []
        off, on = self.choice["off_rung"], self.choice["on_rung"]
        family = []
        for task, short in TASKS:
            for m in sorted(STUDIES["coupling-factorial"].splits, reverse=True):
                a, b = (self.effects(self.factorial, off, m).get(task, {}),
                        self.effects(self.factorial, on, m).get(task, {}))
                seeds = sorted(set(a) & set(b))
                family.append({"task": short, "m": m, "seeds": seeds, "off": [a[s] for s in seeds],
                               "on": [b[s] for s in seeds], "differences": [a[s] - b[s] for s in seeds]})
        return resolve(family, "the change removes J_OUT's effect", "the change adds to J_OUT's effect", MIN_PAIRS)

    def change_effect(self, task: str, m: int) -> list[float]:
        """The chosen change's own effect on the full model (J_OUT learned): on minus off, per seed of the factorial."""
        a = {r["seed"]: r["test_accuracy"] for r in self.factorial
             if r["variant"] == self.choice["on_rung"] and r["task"] == task and r["m"] == m}
        b = {r["seed"]: r["test_accuracy"] for r in self.factorial
             if r["variant"] == self.choice["off_rung"] and r["task"] == task and r["m"] == m}
        return [a[s] - b[s] for s in sorted(a) if s in b]


def factorial_figure(c) -> Figure:
    """The factorial (``protocols.Coupling``): J_OUT's effect with the chosen change off and on, one panel per split,
    one line per task; mean and 95 % interval over the seeds whose four runs fit. Lines that fall from left to right:
    the change takes J_OUT's effect away."""
    rows = c.interaction()
    splits = sorted({r["m"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 3.4), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], splits):
        for r, colour in zip([r for r in rows if r["m"] == m], (SAME_COLOUR, DIFFERENT_COLOUR)):
            stats = [interval95([100 * d for d in r[side]]) for side in ("off", "on")]
            ax.errorbar([0, 1], [s[0] for s in stats], yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-",
                        color=colour, capsize=3, label=f"{r['task']} ({len(r['seeds'])} seeds)")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks([0, 1], [c.choice["off_rung"].split(" ", 1)[1], c.choice["on_rung"].split(" ", 1)[1]], fontsize=8)
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(f"m = {m}", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("J_OUT learned minus J_OUT = 0 (points)", fontsize=8)
    fig.suptitle("J_OUT's effect without and with the change, paired by seed: mean and 95 % interval", fontsize=9)
    return readable(fig)


def inside_figure(inside: dict[str, list[dict]], backgrounds: list[tuple[str, str]]) -> Figure:
    """What J_OUT does to the dynamics (the coupling studies' ``displacement`` and ``lock_by_angle`` tables) in each of
    ``backgrounds`` ((variant, label) pairs): left, how far J_OUT moves each oscillator's final state (degrees, same and
    different pairs); right, P(a different pair's feature locks | the angle between its two drives) with the learned
    J_OUT and with J_OUT = 0 at test time."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    width = 0.76 / len(backgrounds)
    for k, ((background, label), colour) in enumerate(zip(backgrounds, (DIFFERENT_COLOUR, SAME_COLOUR, "0.45"))):
        rows = [r for r in inside["displacement"] if r["variant"] == background]
        for j, kind in enumerate(("same", "different")):
            mean, half, n = interval95([r["moved_by_j_out"] for r in rows if r["pairs"] == kind])
            axes[0].bar(j + (k - (len(backgrounds) - 1) / 2) * width, mean, width * 0.95, yerr=np.nan_to_num(half),
                        color=colour, alpha=0.75, capsize=3, label=f"{label} ({n} models)" if j == 0 else None)
        bins = [r for r in inside["lock_by_angle"] if r["variant"] == background]
        for way, style in (("learned", "-"), ("J_OUT = 0", ":")):
            edges = list(dict.fromkeys((r["angle_low"], r["angle_high"]) for r in bins))
            stats = [interval95([100 * r["locked"] for r in bins if r["coupling"] == way and r["locked"] is not None
                                 and (r["angle_low"], r["angle_high"]) == e]) for e in edges]
            axes[1].errorbar([(lo + hi) / 2 for lo, hi in edges], [s[0] for s in stats],
                             yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o" + style, color=colour, capsize=2, ms=3,
                             label=f"{label}, J_OUT {'learned' if way == 'learned' else '= 0'}")
    axes[0].set_xticks([0, 1], ["same pairs", "different pairs"])
    axes[0].set_ylabel("angle J_OUT moves x(T) (degrees)", fontsize=8)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("angle between the two objects' drives (degrees)", fontsize=8)
    axes[1].set_ylabel("features that lock (%)", fontsize=8)
    axes[1].set_ylim(-3, 103)
    axes[1].legend(fontsize=6.5)
    return readable(fig)


# ---- the claim the findings page quotes (``findings.Findings`` holds the studies it reads)

def binding(f, m: int = 50) -> Claim:
    """J_OUT's effect under our protocol (the mechanism study's planned comparisons with J_OUT = 0), with what the
    authors' protocol gives in two run sets (the authors study, the coupling study's rerun of its bottom rung) and
    where along the ladder it is resolved."""
    cells = [c for c in f.mech.comparisons() if c["other"] == "J_OUT = 0"]
    won = [c for c in cells if c["said"] == "oscillator higher"]
    lost = [c for c in cells if c["said"] == "oscillator lower"]
    task, short = TASKS[0]
    mine = f.mech.paired("oscillator", "J_OUT = 0", task, m)
    ours_bound = max(100 * (interval95(c["differences"])[0] + interval95(c["differences"])[1]) for c in cells
                     if c["m"] == m)
    resolved = sorted({mm for t, _ in TASKS for mm, d, adj in _their_j_out(f, t) if adj < 0.05}, reverse=True)
    theirs = f.authors.j_out_effect(task, m)
    number = (f"accuracy with J_OUT minus without, {short} at m = {m}: {signed_points(mine)} points under ours "
              f"({len(mine)} seeds); {signed_points(theirs)} under the authors' protocol")
    verdict = ("not resolved at any split under ours" if not won and not lost else
               f"resolved at {len(won)} of {len(cells)} cells under ours")
    verdict += f" (a benefit above {ours_bound:.1f} points at m = {m} excluded)"
    if resolved:
        verdict += f"; under the authors' protocol it helps at m = {and_([str(x) for x in resolved])}"
    if f.coupled is not None and f.coupled.choice:
        along = {(r["task"], r["rung"]): r for r in f.coupled.along_ladder(m)}
        bottom = along[(short, f.coupled.rungs()[0])]
        number += (f", {signed_points(bottom['differences'])} (p {bottom['p']:.2f}, not resolved) in a second set "
                   "of runs of it" if bottom["said"] == "not resolved" else "")
        verdict += (" in one of two sets of runs" if resolved and bottom["said"] == "not resolved" else "")
        helps = [r for r in along.values() if r["said"] == "J_OUT helps"]
        if helps:
            steps = and_([LADDER[int(r["rung"][:2])][0].removeprefix("+ ") for r in helps])
            verdict += (f"; on the ladder from their protocol to ours it is resolved ("
                        f"{and_(sorted({r['task'] for r in helps}))}) only at the rungs adding {steps}, before any "
                        "change to the oscillators")
    return Claim("Binds through the coupling J_OUT", grade(len(won), len(lost), len(cells)), verdict, number,
                 "coupling" if f.coupled is not None else "authors")


def _their_j_out(f, task: str) -> list[tuple[int, list[float], float]]:
    rows = [(m, f.authors.j_out_effect(task, m)) for m in f.authors.splits()]
    return [(m, d, adj) for (m, d), adj in zip(rows, holm([paired_p(d) for _, d in rows]))]
