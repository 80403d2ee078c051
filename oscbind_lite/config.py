"""Every setting of a run, as typed frozen dataclasses: the one place a configuration is defined.

    RunConfig(data=DataConfig, model=ModelConfig, stage1=TrainConfig, stage2=TrainConfig)

Each field carries its help text (``param(default, help)``), and every interface reads the fields
rather than repeating them: ``with_overrides`` sets any field by name, the ``train`` command line
derives one flag per field (``cli.py``), and a book chapter may declare any field as a papermill
parameter (``oscbind_tools.chapter``). A new field therefore reaches all three at once.

Names: a field name is unique across data, model and stage 1; stage 2's fields take the prefix
``rmts_`` (``rmts_steps``). ``validate`` checks values and raises ``ValueError`` with one line that
names the field and what it accepts; what a run costs in memory and steps is checked by ``sizes``.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Sequence
from dataclasses import Field, asdict, dataclass, field, fields, replace

from .bottlenecks import BASELINES

TASKS = ("same-different", "rmts")
STARTS = ("shared", "independent", "drive")
READOUTS = ("chord", "rho")


class Registered(Sequence):
    """Allowed values that end with a registry's names, read when checked (a baseline registered later counts)."""

    def __init__(self, fixed: tuple[str, ...], registry: dict):
        self.fixed, self.registry = fixed, registry

    def __getitem__(self, i):
        return (*self.fixed, *self.registry)[i]

    def __len__(self) -> int:
        return len(self.fixed) + len(self.registry)


# "oscillator" (the poster's model) or a baseline registered in ``bottlenecks``, each described by its docstring.
BOTTLENECKS = Registered(("oscillator",), BASELINES)
ENCODERS = ("pooled", "strided")
INITS = ("ours", "xavier")
SCHEDULES = ("cosine", "authors", "constant")
OPTIMIZERS = ("adamw", "adam")
HOLDOUTS = ("test", "validation")
SPLITS = ("random", "folds", "first")
MAX_STROKE = 2  # half-pixels of a 32-pixel icon image: thinned by 2, the thinnest glyph keeps 4 % of its ink
NEAREST = 3  # a hard negative's second icon is one of the first's NEAREST most similar training icons
RMTS_TEST_ICONS = 5  # a different-source RMTS trial (AB; CD vs EE) of held-out icons uses five distinct icons
STAGE2_PREFIX = "rmts_"


