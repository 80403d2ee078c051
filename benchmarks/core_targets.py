"""Measure the core's targets on this machine: accuracy and wall time per split, and the step breakdown.

    python benchmarks/core_targets.py [--splits 95 50 15] [--seed 0] [--out benchmarks]

Trains from scratch (into a temporary cache) with default settings, so the times are real
training times. Writes core_targets.json and core_targets.md. Targets (issue "The core"):
same/different >= 97 % (m=95), >= 95 % (m=50), >= 85 % (m=15); RMTS >= 95 % (m=95); the default
same/different run at m=95 in <= 3 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from bench import training_step_parts  # benchmarks/bench.py, beside this script
from oscbind_lite import __version__
from oscbind_lite.cache import write_json
from oscbind_lite.config import RunConfig, with_overrides
from oscbind_lite.train import resolve_device, train_rmts, train_same_different

TARGETS = {("same-different", 95): 0.97, ("same-different", 50): 0.95, ("same-different", 15): 0.85, ("rmts", 95): 0.95}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--splits", type=int, nargs="+", default=[95, 50, 15])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = p.parse_args()
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for m in args.splits:
            run = with_overrides(RunConfig(), m=m, seed=args.seed)
            for task, trainer in (("same-different", train_same_different), ("rmts", train_rmts)):
                r = trainer(run, args.device, Path(cache))
                target = TARGETS.get((task, m))
                rows.append({"task": task, "m": m, "seed": args.seed, "test_accuracy": r.metrics["test_accuracy"],
                             "train_accuracy": r.metrics["train_accuracy"], "wall_seconds": r.metrics["wall_seconds"],
                             "target": target, "met": None if target is None else r.metrics["test_accuracy"] >= target})
                print(rows[-1], flush=True)
    breakdown = training_step_parts(RunConfig(), device, repeats=15)
    report = {"version": __version__, "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "runs": rows,
              "step_seconds": breakdown, "date": time.strftime("%Y-%m-%d")}
    write_json(args.out / "core_targets.json", report)
    lines = [f"Core targets, measured {report['date']} on {device} ({report['cpus']} CPUs, torch {torch.__version__}), seed {args.seed}.", "",
             "| task | m | test acc. | train acc. | target | wall (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r["target"] is None else f">= {100 * r['target']:.0f} % ({'met' if r['met'] else 'missed'})"
        lines.append(f"| {r['task']} | {r['m']} | {100 * r['test_accuracy']:.1f} % | {100 * r['train_accuracy']:.1f} % "
                     f"| {target} | {r['wall_seconds']:.0f} |")
    b = breakdown
    lines += ["", f"One training step (batch {b['batch']} pairs): {b['step_ms']:.1f} ms; "
              f"CNN forward+backward {b['cnn_forward_backward_ms']:.1f} ms, "
              f"oscillators forward+backward {b['oscillators_forward_backward_ms']:.1f} ms "
              f"({100 * b['oscillator_share_of_step']:.0f} % of the step), data {b['data_ms']:.1f} ms; "
              f"oscillators / CNN = {b['oscillators_over_cnn']:.2f}."]
    (args.out / "core_targets.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
