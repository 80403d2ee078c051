"""The two training stages, evaluation, and train-or-load through the checkpoint cache.

Stage 1 trains encoder + oscillators + coherence classifier on same/different. Stage 2 freezes
all of that and trains a new MLP on the coherence vectors of RMTS trials. Both ask the cache
first: a checkpoint whose key (hash of the full config, the icons, the package version and the
training code) matches is loaded instead of retrained, so a later notebook or CLI call reuses what
an earlier one trained.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import __version__, core, sizes
from .cache import (CheckpointError, cache_dir, config_key, load_checkpoint, release_folder, save_checkpoint,
                    weights_digest, writable_folder, write_json)
from .config import STAGE2_PREFIX, ModelConfig, RunConfig, TrainConfig
from .data import Epochs, IconTasks, Trials, glyph_bank, icons_digest, seeded
from .glyphs import refuse_duplicates
from .limits import check_compiler
from .model import RMTS, SameDifferent

def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when present, else CPU; "cpu", "cuda", "cuda:N" and "mps" as given, checked."""
    allowed = "auto, cpu, cuda, cuda:N or mps"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: must be {allowed}, got {device!r}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device: must be {allowed}, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but no CUDA device is available here; use auto or cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {device!r} asked for, but MPS is not available here; use auto or cpu")
    return dev


class Diverged(RuntimeError):
    """Training produced a non-finite loss or gradient: stopped at once, nothing cached."""


class Trained(NamedTuple):
    """A trained model with its per-batch history and final metrics; ``cached`` if loaded, not trained."""

    model: nn.Module
    history: dict
    metrics: dict
    path: Path
    cached: bool


def prepare(run: RunConfig, task: str) -> RunConfig:
    """run validated for task, m checked against its icon set (read once, no two icons alike), and a C++ compiler
    found where OSCBIND_COMPILE asks for one; raises ValueError (or GlyphError)."""
    bank = glyph_bank(run.data.glyphs, run.data.crop)
    refuse_duplicates(bank, run.data.glyphs)
    check_compiler()
    run.validate(task, n_icons=len(bank))
    sizes.check(run, task)
    return run


# Model settings that change only what eval mode computes, never the training of stage 1: they stay out of its
# key, so a run that differs from a trained model only in them loads that model and is measured again; a
# test-time change is then compared on the very same weights. The RMTS head trains on eval-mode features, so
# they are part of its key.
EVAL_ONLY = ("T_eval", "votes")


def eval_settings(model: dict) -> dict:
    """The EVAL_ONLY entries of a model config dict (``ModelConfig.to_dict()``); absent ones at their defaults."""
    return {k: model.get(k, getattr(ModelConfig, k)) for k in EVAL_ONLY}


def _stage1_key(run: RunConfig) -> tuple[str, dict]:
    model = {k: v for k, v in run.model.to_dict().items() if k not in EVAL_ONLY}
    cfg = {"kind": "same-different", "data": asdict(run.data), "model": model,
           "train": asdict(run.stage1), "icons": icons_digest(glyph_bank(run.data.glyphs, run.data.crop))}
    return config_key(cfg), cfg


def _stage2_key(run: RunConfig, features: nn.Module) -> tuple[str, dict]:
    """The RMTS head's key: what it was derived from, the stage-1 weights themselves (their digest) beside stage 1's
    key. A stage-1 model retrained under the same key (its file was corrupt, ``retrain``, another thread count) is
    another model whenever its weights differ, so a head trained on the old one is never served on top of it."""
    cfg = {"kind": "rmts", "features": _stage1_key(run)[0], "weights": weights_digest(features.state_dict()),
           "eval": eval_settings(run.model.to_dict()), "train": asdict(run.stage2)}
    return config_key(cfg), cfg


def stage_config(run: RunConfig, task: str) -> TrainConfig:
    """The training settings of a task's stage: stage1 for same/different, stage2 for RMTS."""
    return run.stage1 if task == "same-different" else run.stage2


