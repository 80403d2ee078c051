"""The book: a smoke build of every chapter (papermill sweep + jupyter-book -W), its contracts, and every
page of it in headless chromium as a reader sees it."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import nbformat
import papermill
import pytest
import yaml

from browser import PHONE, explorable_results, load_page, load_pages, require_chromium, serve
from oscbind_lite.config import SMOKE
from oscbind_tools.book import chapter, sweep
from oscbind_tools.book.sweep import SPLIT, chapters

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "book" / "notebooks"

# What a reader must find on a page beyond the checks every page gets: matplotlib images, plotly figures and HTML
# tables (at least; plotly exactly). A page not named here (a new chapter) is checked with none required.
EXPECTED = {
    "intro": dict(images=1, plotly=0, tables=0),
    "notebooks/findings": dict(images=1, plotly=0, tables=2),
    "notebooks/icons_and_tasks": dict(images=6, plotly=0, tables=0),
    "notebooks/same_different": dict(images=1, plotly=0, tables=1),
    "notebooks/rmts": dict(images=1, plotly=0, tables=1),
    "notebooks/energy": dict(images=5, plotly=0, tables=6),
    "notebooks/dynamics": dict(images=1, plotly=1, tables=1),
    "notebooks/explorable": dict(images=0, plotly=0, tables=1),
    "notebooks/generalisation": dict(images=1, plotly=0, tables=1),
    "notebooks/mechanism": dict(images=2, plotly=0, tables=5),
    "notebooks/authors": dict(images=2, plotly=0, tables=6),
    "notebooks/coupling": dict(images=3, plotly=0, tables=2),
    "notebooks/few_icons": dict(images=3, plotly=0, tables=7),
    "notebooks/reproducing": dict(images=0, plotly=0, tables=2),
    "notebooks/performance": dict(images=2, plotly=0, tables=2),
}
NOTHING = dict(images=0, plotly=0, tables=0)


def toc_pages() -> list[str]:
    """Every page of the book in reading order, from book/_toc.yml: the one place the order is written."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


PAGES = {name: EXPECTED.get(name, NOTHING) for name in toc_pages()}
BUILT_WITH = "This page was built with m = 95 training icons and seed 0"
STAND_IN = "stand-in/oscbind-book"  # the repository the smoke build is told it is published from


