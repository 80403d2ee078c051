"""Benchmarks: the oscillator update, its share of a training step, FLOP/s, time to accuracy, scaling.

    python benchmarks/bench.py [--device auto] [--quick] [--out benchmarks]

Writes ``results.json`` (everything measured, with the machine) and ``results.md`` (tables). Every
ratio is measured within this one run, alternating the variants being compared, because shared
machines are noisy; each time is the median of several repeats.

Oscillator variants, forward + backward through T steps:
* reference: ``kuramoto_step`` written term by term, T times, under autograd;
* fused: ``integrate`` (one (2DN x 2DN) product per step for J_IN, J_OUT and Omega) under autograd;
* fast: ``integrate_last``, the fused loop with a hand-written backward (what training uses);
* fast + compile: the same with its forward and backward loops compiled whole (``OSCBIND_COMPILE=1``).
Memory is the bytes each variant keeps for its backward pass (counted with saved-tensor hooks, so
the same number on CPU and GPU), plus the CUDA peak on a GPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from oscbind_lite import __version__, core
from oscbind_lite.cache import write_json
from oscbind_lite.config import RunConfig, with_overrides
from oscbind_lite.data import IconTasks
from oscbind_lite.train import build_same_different, resolve_device, train_same_different


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_times(fns: dict, device: torch.device, repeats: int, warmup: int = 3) -> dict:
    """Median seconds of each callable, measured in alternation (round robin) so drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while fn() builds its graph."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return total


