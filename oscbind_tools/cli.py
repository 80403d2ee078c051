"""Command line of the tooling: ``python -m oscbind_tools sweep|evidence|studies|findings|summary``.

* ``sweep``: every chapter notebook of the book through papermill (per split and seed), then the build.
* ``evidence``: one declared study (its models, splits and seeds) as submitit jobs, local or on Slurm; resumes.
* ``summary``: a markdown table of every ``metrics.json`` under a folder.
* ``studies``: every declared study, the command that runs it and what it measures.
* ``findings``: the book's answer and the poster's claims against the committed results, as the README shows them;
  ``--write`` rewrites those blocks of the README and the book's intro.

Training one model is the science package's own command: ``python -m oscbind_lite train``.
Bad input exits with status 2 and one line naming the parameter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from oscbind_lite.cli import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m oscbind_tools", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    summary = sub.add_parser("summary", help="print a markdown table of every metrics.json under a folder")
    summary.add_argument("root", type=Path, help="folder to search (e.g. runs)")
    sub.add_parser("studies", help="list every declared study: the command that runs it, what it measures, its results")
    fd = sub.add_parser("findings", help="print the poster's claims against the committed results as a markdown table")
    fd.add_argument("--results", type=Path, default=Path("results"), help="the committed results (default results)")
    fd.add_argument("--write", action="store_true",
                    help="rewrite the generated blocks of README.md and book/intro.md (run from the repository root)")
    sw = sub.add_parser("sweep", help="run the book's chapter notebooks through papermill for each split and seed")
    sw.add_argument("--m", type=int, nargs="+", default=[95, 50, 15], help="training-icon splits (default 95 50 15)")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    sw.add_argument("--showcase-m", type=int, default=None,
                    help="split shown by the icon, energy, dynamics and explorable chapters "
                         "(default: the first of --m)")
    sw.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    sw.add_argument("--smoke", action="store_true", help="shrink every training to seconds (oscbind_lite.config.SMOKE)")
    sw.add_argument("--book", type=Path, default=Path("book"), help="book source folder (default book)")
    sw.add_argument("--runs", type=Path, default=Path("runs/book"),
                    help="where executed notebooks go (default runs/book)")
    sw.add_argument("--build", action="store_true", help="then build the book with jupyter-book -W")
    sw.add_argument("--site", type=Path, default=None, help="build output: SITE/_build/html (default: the book folder)")
    sw.add_argument("--force", action="store_true", help="rerun notebooks even when up to date")
    sw.add_argument("--kernels", type=int, default=1,
                    help="notebooks run at once, each chapter once what it reads is written (default 1; a training "
                         "chapter's torch then uses its share of the cores)")
    sw.add_argument("--retrain", action="store_true",
                    help="train every model afresh (in CACHE/retrain; committed and cached models unused) "
                         "and rerun every notebook")
    sw.add_argument("--freeze", action="store_true",
                    help="with --retrain: then replace book/checkpoints by the models it trained")
    ev = sub.add_parser("evidence", help="run a profile of seeds, baselines and ablations as submitit jobs")
    ev.add_argument("--profile", default="paper",
                    help="the study to run, as declared in oscbind_tools/studies/ (`python -m oscbind_tools studies` "
                         "lists them; smoke: the paper study in seconds)")
    ev.add_argument("--results", type=Path, default=None,
                    help="where run files and CSVs go "
                         "(default: results/ for the paper profile, results/PROFILE for any other)")
    ev.add_argument("--cache", type=Path, default=None,
                    help="checkpoint folder (default $OSCBIND_CACHE or ~/.cache/oscbind_lite)")
    ev.add_argument("--executor", default="auto",
                    help="auto (Slurm where a controller answers, else local), local or slurm")
    ev.add_argument("--workers", type=int, default=2, help="jobs at a time (local) or array parallelism (Slurm)")
    ev.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores / workers)")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    ev.add_argument("--tidy", action="store_true",
                    help="run nothing: rewrite the CSVs from the jobs finished so far (e.g. after an interrupted run)")
    return parser


def tidy_finished(profile: str, results: Path) -> int:
    """Rewrite a profile's CSVs from its finished, current jobs alone; trains nothing."""
    from .studies import STUDIES, plan
    from .studies.evidence import done, tally, tidy

    if profile not in STUDIES:
        print(f"error: profile: must be one of {', '.join(STUDIES)}, got {profile!r}", file=sys.stderr)
        return 2
    try:
        specs = plan(profile)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    smoke = STUDIES[profile].smoke
    finished = [s for s in specs if done(s, results, smoke)]
    if not finished:
        print(f"error: results: no finished {profile} jobs in {results} ({tally(specs, results, smoke)}); run "
              f"`python -m oscbind_tools evidence --profile {profile}` to redo them", file=sys.stderr)
        return 2
    try:
        tidy(results, finished)
    except OSError as err:  # a full disk: the run files stay as they are
        print(f"error: results: could not write the tables in {results} ({err.strerror or err}); the {len(finished)} "
              "finished run files are kept", file=sys.stderr)
        return 1
    print(f"{profile}: {len(finished)} of {len(specs)} jobs finished; tables rewritten in {results}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return command(args)
    except KeyboardInterrupt:  # before or after a command's own handling (which says what it kept)
        print("interrupted: nothing half-written is left (files are replaced atomically); rerun the command",
              file=sys.stderr)
        return 130


def command(args: argparse.Namespace) -> int:
    """Run one parsed command; returns its exit status."""
    if args.command == "evidence":
        from oscbind_lite.cache import cache_dir

        from .studies import results_folder
        from .studies.evidence import run_profile

        if args.tidy:
            return tidy_finished(args.profile, args.results or results_folder(args.profile))
        return run_profile(args.profile, args.results or results_folder(args.profile), args.cache or cache_dir(),
                           args.executor, args.workers, args.threads, args.device)
    if args.command == "studies":
        from .studies import markdown

        print(markdown())
        return 0
    if args.command == "findings":
        from .findings import Findings, blocks, write

        try:
            findings = Findings.load(args.results)
            made = blocks(findings)
        except (OSError, KeyError, ValueError) as err:
            print(f"error: results: {args.results} does not hold the committed studies ({type(err).__name__}: {err})",
                  file=sys.stderr)
            return 2
        if not args.write:
            print("\n\n".join(made.values()))
            return 0
        try:
            for page in write(findings, Path(".")):
                print(f"rewrote {page}", file=sys.stderr)
        except (OSError, ValueError) as err:
            print(f"error: write: {err} (run it from the repository root)", file=sys.stderr)
            return 2
        return 0
    if args.command == "sweep":
        from .book.sweep import sweep

        if not (args.book / "notebooks").is_dir():
            print(f"error: book: {args.book / 'notebooks'} is not a folder of chapter notebooks", file=sys.stderr)
            return 2
        return sweep(args.m, args.seeds, args.showcase_m, args.device, args.smoke, args.book, args.runs, args.build,
                     args.force, args.site, args.retrain, args.freeze, args.kernels)
    from .studies.reading import collect
    from .studies.table import COLUMNS, markdown_table

    if not args.root.is_dir():
        print(f"error: root: {args.root} is not a folder", file=sys.stderr)
        return 2
    rows = collect(args.root)
    if not rows:
        print(f"error: root: no metrics.json under {args.root} that can be read", file=sys.stderr)
        return 2
    print(markdown_table(rows, (*COLUMNS, "path")))  # the folder: two runs of one setting stay apart
    return 0
