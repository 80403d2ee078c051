"""The mechanism study (``make study-validation``, then ``make study-mechanism``): does the oscillator bottleneck
generalise better than simpler ones, and does its coupling matter? Seven models share the data, the CNN, the trainer
and the budget; each trains at the learning rate it chose on validation icons (the validation study and its rule,
``choose``); five seeds at m = 15, 50 and 95 (m = 95 on disjoint 5-icon folds), then folds 5-19 for the oscillator and
the strongest baseline. The reader ``Mechanism``, the accuracy figure, and the baselines claim of the findings page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..plotting import readable
from .engine import SEEDS, Claim, Spec, Study, and_, grade, mean
from .reading import Evidence, declared
from .stats import holm, interval95, paired_p, resolve
from .table import PM, TASKS, Table, comparison_table, percent, seeds_in_words, signed_points

# Does binding through coupling matter? The poster's model against variants that keep the encoder and
# budget and take the coupling away step by step, and against relational baselines.
MECHANISM = {  # in the order the tables show them: the model, its coupling taken away step by step, the baselines
    "oscillator": {},
    "J_OUT = 0": {"learn_j_out": False},
    "no coupling": {"learn_j_in": False, "learn_j_out": False, "learn_omega": False},
    "comparator": {"bottleneck": "comparator"},
    "CoRelNet": {"bottleneck": "corelnet"},
    "difference": {"bottleneck": "difference"},
    "concat": {"bottleneck": "concat"},
}

# The validation protocol: every model tries the same grid on validation icons carved out of the training
# icons of TUNE_M (holdout = "validation"); the final runs use each model's best setting.
GRID = {"lr 1e-3": {"lr": 1e-3}, "lr 3e-3": {"lr": 3e-3}}

TUNE_M, TUNE_SEEDS = 50, (0,)

CHOICE = Path("results/validation/choice.json")  # what the validation profile chose, read by the mechanism profile
POWER_SEEDS = tuple(range(5, 20))  # m = 95 folds 5..19 for the oscillator and the strongest baseline
# The baselines: every model that replaces the oscillators' bottleneck (not the oscillator or its ablations)
MECHANISM_BASELINES = tuple(name for name, over in MECHANISM.items() if "bottleneck" in over)


def chosen(choice: Path = CHOICE) -> tuple[dict[str, dict], str]:
    """(each model's chosen GRID setting, the strongest baseline) as the validation profile recorded them."""
    try:
        saved = json.loads(Path(choice).read_text())
        return {name: GRID[label] for name, label in saved["setting"].items()}, saved["strongest_baseline"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: mechanism needs the validation profile's choices in {choice} "
                         f"({type(err).__name__}); run `make study-validation` first") from None

RULE = ("per model, the grid setting with the best mean validation accuracy (same/different and RMTS averaged); "
        "the strongest baseline is the non-oscillator model whose chosen setting scores best")

def choose(rows: list[dict], baselines: tuple[str, ...]) -> dict:
    """The validation rule: per model, the GRID setting with the best mean validation accuracy, same/different
    and RMTS averaged (ties: the first setting); the strongest baseline is the one of ``baselines`` whose
    chosen setting scores best. Reads only validation icons."""
    scores: dict[str, dict[str, list]] = {}
    for r in rows:
        name, label = r["variant"].split(" | ")
        scores.setdefault(name, {}).setdefault(label, []).append(r["test_accuracy"])
    best = {name: max(GRID, key=lambda lb: sum(by[lb]) / len(by[lb]) if by.get(lb) else -1)
            for name, by in scores.items()}
    value = {name: sum(scores[name][lb]) / len(scores[name][lb]) for name, lb in best.items()}
    found = [n for n in baselines if n in value]
    return {"setting": best, "validation_accuracy": value, "rule": RULE,
            "strongest_baseline": max(found, key=value.get) if found else "difference",
            "grid": {k: v for k, v in GRID.items()}}

def validation_plan(study: Study) -> list[Spec]:
    """Every model at every GRID setting on validation icons."""
    return [Spec(f"{name} | {label}", m, seed, {**over, **setting, "holdout": "validation"})
            for m in study.splits for seed in study.seeds for name, over in study.variants.items()
            for label, setting in GRID.items()]

def mechanism_plan(study: Study, choice: Path | None = None) -> list[Spec]:
    """Every model at its validation-chosen setting, m = 95 on disjoint 5-icon folds, then more folds for the oscillator
    and the strongest baseline (a smoke study: no choice, one more fold)."""
    settings, strongest = chosen(choice or CHOICE) if not study.smoke else ({}, "difference")
    missing = [name for name in study.variants if name not in settings and not study.smoke]
    if missing:  # a model the validation study never tuned would train at a default no rule chose
        raise ValueError(f"profile: mechanism: the validation choice in {choice or CHOICE} has no setting for "
                         f"{', '.join(missing)}; run `make study-validation` again (it tunes every model of the study)")
    fold = lambda m: {"split": "folds"} if m == 95 else {}  # noqa: E731  m = 95: 20 disjoint 5-icon folds
    specs = [Spec(name, m, seed, {**over, **settings.get(name, {}), **fold(m)})
             for m in study.splits for seed in study.seeds for name, over in study.variants.items()]
    power = POWER_SEEDS if not study.smoke else (1,)
    return specs + [Spec(name, 95, seed, {**study.variants[name], **settings.get(name, {}), **fold(95)})
                    for seed in power for name in (study.reference, strongest)]


STUDIES = {
    "validation": Study((TUNE_M,), TUNE_SEEDS, MECHANISM, validation_plan, "oscillator", MECHANISM_BASELINES,
                        holdout="validation", after=lambda rows: choose(rows, MECHANISM_BASELINES),
                        about="the mechanism study's 7 models x 2 learning rates at m = 50, on validation icons"),
    "validation-smoke": Study((TUNE_M,), (0,), MECHANISM, validation_plan, "oscillator", MECHANISM_BASELINES,
                              holdout="validation", smoke=True, after=lambda rows: choose(rows, MECHANISM_BASELINES),
                              about="the validation study with seconds-long trainings"),
    "mechanism": Study((15, 50, 95), SEEDS, MECHANISM, mechanism_plan, "oscillator", MECHANISM_BASELINES,
                       about="seven bottlenecks at settings chosen on validation icons, 3 splits x 5 seeds "
                             "(20 folds at m = 95)"),
    "mechanism-smoke": Study((15, 95), (0,), MECHANISM, mechanism_plan, "oscillator", MECHANISM_BASELINES,
                             smoke=True, about="the mechanism study with seconds-long trainings"),
}


@dataclass
class Mechanism:
    """The mechanism study (``make study-mechanism``) and the validation runs that chose its settings
    (``make study-validation``)."""

    ev: Evidence
    choice: dict
    validation: list[dict]

    @classmethod
    def load(cls, folder: str | Path, validation: str | Path) -> Mechanism:
        """Read RESULTS/runs.csv of the mechanism profile, and VALIDATION/runs.csv and choice.json."""
        validation = Path(validation)
        return cls(Evidence.load(folder), json.loads((validation / "choice.json").read_text()),
                   Evidence.load(validation).runs)

    study = "mechanism"

    @property
    def order(self) -> list[str]:
        """The study's models in the order its declaration gives (the poster's model, its coupling taken away step by
        step, then the baselines from the most to the least relational)."""
        return list(declared(self.study).variants)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds every model ran (at m = 95 the test folds); more folds for two models come on top."""
        return declared(self.study).seeds

    @property
    def models(self) -> list[str]:
        found = {r["variant"] for r in self.ev.runs}
        return [m for m in self.order if m in found]

    @property
    def main(self) -> Evidence:
        """The runs every model made (the declared seeds; at m = 95 those folds), as an Evidence for the figures."""
        return Evidence([r for r in self.ev.runs if r["seed"] in self.seeds], self.ev.fidelity, self.ev.profile)

    def status(self) -> str:
        """One line: finished runs per split against the plan (7 models x 5 seeds; m = 95 also 15 more folds x 2)."""
        parts = []
        for m in (15, 50, 95):
            done = len({(r["variant"], r["seed"]) for r in self.ev.runs if r["m"] == m})
            planned = len(self.order) * len(self.seeds) + (2 * len(POWER_SEEDS) if m == 95 else 0)
            parts.append(f"m = {m}: {done} of {planned} runs")
        commits = sorted({r["git_commit"][:12] for r in self.ev.runs})
        hours = sum(float(r["wall_seconds"]) for r in self.ev.runs) / 3600
        return (f"mechanism study: {'; '.join(parts)}; {hours:.1f} h of training in all (1 thread per job); "
                f"commits {commits}; torch {sorted({r['torch'] for r in self.ev.runs})}")

    def complete(self, m: int) -> bool:
        """Whether every model ran every main seed at split m."""
        return all(len(self.scores(model, task, m)) == len(self.seeds) for model in self.order for task, _ in TASKS)

    @property
    def ablations(self) -> list[str]:
        """The oscillator model with part of it taken away, as declared: every model that is neither the reference nor
        a baseline."""
        study = declared(self.study)
        return [m for m in self.models if m != study.reference and m not in study.baselines]

    @property
    def baselines(self) -> list[str]:
        study = declared(self.study)
        return [m for m in self.models if m in study.baselines]

    def resolved(self, others: list[str]) -> str:
        """What the planned comparisons with these models resolve, in words: each resolved one by model, direction,
        task and splits, then the models with nothing resolved."""
        rows = [c for c in self.comparisons() if c["other"] in others]
        parts, silent = [], []
        for other in others:
            won = [c for c in rows if c["other"] == other and c["said"] != "not resolved"]
            if not won:
                silent.append(other)
            for said, word in (("oscillator higher", "above"), ("oscillator lower", "below")):
                for task in dict.fromkeys(c["task"] for c in won if c["said"] == said):
                    cells = [c for c in won if c["said"] == said and c["task"] == task]
                    parts.append(f"resolved {word} {other} on {task} at m = {and_([str(c['m']) for c in cells])} ("
                                 + ", ".join(signed_points(c["differences"]) for c in cells) + " points)")
        if silent:
            parts.append(f"not resolved from {and_(silent)} at any split on either task")
        return "; ".join(parts)

    @property
    def strongest(self) -> str:
        return self.choice["strongest_baseline"]

    def splits(self) -> list[int]:
        """The splits every model has finished (all main seeds, both tasks): the tables show only these."""
        return [m for m in sorted({r["m"] for r in self.ev.runs}) if self.complete(m)]

    def scores(self, model: str, task: str, m: int, seeds=(), field: str = "test_accuracy") -> dict[int, float]:
        """Held-out accuracy (or another column) per seed (at m = 95 the seed is the test fold): the declared seeds
        unless ``seeds`` says which (None: every seed run)."""
        seeds = self.seeds if seeds == () else seeds
        return {s: a for s, a in self.ev.by_seed(model, task, m, field).items() if seeds is None or s in seeds}

    def paired(self, a: str, b: str, task: str, m: int, seeds=()) -> list[float]:
        mine, theirs = self.scores(a, task, m, seeds), self.scores(b, task, m, seeds)
        return [mine[s] - theirs[s] for s in sorted(mine) if s in theirs]

    def validation_table(self) -> Table:
        """Every model's grid on validation icons, and the setting the rule chose."""
        labels = sorted({r["variant"].split(" | ")[1] for r in self.validation})
        rows = []
        for model in self.order:
            row = [model]
            for label in labels:
                for task, _ in TASKS:
                    row.append(percent([r["test_accuracy"] for r in self.validation
                                        if r["variant"] == f"{model} | {label}" and r["task"] == task]))
            rows.append(row + [self.choice["setting"].get(model, "")])
        header = ["model"] + [f"{label}: {short}" for label in labels for _, short in TASKS] + ["chosen"]
        m = sorted({r["m"] for r in self.validation})
        n_val = sorted({r.get("n_test_icons", "") for r in self.validation})
        return Table(header, rows,
                     caption=f"Validation accuracy (%), m = {', '.join(map(str, m))} training icons of which "
                             f"{', '.join(map(str, n_val))} held out for validation, "
                             f"{seeds_in_words(r['seed'] for r in self.validation)}; the test icons were not used")

    def accuracy_table(self) -> Table:
        rows = []
        for task, short in TASKS:
            for model in self.models:
                rows.append([short, model]
                            + [percent(list(self.scores(model, task, m).values())) for m in self.splits()])
        return Table(["task", "model"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"Held-out test accuracy (%), mean{PM}95 % half-width over {seeds_in_words(self.seeds)} "
                             "(m = 95: test folds 0-4); every model at its validation-chosen setting")

    def fit_table(self, m: int = 95) -> Table:
        """Accuracy on training icons and RMTS head steps: is any model under-fit?"""
        rows = []
        for model in self.models:
            pick = lambda task, key: [float(r[key]) for r in self.ev.runs  # noqa: E731
                                      if r["variant"] == model and r["task"] == task and r["m"] == m
                                      and r["seed"] in self.seeds]
            steps = pick("rmts", "steps")
            rows.append([model, percent(pick("same-different", "train_accuracy")),
                         percent(pick("rmts", "train_accuracy")),
                         f"{min(steps):.0f}-{max(steps):.0f}" if steps else "n/a"])
        return Table(["model", "same/different, training icons", "RMTS, training icons", "RMTS head steps"], rows,
                     caption=f"m = {m}: accuracy on fresh renderings of the training icons (%), and how many steps the "
                             "RMTS head ran before its training accuracy stopped rising")

    def comparisons(self, others: tuple[str, ...] | None = None) -> list[dict]:
        """Oscillator minus every other model (or only ``others``), per task and split, paired by seed; Holm within each
        task's family. The planned family is every other model; a narrower one is exploratory."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "other": other, "differences": self.paired("oscillator", other, task, m)}
                      for other in self.models if other != "oscillator" and (others is None or other in others)
                      for m in self.splits()]
            out += resolve(family, "oscillator higher", "oscillator lower")
        return out

    def comparison_table(self) -> Table:
        return comparison_table(self.comparisons())

    def power(self) -> list[dict]:
        """m = 95 over every test fold both the oscillator and the strongest baseline ran (20 disjoint folds): a
        planned test of its own, Holm over its two tasks ("holm"), and pooled into each task's family of
        comparisons ("pooled_holm")."""
        out = []
        for task, short in TASKS:
            osc, base = self.scores("oscillator", task, 95, None), self.scores(self.strongest, task, 95, None)
            d = self.paired("oscillator", self.strongest, task, 95, None)
            out.append({"task": short, "oscillator": list(osc.values()), "baseline": list(base.values()),
                        "differences": d, "p": paired_p(d)})
        for row, adj in zip(out, holm([r["p"] for r in out])):
            row["holm"] = adj
        comparisons = self.comparisons()
        for row in out:  # the stricter reading: this test pooled into its task's family of comparisons
            row["pooled_holm"] = holm([c["p"] for c in comparisons if c["task"] == row["task"]] + [row["p"]])[-1]
        return out

    def power_table(self) -> Table:
        rows = []
        for r in self.power():
            five = self.paired("oscillator", self.strongest,
                               {"same/different": "same-different"}.get(r["task"], "rmts"), 95)
            rows.append([r["task"], len(r["differences"]), percent(r["oscillator"]), percent(r["baseline"]),
                         signed_points(r["differences"]), f"{r['holm']:.3f}", f"{200 * interval95(five)[1]:.1f}",
                         f"{200 * interval95(r['differences'])[1]:.1f}"])
        return Table(["task", "folds", "oscillator", self.strongest, "oscillator minus baseline (points)",
                      "Holm p (family of 2)", "CI width, 5 folds (points)", "CI width, all folds (points)"], rows,
                     caption="m = 95 on disjoint 5-icon test folds that together cover all 100 icons: accuracy (%) and "
                             f"paired difference, mean{PM}95 % half-width over folds")


def accuracy_figure(evidence, models: list[str]) -> Figure:
    """Held-out accuracy per split for each model, mean and 95 % interval over seeds, one panel per task.

    ``evidence`` is a ``studies.Evidence``.
    """
    splits, seeds = evidence.splits(), evidence.seeds
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    lowest = 40.0  # the axis starts here unless an interval reaches lower (near chance at few training icons)
    for ax, task in zip(axes, ("same-different", "rmts")):
        for k, model in enumerate(models):
            stats = [interval95(evidence.accuracies(model, task, m)) for m in splits]
            lowest = min([lowest] + [100 * (mean - (half if half == half else 0)) - 3 for mean, half, n in stats if n])
            xs = [i + (k - 1) * 0.12 for i in range(len(splits))]
            ax.errorbar(xs, [100 * s[0] for s in stats], yerr=[100 * s[1] for s in stats], fmt="o-", capsize=3,
                        label=model)
        ax.set_xticks(range(len(splits)), [str(m) for m in splits])
        ax.set_xlabel("training icons m (the other 100 - m held out)", fontsize=8)
        ax.set_title(f"{task}: held-out accuracy, mean and 95 % interval over {len(seeds)} seeds", fontsize=9)
        ax.axhline(50, color="grey", lw=0.6, ls=":")
    axes[0].set_ylim(lowest, 101)  # shared by both panels
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower left")
    return readable(fig)


def five_seed(results: str | Path, task: str, m: int, variant: str = "oscillator") -> str | None:
    """The mechanism study's held-out accuracy of a model at split m ("93.2 ± 0.9 % over 5 seeds"), for a one-seed
    chapter to set beside its own number; None where the study did not run that split."""
    folder = Path(results)
    if not (folder / "mechanism" / "runs.csv").exists():
        return None
    mech = Mechanism.load(folder / "mechanism", folder / "validation")
    scores = mech.scores(variant, task, m)
    return f"{percent(list(scores.values()))} % over {len(scores)} seeds" if len(scores) > 1 else None


# ---- the claim the findings page quotes (``findings.Findings`` holds the studies it reads)

def baselines(f) -> Claim:
    """The oscillator against the baselines of the mechanism study (its planned Holm family within each task), and
    the separately planned 20-fold test at m = 95 against the strongest baseline."""
    cells = [c for c in f.mech.comparisons() if c["other"] in f.mech.baselines]
    power = f.mech.power()
    won = [c for c in cells if c["said"] == "oscillator higher"]
    lost = [c for c in cells if c["said"] == "oscillator lower"]
    narrowly = [p for p in power if p["holm"] < 0.05 and sum(p["differences"]) > 0]
    against = sorted({c["other"] for c in won})
    where = "; ".join(f"{other} on {and_(sorted({c['task'] for c in won if c['other'] == other}))} at m = "
                      f"{and_([str(c['m']) for c in won if c['other'] == other])}" for other in against)
    verdict = (f"resolved against {where} (no relational bottleneck)" if won else "no comparison resolved")
    if narrowly:
        lead = and_([f"{100 * mean(p['differences']):.1f} ({p['task']})" for p in narrowly])
        verdict += (f", and by {lead} points against the {f.mech.strongest} over 20 folds at m = 95; not "
                    f"resolved against the other per-feature baselines")
    if lost:
        verdict += f"; resolved the other way against {and_(sorted({c['other'] for c in lost}))}"
    margin = f.authors.margin()
    verdict += (f". Under the authors' protocol their baseline comes within {margin['ours']:.1f} points of their "
                f"model ({margin['theirs']:.1f} in their own runs)")
    best = max(won, key=lambda c: sum(c["differences"]), default=None)
    number = (f"{best['task']} {signed_points(best['differences'])} points over {best['other']} at m = {best['m']} "
              f"({len(best['differences'])} seeds)" if best else "no comparison resolved")
    number += "".join(f"; {p['task']} {signed_points(p['differences'])} over the {f.mech.strongest} at m = 95 "
                      f"({len(p['differences'])} folds)" for p in narrowly[:1])
    return Claim("Beats baselines", grade(len(won) + len(narrowly), len(lost), len(cells) + len(power)), verdict,
                 number, "mechanism")
