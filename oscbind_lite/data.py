"""Icons, splits and trials: everything the models see comes from here.

* The default icon set: 100 glyphs of the Unicode Miscellaneous Symbols block, rendered offline
  from DejaVu Sans (the font matplotlib ships). Any stack of K >= 2 images can replace it.
* A split puts m icons in training and the other K - m in testing; they never overlap.
* ``glyph_bank`` reads an icon source (``glyphs.load_glyphs``) once per process and content; ``IconTasks.from_config``
  splits it for a run.
* Trials (same/different pairs, RMTS triples of pairs) are drawn from a seeded CPU generator, so a
  seed gives the same icons, scales and positions on every device; the images are then rendered
  for the whole batch at once on the model's device (one ``affine_grid`` + ``grid_sample``).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import NEAREST, RMTS_TEST_ICONS, DataConfig, check_m, check_validation
from .glyphs import GlyphError as GlyphError, _fit, load_glyphs as load_glyphs, source_digest

# 100 visually distinct glyphs of U+2600-26FF in DejaVu Sans. Left out: the second form of a glyph
# (white/black chess pieces, suits, flags, smileys, hands, recycling signs), near-duplicates (numbered
# recycling signs, most trigrams and dice, the many gender and minor-planet signs, mirrored moons,
# Scorpius beside Virgo). tests/test_data.py checks names and pixels for pairs.
DEFAULT_CODEPOINTS = tuple(int(h, 16) for h in """
2600 2601 2602 2603 2605 2607 2608 260A 260D 260E 2610 2612 2613 2615 2616 2618 2619 261B 261D 2620
2621 2622 2623 2624 2625 2626 2627 2629 262A 262B 262C 262D 262E 262F 2630 2637 2638 2639 263B 263D
2640 2642 2644 2646 2648 2649 264A 264B 264C 264D 264E 2604 2650 2652 2653 2654 265B 2656 265D 265E
2659 2660 2661 2662 2663 2668 2669 266A 266B 266D 266E 266F 2672 26B1 267E 267F 2680 2682 2685 2687
2690 2692 2693 2694 2696 2697 2698 2699 269B 269C 269E 26A0 26A1 26A5 26AB 26AD 26B0 26B5 26B7 26C3
""".split())


def render_default_glyphs(codepoints=DEFAULT_CODEPOINTS) -> np.ndarray:
    """Render the default icons from matplotlib's DejaVu Sans: ``(K, 32, 32)`` float ink in [0, 1]."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), 96)
    out = []
    for cp in codepoints:
        canvas = Image.new("L", (160, 160), 0)
        ImageDraw.Draw(canvas).text((16, 8), chr(cp), font=font, fill=255)
        out.append(_fit(np.asarray(canvas, np.float32) / 255.0))
    return np.stack(out)


def glyph_bank(glyphs: str | None, crop: bool = True) -> np.ndarray:
    """The icon images ``(K, 32, 32)`` of a glyph source (None = the default set, always cropped), read once per
    process for each content of the source: a folder edited since is read again (``glyphs.source_digest``)."""
    return _bank(glyphs, crop, None if glyphs is None else source_digest(glyphs))


@functools.lru_cache(maxsize=8)
def _bank(glyphs: str | None, crop: bool, digest: str | None) -> np.ndarray:
    bank = render_default_glyphs() if glyphs is None else load_glyphs(glyphs, crop)
    bank.setflags(write=False)
    return bank


def icons_digest(bank: np.ndarray) -> str:
    """sha256 of an icon bank's pixels: part of every cache key, so a changed glyph folder is a new model."""
    return hashlib.sha256(np.ascontiguousarray(bank).tobytes()).hexdigest()


