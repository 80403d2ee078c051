"""The book's committed models (book/checkpoints): current for this code, complete for the default chapters,
and copied into a cache only when verified."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from oscbind_lite.cache import config_key, load_checkpoint, save_checkpoint
from oscbind_lite.config import RunConfig, with_overrides
from oscbind_lite.train import _stage1_key, _stage2_key, build_same_different, prepare
from oscbind_tools.book import checkpoints

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / checkpoints.FOLDER
STALE_HINT = "the training code changed since they were trained: run `make checkpoints` and commit book/checkpoints"


def fake(folder: Path, config: dict, key: str | None = None) -> Path:
    """A small checkpoint; current when key is None (the key this code computes for config)."""
    key = key or config_key(config)
    path = folder / f"same-different-{key[:20]}.pt"
    save_checkpoint(path, key, config, {"w": torch.arange(4.0)}, {"loss": [1.0]}, {"task": "same-different"})
    return path


def test_committed_models_are_current():
    files = sorted(COMMITTED.glob("*.pt"))
    assert files, f"no committed models in {COMMITTED}: run `make checkpoints`"
    reasons = [r for r in map(checkpoints.check, files) if r]
    assert not reasons, f"{STALE_HINT}\n" + "\n".join(reasons)
    assert sum(f.stat().st_size for f in files) < 5e6  # a few hundred KB per model, never a data dump


@pytest.mark.parametrize("m", [95, 50, 15])
def test_committed_models_cover_the_default_chapters(m):
    """make book at its defaults (seed 0, every split) finds both stages of each split committed."""
    run = with_overrides(RunConfig(), m=m, seed=0)
    stage1 = COMMITTED / f"same-different-{_stage1_key(prepare(run, 'same-different'))[0][:20]}.pt"
    assert stage1.exists(), f"{STALE_HINT} (missing: {stage1.name})"
    features = build_same_different(prepare(run, "same-different"))  # the RMTS head is keyed by these weights
    features.load_state_dict(load_checkpoint(stage1)["state_dict"])
    stage2 = COMMITTED / f"rmts-{_stage2_key(prepare(run, 'rmts'), features)[0][:20]}.pt"
    assert stage2.exists(), f"{STALE_HINT} (missing: {stage2.name})"


def test_seed_copies_only_verified_current_models(tmp_path):
    committed, cache = tmp_path / "committed", tmp_path / "cache"
    committed.mkdir(), cache.mkdir()
    current = fake(committed, {"kind": "test", "n": 1})
    stale = fake(committed, {"kind": "test", "n": 2}, key="0" * 64)  # trained under another key
    corrupt = committed / "rmts-0123456789abcdef0123.pt"
    corrupt.write_bytes(b"not a checkpoint")
    kept = fake(committed, {"kind": "test", "n": 3})
    (cache / kept.name).write_bytes(b"the cache's own copy")  # never overwritten

    copied, present, unused = checkpoints.seed(committed, cache)

    assert (copied, present) == (1, 1)
    assert (cache / current.name).read_bytes() == current.read_bytes()
    assert not (cache / stale.name).exists() and not (cache / corrupt.name).exists()
    assert (cache / kept.name).read_bytes() == b"the cache's own copy"
    assert len(unused) == 2 and any("other code" in r for r in unused) and any("corrupt" in r for r in unused)
    assert checkpoints.seed(committed, cache)[:2] == (0, 2)  # idempotent


def test_freeze_replaces_the_committed_set_and_refuses_stale_models(tmp_path):
    cache, committed = tmp_path / "cache", tmp_path / "committed"
    cache.mkdir(), committed.mkdir()
    old = fake(committed, {"kind": "old"})
    new = fake(cache, {"kind": "new"})
    assert checkpoints.freeze(cache, committed) == [committed / new.name]
    assert not old.exists() and checkpoints.check(committed / new.name) == ""
    fake(cache, {"kind": "stale"}, key="f" * 64)
    with pytest.raises(ValueError, match="other code"):
        checkpoints.freeze(cache, committed)
    with pytest.raises(ValueError, match="no trained models"):
        checkpoints.freeze(tmp_path / "empty", committed)


def test_every_module_a_trained_model_depends_on_is_in_its_cache_key():
    """The modules a training imports from the package (directly or through another) are all fingerprinted, so an
    edit of any of them is a new cache key; the checks of what a run may use (limits, sizes) and the cache are not."""
    import ast

    from oscbind_lite.cache import TRAINING_CODE

    package = ROOT / "oscbind_lite"
    seen, todo = set(), ["train"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                todo += [n for n in names if (package / f"{n}.py").exists()]
    assert seen - {"cache", "limits", "sizes"} <= set(TRAINING_CODE), sorted(seen - set(TRAINING_CODE))
