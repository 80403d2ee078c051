"""The energy study (``make study-energy``): the poster's energy and locking claims over every split and seed, read back
for the energy chapter, and the claims the findings page quotes from it.

Three models (the default, the symmetric one with Omega = 0, and that one trained at gamma 0.1) x 3 splits x 5 seeds;
each job measures, on held-out icons in double precision, the descent of E at the trained step and at smaller ones
over the same time span, the partner-swap gap between same and different pairs, and locking by start and by how far
apart the two objects' drives are (``energy_numbers``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..plotting import SAME_COLOUR, readable
from .engine import FIDELITY_PAIRS, SEEDS, Claim, Spec, Study, clear_above, clear_below, grade, measures
from .reading import read_table
from .stats import interval95, median
from .table import Table, percent, signed

SYMMETRIC = {"symmetric J, Omega = 0": {"symmetric": True, "learn_omega": False}}

# The poster's energy claims, measured over every split and seed (issue: "the science, measured properly").
ENERGY = {"oscillator": {}, **SYMMETRIC,
          "symmetric J, Omega = 0, gamma = 0.1": {"symmetric": True, "learn_omega": False, "gamma": 0.1}}
GAMMAS = (0.5, 0.25, 0.1, 0.05)  # Euler steps of the descent curve, each run over the same time span
SPAN = 50.0  # gamma * T of the descent curve and of "converged" dynamics: the symmetric models settle well before
RTOL = 1e-9  # relative change of E that counts as double-precision rounding, not an increase
AGREE, DISAGREE = 30.0, 60.0  # drive angles (degrees) below which two features count as shared, above which as not
MONOTONE = 0.99  # the energy descends in a model when at least this share of its trajectories never rises
LOCKS = 0.8  # shared features lock when at least this share of those whose drives agree lock
CLAIMED = {"symmetric J, Omega = 0, gamma = 0.1": 0.1, "symmetric J, Omega = 0": 0.5}  # the claim's models, by step


def energy_plan(study: Study) -> list[Spec]:
    """Every variant at every split and seed with the energy study, seed by seed."""
    return [Spec(name, m, seed, over, "energy")
            for seed in study.seeds for m in study.splits for name, over in study.variants.items()]


@measures("energy")
def measure(model, run, spec) -> dict:
    """``energy_numbers`` on the job's trained model, held-out icons."""
    from oscbind_lite.data import IconTasks

    return energy_numbers(model, IconTasks.from_config(run.data, model.encoder.out.weight.device), spec.seed)


def energy_numbers(model, tasks, seed: int, pairs: int = FIDELITY_PAIRS) -> dict:
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


STUDIES = {
    "energy": Study((95, 50, 15), SEEDS, ENERGY, energy_plan,
                    about="the poster's energy and locking claims: 3 models x 3 splits x 5 seeds"),
    "energy-smoke": Study((95,), (0,), ENERGY, energy_plan, smoke=True,
                          about="the energy study with seconds-long trainings"),
}


# The columns of each table that the chapter and the findings read: a table without them, or without rows, is refused.
COLUMNS = {"descent": ("run", "variant", "dynamics", "gamma", "T", "rtol", "share_non_increasing", "monotone_share",
                       "final_motion"),
           "swap": ("run", "variant", "dynamics", "gamma", "groups", "mean", "paired_d", "share_same_lower", "drive",
                    "within", "between"),
           "locking": ("run", "variant", "start", "locked_same", "locked_different"),
           "lock_by_angle": ("run", "variant", "angle_low", "angle_high", "locked", "features"),
           "runs": ("run", "variant", "task", "test_accuracy")}
# Short names of the energy study's models, for table cells.
SHORT = {"oscillator": "default", "symmetric J, Omega = 0": "symmetric, Ω = 0",
         "symmetric J, Omega = 0, gamma = 0.1": "symmetric, Ω = 0, γ = 0.1"}