def param(default, help: str, choices: tuple | None = None) -> Field:
    """A dataclass field with its help text (and allowed values), read by the CLI and the book."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class DataConfig:
    """Which icons, which split, and how each sample is drawn."""

    m: int = param(95, "icons in training; the other K - m are held out for testing")
    seed: int = param(0, "seeds the split, the trials, the start phases and the initial weights")
    glyphs: str | None = param(None, "folder of icon images or a .npy stack (default: the 100 built-in icons)")
    image_size: int = param(32, "side of each object image, pixels")
    scale_min: float = param(0.7, "smallest random scale of a glyph")
    scale_max: float = param(1.3, "largest random scale of a glyph")
    glyph_size: float = param(0.6, "glyph box / image side at scale 1")
    crop: bool = param(True, "crop each glyph image to its ink (off: keep the image's own frame, as the authors' code "
                       "does)")
    split: str = param("random", "test icons: a seeded random set; fold (seed mod F) of F = K / (K - m) disjoint "
                       "folds of one fixed order of the K icons; or first (icons 0..m-1 train, the rest test)", SPLITS)
    holdout: str = param("test", "what held-out accuracy is measured on: the test icons, or validation icons carved "
                         "out of the m training icons (a fifth, at least 5, so m >= 10; the test icons are then never "
                         "used)", HOLDOUTS)
    rotation: float = param(0.0, "largest random rotation of a glyph, degrees: each rendering turns it by U(-rotation, "
                            "rotation) (0: always upright)")
    shear: float = param(0.0, "largest random shear of a glyph: each rendering slants it, x moving by k y with k "
                         "uniform in [-shear, shear] (0: never slanted)")
    stroke: int = param(0, "largest random change of stroke width, half-pixels of the 32-pixel icon image: each "
                        "rendering thickens (k > 0) or thins (k < 0) every stroke by |k| half-pixels a side, k uniform "
                        "in -stroke..stroke (0: strokes as drawn)")
    hard_negatives: float = param(0.0, "share of stage 1's 'different' training pairs whose second icon is one of the "
                                  f"first's {NEAREST} most similar training icons (cosine of the icon images); "
                                  "the rest drawn uniformly")

    def validate(self) -> DataConfig:
        _check_choices(self)
        _check(self.m >= 2, "m", "an integer >= 2", self.m)
        if self.holdout == "validation":
            check_validation(self.m)
        _check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        _check(0 < self.scale_max, "scale_max", "a finite number > 0", self.scale_max)
        _check(0 < self.scale_min <= self.scale_max, "scale_min", f"in (0, scale_max = {self.scale_max}]",
               self.scale_min)
        _check(0 < self.glyph_size * self.scale_max <= 1, "glyph_size",
               f"such that glyph_size * scale_max is in (0, 1] (scale_max = {self.scale_max})", self.glyph_size)
        _check(self.image_size >= 8, "image_size", "an integer >= 8", self.image_size)
        _check(0 <= self.rotation <= 180, "rotation", "a number of degrees in [0, 180]", self.rotation)
        _check(0 <= self.shear <= 1, "shear", "a number in [0, 1]", self.shear)
        _check(0 <= self.stroke <= MAX_STROKE, "stroke", f"an integer in [0, {MAX_STROKE}]", self.stroke)
        _check(0 <= self.hard_negatives <= 1, "hard_negatives", "a share in [0, 1]", self.hard_negatives)
        return self


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the same/different model (the RMTS head is sized from it)."""

    D: int = param(32, "features of the CNN: one oscillator per feature and object")
    N: int = param(2, "oscillator dimension: x on the sphere S^{N-1} (2 = a phase on a circle)")
    T: int = param(25, "Kuramoto steps")
    gamma: float = param(0.5, "Euler step size")
    start: str = param("shared", "start phases: shared by both objects of a feature, independent, or drive (each "
                       "oscillator starts at its own normalised drive plus noise of SD 0.01, as the authors' "
                       "code does)", STARTS)
    learn_omega: bool = param(True, "learn natural frequencies Omega_d (off: Omega = 0, or fixed, see fixed_omega)")
    fixed_omega: bool = param(False, "Omega_d fixed, not learned: frequencies drawn once per seed from a "
                              "von Mises(0, 2) (the authors' code); needs learn_omega off")
    learn_j_in: bool = param(True, "learn the within-object coupling J_IN (off: J_IN = 0)")
    learn_j_out: bool = param(True, "learn the between-object coupling J_OUT (off: J_OUT = 0)")
    symmetric: bool = param(False, "constrain J_IN and J_OUT to symmetric matrices (the energy is then a Lyapunov "
                            "function)")
    channels: tuple[int, ...] = param((16, 32, 64), "CNN widths, one conv block each (comma-separated on the command "
                                      "line)")
    hidden: int = param(64, "width of the MLP heads")
    encoder: str = param("pooled", "CNN: pooled (3x3 conv, max-pool, BatchNorm, ReLU blocks, global average) or "
                         "strided (two 5x5 stride-2 convolutions with ReLU, no normalisation, a linear map: the "
                         "authors' CNN)", ENCODERS)
    init: str = param("ours", "initial W, b and J: ours (Gaussian W and b, small J) or xavier (Xavier-uniform W and J, "
                      "b = 0: the authors' code)", INITS)
    readout: str = param("chord", "what the classifier reads of rho: the chord sqrt(4 - rho^2) or rho itself", READOUTS)
    bottleneck: str = param("oscillator", "oscillator coherence (the poster's model), or a baseline: " + "; ".join(
        cls.__doc__.splitlines()[0].rstrip(".") for cls in BASELINES.values()), BOTTLENECKS)
    dropout: float = param(0.0, "dropout on the encodings z in stage-1 training: a feature is dropped for both objects "
                           "of a pair together (dropped for one alone, a same pair would look different)")
    context_norm: bool = param(False, "normalise each feature over the pair's two objects (their mean and scale, then "
                               "a learned gain and bias per feature) before the relational step: temporal context "
                               "normalisation (Webb et al. 2021) over a pair; each pair of an RMTS trial on its own")
    T_eval: int = param(0, "Kuramoto steps in eval mode (evaluation, and the frozen features the RMTS head trains and "
                        "tests on); 0: T")
    votes: int = param(1, "eval mode: logits averaged over this many draws of the random start (shared or independent "
                       "start; 1: a single draw)")
    readout_steps: int = param(1, "the classifier reads the coherence averaged over the last k states of a run, "
                               "x(T-k+1), ..., x(T): a readout of the trajectory's end (1: x(T) alone, the poster's)")

    def validate(self) -> ModelConfig:
        _check_choices(self)
        _check(self.D >= 1, "D", "an integer >= 1", self.D)
        _check(self.N >= 2, "N", "an integer >= 2", self.N)
        _check(self.T >= 1, "T", "an integer >= 1", self.T)
        _check(self.gamma > 0, "gamma", "a finite number > 0", self.gamma)
        _check(len(self.channels) >= 1 and min(self.channels) >= 1, "channels", "one or more positive integers",
               self.channels)
        _check(self.hidden >= 1, "hidden", "an integer >= 1", self.hidden)
        _check(not (self.fixed_omega and self.learn_omega), "fixed_omega", "False while learn_omega is True "
               "(a fixed Omega is not learned: set learn_omega False too)", self.fixed_omega)
        _check(0 <= self.dropout < 1, "dropout", "a probability in [0, 1)", self.dropout)
        _check(self.T_eval >= 0, "T_eval", "an integer >= 0 (0: T)", self.T_eval)
        _check(self.votes >= 1, "votes", "an integer >= 1", self.votes)
        _check(self.votes == 1 or self.bottleneck == "oscillator", "votes", "1 unless the bottleneck is oscillator "
               "(the baselines have no random start)", self.votes)
        _check(self.votes == 1 or self.start != "drive", "votes", "1 with start drive (its start is the drive, "
               "not a random draw)", self.votes)
        steps = min(self.T, self.T_eval or self.T)
        _check(1 <= self.readout_steps <= steps, "readout_steps", f"an integer from 1 to the steps of a run ({steps})",
               self.readout_steps)
        _check(self.readout_steps == 1 or self.bottleneck == "oscillator", "readout_steps", "1 unless the bottleneck "
               "is oscillator (the baselines have no trajectory)", self.readout_steps)
        return self

    def to_dict(self) -> dict:
        """Plain values (lists, not tuples), for JSON and checkpoints."""
        return {**asdict(self), "channels": list(self.channels)}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one stage: AdamW, linear warm-up then cosine decay, gradient clipping."""

    steps: int = param(3000, "optimiser steps (batches)")
    batch_size: int = param(64, "pairs (stage 1) or trials (stage 2) per batch")
    lr: float = param(3e-3, "peak learning rate")
    weight_decay: float = param(1e-4, "AdamW weight decay")
    clip: float = param(1.0, "largest gradient norm (0: no clipping)")
    eval_every: int = param(250, "steps between held-out evaluations")
    eval_size: int = param(2000, "pairs or trials in each fixed evaluation set")
    patience: int = param(0, "stop once the mean training-batch accuracy of this many eval_every windows in a row "
                          "has not risen 0.5 points above its best (0: run all steps)")
    pool: int = param(0, "training examples: 0 draws fresh pairs (trials) for every batch; n > 0 draws a fixed set of "
                         "n once per run and goes through it in shuffled epochs, each rendering drawn afresh")
    schedule: str = param("cosine", "learning rate: cosine (10 % linear warm-up from 0, cosine to 0), authors (5 % "
                          "warm-up from lr / 25, cosine to lr / 1000) or constant", SCHEDULES)
    optimizer: str = param("adamw", "adamw (decoupled weight decay) or adam (weight decay as an L2 term)", OPTIMIZERS)

    def validate(self, prefix: str = "") -> TrainConfig:
        _check_choices(self, prefix)
        for name in ("steps", "eval_every", "eval_size"):
            _check(getattr(self, name) >= 1, prefix + name, "an integer >= 1", getattr(self, name))
        _check(self.patience >= 0, prefix + "patience", "an integer >= 0", self.patience)
        _check(self.batch_size >= 2, prefix + "batch_size", "an integer >= 2", self.batch_size)
        _check(self.lr > 0, prefix + "lr", "a finite number > 0", self.lr)
        _check(self.clip >= 0, prefix + "clip", "a finite number >= 0", self.clip)
        _check(self.pool == 0 or self.pool >= self.batch_size, prefix + "pool", f"0 or at least batch_size = "
               f"{self.batch_size}", self.pool)
        _check(self.weight_decay >= 0, prefix + "weight_decay", "a finite number >= 0", self.weight_decay)
        if self.lr * self.weight_decay >= 1:  # each step would scale the weights by 1 - lr x weight_decay <= 0
            name, other = ("lr", "weight_decay") if self.lr != TrainConfig.lr else ("weight_decay", "lr")
            _check(False, prefix + name, f"below 1 / {prefix}{other} = {1 / getattr(self, other):.3g} (each step "
                   "scales the weights by 1 - lr x weight_decay)", getattr(self, name))
        return self


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained model (the device does not: results are device-independent)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    stage1: TrainConfig = TrainConfig()
    # The RMTS head trains until its training accuracy stops rising (every model alike), at most 2400 steps.
    stage2: TrainConfig = TrainConfig(steps=2400, eval_every=150, patience=2)

    def to_dict(self) -> dict:
        return {"data": asdict(self.data), "model": self.model.to_dict(),
                "stage1": asdict(self.stage1), "stage2": asdict(self.stage2)}

    def by_name(self) -> dict:
        """Every setting by its public name (``settings``: ``T``, ``steps``, ``rmts_steps``), as a flat dict."""
        return {**asdict(self.data), **asdict(self.model), **asdict(self.stage1),
                **{STAGE2_PREFIX + k: v for k, v in asdict(self.stage2).items()}}

    def changed(self, skip: tuple[str, ...] = ()) -> str:
        """The settings that differ from their defaults, as "gamma = 5.0 (default 0.5), T = 10 (default 25)"."""
        values, defaults = self.by_name(), RunConfig().by_name()
        return ", ".join(f"{k} = {v} (default {defaults[k]})" for k, v in values.items()
                         if v != defaults[k] and k not in skip)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The inverse of to_dict (e.g. the "config" of a metrics.json); validate() before training with it."""
        model = dict(d.get("model", {}))
        if "channels" in model:
            model["channels"] = tuple(model["channels"])
        return cls(DataConfig(**d.get("data", {})), ModelConfig(**model),
                   TrainConfig(**d.get("stage1", {})), TrainConfig(**d.get("stage2", {})))

    def validate(self, task: str = "same-different", n_icons: int | None = None) -> RunConfig:
        """Return self, or raise ValueError naming the first bad field; with n_icons, also check m against them."""
        _check(task in TASKS, "task", f"one of {', '.join(TASKS)}", task)
        self.data.validate()
        self.model.validate()
        self.stage1.validate()
        self.stage2.validate(STAGE2_PREFIX)
        blocks = len(self.model.channels)
        _check(2 ** blocks <= self.data.image_size, "channels",
               f"at most {self.data.image_size.bit_length() - 1} blocks for {self.data.image_size}-pixel images "
               "(each block halves the side)", self.model.channels)
        if n_icons is not None:
            check_m(self.data.m, n_icons, task)
            held = n_icons - self.data.m
            _check(self.data.split != "folds" or n_icons % held == 0, "split",
                   f"random, or folds with K - m dividing the K = {n_icons} icons (m = {self.data.m})", self.data.split)
        return self


