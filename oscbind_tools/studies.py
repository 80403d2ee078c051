"""Reading the evidence studies back: each committed study (``results/<study>/``) as an object whose methods give
the chapters their tables and paired comparisons.

* ``collect`` reads every ``metrics.json`` under a folder (the sweep's runs, or the CLI's).
* ``Evidence.load`` reads one study's ``runs.csv`` and ``fidelity.csv`` with their types.
* ``EnergyStudy``, ``Mechanism``, ``FewIcons`` and ``Remedies`` read the energy, mechanism, fewest-icons and
  few-icon remedies studies; ``protocols`` reads the authors' protocol, the ladder and the coupling study.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .stats import holm, interval95, median, paired_p, resolve
from .table import PM, TASKS, Table, comparison_table, percent, signed, signed_points

REQUIRED = {"task": str, "m": int, "seed": int, "test_accuracy": (int, float)}


def collect(root: str | Path) -> list[dict]:
    """All readable metrics.json files below root, sorted by task, then m (descending), then seed.

    A file that is not JSON, or lacks a required field of the right type, is skipped with a warning
    on stderr naming it; the others still make the table.
    """
    rows = []
    for path in sorted(Path(root).rglob("metrics.json")):
        try:
            row = json.loads(path.read_text())
            bad = [k for k, t in REQUIRED.items() if not isinstance(row, dict) or not isinstance(row.get(k), t)
                   or isinstance(row.get(k), bool)] if isinstance(row, dict) else list(REQUIRED)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            row, bad = None, [f"unreadable ({type(err).__name__})"]
        if bad:
            print(f"warning: skipped {path}: {', '.join(bad)} missing or malformed", file=sys.stderr)
            continue
        rows.append(row | {"path": str(path.parent)})
    return sorted(rows, key=lambda r: (r["task"], -r["m"], r["seed"]))


def _number(text: str):
    """A CSV cell as int, float or None (empty); text otherwise."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


