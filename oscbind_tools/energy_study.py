"""The energy study read back (``make energy``, ``results/energy/``): descent at every Euler step, the
partner-swap gap and locking, one row per run and setting, with the energy chapter's tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .stats import median
from .studies import read_table
from .table import Table, percent, signed



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
    """The energy profile's results (``make energy``): one row per run and setting in each table."""

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
