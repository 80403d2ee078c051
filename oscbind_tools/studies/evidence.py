"""The evidence: every (model or variant, split, seed) run of a profile as one submitit job.

    python -m oscbind_tools evidence --profile paper [--executor auto|local|slurm] [--workers 2]

* A job trains (or loads from the checkpoint cache) the same/different model of its variant, trains
  the RMTS head on its frozen bottleneck, measures what its study registered for it (``engine.MEASURES``), and writes
  ``RESULTS/runs/<id>.json`` atomically with a ``provenance.stamp`` (spec, config, package version,
  code fingerprint). A job whose saved stamp matches is not redone, so an interrupted profile
  resumes, and an edit of the code makes every job stale (the sweep's rule too); a failed job is
  reported with its log and does not stop the others.
* submitit runs the jobs: its local executor on one machine (``workers`` at a time, ``threads``
  torch threads each, so they do not fight over cores), its Slurm executor where a Slurm controller answers.
* ``tidy`` turns the run files into ``runs.csv`` (one row per run and task, with provenance) and
  ``fidelity.csv``; ``reading.Evidence`` and each study's own reader read them back for the book, with 95 %
  intervals over seeds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from oscbind_lite import __version__
from oscbind_lite.cache import writable_folder, write_csv, write_json
from oscbind_lite.config import RunConfig, smoke as smoke_config, with_overrides

from ..provenance import git_commit, stamp, why_stale
from . import STUDIES, plan
from .engine import MEASURES, Spec, results_folder

# The tooling an evidence job runs (with all of oscbind_lite): its stamp covers their sources.
EVIDENCE_CODE = ("studies", "provenance")


@contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """While it is open, the process's standard error (file descriptor 2, which every child it starts inherits: a
    notebook's kernel, a local job) goes to log: their chatter, and their dying words when a run is interrupted, stay
    out of the console."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def run_job(spec: Spec, results: str, cache: str, threads: int, device: str, smoke: bool) -> str:
    """Train, transfer and measure one spec; write RESULTS/runs/<id>.json; return its path."""
    import torch

    from oscbind_lite.train import environment, resolve_device, train_rmts, train_same_different

    torch.set_num_threads(threads)
    start = time.perf_counter()
    run = spec_config(spec, smoke)
    stage1 = train_same_different(run, device, Path(cache), progress=False)
    stage2 = train_rmts(run, device, Path(cache), progress=False)
    fidelity = MEASURES[spec.fidelity](stage1.model, run, spec) if spec.fidelity else {}
    dev = resolve_device(device)  # where this job ran (a cached model may have been trained elsewhere)
    env = environment(dev)
    provenance = {"version": __version__, "git_commit": git_commit(), "device": str(dev),
                  "threads": threads, "smoke": smoke, "torch": env["torch"], "compile": env["compile"],
                  "cpu": env["cpu"], "gpu": env["gpu"] or ""}
    rows = []
    for task, r in (("same-different", stage1), ("rmts", stage2)):
        rows.append({"run": spec.id, "variant": spec.variant, "task": task, "m": spec.m, "seed": spec.seed,
                     "test_accuracy": r.metrics["test_accuracy"], "train_accuracy": r.metrics["train_accuracy"],
                     "steps": r.metrics["steps"], "wall_seconds": r.metrics["wall_seconds"], "cached": r.cached,
                     "holdout": run.data.holdout, "split": run.data.split, "n_test_icons": r.metrics["n_test_icons"],
                     "lr": run.stage1.lr,
                     "config_hash": r.metrics["key"][:16], **provenance})
    out = Path(results) / "runs" / f"{spec.id}.json"
    write_json(out, {"spec": asdict(spec), "rows": rows, "fidelity": fidelity, "config": run.to_dict(),
                     "job_seconds": round(time.perf_counter() - start, 1), "stamp": job_stamp(spec, smoke),
                     "environment": env, **provenance})
    return str(out)


def spec_config(spec: Spec, smoke: bool) -> RunConfig:
    """The RunConfig a spec trains."""
    base = smoke_config() if smoke else RunConfig()
    return with_overrides(base, **{**spec.overrides, "m": spec.m, "seed": spec.seed})


