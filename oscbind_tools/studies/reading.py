"""Reading results back, for every study: ``collect`` reads every ``metrics.json`` under a folder (the sweep's runs,
or the command line's); ``read_table`` reads one CSV a study wrote, refusing an empty or foreign one in one line;
``Evidence.load`` reads a study's ``runs.csv``, ``fidelity.csv`` and ``profile.json`` with their types. Each study's
own reader (``Mechanism``, ``Coupling``, ...) lives in the study's file and builds on these.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .engine import Study

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
    """A study's declaration (any study file's ``STUDIES``): the order and membership of its models, splits, seeds."""
    from . import STUDIES

    return STUDIES[study]