def oscillator_inputs(B: int, D: int, N: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    x0 = core.normalize(torch.randn(B, 1, D, N, generator=g)).expand(B, 2, D, N).to(device)
    c = torch.randn(B, 2, D, N, generator=g).to(device).requires_grad_(True)
    A = 0.1 * torch.randn(D, N, N, generator=g)
    omega = (A - A.transpose(1, 2)).to(device).requires_grad_(True)
    J_in = (0.1 / (D * N) ** 0.5 * torch.randn(D, N, D, N, generator=g)).to(device).requires_grad_(True)
    J_out = (0.1 / (D * N) ** 0.5 * torch.randn(D, N, D, N, generator=g)).to(device).requires_grad_(True)
    return x0, c, omega, J_in, J_out


def reference_final(x0, c, omega, J_in, J_out, gamma, T):
    x = x0
    for _ in range(T):
        x = core.kuramoto_step(x, c, omega, J_in, J_out, gamma)
    return x


VARIANTS = {
    "reference": reference_final,
    "fused": lambda *a: core.integrate(*a)[-1],
    "fast": lambda *a: core.integrate_last(*a)[0],
}


def bench_oscillator(B: int, D: int, N: int, T: int, device: torch.device, repeats: int, compiled: bool) -> dict:
    """Forward + backward through T steps for each variant: seconds per step, saved bytes, speed-ups."""
    args = oscillator_inputs(B, D, N, device)
    fns = {name: (lambda f=f: core.coherence(f(*args, 0.5, T)).sum().backward()) for name, f in VARIANTS.items()}
    if compiled:
        fns["fast+compile"] = lambda: _with_compile(lambda: core.coherence(core.integrate_last(*args, 0.5, T)[0]).sum().backward())
    times = median_times(fns, device, repeats)
    out = {"B": B, "D": D, "N": N, "T": T}
    for name, f in VARIANTS.items():
        out[f"{name}_ms_per_step"] = 1000 * times[name] / T
        out[f"{name}_saved_MB"] = saved_bytes(lambda f=f: f(*args, 0.5, T)) / 2**20
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            fns[name]()
            out[f"{name}_cuda_peak_MB"] = torch.cuda.max_memory_allocated() / 2**20
    out["fast_speedup_vs_reference"] = times["reference"] / times["fast"]
    out["fast_speedup_vs_fused"] = times["fused"] / times["fast"]
    if compiled:
        out["compiled_ms_per_step"] = 1000 * times["fast+compile"] / T
        out["compile_speedup_vs_fast"] = times["fast"] / times["fast+compile"]
    return out


def _with_compile(fn):
    """Run fn with the torch.compile'd step loops (OSCBIND_COMPILE=1, read by core at each call), then switch back.

    Each shape compiles once (dynamic=False); the grid has more shapes than dynamo's default limit.
    """
    import torch._dynamo

    torch._dynamo.config.recompile_limit = 64
    before = os.environ.get("OSCBIND_COMPILE")
    os.environ["OSCBIND_COMPILE"] = "1"
    try:
        return fn()
    finally:
        if before is None:
            os.environ.pop("OSCBIND_COMPILE")
        else:
            os.environ["OSCBIND_COMPILE"] = before


def training_step_parts(run: RunConfig, device: torch.device, repeats: int, compiled: bool = False) -> dict:
    """One training step at the defaults and its parts, timed in alternation; FLOPs counted by torch.
    compiled: the oscillators also through the torch.compile'd loops (OSCBIND_COMPILE=1)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_same_different(run).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tasks, gen, B = IconTasks.from_config(run.data, device), torch.Generator().manual_seed(0), run.stage1.batch_size
    images = tasks.same_different("train", B, gen).images
    z = model.encode(images).detach().requires_grad_(True)

    def step():
        x, y, _ = tasks.same_different("train", B, gen)
        loss = F.binary_cross_entropy_with_logits(model(x, gen), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    parts = {
        "step": step,
        "data": lambda: tasks.same_different("train", B, gen),
        "cnn_forward_backward": lambda: model.encode(images).sum().backward(),
        "oscillators_forward_backward": lambda: core.coherence(model.binding(z, gen)).sum().backward(),
    }
    if compiled:
        parts["oscillators_compiled"] = lambda: _with_compile(lambda: core.coherence(model.binding(z, gen)).sum().backward())
    times = median_times(parts, device, repeats)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model.encode(images).sum().backward()
    cnn_flops = counter.get_total_flops()
    compiled_ratio = {"compiled_oscillators_over_cnn": times["oscillators_compiled"] / times["cnn_forward_backward"]} if compiled else {}
    return {**{f"{k}_ms": 1000 * v for k, v in times.items()}, **compiled_ratio,
            "oscillators_over_cnn": times["oscillators_forward_backward"] / times["cnn_forward_backward"],
            "oscillator_share_of_step": times["oscillators_forward_backward"] / times["step"],
            "step_flops": flops, "step_gflops_per_s": flops / times["step"] / 1e9,
            "cnn_flops": cnn_flops, "cnn_gflops_per_s": cnn_flops / times["cnn_forward_backward"] / 1e9, "batch": B}


def peak_matmul(device: torch.device, repeats: int, n: int = 2048) -> float:
    """GFLOP/s of a large float32 matmul: the machine's own attainable peak, measured now."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = median_times({"mm": lambda: a @ b}, device, repeats)["mm"]
    return 2 * n**3 / t / 1e9


COMPILE_PROBE = """
import sys, time, torch
sys.path.insert(0, {root!r})
from benchmarks.bench import oscillator_inputs
from oscbind_lite import core
torch.set_num_threads({threads})
args = oscillator_inputs(64, 32, 2, torch.device("cpu"))
t = time.perf_counter()
core.coherence(core.integrate_last(*args, 0.5, 25)[0]).sum().backward()
print(time.perf_counter() - t)
"""


def compile_cost() -> dict:
    """Seconds of the first compiled forward + backward at the defaults in a new process: with an empty
    Inductor cache (cold), then in a second process that finds the first one's cache (warm)."""
    import subprocess
    import sys
    import tempfile

    code = COMPILE_PROBE.format(root=str(Path(__file__).resolve().parents[1]), threads=torch.get_num_threads())
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "OSCBIND_COMPILE": "1", "TORCHINDUCTOR_CACHE_DIR": cache}
        runs = [float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.split()[-1]) for _ in range(2)]
    return {"cold_s": runs[0], "warm_s": runs[1]}


