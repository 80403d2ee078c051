"""The fewest training icons (``make study-few``): the main models at m = 5 and 2 over five seeds on the test icons,
read beside the mechanism study's m = 95, 50 and 15 (``FewIcons``), and the generalisation claims of the findings page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .engine import SEEDS, Claim, Study, clear_above, and_, grade
from .mechanism import Mechanism
from .paper import MAIN
from .reading import Evidence, declared
from .stats import resolve
from .table import PM, TASKS, Table, comparison_table, percent, seeds_in_words

CHANCE = 0.5
STUDIES = {"few": Study((5, 2), SEEDS, MAIN, reference="oscillator", baselines=("difference", "concat"),
                        fidelity={"oscillator": "dynamics"},
                        about="the main models at m = 5 and 2, 5 seeds, on the test icons")}


@dataclass
class FewIcons:
    """The main models from many training icons to the fewest: m = 95, 50 and 15 from the mechanism study, m = 5 and 2
    from ``make study-few``. Both run the same defaults (the validation-chosen learning rate is the default for all
    three) on seeds 0-4 and score held-out test icons, so the splits line up in one table."""

    ev: Evidence  # both studies' runs of the few study's models, on its seeds
    study = "few"

    @classmethod
    def load(cls, folder: str | Path, mech: Mechanism) -> FewIcons:
        """Read FOLDER/runs.csv (make study-few) and add the mechanism study's runs of the same models."""
        few = Evidence.load(folder)
        main = [r for r in mech.main.runs if r["variant"] in declared(cls.study).variants]
        return cls(Evidence(main + few.runs, [], few.profile))

    @property
    def models(self) -> list[str]:
        found = {r["variant"] for r in self.ev.runs}
        return [m for m in declared(self.study).variants if m in found]

    @property
    def fewest(self) -> tuple[int, ...]:
        """The splits the few study adds to the mechanism study's."""
        return declared(self.study).splits

    def complete(self, m: int) -> bool:
        study = declared(self.study)
        return all(len(self.ev.by_seed(model, task, m)) == len(study.seeds)
                   for model in study.variants for task, _ in TASKS)

    def splits(self) -> list[int]:
        """The splits every model has finished (all seeds, both tasks), largest first."""
        return [m for m in sorted({r["m"] for r in self.ev.runs}, reverse=True) if self.complete(m)]

    @property
    def evidence(self) -> Evidence:
        """The finished splits alone, for ``plotting.evidence_accuracy``."""
        done = set(self.splits())
        return Evidence([r for r in self.ev.runs if r["m"] in done], [], self.ev.profile)

    def status(self) -> str:
        """One line: runs finished at the fewest splits against the plan, and their training time."""
        few = [r for r in self.ev.runs if r["m"] in self.fewest]
        done = {m: len({(r["variant"], r["seed"]) for r in few if r["m"] == m}) for m in self.fewest}
        hours = sum(r["wall_seconds"] for r in few) / 3600  # each task row carries its own stage's time
        planned = len(declared(self.study).variants) * len(declared(self.study).seeds)
        return (f"make study-few: {'; '.join(f'm = {m}: {n} of {planned} runs' for m, n in done.items())}"
                f"; {hours:.1f} h of training (1 thread per job)")

    def table(self, field: str = "test_accuracy") -> Table:
        """Accuracy (%) per task and model at every finished split: held-out icons, or ``train_accuracy``."""
        rows = [[short, model] + [percent(list(self.ev.by_seed(model, task, m, field).values())) for m in self.splits()]
                for task, short in TASKS for model in self.models]
        what = "held-out test icons" if field == "test_accuracy" else "fresh renderings of the training icons"
        return Table(["task", "model"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"Accuracy (%) on {what}, mean{PM}95 % half-width over "
                             f"{seeds_in_words(declared(self.study).seeds)} "
                             "(m = 95, 50, 15: mechanism study; m = 5, 2: make study-few); chance is 50 %")

    def comparisons(self) -> list[dict]:
        """Oscillator minus each baseline at the fewest splits, paired by seed; Holm within each task's family."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "other": other,
                       "differences": self.ev.paired("oscillator", other, task, m)}
                      for other in self.models if other != "oscillator" for m in self.splits() if m in self.fewest]
            out += resolve(family, "oscillator higher", "oscillator lower")
        return out

    def comparison_table(self) -> Table:
        return comparison_table(self.comparisons())


# ---- the claims the findings page quotes (``findings.Findings`` holds the studies they read)

def generalisation(f, task: str, m: int = 15) -> Claim:
    """Held-out accuracy of the oscillator model at every split (mechanism study and make study-few) against chance: a
    cell is for the claim when its 95 % interval lies above chance."""
    by_m = {k: list(f.few.ev.by_seed("oscillator", task, k).values()) for k in f.few.splits()}
    above = [k for k in by_m if clear_above(by_m[k], CHANCE)]
    top, low = max(by_m), min(by_m)
    number = (f"{percent(by_m[m])} % at m = {m} ({len(by_m[m])} seeds); {percent(by_m[top])} at m = {top}, "
              f"{percent(by_m[low])} at m = {low} (chance 50)")
    verdict = (f"above chance at every split from m = {top} down to m = {low}, falling with fewer icons"
               if len(above) == len(by_m) else
               f"above chance at m = {and_([str(k) for k in sorted(above, reverse=True)])} only" if above else
               "at chance")
    claim = "Generalises to new icons" if task == "same-different" else "Transfers to RMTS from frozen coherence"
    return Claim(claim, grade(len(above), 0, len(by_m)), verdict, number, "mechanism")
