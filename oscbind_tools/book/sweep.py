"""The book's sweep: run every chapter notebook through papermill, then stage and build the book.

    python -m oscbind_tools sweep --m 95 50 15 --seeds 0 [--smoke] [--build]

* The training chapters (same/different, RMTS) run once per split m and seed and write
  ``metrics.json`` beside their executed notebook; a split is any m both tasks accept (2 to 95 with
  the built-in icons: RMTS tests on at least 5 held-out icons). The showcase chapters (icons,
  energy, dynamics, explorable) run once, at ``--showcase-m`` (default: the first split) and the
  first seed (the explorable exports every split's model for its page, and ``--build`` stages those
  files beside the book); the summary chapters run last and read what the others wrote
  (generalisation, reproducing) or what is committed (``results/`` for the evidence chapter,
  ``benchmarks/`` for the performance appendix).
* Each run lives in ``RUNS/<chapter>/<tag>/`` with a ``stamp.json`` (``provenance.stamp``: package
  version and code fingerprint, notebook hash, parameters, and for summaries a hash of their inputs).
  A run whose stamp matches is skipped; a stale one is rerun (the same rule as the evidence study).
* Parameters that name folders are passed relative to the notebooks' folder (papermill's working
  directory), so no executed notebook, and no page of the book, holds a path of the machine. Executed
  notebooks are written to a temporary name and renamed, so an interrupted sweep never leaves a
  half-written notebook that counts as done.
* Trained models are shared through the checkpoint cache: the RMTS and showcase chapters load the
  same/different model instead of training it again. The book's own models are committed in
  ``book/checkpoints`` and copied into the cache first, so a fresh clone trains nothing it has
  (``oscbind_tools.book.checkpoints``; ``--retrain`` trains them all afresh, ``--freeze`` commits those).
* ``--kernels N`` runs N notebooks at a time, each once what it reads is written (``waits_for``,
  ``oscbind_tools.book.parallel``).
* ``--build`` copies the book sources with the showcase executed notebooks into ``RUNS/_book`` and
  runs ``jupyter-book build -W`` on it (Jupyter Book's own execution is off); the HTML goes to
  ``SITE/_build/html`` (SITE defaults to the book folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from tqdm.auto import tqdm

from oscbind_lite import __version__
from oscbind_lite.cache import cache_dir, writable_folder, write_json
from oscbind_lite.config import TASKS, DataConfig, check_m
from oscbind_lite.data import glyph_bank
from oscbind_lite.limits import cpu_limit
from oscbind_lite.train import resolve_device

from . import checkpoints
from .chapter import declared_parameters
from .parallel import outcomes
from ..provenance import is_current, stamp as make_stamp
from ..studies.evidence import stderr_to
from .sphinx_ext import GENERATED

SPLIT, SHOWCASE, SUMMARY = "split", "showcase", "summary"
ROLES = (SPLIT, SHOWCASE, SUMMARY)
CELL_TIMEOUT_S = 3600  # a cell that runs longer has hung (the longest, a default training, takes minutes)


class Chapter(NamedTuple):
    """A chapter notebook as the sweep runs it: its stem, its role, and the folder of files it writes for its page."""

    name: str
    role: str  # split: once per split and seed; showcase: once; summary: once, after the others
    page_files: str = ""  # a folder of its run folder staged beside the book (the explorable's models)
    parameters: tuple[str, ...] = ()  # the names its parameters cell declares
    title: str = ""  # its first heading


def chapters(book: Path = Path("book")) -> list[Chapter]:
    """Every chapter notebook of the book in the order of BOOK/_toc.yml, the one place that order is written.

    Each notebook declares its own role in its metadata (``"oscbind": {"role": "split" | "showcase" |
    "summary", "page_files": ...}``); the folders it reads follow from the names of its parameters
    (``results_dir``, ``runs_dir``, ``bench_dir``; see ``inputs``).
    """
    import yaml

    def files(entries):
        for entry in entries:
            if "file" in entry:
                yield entry["file"]
            yield from files(entry.get("sections", []))

    toc = yaml.safe_load((book / "_toc.yml").read_text())
    out = []
    for stem in files([c for part in toc.get("parts", []) for c in part.get("chapters", [])]):
        path = book / f"{stem}.ipynb"
        if not path.is_file():  # a markdown page: nothing to run
            continue
        try:
            notebook = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"book: {path} is not a notebook that can be read ({type(err).__name__}: {err})") from None
        meta = notebook["metadata"].get("oscbind", {})
        if meta.get("role") not in ROLES:
            raise ValueError(f"book: {path} must declare its role in its metadata, "
                             f"\"oscbind\": {{\"role\": one of {ROLES}}}")
        cell = next((c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        declared = tuple(declared_parameters("".join(cell["source"]))) if cell else ()
        title = ("".join(notebook["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()
                 if notebook["cells"] else "")
        out.append(Chapter(Path(stem).name, meta["role"], meta.get("page_files", ""), declared, title))
    return out


def titles(book: Path = Path("book")) -> dict[str, str]:
    """Each chapter's title by notebook stem (for links between chapters)."""
    return {c.name: c.title for c in chapters(book)}


