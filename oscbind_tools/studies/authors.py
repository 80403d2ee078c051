"""The authors' protocol in our code and the ladder from it to our defaults (``make study-authors``,
``make study-ladder``): their released runs' settings as ours (``authors_protocol``), their five variants over 3 splits
x 5 seeds, and the climb from their protocol to our defaults one change per rung (``LADDER``) at m = 50 and 15. Both
use ESBN's icons (OSCBIND_ESBN). ``Authors`` reads them back beside the authors' own CSV and our mechanism study.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from oscbind_lite.config import RunConfig

from ..plotting import DIFFERENT_COLOUR, SAME_COLOUR, readable
from .engine import FIDELITY_PAIRS, SEEDS, Spec, Study, measures
from .mechanism import Mechanism
from .reading import Evidence, read_table
from .stats import from_interval, holm, interval95, paired_p, resolve, welch_p, welch_summary
from .table import PM, TASKS, Table, approx_difference, percent, signed, signed_points

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

# ESBN's imgs/ folder (a clone of taylorwwebb/emergent_symbols)
ESBN = os.environ.get("OSCBIND_ESBN", "../shared/esbn-glyphs")

def esbn_folder() -> str:
    """ESBN's icon folder for the authors' protocol, checked: 100 images (OSCBIND_ESBN, else ../shared/esbn-glyphs)."""
    folder = Path(ESBN)
    if not folder.is_dir() or len([p for p in folder.iterdir() if p.suffix == ".png"]) != 100:
        raise ValueError(f"OSCBIND_ESBN: {folder} is not ESBN's folder of 100 icons; clone "
                         "https://github.com/taylorwwebb/emergent_symbols and set OSCBIND_ESBN to its imgs/ folder")
    return str(folder.resolve())

def ladder_rungs(m: int) -> list[tuple[str, dict]]:
    """The ladder at split m: (rung name "kk change", its whole override set), each rung keeping the changes below."""
    over, rungs = authors_protocol(m, esbn_folder()), []
    for k, (name, change) in enumerate(LADDER):
        over = {**over, **change}
        rungs.append((f"{k:02d} {name}", dict(over)))
    return rungs


def authors_plan(study: Study) -> list[Spec]:
    """Their variants on their protocol; the oscillator variants measure both energies."""
    return [Spec(name, m, seed, {**authors_protocol(m, esbn_folder()), **over}, study.fidelity.get(name, ""))
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()]

def ladder_plan(study: Study) -> list[Spec]:
    """Every rung of LADDER at every split and seed."""
    return [Spec(name, m, seed, over) for m in study.splits for seed in study.seeds for name, over in ladder_rungs(m)]


@measures("released")
def measure(model, run, spec) -> dict:
    """The poster's E and the released code's quantity on the same trajectories of held-out same and different pairs
    (double precision)."""
    from oscbind_lite import analysis
    from oscbind_lite.data import IconTasks

    tasks = IconTasks.from_config(run.data, model.encoder.out.weight.device)
    both = analysis.two_energies(model, tasks, "test", FIDELITY_PAIRS, spec.seed)
    return {"tables": {"two_energies": [{"quantity": "poster", **both.poster._asdict()},
                                       {"quantity": "released", **both.released._asdict()}]},
            "curves": both.curves, "pairs": FIDELITY_PAIRS}


STUDIES = {
    "authors": Study((95, 50, 15), SEEDS, AUTHORS, authors_plan, "default", ("baseline",),
                     fidelity={name: "released" for name in AUTHORS if name != "baseline"},
                     about="the authors' protocol in our code: their five variants x 3 splits x 5 seeds (ESBN's "
                           "icons)"),
    "ladder": Study((50, 15), SEEDS, plan=ladder_plan,
                    about="the ladder from the authors' protocol to our defaults, one change per rung, m = 50 and 15"),
}


@dataclass
class Authors:
    """The authors' protocol in our code (``make study-authors``, ``make study-ladder``) beside their published
    numbers."""

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


def ladder_figure(authors) -> Figure:
    """Held-out accuracy on each rung of the ladder from the authors' protocol to our defaults, one panel per
    task, one line per split (mean and 95 % interval over seeds) and each seed as a dot (a rung where some seeds
    fail to train shows as two clusters). ``authors`` is a ``protocols.Authors``."""
    rungs = authors.rungs()
    splits = sorted({r["m"] for r in authors.ladder}, reverse=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, (task, short) in zip(axes, TASKS):
        for k, m in enumerate(splits):
            seeds = [list(authors.scores(authors.ladder, rung, task, m).values()) for rung in rungs]
            stats = [interval95(v) for v in seeds]
            xs = np.arange(len(rungs)) + (k - 0.5) * 0.2
            line = ax.errorbar(xs, [100 * s[0] for s in stats], yerr=[100 * np.nan_to_num(s[1]) for s in stats],
                               fmt="o-", capsize=3, label=f"m = {m}: mean, 95 % interval ({stats[0][2]} seeds)")
            for x, v in zip(xs, seeds):
                ax.plot(np.full(len(v), x + 0.07), [100 * a for a in v], ".", ms=3, alpha=0.5,
                        color=line[0].get_color())
        ax.set_xticks(range(len(rungs)), [r.split(" ", 1)[1] for r in rungs], rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{short}: held-out accuracy, each rung adds one change", fontsize=9)
        ax.grid(axis="y", lw=0.3)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(fontsize=8)
    return readable(fig)


def energies_figure(runs: list[dict], title: str, pairs: int) -> Figure:
    """Mean energy over t of same and different held-out pairs, the poster's E beside the released code's
    quantity, on the same trajectories. ``runs``: ``TwoEnergies.curves`` of each run; with several runs the
    line is their mean and the band its 95 % interval."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (quantity, label) in zip(axes, (("poster", "the poster's E"),
                                            ("released", "the released code's quantity"))):
        for kind, colour in (("same", SAME_COLOUR), ("different", DIFFERENT_COLOUR)):
            curves = np.array([r[quantity][kind] for r in runs])  # (runs, T + 1)
            stats = np.array([interval95(step)[:2] for step in curves.T])
            t = np.arange(curves.shape[1])
            ax.plot(t, stats[:, 0], color=colour, label=f"{kind} pairs")
            if len(runs) > 1:
                ax.fill_between(t, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=colour, alpha=0.25, lw=0)
        runs_note = f"{len(runs)} runs, " if len(runs) > 1 else ""
        ax.set_title(f"{label} ({runs_note}{pairs} pairs of each kind{' per run' if runs_note else ''})", fontsize=9)
        ax.set_xlabel("Kuramoto step t")
    axes[0].set_ylabel("mean energy over pairs")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return readable(fig)
