"""A user's icon files, read faithfully: every image mode and bit depth, transparency, either polarity, framed or
cropped to the ink.

* A file becomes grey levels at its own bit depth: 1-bit, 8-bit (L, and colour and palette images through Pillow's
  luma), 16-bit (I;16), 32-bit integer (I) and float (F). A file Pillow cannot read as one still image, an
  animation, an image over MAX_PIXELS (Pillow's own limit for an untrusted image) or one too large to read in the
  memory this process may use (``limits.memory_limit``) is refused in one line naming the file, before decoding.
* Transparency says where the ink is: the visible pixels are drawn on a background that sets them off (white under
  dark ink, black under light ink), so that image's polarity is known, not guessed.
* Without transparency the polarity is decided from whole images, not from a border. The pixels split at the middle
  of their range into a light and a dark class. An image decides alone when it is framed: one class fills its frame
  (FRAMED of the frame's pixels) and the other, the ink, covers at most INK_SHARE of the image. Every other image
  takes the polarity of its source (folder or stack), voted by all of its images: the class that fills more of the
  area, and of a frame that both classes share, is the background (dark ink on light, the commonest format, on a
  tie). The vote is needed: an icon cropped to its ink can be read either way on its own (a die's face cropped to
  its outline, dark on light, is pixel for pixel a light face framed in dark), while a source's icons are made one
  way. Measured on the package's own 100 icons and ESBN's, each black on white and white on black, framed, as
  stored and cropped to the ink (1,200 images): every one read the right way round (``tests/test_glyphs.py``).
* Two icons that are the same image after fitting are refused before a task is made of them
  (``refuse_duplicates``): a "different" pair of them would look "same".
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
BASE = 32  # side of the stored glyph images, in pixels
MAX_PIXELS = 89_478_485  # Pillow's limit for an image it is not told to trust (Image.MAX_IMAGE_PIXELS), checked first
BYTES_PER_PIXEL = 24  # reading one image: its decoded pixels, float levels, and an ink image and square per polarity
FRAMED = 0.98  # share of an image's frame that one class fills for the image to count as framed
INK_SHARE = 0.35  # the most of a framed image that its ink may cover for it to decide its polarity alone
EIGHT_BIT = ("L", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")  # read through Pillow's 8-bit luma, as ever
WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA", "P")  # a palette may carry transparency
WIDE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": None, "F": None}  # mode: full scale


class GlyphError(ValueError):
    """A glyph source that cannot be used (missing, unreadable, too few images)."""


def _fit(ink: np.ndarray, size: int = BASE, crop: bool = True) -> np.ndarray:
    """Crop an ink image (1 = ink) to its ink (unless crop is off), pad it to a centred square,
    resize to size x size."""
    from PIL import Image

    rows, cols = np.nonzero(ink > 0.1 * max(float(ink.max()), 1e-6))
    if len(rows) == 0:
        raise GlyphError("it has no ink (blank or constant)")
    if crop:
        ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    side = max(ink.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top: top + ink.shape[0], left: left + ink.shape[1]] = ink
    img = Image.fromarray((square * 255).astype(np.uint8)).resize((size, size), Image.LANCZOS)
    return np.asarray(img, np.float32) / 255.0


@dataclass(frozen=True)
class Grey:
    """One icon image as grey levels, its polarity where the file itself says it."""

    levels: np.ndarray  # (H, W) float32 in [0, 1]: the file's levels over their range
    light_background: bool | None  # known from transparency; None: decided by ``polarity``


def normalised(values: np.ndarray) -> np.ndarray:
    """Grey levels stretched over [0, 1] (float32); GlyphError for an image of one flat colour."""
    g = values.astype(np.float32)
    span = float(g.max() - g.min())
    if not np.isfinite(span):
        raise GlyphError("it has non-finite pixels (NaN or infinity)")
    if span == 0:
        raise GlyphError("it is a single flat colour")
    return (g - g.min()) / span


def read_image(file: Path) -> Grey:
    """One image file as ``Grey``; GlyphError (its reason, without the file's name) when it cannot be an icon."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by size, before decoding
            img = Image.open(file)
    except Image.DecompressionBombError as err:
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        raise GlyphError(f"it is too large for an icon ({int(pixels[1]) if pixels else 0:,} pixels; at most "
                         f"{MAX_PIXELS:,}, as it is resized to {BASE} x {BASE})") from None
    with img:
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise GlyphError(f"it is too large for an icon ({width} x {height} pixels; at most {MAX_PIXELS:,}, as "
                             f"it is resized to {BASE} x {BASE})")
        check_memory(width * height * BYTES_PER_PIXEL, f"{width} x {height} pixels")
        if getattr(img, "n_frames", 1) > 1:
            raise GlyphError(f"it holds {img.n_frames} frames (an animation or several pages); give one image per "
                             "icon")
        return _grey(img)


def _grey(img) -> Grey:
    """A decoded Pillow image as ``Grey``, by its mode."""
    mode = img.mode
    if mode == "1":
        return Grey(normalised(np.asarray(img, np.float32)), None)
    if mode in WIDE:  # 16-bit, 32-bit integer or float grey levels: as numbers, never clipped to 8 bits
        values = np.asarray(img)
        if values.dtype.kind not in "uif":
            raise GlyphError(f"its {mode} pixels could not be read as numbers")
        return Grey(normalised(values), None)
    if mode in WITH_ALPHA or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[..., 3]
        if alpha.min() < 1:  # the file says which pixels are ink
            luma = np.asarray(img.convert("RGBA").convert("L"), np.float32) / 255.0
            dark_ink = float((luma * alpha).sum() / max(float(alpha.sum()), 1e-6)) < 0.5
            behind = 1.0 if dark_ink else 0.0
            return Grey(normalised(luma * alpha + behind * (1 - alpha)), dark_ink)
        img = img.convert("RGB")
    elif mode not in EIGHT_BIT:  # read as 8 bits, it could be clipped: refused rather than garbled
        raise GlyphError(f"its image mode {mode} is not one this reader knows; save it as an 8- or 16-bit PNG")
    return Grey(normalised(np.asarray(img.convert("L"), np.float32) / 255.0), None)


def check_memory(need: int, what: str) -> None:
    """GlyphError when reading needs more than the share of the memory this process may use that a run plans on."""
    from .limits import MEMORY_SHARE, memory_limit

    have = memory_limit()
    if have.amount and need > MEMORY_SHARE * have.amount:
        raise GlyphError(f"it is {what}, about {need / 2**30:,.1f} GiB to read; a run plans on at most "
                         f"{MEMORY_SHARE:.0%} of the {have.amount / 2**30:,.1f} GiB this process may use "
                         f"({have.source})")


def frame_and_area(levels: np.ndarray) -> tuple[float, float]:
    """The share of the frame and of the whole image that is light (above the middle of the range)."""
    light = levels > 0.5
    frame = np.concatenate([light[0], light[-1], light[1:-1, 0], light[1:-1, -1]])
    return float(frame.mean()), float(light.mean())


def framed_light_background(levels: np.ndarray) -> bool | None:
    """Whether a framed image's background is light (None when the image is not framed: see the module's docstring)."""
    frame, area = frame_and_area(levels)
    if frame >= FRAMED and 1 - area <= INK_SHARE:
        return True
    if 1 - frame >= FRAMED and area <= INK_SHARE:
        return False
    return None


def vote(levels: np.ndarray) -> float:
    """One image's vote for a light background, in [-1, 1]: how much more of its area, and of its frame, is light.
    A frame that one class fills says nothing (framed, that class is the background; a box or a die cropped to its
    outline, it is the ink), so it does not vote."""
    frame, area = frame_and_area(levels)
    return (0.0 if max(frame, 1 - frame) >= FRAMED else frame - 0.5) + (area - 0.5)


def polarity(images: list[Grey]) -> list[bool]:
    """Whether each image's background is light: known from transparency, framed, or the source's vote."""
    unknown = [g.levels for g in images if g.light_background is None]
    light = sum(vote(levels) for levels in unknown) >= 0  # a tie: dark ink on light, the commonest format
    out = []
    for g in images:
        alone = framed_light_background(g.levels) if g.light_background is None else g.light_background
        out.append(light if alone is None else alone)
    return out


def natural_key(name: str) -> list:
    """Sort key that orders numbers by value: 2.png before 10.png (ESBN's icons are 0.png ... 99.png)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def image_files(folder: Path) -> list[Path]:
    """A folder's image files in natural order."""
    images = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(images, key=lambda p: natural_key(p.name))


def source_digest(path: str | Path) -> str:
    """sha256 of what a glyph source holds (each image file's name and bytes, or the .npy's bytes): an edited folder
    is another source. "" where it cannot be read (``load_glyphs`` then says why)."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        for file in image_files(path) if path.is_dir() else [path]:
            h.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    except OSError:
        return ""
    return h.hexdigest()


def _stack(path: Path) -> list[tuple[str, np.ndarray]]:
    """A .npy stack (K, H, W) or (K, H, W, C) as named grey images (channels averaged)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise GlyphError(f"glyphs: cannot read {path} as a numpy array ({err})") from None
    if arr.ndim not in (3, 4) or not np.issubdtype(arr.dtype, np.number):
        raise GlyphError(f"glyphs: {path} has shape {arr.shape} and type {arr.dtype}; expected numbers of shape "
                         "(K, H, W) or (K, H, W, C)")
    try:  # all of it at once, as float32, a float64 mean of the channels, and one image being fitted
        check_memory(arr.size * (4 + 8 * (arr.ndim == 4)) + arr.shape[1] * arr.shape[2] * BYTES_PER_PIXEL,
                     f"{len(arr)} images of {arr.shape[1]} x {arr.shape[2]} pixels")
    except GlyphError as err:
        raise GlyphError(f"glyphs: {path}: {err}") from None
    arr = np.asarray(arr)
    if arr.ndim == 4:
        arr = arr.mean(-1)
    bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(1)) if len(arr) else []
    if len(bad):
        raise GlyphError(f"glyphs: {path}[{bad[0]}] has non-finite pixels (NaN or infinity)")
    return [(f"{path}[{i}]", a) for i, a in enumerate(arr)]


