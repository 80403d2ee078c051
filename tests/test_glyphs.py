"""A user's icon files read right: every image mode, bit depth, polarity and framing a folder may hold, ESBN's icons
exactly as before, a folder edited in one process read again, and files that cannot be icons refused in one line."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oscbind_lite.data import glyph_bank, icons_digest
from oscbind_lite.glyphs import MAX_PIXELS, GlyphError, _fit, load_glyphs, normalised

ESBN_DIR = Path(os.environ.get("OSCBIND_ESBN", Path(__file__).resolve().parents[2] / "shared" / "esbn-glyphs"))
# The package's own icons that no border can read the right way round once cropped to their ink (ballot boxes, dice,
# trigrams, a filled circle) and a few plain ones.
HARD = (6, 10, 11, 34, 35, 76, 77, 78, 94, 0, 1, 50)


def cropped(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(ink > 0)
    return ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


FRAMINGS = {"cropped to the ink": cropped, "framed": lambda ink: np.pad(ink, 4), "as stored": np.asarray}


def save(folder: Path, inks, dark_on_light: bool, framing: str = "as stored", mode: str = "L",
         suffix: str = ".png") -> list[np.ndarray]:
    """Write ink images (1 = ink) as image files of a mode; return the grey levels each file holds, in [0, 1]."""
    folder.mkdir(parents=True, exist_ok=True)
    levels = []
    for i, ink in enumerate(inks):
        g = FRAMINGS[framing](np.asarray(ink, np.float64))
        g = 1 - g if dark_on_light else g
        if mode == "I;16":
            Image.fromarray(np.round(g * 65535).astype(np.uint16)).save(folder / f"{i}{suffix}")
            levels.append(np.round(g * 65535) / 65535)
            continue
        if mode == "F":
            Image.fromarray(g.astype(np.float32)).save(folder / f"{i}.tif")
            levels.append(g.astype(np.float32))
            continue
        img = Image.fromarray(np.round(g * 255).astype(np.uint8))
        if mode == "1":
            img = img.point(lambda v: 255 * (v > 127)).convert("1")
        elif mode != "L":
            img = img.convert(mode)
        img.save(folder / f"{i}{suffix}")
        levels.append(np.asarray(img.convert("L"), np.float32) / 255.0)
    return levels


def read_right(bank, levels, dark_on_light: bool, crop: bool = True) -> list[int]:
    """The icons of bank that are not the files' levels read with the known polarity."""
    return [i for i, g in enumerate(levels)
            if not np.allclose(bank[i], _fit(1 - normalised(g) if dark_on_light else normalised(g), crop=crop),
                               atol=1e-6)]


@pytest.fixture(scope="module")
def own():
    return glyph_bank(None)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("dark_on_light", [True, False], ids=["black on white", "white on black"])
def test_the_packages_own_icons_read_right_in_every_polarity_and_framing(own, tmp_path, framing, dark_on_light):
    """All 100, saved as a user would: cropped to the ink, eight of them were read inverted by the border's guess."""
    levels = save(tmp_path, own, dark_on_light, framing)
    bank = load_glyphs(tmp_path)
    assert read_right(bank, levels, dark_on_light) == []
    assert min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(bank, own)) > 0.9  # ink stays ink


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "1", "I;16", "F", "CMYK"])
@pytest.mark.parametrize("framing", ["cropped to the ink", "framed"])
@pytest.mark.parametrize("dark_on_light", [True, False], ids=["black on white", "white on black"])
def test_every_image_mode_and_bit_depth_reads_the_right_way_round(own, tmp_path, mode, framing, dark_on_light):
    """A folder of the hardest icons (boxes, dice, trigrams, a filled circle) and a few plain ones, in each mode;
    CMYK as JPEG, whose noise moves the crop a little but never the polarity."""
    from oscbind_lite.glyphs import read_image

    suffix = ".jpg" if mode == "CMYK" else ".png"
    save(tmp_path, own[list(HARD)], dark_on_light, framing, mode, suffix)
    bank = load_glyphs(tmp_path)
    files = sorted(tmp_path.iterdir(), key=lambda p: int(p.stem))
    assert read_right(bank, [read_image(f).levels for f in files], dark_on_light) == []
    if mode != "CMYK":
        truth = [_fit(np.asarray(FRAMINGS[framing](own[i]), np.float32)) for i in HARD]
        assert min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(bank, truth)) > 0.9, mode