def tools(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "oscbind_tools", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The whole book at the smoke setting: every chapter through papermill, then jupyter-book build -W."""
    root = tmp_path_factory.mktemp("smoke-book")
    env = {**os.environ, "OSCBIND_CACHE": str(root / "cache"), "OSCBIND_REPOSITORY": STAND_IN,
           "OSCBIND_BRANCH": sweep.PUBLISHED_BRANCH}  # as the Pages workflow builds it
    result = tools("sweep", "--smoke", "--runs", str(root / "runs"), "--build", "--site", str(root / "site"), env=env)
    return SimpleNamespace(root=root, runs=root / "runs", html=root / "site" / "_build" / "html", env=env, result=result)


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


def test_make_books_parameters_hold_no_path_of_the_machine():
    """make book's runs (runs/book) reach the notebooks as paths relative to them: no folder of the machine."""
    for job in sweep.plan(NOTEBOOKS, ROOT / "runs" / "book", [95, 50, 15], [0], 95, "auto", False):
        for name, value in job.parameters.items():
            if isinstance(value, str) and name.endswith("_dir"):
                assert not Path(value).is_absolute() and str(ROOT) not in value, (job.chapter, name, value)
                assert (NOTEBOOKS / value).resolve().is_relative_to(ROOT), (job.chapter, name, value)


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


def visible_text(dom: str) -> str:
    """The page's text as a reader sees it (scripts, styles and tags stripped)."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def prose(dom: str) -> str:
    """The page's words without its code, typeset maths and drawings: what must read as prose (folded parts too)."""
    dom = re.sub(r"<(pre|code|mjx-container|svg|kbd)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(visible_text(dom))


# What must never reach a page's prose: TeX that was not typeset, a backtick (markdown in plain, glued text), a
# Python list (one item, or three and more; two numbers in brackets are an interval) and plurals as "(s)".
NOT_PROSE = {"raw TeX": r"\$[^$\s][^$]*\$|\\[a-zA-Z]{2,}|\\[()\[\]]", "a backtick": r"`",
             "a Python list": r"\[\s*-?\d+(\.\d+)?\s*\]|\[-?\d+(, -?\d+){2,}\]|\[['\"]",
             "a plural as (s)": r"\w\((s|es)\)"}


@pytest.fixture(scope="module")
def pages(smoke):
    """Every page of the built book loaded in headless chromium (once for the tests below)."""
    require_chromium()
    assert smoke.result.returncode == 0, smoke.result.stderr[-3000:]
    names = list(PAGES)
    with serve(smoke.html) as base:
        return dict(zip(names, load_pages([base + name + ".html" for name in names], timeout_s=60)))


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_offline_with_its_figures_and_tables(pages, name, smoke):
    report = pages[name]
    assert report.offsite_requests() == []
    assert report.console_errors == []
    assert report.failed_requests == []
    dom, text = report.dom_html, visible_text(report.dom_html)
    want = PAGES[name]
    main = dom[dom.find('<main'):]  # the article, not the navigation
    assert len(re.findall(r"<img\b", main)) >= want["images"], name
    assert main.count('class="plotly-graph-div') == want["plotly"], name
    assert len(re.findall(r"<table\b", main)) >= want["tables"], name
    assert not re.search(r"\|\s*-{3,}\s*\|", text), "raw markdown table syntax on the page"
    for folder in {str(smoke.root), str(ROOT), str(Path.home())} - {"/"}:
        assert folder not in dom, f"a path of the build machine ({folder}) is on the page"
    assert chapter.MARKER not in text and "# Parameters" not in text  # neither parameters cell is shown
    assert "ParameterError" not in text and "Traceback" not in text


@pytest.mark.parametrize("name", [f"notebooks/{c.name}" for c in chapters(ROOT / "book") if c.role != "summary"])
def test_chapters_say_in_words_what_they_were_built_with(pages, name):
    assert BUILT_WITH in visible_text(pages[name].dom_html)


MAX_SCREENS = 10.5  # "a reader finishes a page in about ten screens": longer material is folded or its own page


@pytest.fixture(scope="module")
def phone_pages(smoke):
    """Every page of the built book at a phone's width."""
    require_chromium()
    with serve(smoke.html) as base:
        return dict(zip(PAGES, load_pages([base + name + ".html" for name in PAGES], timeout_s=60, viewport=PHONE)))


@pytest.mark.parametrize("name", list(PAGES))
def test_nothing_is_cut_off_on_a_laptop_or_a_phone(pages, phone_pages, name):
    """At 1280 px no code cell, table, output or equation is wider than the article column; at 400 px the page itself
    never scrolls sideways (a wide table scrolls inside its own box, its first column kept)."""
    assert pages[name].overflowing == [], name
    phone = phone_pages[name]
    assert phone.width <= PHONE[0], f"{name} scrolls sideways at {PHONE[0]} px: {phone.width} px wide"


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_is_longer_than_about_ten_screens(pages, name):
    report = pages[name]
    assert report.screens <= MAX_SCREENS, f"{name} is {report.screens:.1f} screens at {report.viewport}"


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


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_shows_raw_tex_backticks_python_lists_or_plurals_in_brackets(pages, name):
    text = prose(pages[name].dom_html)
    for what, pattern in NOT_PROSE.items():
        found = [text[max(0, m.start() - 50):m.end() + 30] for m in re.finditer(pattern, text)]
        assert not found, f"{name}: {what} in the text: {found[:3]}"


@pytest.mark.parametrize("name", list(PAGES))
def test_a_table_number_labels_one_table_of_a_page(pages, name):
    """Tables are numbered per page, each number once: in a caption ("Table 2. ...") or in the title of the dropdown
    that folds the table ("Table 2: ..."), not both, and never two tables with one number."""
    dom = pages[name].dom_html
    labels = re.findall(r"<caption>\s*Table (\d+)", dom) + re.findall(
        r'<p class="admonition-title">\s*Table (\d+)', dom)
    assert len(labels) == len(set(labels)), f"{name}: table labels {labels}"


def test_tables_have_captions(pages):
    captions = [c for report in pages.values() for c in re.findall(r"<caption>(.*?)</caption>", report.dom_html)]
    assert len(captions) >= sum(p["tables"] for p in PAGES.values())
    assert all(captions)


# The parts of the dynamics page's plotly scrubber as the reader sees them, each as [left, top, right, bottom] in page
# pixels: the figure's box, its panels, the slider's rail, the "step t = k of T" readout and the play/pause buttons.
SCRUBBER_PARTS = """() => {
  const gd = document.querySelector('.plotly-graph-div'), r = e => { const b = e.getBoundingClientRect();
    return [b.left, b.top + scrollY, b.right, b.bottom + scrollY]; };
  const all = s => [...gd.querySelectorAll(s)].map(r);
  return {box: r(gd.parentElement), panels: all('.bglayer .bg'), rail: all('.slider-rail-rect'),
          readout: [...gd.querySelectorAll('.slider-group text')].filter(e => e.textContent.startsWith('step t'))
                   .map(r),
          buttons: all('.updatemenu-button')};
}"""


def assert_scrubber_fits(parts: dict) -> None:
    """Both panels, the slider, its readout and both buttons are drawn, inside the figure's box (nothing cut off),
    and none of them covers another."""
    box = parts["box"]
    assert len(parts["panels"]) == 2 and len(parts["rail"]) == len(parts["readout"]) == 1 and len(parts["buttons"]) == 2
    items = [*parts["panels"], *parts["rail"], *parts["readout"], *parts["buttons"]]
    inside = [b for b in items if b[0] >= box[0] - 1 and b[1] >= box[1] - 1 and b[2] <= box[2] + 1
              and b[3] <= box[3] + 1]
    assert inside == items, parts

    def apart(a, b) -> bool:
        return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]

    assert all(apart(a, b) for i, a in enumerate(items) for b in items[i + 1:]), parts


def test_the_static_dynamics_page_offers_only_controls_that_work(smoke):
    """The plotly scrubber is there and moves; the kernel-driven ipywidgets scrubber is not shown."""
    require_chromium()
    parts = {}

    def scrub(page) -> None:
        """Drag the slider's grip to its left end, as a reader would: the figure shows step t = 0."""
        rail = page.locator(".plotly-graph-div .slider-rail-touch-rect")
        rail.scroll_into_view_if_needed()
        left, grip = rail.bounding_box(), page.locator(".plotly-graph-div .slider-grip-rect").bounding_box()
        page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
        page.mouse.down()
        page.mouse.move(left["x"] + 2, grip["y"] + grip["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_function("document.querySelector('.plotly-graph-div .slider-container')"
                               ".textContent.startsWith('step t = 0 of')", timeout=10_000)
        parts.update(page.evaluate(SCRUBBER_PARTS))

    with serve(smoke.html) as base:
        report = load_page(base + "notebooks/dynamics.html", timeout_s=60, interact=scrub,
                           wait_for=[".plotly-graph-div .main-svg .slider-container",
                                     ".plotly-graph-div .updatemenu-container"])
    assert report.console_errors == [] and report.offsite_requests() == []
    assert "widget-play" not in report.dom_html and "html-manager" not in report.dom_html
    assert_scrubber_fits(parts)


def test_the_dynamics_figure_fits_a_phone(smoke):
    """At a phone's width the scrubber stacks its two panels, and its box grows with it: both panels, the slider, its
    readout and the buttons are all shown, none over another; turned back to a laptop's width, the row returns."""
    require_chromium()
    seen = {}

    def measure(page) -> None:
        page.wait_for_function("document.querySelector('.plotly-graph-div .bglayer .bg')")
        page.wait_for_timeout(300)  # the stacking relayout
        seen["phone"] = page.evaluate(SCRUBBER_PARTS)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.wait_for_timeout(800)
        seen["laptop"] = page.evaluate(SCRUBBER_PARTS)

    with serve(smoke.html) as base:
        report = load_page(base + "notebooks/dynamics.html", timeout_s=60, interact=measure, viewport=PHONE,
                           wait_for=[".plotly-graph-div .main-svg .slider-container"])
    assert report.console_errors == []
    phone, laptop = seen["phone"], seen["laptop"]
    assert_scrubber_fits(phone)
    assert phone["panels"][0][3] <= phone["panels"][1][1]  # stacked: the second panel below the first
    assert_scrubber_fits(laptop)
    assert laptop["panels"][0][2] <= laptop["panels"][1][0]  # side by side again


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


def test_long_output_lines_wrap(smoke):
    """The book's stylesheet wraps printed output instead of cutting it at the right edge."""
    css = (smoke.html / "_static" / "oscbind.css").read_text()
    assert "pre-wrap" in css
    assert "_static/oscbind.css" in (smoke.html / "notebooks" / "dynamics.html").read_text()


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