@dataclass
class Job:
    """One papermill execution of one chapter with one set of parameters."""

    chapter: str
    role: str
    tag: str
    parameters: dict
    run_dir: Path
    page_files: str = ""  # the chapter's folder of files for its page, inside run_dir

    @property
    def output(self) -> Path:
        return self.run_dir / f"{self.chapter}.ipynb"


def relative(path: Path, notebooks: Path) -> str:
    """path as seen from the notebooks' folder (papermill's working directory), with forward slashes."""
    return Path(os.path.relpath(path.resolve(), notebooks.resolve())).as_posix()


def plan(notebooks: Path, runs: Path, splits: list[int], seeds: list[int], showcase_m: int,
         device: str, smoke: bool) -> list[Job]:
    """Every job of the sweep, in execution order: the split and showcase chapters in the book's order, then the
    summaries (which read what the others wrote), in the book's order."""
    jobs = []
    common = {"device": device, "smoke": smoke}
    book = chapters(notebooks.parent)
    for chapter in [c for c in book if c.role != SUMMARY] + [c for c in book if c.role == SUMMARY]:
        if chapter.role == SPLIT:
            for m in splits:
                for seed in seeds:
                    d = runs / chapter.name / f"m{m}-seed{seed}"
                    params = {"m": m, "seed": seed, **common, **inputs(chapter, notebooks, runs, splits, d),
                              "out_dir": relative(d, notebooks)}
                    jobs.append(Job(chapter.name, chapter.role, d.name, params, d))
        elif chapter.role == SHOWCASE:
            d = runs / chapter.name / f"m{showcase_m}-seed{seeds[0]}"
            params = {"m": showcase_m, "seed": seeds[0], **common, **inputs(chapter, notebooks, runs, splits, d)}
            jobs.append(Job(chapter.name, chapter.role, d.name, params, d, chapter.page_files))
        else:
            d = runs / chapter.name / "all"
            jobs.append(Job(chapter.name, chapter.role, d.name,
                            {"smoke": smoke, **inputs(chapter, notebooks, runs, splits, d)}, d))
    return jobs


def inputs(chapter: Chapter, notebooks: Path, runs: Path, splits: list[int], run_dir: Path) -> dict:
    """The folders and splits a chapter reads, by the names of its parameters, relative to the notebooks:
    ``results_dir`` the committed results, ``runs_dir`` the sweep's runs, ``bench_dir`` the committed benchmarks,
    ``splits`` every split of the sweep, ``repository`` the book's GitHub repository, a showcase's ``out_dir``
    its page files' folder, and ``live`` False: no kernel-drawn widget is built for a page that has no kernel
    (and nbclient can wait forever for a cell that opens widget comms, jupyter/nbclient#312)."""
    repo = notebooks.resolve().parents[1]
    given = {"results_dir": relative(repo / "results", notebooks), "runs_dir": relative(runs, notebooks),
             "bench_dir": relative(repo / "benchmarks", notebooks), "splits": ",".join(map(str, splits)),
             "repository": repository(notebooks.parent), "live": False}
    if chapter.page_files:
        given["out_dir"] = relative(run_dir / chapter.page_files, notebooks)
    return {name: value for name, value in given.items() if name in chapter.parameters}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp(job: Job, notebooks: Path, runs: Path) -> dict:
    """What a run depends on; a run is up to date when its saved stamp equals this."""
    inputs = {"notebook": _sha(notebooks / f"{job.chapter}.ipynb"), "parameters": job.parameters}
    if job.role == SUMMARY or "results_dir" in job.parameters:  # stale when anything it reads changed
        if "runs_dir" in job.parameters:  # every other run: its metrics, and its stamp for what it ran
            files = [p for name in ("metrics.json", "stamp.json") for p in runs.glob(f"*/*/{name}")
                     if p.parent.name != "all"]
        else:  # the committed results or benchmark files
            folder = notebooks / (job.parameters.get("results_dir") or job.parameters["bench_dir"])
            files = [p for pattern in ("*.csv", "*.json", "*/*.csv", "*/*.json") for p in folder.glob(pattern)]
        inputs["inputs"] = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(files))).hexdigest()
    return make_stamp(**inputs)


