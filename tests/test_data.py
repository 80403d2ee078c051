"""Icons, splits and trials: distinct glyphs, disjoint balanced splits, correct RMTS relations."""

import unicodedata

import numpy as np
import pytest
import torch
from PIL import Image

from oscbind_lite.config import DataConfig
from oscbind_lite.data import (DEFAULT_CODEPOINTS, Epochs, GlyphError, IconTasks, Renderer, Trials, glyph_bank, icons_digest,
                               balanced_bits, carve_validation, load_glyphs, render_default_glyphs, sample_rmts,
                               sample_same_different, seeded, split_icons)


@pytest.fixture(scope="module")
def bank():
    return glyph_bank(None)


def test_default_icons_are_100_distinct_glyphs(bank):
    assert bank.shape == (100, 32, 32) and len(set(DEFAULT_CODEPOINTS)) == 100
    assert bank.min() >= 0 and bank.max() <= 1
    assert all(a.sum() > 10 for a in bank)  # every glyph has ink
    # no two forms of one glyph (WHITE X / BLACK X, X / BLACK X)
    roots = [unicodedata.name(chr(c)).replace("BLACK ", "").replace("WHITE ", "") for c in DEFAULT_CODEPOINTS]
    assert len(set(roots)) == 100
    # no pixel near-copies (the closest pair, one and three on a die, correlates at 0.89)
    z = bank.reshape(100, -1)
    z = (z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True)
    corr = z @ z.T / z.shape[1] - 2 * np.eye(100)
    assert corr.max() < 0.9
    # look-alikes that neither check above sees (outline/fill forms correlate at only 0.2-0.6)
    for a, b in ((0x264D, 0x264F), (0x263D, 0x263E), (0x2672, 0x267B), (0x2670, 0x2671), (0x26C0, 0x26C3),
                 (0x2624, 0x2695), (0x2640, 0x263F)):
        assert not {a, b} <= set(DEFAULT_CODEPOINTS), f"{chr(a)} and {chr(b)} look alike"


def test_rendering_is_deterministic():
    np.testing.assert_array_equal(render_default_glyphs(DEFAULT_CODEPOINTS[:5]), render_default_glyphs(DEFAULT_CODEPOINTS[:5]))


@pytest.mark.parametrize("m", [95, 50, 15, 2, 98])
def test_splits_are_disjoint_complete_and_deterministic(m):
    train, test = split_icons(100, m, seed=3)
    assert len(train) == m and len(test) == 100 - m
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(100))
    again = split_icons(100, m, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])


def test_different_seeds_give_different_splits():
    assert not torch.equal(split_icons(100, 50, 0)[0], split_icons(100, 50, 1)[0])


@pytest.mark.parametrize("m", [1, 99, 0, 100])
def test_impossible_splits_are_refused(m):
    with pytest.raises(ValueError, match="^m: "):
        split_icons(100, m, 0)


def test_same_different_is_balanced_and_labels_are_true():
    pool = torch.arange(10, 25)
    icons, same = sample_same_different(pool, 1000, torch.Generator().manual_seed(0))
    assert same.sum() == 500
    assert torch.equal((icons[:, 0] == icons[:, 1]).long(), same)
    assert set(icons.flatten().tolist()) <= set(pool.tolist())
    # every different pair is possible: with 15 icons there are 210 ordered different pairs
    diff = icons[same == 0]
    assert len({tuple(p) for p in diff.tolist()}) > 150


def relation(pair):
    return pair[0] == pair[1]


def test_rmts_trials_match_the_literature_design():
    pool = torch.arange(40, 47)  # seven icons
    icons, correct = sample_rmts(pool, 2000, torch.Generator().manual_seed(1))
    assert icons.shape == (2000, 3, 2)
    source_same = icons[:, 0, 0] == icons[:, 0, 1]
    assert source_same.sum() == 1000 and correct.sum() == 1000
    for trial, k in zip(icons.tolist(), correct.tolist()):
        source, targets = trial[0], trial[1:]
        assert relation(targets[k]) == relation(source)  # the correct target shares the relation
        assert relation(targets[1 - k]) != relation(source)  # the foil does not
        distinct = {tuple(set(p)) for p in trial}
        letters = [i for p in trial for i in set(p)]
        assert len(letters) == len(set(letters)), f"icons repeat across pairs: {trial}"
        assert len(set(letters)) == (4 if relation(source) else 5)
        assert len(distinct) == 3
    # balance of the correct position within each source type
    for s in (True, False):
        share = correct[source_same == s].float().mean().item()
        assert 0.45 < share < 0.55