@dataclass
class EnergyStudy:
    """The energy profile's results (``make study-energy``): one row per run and setting in each table."""

    descent: list[dict]
    swap: list[dict]
    locking: list[dict]
    lock_by_angle: list[dict]
    curves: dict
    runs: list[dict]

    @classmethod
    def load(cls, folder: str | Path) -> EnergyStudy:
        """Read RESULTS/{descent,swap,locking,lock_by_angle}.csv, curves.json and runs.csv, numbers as numbers;
        ValueError naming a table that is emptied or foreign (``studies.read_table``)."""
        folder = Path(folder)
        texts = ("run", "variant", "dynamics", "start", "task")

        def rows(name: str) -> list[dict]:
            return read_table(folder / f"{name}.csv", COLUMNS[name], texts, blanks=("locked",))

        return cls(rows("descent"), rows("swap"), rows("locking"), rows("lock_by_angle"),
                   json.loads((folder / "curves.json").read_text()), rows("runs"))

    @property
    def variants(self) -> list[str]:
        """The models measured, the default first."""
        found = list(dict.fromkeys(r["variant"] for r in self.swap))
        return sorted(found, key=lambda v: (v != "oscillator", len(v), v))

    def select(self, table: str, **match) -> list[dict]:
        """The rows of one table (descent, swap, locking, lock_by_angle) whose fields equal ``match``."""
        return [r for r in getattr(self, table) if all(r.get(k) == v for k, v in match.items())]

    def count(self, variant: str) -> int:
        """Runs (split x seed) measured for a variant."""
        return len({r["run"] for r in self.swap if r["variant"] == variant})

    def accuracy(self, variant: str, task: str = "same-different") -> list[float]:
        return [r["test_accuracy"] for r in self.runs if r["variant"] == variant and r["task"] == task]

    def descent_table(self) -> Table:
        rows = []
        for v in self.variants:
            settings = list(dict.fromkeys((r["dynamics"], r["gamma"], int(r["T"]))
                                          for r in self.descent if r["variant"] == v))
            for kind, gamma, T in settings:
                rows_here = self.select("descent", variant=v, dynamics=kind, gamma=gamma, T=T)
                strict, tolerant = [r for r in rows_here if r["rtol"] == 0], [r for r in rows_here if r["rtol"] > 0]
                rows.append([SHORT.get(v, v), f"{gamma:g}", T,
                             f"{gamma * T:g}" + (" (trained)" if kind == "trained" else ""),
                             percent([r["share_non_increasing"] for r in strict]),
                             percent([r["share_non_increasing"] for r in tolerant]),
                             percent([r["monotone_share"] for r in tolerant]),
                             f"{median([r['final_motion'] for r in tolerant]):.1e}", len(tolerant)])
        rtol = next((r["rtol"] for r in self.descent if r["rtol"] > 0), float("nan"))
        return Table(["variant", "gamma", "T", "gamma T", "steps not rising, strict (%)", f"within rtol {rtol:g} (%)",
                      "monotone trajectories (%)", "median |dE|, last 5", "runs"], rows,
                     caption="Energy descent on held-out pairs (double precision), mean ± 95 % half-width over runs "
                             "(splits x seeds); default: learned J and Omega; γ = 0.1: the symmetric model trained at "
                             "that step")

    def swap_table(self) -> Table:
        rows = []
        for v in self.variants:
            for kind in ("trained", "converged"):
                sel = [r for r in self.swap if r["variant"] == v and r["dynamics"] == kind]
                if not sel:
                    continue
                rows.append([SHORT.get(v, v), f"{kind}, γ {sel[0]['gamma']:g}", signed([r["mean"] for r in sel]),
                             signed([r["paired_d"] for r in sel], digits=2),
                             percent([r["share_same_lower"] for r in sel]),
                             signed([r["drive"] for r in sel]), signed([r["within"] for r in sel]),
                             signed([r["between"] for r in sel]), f"{len(sel)} x {int(sel[0]['groups'])}"])
        return Table(["variant", "dynamics", "same - different per pair", "paired d", "same lower (% of groups)",
                      "drive", "J_IN", "J_OUT", "runs x groups"], rows,
                     caption="Partner-swap energy gap at t = T: [E(a,a') + E(b,b') - E(a,b') - E(b,a')] / 2 per group "
                             "of two held-out icons, mean ± 95 % half-width over runs (negative: same pairs settle "
                             "lower); trained: the model's own step for T = 25 steps; "
                             "converged: γ = 0.05 for 1,000 steps")

    def locking_table(self) -> Table:
        rows = [[SHORT.get(v, v), start, percent([r["locked_same"] for r in sel]),
                 percent([r["locked_different"] for r in sel]), len(sel)]
                for v in self.variants for start in ("shared", "independent")
                if (sel := [r for r in self.locking if r["variant"] == v and r["start"] == start])]
        return Table(["variant", "start phases", "locked, same pairs (%)", "locked, different pairs (%)", "runs"], rows,
                     caption="Share of features whose two oscillators end within 30 degrees, held-out pairs, mean "
                             "± 95 % half-width over runs")