def up_to_date(job: Job, notebooks: Path, runs: Path) -> bool:
    """True when the executed notebook exists, its stamp matches, and a training chapter's metrics.json reads."""
    saved = job.run_dir / "stamp.json"
    if not (job.output.exists() and saved.exists()):
        return False
    if job.role == SPLIT:  # its metrics.json as the chapters that read it need it: a corrupt one is run again
        from ..studies.reading import read_metrics

        try:
            read_metrics(job.run_dir / "metrics.json")
        except ValueError:
            return False
    if job.page_files and not any((job.run_dir / job.page_files).glob("*")):
        return False
    try:
        return is_current(json.loads(saved.read_text()), stamp(job, notebooks, runs))
    except json.JSONDecodeError:
        return False


def execute(job: Job, notebooks: Path, runs: Path) -> tuple[bool, float, str]:
    """Run one job through papermill; returns (ok, seconds, message)."""
    import papermill

    job.run_dir.mkdir(parents=True, exist_ok=True)
    for old in ("stamp.json", "metrics.json", "history.json", job.output.name):  # nothing stale outlives a rerun
        (job.run_dir / old).unlink(missing_ok=True)
    if job.page_files:
        shutil.rmtree(job.run_dir / job.page_files, ignore_errors=True)
    partial = job.run_dir / f".{job.chapter}.partial.ipynb"
    start = time.perf_counter()
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # kernels inherit it: no progress-bar widgets saved into the book's pages
    try:
        with stderr_to(job.run_dir / "kernel.log"):
            papermill.execute_notebook(str(notebooks / f"{job.chapter}.ipynb"), str(partial), parameters=job.parameters,
                                       cwd=str(notebooks), kernel_name="python3", progress_bar=False,
                                       execution_timeout=CELL_TIMEOUT_S)
    except Exception as err:  # papermill raises its own error types, plus kernel and IO errors
        failed = job.run_dir / f"{job.chapter}.failed.ipynb"
        if partial.exists():
            os.replace(partial, failed)
        first = str(err).strip().splitlines()
        reason = next((ln for ln in reversed(first) if ln.strip() and not ln.startswith("-")), type(err).__name__)
        if not failed.exists():  # it never ran: the notebook itself could not be read
            return False, time.perf_counter() - start, (f"{notebooks / f'{job.chapter}.ipynb'} is not a notebook "
                                                         f"papermill can read ({type(err).__name__}: {reason[:120]})")
        return False, time.perf_counter() - start, f"{reason} (see {failed})"
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    os.replace(partial, job.output)
    write_json(job.run_dir / "stamp.json", stamp(job, notebooks, runs))
    return True, time.perf_counter() - start, "ok"


def waits_for(job: Job, jobs: list[Job]) -> list[Job]:
    """The jobs whose outputs job reads, so must have ended before it starts: an RMTS run the same/different run of
    its split and seed (its stage-1 model), a showcase chapter every training chapter (the explorable exports every
    split's model), a summary every chapter that is not one."""
    if job.role == SUMMARY:
        return [j for j in jobs if j.role != SUMMARY]
    if job.role == SHOWCASE:
        return [j for j in jobs if j.role == SPLIT]
    return [j for j in jobs[:jobs.index(job)] if j.role == SPLIT and j.tag == job.tag]


def _interrupt(signum, frame):
    """SIGTERM handler: stop the way Ctrl-C does."""
    raise KeyboardInterrupt


