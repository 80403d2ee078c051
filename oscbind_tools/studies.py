"""Reading the evidence studies back: each committed study (``results/<study>/``) as an object whose methods give
the chapters their tables and paired comparisons.

* ``collect`` reads every ``metrics.json`` under a folder (the sweep's runs, or the CLI's).
* ``Evidence.load`` reads one study's ``runs.csv`` and ``fidelity.csv`` with their types.
* ``EnergyStudy``, ``Mechanism``, ``FewIcons`` and ``Paired`` read the energy, mechanism, fewest-icons and
  few-icon remedies studies; ``protocols`` reads the authors' protocol, the ladder and the coupling study.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .design import POWER_SEEDS, STUDIES, Study, kept
from .stats import holm, interval95, paired_p, resolve
from .table import PM, TASKS, Table, comparison_table, percent, seeds_in_words, signed_points

REQUIRED = {"task": str, "m": int, "seed": int, "test_accuracy": (int, float)}
SHARES = ("test_accuracy", "train_accuracy")  # fractions in [0, 1]: a percentage there would read as 9730 %


def read_metrics(path: str | Path) -> dict:
    """One run's metrics.json, checked: every REQUIRED field of its type and each of SHARES a number in [0, 1];
    ValueError saying what is wrong otherwise (unreadable, missing or malformed fields)."""
    try:
        row = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable ({type(err).__name__})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{', '.join(REQUIRED)} missing or malformed")
    bad = [k for k, t in REQUIRED.items() if not isinstance(row.get(k), t) or isinstance(row.get(k), bool)]
    if bad:
        raise ValueError(f"{', '.join(bad)} missing or malformed")
    for k in SHARES:
        if k in row and not (isinstance(row[k], (int, float)) and 0 <= row[k] <= 1):
            raise ValueError(f"{k} is {row[k]!r}, not a share in [0, 1] (a percentage?)")
    return row


def collect(root: str | Path) -> list[dict]:
    """All readable metrics.json files below root, sorted by task, then m (descending), then seed; each with the
    folder it came from ("path"), so that two runs of one setting stay apart.

    A file that is not JSON, lacks a required field of the right type, or holds an accuracy outside [0, 1] is
    skipped with a warning on stderr naming it (``read_metrics``); the others still make the table.
    """
    rows = []
    for path in sorted(Path(root).rglob("metrics.json")):
        try:
            row = read_metrics(path)
        except ValueError as err:
            print(f"warning: skipped {path}: {err}", file=sys.stderr)
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


def read_table(path: str | Path, columns: tuple[str, ...], texts: tuple[str, ...] = (), blanks: tuple[str, ...] = (),
               empty: bool = False, convert=_number) -> list[dict]:
    """A study's CSV, checked before anything reads it: at least one row (unless ``empty``: then it may hold nothing
    at all), every one of ``columns``, and in each of them a number wherever it is not one of ``texts`` (or nothing,
    in ``blanks``). Cells outside ``texts`` go through ``convert``. ValueError naming the file and what is wrong: an
    emptied or foreign table gives no verdict."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            raw = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} cannot be read ({type(err).__name__}: {err})") from None
    if not raw:
        if empty:
            return []
        raise ValueError(f"{path} holds no rows (emptied, or the study has not run)")
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path} is not this study's table (no column {', '.join(missing)})")
    for i, row in enumerate(raw):
        for c in columns:
            value = _number(row[c] or "")
            if c not in texts and not (value is None and c in blanks) and (
                    isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{path}, row {i + 1}: {c} is {row[c]!r}, not a number")
    return [{k: v if k in texts else convert(v) for k, v in r.items()} for r in raw]


# The columns of an evidence study's runs.csv that its readers use, and those of them that are words
RUN_COLUMNS = ("run", "variant", "task", "m", "seed", "test_accuracy", "train_accuracy", "wall_seconds")
RUN_TEXTS = ("run", "variant", "task")


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
        runs = [dict(r, m=int(r["m"]), seed=int(r["seed"]), test_accuracy=float(r["test_accuracy"]),
                     train_accuracy=float(r["train_accuracy"]), wall_seconds=float(r["wall_seconds"]))
                for r in read_table(folder / "runs.csv", RUN_COLUMNS, texts=RUN_TEXTS, convert=str)]
        fidelity = [{k: (v if k in ("run", "variant") else float(v)) for k, v in r.items()}
                    for r in read_table(folder / "fidelity.csv", ("run", "variant"), texts=("run", "variant"),
                                        empty=True, convert=str)]
        profile = json.loads((folder / "profile.json").read_text())
        if not isinstance(profile, dict):
            raise ValueError(f"{folder / 'profile.json'} is not an evidence profile's record")
        return cls(runs, fidelity, profile)

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
        commits = sorted({r["git_commit"][:12] + ("+dirty" if r["git_commit"].endswith("+dirty") else "")
                          for r in self.runs})
        return (f"{len(self.runs)} rows from {len({r['run'] for r in self.runs})} runs, seeds {self.seeds}; profile "
                f"{p['profile']!r}, {p['jobs']} jobs, last run {p['wall_seconds'] / 3600:.2f} h with {p['workers']} "
                f"workers x {p['threads']} thread(s); package {sorted({r['version'] for r in self.runs})}, "
                f"commits {commits}")


def declared(study: str) -> Study:
    """A study's declaration (``design.STUDIES``): the order and membership of its models, its splits and seeds."""
    return STUDIES[study]


@dataclass
class Mechanism:
    """The mechanism study (``make mechanism``) and the validation runs that chose its settings
    (``make validation``)."""

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




@dataclass
class FewIcons:
    """The main models from many training icons to the fewest: m = 95, 50 and 15 from the mechanism study, m = 5 and 2
    from ``make few``. Both run the same defaults (the validation-chosen learning rate is the default for all three)
    on seeds 0-4 and score held-out test icons, so the splits line up in one table."""

    ev: Evidence  # both studies' runs of the few study's models, on its seeds
    study = "few"

    @classmethod
    def load(cls, folder: str | Path, mech: Mechanism) -> FewIcons:
        """Read FOLDER/runs.csv (make few) and add the mechanism study's runs of the same models."""
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
        return (f"make few: {'; '.join(f'm = {m}: {n} of {planned} runs' for m, n in done.items())}"
                f"; {hours:.1f} h of training (1 thread per job)")

    def table(self, field: str = "test_accuracy") -> Table:
        """Accuracy (%) per task and model at every finished split: held-out icons, or ``train_accuracy``."""
        rows = [[short, model] + [percent(list(self.ev.by_seed(model, task, m, field).values())) for m in self.splits()]
                for task, short in TASKS for model in self.models]
        what = "held-out test icons" if field == "test_accuracy" else "fresh renderings of the training icons"
        return Table(["task", "model"] + [f"m = {m}" for m in self.splits()], rows,
                     caption=f"Accuracy (%) on {what}, mean{PM}95 % half-width over "
                             f"{seeds_in_words(declared(self.study).seeds)} "
                             "(m = 95, 50, 15: mechanism study; m = 5, 2: make few); chance is 50 %")

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


@dataclass
class Paired:
    """A study whose every variant is compared with its reference, paired by seed (the few-icon remedies, ``make gap``,
    against the default model on validation icons; any study that declares a reference): the candidates in the order
    its declaration gives, any variant it does not declare after them."""

    ev: Evidence

    @classmethod
    def load(cls, folder: str | Path) -> Paired:
        return cls(Evidence.load(folder))

    @property
    def study(self) -> Study:
        return declared(self.ev.profile["profile"])

    @property
    def candidates(self) -> list[str]:
        refs = {self.study.reference, *self.study.references.values()}
        order = self.study.candidates
        found = [v for v in dict.fromkeys(r["variant"] for r in self.ev.runs) if v not in refs]
        return sorted(found, key=lambda v: order.index(v) if v in order else len(order))

    def comparisons(self) -> list[dict]:
        """Candidate minus default per task and split, paired by seed; Holm within each task's family (every
        candidate at every split)."""
        out = []
        for task, short in TASKS:
            family = [{"task": short, "m": m, "candidate": c, "reference": self.study.compared_with(c),
                       "differences": self.ev.paired(c, self.study.compared_with(c), task, m),
                       "default": self.ev.accuracies(self.study.compared_with(c), task, m),
                       "accuracies": self.ev.accuracies(c, task, m)}
                      for c in self.candidates for m in self.ev.splits(self.study.compared_with(c))]
            out += resolve(family, "candidate higher", "candidate lower")
        return out

    def kept(self) -> list[str]:
        """The rule fixed before the runs (``design.KEEP_RULE``): the candidates it keeps."""
        return kept(self.ev.runs, self.study)["kept"]

    def table(self) -> Table:
        comparisons = self.comparisons()
        rows = [[c["candidate"], c["task"], c["m"], len(c["differences"]), percent(c["default"]),
                 percent(c["accuracies"]), signed_points(c["differences"]), f"{c['holm']:.3f}",
                 c["said"]] for c in comparisons]
        family, ref = max((c["family"] for c in comparisons), default=0), self.study.reference
        what = ("Validation accuracy (held-out icons carved out of the training icons)"
                if self.study.holdout == "validation" else "Held-out accuracy")
        return Table(["candidate", "task", "m", "seeds", f"{ref} (%)", "candidate (%)",
                      f"candidate minus {ref} (points)", f"Holm p (family of {family})",
                      "after Holm"], rows,
                     caption=f"{what}, mean{PM}95 % half-width over seeds; differences paired by seed, Holm within "
                             "each task's family")


def five_seed(results: str | Path, task: str, m: int, variant: str = "oscillator") -> str | None:
    """The mechanism study's held-out accuracy of a model at split m ("93.2 ± 0.9 % over 5 seeds"), for a one-seed
    chapter to set beside its own number; None where the study did not run that split."""
    folder = Path(results)
    if not (folder / "mechanism" / "runs.csv").exists():
        return None
    mech = Mechanism.load(folder / "mechanism", folder / "validation")
    scores = mech.scores(variant, task, m)
    return f"{percent(list(scores.values()))} % over {len(scores)} seeds" if len(scores) > 1 else None