def gap_figure(study, dynamics: str = "converged") -> Figure:
    """The poster's Figure 6 in the partner-swap design: same minus different energy per pair over t, one panel
    per variant; the line is the mean over runs, the band its 95 % interval (below 0: same pairs lower)."""
    variants = study.variants
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.2), squeeze=False, sharey=True)
    for ax, v in zip(axes[0], variants):
        runs = [c["curves"][dynamics] for c in study.curves.values() if c["variant"] == v]
        t = np.asarray(runs[0]["t"])
        gaps = np.array([np.subtract(r["same"], r["different"]) for r in runs])  # (runs, steps)
        stats = np.array([interval95(step)[:2] for step in gaps.T])
        half = np.nan_to_num(stats[:, 1])
        ax.axhline(0, color="grey", lw=0.6)
        ax.plot(t, stats[:, 0], color=SAME_COLOUR, label="mean over runs")
        ax.fill_between(t, stats[:, 0] - half, stats[:, 0] + half, color=SAME_COLOUR, alpha=0.25, lw=0,
                        label="95 % interval")
        ax.set_title(f"{v} ({len(runs)} runs)", fontsize=9)
        ax.set_xlabel("time gamma t")
    axes[0, 0].set_ylabel("E(same) - E(swapped), per pair")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"partner-swap energy gap over time, {dynamics} dynamics, held-out icons (below 0: same pairs lower)",
                 fontsize=10)
    return readable(fig)


