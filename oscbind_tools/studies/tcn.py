"""What the encoder hands the oscillators (``make study-tcn``, then ``make study-tcn-test``): context normalisation over
the pair (TCN) for the oscillator model and the difference baseline, and three encoder-side candidates, at m = 15 on
validation icons, kept by the gap study's rule (``gap.kept``); then what was kept, on the test icons at every split,
paired by seed with the same models without it (the mechanism and few studies' runs, or ``tcn-reference``'s where those
do not reproduce on the machine that runs the test). ``Kept`` reads it back for the few-icons chapter.
"""

from __future__ import annotations

import json
from pathlib import Path

from dataclasses import dataclass

from .coupling import NO_J_OUT
from .engine import SEEDS, Spec, Study
from .gap import kept
from .reading import Evidence
from .stats import resolve
from .table import PM, TASKS, Table, percent, signed_points

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
MODELS = (("oscillator", {}), ("difference", {"bottleneck": "difference"}))  # what the test runs, with and without
SPLITS = (95, 50, 15, 5, 2)


def fold(m: int) -> dict:
    """m = 95 on disjoint 5-icon folds, as the mechanism study runs it."""
    return {"split": "folds"} if m == 95 else {}


def tcn_test_plan(study: Study) -> list[Spec]:
    """The oscillator model and the difference baseline, each with what the tcn study kept, at every split of the
    study on the test icons (m = 95 on disjoint 5-icon folds, as the mechanism study runs it); with TCN kept, also
    J_OUT = 0 with it at m = 50 and 15. Nothing kept: no job."""
    try:
        keep = json.loads(TCN_CHOICE.read_text())["kept"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: tcn-test needs the tcn study's choice in {TCN_CHOICE} ({type(err).__name__}); run "
                         "`make study-tcn` first") from None
    settings = {k: v for name in keep for k, v in TCN[name].items() if k != "bottleneck"}
    if not settings:
        return []
    label = " + " + ", ".join(dict.fromkeys(name.split(" + ", 1)[-1] for name in keep))  # "oscillator + TCN" -> TCN
    specs = [Spec(f"{name}{label}", m, seed, {**over, **settings, **fold(m)})
             for m in study.splits for seed in study.seeds for name, over in MODELS]
    if settings.get("context_norm"):
        specs += [Spec(f"J_OUT = 0{label}", m, seed, {**NO_J_OUT, **settings})
                  for m in (50, 15) for seed in study.seeds]
    return specs


def reference_plan(study: Study) -> list[Spec]:
    """The test's references rerun: both models without the kept setting, at every split and seed of the test."""
    return [Spec(name, m, seed, {**over, **fold(m)})
            for m in study.splits for seed in study.seeds for name, over in MODELS]


STUDIES = {
    "tcn": Study((15,), SEEDS, TCN, reference="oscillator", holdout="validation", references=TCN_REFERENCES,
                 after=lambda rows: kept(rows, STUDIES["tcn"]),
                 about="context normalisation over the pair and three encoder-side candidates at m = 15, on "
                       "validation icons"),
    "tcn-test": Study(SPLITS, SEEDS, plan=tcn_test_plan,
                      about="what the tcn study kept, for both models at every split on the test icons"),
    "tcn-reference": Study(SPLITS, SEEDS, plan=reference_plan,
                           about="the test's references rerun, where the committed ones do not reproduce here"),
}


@dataclass
class Kept:
    """The tcn-test study read back beside its references: each model with the kept setting minus without it, paired
    by seed over the seeds whose two runs were made on one CPU model; Holm within each task over both models at
    every split. With TCN kept, J_OUT's effect with it (oscillator + TCN minus J_OUT = 0 + TCN) at m = 50 and 15."""

    test: list[dict]
    references: list[dict]  # the same models without the kept setting, same splits and seeds
    label: str  # what was kept, as the test's variants name it (" + TCN")

    @classmethod
    def load(cls, results: str | Path) -> Kept:
        """RESULTS/tcn-test, and its references: RESULTS/tcn-reference where it ran, else the mechanism study's
        (m = 95, 50, 15) and the few study's (m = 5, 2) runs."""
        results = Path(results)
        test = Evidence.load(results / "tcn-test").runs
        rerun = results / "tcn-reference"
        refs = (Evidence.load(rerun).runs if (rerun / "runs.csv").exists() else
                Evidence.load(results / "mechanism").runs + Evidence.load(results / "few").runs)
        label = next(r["variant"] for r in test if r["variant"].startswith("oscillator")).removeprefix("oscillator")
        return cls(test, [r for r in refs if r["variant"] in dict(MODELS)], label)

    @staticmethod
    def _by(rows: list[dict], variant: str, task: str, m: int) -> dict[int, dict]:
        return {r["seed"]: r for r in rows if (r["variant"], r["task"], r["m"]) == (variant, task, m)}

    def paired(self, model: str, task: str, m: int) -> list[float]:
        """With the kept setting minus without, per seed, over the seeds whose two runs share a CPU model."""
        a, b = self._by(self.test, model + self.label, task, m), self._by(self.references, model, task, m)
        return [a[s]["test_accuracy"] - b[s]["test_accuracy"] for s in sorted(a)
                if s in b and a[s].get("cpu") == b[s].get("cpu")]

    def comparisons(self) -> list[dict]:
        out = []
        for task, short in TASKS:
            family = [{"task": short, "model": model, "m": m, "differences": self.paired(model, task, m)}
                      for model, _ in MODELS for m in SPLITS]
            out += resolve(family, "higher with it", "lower with it", 2)
        return out

    def j_out(self) -> list[dict]:
        """J_OUT's effect with the kept setting: oscillator with it minus J_OUT = 0 with it, Holm over the splits."""
        out = []
        for task, short in TASKS:
            family = []
            for m in (50, 15):
                a = self._by(self.test, "oscillator" + self.label, task, m)
                b = self._by(self.test, "J_OUT = 0" + self.label, task, m)
                family.append({"task": short, "m": m, "differences": [a[s]["test_accuracy"] - b[s]["test_accuracy"]
                                                                      for s in sorted(a) if s in b]})
            out += resolve(family, "J_OUT helps", "J_OUT hurts", 2)
        return out

    def accuracy(self, model: str, task: str, m: int, kept: bool) -> list[float]:
        rows = self.test if kept else self.references
        return [r["test_accuracy"] for r in self._by(rows, model + (self.label if kept else ""), task, m).values()]

    def table(self) -> Table:
        """Every split, both models, with and without the kept setting, and the paired difference with Holm's p."""
        rows = [[c["model"], c["task"], c["m"],
                 percent(self.accuracy(c["model"], dict((s, t) for t, s in TASKS)[c["task"]], c["m"], False)),
                 percent(self.accuracy(c["model"], dict((s, t) for t, s in TASKS)[c["task"]], c["m"], True)),
                 signed_points(c["differences"]), f"{c['holm']:.3f}", c["said"]] for c in self.comparisons()]
        return Table(["model", "task", "m", "without (%)", f"with{self.label.removeprefix(' +')} (%)",
                      "with minus without (points)", "Holm p", "after Holm"], rows,
                     caption=f"The kept setting on the test icons: held-out accuracy, mean{PM}95 % half-width over 5 "
                             "seeds, and the paired difference; Holm within each task over both models at every split")