def load_glyphs(path: str | Path, crop: bool = True) -> np.ndarray:
    """Load a user's icon set: a folder of image files (in natural order: 2.png before 10.png) or a ``.npy`` of
    shape (K, H, W[, C]), as ``(K, 32, 32)`` float ink in [0, 1].

    Any mode and bit depth, dark-on-light or light-on-dark (see the module's docstring), with or without
    transparency, any size that can be read; each image is cropped to its ink (unless ``crop`` is off: then the
    image keeps its own frame) and resized. Raises ``GlyphError`` with a one-line reason naming the file when it
    cannot be used.
    """
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise GlyphError(f"glyphs: {path} does not exist; give a folder of images or a .npy file")
    greys: list[tuple[str, Grey]] = []
    if path.is_dir():
        for file in image_files(path):
            try:
                greys.append((str(file), read_image(file)))
            except GlyphError as err:
                raise GlyphError(f"glyphs: {file}: {err}") from None
            except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
                raise GlyphError(f"glyphs: cannot read {file} ({type(err).__name__}: {err})") from None
    elif path.suffix == ".npy":
        for name, values in _stack(path):
            try:
                greys.append((name, Grey(normalised(values), None)))
            except GlyphError as err:
                raise GlyphError(f"glyphs: {name}: {err}") from None
    else:
        raise GlyphError(f"glyphs: {path} is neither a folder of images nor a .npy file")
    if len(greys) < 2:
        raise GlyphError(f"glyphs: {path} holds {len(greys)} image(s); at least 2 are needed")
    light = polarity([g for _, g in greys])
    return np.stack([_fit(1.0 - g.levels if lit else g.levels, crop=crop) for (_, g), lit in zip(greys, light)])


def refuse_duplicates(bank: np.ndarray, glyphs: str | None) -> None:
    """GlyphError naming the first two icons of a source that are the same image once fitted (to 8 bits): a task
    made of them has "different" pairs that look "same"."""
    seen: dict[bytes, int] = {}
    for i, icon in enumerate(bank):
        key = np.round(icon * 255).astype(np.uint8).tobytes()
        if key in seen:
            a, b = (icon_name(glyphs, k) for k in (seen[key], i))
            raise GlyphError(f"glyphs: {a} and {b} are the same icon once fitted to {BASE} x {BASE}; a 'different' "
                             "pair of them would look 'same': remove one")
        seen[key] = i


def icon_name(glyphs: str | None, index: int) -> str:
    """How a message names icon ``index`` of a source: its file, its place in a stack, or its place in the default
    set."""
    if glyphs is None:
        return f"built-in icon {index}"
    path = Path(glyphs)
    files = image_files(path) if path.is_dir() else []
    return str(files[index]) if index < len(files) else f"{path}[{index}]"
