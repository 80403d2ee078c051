"""Command line: ``python -m oscbind_lite train --task same-different --m 95 --seed 0 --out DIR``.

Writes DIR/metrics.json (task, m, seed, test_accuracy, train_accuracy, steps, wall_seconds,
device, config, ...) and DIR/history.json (per-batch loss and accuracy, held-out evaluations).
Bad input exits with status 2 and one line naming the parameter and what it accepts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cache import write_json
from .data import GlyphError
from .model import BOTTLENECKS, READOUTS, STARTS
from .results import collect, markdown_table
from .train import TASKS, RunConfig, train_rmts, train_same_different, with_overrides


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one task for one split and seed; write metrics.json")
    p.add_argument("--task", choices=TASKS, default="same-different", help="which task (rmts trains stage 1 first if needed)")
    p.add_argument("--m", type=int, default=95, help="icons in training (the rest are held out)")
    p.add_argument("--seed", type=int, default=0, help="seeds split, trials, start phases and weights")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json and history.json")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    p.add_argument("--glyphs", default=None, help="folder of icon images or a .npy stack (default: 100 built-in icons)")
    p.add_argument("--cache", type=Path, default=None, help="checkpoint folder (default $OSCBIND_CACHE or ~/.cache/oscbind_lite)")
    p.add_argument("--retrain", action="store_true", help="train even if a matching checkpoint exists")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    model = p.add_argument_group("model")
    model.add_argument("--D", type=int, help="features / oscillators per object")
    model.add_argument("--N", type=int, help="oscillator dimension (sphere S^{N-1}); >= 2")
    model.add_argument("--T", type=int, help="Kuramoto steps; >= 1")
    model.add_argument("--gamma", type=float, help="Euler step size; > 0")
    model.add_argument("--start", choices=STARTS, help="start phases: shared by both objects, or independent")
    model.add_argument("--channels", type=_int_list, help="CNN widths, comma-separated (e.g. 16,32,64)")
    model.add_argument("--readout", choices=READOUTS, help="what the classifier reads of rho: chord sqrt(4-rho^2) or rho")
    model.add_argument("--bottleneck", choices=BOTTLENECKS, help="oscillator (default), or baselines difference |E1-E2| and concat [E1,E2]")
    model.add_argument("--no-omega", dest="omega", action="store_const", const=False, help="Omega = 0")
    model.add_argument("--no-j-out", dest="j_out", action="store_const", const=False, help="J_OUT = 0")
    model.add_argument("--symmetric", action="store_const", const=True, help="symmetric J_IN and J_OUT")
    train = p.add_argument_group("training")
    train.add_argument("--steps", type=int, help="stage-1 optimiser steps")
    train.add_argument("--batch-size", dest="batch_size", type=int, help="stage-1 pairs per batch")
    train.add_argument("--lr", type=float, help="stage-1 peak learning rate")
    train.add_argument("--eval-size", dest="eval_size", type=int, help="pairs in each stage-1 evaluation set")
    train.add_argument("--rmts-steps", dest="rmts_steps", type=int, help="stage-2 optimiser steps")
    train.add_argument("--rmts-eval-size", dest="rmts_eval_size", type=int, help="trials in each stage-2 evaluation set")


def parse_run(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that the parsed options describe (defaults for every option not given)."""
    names = ("m", "seed", "glyphs", "D", "N", "T", "gamma", "start", "omega", "j_out", "symmetric", "channels", "readout", "bottleneck",
             "steps", "batch_size", "lr", "eval_size", "rmts_steps", "rmts_eval_size")
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if given.get("glyphs") is not None:
        given["glyphs"] = str(Path(given["glyphs"]).expanduser().resolve())
    return with_overrides(RunConfig(), **given).validate(args.task)


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="python -m oscbind_lite", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    _train_parser(sub)
    summary = sub.add_parser("summary", help="print a markdown table of every metrics.json under a folder")
    summary.add_argument("root", type=Path, help="folder to search (e.g. runs)")
    sw = sub.add_parser("sweep", help="run the book's chapter notebooks through papermill for each split and seed")
    sw.add_argument("--m", type=int, nargs="+", default=[95, 50, 15], help="training-icon splits (default 95 50 15)")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    sw.add_argument("--showcase-m", type=int, default=95, help="split shown by the icon, energy and dynamics chapters")
    sw.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    sw.add_argument("--smoke", action="store_true", help="shrink every training to seconds")
    sw.add_argument("--book", type=Path, default=Path("book"), help="book source folder (default book)")
    sw.add_argument("--runs", type=Path, default=Path("runs/book"), help="where executed notebooks go (default runs/book)")
    sw.add_argument("--build", action="store_true", help="then build the book with jupyter-book -W")
    sw.add_argument("--site", type=Path, default=None, help="build output: SITE/_build/html (default: the book folder)")
    sw.add_argument("--force", action="store_true", help="rerun notebooks even when up to date")
    ev = sub.add_parser("evidence", help="run a profile of seeds, baselines and ablations as submitit jobs")
    ev.add_argument("--profile", default="paper", help="paper (everything) or smoke (seconds-long runs)")
    ev.add_argument("--results", type=Path, default=Path("results"), help="where run files and CSVs go (default results)")
    ev.add_argument("--cache", type=Path, default=None, help="checkpoint folder (default $OSCBIND_CACHE or ~/.cache/oscbind_lite)")
    ev.add_argument("--executor", default="auto", help="auto (Slurm where sbatch exists, else local), local or slurm")
    ev.add_argument("--workers", type=int, default=2, help="jobs at a time (local) or array parallelism (Slurm)")
    ev.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores / workers)")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    args = parser.parse_args(argv)
    if args.command == "evidence":
        from .cache import cache_dir
        from .evidence import run_profile

        return run_profile(args.profile, args.results, args.cache or cache_dir(), args.executor, args.workers,
                           args.threads, args.device)
    if args.command == "sweep":
        from .sweep import sweep

        if not (args.book / "notebooks").is_dir():
            print(f"error: book: {args.book / 'notebooks'} is not a folder of chapter notebooks", file=sys.stderr)
            return 2
        return sweep(args.m, args.seeds, args.showcase_m, args.device, args.smoke, args.book, args.runs, args.build, args.force,
                     args.site)
    if args.command == "summary":
        rows = collect(args.root)
        if not rows:
            print(f"error: root: no metrics.json under {args.root}", file=sys.stderr)
            return 2
        print(markdown_table(rows))
        return 0
    try:
        run = parse_run(args)
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"threads: must be an integer >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        trainer = train_same_different if args.task == "same-different" else train_rmts
        result = trainer(run, args.device, args.cache, progress=not args.quiet, retrain=args.retrain)
    except (ValueError, GlyphError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_json(args.out / "metrics.json", {**result.metrics, "cached": result.cached})
    write_json(args.out / "history.json", result.history)
    m = result.metrics
    print(f"{m['task']} m={m['m']} seed={m['seed']}: test accuracy {m['test_accuracy']:.3f}, "
          f"train accuracy {m['train_accuracy']:.3f}, {m['wall_seconds']:.0f} s on {m['device']}"
          f"{' (loaded from cache)' if result.cached else ''} -> {args.out / 'metrics.json'}")
    return 0