def test_a_16_bit_icon_among_8_bit_ones_keeps_its_grey_levels(own, tmp_path):
    """Pillow's 8-bit conversion clips 16-bit levels to a few; read as numbers, the icon equals its 8-bit twin."""
    save(tmp_path, own[:4], True)
    save(tmp_path / "16", own[4:5], True, mode="I;16")
    (tmp_path / "16" / "0.png").rename(tmp_path / "4.png")
    (tmp_path / "16").rmdir()
    save(tmp_path / "twin", own[4:5], True)
    bank = load_glyphs(tmp_path)
    twin = _fit(1 - normalised(np.asarray(Image.open(tmp_path / "twin" / "0.png"), np.float32) / 255))
    assert len(np.unique(bank[4])) > 50 and np.abs(bank[4] - twin).max() < 0.02


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
@pytest.mark.parametrize("ink", [0, 255], ids=["black ink", "white ink"])
def test_transparency_says_where_the_ink_is(own, tmp_path, mode, ink):
    """Ink of either colour on a transparent background (white on transparent was blank before: 'a single flat
    colour'); a palette image with one transparent entry included."""
    for i, glyph in enumerate(own[list(HARD)]):
        alpha = np.round(cropped(glyph) * 255).astype(np.uint8)
        rgba = np.dstack([np.full_like(alpha, ink)] * 3 + [alpha])
        img = Image.fromarray(rgba, "RGBA")
        if mode == "LA":
            img = img.convert("LA")
        elif mode == "P":  # binary transparency: one palette entry transparent
            img = Image.fromarray(np.where(alpha > 127, 1, 0).astype(np.uint8), "P")
            img.putpalette([255 - ink] * 3 + [ink] * 3)
            img.info["transparency"] = 0
        img.save(tmp_path / f"{i}.png", **({"transparency": 0} if mode == "P" else {}))
    bank = load_glyphs(tmp_path)
    truth = [_fit(cropped(own[i])) for i in HARD]
    assert min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(bank, truth)) > 0.9


def test_a_folder_that_mixes_polarities_reads_each_framed_icon_its_own_way(own, tmp_path):
    dark = save(tmp_path, own[:6], True, "framed")
    light = save(tmp_path / "light", own[6:12], False, "framed")
    for i in range(6):
        (tmp_path / "light" / f"{i}.png").rename(tmp_path / f"{i + 6}.png")
    (tmp_path / "light").rmdir()
    bank = load_glyphs(tmp_path)
    assert read_right(bank[:6], dark, True) == [] and read_right(bank[6:], light, False) == []


def legacy_load(folder: Path, crop: bool) -> np.ndarray:
    """The loader before issue 37, verbatim in effect: grey through Pillow's 8-bit conversion, transparency on white,
    the border's median as the background."""
    out = []
    for file in sorted(folder.glob("*.png"), key=lambda p: int(p.stem)):
        img = Image.open(file)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        g = np.asarray(img.convert("L"), np.float32) / 255.0
        g = (g - g.min()) / float(g.max() - g.min())
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        out.append(_fit(1.0 - g if np.median(border) > 0.5 else g, crop=crop))
    return np.stack(out)


@pytest.mark.skipif(not ESBN_DIR.is_dir(), reason=f"ESBN's icons are not at {ESBN_DIR} (set OSCBIND_ESBN)")
@pytest.mark.parametrize("crop", [True, False])
def test_esbns_icons_load_pixel_for_pixel_as_before(crop):
    """The studies train on these (OSCBIND_ESBN): no number of results/ may move."""
    new, old = load_glyphs(ESBN_DIR, crop), legacy_load(ESBN_DIR, crop)
    assert new.shape == (100, 32, 32) and np.array_equal(new, old)
    assert icons_digest(new) == icons_digest(old)


