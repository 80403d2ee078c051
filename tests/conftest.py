"""Shared fixtures: a tiny configuration that trains in seconds, and a private checkpoint cache."""

import pytest

from oscbind_lite.train import RunConfig, with_overrides

TINY = dict(D=8, channels=(8, 8), T=5, hidden=16, steps=12, batch_size=16, eval_every=6, eval_size=64,
            rmts_steps=8, rmts_batch_size=16, rmts_eval_every=4, rmts_eval_size=32)


@pytest.fixture
def tiny():
    """A RunConfig small enough to train both stages on a CPU in a few seconds."""
    return with_overrides(RunConfig(), **TINY)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own checkpoint cache folder (never the user's ~/.cache)."""
    monkeypatch.setenv("OSCBIND_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
