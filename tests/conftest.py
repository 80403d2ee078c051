"""Shared fixtures: the project's one small setting (``oscbind_lite.config.SMOKE``) and a private checkpoint cache."""

import os

import pytest
import torch

from oscbind_lite.config import RunConfig, smoke


@pytest.fixture
def smoke_run():
    """The default RunConfig shrunk to the shared smoke setting: both stages train on a CPU in seconds."""
    return smoke(RunConfig())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own checkpoint cache folder (never the user's ~/.cache)."""
    monkeypatch.setenv("OSCBIND_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def uncompiled_kernels(monkeypatch):
    """Tests run the plain step kernels unless one sets OSCBIND_COMPILE=1 itself (a user's setting would
    otherwise make every training test compile first and change every cache key)."""
    monkeypatch.delenv("OSCBIND_COMPILE", raising=False)


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test workers share the machine's cores: each trains with one torch thread, and so do the notebook kernels and
    # jobs it starts (OpenMP threads spin while they wait, so two 2-thread workers would run slower than one).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
