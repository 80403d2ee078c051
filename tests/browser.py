"""Load built book pages in headless Debian chromium and report what happened (a helper, not a test).

    with serve(book / "_build" / "html") as base:
        report = load_page(base + "intro.html", wait_for=[".plotly-graph-div .slider-container"])
    assert report.offsite_requests() == [] and report.console_errors == []

playwright drives /usr/bin/chromium (``apt-get install chromium``) through ``executable_path``; it
never downloads a browser. Every request is recorded; any that leaves localhost is recorded and
aborted, so a page that reaches for a CDN shows up in ``offsite_requests()`` rather than hanging.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
# The one way to run make test without a browser: OSCBIND_NO_BROWSER=1 (documented in the README).
NO_BROWSER = os.environ.get("OSCBIND_NO_BROWSER", "") == "1"
# Offline, reproducible headless runs (a fresh profile comes from playwright, one per launch).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
# Schemes that never touch the network.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}
# Chromium asks every site for /favicon.ico by itself (the book declares none); its 404 is not the page's.
IGNORED_CONSOLE_URLS = ("/favicon.ico",)


def require_chromium() -> None:
    """Skip when the user opted out (OSCBIND_NO_BROWSER=1); fail with one line when chromium is missing.

    A missing browser never passes silently: the book's pages would go untested.
    """
    import pytest

    if NO_BROWSER:
        pytest.skip("OSCBIND_NO_BROWSER=1: the browser checks of the book were switched off")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does this as root), "
                    "or set OSCBIND_NO_BROWSER=1 to skip the browser checks", pytrace=False)


def is_local(url: str) -> bool:
    """Whether a request URL stays on this machine."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS)


SCREEN = (1280, 800)  # a laptop's browser window: the width and height a "screen" of a page means here
PHONE = (400, 800)
# What sticks out of the article column: code, tables, outputs and equations whose content is wider than their box
# (a box that scrolls sideways counts: at a laptop's width nothing should), or whose box reaches past the column.
# Each as "tag.class: content width / box width". Elements inside a figure's own scroller (plotly) are not counted.
OVERFLOW = """() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return [];
  const right = article.getBoundingClientRect().right + 1;
  const out = [];
  for (const el of article.querySelectorAll('pre, table, div.output, div.cell_output, mjx-container[display="true"], img')) {
    if (el.closest('.plotly-graph-div, #oscbind-explorable')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1 || box.right > right) {
      out.push(`${el.tagName.toLowerCase()}.${(el.className.baseVal ?? el.className).toString().split(' ')[0]}: ` +
               `${el.scrollWidth} / ${Math.round(box.width)} px`);
    }
  }
  return out;
}"""


@dataclass
class PageReport:
    """What one page load did: the final DOM, every request, console errors and failed requests, and the
    page's size in CSS pixels at the viewport it was loaded with (``height``, ``width``: the document's)."""

    dom_html: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    height: int = 0
    width: int = 0
    viewport: tuple[int, int] = SCREEN
    overflowing: list[str] = field(default_factory=list)  # article elements wider than the column (OVERFLOW)

    @property
    def screens(self) -> float:
        """The page's length in viewport heights."""
        return self.height / self.viewport[1]

    def offsite_requests(self) -> list[str]:
        """Requests that tried to leave localhost (they were aborted)."""
        return [url for url in self.requests if not is_local(url)]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` over http on a free localhost port in a thread; yields the base URL ("http://.../")."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def load_page(url: str, timeout_s: float = 30.0, wait_for: Sequence[str] = (), settle_ms: int = 500,
              interact: Callable[[Any], None] | None = None, viewport: tuple[int, int] = SCREEN) -> PageReport:
    """Open ``url`` in headless chromium, wait for ``load``, each CSS selector in ``wait_for`` and
    ``settle_ms`` without a request in flight; return the DOM then, the requests and console errors.

    ``interact``, when given, is called with the playwright ``Page`` after those waits (to click a
    button, say); the DOM is read after it returns.
    """
    return load_pages([url], timeout_s, wait_for, settle_ms, interact, viewport)[0]


def load_pages(urls: Sequence[str], timeout_s: float = 30.0, wait_for: Sequence[str] = (), settle_ms: int = 500,
               interact: Callable[[Any], None] | None = None, viewport: tuple[int, int] = SCREEN) -> list[PageReport]:
    """``load_page`` for each url, in one chromium (a fresh context per page, so no page sees another's state):
    starting a browser per page costs more than loading most pages."""
    from playwright.sync_api import sync_playwright

    timeout_ms = timeout_s * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
                                    timeout=timeout_ms)
        try:
            return [_report(browser, url, timeout_s, wait_for, settle_ms, interact, viewport) for url in urls]
        finally:
            browser.close()


def _report(browser, url: str, timeout_s: float, wait_for: Sequence[str], settle_ms: int,
            interact: Callable[[Any], None] | None, viewport: tuple[int, int]) -> PageReport:
    requests: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    in_flight: set = set()

    def route(route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        page.on("request", lambda request: (requests.append(request.url), in_flight.add(request)))
        page.on("requestfinished", lambda request: in_flight.discard(request))
        page.on("requestfailed", lambda request: (in_flight.discard(request),
                                                  failed.append(f"{request.url} ({request.failure})")))
        page.on("response", lambda response: response.status >= 400 and failed.append(
            f"{response.url} (HTTP {response.status})"))
        page.on("console", lambda message: message.type == "error" and not urlsplit(
            message.location.get("url", "")).path.endswith(IGNORED_CONSOLE_URLS) and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        page.route("**/*", route)
        page.goto(url, wait_until="load")
        for selector in wait_for:
            page.wait_for_selector(selector, state="attached")
        _wait_quiet(page, in_flight, settle_ms, deadline=time.monotonic() + timeout_s)
        if interact is not None:
            interact(page)
        dom = page.content()
        height, width = page.evaluate("[document.documentElement.scrollHeight, document.documentElement.scrollWidth]")
        overflowing = page.evaluate(OVERFLOW)
    finally:
        context.close()
    return PageReport(dom_html=dom, requests=requests, console_errors=errors, failed_requests=failed, height=height,
                      width=width, viewport=viewport, overflowing=overflowing)


def _wait_quiet(page, in_flight: set, quiet_ms: int, deadline: float) -> None:
    """Wait until no request has been in flight for ``quiet_ms`` (fonts and MathJax load late).

    Counted here rather than with playwright's "networkidle", which Debian's newer chromium does
    not always report to this playwright version.
    """
    quiet_since = None
    while time.monotonic() < deadline:
        page.wait_for_timeout(50)
        if in_flight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_ms / 1000:
            return
    raise TimeoutError(f"requests still in flight: {sorted(r.url for r in in_flight)}")


def explorable_results(site: str | Path, page: str, hashes: Sequence[str]) -> tuple[list[dict], PageReport]:
    """Open the explorable page of a served site, set each permalink in turn and read the page's result for it
    (``window.oscbindExplorable.result()``); return those results and the page's report."""
    results = []

    def drive(p) -> None:
        for h in hashes:
            p.evaluate("h => { location.hash = h; }", h)
            p.wait_for_function("h => window.oscbindExplorable.lastHash === h", arg=h, timeout=20_000)
            results.append(p.evaluate("window.oscbindExplorable.result()"))

    with serve(site) as base:
        report = load_page(base + page, timeout_s=60, wait_for=["[data-ready]"], interact=drive)
    return results, report