def job_stamp(spec: Spec, smoke: bool) -> dict:
    """What a job's result depends on (``provenance.stamp``): its spec, its config, the code."""
    return stamp(EVIDENCE_CODE, spec=asdict(spec), smoke=smoke, config=spec_config(spec, smoke).to_dict())


def done(spec: Spec, results: Path, smoke: bool) -> bool:
    """Whether a finished result file exists for this spec whose stamp matches today's (same rule as the sweep)."""
    return state(spec, results, smoke) == DONE


DONE, MISSING = "done", "missing"


def state(spec: Spec, results: Path, smoke: bool) -> str:
    """A job's result file: DONE (its stamp matches today's), MISSING, "unreadable", or why it is stale
    (``provenance.why_stale``: "other code", "package version ...", "other settings (...)")."""
    path = results / "runs" / f"{spec.id}.json"
    if not path.is_file():
        return MISSING
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"
    if not isinstance(saved, dict):
        return "unreadable"
    return why_stale(saved.get("stamp"), job_stamp(spec, smoke)) or DONE


def tally(specs: list[Spec], results: Path, smoke: bool) -> str:
    """How many jobs are done, and how many results there are stale and why: "3 already done, 9 stale (9 made by
    other code)"."""
    states = [state(s, results, smoke) for s in specs]
    stale = {k: states.count(k) for k in dict.fromkeys(states) if k not in (DONE, MISSING)}
    said = f"{states.count(DONE)} already done"
    if stale:
        why = "; ".join(f"{n} {k if k == 'unreadable' else 'made by ' + k}" for k, n in stale.items())
        said += f", {sum(stale.values())} stale ({why})"
    return said


PING_SECONDS = 5  # how long "auto" waits for `scontrol ping`


def slurm_answers() -> bool:
    """Whether a Slurm controller answers here (``scontrol ping`` within PING_SECONDS): sbatch alone is not a
    cluster (a stopped one, or a client with no controller, would take every job and run none)."""
    if not (shutil.which("sbatch") and shutil.which("scontrol")):
        return False
    try:
        return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=PING_SECONDS).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def resolve_executor(kind: str) -> str:
    """"auto" is Slurm where a controller answers, else local; any other kind as given."""
    return ("slurm" if slurm_answers() else "local") if kind == "auto" else kind


def make_executor(kind: str, folder: Path, workers: int, threads: int, timeout_min: int):
    """A submitit executor: "local", "slurm", or "auto" (``resolve_executor``)."""
    import submitit

    kind = resolve_executor(kind)
    if kind == "local":
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=timeout_min)
    elif kind == "slurm":
        if not (shutil.which("srun") and slurm_answers()):
            raise ValueError("executor: slurm needs Slurm's srun and sbatch on PATH and a controller that answers "
                             "`scontrol ping`; use --executor local here")
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        executor.update_parameters(timeout_min=timeout_min, cpus_per_task=threads, slurm_array_parallelism=workers,
                                   name="oscbind")
    else:
        raise ValueError(f"executor: must be auto, local or slurm, got {kind!r}")
    return kind, executor


