"""Every page of the smoke build in headless chromium at a laptop's width (1280 px), as a reader sees it: offline,
without errors, with its figures and tables, nothing wider than its column, no longer than about ten screens, no raw
markup in its prose; and the dynamics page's scrubber works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from book_pages import (BUILT_WITH, MAX_SCREENS, NOT_PROSE, PAGES, ROOT, SCRUBBER_PARTS, assert_scrubber_fits, prose,
                        visible_text)
from browser import load_page, load_pages, require_chromium, serve
from oscbind_tools.book import chapter
from oscbind_tools.book.sweep import chapters

pytestmark = pytest.mark.book


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


@pytest.mark.parametrize("name", list(PAGES))
def test_nothing_is_wider_than_the_column_on_a_laptop(pages, name):
    """At 1280 px no code cell, table, output or equation is wider than the article column."""
    assert pages[name].overflowing == [], name


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_is_longer_than_about_ten_screens(pages, name):
    report = pages[name]
    assert report.screens <= MAX_SCREENS, f"{name} is {report.screens:.1f} screens at {report.viewport}"


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
