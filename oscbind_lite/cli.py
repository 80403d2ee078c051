"""Command line: ``python -m oscbind_lite train --task same-different --m 95 --seed 0 --out DIR``.

Writes DIR/metrics.json (task, m, seed, test_accuracy, train_accuracy, steps, wall_seconds,
device, config, environment, ...) and DIR/history.json (per-batch loss and accuracy, held-out
evaluations). There is one flag per configuration field, derived from ``config.settings()``
(``--T 10``, ``--no-learn-omega``, ``--rmts-steps 100``), so the command line never lags the config.
Bad input exits with status 2 and one line naming the parameter and what it accepts; the output
folder and the cache are checked before any training, and the output folder is claimed for this run (another
run writing there at the same time, or an earlier run's metrics.json without --overwrite, is refused). Training
that diverges (a non-finite loss or gradient) stops at once with one line and status 1, caching nothing; Ctrl-C
exits 130 with one line, leaving no half-written file.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from pathlib import Path

from .config import TASKS, RunConfig, Setting, settings, type_name, with_overrides


NEGATIVE = re.compile(r"^-(\d|\.\d|inf\b|infinity\b|nan\b)", re.IGNORECASE)  # -1e-3, -.5, -inf: a value, not an option


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit status 2, and an option followed by
    a negative number takes it as its value (``--lr -1e-3`` reads as ``--lr=-1e-3``, then fails the option's own
    check with its name), where argparse alone would say "expected one argument"."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        joined, i = [], 0
        while i < len(args):
            if args[i].startswith("--") and "=" not in args[i] and i + 1 < len(args) and NEGATIVE.match(args[i + 1]):
                joined.append(f"{args[i]}={args[i + 1]}")
                i += 2
            else:
                joined.append(args[i])
                i += 1
        return super().parse_known_args(joined, namespace)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def flag(setting: Setting) -> str:
    """The option of a setting: ``--T``, ``--batch-size``, ``--rmts-steps``."""
    return "--" + setting.name.replace("_", "-")


def _add_setting(group, s: Setting) -> None:
    """One option for one config field, typed and documented from the field itself."""
    help_text = f"{s.help} (default {s.default})".replace("%", "%%")  # argparse formats help with %
    base = s.type
    if isinstance(base, types.UnionType):  # str | None -> str
        base = next(t for t in typing.get_args(base) if t is not type(None))
    if base is bool:
        group.add_argument(flag(s), dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    elif typing.get_origin(base) is tuple:
        group.add_argument(flag(s), dest=s.name, type=_int_list, default=None, metavar="A,B,...", help=help_text)
    else:
        group.add_argument(flag(s), dest=s.name, type=base, choices=s.choices, default=None,
                           metavar=None if s.choices else type_name(base).upper(), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m oscbind_lite", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    p = sub.add_parser("train", help="train one task for one split and seed; write metrics.json")
    p.add_argument("--task", choices=TASKS, default="same-different",
                   help="which task (rmts trains stage 1 first if needed)")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json and history.json")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    p.add_argument("--cache", type=Path, default=None,
                   help="checkpoint folder (default $OSCBIND_CACHE or ~/.cache/oscbind_lite)")
    p.add_argument("--retrain", action="store_true", help="train even if a matching checkpoint exists (for rmts: "
                                                          "stage 1 and the RMTS head)")
    p.add_argument("--overwrite", action="store_true", help="replace the metrics.json and history.json of an earlier "
                                                            "run in --out (without it such a folder is refused)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch, at most the cores this process "
                                                             "may use (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    groups = {"data": p.add_argument_group("data"), "model": p.add_argument_group("model"),
              "stage1": p.add_argument_group("training, stage 1 (same/different)"),
              "stage2": p.add_argument_group("training, stage 2 (the RMTS head)")}
    for s in settings().values():
        _add_setting(groups[s.part], s)
    return parser


def parse_run(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that the parsed options describe (defaults for every option not given)."""
    given = {name: getattr(args, name) for name in settings() if getattr(args, name, None) is not None}
    if given.get("glyphs") is not None:
        given["glyphs"] = str(Path(given["glyphs"]).expanduser().resolve())
    return with_overrides(RunConfig(), **given)


def main(argv: list[str] | None = None) -> int:
    from .cache import claim_folder, readable_folder
    from .data import GlyphError
    from .limits import check_threads
    from .train import Diverged, prepare, resolve_device, save_metrics, train_rmts, train_same_different

    args = build_parser().parse_args(argv)
    try:
        run = prepare(parse_run(args), args.task)  # every value checked before any folder is touched
        if args.threads is not None:
            check_threads(args.threads)
            import torch

            torch.set_num_threads(args.threads)
        resolve_device(args.device)
        claim_folder(args.out, "out", args.overwrite)  # before training: its metrics must have a folder of their own
        if args.cache is not None:  # read-only will do to load a model; training checks for a write before it starts
            args.cache = readable_folder(args.cache, "cache").resolve()
        trainer = train_same_different if args.task == "same-different" else train_rmts
        if args.retrain:
            print("retrain: "
                  f"{'stage 1 (same/different)' if args.task == 'same-different' else 'stage 1 and the RMTS head'}"
                  " trained afresh, the cached checkpoints replaced", file=sys.stderr)
        result = trainer(run, args.device, args.cache, progress=not args.quiet, retrain=args.retrain)
    except (ValueError, GlyphError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Diverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written (files are replaced atomically)", file=sys.stderr)
        return 130
    m = result.metrics
    line = (f"{m['task']} m={m['m']} seed={m['seed']}: test accuracy {m['test_accuracy']:.3f}, "
            f"train accuracy {m['train_accuracy']:.3f}, {m['wall_seconds']:.0f} s on {m['device']}"
            f"{' (loaded from cache)' if result.cached else ''}")
    try:
        path = save_metrics(result, args.out)
    except OSError as err:  # a full disk: the numbers are printed, and the model is in the cache unless it said not
        print(line)
        print(f"error: {err.strerror}", file=sys.stderr)
        return 1
    print(f"{line} -> {path}")
    return 0