def _check_choices(cfg, prefix: str = "") -> None:
    """Every field with a list of allowed values holds one of them."""
    for f in fields(cfg):
        choices = f.metadata.get("choices")
        if choices is not None:
            _check(getattr(cfg, f.name) in choices, prefix + f.name, f"one of {', '.join(choices)}",
                   getattr(cfg, f.name))


def _check(ok: bool, name: str, allowed: str, value) -> None:
    """Raise the one-line error for a field; non-finite numbers never pass."""
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        raise ValueError(f"{name}: must be {allowed}, got {value!r}")


def check_m(m: int, n_icons: int, task: str) -> None:
    """Raise ValueError naming m (or the icon set) and the allowed range when a split is impossible.

    Both tasks train on 2 icons or more (RMTS training trials reuse icons below five: ``data.sample_rmts``);
    same/different tests on at least 2 held-out icons, RMTS on at least RMTS_TEST_ICONS, so its held-out
    trials always use five distinct new icons: 2 <= m <= K - 2, and 2 <= m <= K - 5 for RMTS.
    """
    held = RMTS_TEST_ICONS if task == "rmts" else 2
    why = f" (its test trials need {held} held-out icons)" if task == "rmts" else ""
    if n_icons < 2 + held:
        raise ValueError(f"glyphs: {task} needs at least {2 + held} icons (2 to train, {held} to test), got {n_icons}")
    if not 2 <= m <= n_icons - held:
        raise ValueError(f"m: must be between 2 and {n_icons - held} for {task} with {n_icons} icons{why}, got {m}")