def sample_rmts_before_small_pools(pool, n, gen):
    """sample_rmts as it was before small pools (commit 319c42c), frozen: committed results were drawn with it."""
    A, B, C, D, E = torch.rand(n, len(pool), generator=gen).argsort(1)[:, :5].unbind(1)
    same_source = balanced_bits(n, gen).bool()
    pairs = lambda p, q: torch.stack([p, q], 1)  # noqa: E731
    source = torch.where(same_source[:, None], pairs(A, A), pairs(A, B))
    match = torch.where(same_source[:, None], pairs(B, B), pairs(C, D))
    foil = torch.where(same_source[:, None], pairs(C, D), pairs(E, E))
    correct = balanced_bits(n, gen)
    first = torch.where(correct[:, None] == 0, match, foil)
    second = torch.where(correct[:, None] == 0, foil, match)
    return pool[torch.stack([source, first, second], 1)], correct


@pytest.mark.parametrize("size", [5, 6, 15, 50, 95])
def test_rmts_trials_from_five_icons_or_more_are_drawn_exactly_as_before(size):
    """Same icons, same labels and the generator left in the same state (so the renderings that follow match)."""
    pool = torch.arange(100)[torch.randperm(100, generator=torch.Generator().manual_seed(size))[:size]]
    for seed, n in ((0, 64), (1, 2000), (7, 33), (3, 1)):
        new, old = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        icons, correct = sample_rmts(pool, n, new)
        icons_before, correct_before = sample_rmts_before_small_pools(pool, n, old)
        assert torch.equal(icons, icons_before) and torch.equal(correct, correct_before)
        assert torch.equal(new.get_state(), old.get_state())


def letters(trial) -> str:
    """A trial's icons as letters in order of first appearance ("AB CA CC"): its pattern of reuse."""
    names = {}
    return " ".join("".join(names.setdefault(i, "ABCDE"[len(names)]) for i in pair) for pair in trial)


# Every pattern a small pool may give (source, match, foil), by pool size and source type; each pair with a
# reused icon appears in both orders.
SMALL_POOL_PATTERNS = {
    4: {"same": {"AA BB CD"}, "different": {"AB CD CC", "AB CD DD"}},
    3: {"same": {"AA BB CB", "AA BB BC"}, "different": {"AB CA CC", "AB CB CC", "AB AC CC", "AB BC CC"}},
    2: {"same": {"AA BB AB", "AA BB BA"}, "different": {"AB AB AA", "AB BA AA", "AB AB BB", "AB BA BB"}},
}


@pytest.mark.parametrize("size", [2, 3, 4])
def test_small_pool_rmts_trials_keep_the_relation_and_reuse_icons_only_as_needed(size):
    pool = torch.tensor([17, 3, 88, 41])[:size]
    n = 4001
    icons, correct = sample_rmts(pool, n, torch.Generator().manual_seed(size))
    assert icons.shape == (n, 3, 2) and set(icons.flatten().tolist()) == set(pool.tolist())
    same_source = icons[:, 0, 0] == icons[:, 0, 1]
    assert same_source.sum() == n // 2 and correct.sum() == n // 2  # exactly balanced, as for larger pools
    seen = {"same": [], "different": []}
    for trial, k in zip(icons.tolist(), correct.tolist()):
        source, match, foil = trial[0], trial[1 + k], trial[2 - k]
        assert relation(match) == relation(source) and relation(foil) != relation(source)
        kind = "same" if relation(source) else "different"
        assert len({i for p in trial for i in p}) == min(size, 4 if kind == "same" else 5)  # as many icons as the pool allows
        shared = set(source) & set(match + foil)
        assert len(shared) == {4: 0, 3: 0 if kind == "same" else 1, 2: 1 if kind == "same" else 2}[size]
        seen[kind].append(letters([source, match, foil]))
    for kind, patterns in SMALL_POOL_PATTERNS[size].items():
        counts = {p: seen[kind].count(p) for p in patterns}
        assert set(seen[kind]) == patterns  # nothing else, and every order of a reused pair occurs ...
        assert max(counts.values()) < 1.25 * min(counts.values()), counts  # ... about equally often
    for s in (True, False):  # the match's position, within each source type
        assert 0.45 < correct[same_source == s].float().mean().item() < 0.55


