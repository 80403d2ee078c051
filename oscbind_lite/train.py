"""Configuration, the two training stages, evaluation, and the train-or-load checkpoint cache.

Stage 1 trains encoder + oscillators + coherence classifier on same/different. Stage 2 freezes
all of that and trains a new MLP on the coherence vectors of RMTS trials. Both ask the cache
first: a checkpoint whose key (hash of the full config + package version + icon set) matches is
loaded instead of retrained, so a later notebook or CLI call reuses what an earlier one trained.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import __version__
from .cache import CheckpointError, cache_dir, config_key, load_checkpoint, save_checkpoint
from .data import Augment, IconTasks, check_m, load_glyphs, render_default_glyphs, seeded
from .model import RMTS, ModelConfig, SameDifferent

TASKS = ("same-different", "rmts")


@dataclass(frozen=True)
class DataConfig:
    """Which icons, which split, and how samples are drawn."""

    m: int = 95  # icons in training; the other K - m are held out for testing
    seed: int = 0  # seeds the split, the trials, the start phases and the initial weights
    glyphs: str | None = None  # folder of images or .npy stack; None = the 100 default icons
    image_size: int = 32  # side of each object image, pixels
    scale_min: float = 0.7  # random scale range of a glyph
    scale_max: float = 1.3
    glyph_size: float = 0.6  # glyph box / image side at scale 1

    def augment(self) -> Augment:
        return Augment(self.image_size, self.scale_min, self.scale_max, self.glyph_size)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one stage: AdamW, linear warm-up then cosine decay, gradient clipping."""

    steps: int = 3000  # optimiser steps (batches)
    batch_size: int = 64  # pairs (stage 1) or trials (stage 2) per batch
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 1e-4
    clip: float = 1.0  # max gradient norm
    eval_every: int = 250  # steps between held-out evaluations
    eval_size: int = 2000  # pairs or trials in each fixed evaluation set


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained model (the device does not: results are device-independent)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    stage1: TrainConfig = TrainConfig()
    stage2: TrainConfig = TrainConfig(steps=300, lr=3e-3, eval_every=150)

    def to_dict(self) -> dict:
        return {"data": asdict(self.data), "model": self.model.to_dict(),
                "stage1": asdict(self.stage1), "stage2": asdict(self.stage2)}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """The inverse of to_dict (e.g. the "config" of a metrics.json); call validate() before training with it."""
        model = dict(d.get("model", {}))
        if "channels" in model:
            model["channels"] = tuple(model["channels"])
        return cls(DataConfig(**d.get("data", {})), ModelConfig(**model),
                   TrainConfig(**d.get("stage1", {})), TrainConfig(**d.get("stage2", {})))

    def validate(self, task: str = "same-different") -> "RunConfig":
        """Return self, or raise ValueError with one line naming the bad parameter and its allowed values."""
        self.model.validate()
        d = self.data
        if not (0 < d.scale_min <= d.scale_max):
            raise ValueError(f"scale_min, scale_max: need 0 < scale_min <= scale_max, got {d.scale_min}, {d.scale_max}")
        if not (0 < d.glyph_size * d.scale_max <= 1):
            raise ValueError(f"glyph_size: glyph_size * scale_max must be in (0, 1], got {d.glyph_size * d.scale_max}")
        if d.image_size < 8:
            raise ValueError(f"image_size: must be an integer >= 8, got {d.image_size}")
        for stage in ("stage1", "stage2"):
            t = getattr(self, stage)
            for name in ("steps", "batch_size", "eval_every", "eval_size"):
                if getattr(t, name) < 1:
                    raise ValueError(f"{name}: must be an integer >= 1 ({stage}), got {getattr(t, name)}")
            if t.batch_size < 2:
                raise ValueError(f"batch_size: must be >= 2 ({stage}), got {t.batch_size}")
            if t.lr <= 0 or t.clip <= 0 or t.weight_decay < 0:
                raise ValueError(f"lr, clip, weight_decay: need lr > 0, clip > 0, weight_decay >= 0 ({stage})")
        check_m(d.m, len(glyph_bank(d.glyphs)), task)
        return self


