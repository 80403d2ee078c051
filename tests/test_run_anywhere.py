"""A chapter opened alone, as Colab opens it from the published book: copied into an empty folder outside any clone and
run by a Python that has every dependency but not the package, with ``repository`` as the build writes it into the
published chapters. Its set-up cell must clone the code, install it and carry on into the chapter. The committed
chapter in a clone (a bare JupyterLab) needs no repository: it installs the clone it sits in.

The fresh Python is a ``venv`` of this interpreter's base whose one extra path is this environment's site-packages,
added as a plain folder: the .pth files there (the editable install of the package among them) are not run, so
``oscbind_lite`` and ``oscbind_tools`` cannot be imported while torch, pip and setuptools can. pip runs offline
(``PIP_NO_INDEX``) and without build isolation, so the set-up cell's own ``pip install -e ../..[book]`` finds every
dependency already there and downloads nothing. The repository is this one, as a ``file://`` URL: the clone holds
its last commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "book" / "notebooks"
CHAPTER = "performance"  # reads only committed files (benchmarks/): its first cells run in seconds


def code_cells(name: str) -> list[str]:
    return [c.source for c in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells if c.cell_type == "code"]


@pytest.fixture
def bare_python(tmp_path) -> Path:
    """A Python without the package (a fresh one per test: the set-up cell installs it into the venv): a venv that
    sees this environment's site-packages as a plain folder."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    bare = {"cwd": env, "env": clean_env(), "capture_output": True, "text": True, "check": True}
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             **bare).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(str(Path(sysconfig.get_paths()["purelib"]).resolve()) + "\n")
    found = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('oscbind_tools'), "
                            "u.find_spec('torch') is not None)"], **bare).stdout
    assert found.split() == ["None", "True"], found  # the package hidden, its dependencies there
    return python


def clean_env(**extra) -> dict:
    """This process's environment without the PYTHONPATH that may point at a checkout of the package."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


def run_chapter(python: Path, folder: Path, repository: str, after: str = "") -> subprocess.CompletedProcess:
    """The chapter's parameters cell, the line papermill writes into a published chapter, its set-up cell and
    ``after``, run as one script in FOLDER."""
    parameters, setup = code_cells(CHAPTER)[:2]
    (folder / "run.py").write_text(f"{parameters}\n\n# Parameters\nrepository = {repository!r}\n\n{setup}\n\n{after}\n")
    env = clean_env(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="Agg",
                    OSCBIND_CACHE=str(folder / "cache"))
    return subprocess.run([str(python), "run.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def alone(folder: Path) -> Path:
    """An empty folder holding only the chapter, as Colab has it."""
    folder.mkdir()
    (folder / f"{CHAPTER}.ipynb").write_bytes((NOTEBOOKS / f"{CHAPTER}.ipynb").read_bytes())
    return folder


PROBE = f"import oscbind_tools\nprint('package:', oscbind_tools.__file__)\n\n{code_cells(CHAPTER)[2]}"


def test_every_chapter_has_the_same_setup_cell_after_its_parameters():
    """So that running one chapter's set-up cell tests every chapter's."""
    chapters = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    setups = {name: code_cells(name)[1] for name in chapters}
    assert len(set(setups.values())) == 1, sorted(setups)
    assert all("\nrepository: str = " in code_cells(name)[0] for name in chapters)


def test_a_chapter_alone_clones_installs_and_runs_its_code(bare_python, tmp_path):
    """repository as a git URL (here file://): the cell clones it beside the chapter, installs the package from the
    clone and moves into it; the chapter's next cell then imports the package and reads the committed benchmarks."""
    folder = alone(tmp_path / "colab")
    result = run_chapter(bare_python, folder, f"file://{ROOT}", PROBE)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"package: {folder / 'oscbind' / 'oscbind_tools' / '__init__.py'}" in result.stdout
    assert "\nmeasured " in "\n" + result.stdout  # the chapter's own first line of output


def test_a_chapter_in_a_clone_installs_that_clone_without_a_repository(bare_python, tmp_path):
    """The committed chapter where it sits in a clone (a bare JupyterLab): repository unset, it installs the clone."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(clone)], check=True, timeout=120)
    result = run_chapter(bare_python, clone / "book" / "notebooks", "", PROBE)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"package: {clone / 'oscbind_tools' / '__init__.py'}" in result.stdout


def test_a_chapter_alone_without_a_repository_says_what_to_set(bare_python, tmp_path):
    result = run_chapter(bare_python, alone(tmp_path / "colab"), "")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "repository: set it to the book's GitHub repository (owner/name) and run again"), result.stderr[-1000:]