@pytest.mark.parametrize("m", [2, 3, 4])
def test_a_split_with_fewer_than_five_training_icons_trains_on_small_pool_trials_and_tests_on_the_full_design(bank, m):
    tasks = IconTasks(bank, m, seed=1)
    train = tasks.rmts("train", 200, torch.Generator().manual_seed(0))
    test = tasks.rmts("test", 200, torch.Generator().manual_seed(0))
    for trials, icons in ((train, tasks.train_icons), (test, tasks.test_icons)):
        same = trials.icons[..., 0] == trials.icons[..., 1]  # (n, 3)
        assert torch.equal(same[torch.arange(200), 1 + trials.labels], same[:, 0])  # the labelled target matches
        assert set(trials.icons.flatten().tolist()) == set(icons.tolist())
    used = [len(set(t.flatten().tolist())) for t in test.icons]
    assert all(k == (4 if s else 5) for k, s in zip(used, same[:, 0].tolist()))  # held-out trials: no icon reused
    pool = Epochs(tasks, "rmts", 50, torch.Generator().manual_seed(0))
    assert set(pool.icons.flatten().tolist()) == set(tasks.train_icons.tolist()) and pool.labels.sum() == 25


def test_rmts_needs_two_icons():
    with pytest.raises(ValueError, match="^m: RMTS needs at least 2 icons"):
        sample_rmts(torch.arange(1), 10, torch.Generator())


def test_same_seed_same_trials_and_images(bank):
    tasks = IconTasks(bank, 50, seed=0)
    a = tasks.rmts("train", 8, torch.Generator().manual_seed(5))
    b = tasks.rmts("train", 8, torch.Generator().manual_seed(5))
    assert isinstance(a, Trials)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.icons, b.icons)
    assert a.images.shape == (8, 3, 2, 1, 32, 32) and a.icons.shape == (8, 3, 2)


def test_trials_carry_the_icons_their_labels_describe(bank):
    tasks = IconTasks(bank, 50, seed=0)
    pairs = tasks.trials("same-different", "test", 64, torch.Generator().manual_seed(1))
    assert pairs.images.shape == (64, 2, 1, 32, 32) and pairs.labels.dtype == torch.float32
    assert torch.equal((pairs.icons[:, 0] == pairs.icons[:, 1]).float(), pairs.labels)
    assert set(pairs.icons.flatten().tolist()) <= set(tasks.test_icons.tolist())
    rmts = tasks.trials("rmts", "train", 64, torch.Generator().manual_seed(1))
    assert rmts.images.shape == (64, 3, 2, 1, 32, 32)
    same = rmts.icons[..., 0] == rmts.icons[..., 1]  # (n, 3): which of source, target 0, target 1 is "same"
    assert torch.equal(same[torch.arange(64), 1 + rmts.labels], same[:, 0])  # the labelled target matches the source
    assert set(rmts.icons.flatten().tolist()) <= set(tasks.train_icons.tolist())


def test_icon_tasks_from_config_use_the_runs_split_and_rendering():
    cfg = DataConfig(m=30, seed=4, image_size=24, scale_min=1.0, scale_max=1.0)
    tasks = IconTasks.from_config(cfg)
    assert torch.equal(tasks.train_icons, split_icons(100, 30, 4)[0]) and tasks.n_icons == 100
    assert tasks.renderer == Renderer(24, 1.0, 1.0, cfg.glyph_size) == Renderer.from_config(cfg)
    assert tasks.same_different("train", 4, torch.Generator()).images.shape == (4, 2, 1, 24, 24)