def lock_figure(study) -> Figure:
    """P(a feature of a different pair ends locked | the angle between its two drives), per variant, over runs."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for v in study.variants:
        rows = [r for r in study.lock_by_angle if r["variant"] == v]
        bins = list(dict.fromkeys((r["angle_low"], r["angle_high"]) for r in rows))
        centre, mean, half = [], [], []
        for lo, hi in bins:
            values = [r["locked"] for r in rows
                      if (r["angle_low"], r["angle_high"]) == (lo, hi) and r["locked"] is not None]
            if values:
                m, h, _ = interval95(values)
                centre.append((lo + hi) / 2), mean.append(100 * m), half.append(100 * (h if h == h else 0))
        ax.errorbar(centre, mean, yerr=half, fmt="o-", capsize=3, label=v)
    ax.set_xlabel("angle between the two objects' drives c_1,d and c_2,d (degrees)")
    ax.set_ylabel("features locked at t = T (%)")
    ax.set_ylim(-3, 103)
    ax.set_title("different pairs of held-out icons: locking follows drive agreement (mean, 95 % interval over runs)",
                 fontsize=9)
    ax.legend(fontsize=7)
    return readable(fig)


# ---- the claims the findings page quotes (``findings.Findings`` holds the studies they read)

def descent(f) -> Claim:
    """The models the claim is about (J symmetric, Omega = 0), trained at gamma 0.1 and 0.5, each run at its trained
    step and at 0.05 over the same time span: a cell is for the claim when every model has at least MONOTONE of its
    trajectories never rising, against it when none does."""
    cells, shares = [], {}
    for variant, trained in CLAIMED.items():
        for gamma, kind in ((trained, "trained"), (0.05, "curve")):
            rows = [r for r in f.energy.select("descent", variant=variant, gamma=gamma, dynamics=kind)
                    if r["rtol"] > 0]
            shares[trained, gamma] = [r["monotone_share"] for r in rows]
            cells.append(("for" if min(shares[trained, gamma]) >= MONOTONE else
                          "against" if max(shares[trained, gamma]) < MONOTONE else ""))
    n = len(shares[0.5, 0.5])
    number = (f"trajectories that never rise: {percent(shares[0.1, 0.1])} % when trained and run at gamma = 0.1, "
              f"{percent(shares[0.5, 0.5])} % at our 0.5 ({n} models each)")
    verdict = ("descends at the authors' step (gamma = 0.1) and below, in every model; rises at least once in "
               "nearly every trajectory at our trained step 0.5")
    return Claim("Energy descends (symmetric J, Omega = 0)", grade(cells.count("for"), cells.count("against"),
                 len(cells)), verdict, number, "energy")


def same_lower(f) -> Claim:
    """The partner-swap energy gap (same minus different, per pair; below 0: same lower) at converged dynamics of
    the claim's models, and the poster's E in the authors' protocol's runs."""
    swap = {gamma: [r["mean"] for r in f.energy.select("swap", variant=v, dynamics="converged")]
            for v, gamma in CLAIMED.items()}
    lower = [g for g, x in swap.items() if clear_below(x)]
    higher = [g for g, x in swap.items() if clear_above(x)]
    poster = [r for r in f.authors.energies if r["quantity"] == "poster" and r["variant"] != "no J_OUT"]
    ends_higher = sum(r["difference"] > 0 for r in poster)
    number = (f"same minus different: {signed(swap[0.1], 2)} trained at gamma = 0.1, {signed(swap[0.5], 2)} at "
              f"0.5 ({len(swap[0.1])} models each)")
    side = lambda g: "lower" if g in lower else "higher" if g in higher else "neither lower nor higher"  # noqa: E731
    verdict = (f"same pairs settle {side(0.1)} after training at gamma = 0.1 and {side(0.5)} at 0.5; under the "
               f"authors' protocol (gamma = 0.1) they end higher in {ends_higher} of {len(poster)} runs")
    return Claim("Same pairs settle lower", grade(len(lower), len(higher), len(swap)), verdict, number, "energy")


def locking(f) -> Claim:
    """Different pairs of the default model: the share of features that lock, by whether their two drives agree
    (angle below AGREE) or not (above DISAGREE), weighted by features, over every run. For the claim: shared
    features lock (LOCKS); against it: features whose drives disagree lock as often."""
    rows = [r for r in f.energy.select("lock_by_angle", variant="oscillator") if r["locked"] is not None]
    share = lambda keep: (sum(r["locked"] * r["features"] for r in rows if keep(r))  # noqa: E731
                          / sum(r["features"] for r in rows if keep(r)))
    agree, disagree = share(lambda r: r["angle_high"] <= AGREE), share(lambda r: r["angle_low"] >= DISAGREE)
    runs = len({r["run"] for r in rows})
    number = (f"different pairs: {100 * agree:.0f} % of features with agreeing drives lock, "
              f"{100 * disagree:.0f} % of those with drives {DISAGREE:.0f} degrees or more apart ({runs} models)")
    cells_for = int(agree >= LOCKS) + int(disagree < 0.05)
    verdict = ("locking follows how far apart the two drives start: mostly shared features lock, but not only "
               "they" if 0 < cells_for < 2 else "only shared features lock" if cells_for == 2 else
               "shared features do not lock more than others")
    return Claim("Only shared features lock", grade(cells_for, int(disagree >= agree), 2), verdict, number,
                 "energy")