def eval_sets(run: RunConfig, task: str, device: torch.device, tasks: IconTasks | None = None) -> dict[str, Trials]:
    """Fixed "test" (held-out icons) and "train" (training icons, fresh scales and positions) sets (``tasks``: the
    run's icons and split when already built).

    Drawn from purpose-named generators, so every call (and every chapter) gets the same trials.
    """
    tasks, size = tasks or IconTasks.from_config(run.data, device), stage_config(run, task).eval_size
    return {split: tasks.trials(task, split, size, seeded(run.data.seed, f"{task}:eval:{split}"))
            for split in ("test", "train")}


def predictions(model: nn.Module, images: Tensor, seed: int, chunk: int = 500) -> Tensor:
    """Class predictions in eval mode, with start phases from a fixed generator: the same every call."""
    was_training = model.training
    model.eval()
    gen = seeded(seed, "eval:start")
    with torch.no_grad():
        logits = torch.cat([model(images[i: i + chunk], gen) for i in range(0, len(images), chunk)])
    model.train(was_training)
    return (logits > 0).long() if logits.dim() == 1 else logits.argmax(-1)


def accuracy(model: nn.Module, data: Trials, seed: int) -> float:
    """Share of correct predictions on a fixed evaluation set."""
    return (predictions(model, data.images, seed) == data.labels.long()).float().mean().item()


def _loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Loss and number correct: binary (one logit) or multi-class (several)."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, labels), ((logits > 0).float() == labels).sum()
    return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).sum()


def warmup_cosine(step: int, steps: int, warmup: float = 0.1) -> float:
    """Learning-rate factor: linear warm-up over the first 10 % of steps, then a cosine down to 0."""
    w = max(1, round(warmup * steps))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The learning-rate factor of a schedule at a step: "cosine" (``warmup_cosine``), "constant" (1), or
    "authors": linear warm-up from 1/25 over the first 5 % of steps, then a cosine down to 1/1000."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return warmup_cosine(step, steps)
    w = max(1, round(0.05 * steps))
    if step < w:
        return 1 / 25 + (1 - 1 / 25) * step / w
    return 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def fit(model: nn.Module, batch: Callable[[torch.Generator], tuple[Tensor, Tensor]], cfg: TrainConfig,
        evaluate: Callable[[], dict], gen: torch.Generator, desc: str, progress: bool = True, prefix: str = "") -> dict:
    """The training loop shared by both stages; returns the history as plain lists.

    history: per batch ``loss`` and ``accuracy``; every ``eval_every`` steps ``eval_step`` and
    each key of ``evaluate()`` (e.g. ``test_accuracy``). With ``cfg.patience`` > 0 training stops
    early once the mean training-batch accuracy of ``patience`` windows in a row has not risen
    PLATEAU_RISE above its best: a rule that reads only training icons, the same for every model. ``prefix`` names
    the stage's settings in messages ("" for stage 1, "rmts_" for the RMTS head).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = optimizer(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(lr_factor, cfg.schedule, steps=cfg.steps))
    history: dict[str, list] = {"loss": [], "accuracy": [], "eval_step": []}
    model.train()
    quiet = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")  # an explicit flag overrides tqdm's env
    bar = tqdm(range(1, cfg.steps + 1), desc=desc, disable=quiet, leave=False, file=sys.stderr, mininterval=2)
    best, stale = -1.0, 0
    for step in bar:
        images, labels = batch(gen)
        loss, correct = _loss(model(images, gen), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else math.inf).item()
        value = loss.item()
        if not (math.isfinite(value) and math.isfinite(norm)):  # before the step spoils the weights
            what, bad = ("loss", value) if not math.isfinite(value) else ("gradient norm", norm)
            raise Diverged(f"{prefix}lr, gamma, T: the {what} became {bad} at step {step} of {cfg.steps} ({prefix}lr "
                           f"{cfg.lr}); training stopped and nothing was cached: try a smaller {prefix}lr or gamma")
        try:
            opt.step()
        except RuntimeError as err:  # an update too large for float32 ("cannot be converted ... without overflow")
            if "overflow" not in str(err):
                raise
            raise Diverged(f"{prefix}lr: the optimiser step overflowed float32 at step {step} of {cfg.steps} "
                           f"({prefix}lr {cfg.lr}); training stopped and nothing was cached: "
                           f"try a smaller {prefix}lr") from None
        sched.step()
        history["loss"].append(value)
        history["accuracy"].append(correct.item() / len(labels))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            history["eval_step"].append(step)
            for k, v in evaluate().items():
                history.setdefault(k, []).append(v)
            bar.set_postfix(loss=f"{np.mean(history['loss'][-50:]):.3f}", test=f"{history['test_accuracy'][-1]:.3f}")
            window = float(np.mean(history["accuracy"][-cfg.eval_every:]))
            best, stale = (window, 0) if window >= best + PLATEAU_RISE else (best, stale + 1)
            if cfg.patience and stale >= cfg.patience:
                break
    return history


PLATEAU_RISE = 0.005  # half a point: smaller rises of a 150-step window's mean are within its sampling noise


def _load_or_none(path: Path, key: str) -> dict | None:
    """The checkpoint at path if it is valid for key; None if absent; a loud warning if unusable."""
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, key)
    except CheckpointError as err:
        print(f"warning: {err}; retraining and replacing it", file=sys.stderr)
        return None


def environment(device: torch.device) -> dict:
    """Where a model was trained: what changes float rounding, and with it the trajectory of training."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"torch": str(torch.__version__), "threads": torch.get_num_threads(), "compile": core.compile_enabled(),
            "cpu": cpu, "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "python": platform.python_version()}