def test_rendering_an_icon_at_fixed_scale_and_no_room_to_move_is_always_the_same_image(bank):
    """With scale 1 and a glyph box that fills the image, nothing is random: an icon is one image."""
    tasks = IconTasks(bank, 50, 0, Renderer(32, 1.0, 1.0, 1 - 2 / 32))
    icons = torch.tensor([[3, 3], [5, 3]])
    images = tasks.render(icons, torch.Generator().manual_seed(0))
    assert torch.equal(images[0, 0], images[0, 1]) and torch.equal(images[0, 1], images[1, 1])
    assert not torch.equal(images[1, 0], images[1, 1])


def test_icons_digest_changes_with_any_pixel(bank):
    edited = np.array(bank)
    assert icons_digest(edited) == icons_digest(bank)
    edited[57, 10, 10] += 1e-3
    assert icons_digest(edited) != icons_digest(bank)


def test_glyph_bank_is_read_once_and_read_only(tmp_path, bank):
    assert glyph_bank(None) is bank
    assert not bank.flags.writeable  # a chapter cannot change the icons under every later cache key
    np.save(tmp_path / "stack.npy", bank[:4])
    assert glyph_bank(str(tmp_path / "stack.npy")).shape == (4, 32, 32)


def test_generators_of_different_purposes_or_seeds_give_different_streams():
    draw = lambda seed, purpose: torch.rand(4, generator=seeded(seed, purpose))  # noqa: E731
    assert torch.equal(draw(0, "train"), draw(0, "train"))
    assert not torch.equal(draw(0, "train"), draw(0, "test"))
    assert not torch.equal(draw(0, "train"), draw(1, "train"))


def test_augmentation_scales_and_moves_but_keeps_the_glyph_inside(bank):
    renderer = Renderer()
    icons = torch.zeros(400, dtype=torch.long)  # one icon, many draws
    images = renderer.render(torch.tensor(bank)[:, None], icons, torch.Generator().manual_seed(0))[:, 0]
    ink = images.sum((1, 2))
    assert ink.max() / ink.min() > 2  # scale varies: ink area grows with scale squared
    rows = torch.arange(32.0)
    centre_y = (images.sum(2) * rows).sum(1) / ink
    assert centre_y.max() - centre_y.min() > 8  # position varies by several pixels
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert border.max() < 0.05  # the glyph box never leaves the image


def test_a_batch_is_rendered_as_each_sample_alone(bank):
    """Batched rendering = rendering each sample with its own scale and shift (glyph coords = (out - shift) / size)."""
    renderer, icons, glyphs = Renderer(), torch.tensor([3, 7, 11]), torch.tensor(bank)[:, None]
    batch = renderer.render(glyphs, icons, torch.Generator().manual_seed(2))
    scale, shift = renderer.draw(3, torch.Generator().manual_seed(2))[:2]
    for k in range(3):
        size = renderer.glyph_size * scale[k]
        theta = torch.tensor([[[1 / size, 0, -shift[k, 0] / size], [0, 1 / size, -shift[k, 1] / size]]])
        grid = torch.nn.functional.affine_grid(theta, [1, 1, 32, 32], align_corners=False)
        alone = torch.nn.functional.grid_sample(glyphs[icons[k]][None], grid, align_corners=False)
        torch.testing.assert_close(batch[k], alone[0])


def write_images(folder, arrays, dark_on_light):
    folder.mkdir()
    for i, a in enumerate(arrays):
        pixels = (255 * (1 - a if dark_on_light else a)).astype(np.uint8)
        Image.fromarray(pixels).resize((50, 40)).save(folder / f"{i:02d}.png")


def test_bring_your_own_glyphs_any_polarity_any_size(tmp_path, bank):
    write_images(tmp_path / "dark", bank[:6], dark_on_light=True)
    write_images(tmp_path / "light", bank[:6], dark_on_light=False)
    dark, light = load_glyphs(tmp_path / "dark"), load_glyphs(tmp_path / "light")
    assert dark.shape == light.shape == (6, 32, 32)
    np.testing.assert_allclose(dark, light, atol=0.02)
    assert np.corrcoef(dark[2].ravel(), bank[2].ravel())[0, 1] > 0.8  # same glyph, ink stays ink
    np.save(tmp_path / "stack.npy", 1 - bank[:4])  # dark on light, as an array
    assert load_glyphs(tmp_path / "stack.npy").shape == (4, 32, 32)


