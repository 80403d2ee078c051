"""Reading results back and presenting them: runs, intervals, paired comparisons, tables for the pages.

* ``collect`` reads every ``metrics.json`` under a folder (the sweep's runs, or the CLI's).
* ``Evidence.load`` reads the evidence study's committed CSVs with their types.
* ``interval95``, ``paired``, ``verdict`` and ``effect_size_label`` are the statistics the chapters quote.
* ``Table`` is what a chapter displays: a real HTML ``<table>`` with a caption on the book's pages and
  in JupyterLab, plain text in a terminal. ``markdown_table`` is for the command line.
"""

from __future__ import annotations

import csv
import html
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

PM = "\u00a0±\u00a0"  # " ± " with no-break spaces: a table cell never breaks a value from its interval
COLUMNS = ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device")


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


def _cell(row: dict, col: str) -> str:
    v = row.get(col, "")
    if col.endswith("accuracy"):
        return f"{100 * v:.1f} %" if isinstance(v, (int, float)) else "n/a"
    return f"{v:.0f}" if col == "wall_seconds" and isinstance(v, (int, float)) else str(v)


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
    """A markdown table of the given columns; accuracies as percentages (the ``summary`` command's output)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def mean_by(rows: list[dict], keys: tuple[str, ...], value: str) -> dict[tuple, dict]:
    """Group rows by keys; for each group the mean of ``value``, the count n and the values themselves."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r[value])
    return {k: {"mean": sum(v) / len(v), "n": len(v), "values": v} for k, v in groups.items()}


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond 30, the normal 1.96 is
# within 2 % of the true value).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def interval95(values) -> tuple[float, float, int]:
    """Mean, half-width of its 95 % t-interval (nan for one value), and n."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(v) / n
    if n < 2:
        return mean, float("nan"), n
    sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return mean, t * sd / n**0.5, n


def percent(values) -> str:
    """Mean ± 95 % half-width of fractions, in percent ("97.5 ± 1.2"); one value alone; "n/a" for none."""
    mean, half, n = interval95(values)
    if n == 0:
        return "n/a"
    return f"{100 * mean:.1f}{PM}{100 * half:.1f}" if n > 1 else f"{100 * mean:.1f}"


def verdict(differences) -> str:
    """What a 95 % interval of paired differences resolves: "better", "worse", "indistinguishable"."""
    return direction(differences, "worse", "better", "indistinguishable")


def effect_size_label(d: float) -> str:
    """Cohen's conventional words for |d|: negligible (< 0.2), small (< 0.5), medium (< 0.8), large; nan: undefined."""
    if d != d:  # nan: no spread to standardise by
        return "undefined"
    return next(word for limit, word in ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"), (float("inf"), "large"))
                if abs(d) < limit)


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


@dataclass
class Table:
    """A table for a page: an HTML ``<table>`` with a caption (book and JupyterLab), text elsewhere."""

    header: list[str]
    rows: list[list]
    caption: str = ""

    def _repr_html_(self) -> str:
        esc = lambda v: html.escape(str(v))  # noqa: E731
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in self.rows)
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return f'<table class="oscbind-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __repr__(self) -> str:
        widths = [max(len(str(v)) for v in col) for col in zip(self.header, *self.rows)]
        line = lambda vals: "  ".join(str(v).ljust(w) for v, w in zip(vals, widths))  # noqa: E731
        return "\n".join(([self.caption] if self.caption else []) + [line(self.header)] + [line(r) for r in self.rows])


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


def median(values) -> float:
    v = sorted(float(x) for x in values)
    return float("nan") if not v else (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2)


def signed(values, digits: int = 3) -> str:
    """Mean ± 95 % half-width of plain numbers ("-0.166 ± 0.025"), one value alone, "n/a" for none."""
    mean, half, n = interval95(values)
    if n == 0:
        return "n/a"
    return f"{mean:+.{digits}f}{PM}{half:.{digits}f}" if n > 1 else f"{mean:+.{digits}f}"


def direction(values, lower: str, higher: str, neither: str) -> str:
    """Which words a 95 % interval of values supports: below 0, above 0, or neither."""
    mean, half, n = interval95(values)
    if n < 2:
        return "not measured"
    return lower if mean + half < 0 else higher if mean - half > 0 else neither


def column(rows: list[dict], key: str) -> list[float]:
    """One column of rows, missing values left out."""
    return [r[key] for r in rows if r.get(key) is not None]


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def paired_p(differences) -> float:
    """Two-sided p-value of the paired t-test that the mean of per-seed differences is 0 (nan below 2 values)."""
    v = [float(x) for x in differences]
    n = len(v)
    if n < 2:
        return float("nan")
    mean = sum(v) / n
    sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5
    if sd == 0:
        return 0.0 if mean != 0 else 1.0
    t = mean / (sd / n**0.5)
    df = n - 1
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def resolve(family: list[dict], higher: str, lower: str) -> list[dict]:
    """One family of comparisons (each a dict with its per-seed "differences"), each given its paired-t p, Holm's
    p over the family, the family's size, and what it says at Holm p < 0.05: higher, lower, or "not resolved"."""
    pvalues = [paired_p(row["differences"]) for row in family]
    for row, p, adjusted in zip(family, pvalues, holm(pvalues)):
        said = (higher if sum(row["differences"]) > 0 else lower) if adjusted < 0.05 else "not resolved"
        row.update(p=p, holm=adjusted, family=len(family), said=said)
    return family