@dataclass
class Evidence:
    """The evidence study's committed results: one row per (run, task), fidelity rows, the profile's record."""

    runs: list[dict]
    fidelity: list[dict]
    profile: dict

    @classmethod
    def load(cls, folder: str | Path) -> Evidence:
        """Read RESULTS/runs.csv, fidelity.csv and profile.json with numbers as numbers."""
        folder = Path(folder)
        with open(folder / "runs.csv", newline="") as f:
            runs = [dict(r, m=int(r["m"]), seed=int(r["seed"]), test_accuracy=float(r["test_accuracy"]),
                         train_accuracy=float(r["train_accuracy"]), wall_seconds=float(r["wall_seconds"]))
                    for r in csv.DictReader(f)]
        with open(folder / "fidelity.csv", newline="") as f:
            fidelity = [{k: (v if k in ("run", "variant") else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
        return cls(runs, fidelity, json.loads((folder / "profile.json").read_text()))

    @property
    def seeds(self) -> list[int]:
        return sorted({r["seed"] for r in self.runs})

    def splits(self, variant: str = "oscillator") -> list[int]:
        """The splits m a variant ran at, largest first."""
        return sorted({r["m"] for r in self.runs if r["variant"] == variant}, reverse=True)

    def by_seed(self, variant: str, task: str, m: int, field: str = "test_accuracy") -> dict[int, float]:
        """Held-out accuracy (or another column) of each seed of one variant, task and split."""
        return {r["seed"]: r[field] for r in self.runs
                if r["variant"] == variant and r["task"] == task and r["m"] == m}

    def accuracies(self, variant: str, task: str, m: int) -> list[float]:
        return list(self.by_seed(variant, task, m).values())

    def paired(self, a: str, b: str, task: str, m: int) -> list[float]:
        """Per-seed differences a - b over the seeds both ran (same split, evaluation sets and CNN start)."""
        mine, theirs = self.by_seed(a, task, m), self.by_seed(b, task, m)
        return [mine[s] - theirs[s] for s in mine if s in theirs]

    def fidelity_of(self, variant: str, key: str, m: int | None = None) -> list[float]:
        """One fidelity column of a variant (at one split, or all)."""
        return [f[key] for f in self.fidelity if f["variant"] == variant and (m is None or f["m"] == m)]

    def provenance(self) -> str:
        """One line: how many runs, seeds, the last profile run, package versions and commits."""
        p = self.profile
        commits = sorted({r["git_commit"][:12] + ("+dirty" if r["git_commit"].endswith("+dirty") else "") for r in self.runs})
        return (f"{len(self.runs)} rows from {len({r['run'] for r in self.runs})} runs, seeds {self.seeds}; profile "
                f"{p['profile']!r}, {p['jobs']} jobs, last run {p['wall_seconds'] / 3600:.2f} h with {p['workers']} "
                f"workers x {p['threads']} thread(s); package {sorted({r['version'] for r in self.runs})}, commits {commits}")


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
        """Read RESULTS/{descent,swap,locking,lock_by_angle}.csv, curves.json and runs.csv, numbers as numbers."""
        folder = Path(folder)

        def rows(name: str) -> list[dict]:
            with open(folder / f"{name}.csv", newline="") as f:
                return [{k: _number(v) if k not in ("run", "variant", "dynamics", "start", "task") else v for k, v in r.items()}
                        for r in csv.DictReader(f)]

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
            settings = list(dict.fromkeys((r["dynamics"], r["gamma"], int(r["T"])) for r in self.descent if r["variant"] == v))
            for kind, gamma, T in settings:
                rows_here = self.select("descent", variant=v, dynamics=kind, gamma=gamma, T=T)
                strict, tolerant = [r for r in rows_here if r["rtol"] == 0], [r for r in rows_here if r["rtol"] > 0]
                rows.append([SHORT.get(v, v), f"{gamma:g}", T, f"{gamma * T:g}" + (" (trained)" if kind == "trained" else ""),
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
                             signed([r["paired_d"] for r in sel], digits=2), percent([r["share_same_lower"] for r in sel]),
                             signed([r["drive"] for r in sel]), signed([r["within"] for r in sel]),
                             signed([r["between"] for r in sel]), f"{len(sel)} x {int(sel[0]['groups'])}"])
        return Table(["variant", "dynamics", "same - different per pair", "paired d", "same lower (% of groups)",
                      "drive", "J_IN", "J_OUT", "runs x groups"], rows,
                     caption="Partner-swap energy gap at t = T: [E(a,a') + E(b,b') - E(a,b') - E(b,a')] / 2 per group of two "
                             "held-out icons, mean ± 95 % half-width over runs (negative: same pairs settle lower); "
                             "trained: the model's own step for T = 25 steps; converged: γ = 0.05 for 1,000 steps")

    def locking_table(self) -> Table:
        rows = [[SHORT.get(v, v), start, percent([r["locked_same"] for r in sel]), percent([r["locked_different"] for r in sel]),
                 len(sel)]
                for v in self.variants for start in ("shared", "independent")
                if (sel := [r for r in self.locking if r["variant"] == v and r["start"] == start])]
        return Table(["variant", "start phases", "locked, same pairs (%)", "locked, different pairs (%)", "runs"], rows,
                     caption="Share of features whose two oscillators end within 30 degrees, held-out pairs, mean ± 95 % "
                             "half-width over runs")


# The mechanism study's models in the order the tables show them: the poster's model, its coupling taken
# away step by step, then the baselines from the most to the least relational.
MECHANISM_ORDER = ("oscillator", "J_OUT = 0", "no coupling", "comparator", "CoRelNet", "difference", "concat")


MAIN_SEEDS = (0, 1, 2, 3, 4)  # the seeds every model ran; m = 95 adds folds 5..19 for two models only


@dataclass
class Mechanism:
    """The mechanism study (``make mechanism``) and the validation runs that chose its settings (``make validation``)."""

    ev: Evidence
    choice: dict
    validation: list[dict]

    @classmethod
    def load(cls, folder: str | Path, validation: str | Path) -> Mechanism:
        """Read RESULTS/runs.csv of the mechanism profile, and VALIDATION/runs.csv and choice.json."""
        validation = Path(validation)
        return cls(Evidence.load(folder), json.loads((validation / "choice.json").read_text()),
                   Evidence.load(validation).runs)

    @property
    def models(self) -> list[str]:
        found = {r["variant"] for r in self.ev.runs}
        return [m for m in MECHANISM_ORDER if m in found]

    @property
    def main(self) -> Evidence:
        """The runs every model made (seeds 0-4; at m = 95 folds 0-4), as an Evidence for the figures."""
        return Evidence([r for r in self.ev.runs if r["seed"] in MAIN_SEEDS], self.ev.fidelity, self.ev.profile)

    def status(self) -> str:
        """One line: finished runs per split against the plan (7 models x 5 seeds; m = 95 also 15 more folds x 2)."""
        parts = []
        for m in (15, 50, 95):
            done = len({(r["variant"], r["seed"]) for r in self.ev.runs if r["m"] == m})
            planned = len(MECHANISM_ORDER) * len(MAIN_SEEDS) + (2 * 15 if m == 95 else 0)
            parts.append(f"m = {m}: {done} of {planned} runs")
        commits = sorted({r["git_commit"][:12] for r in self.ev.runs})
        hours = sum(float(r["wall_seconds"]) for r in self.ev.runs) / 3600
        return (f"mechanism study: {'; '.join(parts)}; {hours:.1f} h of training in all (1 thread per job); "
                f"commits {commits}; torch {sorted({r['torch'] for r in self.ev.runs})}")

    def complete(self, m: int) -> bool:
        """Whether every model ran every main seed at split m."""
        return all(len(self.scores(model, task, m)) == len(MAIN_SEEDS) for model in MECHANISM_ORDER for task, _ in TASKS)

    def resolved(self, others: tuple[str, ...]) -> list[str]:
        """The comparisons with these models that Holm's correction resolves, as phrases for the text."""
        return [f"{c['other']} on {c['task']} at m = {c['m']} ({signed_points(c['differences'])} points, "
                f"Holm p = {c['holm']:.3f}, {c['said']})" for c in self.comparisons()
                if c["other"] in others and c["said"] != "not resolved"]

    @property
    def strongest(self) -> str:
        return self.choice["strongest_baseline"]

    def splits(self) -> list[int]:
        """The splits every model has finished (all main seeds, both tasks): the tables show only these."""
        return [m for m in sorted({r["m"] for r in self.ev.runs}) if self.complete(m)]

    def scores(self, model: str, task: str, m: int, seeds=MAIN_SEEDS, field: str = "test_accuracy") -> dict[int, float]:
        """Held-out accuracy (or another column) per seed (at m = 95 the seed is the test fold)."""
        return {s: a for s, a in self.ev.by_seed(model, task, m, field).items() if seeds is None or s in seeds}

    def paired(self, a: str, b: str, task: str, m: int, seeds=MAIN_SEEDS) -> list[float]:
        mine, theirs = self.scores(a, task, m, seeds), self.scores(b, task, m, seeds)
        return [mine[s] - theirs[s] for s in sorted(mine) if s in theirs]

    def validation_table(self) -> Table:
        """Every model's grid on validation icons, and the setting the rule chose."""
        labels = sorted({r["variant"].split(" | ")[1] for r in self.validation})
        rows = []
        for model in MECHANISM_ORDER:
            row = [model]
            for label in labels:
                for task, _ in TASKS:
                    row.append(percent([r["test_accuracy"] for r in self.validation
                                        if r["variant"] == f"{model} | {label}" and r["task"] == task]))
            rows.append(row + [self.choice["setting"].get(model, "")])
        header = ["model"] + [f"{label}: {short}" for label in labels for _, short in TASKS] + ["chosen"]
        m = sorted({r["m"] for r in self.validation})
        n_val = sorted({r.get("n_test_icons", "") for r in self.validation})
        return Table(header, rows, caption=f"Validation accuracy (%), m = {', '.join(map(str, m))} training icons of which "
                                           f"{', '.join(map(str, n_val))} held out for validation, seeds "
                                           f"{sorted({r['seed'] for r in self.validation})}; the test icons were not used")

    def accuracy_table(self) -> Table:
        rows = []
        for task, short in TASKS:
            for model in self.models:
                rows.append([short, model] + [percent(list(self.scores(model, task, m).values())) for m in self.splits()])
        return Table(["task", "model"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"Held-out test accuracy (%), mean{PM}95 % half-width over seeds {list(MAIN_SEEDS)} "
                             "(m = 95: test folds 0-4); every model at its validation-chosen setting")

    def fit_table(self, m: int = 95) -> Table:
        """Accuracy on training icons and RMTS head steps: is any model under-fit?"""
        rows = []
        for model in self.models:
            pick = lambda task, key: [float(r[key]) for r in self.ev.runs  # noqa: E731
                                      if r["variant"] == model and r["task"] == task and r["m"] == m and r["seed"] in MAIN_SEEDS]
            steps = pick("rmts", "steps")
            rows.append([model, percent(pick("same-different", "train_accuracy")), percent(pick("rmts", "train_accuracy")),
                         f"{min(steps):.0f}-{max(steps):.0f}" if steps else "n/a"])
        return Table(["model", "same/different, training icons", "RMTS, training icons", "RMTS head steps"], rows,
                     caption=f"m = {m}: accuracy on fresh renderings of the training icons (%), and how many steps the "
                             "RMTS head ran before its training accuracy stopped rising")

    def comparisons(self) -> list[dict]:
        """Oscillator minus every other model, per task and split, paired by seed; Holm within each task's family."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "other": other, "differences": self.paired("oscillator", other, task, m)}
                      for other in self.models if other != "oscillator" for m in self.splits()]
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
            five = self.paired("oscillator", self.strongest, {"same/different": "same-different"}.get(r["task"], "rmts"), 95)
            rows.append([r["task"], len(r["differences"]), percent(r["oscillator"]), percent(r["baseline"]),
                         signed_points(r["differences"]), f"{r['holm']:.3f}", f"{200 * interval95(five)[1]:.1f}",
                         f"{200 * interval95(r['differences'])[1]:.1f}"])
        return Table(["task", "folds", "oscillator", self.strongest, "oscillator minus baseline (points)",
                      "Holm p (family of 2)", "CI width, 5 folds (points)", "CI width, all folds (points)"], rows,
                     caption="m = 95 on disjoint 5-icon test folds that together cover all 100 icons: accuracy (%) and "
                             f"paired difference, mean{PM}95 % half-width over folds")


FEW_MODELS = ("oscillator", "difference", "concat")  # evidence.MAIN: the models make few runs


FEWEST = (5, 2)  # the splits make few adds


@dataclass
class FewIcons:
    """The main models from many training icons to the fewest: m = 95, 50 and 15 from the mechanism study, m = 5 and 2
    from ``make few``. Both run the same defaults (the validation-chosen learning rate is the default for all three)
    on seeds 0-4 and score held-out test icons, so the splits line up in one table."""

    ev: Evidence  # both studies' runs of FEW_MODELS, seeds 0-4

    @classmethod
    def load(cls, folder: str | Path, mech: Mechanism) -> FewIcons:
        """Read FOLDER/runs.csv (make few) and add the mechanism study's runs of the same models."""
        few = Evidence.load(folder)
        main = [r for r in mech.main.runs if r["variant"] in FEW_MODELS]
        return cls(Evidence(main + few.runs, [], few.profile))

    @property
    def models(self) -> list[str]:
        found = {r["variant"] for r in self.ev.runs}
        return [m for m in FEW_MODELS if m in found]

    def complete(self, m: int) -> bool:
        return all(len(self.ev.by_seed(model, task, m)) == len(MAIN_SEEDS) for model in FEW_MODELS for task, _ in TASKS)

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
        few = [r for r in self.ev.runs if r["m"] in FEWEST]
        done = {m: len({(r["variant"], r["seed"]) for r in few if r["m"] == m}) for m in FEWEST}
        hours = sum(r["wall_seconds"] for r in few) / 3600  # each task row carries its own stage's time
        return (f"make few: {'; '.join(f'm = {m}: {n} of {len(FEW_MODELS) * len(MAIN_SEEDS)} runs' for m, n in done.items())}"
                f"; {hours:.1f} h of training (1 thread per job)")

    def table(self, field: str = "test_accuracy") -> Table:
        """Accuracy (%) per task and model at every finished split: held-out icons, or ``train_accuracy``."""
        rows = [[short, model] + [percent(list(self.ev.by_seed(model, task, m, field).values())) for m in self.splits()]
                for task, short in TASKS for model in self.models]
        what = "held-out test icons" if field == "test_accuracy" else "fresh renderings of the training icons"
        return Table(["task", "model"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"Accuracy (%) on {what}, mean{PM}95 % half-width over seeds {list(MAIN_SEEDS)} "
                             "(m = 95, 50, 15: mechanism study; m = 5, 2: make few); chance is 50 %")

    def comparisons(self) -> list[dict]:
        """Oscillator minus each baseline at the fewest splits, paired by seed; Holm within each task's family."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "other": other, "differences": self.ev.paired("oscillator", other, task, m)}
                      for other in self.models if other != "oscillator" for m in self.splits() if m in FEWEST]
            out += resolve(family, "oscillator higher", "oscillator lower")
        return out

    def comparison_table(self) -> Table:
        return comparison_table(self.comparisons())


@dataclass
class Remedies:
    """Issue 13's remedies for the few-icon gap (``make gap``): each candidate minus the default model, paired by seed,
    on validation icons carved out of the training icons (the test icons are never read)."""

    ev: Evidence

    @classmethod
    def load(cls, folder: str | Path) -> Remedies:
        return cls(Evidence.load(folder))

    @property
    def candidates(self) -> list[str]:
        """Every variant but the default, in the order of ``evidence.REMEDIES`` (augmentation, dropout, hard
        negatives, test time, then existing settings), then of the follow-ups ``COMBINED`` and ``TRAJECTORY``;
        any other after them, in the order the runs name them."""
        from .evidence import COMBINED, REMEDIES, TRAJECTORY

        order = list({**REMEDIES, **COMBINED, **TRAJECTORY})
        found = [v for v in dict.fromkeys(r["variant"] for r in self.ev.runs) if v != "default"]
        return sorted(found, key=lambda v: order.index(v) if v in order else len(order))

    def comparisons(self) -> list[dict]:
        """Candidate minus default per task and split, paired by seed; Holm within each task's family (every
        candidate at every split)."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "candidate": c, "differences": self.ev.paired(c, "default", task, m),
                       "default": self.ev.accuracies("default", task, m), "accuracies": self.ev.accuracies(c, task, m)}
                      for c in self.candidates for m in self.ev.splits("default")]
            out += resolve(family, "candidate higher", "candidate lower")
        return out

    def kept(self) -> list[str]:
        """The rule fixed before the runs: a candidate is kept when Holm resolves it higher than the default in at
        least one task at some split and resolves it lower in none."""
        comparisons = self.comparisons()
        return [c for c in self.candidates
                if any(x["candidate"] == c and x["said"] == "candidate higher" for x in comparisons)
                and not any(x["candidate"] == c and x["said"] == "candidate lower" for x in comparisons)]

    def table(self) -> Table:
        comparisons = self.comparisons()
        rows = [[c["candidate"], c["task"], c["m"], len(c["differences"]), percent(c["default"]),
                 percent(c["accuracies"]), signed_points(c["differences"]), f"{c['p']:.3f}", f"{c['holm']:.3f}",
                 c["said"]] for c in comparisons]
        family = max((c["family"] for c in comparisons), default=0)
        return Table(["candidate", "task", "m", "seeds", "default (%)", "candidate (%)",
                      "candidate minus default (points)", "p (paired t)", f"Holm p (family of {family})", "after Holm"], rows,
                     caption=f"Validation accuracy (held-out icons carved out of the training icons), mean{PM}95 % "
                             "half-width over seeds; differences paired by seed, Holm within each task's family")


def five_seed(results: str | Path, task: str, m: int, variant: str = "oscillator") -> str | None:
    """The mechanism study's held-out accuracy of a model at split m ("93.2 ± 0.9 % over 5 seeds"), for a one-seed
    chapter to set beside its own number; None where the study did not run that split."""
    folder = Path(results)
    if not (folder / "mechanism" / "runs.csv").exists():
        return None
    mech = Mechanism.load(folder / "mechanism", folder / "validation")
    scores = mech.scores(variant, task, m)
    return f"{percent(list(scores.values()))} % over {len(scores)} seeds" if len(scores) > 1 else None