def for_the_page(executed: Path, staged: Path) -> None:
    """Copy an executed notebook for the book, as a reader of the static page should see it.

    * The chapter's own parameters cell is tagged ``remove-cell`` in its source; papermill's injected
      copy gets the same tag here, so a page shows each chapter's values once, in words
      (``Chapter.describe``).
    * When no widget is left on the page (a kernel-driven scrubber lives in a removed cell), the saved
      widget state goes too, so the page does not load the widget manager for nothing.
    """
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    shown = [c for c in notebook.cells if c.cell_type == "code" and "remove-cell" not in c.metadata.get("tags", [])]
    if not any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for c in shown for out in c.outputs):
        notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, staged)


GITHUB = re.compile(r"(?:github\.com[:/])?(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def repository(book: Path = Path("book")) -> str:
    """The book's GitHub repository as "owner/name", or "" when unknown: $OSCBIND_REPOSITORY (the Pages workflow sets
    it to the repository it runs in), else ``repository.url`` of BOOK/_config.yml, else the clone's GitHub origin."""
    import yaml

    config = book / "_config.yml"
    settings = yaml.safe_load(config.read_text()) if config.is_file() else {}
    candidates = [os.environ.get("OSCBIND_REPOSITORY", ""), ((settings or {}).get("repository") or {}).get("url") or ""]
    try:
        origin = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=book, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    candidates.append(origin if "github.com" in origin else "")
    for text in candidates:
        if text.strip() and (match := GITHUB.search(text.strip())):
            return match["repo"]
    return ""


# The branch the Pages workflow (.github/workflows/book.yml) pushes the chapters to as the book shows them: executed,
# with the repository papermill wrote into each. Colab opens a chapter file alone, straight from GitHub, so only a
# chapter from that branch can fetch the code it needs.
PUBLISHED_BRANCH = "notebooks"


def publish_settings(config: Path, repo: str, branch: str) -> None:
    """Point the staged book's repository, download and launch buttons at github.com/REPO on BRANCH; with no repository
    known, show none of them rather than a placeholder. Binder runs a chapter in a copy of the whole repository
    (binder/ installs the package), so its button works on any branch; the Colab button appears only when BRANCH is
    ``PUBLISHED_BRANCH``, whose chapters carry the repository their set-up cell clones."""
    import yaml

    settings = yaml.safe_load(config.read_text())
    settings.setdefault("repository", {}).update(url=f"https://github.com/{repo}" if repo else "", branch=branch,
                                                 path_to_book="book")
    settings.setdefault("html", {}).update(use_repository_button=bool(repo), use_download_button=True)
    colab = bool(repo) and branch == PUBLISHED_BRANCH
    settings.setdefault("launch_buttons", {}).update(binderhub_url="https://mybinder.org" if repo else "",
                                                     colab_url="https://colab.research.google.com" if colab else "")
    config.write_text(yaml.safe_dump(settings, sort_keys=False))


def stage(book: Path, runs: Path, jobs: list[Job], showcase_tag: str) -> Path:
    """A copy of the book sources whose notebooks are the executed ones (the showcase split): RUNS/_book, its
    settings pointing at the book's repository (``repository``)."""
    staged = runs / "_book"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(book, staged,
                    ignore=shutil.ignore_patterns("_build", "notebooks", "checkpoints", ".ipynb_checkpoints"))
    publish_settings(staged / "_config.yml", repository(book), os.environ.get("OSCBIND_BRANCH", "main"))
    (staged / "notebooks").mkdir()
    for job in jobs:
        if job.role != SPLIT or job.tag == showcase_tag:
            for_the_page(job.output, staged / "notebooks" / f"{job.chapter}.ipynb")
        if job.page_files:  # served as _static/<folder>/ (oscbind_tools.book.sphinx_ext)
            shutil.copytree(job.run_dir / job.page_files, staged / GENERATED / job.page_files)
    return staged


def build(staged: Path, output: Path) -> int:
    """``jupyter-book build -W --keep-going`` of the staged book into OUTPUT/_build/html; returns its status."""
    shutil.rmtree(output / "_build" / "html", ignore_errors=True)  # no page of a renamed or removed chapter survives
    jb = Path(sys.executable).with_name("jupyter-book")  # installed beside this Python (the book extra)
    cmd = [str(jb if jb.exists() else "jupyter-book"), "build", "-W", "--keep-going", "--path-output", str(output),
           str(staged)]
    return subprocess.run(cmd).returncode


def sweep(splits: list[int], seeds: list[int], showcase_m: int | None = None, device: str = "auto", smoke: bool = False,
          book: Path = Path("book"), runs: Path = Path("runs/book"), do_build: bool = False, force: bool = False,
          site: Path | None = None, retrain: bool = False, freeze: bool = False, kernels: int = 1) -> int:
    """Run the sweep (and optionally the build); returns a process exit status. showcase_m: None is the first split.

    The committed models of ``BOOK/checkpoints`` are copied into the cache first (``checkpoints.seed``), so
    the chapters train only what is missing. ``retrain``: every model afresh in the cache's ``retrain/``
    folder (emptied first), committed and cached models unused, every notebook rerun; ``freeze`` (with
    ``retrain``): then the models it trained replace the committed ones. ``kernels``: notebooks run at once
    (``oscbind_tools.book.parallel``)."""
    showcase_m = splits[0] if showcase_m is None else showcase_m
    try:  # everything a kernel would refuse, refused here before the first kernel starts
        if freeze and not retrain:
            raise ValueError("freeze: commits the models of a --retrain sweep; add --retrain")
        if kernels < 1:
            raise ValueError(f"kernels: must be at least 1, got {kernels}")
        if showcase_m not in splits:
            raise ValueError(f"showcase_m: must be one of the splits {splits}, got {showcase_m}")
        for m in splits:
            for task in TASKS:
                check_m(m, len(glyph_bank(None)), task)
        for seed in seeds:
            DataConfig(seed=seed).validate()
        resolve_device(device)
        writable_folder(runs, "runs")
        cache = writable_folder(cache_dir(), "cache")
        if retrain:
            shutil.rmtree(cache / "retrain", ignore_errors=True)
            cache = writable_folder(cache / "retrain", "cache")
        # Kernels start in the notebooks' folder: a relative or ~ cache would resolve there, a second cache.
        os.environ["OSCBIND_CACHE"] = str(cache)
        if kernels > 1:  # kernels share the cores: torch's threads beyond them wait on each other (and spin)
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_limit().amount // kernels)))
        jobs = plan(book / "notebooks", runs, splits, seeds, showcase_m, device, smoke)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not (smoke or retrain):
        copied, present, unused = checkpoints.seed(book / "checkpoints", cache)
        print(f"book checkpoints: {copied} committed model(s) copied into the cache, {present} already there",
              file=sys.stderr)
        for reason in unused:
            print(f"warning: {reason}; not used (make checkpoints retrains and replaces them)", file=sys.stderr)
    force = force or retrain
    notebooks = book / "notebooks"
    failed, record = [], []
    start = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill and timeout stop the sweep as Ctrl-C does
    run = partial(execute, notebooks=notebooks, runs=runs)  # in a worker process when kernels > 1
    progress = tqdm(total=len(jobs), desc="sweep", unit="notebook", file=sys.stderr, mininterval=1)
    try:
        for job, outcome in outcomes(jobs, waits_for, lambda j: not force and up_to_date(j, notebooks, runs), run,
                                     kernels):
            progress.update()
            if outcome is None:
                record.append({"chapter": job.chapter, "tag": job.tag, "status": "skipped (up to date)"})
                continue
            ok, seconds, message = outcome
            record.append({"chapter": job.chapter, "tag": job.tag, "status": "ok" if ok else "failed",
                           "seconds": round(seconds, 1)})
            print(f"{job.chapter} [{job.tag}]: {message} ({seconds:.0f} s)", file=sys.stderr)
            if not ok:
                failed.append(job)
    except KeyboardInterrupt:  # the notebook that was running is left as a partial file, never counted as done
        print(f"\ninterrupted: {sum(r['status'] == 'ok' for r in record)} notebook(s) finished and kept; rerun the "
              "command to resume", file=sys.stderr)
        return 130
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
    write_json(runs / "sweep.json",
               {"jobs": record, "seconds": round(time.perf_counter() - start, 1), "version": __version__})
    if failed:
        print(f"error: {len(failed)} notebook(s) failed: {', '.join(f'{j.chapter} [{j.tag}]' for j in failed)}",
              file=sys.stderr)
        return 1
    if freeze:
        committed = checkpoints.freeze(cache, book / "checkpoints")
        print(f"book checkpoints: {len(committed)} model(s) written to {book / 'checkpoints'}", file=sys.stderr)
    if do_build:
        return build(stage(book, runs, jobs, f"m{showcase_m}-seed{seeds[0]}"), site or book)
    return 0