def with_overrides(run: RunConfig, **values) -> RunConfig:
    """A copy of run with fields changed by name, wherever they live (``m=50, T=10, steps=500``).

    ``steps``, ``batch_size``, ``lr`` ... set stage 1; prefix ``rmts_`` sets stage 2 (``rmts_steps``).
    """
    parts = {"data": run.data, "model": run.model, "stage1": run.stage1, "stage2": run.stage2}
    for name, value in values.items():
        part = "stage2" if name.startswith("rmts_") else None
        key = name.removeprefix("rmts_")
        if part is None:
            part = next((p for p in ("data", "model", "stage1") if key in {f.name for f in fields(parts[p])}), None)
        if part is None or key not in {f.name for f in fields(parts[part])}:
            raise ValueError(f"{name}: unknown parameter")
        parts[part] = replace(parts[part], **{key: value})
    return RunConfig(**parts)


@functools.lru_cache(maxsize=8)
def glyph_bank(glyphs: str | None) -> np.ndarray:
    """The icon images ``(K, 32, 32)`` of a glyph source (None = default set), read once per process."""
    bank = render_default_glyphs() if glyphs is None else load_glyphs(glyphs)
    bank.setflags(write=False)
    return bank


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


class Trained(NamedTuple):
    """A trained model with its per-batch history and final metrics; ``cached`` if loaded, not trained."""

    model: nn.Module
    history: dict
    metrics: dict
    path: Path
    cached: bool


class EvalSet(NamedTuple):
    """A fixed evaluation set: images and labels drawn once from a seeded generator."""

    images: Tensor
    labels: Tensor


def _stage1_key(run: RunConfig) -> tuple[str, dict]:
    bank = glyph_bank(run.data.glyphs)
    cfg = {"kind": "same-different", "data": asdict(run.data), "model": run.model.to_dict(),
           "train": asdict(run.stage1), "icons": hashlib.sha256(bank.tobytes()).hexdigest()}
    return config_key(cfg), cfg


def _stage2_key(run: RunConfig) -> tuple[str, dict]:
    cfg = {"kind": "rmts", "features": _stage1_key(run)[0], "train": asdict(run.stage2)}
    return config_key(cfg), cfg


def stage_config(run: RunConfig, task: str) -> TrainConfig:
    """The training settings of a task's stage: stage1 for same/different, stage2 for RMTS."""
    return run.stage1 if task == "same-different" else run.stage2


def icon_tasks(run: RunConfig, device: torch.device) -> IconTasks:
    """The icon bank of the run on device, split by its m and seed."""
    return IconTasks(glyph_bank(run.data.glyphs), run.data.m, run.data.seed, run.data.augment(), device)


def eval_sets(run: RunConfig, task: str, device: torch.device) -> dict[str, EvalSet]:
    """Fixed "test" (held-out icons) and "train" (training icons, fresh scales and positions) sets."""
    tasks, size = icon_tasks(run, device), stage_config(run, task).eval_size
    make = tasks.same_different if task == "same-different" else tasks.rmts
    return {split: EvalSet(*make(split, size, seeded(run.data.seed, f"{task}:eval:{split}"))) for split in ("test", "train")}


def predictions(model: nn.Module, images: Tensor, seed: int, chunk: int = 500) -> Tensor:
    """Class predictions in eval mode, with start phases from a fixed generator: the same every call."""
    was_training = model.training
    model.eval()
    gen = seeded(seed, "eval:start")
    with torch.no_grad():
        logits = torch.cat([model(images[i: i + chunk], gen) for i in range(0, len(images), chunk)])
    model.train(was_training)
    return (logits > 0).long() if logits.dim() == 1 else logits.argmax(-1)


def accuracy(model: nn.Module, data: EvalSet, seed: int) -> float:
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