# The mechanism study's models in the order the tables show them: the poster's model, its coupling taken
# away step by step, then the baselines from the most to the least relational.
MECHANISM_ORDER = ("oscillator", "J_OUT = 0", "no coupling", "comparator", "CoRelNet", "difference", "concat")
TASKS = (("same-different", "same/different"), ("rmts", "RMTS"))
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


def comparison_table(comparisons: list[dict]) -> Table:
    """Oscillator minus each other model (``resolve``'d rows with "other", "task", "m"): one row per comparison."""
    rows = [[c["other"], c["task"], c["m"], len(c["differences"]), signed_points(c["differences"]), f"{c['p']:.3f}",
             f"{c['holm']:.3f}", c["said"]] for c in comparisons]
    family = max((c["family"] for c in comparisons), default=0)
    return Table(["oscillator minus", "task", "m", "seeds", "difference (points)", "p (paired t)",
                  f"Holm p (family of {family})", "after Holm"], rows,
                 caption="Paired differences in held-out accuracy, oscillator minus each model, mean"
                         f"{PM}95 % half-width over seeds; Holm's correction within each task's family")


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


def signed_points(differences) -> str:
    """Accuracy differences (fractions) as signed percentage points with their 95 % half-width ("+3.9 ± 1.5")."""
    return signed([100 * d for d in differences], 1)


def approx_difference(a: tuple[float, float], b: tuple[float, float]) -> str:
    """a - b of two independent (mean, 95 % half-width) cells, with the half-widths added in quadrature:
    an approximate 95 % interval for the difference of two unpaired means, in points."""
    return f"{a[0] - b[0]:+.1f}{PM}{math.hypot(a[1], b[1]):.1f}"


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
    def load(cls, authors: str | Path, ladder: str | Path | None, published: str | Path, ours: Mechanism | None = None) -> Authors:
        """ladder: the ladder profile's folder, or None for the authors profile alone."""
        authors = Path(authors)
        with open(published, newline="") as f:
            pub = [dict(r, m=int(r["m"]), mean=float(r["mean"]), half_width=float(r["half_width"]), n=int(r["n"]))
                   for r in csv.DictReader(f)]
        with open(authors / "two_energies.csv", newline="") as f:
            energies = [{k: v if k in ("run", "variant", "quantity") else float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        return cls(Evidence.load(authors).runs, Evidence.load(ladder).runs if ladder is not None else [], pub, energies,
                   json.loads((authors / "curves.json").read_text()), ours)

    def scores(self, runs: list[dict], variant: str, task: str, m: int, field: str = "test_accuracy") -> dict[int, float]:
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
            rows.append([short, "their code and protocol (their CSV)"] + [f"{a:.1f}{PM}{h:.1f}" for a, h in
                                                                         (self.theirs("default", task, m) for m in self.splits())])
            rows.append([short, "our code, their protocol"] + [percent(self.scores(self.runs, "default", task, m).values())
                                                               for m in self.splits()])
            if self.ours is not None:
                rows.append([short, "our code, our defaults"] + [percent(self.ours.scores("oscillator", task, m).values())
                                                                 for m in self.splits()])
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
        header = ["variant", "m"] + [f"{short} {what}" for short in ("S/D", "RMTS") for what in ("theirs", "ours", "ours - theirs")]
        return Table(header, rows, caption="Their CSV and our code on their protocol, per variant (%; S/D: same/different), mean"
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
        return Table(["task", "m", "their CSV: default - no J_OUT (points)", "our code, their protocol (points, paired)",
                      "p (paired t)", f"Holm p (family of {len(self.splits())})"], rows,
                     caption=f"The cost of removing J_OUT, mean{PM}95 % half-width over 5 seeds; Holm's correction "
                             "within each task, over the splits")

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
                     rows, caption=f"From their protocol to our defaults, one change at a time, mean{PM}95 % half-width "
                                   "over 5 seeds; each step paired by seed against the rung below")

    # The ladder's rungs in four groups, by index into evidence.LADDER: (label, rung below the group, its last rung).
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
                    a, b = self.scores(self.ladder, rungs[last], task, m), self.scores(self.ladder, rungs[below], task, m)
                    family.append({"task": short, "m": m, "segment": label, "differences": [a[s] - b[s] for s in a if s in b]})
            out += resolve(family, "gain", "loss")
        return out

    def segments_table(self) -> Table:
        segments = self.segments()
        rows = [[c["task"], c["m"], c["segment"], signed_points(c["differences"]), f"{c['holm']:.3f}", c["said"]]
                for c in segments]
        family = max((c["family"] for c in segments), default=0)
        return Table(["task", "m", "changes", "net step (points, paired)", f"Holm p (family of {family})", "after Holm"],
                     rows, caption=f"The climb from their protocol to our defaults in four groups of rungs, mean{PM}95 % "
                                   "half-width over 5 seeds, each group's last rung minus the rung below it")

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
        return Table(["variant", "energy", "runs", "same - different at t = T", "Cohen's d", "runs with same lower"], rows,
                     caption=f"Energy of same minus different held-out pairs at the end of the dynamics, mean{PM}95 % "
                             "half-width over runs (3 splits x 5 seeds), both quantities on the same trajectories")
