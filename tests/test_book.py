"""The book built at the smoke setting (every chapter through papermill, then jupyter-book build -W): what the build
holds, the buttons and published chapters, a rerun, and the pages whose behaviour needs a browser (the findings'
first screen, the explorable). Every page as a reader sees it: tests/test_pages.py (1280 px), tests/test_phone.py
(400 px); the chapters without a build: tests/test_chapters.py."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml

from book_pages import ROOT, STAND_IN, tools, visible_text
from browser import explorable_results, load_page, require_chromium, serve
from oscbind_lite.config import SMOKE
from oscbind_tools.book import sweep
from oscbind_tools.book.sweep import chapters

pytestmark = pytest.mark.book


def test_smoke_build_runs_every_chapter_and_builds_with_warnings_as_errors(smoke):
    assert smoke.result.returncode == 0, smoke.result.stdout[-3000:] + smoke.result.stderr[-3000:]
    for name, *_ in chapters(ROOT / "book"):
        assert (smoke.html / "notebooks" / f"{name}.html").exists(), name
    rows = [json.loads(p.read_text()) for p in smoke.runs.rglob("metrics.json")]
    assert sorted((r["task"], r["m"]) for r in rows) == sorted(
        (task, m) for task in ("same-different", "rmts") for m in (95, 50, 15))
    assert all(r["config"]["stage1"]["steps"] == SMOKE["steps"] for r in rows)  # the one shared smoke preset
    # RMTS and the showcase chapters loaded the same/different models instead of retraining them
    models = list((smoke.root / "cache").glob("same-different-*.pt"))
    assert len(models) == 3 + 1  # one per split, plus the energy chapter's symmetric-J model


def test_rerun_skips_what_is_up_to_date_and_reruns_what_is_stale(smoke):
    stamp = smoke.runs / "generalisation" / "all" / "stamp.json"
    stale = json.loads(stamp.read_text()) | {"version": "0.0.0-older"}
    stamp.write_text(json.dumps(stale))
    result = tools("sweep", "--smoke", "--runs", str(smoke.runs), env=smoke.env)
    assert result.returncode == 0, result.stderr[-2000:]
    status = {(j["chapter"], j["tag"]): j["status"] for j in json.loads((smoke.runs / "sweep.json").read_text())["jobs"]}
    assert status.pop(("generalisation", "all")) == "ok"
    assert set(status.values()) == {"skipped (up to date)"}, status


def test_the_buttons_point_at_the_repository_the_build_runs_in(smoke):
    """Built as the Pages workflow builds it (OSCBIND_REPOSITORY set, the buttons on the branch it publishes the
    chapters to), every chapter links its source, Binder and Colab at that repository, and the reproducing chapter
    gives the clone command in a code block and points at the buttons."""
    page = (smoke.html / "notebooks" / "same_different.html").read_text()
    branch = sweep.PUBLISHED_BRANCH
    assert f"https://github.com/{STAND_IN}" in page
    assert f"mybinder.org/v2/gh/{STAND_IN}/{branch}?urlpath=lab/tree/book/notebooks/same_different.ipynb" in page
    assert f"colab.research.google.com/github/{STAND_IN}/blob/{branch}/book/notebooks/same_different.ipynb" in page
    assert "github.com/oscbind/oscbind" not in page
    reproducing = (smoke.html / "notebooks" / "reproducing.html").read_text()
    blocks = [visible_text(b) for b in re.findall(r"<pre>(.*?)</pre>", reproducing, flags=re.S)]
    assert any(f"git clone https://github.com/{STAND_IN}" in b and "cd oscbind-book" in b for b in blocks), blocks
    assert "launch button" in visible_text(reproducing) and "OWNER/NAME" not in reproducing


def test_the_published_chapters_carry_the_repository_their_setup_cell_clones(smoke):
    """The chapters as the book publishes them (the download button's copy, and the branch the Binder and Colab
    buttons open) set ``repository`` after their parameters cell: opened alone in Colab, the set-up cell has it."""
    staged = smoke.runs / "_book" / "notebooks"
    for name, role, _, declared, _ in chapters(ROOT / "book"):
        assert "repository" in declared, name
        cells = nbformat.read(staged / f"{name}.ipynb", as_version=4).cells
        injected = next(c for c in cells if "injected-parameters" in c.metadata.get("tags", []))
        assert f'repository = "{STAND_IN}"' in injected.source, (name, injected.source)
        assert cells.index(injected) < next(i for i, c in enumerate(cells) if "Run anywhere" in c.source), name


def test_glued_numbers_reach_the_generalisation_page(smoke):
    rows = [json.loads(p.read_text()) for p in smoke.runs.rglob("metrics.json")]
    sd95 = next(r for r in rows if r["task"] == "same-different" and r["m"] == 95)
    page = (smoke.html / "notebooks" / "generalisation.html").read_text()
    assert f"{100 * sd95['test_accuracy']:.1f} %" in page


def test_long_output_lines_wrap(smoke):
    """The book's stylesheet wraps printed output instead of cutting it at the right edge."""
    css = (smoke.html / "_static" / "oscbind.css").read_text()
    assert "pre-wrap" in css
    assert "_static/oscbind.css" in (smoke.html / "notebooks" / "dynamics.html").read_text()


