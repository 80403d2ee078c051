"""Every page of the smoke build in headless chromium at a phone's width (400 px): nothing makes the page scroll
sideways, and the dynamics page's scrubber fits."""

from __future__ import annotations

import pytest

from book_pages import PAGES, SCRUBBER_PARTS, assert_scrubber_fits
from browser import PHONE, load_page, load_pages, require_chromium, serve

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def phone_pages(smoke):
    """Every page of the built book at a phone's width."""
    require_chromium()
    with serve(smoke.html) as base:
        return dict(zip(PAGES, load_pages([base + name + ".html" for name in PAGES], timeout_s=60, viewport=PHONE)))


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_scrolls_sideways_on_a_phone(phone_pages, name):
    """At 400 px the page itself never scrolls sideways (a wide table scrolls inside its own box, its first column
    kept)."""
    phone = phone_pages[name]
    assert phone.width <= PHONE[0], f"{name} scrolls sideways at {PHONE[0]} px: {phone.width} px wide"


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