def check_validation(m: int) -> None:
    """Raise ValueError unless validation icons can be carved out of m training icons (``data.carve_validation``).

    The validation icons stand in for the test icons, so RMTS needs RMTS_TEST_ICONS of them; as many are
    kept to fit on, so that tuning runs train on the full RMTS design, not on the small-pool trials of m < 5.
    """
    need = 2 * RMTS_TEST_ICONS
    if m < need:
        raise ValueError(f"holdout: validation needs m >= {need} ({RMTS_TEST_ICONS} of the m training icons held out "
                         f"to validate on, at least {RMTS_TEST_ICONS} left to fit), got m = {m}; tune at a larger m "
                         f"and run m = {m} with holdout test")


# ---- one name per field, for with_overrides, the command line and the book's parameters ----

PARTS = {"data": DataConfig, "model": ModelConfig, "stage1": TrainConfig}


@dataclass(frozen=True)
class Setting:
    """One settable field of a RunConfig, by its public name (``T``, ``steps``, ``rmts_steps``)."""

    name: str
    part: str  # "data", "model", "stage1" or "stage2"
    field: str  # the field's name in its dataclass
    type: typing.Any  # the field's type (int, float, str, bool, str | None, tuple[int, ...])
    default: typing.Any
    help: str
    choices: tuple | None