def mixed_precision(device: torch.device, repeats: int, quick: bool) -> dict:
    """bfloat16 autocast against float32 on a GPU: a default training step (pairs/s) and, unless quick, the
    default m = 95 run trained both ways from scratch (held-out accuracy). The oscillators stay in float32
    inside autocast (``core.integrate_last``); the CNN and the heads run in bfloat16."""
    import tempfile

    run = RunConfig()
    model = build_same_different(run).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tasks, gen, B = IconTasks.from_config(run.data, device), torch.Generator().manual_seed(0), run.stage1.batch_size

    def step(amp: bool) -> None:
        x, y, _ = tasks.same_different("train", B, gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.binary_cross_entropy_with_logits(model(x, gen).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = median_times({"float32": lambda: step(False), "bfloat16": lambda: step(True)}, device, repeats)
    out = {f"{k}_pairs_per_s": B / v for k, v in times.items()}
    if not quick:
        for name, amp in (("float32", False), ("bfloat16", True)):
            with tempfile.TemporaryDirectory() as cache, torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                r = train_same_different(run, str(device), Path(cache), progress=False, retrain=True)
            out[f"{name}_test_accuracy"] = r.metrics["test_accuracy"]
            out[f"{name}_seconds"] = r.metrics["wall_seconds"]
    return out


# Time to 97 % at m = 95 for the default and for shorter schedules (the goal: 97 % within 20 s), evaluated every 100 steps
# so that the time is resolved to about 3 s. Whether a recipe costs accuracy on new icons is the gap profile's
# question (steps 1000, channels 8-16-32 on validation icons); this measures only how fast each gets there, and
# none of these replaces the defaults (held-out icons choose nothing).
RECIPES = {"default": {}, "steps 1000": {"steps": 1000}, "steps 600": {"steps": 600},
           "steps 1000, channels 8-16-32": {"steps": 1000, "channels": (8, 16, 32)}}


def reached(curve: list, target: float, per_step: float) -> dict:
    """When a held-out curve [(step, accuracy), ...] first touches ``target``, and when it gets there to stay (every
    later evaluation too); steps and seconds, None where it never does."""
    first = next((s for s, a in curve if a >= target), None)
    stays = next((s for k, (s, _) in enumerate(curve) if all(a >= target for _, a in curve[k:])), None)
    return {"reached_at_step": first, "seconds": None if first is None else first * per_step,
            "stays_from_step": stays, "stays_seconds": None if stays is None else stays * per_step}


def time_to_accuracy(device: str, overrides: dict | None = None, target: float = 0.97) -> dict:
    """Train stage 1 at m = 95 from scratch (the defaults with ``overrides``); wall time until held-out accuracy
    first reaches ``target`` and until it stays there, with the evaluations counted in the time."""
    import tempfile

    run = with_overrides(RunConfig(), eval_every=100, **(overrides or {}))
    with tempfile.TemporaryDirectory() as cache:
        r = train_same_different(run, device, Path(cache), progress=False, retrain=True)
    h = r.history
    curve = list(zip(h["eval_step"], h["test_accuracy"]))
    return {"target": target, "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in (overrides or {}).items()},
            **reached(curve, target, r.metrics["wall_seconds"] / len(h["loss"])),
            "final_test_accuracy": r.metrics["test_accuracy"], "total_seconds": r.metrics["wall_seconds"], "curve": curve}


def scaling(device: torch.device, repeats: int, quick: bool) -> list[dict]:
    """Fast-variant cost against T, D and batch, one at a time from the defaults (B 64, D 32, N 2, T 25)."""
    rows = []
    Ts = (5, 10, 25, 50) if quick else (5, 10, 25, 50, 100)
    Ds = (16, 32, 64, 128) if quick else (16, 32, 64, 128, 256)
    Bs = (16, 64, 256, 512)
    for axis, values in (("T", Ts), ("D", Ds), ("B", Bs)):
        points = {v: {"B": 64, "D": 32, "N": 2, "T": 25, axis: v} for v in values}
        inputs = {v: oscillator_inputs(p["B"], p["D"], p["N"], device) for v, p in points.items()}
        fns = {v: partial(_fast_pass, inputs[v], p["T"]) for v, p in points.items()}
        times = median_times(fns, device, repeats)  # the points of one axis in alternation, so drift hits all alike
        for v, p in points.items():
            mem = saved_bytes(lambda: core.integrate_last(*inputs[v], 0.5, p["T"])[0])
            rows.append({"axis": axis, **p, "ms": 1000 * times[v], "saved_MB": mem / 2**20})
    return rows


def _fast_pass(args: tuple, T: int) -> None:
    core.coherence(core.integrate_last(*args, 0.5, T)[0]).sum().backward()


def machine(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu_model"] = platform.processor() or platform.machine()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes, no time-to-accuracy run")
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (it needs a C++ compiler)")
    args = p.parse_args()
    device = resolve_device(args.device)
    repeats = 5 if args.quick else 15
    report = {"version": __version__, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(device)}
    report["peak_matmul_gflops"] = peak_matmul(device, repeats)
    grid = [(B, D, N) for B in (64, 512) for D in (32, 64, 128) for N in (2, 4)]
    compiled = not args.no_compile
    # Compiling the whole loop takes about a minute per shape here: the compiled variant at D = 32, N = 2 only.
    report["oscillator"] = [bench_oscillator(B, D, N, 25, device, repeats, compiled and (D, N) == (32, 2))
                            for B, D, N in grid]
    report["training_step"] = training_step_parts(RunConfig(), device, repeats, compiled)
    if compiled and device.type == "cpu":
        report["compile_cost"] = compile_cost()
    report["training_step"]["share_of_peak"] = report["training_step"]["step_gflops_per_s"] / report["peak_matmul_gflops"]
    report["scaling"] = scaling(device, repeats, args.quick)
    if not args.quick:
        report["time_to_accuracy"] = {name: time_to_accuracy(args.device, over) for name, over in RECIPES.items()}
    if device.type == "cuda":
        report["mixed_precision"] = mixed_precision(device, repeats, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results" if device.type == "cpu" else f"results-{device.type}"
    write_json(args.out / f"{name}.json", report)
    (args.out / f"{name}.md").write_text(markdown(report) + "\n")
    print(markdown(report))


def when(step, seconds) -> str:
    return "never" if step is None else f"{step}, {seconds:.0f} s"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Measured {r['date']} on {m.get('gpu', m['cpu_model'])} ({m['cpu_count']} CPUs, torch {m['torch']}, "
             f"{m['torch_threads']} threads); peak float32 matmul {r['peak_matmul_gflops']:.0f} GFLOP/s.", "",
             "| B | D | N | reference ms/step | fused ms/step | fast ms/step | fast vs reference | fast + torch.compile | saved MB (ref / fast) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for o in r["oscillator"]:
        comp = f"{o['compiled_ms_per_step']:.3f} ({o['compile_speedup_vs_fast']:.2f}x)" if "compiled_ms_per_step" in o else "-"
        lines.append(f"| {o['B']} | {o['D']} | {o['N']} | {o['reference_ms_per_step']:.3f} | {o['fused_ms_per_step']:.3f} | "
                     f"{o['fast_ms_per_step']:.3f} | {o['fast_speedup_vs_reference']:.1f}x | {comp} | "
                     f"{o['reference_saved_MB']:.1f} / {o['fast_saved_MB']:.1f} |")
    s = r["training_step"]
    lines += ["", f"Training step at the defaults (batch {s['batch']} pairs): {s['step_ms']:.1f} ms; CNN forward+backward "
              f"{s['cnn_forward_backward_ms']:.1f} ms, oscillators forward+backward {s['oscillators_forward_backward_ms']:.1f} ms "
              f"(oscillators / CNN = {s['oscillators_over_cnn']:.2f}"
              + (f"; compiled {s['oscillators_compiled_ms']:.1f} ms, {s['compiled_oscillators_over_cnn']:.2f}" if "oscillators_compiled_ms" in s else "")
              + f"), data {s['data_ms']:.1f} ms. "
              f"{s['step_flops'] / 1e9:.2f} GFLOP per step = {s['step_gflops_per_s']:.1f} GFLOP/s, "
              f"{100 * s['share_of_peak']:.0f} % of the measured matmul peak (CNN alone {s['cnn_gflops_per_s']:.1f} GFLOP/s)."]
    if "mixed_precision" in r:
        a = r["mixed_precision"]
        lines += ["", f"Mixed precision (bfloat16 autocast, oscillators in float32): {a['bfloat16_pairs_per_s']:.0f} pairs/s "
                  f"per training step against {a['float32_pairs_per_s']:.0f} in float32"
                  + (f"; the default m = 95 run reaches {100 * a['bfloat16_test_accuracy']:.1f} % held-out in "
                     f"{a['bfloat16_seconds']:.0f} s against {100 * a['float32_test_accuracy']:.1f} % in {a['float32_seconds']:.0f} s."
                     if "bfloat16_test_accuracy" in a else ".")]
    if "compile_cost" in r:
        c = r["compile_cost"]
        lines += ["", f"First compiled forward + backward at the defaults in a new process: {c['cold_s']:.0f} s with an empty "
                  f"Inductor cache, {c['warm_s']:.0f} s when it finds an earlier process's cache."]
    if "time_to_accuracy" in r:
        lines += ["", "Time to 97 % held-out, stage 1 at m = 95, seed 0, evaluated every 100 steps (2,000 held-out "
                  "pairs; the evaluations count in the time); first: the first evaluation at 97 %, stays: from there on "
                  "every evaluation at 97 % or more:", "",
                  "| recipe | first (step, s) | stays (step, s) | final held-out | total seconds |", "|---|---|---|---|---|"]
        for name, t in r["time_to_accuracy"].items():
            lines.append(f"| {name} | {when(t['reached_at_step'], t['seconds'])} | {when(t['stays_from_step'], t['stays_seconds'])} | "
                         f"{100 * t['final_test_accuracy']:.1f} % | {t['total_seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
