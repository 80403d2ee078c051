"""Why J_OUT stops mattering: the coupling study's step 5 (``make study-coupling-unbundle``, then
``make study-coupling-add-one``; the plan is in the chapter "When does coupling matter?").

The step across which J_OUT's effect falls (rung 03 to rung 08) bundles five changes, because the rungs between do not
fit on their own. Leave-one-out reverts each in turn from the upper rung; add-one adds the change the rule named
(``UNBUNDLE_RULE``) to the lower rung. Both rungs are rerun on the unbundling's machine, so every comparison is made
within one CPU model; ``Unbundling.reference_shift`` says how far those reruns moved from the factorial's runs of the
same settings and seeds on another processor.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .authors import LADDER, ladder_rungs
from .coupling import (COUPLING_CHOICE, FACTORIAL_SEEDS, FIT, FIT_M, J_OUT_WAYS, LADDER_RUNS, MIN_PAIRS, chosen_change,
                       fitting_rungs, j_out_effects)
from .engine import Spec, Study
from .reading import Evidence, _number
from .stats import resolve
from .table import TASKS

# Why does J_OUT's effect fall across the chosen step? When the step spans several rungs (03 -> 08 bundles gamma = 0.5,
# learned Omega, the shared start, our initialisation and the chord readout, because the rungs between do not fit on
# their own), the unbundling takes it apart on the factorial's seeds at FIT_M, both members of every pair on one CPU:
# leave-one-out (the upper rung with one change reverted to its value at the lower rung, the upper rung itself rerun
# beside them), then add-one (the lower rung plus the change UNBUNDLE_RULE names, and the lower rung itself rerun).
UNBUNDLE_CHOICE = Path("results/coupling-unbundle/choice.json")  # the change the add-one study adds, by UNBUNDLE_RULE

UNBUNDLE_RULE = ("within each task, Holm's correction over the leave-one-out configurations tests J_OUT's effect "
                 "(J_OUT learned minus J_OUT = 0, paired by seed, over the pairs whose two runs fit; fewer than 4 such "
                 "pairs: not tested, p = 1); a change brings J_OUT's effect back when reverting it leaves an effect "
                 "resolved above zero on at least one task and below zero on neither; the change named is, of those, "
                 "the one whose configuration's effect is largest (averaged over both tasks); if none brings it back, "
                 "the add-one adds the chord readout alone")


def bundle(choice: Path = COUPLING_CHOICE) -> list[int]:
    """The changes (indices into LADDER) that the chosen step adds: every rung above its lower rung up to its upper."""
    off, on = chosen_change(choice)
    return list(range(off + 1, on + 1))

def change_name(k: int) -> str:
    """A ladder change by what it is: "+ gamma = 0.5" -> "gamma = 0.5"."""
    return LADDER[k][0].removeprefix("+ ")

def leave_one_out(m: int, choice: Path = COUPLING_CHOICE, runs: Path = LADDER_RUNS) -> list[tuple[str, dict]]:
    """The chosen step's upper rung, then that rung with each change of the step reverted to its value at the lower
    rung ("08 + chord readout, without gamma = 0.5"), leaving out a configuration that is itself a ladder rung whose
    seeds did not all fit (``fitting_rungs``): its pairs could not measure J_OUT's effect."""
    off, on = chosen_change(choice)
    rungs, fits = ladder_rungs(m), fitting_rungs(runs)
    configs = [rungs[on]]
    for k in bundle(choice):
        over = {**rungs[on][1], **{key: rungs[off][1][key] for key in LADDER[k][1]}}
        if not any(over == rung for j, (_, rung) in enumerate(rungs) if j not in fits):
            configs.append((f"{rungs[on][0]}, without {change_name(k)}", over))
    return configs

def j_out_tests(rows: list[dict], configs: list[str], m: int = FIT_M) -> list[dict]:
    """J_OUT's effect at each configuration per task (``j_out_effects``), paired t over the pairs that fit, Holm over
    the configurations within each task; fewer than 4 pairs: not tested, p = 1 in the family."""
    out = []
    for task in ("same-different", "rmts"):
        family = [{"config": c, "task": task, "differences": list(j_out_effects(rows, c, m).get(task, {}).values())}
                  for c in configs]
        out += resolve(family, "J_OUT helps", "J_OUT hurts", MIN_PAIRS)
    return out

def choose_add_one(rows: list[dict], choice: Path = COUPLING_CHOICE) -> dict:
    """UNBUNDLE_RULE on the coupling-unbundle profile's rows: the change the add-one study adds to the lower rung
    (an index into LADDER), with every leave-one-out test."""
    m = min(int(r["m"]) for r in rows)
    (upper, _), *loo = leave_one_out(m, choice)
    names = {f"{upper}, without {change_name(k)}": k for k in bundle(choice)}
    tests = j_out_tests(rows, [name for name, _ in loo], m)
    back = [name for name, _ in loo if any(t["config"] == name and t["said"] == "J_OUT helps" for t in tests)
            and not any(t["config"] == name and t["said"] == "J_OUT hurts" for t in tests)]
    mean = lambda name: sum(sum(t["differences"]) / len(t["differences"]) for t in tests  # noqa: E731
                            if t["config"] == name and t["differences"]) / 2
    named = max(back, key=mean) if back else ""
    add = names[named] if named else next(k for k in bundle(choice) if LADDER[k][1].keys() == {"readout"})
    return {"brings_back": back, "named": named, "add": add, "add_change": change_name(add), "tests": tests,
            "rule": UNBUNDLE_RULE}

