"""The authors' protocol in our code, read back: their released runs (``make authors``) beside their published CSV,
and the ladder from their protocol to our defaults (``make ladder``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from oscbind_lite.config import ModelConfig

from .stats import from_interval, holm, interval95, paired_p, resolve, welch_p, welch_summary
from .design import STUDIES
from .ladder import j_out_effects
from .studies import Evidence, Mechanism, _number, read_table
from .table import PM, TASKS, Table, approx_difference, percent, signed, signed_points

@dataclass
class Authors:
    """The authors' protocol in our code (``make authors``, ``make ladder``) beside their published numbers."""

    runs: list[dict]  # the authors profile's runs
    ladder: list[dict]  # the ladder profile's runs
    published: list[dict]  # their CSV, summarised per cell (results/published/osc-network.csv)
    energies: list[dict]  # the poster's E and the released quantity per run (two_energies.csv)
    curves: dict
    ours: Mechanism | None = None  # our defaults, from the mechanism study

    @classmethod
    def load(cls, authors: str | Path, ladder: str | Path | None, published: str | Path,
             ours: Mechanism | None = None) -> Authors:
        """ladder: the ladder profile's folder, or None for the authors profile alone."""
        authors = Path(authors)
        pub = [dict(r, m=int(r["m"]), mean=float(r["mean"]), half_width=float(r["half_width"]), n=int(r["n"]))
               for r in read_table(published, ("variant", "task", "m", "mean", "half_width", "n"),
                                   ("variant", "task"), convert=str)]
        energies = [{k: v if k in ("run", "variant", "quantity") else float(v) for k, v in r.items()}
                    for r in read_table(authors / "two_energies.csv", ("run", "variant", "quantity"),
                                        ("run", "variant", "quantity"), convert=str)]
        return cls(Evidence.load(authors).runs, Evidence.load(ladder).runs if ladder is not None else [], pub, energies,
                   json.loads((authors / "curves.json").read_text()), ours)

    def scores(self, runs: list[dict], variant: str, task: str, m: int,
               field: str = "test_accuracy") -> dict[int, float]:
        """Seed -> one column (held-out accuracy unless told) of a variant's runs at one task and split."""
        return {r["seed"]: r[field] for r in runs if r["variant"] == variant and r["task"] == task and r["m"] == m}

    def theirs(self, variant: str, task: str, m: int) -> tuple[float, float]:
        row = next(r for r in self.published if r["variant"] == variant and r["task"] == task and r["m"] == m)
        return row["mean"], row["half_width"]

    def mine(self, variant: str, task: str, m: int) -> tuple[float, float]:
        mean, half, _ = interval95(self.scores(self.runs, variant, task, m).values())
        return 100 * mean, 100 * half

    def splits(self) -> list[int]:
        return sorted({r["m"] for r in self.runs}, reverse=True)

    def headline_table(self) -> Table:
        """Their CSV / our code with their protocol / our defaults, both tasks, three splits."""
        rows = []
        for task, short in TASKS:
            rows.append([short, "their code and protocol (their CSV)"]
                        + [f"{a:.1f}{PM}{h:.1f}" for a, h in (self.theirs("default", task, m) for m in self.splits())])
            rows.append([short, "our code, their protocol"]
                        + [percent(self.scores(self.runs, "default", task, m).values()) for m in self.splits()])
            if self.ours is not None:
                rows.append([short, "our code, our defaults"]
                            + [percent(self.ours.scores("oscillator", task, m).values()) for m in self.splits()])
        return Table(["task", "source"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"The default model's held-out accuracy (%), mean{PM}95 % half-width over 5 seeds each")

    def variants_table(self) -> Table:
        """Each of their five variants: their CSV, our code with their protocol, and the (unpaired) difference."""
        rows = []
        for variant in dict.fromkeys(r["variant"] for r in self.published):
            for m in self.splits():
                row = [variant, m]
                for task, _ in TASKS:
                    a, b = self.mine(variant, task, m), self.theirs(variant, task, m)
                    row += [f"{b[0]:.1f}{PM}{b[1]:.1f}", f"{a[0]:.1f}{PM}{a[1]:.1f}", approx_difference(a, b)]
                rows.append(row)
        header = ["variant", "m"] + [f"{short} {what}" for short in ("S/D", "RMTS")
                                     for what in ("theirs", "ours", "ours - theirs")]
        return Table(header, rows,
                     caption="Their CSV and our code on their protocol, per variant (%; S/D: same/different), mean"
                             f"{PM}95 % half-width over 5 seeds; the difference is unpaired, its interval "
                             "approximate (half-widths added in quadrature)")

    def j_out_table(self) -> Table:
        """Does removing J_OUT cost accuracy under their protocol? Paired by seed in our code; unpaired in theirs."""
        rows = []
        for task, short in TASKS:
            ds = []
            for m in self.splits():
                mine, without = self.scores(self.runs, "default", task, m), self.scores(self.runs, "no J_OUT", task, m)
                ds.append([mine[s] - without[s] for s in mine if s in without])
            rows += [[short, m, approx_difference(self.theirs("default", task, m), self.theirs("no J_OUT", task, m)),
                      signed_points(d), f"{paired_p(d):.3f}", f"{adj:.3f}"]
                     for m, d, adj in zip(self.splits(), ds, holm([paired_p(d) for d in ds]))]
        return Table(["task", "m", "their CSV: default - no J_OUT (points)",
                      "our code, their protocol (points, paired)", "p (paired t)",
                      f"Holm p (family of {len(self.splits())})"], rows,
                     caption=f"Accuracy with J_OUT minus without, mean{PM}95 % half-width over 5 seeds; Holm's "
                             "correction within each task, over the splits")

    def rungs(self) -> list[str]:
        return sorted({r["variant"] for r in self.ladder})

    def fitted(self, rung: str, task: str, m: int) -> list[float]:
        """A rung's accuracy on its training icons, per seed: separates a rung that fails to fit from one that
        fits and fails to generalise."""
        return list(self.scores(self.ladder, rung, task, m, "train_accuracy").values())

    def ladder_steps(self) -> list[tuple[str, int, str, list[float], float]]:
        """Each rung's step from the rung below, paired by seed: (task, m, rung, differences, Holm p), with Holm
        applied within each task's family (every step at every split)."""
        out, splits = [], sorted({r["m"] for r in self.ladder}, reverse=True)
        for task, _ in TASKS:
            steps = []
            for m in splits:
                for below, rung in zip(self.rungs(), self.rungs()[1:]):
                    a, b = self.scores(self.ladder, rung, task, m), self.scores(self.ladder, below, task, m)
                    steps.append((task, m, rung, [a[s] - b[s] for s in a if s in b]))
            out += [(*step, adj) for step, adj in zip(steps, holm([paired_p(d) for *_, d in steps]))]
        return out

    def ladder_table(self) -> Table:
        """Each rung's accuracy, and its step from the rung below, paired by seed, Holm within each task's family."""
        rows, steps = [], self.ladder_steps()
        for task, short in TASKS:
            for m in sorted({r["m"] for r in self.ladder}, reverse=True):
                bottom = self.rungs()[0]
                rows.append([short, m, bottom, percent(self.scores(self.ladder, bottom, task, m).values()),
                             percent(self.fitted(bottom, task, m)), "", ""])
                rows += [[short, m, rung, percent(self.scores(self.ladder, rung, task, m).values()),
                          percent(self.fitted(rung, task, m)), signed_points(d), f"{adj:.3f}"]
                         for t, mm, rung, d, adj in steps if t == task and mm == m]
        family = 2 * (len(self.rungs()) - 1)
        return Table(["task", "m", "rung", "held-out accuracy (%)", "training accuracy (%)", "step (points, paired)",
                      f"Holm p (family of {family})"],
                     rows, caption=f"From their protocol to our defaults, one change at a time, mean{PM}95 % "
                                   "half-width over 5 seeds; each step paired by seed against the rung below")

    # The ladder's rungs in four groups, by index into ladder.LADDER: (label, rung below the group, its last rung).
    SEGMENTS = (("the data: augmentation, split", 0, 2),
                ("the oscillators: D, gamma, Omega, start, initialisation, readout", 2, 8),
                ("the training: optimisation, CNN", 8, 10),
                ("the icons", 10, 11))

    def segments(self) -> list[dict]:
        """Each segment's net change (its last rung minus the rung below it), paired by seed, Holm within each
        task's family (every segment at every split); ``resolve`` adds p, holm, family and what it says."""
        rungs, splits, out = self.rungs(), sorted({r["m"] for r in self.ladder}, reverse=True), []
        for task, short in TASKS:
            family = []
            for m in splits:
                for label, below, last in self.SEGMENTS:
                    a, b = (self.scores(self.ladder, rungs[last], task, m),
                            self.scores(self.ladder, rungs[below], task, m))
                    family.append({"task": short, "m": m, "segment": label,
                                   "differences": [a[s] - b[s] for s in a if s in b]})
            out += resolve(family, "gain", "loss")
        return out

    def segments_table(self) -> Table:
        segments = self.segments()
        rows = [[c["task"], c["m"], c["segment"], signed_points(c["differences"]), f"{c['holm']:.3f}", c["said"]]
                for c in segments]
        family = max((c["family"] for c in segments), default=0)
        return Table(["task", "m", "changes", "net step (points, paired)", f"Holm p (family of {family})",
                      "after Holm"],
                     rows, caption=f"The climb from their protocol to our defaults in four groups of rungs, "
                                   f"mean{PM}95 % half-width over 5 seeds, each group's last rung minus the rung "
                                   "below it")

    def energy_curves(self, variant: str = "default") -> list[dict]:
        """``TwoEnergies.curves`` of each run of one variant, for ``plotting.two_energies``."""
        return [c["curves"] for c in self.curves.values() if c["variant"] == variant]

    def energy_table(self) -> Table:
        """Same minus different at t = T, per variant and quantity, over all runs."""
        rows = []
        for variant in dict.fromkeys(r["variant"] for r in self.energies):
            for quantity, label in (("poster", "the poster's E"), ("released", "the released code's quantity")):
                here = [r for r in self.energies if r["variant"] == variant and r["quantity"] == quantity]
                rows.append([variant, label, len(here), signed([r["difference"] for r in here]),
                             signed([r["cohens_d"] for r in here], 2),
                             f"{sum(r['difference'] < 0 for r in here)} of {len(here)}"])
        return Table(["variant", "energy", "runs", "same - different at t = T", "Cohen's d",
                      "runs with same lower"], rows,
                     caption=f"Energy of same minus different held-out pairs at the end of the dynamics, mean{PM}95 % "
                             "half-width over runs (3 splits x 5 seeds), both quantities on the same trajectories")

    def j_out_effect(self, task: str, m: int) -> list[float]:
        """J_OUT's effect under their protocol in our code: default minus no J_OUT, per seed (paired)."""
        mine, without = self.scores(self.runs, "default", task, m), self.scores(self.runs, "no J_OUT", task, m)
        return [mine[s] - without[s] for s in sorted(mine) if s in without]

    def published_j_out(self) -> list[dict]:
        """J_OUT's effect in their CSV alone (default minus no J_OUT, Welch's test from each cell's mean, 95 %
        half-width and n, in points), Holm within each task over the splits."""
        out = []
        for task, short in TASKS:
            family = []
            for m in self.splits():
                a, b = (self.published_cell(v, task, m) for v in ("default", "no J_OUT"))
                family.append({"task": short, "m": m, "difference": a["mean"] - b["mean"],
                               "p": welch_summary(from_interval(a["mean"], a["half_width"], a["n"]),
                                                  from_interval(b["mean"], b["half_width"], b["n"]))[1]})
            for row, adjusted in zip(family, holm([r["p"] for r in family])):
                row["holm"] = adjusted
            out += family
        return out

    def published_cell(self, variant: str, task: str, m: int) -> dict:
        return next(r for r in self.published if r["variant"] == variant and r["task"] == task and r["m"] == m)

    def j_out_contrast(self, task: str, m: int) -> dict:
        """Does J_OUT's effect differ between their protocol and our defaults? Their protocol's paired effects (default
        minus no J_OUT) against our defaults' (oscillator minus J_OUT = 0, the mechanism study), two independent sets
        of seeds: the difference of the two mean effects (points) and Welch's p."""
        theirs = self.j_out_effect(task, m)
        ours = self.ours.paired("oscillator", "J_OUT = 0", task, m)
        return {"theirs": theirs, "ours": ours, "contrast": 100 * (sum(theirs) / len(theirs) - sum(ours) / len(ours)),
                "p": welch_p(theirs, ours)}

    def reproduction(self) -> dict[str, tuple[int, int]]:
        """How our code on their protocol compares with their CSV, cell by cell (variant x task x split): for the
        oscillator variants and for their baseline, (cells where ours is lower, cells in all)."""
        out = {}
        for kind, variants in (("oscillator", [v for v in dict.fromkeys(r["variant"] for r in self.published)
                                               if v != "baseline"]),
                               ("baseline", ["baseline"])):
            cells = [(self.mine(v, t, m)[0], self.theirs(v, t, m)[0])
                     for v in variants for t, _ in TASKS for m in self.splits()]
            out[kind] = (sum(mine < theirs for mine, theirs in cells), len(cells))
        return out

    def margin(self) -> dict[str, float]:
        """The oscillator's margin over their baseline (default minus baseline, points, averaged over tasks and
        splits) in their CSV and in our code on their protocol."""
        cells = [(t, m) for t, _ in TASKS for m in self.splits()]
        theirs = sum(self.theirs("default", t, m)[0] - self.theirs("baseline", t, m)[0] for t, m in cells) / len(cells)
        mine = sum(self.mine("default", t, m)[0] - self.mine("baseline", t, m)[0] for t, m in cells) / len(cells)
        return {"theirs": theirs, "ours": mine}


@dataclass
class Coupling:
    """When does binding through coupling matter? J_OUT learned against J_OUT = 0 along the ladder (``make coupling``),
    the factorial of the change that removes J_OUT's effect (``COUPLING=coupling-factorial``), a dose of encoder width
    (``COUPLING=coupling-dose``) and what J_OUT does to the dynamics (the factorial's coupling tables)."""

    ladder: list[dict]  # the coupling profile's rows
    choice: dict  # choose_change's record: the change the factorial tests
    factorial: list[dict]
    dose: list[dict]
    inside: dict[str, list[dict]]  # displacement, lock_by_angle, lesion: one row per run (and kind or bin)
    rungs_run: list[dict] = field(default_factory=list)  # the ladder profile's own runs (another machine)

    @classmethod
    def load(cls, results: str | Path) -> Coupling:
        """Read RESULTS/coupling (with choice.json), and RESULTS/coupling-factorial and coupling-dose where they
        exist."""
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
                   rows(factorial), rows(results / "coupling-dose"), inside, rows(results / "ladder"))

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

    def widths(self) -> list[tuple[int, ...]]:
        """The dose's CNN widths, narrowest first, then the default (rung 11 of the coupling profile)."""
        found = {tuple(int(c) for c in r["variant"].split("channels ")[1].split(" | ")[0].split("-"))
                 for r in self.dose}
        return sorted(found) + [DEFAULT_WIDTH]

    def dose_effects(self, m: int = 50) -> dict[tuple[int, ...], dict[str, dict[int, float]]]:
        """J_OUT's effect at each CNN width: width -> task -> seed -> effect (the default width from the coupling
        profile's top rung, the others from the dose profile)."""
        top = self.rungs()[-1]
        out = {}
        for width in self.widths():
            if width == DEFAULT_WIDTH:
                out[width] = self.effects(self.ladder, top, m)
            else:
                out[width] = self.effects(self.dose, f"{top} | channels {'-'.join(map(str, width))}", m)
        return out

    def dose_accuracy(self, task: str, m: int = 50) -> dict[tuple[int, ...], list[float]]:
        """Held-out accuracy of the model with J_OUT learned at each CNN width (the encoder's strength)."""
        top = self.rungs()[-1]
        out = {}
        for width in self.widths():
            variant = top if width == DEFAULT_WIDTH else f"{top} | channels {'-'.join(map(str, width))}"
            runs = self.ladder if width == DEFAULT_WIDTH else self.dose
            out[width] = [r["test_accuracy"] for r in runs
                          if r["variant"] == variant and r["task"] == task and r["m"] == m]
        return out

    def dose_slopes(self, m: int = 50) -> list[dict]:
        """The dose's planned test per task: per seed, the least-squares slope of J_OUT's effect against log2 of the
        first block's width (over the widths where the seed's pair fits, at least three); one-sample t over the seeds,
        Holm over the two tasks. A negative slope: the stronger the encoder, the less J_OUT adds."""
        effects = self.dose_effects(m)
        family = []
        for task, short in TASKS:
            slopes = []
            for seed in sorted({s for by in effects.values() for s in by.get(task, {})}):
                points = [(math.log2(w[0]), by[task][seed]) for w, by in effects.items() if seed in by.get(task, {})]
                if len(points) >= 3:
                    slopes.append(_slope(points))
            family.append({"task": short, "differences": slopes})
        return resolve(family, "J_OUT adds more with a wider CNN", "J_OUT adds less with a wider CNN")


MIN_PAIRS = 4  # a rung with fewer pairs that fit is shown, not tested
DEFAULT_WIDTH = ModelConfig().channels  # our CNN's channels, the dose's widest point


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y on x."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
