"""The book: a smoke build of every chapter (papermill sweep + jupyter-book -W), its contracts, and the
dynamics chapter in headless chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import papermill
import pytest
import yaml

from browser import CHROMIUM, load_page, serve
from oscbind_lite import book
from oscbind_lite.sweep import CHAPTERS, SPLIT

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "book" / "notebooks"
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)")


def oscbind(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "oscbind_lite", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The whole book at the smoke setting: every chapter through papermill, then jupyter-book build -W."""
    root = tmp_path_factory.mktemp("smoke-book")
    env = {**os.environ, "OSCBIND_CACHE": str(root / "cache")}
    result = oscbind("sweep", "--smoke", "--runs", str(root / "runs"), "--build", "--site", str(root / "site"), env=env)
    return SimpleNamespace(root=root, runs=root / "runs", html=root / "site" / "_build" / "html", env=env, result=result)


def test_smoke_build_runs_every_chapter_and_builds_with_warnings_as_errors(smoke):
    assert smoke.result.returncode == 0, smoke.result.stdout[-3000:] + smoke.result.stderr[-3000:]
    for chapter, role in CHAPTERS:
        assert (smoke.html / "notebooks" / f"{chapter}.html").exists(), chapter
    rows = [json.loads(p.read_text()) for p in smoke.runs.rglob("metrics.json")]
    assert sorted((r["task"], r["m"]) for r in rows) == sorted(
        (task, m) for task in ("same-different", "rmts") for m in (95, 50, 15))
    assert all(r["config"]["stage1"]["steps"] == book.SMOKE["steps"] for r in rows)
    # RMTS and the showcase chapters loaded the same/different models instead of retraining them
    models = list((smoke.root / "cache").glob("same-different-*.pt"))
    assert len(models) == 3 + 1  # one per split, plus the energy chapter's symmetric-J model


def test_rerun_skips_what_is_up_to_date_and_reruns_what_is_stale(smoke):
    stamp = smoke.runs / "07_generalisation" / "all" / "stamp.json"
    stale = json.loads(stamp.read_text()) | {"version": "0.0.0-older"}
    stamp.write_text(json.dumps(stale))
    result = oscbind("sweep", "--smoke", "--runs", str(smoke.runs), env=smoke.env)
    assert result.returncode == 0, result.stderr[-2000:]
    status = {(j["chapter"], j["tag"]): j["status"] for j in json.loads((smoke.runs / "sweep.json").read_text())["jobs"]}
    assert status.pop(("07_generalisation", "all")) == "ok"
    assert set(status.values()) == {"skipped (up to date)"}, status


def test_glued_numbers_reach_the_generalisation_page(smoke):
    rows = [json.loads(p.read_text()) for p in smoke.runs.rglob("metrics.json")]
    sd95 = next(r for r in rows if r["task"] == "same-different" and r["m"] == 95)
    page = (smoke.html / "notebooks" / "07_generalisation.html").read_text()
    assert f"{100 * sd95['test_accuracy']:.1f} %" in page


@needs_chromium
def test_dynamics_chapter_scrubs_offline_in_a_real_browser(smoke):
    """The plotly figure and its step slider are in the DOM, the saved widget renders, nothing leaves the machine."""
    def scrub(page) -> None:
        page.click(".widget-play button >> nth=0")  # the saved ipywidgets Play drives its slider with no kernel
        page.wait_for_function("document.querySelector('.widget-readout').textContent.trim() !== '25'", timeout=10_000)

    with serve(smoke.html) as base:
        report = load_page(base + "notebooks/06_dynamics.html", timeout_s=60, interact=scrub, wait_for=[
            ".plotly-graph-div .main-svg .slider-container", ".plotly-graph-div .updatemenu-container",
            ".widget-play", ".widget-slider"])
    assert report.offsite_requests() == []
    assert report.console_errors == []
    assert report.failed_requests == []
    assert report.dom_html.count('class="plotly-graph-div') == 1
    assert report.dom_html.count('class="slider-step-group"') + report.dom_html.count("slider-container") >= 1
    assert "step t = " in report.dom_html  # the plotly slider's current-value label


@pytest.mark.parametrize("args,message", [
    (["-p", "m", "200"], "ParameterError: m: must be between 2 and 98"),
    (["-p", "bogus", "1"], "ParameterError: bogus: unknown parameter; this notebook takes m, seed, device, smoke, out_dir"),
    (["-p", "m", "1.5"], "ParameterError: m: must be int, got 1.5"),
])
def test_papermill_with_a_bad_parameter_stops_with_one_line(args, message, tmp_path):
    env = {**os.environ, "OSCBIND_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([str(Path(sys.executable).with_name("papermill")), str(NOTEBOOKS / "03_same_different.ipynb"),
                             str(tmp_path / "out.ipynb"), "-p", "smoke", "True", *args, "--cwd", str(NOTEBOOKS)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-1500:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line in the notebook too, no traceback


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_are_stripped_and_declare_their_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []) and first.source.startswith(book.MARKER)
    declared = book.declared_parameters(first.source)
    inspected = papermill.inspect_notebook(str(path))
    assert list(inspected) == list(declared)  # papermill --help-notebook sees every parameter, with its help
    assert all(p["help"] for p in inspected.values())
    if dict(CHAPTERS).get(path.stem) in (SPLIT, "showcase"):
        assert {"m", "seed", "device", "smoke"} <= set(declared)


def test_toc_lists_the_intro_and_every_chapter_in_order():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert toc["root"] == "intro"
    assert files == [f"notebooks/{chapter}" for chapter, _ in CHAPTERS]
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == [chapter for chapter, _ in CHAPTERS]


def test_parameter_checks_refuse_unknown_names_and_bad_types():
    cell = f"{book.MARKER}\nm: int = 95  # icons\nsmoke: bool = False  # quick\n"
    injected = "# Parameters\nm = 50\nwarp = 3\n"
    with pytest.raises(book.ParameterError, match="^warp: unknown parameter; this notebook takes m, smoke$"):
        book.check_names_and_types({"m": 50, "smoke": False}, ["", cell, injected])
    with pytest.raises(book.ParameterError, match="^smoke: must be bool, got 1$"):
        book.check_names_and_types({"m": 50, "smoke": 1}, ["", cell])
    with pytest.raises(book.ParameterError, match="^m: must be int, got True$"):
        book.check_names_and_types({"m": True, "smoke": False}, ["", cell])
    assert set(book.check_names_and_types({"m": 50, "smoke": False}, ["", cell, "# Parameters\nm = 50\n"])) == {"m", "smoke"}