def split_icons(n_icons: int, m: int, seed: int, split: str = "random") -> tuple[Tensor, Tensor]:
    """(m training icons, n_icons - m test icons), disjoint, each sorted.

    "random": a seeded random set of test icons. "folds": one fixed order of the icons cut into
    F = n_icons / (n_icons - m) disjoint folds; seed s tests on fold s mod F, so F seeds test every icon once.
    "first": icons 0..m-1 train and the rest test, whatever the seed (the authors' split).
    """
    check_m(m, n_icons, "same-different")
    if split == "first":
        return torch.arange(m), torch.arange(m, n_icons)
    if split == "folds":
        held = n_icons - m
        if n_icons % held:
            raise ValueError(f"split: folds needs K - m to divide the K = {n_icons} icons, got m = {m}")
        order = torch.randperm(n_icons, generator=seeded(0, "folds"))
        start = (seed % (n_icons // held)) * held
        test = order[start: start + held]
        keep = torch.ones(n_icons, dtype=torch.bool)
        keep[test] = False
        return keep.nonzero().squeeze(1), test.sort().values
    perm = torch.randperm(n_icons, generator=seeded(seed, "split"))
    return perm[:m].sort().values, perm[m:].sort().values


def carve_validation(train_icons: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """(fitting icons, validation icons): a seeded fifth of the training icons (at least RMTS_TEST_ICONS) held out.

    Every design choice is made on the validation icons; the test icons stay untouched until the final runs.
    Needs m >= 2 * RMTS_TEST_ICONS (``config.check_validation``).
    """
    check_validation(len(train_icons))
    n_val = max(RMTS_TEST_ICONS, round(len(train_icons) / 5))
    perm = torch.randperm(len(train_icons), generator=seeded(seed, "validation"))
    return train_icons[perm[n_val:]].sort().values, train_icons[perm[:n_val]].sort().values


def seeded(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose ("split", "train", "test", ...) of a seed; purposes never share a stream."""
    digest = hashlib.sha256(f"oscbind:{seed}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def balanced_bits(n: int, gen: torch.Generator) -> Tensor:
    """n bits with exactly n // 2 ones (one more zero when n is odd), in random order."""
    return (torch.arange(n) < n // 2).long()[torch.randperm(n, generator=gen)]


def sample_same_different(pool: Tensor, n: int, gen: torch.Generator, nearest: Tensor | None = None,
                          hard: float = 0.0) -> tuple[Tensor, Tensor]:
    """n pairs of icons from pool, exactly half "same": icons ``(n, 2)`` and labels ``(n,)`` (1 = same).

    A "different" pair's second icon is uniform over the other P - 1 icons; with ``hard`` > 0 it is instead,
    with probability ``hard``, one of the first's most similar icons, ``nearest`` ``(P, k)`` (pool positions,
    ``nearest_icons``), each equally likely. Those draws come last and only then: hard = 0 draws as ever.
    """
    P = len(pool)
    same = balanced_bits(n, gen)
    a = torch.randint(P, (n,), generator=gen)
    b = (a + torch.randint(1, P, (n,), generator=gen)) % P  # uniform over the other P - 1 icons
    if hard:
        near = nearest[a, torch.randint(nearest.shape[1], (n,), generator=gen)]
        b = torch.where(torch.rand(n, generator=gen) < hard, near, b)
    b = torch.where(same.bool(), a, b)
    return pool[torch.stack([a, b], 1)], same


def nearest_icons(bank: Tensor, pool: Tensor, k: int = NEAREST) -> Tensor:
    """For each icon of pool, the pool positions of its k most similar other icons, most similar first, ``(P, k)``
    (k at most P - 1): cosine similarity of the icon images ``bank`` (K, 1, b, b), ties to the lower position."""
    flat = F.normalize(bank[pool.to(bank.device)].flatten(1).double().cpu(), dim=1)  # (P, b * b)
    similarity = (flat @ flat.T).fill_diagonal_(-math.inf)
    return similarity.argsort(dim=1, descending=True, stable=True)[:, :min(k, len(pool) - 1)]


# RMTS trials as letters (A = the first icon of a random order of the pool, B the second, ...): source, match and
# foil, for a different source (row 0) and a same source (row 1). Five icons or more give the full design;
# smaller pools reuse icons by the rule of ``sample_rmts``.
RMTS_LETTERS = {k: torch.tensor([[[ord(c) - ord("A") for c in pair] for pair in trial.split()] for trial in rows])
                for k, rows in {5: ("AB CD EE", "AA BB CD"), 4: ("AB CD CC", "AA BB CD"),
                                3: ("AB CA CC", "AA BB CB"), 2: ("AB AB AA", "AA BB BA")}.items()}  # (2, 3, 2) each


def sample_rmts(pool: Tensor, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """n RMTS trials: icons ``(n, 3, 2)`` (source, target 0, target 1) and the correct target ``(n,)``.

    Same source AA: targets BB (match) and CD. Different source AB: targets CD (match) and EE.
    With five icons or more, A, B, C, D, E are distinct icons of pool. Source types and the match's
    position are each exactly balanced (to within one) and shuffled.

    A pool of 2-4 icons (the training icons at m = 2, 3, 4; RMTS test icons are always 5 or more)
    cannot give five distinct icons. Then a letter past the pool reuses an icon: one that keeps its
    pair's relation (same pairs one icon, different pairs two) and, where there is one, an icon the
    source does not hold; each pair with a reused icon comes in random order. So:

        4 icons: AA; BB vs CD      AB; CD vs CC   (targets share an icon; none shared with the source)
        3 icons: AA; BB vs CB      AB; CA vs CC   (a different source's match holds one source icon)
        2 icons: AA; BB vs BA      AB; AB vs AA   (orders shuffled: the match may be BA, the foil BB)

    Caveat: below four icons the trials carry an icon-overlap cue beside the relation, and at m = 2
    there is a single different pair, {A, B}: every different-source trial's match is the source
    itself, its foil one source icon doubled, and every same-source foil is the two icons together.
    A head trained there sees the "different" relation in one pair only and could pick targets by
    shared icons; only the held-out trials (five distinct new icons, no overlap) show whether it
    learned the relation.
    """
    if len(pool) < 2:
        raise ValueError(f"m: RMTS needs at least 2 icons per split, got {len(pool)}")
    k = min(len(pool), 5)
    order = torch.rand(n, len(pool), generator=gen).argsort(1)[:, :k]  # (n, k): the icons A, B, ... of each trial
    same_source = balanced_bits(n, gen)
    letters = RMTS_LETTERS[k][same_source].view(n, 6)  # (n, 6): source, match, foil
    trial = order.gather(1, letters).view(n, 3, 2)
    correct = balanced_bits(n, gen)
    if k < 5:  # a reused icon must not sit at a fixed place in its pair
        flip = torch.randint(2, (n, 3), generator=gen).bool()
        trial = torch.where(flip[..., None], trial.flip(-1), trial)
    source, match, foil = trial.unbind(1)
    first = torch.where(correct[:, None] == 0, match, foil)
    second = torch.where(correct[:, None] == 0, foil, match)
    return pool[torch.stack([source, first, second], 1)], correct


class Placement(NamedTuple):
    """How each sample of a batch is drawn: the renderer's random draws, on the CPU."""

    scale: Tensor  # (n,): the glyph box spans glyph_size * scale of the image side
    shift: Tensor  # (n, 2): centre offset (x, y) in [-1, 1] image units
    angle: Tensor  # (n,): rotation, radians (all 0 without rotation)
    shear: Tensor  # (n,): x moves by shear * y in glyph coordinates (all 0 without shear)
    stroke: Tensor  # (n,): strokes thickened (> 0) or thinned (< 0) by this many half-pixels of the icon image


@dataclass(frozen=True)
class Renderer:
    """Draws icons into images at a random scale and position (the glyph's box spans ``glyph_size * s``, s ~ U(scale)),
    and, when asked, at a random rotation, shear and stroke width."""

    image_size: int = 32  # output side, pixels
    scale_min: float = 0.7
    scale_max: float = 1.3
    glyph_size: float = 0.6  # box side / image side at scale 1
    rotation: float = 0.0  # largest rotation, degrees
    stroke: int = 0  # largest change of stroke width, half-pixels of the icon image
    shear: float = 0.0  # largest shear factor

    @classmethod
    def from_config(cls, cfg: DataConfig) -> Renderer:
        return cls(cfg.image_size, cfg.scale_min, cfg.scale_max, cfg.glyph_size, cfg.rotation, cfg.stroke, cfg.shear)

    def draw(self, n: int, gen: torch.Generator) -> Placement:
        """Placements of n samples that keep the glyph's (turned, slanted) box inside the image where it fits.

        Draws, in order: scales, angles (only with rotation), shears (only with shear), offsets, stroke changes
        (only with stroke), so that the defaults draw exactly what they always drew. The box's corners
        (+-1, +-1) go to R(a) S(k) (+-1, +-1) (``place``): it spans |M00| + |M01| of its side across and
        |M10| + |M11| down, M = R(a) S(k); where that exceeds the image, it is centred and its corners cut off.
        """
        s = self.scale_min + (self.scale_max - self.scale_min) * torch.rand(n, generator=gen)
        angle, shear = torch.zeros(n), torch.zeros(n)
        if self.rotation:
            angle = (2 * torch.rand(n, generator=gen) - 1) * math.radians(self.rotation)
        if self.shear:
            shear = (2 * torch.rand(n, generator=gen) - 1) * self.shear
        cos, sin = angle.cos(), angle.sin()
        across = cos.abs() + (cos * shear - sin).abs()  # |M00| + |M01|
        down = sin.abs() + (sin * shear + cos).abs()  # |M10| + |M11|
        span = self.glyph_size * s[:, None] * torch.stack([across, down], 1)  # (n, 2)
        room = (1 - span - 2 / self.image_size).clamp_min(0)  # one pixel of margin
        shift = (2 * torch.rand(n, 2, generator=gen) - 1) * room
        stroke = torch.zeros(n, dtype=torch.long)
        if self.stroke:
            stroke = torch.randint(-self.stroke, self.stroke + 1, (n,), generator=gen)
        return Placement(s, shift, angle, shear, stroke)

    def place(self, glyphs: Tensor, placement: Placement) -> Tensor:
        """Icon images ``(n, 1, b, b)`` drawn at their placements: ``(n, 1, H, H)`` on glyphs' device.

        Glyph point g goes to output point p = shift + half R(a) S(k) g, half = glyph_size * scale, S(k) =
        [[1, k], [0, 1]]; the affine grid needs the inverse, g = S(-k) R(-a) (p - shift) / half. A positive
        angle turns the glyph clockwise on screen (rows run down); a positive shear slants its top to the left.
        """
        n, dev = len(glyphs), glyphs.device
        if self.stroke:
            glyphs = restroke(glyphs, placement.stroke.to(dev))
        half = (self.glyph_size * placement.scale).to(dev)
        cos, sin, k = placement.angle.cos().to(dev), placement.angle.sin().to(dev), placement.shear.to(dev)
        x, y = placement.shift.to(dev).unbind(1)
        back = torch.stack([cos + k * sin, sin - k * cos, -sin, cos], 1).view(n, 2, 2)  # S(-k) R(-a)
        theta = torch.zeros(n, 2, 3, device=dev)  # output coords -> glyph coords
        theta[:, :, :2] = back / half[:, None, None]
        theta[:, :, 2] = -(back @ torch.stack([x, y], 1)[..., None])[..., 0] / half[:, None]
        grid = F.affine_grid(theta, [n, 1, self.image_size, self.image_size], align_corners=False)
        return F.grid_sample(glyphs, grid, align_corners=False)

    def render(self, bank: Tensor, icons: Tensor, gen: torch.Generator) -> Tensor:
        """Images of ``icons`` (any shape S) from ``bank`` (K, 1, b, b): ``(*S, 1, H, H)`` on bank's device."""
        flat = icons.reshape(-1)
        images = self.place(bank[flat.to(bank.device)], self.draw(len(flat), gen))
        return images.view(*icons.shape, 1, self.image_size, self.image_size)


def restroke(glyphs: Tensor, change: Tensor) -> Tensor:
    """Ink images ``(n, 1, b, b)`` with strokes thickened by change[i] > 0 half-pixels or thinned by -change[i].

    On the glyph at twice its resolution (bilinear), the grey dilation (the maximum over a (2k+1)-pixel square)
    thickens each stroke by k half-pixels on every side and the grey erosion (the minimum) thins it; the result
    is averaged back down. At half-pixel steps a one-pixel stroke fades but is not erased, as a whole-pixel
    erosion of a 32-pixel glyph would erase it. Every image goes through the same resampling, change 0 too.
    """
    fine = F.interpolate(glyphs, scale_factor=2, mode="bilinear", align_corners=False)  # (n, 1, 2b, 2b)
    out = fine
    for k in range(1, int(change.abs().max()) + 1):
        thick = F.max_pool2d(fine, 2 * k + 1, stride=1, padding=k)
        thin = -F.max_pool2d(-fine, 2 * k + 1, stride=1, padding=k)
        out = torch.where((change == k)[:, None, None, None], thick, out)
        out = torch.where((change == -k)[:, None, None, None], thin, out)
    return F.avg_pool2d(out, 2)


class Trials(NamedTuple):
    """A batch of trials: images on the device, labels, and the icon indices they were drawn from."""

    images: Tensor  # (n, 2, 1, H, W) pairs, or (n, 3, 2, 1, H, W) RMTS trials
    labels: Tensor  # (n,): 1 = same (float, same/different), or the index of the matching target (RMTS)
    icons: Tensor  # (n, 2) or (n, 3, 2) icon indices, on the CPU


class IconTasks:
    """The icon bank on a device, one split of it, and batch makers for both tasks."""

    def __init__(self, glyphs: np.ndarray, m: int, seed: int, renderer: Renderer = Renderer(),
                 device: str | torch.device = "cpu", split: str = "random", holdout: str = "test",
                 hard_negatives: float = 0.0):
        self.bank = torch.tensor(np.asarray(glyphs), dtype=torch.float32, device=device)[:, None]  # (K, 1, b, b)
        self.n_icons = len(glyphs)
        self.train_icons, self.test_icons = split_icons(self.n_icons, m, seed, split)
        if holdout == "validation":  # "test" now means the validation icons; the real test icons are set aside
            self.train_icons, self.test_icons = carve_validation(self.train_icons, seed)
        self.renderer = renderer
        self.hard_negatives = hard_negatives
        self.nearest = nearest_icons(self.bank, self.train_icons) if hard_negatives else None  # among training icons

    @classmethod
    def from_config(cls, cfg: DataConfig, device: str | torch.device = "cpu") -> IconTasks:
        """The icons of a run's glyph source on device, split by its m, seed, split rule and holdout."""
        return cls(glyph_bank(cfg.glyphs, cfg.crop), cfg.m, cfg.seed, Renderer.from_config(cfg), device, cfg.split,
                   cfg.holdout, cfg.hard_negatives)

    def render(self, icons: Tensor, gen: torch.Generator) -> Tensor:
        """Images of icon indices (any shape S): ``(*S, 1, H, W)``, each at its own random scale and position."""
        return self.renderer.render(self.bank, icons, gen)

    def pool(self, split: str) -> Tensor:
        """Icon indices of "train" or "test"."""
        return {"train": self.train_icons, "test": self.test_icons}[split]

    def same_different(self, split: str, n: int, gen: torch.Generator, hard: float = 0.0) -> Trials:
        """n pairs: images ``(n, 2, 1, H, W)`` and float labels ``(n,)`` (1 = same) on the bank's device; a share
        ``hard`` of the "different" training pairs are hard negatives (``sample_same_different``)."""
        icons, same = sample_same_different(self.pool(split), n, gen, self.nearest, hard)
        return Trials(self.render(icons, gen), same.float().to(self.bank.device), icons)

    def rmts(self, split: str, n: int, gen: torch.Generator) -> Trials:
        """n trials: images ``(n, 3, 2, 1, H, W)`` (source, target 0, target 1) and the correct target ``(n,)``."""
        icons, correct = sample_rmts(self.pool(split), n, gen)
        return Trials(self.render(icons, gen), correct.to(self.bank.device), icons)

    def trials(self, task: str, split: str, n: int, gen: torch.Generator) -> Trials:
        """n trials of a task ("same-different" or "rmts") from a split's icons."""
        if task not in ("same-different", "rmts"):
            raise ValueError(f"task: must be same-different or rmts, got {task!r}")
        return self.same_different(split, n, gen) if task == "same-different" else self.rmts(split, n, gen)

    def training(self, task: str, n: int, gen: torch.Generator) -> Trials:
        """n training trials as a stage trains on them: same/different pairs with the run's share of hard negatives.
        The evaluation sets (``trials``, on either split) never have them, so accuracies stay comparable."""
        if task == "same-different":
            return self.same_different("train", n, gen, self.hard_negatives)
        return self.trials(task, "train", n, gen)


class Epochs:
    """A fixed set of training examples, drawn once, served in shuffled epochs (the authors' protocol).

    The icons and labels of ``n`` pairs (or trials) are drawn once from the training icons (pairs with the
    run's share of hard negatives, as ``IconTasks.training`` draws them); each batch
    takes the next examples of a shuffled order (the last batch of an epoch may be smaller) and renders
    them afresh, at new scales and positions.
    """

    def __init__(self, tasks: IconTasks, task: str, n: int, gen: torch.Generator):
        self.tasks, self.task = tasks, task
        if task == "same-different":
            pool, hard = tasks.train_icons, tasks.hard_negatives
            self.icons, self.labels = sample_same_different(pool, n, gen, tasks.nearest, hard)
        else:
            self.icons, self.labels = sample_rmts(tasks.train_icons, n, gen)
        self.order, self.at = torch.empty(0, dtype=torch.long), 0

    def batch(self, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """The next batch: images and labels on the bank's device, as ``IconTasks.trials`` gives them."""
        if self.at >= len(self.order):
            self.order, self.at = torch.randperm(len(self.icons), generator=gen), 0
        pick = self.order[self.at: self.at + size]
        self.at += size
        labels = self.labels[pick].to(self.tasks.bank.device)
        return self.tasks.render(self.icons[pick], gen), labels.float() if self.task == "same-different" else labels