def settings() -> dict[str, Setting]:
    """Every field of RunConfig by public name: data, model and stage-1 fields as named, stage 2 with ``rmts_``."""
    hints = {cls: typing.get_type_hints(cls) for cls in PARTS.values()}
    out = {}
    for part, cls in [*PARTS.items(), ("stage2", TrainConfig)]:
        default = getattr(RunConfig(), part)
        for f in fields(cls):
            name = (STAGE2_PREFIX if part == "stage2" else "") + f.name
            assert name not in out, f"config field {name} is defined twice"  # names must stay unique
            out[name] = Setting(name, part, f.name, hints[cls][f.name], getattr(default, f.name),
                                f.metadata["help"], f.metadata["choices"])
    return out


def type_name(tp) -> str:
    """A field type as the book's parameter cells write it: int, float, str, bool, str | None, tuple[int, ...]."""
    if isinstance(tp, types.UnionType):
        return " | ".join(type_name(t) for t in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "tuple[int, ...]"
    return "None" if tp is type(None) else tp.__name__


def coerce(setting: Setting, value):
    """Check a value's type against its field (an int is a valid float; lists become tuples); raise ValueError."""
    tp = setting.type
    if isinstance(tp, types.UnionType) and value is None and type(None) in typing.get_args(tp):
        return None
    base = next((t for t in typing.get_args(tp) if t is not type(None)), tp) if isinstance(tp, types.UnionType) else tp
    if typing.get_origin(base) is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, base):
        return value
    raise ValueError(f"{setting.name}: must be {type_name(tp)}, got {value!r}")


def with_overrides(run: RunConfig, **values) -> RunConfig:
    """A copy of run with settings changed by public name (``m=50, T=10, steps=500, rmts_steps=100``).

    Types are checked (one line naming the setting); values are checked by ``validate``.
    """
    known = settings()
    parts = {"data": run.data, "model": run.model, "stage1": run.stage1, "stage2": run.stage2}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"{name}: unknown setting (see oscbind_lite.config.settings())")
        s = known[name]
        if s.choices is not None and value not in s.choices:
            raise ValueError(f"{name}: must be one of {', '.join(s.choices)}, got {value!r}")
        parts[s.part] = replace(parts[s.part], **{s.field: coerce(s, value)})
    return RunConfig(**parts)


# One small setting for tests, CI and smoke builds of the book: every training takes seconds.
SMOKE = dict(D=8, channels=(8, 8), hidden=16, steps=24, batch_size=16, eval_every=12, eval_size=64,
             rmts_steps=16, rmts_batch_size=16, rmts_eval_every=8, rmts_eval_size=64)


def smoke(run: RunConfig = RunConfig()) -> RunConfig:
    """run shrunk to the smoke setting (everything else, such as m and seed, kept)."""
    return with_overrides(run, **SMOKE)