def fit(model: nn.Module, batch: Callable[[torch.Generator], tuple[Tensor, Tensor]], cfg: TrainConfig,
        evaluate: Callable[[], dict], gen: torch.Generator, desc: str, progress: bool = True) -> dict:
    """The training loop shared by both stages; returns the history as plain lists.

    history: per batch ``loss`` and ``accuracy``; every ``eval_every`` steps ``eval_step`` and
    each key of ``evaluate()`` (e.g. ``test_accuracy``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(warmup_cosine, steps=cfg.steps))
    history: dict[str, list] = {"loss": [], "accuracy": [], "eval_step": []}
    model.train()
    bar = tqdm(range(1, cfg.steps + 1), desc=desc, disable=not progress, leave=False, file=sys.stderr, mininterval=2)
    for step in bar:
        images, labels = batch(gen)
        loss, correct = _loss(model(images, gen), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        sched.step()
        history["loss"].append(loss.item())
        history["accuracy"].append(correct.item() / len(labels))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            history["eval_step"].append(step)
            for k, v in evaluate().items():
                history.setdefault(k, []).append(v)
            bar.set_postfix(loss=f"{np.mean(history['loss'][-50:]):.3f}", test=f"{history['test_accuracy'][-1]:.3f}")
    return history


def _load_or_none(path: Path, key: str) -> dict | None:
    """The checkpoint at path if it is valid for key; None if absent; a loud warning if unusable."""
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, key)
    except CheckpointError as err:
        print(f"warning: {err}; retraining and replacing it", file=sys.stderr)
        return None


def _finish(task: str, run: RunConfig, device: torch.device, model: nn.Module, sets: dict[str, EvalSet],
            wall: float, key: str) -> dict:
    return {"task": task, "m": run.data.m, "seed": run.data.seed,
            "test_accuracy": accuracy(model, sets["test"], run.data.seed),
            "train_accuracy": accuracy(model, sets["train"], run.data.seed),
            "steps": stage_config(run, task).steps,
            "wall_seconds": round(wall, 2), "device": str(device), "config": run.to_dict(),
            "eval_size": len(sets["test"].labels), "n_train_icons": run.data.m,
            "n_test_icons": len(glyph_bank(run.data.glyphs)) - run.data.m, "version": __version__, "key": key}


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
            return Trained(model.eval(), ckpt["history"], {**ckpt["metrics"], "loaded_on": str(dev)}, path, True)
        except RuntimeError as err:  # same key, other tensors: only a code change without a new key does this
            print(f"warning: checkpoint: {path} does not fit this model ({str(err).splitlines()[0]}); retraining",
                  file=sys.stderr)
    stage, tasks, sets = stage_config(run, task), icon_tasks(run, dev), eval_sets(run, task, dev)
    make = tasks.same_different if task == "same-different" else tasks.rmts
    start = time.perf_counter()
    history = fit(model, lambda g: make("train", stage.batch_size, g), stage,
                  lambda: {"test_accuracy": accuracy(model, sets["test"], run.data.seed)},
                  seeded(run.data.seed, f"{task}:train"), f"{task} m={run.data.m}", progress)
    metrics = _finish(task, run, dev, model, sets, time.perf_counter() - start, key)
    save_checkpoint(path, key, cfg, weights.state_dict(), history, metrics)
    return Trained(model.eval(), history, metrics, path, False)


def train_same_different(run: RunConfig = RunConfig(), device: str = "auto", cache: Path | None = None,
                         progress: bool = True, retrain: bool = False) -> Trained:
    """Stage 1, train-or-load: encoder + oscillators + coherence classifier on same/different."""
    run = run.validate("same-different")
    dev = resolve_device(device)
    key, cfg = _stage1_key(run)
    path = Path(cache or cache_dir()) / f"same-different-{key[:20]}.pt"
    model = build_same_different(run).to(dev)
    return _train_or_load("same-different", run, dev, model, model, key, cfg, path, progress, retrain)


def train_rmts(run: RunConfig = RunConfig(), device: str = "auto", cache: Path | None = None,
               progress: bool = True, retrain: bool = False) -> Trained:
    """Stage 2, train-or-load: a new MLP on frozen coherence vectors (stage 1 reused or trained first)."""
    run = run.validate("rmts")
    dev = resolve_device(device)
    features = train_same_different(run, device, cache, progress).model
    key, cfg = _stage2_key(run)
    path = Path(cache or cache_dir()) / f"rmts-{key[:20]}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(run.data.seed, "rmts:init").initial_seed())
        model = RMTS(features).to(dev)
    return _train_or_load("rmts", run, dev, model, model.head, key, cfg, path, progress, retrain)


def load_same_different(path: str | Path) -> SameDifferent:
    """A stage-1 model rebuilt from a checkpoint file alone: its stored config, then its weights (verified)."""
    ckpt = load_checkpoint(path)
    if ckpt["metrics"].get("task") != "same-different":
        raise CheckpointError(f"checkpoint: {path} holds a {ckpt['metrics'].get('task')} head, not a same/different model")
    model = SameDifferent(RunConfig.from_dict(ckpt["metrics"]["config"]).model)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