def test_bad_glyph_sources_fail_with_one_line(tmp_path, bank):
    with pytest.raises(GlyphError, match="does not exist"):
        load_glyphs(tmp_path / "missing")
    write_images(tmp_path / "one", bank[:1], True)
    with pytest.raises(GlyphError, match="at least 2"):
        load_glyphs(tmp_path / "one")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    (tmp_path / "bad" / "b.png").write_bytes(b"nor this")
    with pytest.raises(GlyphError, match="cannot read"):
        load_glyphs(tmp_path / "bad")


def test_folds_of_the_95_split_cover_every_icon_once_in_twenty_seeds():
    tests = [split_icons(100, 95, seed, "folds")[1] for seed in range(20)]
    assert sorted(torch.cat(tests).tolist()) == list(range(100))  # disjoint, and together every icon
    for seed in (0, 7, 19):
        train, test = split_icons(100, 95, seed, "folds")
        assert len(train) == 95 and not set(train.tolist()) & set(test.tolist())
    assert torch.equal(split_icons(100, 95, 3, "folds")[1], split_icons(100, 95, 23, "folds")[1])  # seed mod 20
    with pytest.raises(ValueError, match="^split: folds needs K - m to divide"):
        split_icons(100, 15, 0, "folds")


@pytest.mark.parametrize("m, n_val", [(50, 10), (95, 19), (15, 5), (10, 5)])
def test_validation_icons_are_a_fifth_of_the_training_icons_and_never_test_icons(bank, m, n_val):
    train, test = split_icons(100, m, 4)
    tasks = IconTasks(bank, m, 4, holdout="validation")
    fit, val = set(tasks.train_icons.tolist()), set(tasks.test_icons.tolist())
    assert len(val) == n_val and len(fit) == m - n_val and not fit & val
    assert fit | val == set(train.tolist()) and not val & set(test.tolist())  # carved from training; test untouched
    held = tasks.same_different("test", 64, torch.Generator().manual_seed(0)).icons
    assert set(held.flatten().tolist()) <= val
    with pytest.raises(ValueError, match="^holdout: validation needs m >= 10 .*, got m = 9; tune at a larger m"):
        carve_validation(train[:9], 0)


def test_a_numbered_folder_loads_in_numeric_order_and_can_keep_each_images_frame(tmp_path):
    for i in (0, 1, 2, 10, 11):  # ink squares whose side grows with the number
        img = np.full((32, 32), 255, np.uint8)
        img[4: 8 + i, 4: 8 + i] = 0
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    cropped, framed = load_glyphs(tmp_path), load_glyphs(tmp_path, crop=False)
    ink = (framed > 0.5).sum((1, 2))
    assert list(np.argsort(ink)) == [0, 1, 2, 3, 4]  # 0, 1, 2, 10, 11: not 0, 1, 10, 11, 2
    assert (cropped > 0.5).mean((1, 2)).min() > 0.9  # cropped to the ink: each square fills its image
    assert ink[0] < ink[-1] < 0.5 * framed[0].size  # framed: the squares keep their sizes in the frame


def test_first_split_trains_on_the_first_m_icons_whatever_the_seed():
    for seed in (0, 3):
        train, test = split_icons(100, 50, seed, "first")
        assert train.tolist() == list(range(50)) and test.tolist() == list(range(50, 100))


@pytest.mark.parametrize("task", ["same-different", "rmts"])
def test_epochs_serve_a_fixed_set_once_per_epoch_each_time_rendered_afresh(bank, task):
    tasks = IconTasks(bank, 50, 0)
    epochs = Epochs(tasks, task, 100, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    served, first_images = [], None
    for _ in range(4):  # 64 + 36 = one epoch of 100, then the next
        images, labels = epochs.batch(64, gen)
        served.append(len(labels))
        first_images = images if first_images is None else first_images
    assert served == [64, 36, 64, 36]
    assert set(epochs.icons.flatten().tolist()) <= set(tasks.train_icons.tolist())
    if task == "same-different":
        assert torch.equal(epochs.labels.bool(), epochs.icons[:, 0] == epochs.icons[:, 1])
        assert labels.dtype == torch.float32
    else:
        assert labels.dtype == torch.long
    again = Epochs(tasks, task, 100, torch.Generator().manual_seed(0))
    assert torch.equal(again.icons, epochs.icons)  # the set is the seed's, drawn once