def chosen_add_one(choice: Path = UNBUNDLE_CHOICE) -> int:
    """The change (an index into LADDER) the add-one study adds, as the coupling-unbundle profile recorded it."""
    try:
        return int(json.loads(Path(choice).read_text())["add"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"profile: coupling-add-one needs the coupling-unbundle profile's choice in {choice} "
                         f"({type(err).__name__}); run `make study-coupling-unbundle` first") from None

def add_one(m: int, choice: Path = COUPLING_CHOICE, unbundled: Path = UNBUNDLE_CHOICE) -> list[tuple[str, dict]]:
    """The chosen step's lower rung, then that rung plus the change the unbundling named ("03 + D = 32, with chord
    readout")."""
    off, _ = chosen_change(choice)
    k = chosen_add_one(unbundled)
    lower = ladder_rungs(m)[off]
    return [lower, (f"{lower[0]}, with {change_name(k)}", {**lower[1], **LADDER[k][1]})]


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


STUDIES = {
    "coupling-unbundle": Study((FIT_M,), FACTORIAL_SEEDS, plan=unbundle_plan, after=choose_add_one,
                               about="the step's upper rung with each of its changes reverted in turn, J_OUT learned "
                                     "and 0"),
    "coupling-add-one": Study((FIT_M,), FACTORIAL_SEEDS, plan=add_one_plan,
                              about="the step's lower rung plus the change the unbundling named, J_OUT learned and 0"),
}


SHORT = dict(TASKS)
INSIDE = ("displacement", "lock_by_angle", "lesion")


def _rows(folder: Path) -> list[dict]:
    return Evidence.load(folder).runs if (folder / "runs.csv").exists() else []


def _inside(folders: tuple[Path, ...]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for folder in folders:
        for name in INSIDE:
            if (folder / f"{name}.csv").exists():
                with open(folder / f"{name}.csv", newline="") as f:
                    out.setdefault(name, []).extend({k: _number(v) for k, v in r.items()} for r in csv.DictReader(f))
    return out


@dataclass
class Unbundling:
    """The leave-one-out and add-one runs, the choice between them, and the factorial's runs they are set beside."""

    loo: list[dict]  # coupling-unbundle's rows: the upper rung and each change reverted, J_OUT learned and 0
    add: list[dict]  # coupling-add-one's rows: the lower rung and it plus the named change
    choice: dict  # ladder.choose_add_one's record (empty until the leave-one-out is complete)
    factorial: list[dict]  # the factorial's rows (the same settings on another processor)
    inside: dict[str, list[dict]]  # displacement, lock_by_angle, lesion of the models with J_OUT learned

    @classmethod
    def load(cls, results: str | Path) -> Unbundling:
        results = Path(results)
        loo, add = results / "coupling-unbundle", results / "coupling-add-one"
        choice = loo / "choice.json"
        return cls(_rows(loo), _rows(add), json.loads(choice.read_text()) if choice.exists() else {},
                   _rows(results / "coupling-factorial"), _inside((loo, add)))

    @staticmethod
    def configs(rows: list[dict]) -> list[str]:
        """The configurations of a set of runs (J_OUT learned), in the order they ran."""
        return list(dict.fromkeys(r["variant"] for r in rows if J_OUT_WAYS[1][0] not in r["variant"]))

    @property
    def upper(self) -> str:
        """The upper rung of the step ("08 + chord readout"): the leave-one-out's reference."""
        return next(c for c in self.configs(self.loo) if ", without " not in c)

    @property
    def left_out(self) -> list[str]:
        """The leave-one-out configurations ("08 + chord readout, without gamma = 0.5", ...)."""
        return [c for c in self.configs(self.loo) if ", without " in c]

    @property
    def lower(self) -> str:
        return next((c for c in self.configs(self.add) if ", with " not in c), "")

    @property
    def added(self) -> str:
        return next((c for c in self.configs(self.add) if ", with " in c), "")

    @staticmethod
    def change(config: str) -> str:
        """What a configuration changes, in words: "gamma = 0.5" for "..., without gamma = 0.5"."""
        return config.split(", without ", 1)[-1].split(", with ", 1)[-1]

    def seeds(self, rows: list[dict]) -> list[int]:
        return sorted({r["seed"] for r in rows})

    def effect(self, config: str) -> dict[str, dict[int, float]]:
        """J_OUT's effect at one configuration of either study: task -> seed -> learned minus J_OUT = 0."""
        return j_out_effects(self.loo + self.add, config)

    def loo_tests(self) -> list[dict]:
        """The planned test: J_OUT's effect at each leave-one-out configuration, Holm over them within each task."""
        return [dict(r, task=SHORT[r["task"]]) for r in j_out_tests(self.loo, self.left_out)]

    def reference_tests(self) -> list[dict]:
        """J_OUT's effect at the two rungs rerun here (reported, not deciding: each a family of one)."""
        out = []
        for config in (self.upper, self.lower):
            if config:
                out += [dict(r, task=SHORT[r["task"]]) for r in j_out_tests(self.loo + self.add, [config])]
        return out

    def against_upper(self) -> list[dict]:
        """Exploratory: each leave-one-out configuration's J_OUT effect minus the upper rung's, paired by seed, Holm
        over the configurations within each task."""
        out = []
        for task, short in TASKS:
            ref = self.effect(self.upper).get(task, {})
            family = []
            for c in self.left_out:
                mine = self.effect(c).get(task, {})
                seeds = sorted(set(mine) & set(ref))
                family.append({"config": c, "task": short, "differences": [mine[s] - ref[s] for s in seeds]})
            out += resolve(family, "larger without the change", "smaller without the change", MIN_PAIRS)
        return out

    def add_one_test(self) -> list[dict]:
        """The planned add-one test: per seed, J_OUT's effect at the lower rung minus at the lower rung plus the change,
        over the seeds whose four runs fit; Holm over the two tasks."""
        if not self.added:
            return []
        family = []
        for task, short in TASKS:
            a, b = self.effect(self.lower).get(task, {}), self.effect(self.added).get(task, {})
            seeds = sorted(set(a) & set(b))
            family.append({"task": short, "seeds": seeds, "lower": [a[s] for s in seeds],
                           "added": [b[s] for s in seeds], "differences": [a[s] - b[s] for s in seeds]})
        return resolve(family, "the change takes J_OUT's effect away", "the change adds to J_OUT's effect", MIN_PAIRS)

    def named(self) -> str:
        """The change the leave-one-out named (``ladder.UNBUNDLE_RULE``), "" when none brings J_OUT's effect back."""
        return self.change(self.choice["named"]) if self.choice.get("named") else ""

    def conclusion(self) -> str:
        """The plan's sentence for what the unbundling found ("" until both studies ran)."""
        test = self.add_one_test()
        if not test or not self.choice:
            return ""
        sufficient = (any(t["said"] == "the change takes J_OUT's effect away" for t in test)
                      and not any(t["said"] == "the change adds to J_OUT's effect" for t in test))
        change = self.change(self.added)
        if self.named() and sufficient:
            return f"{change} makes J_OUT redundant: it is needed for the redundancy and enough on its own"
        if self.named():
            return f"{change} is needed for the redundancy but not enough on its own"
        if sufficient:
            return f"the {change} alone takes J_OUT's effect away; no single other change is needed for it"
        return "no single change of the five accounts for it; it takes several together"

    def reference_shift(self) -> list[dict]:
        """How far the rungs rerun here moved from the factorial's runs of the same settings, split and seeds: per
        configuration (J_OUT learned and 0) and task, the per-seed differences in held-out accuracy (points), and the
        processors of each side."""
        key = lambda r: (r["variant"], r["task"], r["m"], r["seed"])  # noqa: E731
        there = {key(r): r for r in self.factorial}
        out = []
        for rows in (self.loo, self.add):
            for config in (self.upper, self.lower):
                for variant in (config, f"{config}{J_OUT_WAYS[1][0]}"):
                    for task, short in TASKS:
                        pairs = [(r, there[key(r)]) for r in rows if r["variant"] == variant and r["task"] == task
                                 and key(r) in there]
                        if pairs:
                            out.append({"variant": variant, "task": short,
                                        "differences": [100 * (a["test_accuracy"] - b["test_accuracy"])
                                                        for a, b in pairs],
                                        "here": sorted({a["cpu"] for a, _ in pairs}),
                                        "there": sorted({b["cpu"] for _, b in pairs})})
        return out

    def fits(self, config: str) -> tuple[int, int]:
        """(pairs whose two runs fit, pairs run) at a configuration: a pair that does not fit measures nothing."""
        rows = [r for r in self.loo + self.add if r["task"] == "same-different"]
        learned = {r["seed"]: r for r in rows if r["variant"] == config}
        removed = {r["seed"]: r for r in rows if r["variant"] == f"{config}{J_OUT_WAYS[1][0]}"}
        both = [s for s in learned if s in removed]
        return sum(learned[s]["train_accuracy"] >= FIT and removed[s]["train_accuracy"] >= FIT for s in both), len(both)

    def label(self, config: str) -> str:
        """A configuration by what it is, for figures and tables."""
        if config == self.upper:
            return "all five changes (up to the chord readout)"
        if config == self.lower:
            return "none of them (up to D = 32)"
        if ", without " in config:
            return f"all but {self.change(config)}"
        return f"only {self.change(config)}"
