"""Shared fixtures: the project's one small setting (``oscbind_lite.config.SMOKE``), a private checkpoint cache, and
the book's smoke build, made once per test run; and the order the test files start in."""

import os

import pytest
import torch

from oscbind_lite.config import RunConfig, smoke as shrink


@pytest.fixture
def smoke_run():
    """The default RunConfig shrunk to the shared smoke setting: both stages train on a CPU in seconds."""
    return shrink(RunConfig())


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


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """The book's smoke build (``book_pages.build_smoke_book``), made once per test run: the test workers of
    ``make test`` share it, the first to ask builds it under a file lock and the others wait for it, so the page
    checks can run on several workers without building the book again."""
    from book_pages import build_smoke_book
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's folder, above each worker's
    root = shared / "smoke-book"
    with FileLock(str(shared / "smoke-book.lock")):
        root.mkdir(exist_ok=True)
        return build_smoke_book(root)


# The files that take longest start first (``make test`` hands whole files to its workers in this order): the smoke
# build and what waits on it, the real Slurm, the evidence engine; the page checks, which wait for the build, last.
FIRST = ("test_book.py", "test_slurm.py", "test_evidence.py", "test_robustness.py")
LAST = ("test_pages.py", "test_phone.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST) + 1 + (LAST.index(name) if name in LAST else -1)

    items.sort(key=rank)  # stable: each file's tests keep their order