def _finish(task: str, run: RunConfig, device: torch.device, model: nn.Module, sets: dict[str, Trials],
            wall: float, key: str, steps: int, tasks: IconTasks) -> dict:
    """The metrics of a trained stage; "test" means the validation icons when run.data.holdout says so."""
    return {"task": task, "m": run.data.m, "seed": run.data.seed, "holdout": run.data.holdout,
            "test_accuracy": accuracy(model, sets["test"], run.data.seed),
            "train_accuracy": accuracy(model, sets["train"], run.data.seed),
            "steps": steps, "wall_seconds": round(wall, 2), "device": str(device), "config": run.to_dict(),
            "eval_size": len(sets["test"].labels), "n_train_icons": len(tasks.train_icons),
            "n_test_icons": len(tasks.test_icons), "test_icons": tasks.test_icons.tolist(), "version": __version__,
            "key": key, "environment": environment(device)}


def build_same_different(run: RunConfig) -> SameDifferent:
    """A fresh stage-1 model, its weights drawn from the run's seed (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(run.data.seed, "same-different:init").initial_seed())
        return SameDifferent(run.model)


def _train_or_load(task: str, run: RunConfig, dev: torch.device, model: nn.Module, weights: nn.Module,
                   key: str, cfg: dict, path: Path, progress: bool, retrain: bool) -> Trained:
    """Load ``weights`` (the trainable part of model) from a valid checkpoint, or train the task and save it."""
    ckpt = None if retrain else _load_or_none(path, key)
    if ckpt is not None:
        try:
            weights.load_state_dict(ckpt["state_dict"])
            metrics = {**ckpt["metrics"], "loaded_on": str(dev)}
            if eval_settings(metrics["config"]["model"]) != eval_settings(run.model.to_dict()):  # measured again
                tasks = IconTasks.from_config(run.data, dev)
                sets = eval_sets(run, task, dev, tasks)
                metrics = {**_finish(task, run, dev, model.eval(), sets, metrics["wall_seconds"], key, metrics["steps"],
                                     tasks), "loaded_on": str(dev), "remeasured": eval_settings(run.model.to_dict())}
            return Trained(model.eval(), ckpt["history"], metrics, path, True)
        except RuntimeError as err:  # same key, other tensors: only a code change without a new key does this
            print(f"warning: checkpoint: {path} does not fit this model ({str(err).splitlines()[0]}); retraining",
                  file=sys.stderr)
    writable_folder(path.parent, "cache")  # before training, never after: a model is not trained to be lost
    stage, tasks = stage_config(run, task), IconTasks.from_config(run.data, dev)
    sets = eval_sets(run, task, dev, tasks)
    start = time.perf_counter()
    if stage.pool:  # a fixed training set, drawn once, in shuffled epochs
        epochs = Epochs(tasks, task, stage.pool, seeded(run.data.seed, f"{task}:pool"))
        batch = lambda g: epochs.batch(stage.batch_size, g)  # noqa: E731
    else:  # fresh pairs (trials) for every batch
        batch = lambda g: tasks.training(task, stage.batch_size, g)[:2]  # noqa: E731
    history = fit(model, batch, stage,
                  lambda: {"test_accuracy": accuracy(model, sets["test"], run.data.seed)},
                  seeded(run.data.seed, f"{task}:train"), f"{task} m={run.data.m}", progress,
                  "" if task == "same-different" else STAGE2_PREFIX)
    metrics = _finish(task, run, dev, model, sets, time.perf_counter() - start, key, len(history["loss"]), tasks)
    if metrics["train_accuracy"] < CHANCE_WARNING[task]:  # say what differs from the defaults, which do learn
        changed = run.changed(skip=("seed", "glyphs"))
        why = (f"settings changed from their defaults: {changed}" if changed else
               "at the default settings: try more steps or another lr")
        print(f"warning: {task} m={run.data.m} seed={run.data.seed}: accuracy on training icons is "
              f"{100 * metrics['train_accuracy']:.1f} %, near chance: the model did not learn ({why})",
              file=sys.stderr)
    try:
        save_checkpoint(path, key, cfg, weights.state_dict(), history, metrics)
    except OSError as err:  # a full or read-only disk: the trained model is still returned, and said to be uncached
        print(f"warning: cache: could not save the checkpoint {path} ({err.strerror or err}); the model is "
              "returned but not cached", file=sys.stderr)
    return Trained(model.eval(), history, metrics, path, False)


CHANCE_WARNING = {"same-different": 0.6, "rmts": 0.6}  # training accuracy below this is reported as not learned


def train_same_different(run: RunConfig = RunConfig(), device: str = "auto", cache: Path | None = None,
                         progress: bool = True, retrain: bool = False) -> Trained:
    """Stage 1, train-or-load: encoder + oscillators + coherence classifier on same/different."""
    run = prepare(run, "same-different")
    dev = resolve_device(device)
    key, cfg = _stage1_key(run)
    path = Path(cache or cache_dir()) / f"same-different-{key[:20]}.pt"
    model = build_same_different(run).to(dev)
    return _train_or_load("same-different", run, dev, model, model, key, cfg, path, progress, retrain)


def train_rmts(run: RunConfig = RunConfig(), device: str = "auto", cache: Path | None = None,
               progress: bool = True, retrain: bool = False) -> Trained:
    """Stage 2, train-or-load: a new MLP on frozen coherence vectors (stage 1 reused or trained first)."""
    run = prepare(run, "rmts")
    dev = resolve_device(device)
    features = train_same_different(run, device, cache, progress, retrain).model
    key, cfg = _stage2_key(run, features)
    path = Path(cache or cache_dir()) / f"rmts-{key[:20]}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(run.data.seed, "rmts:init").initial_seed())
        model = RMTS(features).to(dev)
    return _train_or_load("rmts", run, dev, model, model.head, key, cfg, path, progress, retrain)


def load_same_different(path: str | Path) -> SameDifferent:
    """A stage-1 model rebuilt from a checkpoint file alone: its stored config, then its weights (verified)."""
    ckpt = load_checkpoint(path)
    if ckpt["metrics"].get("task") != "same-different":
        raise CheckpointError(f"checkpoint: {path} holds a {ckpt['metrics'].get('task')} head, not a same/different "
                              "model")
    model = SameDifferent(RunConfig.from_dict(ckpt["metrics"]["config"]).model)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def save_metrics(result: Trained, folder: str | Path) -> Path:
    """Write FOLDER/history.json, then FOLDER/metrics.json (the metrics, and whether they were loaded from the cache):
    a metrics.json is only ever there with its history; then this process's claim of the folder ends. Raises OSError
    naming the folder if it cannot be written."""
    folder = Path(folder)
    try:
        write_json(folder / "history.json", result.history)
        write_json(folder / "metrics.json", {**result.metrics, "cached": result.cached})
    except OSError as err:
        (folder / "history.json").unlink(missing_ok=True)
        raise OSError(err.errno, f"out: could not write metrics.json and history.json to {folder} "
                                 f"({err.strerror or err})") from None
    finally:
        release_folder(folder)  # a claim of the folder (``cache.claim_folder``) ends with its files
    return folder / "metrics.json"