def run_profile(profile: str, results: Path, cache: Path, executor: str = "auto", workers: int = 2,
                threads: int | None = None, device: str = "auto", timeout_min: int = 180) -> int:
    """Run every job of a profile not already done; returns an exit status (1 if any job failed)."""
    if profile not in STUDIES:
        print(f"error: profile: must be one of {', '.join(STUDIES)}, got {profile!r}", file=sys.stderr)
        return 2
    study = STUDIES[profile]
    from oscbind_lite.limits import check_compiler, check_threads, cpu_limit
    from oscbind_lite.train import resolve_device

    try:  # every check before anything is written: a refused command leaves the folder as it was
        if workers < 1:
            raise ValueError(f"workers: must be an integer >= 1, got {workers}")
        resolve_device(device)
        executor = resolve_executor(executor)
        # Local jobs share this process's cores: threads that spin on each other's cores run many times slower (a
        # single-threaded job per core too many only waits its turn); a Slurm task gets the CPUs it asks for.
        if executor == "local":
            check_threads(threads, jobs=workers if (threads or 1) > 1 else 1)
        elif threads is not None and threads < 1:
            raise ValueError(f"threads: must be an integer >= 1, got {threads}")
        check_compiler()
        threads = threads or (max(1, cpu_limit().amount // workers) if executor == "local" else 1)
        specs = plan(profile)
        owner(results, profile)
        kind, ex = make_executor(executor, results / "logs", workers, threads, timeout_min)
        claim(results, profile)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    smoke = study.smoke
    todo = [s for s in specs if not done(s, results, smoke)]
    print(f"{profile}: {len(specs)} jobs, {tally(specs, results, smoke)}, {len(todo)} to run "
          f"({workers} at a time, {threads} thread(s) each)", file=sys.stderr)
    # submitit's job controllers inherit this process's standard error: their own words when Ctrl-C reaches them
    # with the terminal's process group (a traceback each) go to a log, not the terminal
    (results / "logs").mkdir(parents=True, exist_ok=True)
    children = lambda: stderr_to(results / "logs" / "controllers.log")  # noqa: E731
    start = time.perf_counter()
    failed, running = [], []
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill, timeout and Slurm stop us as Ctrl-C does
    try:
        if kind == "slurm":
            with children(), ex.batch():
                running = [(s, ex.submit(run_job, s, str(results), str(cache), threads, device, smoke)) for s in todo]
            for spec, job in running:
                failed += _collect(spec, job)
        else:
            queue = list(todo)
            while queue or running:
                while queue and len(running) < workers:
                    spec = queue.pop(0)
                    with children():
                        running.append((spec, ex.submit(run_job, spec, str(results), str(cache), threads, device,
                                                        smoke)))
                time.sleep(1)
                for item in [r for r in running if r[1].done()]:
                    running.remove(item)
                    failed += _collect(*item)
    except KeyboardInterrupt:  # stop the jobs this run started; finished ones are kept, the rest rerun next time
        for _, job in running:
            try:
                job.cancel(check=False)
            except (OSError, KeyboardInterrupt):  # a controller already gone, or a second Ctrl-C
                pass
        print("interrupted: running jobs cancelled; rerun the command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    finished = [s for s in specs if done(s, results, smoke)]
    try:
        write_json(results / "profile.json", {"profile": profile, "jobs": len(specs), "ran": len(todo),
                                              "failed": [s.id for s in failed],
                                              "wall_seconds": round(time.perf_counter() - start, 1), "workers": workers,
                                              "threads": threads, "executor": kind, "version": __version__})
        if finished:
            tidy(results, finished)
            if study.after is not None and len(finished) == len(specs):
                rows = [r for s in finished
                        for r in json.loads((results / "runs" / f"{s.id}.json").read_text())["rows"]]
                write_json(results / "choice.json", study.after(rows))
        else:
            print(f"no finished runs: the tables in {results} were left as they were", file=sys.stderr)
    except OSError as err:  # a full disk: every finished run file is kept; the next run writes the tables
        print(f"error: results: could not write the tables in {results} ({err.strerror or err}); the {len(finished)} "
              "finished run files are kept, and rerunning the command writes them", file=sys.stderr)
        return 1
    if failed:
        print(f"error: {len(failed)} job(s) failed: {', '.join(s.id for s in failed)}", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum, frame):
    """SIGTERM handler: stop the way Ctrl-C does, so that the local jobs this run started are cancelled, not
    orphaned."""
    raise KeyboardInterrupt


def owner(results: Path, profile: str) -> str | None:
    """The profile whose results a folder holds (None: no profile's yet); refuse a folder of another profile, or one
    that cannot be written."""
    writable_folder(results, "results")
    marker = results / "profile.json"
    try:
        found = json.loads(marker.read_text()).get("profile") if marker.exists() else None
    except (OSError, json.JSONDecodeError, AttributeError):
        found = "an unknown"
    if found is not None and found != profile:
        raise ValueError(f"results: {results} holds the {found} profile's results; give the {profile} profile its own "
                         f"folder (--results {results_folder(profile)})")
    return found


def claim(results: Path, profile: str) -> None:
    """Make results a folder of this profile (``owner``), marked as such once every check has passed."""
    if owner(results, profile) is None:
        write_json(results / "profile.json", {"profile": profile})


def _reason(err: Exception, log: Path) -> str:
    """The clearest line about why a job failed: the last "SomethingError: ..." of its log, else of the error,
    else the state Slurm ended it in (cancelled, timed out, out of memory: submitit found no result)."""
    lines = []
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        pass
    lines += str(err).splitlines()
    errors = [ln.strip() for ln in lines if re.match(r"^\s*[\w.]*(Error|Exception|Diverged|Interrupt)\b", ln)
              and not ln.startswith("Error stream produced")]  # submitit's heading above the log it quotes
    state = re.search(r"has not produced any output \(state: ([^)]+)\)", str(err))
    if not errors and state:
        return f"ended without a result (Slurm state: {state.group(1)})"
    return errors[-1] if errors else (lines[-1].strip() if lines else type(err).__name__)


def _collect(spec: Spec, job) -> list[Spec]:
    """Wait for a job; report it (with its error's own line); return [spec] if it failed."""
    try:
        job.result()
        print(f"done {spec.id}", file=sys.stderr)
        return []
    except Exception as err:  # submitit re-raises the job's error (or a timeout) here
        print(f"failed {spec.id}: {_reason(err, job.paths.stderr)} (log: {job.paths.stderr})", file=sys.stderr)
        return [spec]


RUN_COLUMNS = ("run", "variant", "task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds",
               "cached", "holdout", "split", "n_test_icons", "lr", "config_hash", "version", "git_commit", "device",
               "threads", "smoke", "torch", "compile", "cpu", "gpu")
FIDELITY_COLUMNS = ("run", "variant", "m", "seed", "share_non_increasing", "transitions", "largest_increase",
                    "energy_same", "energy_different", "energy_gap", "cohens_d", "locked_same", "locked_different",
                    "pairs")


def tidy(results: Path, specs: list[Spec]) -> tuple[Path, Path]:
    """Collect the run files of the given (finished, current) specs into RESULTS/runs.csv and RESULTS/fidelity.csv."""
    runs, fidelity, tables, curves = [], [], {}, {}
    for path in sorted(results / "runs" / f"{s.id}.json" for s in specs):
        saved = json.loads(path.read_text())
        runs += saved["rows"]
        f = saved.get("fidelity")
        spec = saved["spec"]
        if f and "tables" in f:  # the energy study: one CSV per table, the curves in one JSON
            ids = {"run": path.stem, "variant": spec["variant"], "m": spec["m"], "seed": spec["seed"]}
            for name, rows in f["tables"].items():
                tables.setdefault(name, []).extend(ids | row for row in rows)
            if f["curves"]:
                curves[path.stem] = ids | {"curves": f["curves"]}
        elif f:
            fidelity.append({"run": path.stem, "variant": spec["variant"], "m": spec["m"], "seed": spec["seed"],
                             **f["descent"], "energy_same": f["gap"]["mean_same"],
                             "energy_different": f["gap"]["mean_different"], "energy_gap": f["gap"]["difference"],
                             "cohens_d": f["gap"]["cohens_d"], "locked_same": f["locked_same"],
                             "locked_different": f["locked_different"], "pairs": f["pairs"]})
    runs.sort(key=lambda r: (r["variant"], r["task"], -r["m"], r["seed"]))
    write_csv(results / "runs.csv", RUN_COLUMNS, runs)
    write_csv(results / "fidelity.csv", FIDELITY_COLUMNS, fidelity)
    for name, rows in tables.items():
        write_csv(results / f"{name}.csv", list(dict.fromkeys(k for row in rows for k in row)), rows)
    if curves:
        write_json(results / "curves.json", curves)
    return results / "runs.csv", results / "fidelity.csv"
