"""Why J_OUT stops mattering: the coupling study's step 5, read back (``make coupling COUPLING=coupling-unbundle``, then
``COUPLING=coupling-add-one``; the plan is in the chapter "When does coupling matter?").

The step across which J_OUT's effect falls (rung 03 to rung 08) bundles five changes. Leave-one-out reverts each in turn
from the upper rung; add-one adds the change the rule named (``ladder.UNBUNDLE_RULE``) to the lower rung. Both rungs are
rerun on the unbundling's machine, so every comparison is made within one CPU model; ``reference_shift`` says how far
those reruns moved from the factorial's runs of the same settings and seeds on another processor.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .ladder import FIT, J_OUT_WAYS, MIN_PAIRS, j_out_effects, j_out_tests
from .stats import resolve
from .studies import Evidence, _number
from .table import TASKS

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

