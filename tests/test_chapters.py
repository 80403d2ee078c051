"""The chapters without a build: their committed form (stripped, parameters declared, narrating), the order in
_toc.yml, and papermill on a single chapter (a bad parameter is one line; run by hand it loads the book's models; a
config field it declares reaches the model)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from book_pages import EXPECTED, NOTEBOOKS, PAGES, ROOT
from oscbind_tools.book import chapter, sweep
from oscbind_tools.book.sweep import SPLIT, chapters

pytestmark = pytest.mark.book


def test_make_books_parameters_hold_no_path_of_the_machine():
    """make book's runs (runs/book) reach the notebooks as paths relative to them: no folder of the machine."""
    for job in sweep.plan(NOTEBOOKS, ROOT / "runs" / "book", [95, 50, 15], [0], 95, "auto", False):
        for name, value in job.parameters.items():
            if isinstance(value, str) and name.endswith("_dir"):
                assert not Path(value).is_absolute() and str(ROOT) not in value, (job.chapter, name, value)
                assert (NOTEBOOKS / value).resolve().is_relative_to(ROOT), (job.chapter, name, value)


@pytest.mark.parametrize("args,message", [
    (["-p", "m", "200"], "ParameterError: m: must be between 2 and 98"),
    (["-p", "bogus", "1"], "ParameterError: bogus: unknown parameter; this notebook takes m, seed, T, gamma, device, smoke, "
                           "results_dir, out_dir, overwrite, repository"),
    (["-p", "m", "1.5"], "ParameterError: m: must be int, got 1.5"),
    (["-p", "gamma", "-1"], "ParameterError: gamma: must be a finite number > 0, got -1"),
])
def test_papermill_with_a_bad_parameter_stops_with_one_line(args, message, tmp_path):
    env = {**os.environ, "OSCBIND_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([str(Path(sys.executable).with_name("papermill")), str(NOTEBOOKS / "same_different.ipynb"),
                             str(tmp_path / "out.ipynb"), "-p", "smoke", "True", *args, "--cwd", str(NOTEBOOKS)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-1500:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line in the notebook too, no traceback


def test_a_chapter_run_by_hand_loads_the_books_committed_models(tmp_path):
    """Run All in a bare JupyterLab (no make book, an empty model cache): the chapter loads the model the book
    committed in book/checkpoints instead of training it."""
    env = {**os.environ, "OSCBIND_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out.ipynb"
    subprocess.run([str(Path(sys.executable).with_name("papermill")), str(NOTEBOOKS / "same_different.ipynb"), str(out),
                    "-p", "out_dir", str(tmp_path / "run"), "--cwd", str(NOTEBOOKS)], check=True, capture_output=True,
                   env=env, timeout=600)
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert text.startswith("loaded") or "\nloaded (" in text, text[:500]
    committed = {p.name for p in (ROOT / "book" / "checkpoints").glob("*.pt")}
    assert committed <= {p.name for p in (tmp_path / "cache").glob("*.pt")}


def test_a_config_field_declared_by_a_chapter_reaches_its_model(tmp_path, monkeypatch):
    """A chapter may expose any config field: T set through papermill is the T the model trained with."""
    monkeypatch.setenv("OSCBIND_CACHE", str(tmp_path / "cache"))  # the kernel inherits it
    papermill.execute_notebook(str(NOTEBOOKS / "same_different.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(NOTEBOOKS),
                               parameters={"smoke": True, "m": 50, "T": 3, "out_dir": str(tmp_path / "run")},
                               kernel_name="python3", progress_bar=False, execution_timeout=300)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["model"]["T"] == 3


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_are_stripped_and_declare_their_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []) and first.source.startswith(chapter.MARKER)
    assert "remove-cell" in first.metadata["tags"]  # shown once, in words, on the page
    declared = chapter.declared_parameters(first.source)
    inspected = papermill.inspect_notebook(str(path))
    assert list(inspected) == list(declared)  # papermill --help-notebook sees every parameter, with its help
    assert all(p["help"] for p in inspected.values())
    assert all(chapter.declared_type_matches(p) for p in declared.values())  # config fields keep their type
    if {c.name: c.role for c in chapters(ROOT / "book")}.get(path.stem) in (SPLIT, "showcase"):
        assert {"m", "seed", "device", "smoke"} <= set(declared)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_chapters_open_with_their_question_and_narrate(path):
    """Each chapter opens with a heading and its question; no chapter defines a model or a function."""
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(def|class) ", cell.source, flags=re.M), f"{path.stem} defines code"
            assert "manual_seed" not in cell.source, f"{path.stem} seeds a generator by hand; use data.seeded"


def test_toc_lists_the_intro_and_every_chapter_notebook():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    assert toc["root"] == "intro"
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(c.name for c in chapters(ROOT / "book"))
    assert set(EXPECTED) <= set(PAGES)  # every expectation is of a page the book has


def test_parameter_checks_refuse_unknown_names_and_bad_types():
    cell = f"{chapter.MARKER}\nm: int = 95  # icons\nsmoke: bool = False  # quick\n"
    injected = "# Parameters\nm = 50\nwarp = 3\n"
    with pytest.raises(chapter.ParameterError, match="^warp: unknown parameter; this notebook takes m, smoke$"):
        chapter.check_names_and_types({"m": 50, "smoke": False}, ["", cell, injected])
    with pytest.raises(chapter.ParameterError, match="^smoke: must be bool, got 1$"):
        chapter.check_names_and_types({"m": 50, "smoke": 1}, ["", cell])
    with pytest.raises(chapter.ParameterError, match="^m: must be int, got True$"):
        chapter.check_names_and_types({"m": True, "smoke": False}, ["", cell])
    assert set(chapter.check_names_and_types({"m": 50, "smoke": False}, ["", cell, "# Parameters\nm = 50\n"])) == {"m", "smoke"}