def test_the_findings_come_first_with_the_thesis_and_the_scale_on_the_first_screen(smoke):
    """The page after the intro is the findings: its thesis and grading scale end within the first screen at
    1280 px, and the claims table starts within the first two."""
    require_chromium()
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    assert toc["parts"][0]["chapters"][0]["file"] == "notebooks/findings"

    def where(page) -> None:
        top = page.evaluate("document.querySelector('main table').getBoundingClientRect().top + window.scrollY")
        scale = page.evaluate("""() => { const p = [...document.querySelectorAll('main p')]
                                          .find(e => e.textContent.startsWith('Grades'));
                                         return p ? p.getBoundingClientRect().bottom + window.scrollY : -1; }""")
        page.evaluate(f"document.body.dataset.tableTop = {top}; document.body.dataset.scaleBottom = {scale}")

    with serve(smoke.html) as base:
        report = load_page(base + "notebooks/findings.html", interact=where)
    top = float(re.search(r'data-table-top="([\d.]+)"', report.dom_html).group(1))
    scale = float(re.search(r'data-scale-bottom="(-?[\d.]+)"', report.dom_html).group(1))
    assert 0 < scale <= report.viewport[1], f"the grading scale ends at {scale:.0f} px"
    assert top < 2 * report.viewport[1], f"the claims table starts at {top:.0f} px"
    text = visible_text(report.dom_html)
    assert "through its relational bottleneck, not" in text and "is not needed under our training" in text
    assert all(grade in text for grade in ("holds in part", "not supported"))


def test_the_built_explorable_runs_offline_and_computes_what_the_package_computes(smoke):
    """The book's explorable page, as built: every split's model loads from the build's own files, and for fixed
    icon pairs at the default controls its phases, coherence and verdict equal the package's (the smoke models,
    loaded from the sweep's cache) within 1e-4, with no request leaving the machine."""
    require_chromium()
    from oscbind_lite.config import RunConfig, smoke as shrink, with_overrides
    from oscbind_lite.train import train_same_different
    from oscbind_tools.book import explorable

    cases = [(m, a, b) for m in (95, 50, 15) for a, b in ((0, 0), (3, 7), (40, 85))]
    hashes = [f"#m={m}&a={a}&b={b}&T=25&gamma=0.5&jout=1&omega=1&start=shared&seed=0&place=0" for m, a, b in cases]
    results, report = explorable_results(smoke.html, "notebooks/explorable.html", hashes)
    assert report.offsite_requests() == [] and report.console_errors == [] and report.failed_requests == []
    served = {urlsplit(url).path for url in report.requests}
    assert {f"/_static/explorable-data/{name}.js" for name in ("icons", "m95", "m50", "m15")} <= served
    for (m, a, b), page in zip(cases, results):
        trained = train_same_different(with_overrides(shrink(RunConfig()), m=m), "cpu", cache=smoke.root / "cache",
                                       progress=False)
        assert trained.cached  # the sweep's own model, never retrained here
        diffs = explorable.differences(page, trained.model)
        assert diffs["verdict"] == 0 and max(diffs["float32"].values()) < 1e-4, (m, a, b, diffs)


def test_the_explorable_refuses_an_invalid_step_beside_its_field(smoke):
    """gamma = 0 typed into the explorable: the field goes back to the last valid gamma, which the dynamics keep
    running with, and one line beside it says what was refused and why."""
    require_chromium()
    seen = {}

    def type_zero(page) -> None:
        page.fill("#ox-gamma", "0")
        page.dispatch_event("#ox-gamma", "change")
        page.wait_for_function("document.querySelector('#ox-gamma-error').textContent.includes('refused')",
                               timeout=10_000)
        seen.update(field=page.input_value("#ox-gamma"), message=page.text_content("#ox-gamma-error"),
                    hash=page.evaluate("window.oscbindExplorable.lastHash"))

    with serve(smoke.html) as base:
        report = load_page(base + "notebooks/explorable.html", timeout_s=60, wait_for=["[data-ready]"], interact=type_zero)
    assert seen["field"] == "0.5" and "&gamma=0.5&" in seen["hash"]
    assert seen["message"] == "\u03b3 = 0 refused: it must be above 0 and at most 4; back to 0.5."
    assert report.console_errors == []


def test_the_explorables_verdict_sits_beside_the_icons_it_judges(smoke):
    """At a laptop's width the verdict is in the row of the two objects' images, level with them."""
    require_chromium()
    where = {}

    def measure(page) -> None:
        where.update(page.evaluate("""() => Object.fromEntries(['.ox-slot-a', '.ox-slot-b', '.ox-verdict'].map(s => {
            const b = document.querySelector(s).getBoundingClientRect(); return [s, [b.left, b.top, b.right, b.bottom]];
        }))"""))

    with serve(smoke.html) as base:
        load_page(base + "notebooks/explorable.html", timeout_s=60, wait_for=["[data-ready]"], interact=measure)
    a, b, verdict = where[".ox-slot-a"], where[".ox-slot-b"], where[".ox-verdict"]
    assert verdict[0] >= b[2] and a[1] <= verdict[1] and verdict[3] <= a[3], where
