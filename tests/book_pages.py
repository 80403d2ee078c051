"""What the book's tests share: its pages in reading order with what each must show, the smoke build they all read
(built once per test run, ``build_smoke_book``), and how a page's text is read back from the browser."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from oscbind_tools.book import sweep

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


def build_smoke_book(root: Path) -> SimpleNamespace:
    """The whole book at the smoke setting in root: every chapter through papermill (two kernels at a time), then
    jupyter-book build -W, as
    the Pages workflow builds it (a repository to publish from, the buttons on the branch it publishes to). Built
    once: a second call with the same root reads the first one's result (``conftest.smoke`` shares it between test
    workers under a file lock)."""
    env = {**os.environ, "OSCBIND_CACHE": str(root / "cache"), "OSCBIND_REPOSITORY": STAND_IN,
           "OSCBIND_BRANCH": sweep.PUBLISHED_BRANCH}
    done = root / "result.json"
    if not done.exists():
        result = tools("sweep", "--smoke", "--kernels", "2", "--runs", str(root / "runs"), "--build", "--site",
                       str(root / "site"), env=env)
        done.write_text(json.dumps({"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}))
    return SimpleNamespace(root=root, runs=root / "runs", html=root / "site" / "_build" / "html", env=env,
                           result=SimpleNamespace(**json.loads(done.read_text())))

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


MAX_SCREENS = 10.5  # "a reader finishes a page in about ten screens": longer material is folded or its own page


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