def test_an_edited_folder_is_read_again_in_the_same_process(own, tmp_path):
    """A chapter rerun in one kernel after an edit of its glyph folder gets the new icons, and a new model key."""
    from oscbind_lite.config import RunConfig, with_overrides
    from oscbind_lite.train import _stage1_key

    save(tmp_path, own[:6], True)
    run = with_overrides(RunConfig(), glyphs=str(tmp_path), m=2)
    before, key = glyph_bank(str(tmp_path)), _stage1_key(run)[0]
    assert glyph_bank(str(tmp_path)) is before  # unchanged: read once
    save(tmp_path / "new", own[50:51], True)
    (tmp_path / "new" / "0.png").replace(tmp_path / "0.png")
    after = glyph_bank(str(tmp_path))
    assert not np.array_equal(after[0], before[0]) and np.array_equal(after[1:], before[1:])
    assert _stage1_key(run)[0] != key


def test_identical_icons_are_refused_before_a_task_is_made_of_them(own, tmp_path):
    """30 copies of one icon trained to chance and then said "try another lr"; ESBN's and the built-in icons pass."""
    from oscbind_lite.config import RunConfig, with_overrides
    from oscbind_lite.train import prepare

    save(tmp_path, [own[3]] * 30, True)
    with pytest.raises(GlyphError, match=r"^glyphs: .*/0\.png and .*/1\.png are the same icon once fitted"):
        prepare(with_overrides(RunConfig(), glyphs=str(tmp_path), m=20), "same-different")
    prepare(RunConfig(), "rmts")
    if ESBN_DIR.is_dir():
        for crop in (True, False):
            prepare(with_overrides(RunConfig(), glyphs=str(ESBN_DIR), crop=crop), "rmts")


def test_files_that_cannot_be_icons_are_one_line(own, tmp_path, monkeypatch):
    from oscbind_lite import limits
    from oscbind_lite.limits import Limit

    save(tmp_path / "big", own[:2], True)
    Image.new("1", (5000, 5000), 1).save(tmp_path / "big" / "2.png")  # within Pillow's limit: read where it fits
    monkeypatch.setattr(limits, "memory_limit", lambda: Limit(2**28, "ulimit -v"))
    with pytest.raises(GlyphError, match=r"^glyphs: .*2\.png: it is 5000 x 5000 pixels, about 0.6 GiB to read; a run "
                                         r"plans on at most 80% of the 0.2 GiB this process may use \(ulimit -v\)$"):
        load_glyphs(tmp_path / "big")
    np.save(tmp_path / "stack.npy", np.zeros((4, 4000, 4000), np.uint8))
    with pytest.raises(GlyphError, match=r"^glyphs: .*stack\.npy: it is 4 images of 4000 x 4000 pixels, about 0.6 GiB"):
        load_glyphs(tmp_path / "stack.npy")
    monkeypatch.undo()
    save(tmp_path / "gif", own[:2], True)
    frames = [Image.fromarray(np.round(255 * (1 - g)).astype(np.uint8)) for g in own[:3]]
    frames[0].save(tmp_path / "gif" / "2.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(GlyphError, match=r"^glyphs: .*2\.gif: it holds 3 frames"):
        load_glyphs(tmp_path / "gif")
    save(tmp_path / "nan", own[:2], True, mode="F")
    nan = np.ones((8, 8), np.float32)
    nan[2, 2] = np.nan
    Image.fromarray(nan).save(tmp_path / "nan" / "2.tif")
    with pytest.raises(GlyphError, match=r"^glyphs: .*2\.tif: it has non-finite pixels"):
        load_glyphs(tmp_path / "nan")


def test_a_decompression_bomb_is_one_line(own, tmp_path):
    """14,000 x 14,000 pixels: over Pillow's own limit, which raised its DecompressionBombError as a traceback."""
    save(tmp_path, own[:2], True)
    Image.new("1", (14000, 14000), 1).save(tmp_path / "2.png")
    with pytest.raises(GlyphError, match=rf"^glyphs: .*2\.png: it is too large for an icon \(196,000,000 pixels; at "
                                         rf"most {MAX_PIXELS:,}"):
        load_glyphs(tmp_path)
