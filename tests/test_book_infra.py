"""The offline book machinery end to end: papermill, jupyter-book build -W, headless chromium.

One tiny book is built in a temporary folder with the real book/_config.yml and book/_vendor: a
chapter with a plotly figure that has a slider and a play button, an ipywidgets Play + IntSlider +
Output in an HBox, and a page with math. The pages must render all three with no request leaving
localhost, and plotly.js must exist once in the output, loaded from _static, never inlined.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import load_page, require_chromium, serve

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

pytestmark = pytest.mark.book


@pytest.fixture
def chromium():
    require_chromium()

PLOTLY_CELL = '''\
import numpy as np
import plotly.graph_objects as go

x = np.linspace(0, 2 * np.pi, 40)
frames = [go.Frame(data=[go.Scatter(x=x, y=np.sin(x + k / 3))], name=str(k)) for k in range(6)]
steps = [dict(method="animate", label=str(k), args=[[str(k)], dict(mode="immediate", frame=dict(duration=0))])
         for k in range(6)]
fig = go.Figure(data=frames[0].data, frames=frames, layout=go.Layout(
    sliders=[dict(steps=steps)],
    updatemenus=[dict(type="buttons", buttons=[dict(label="Play", method="animate", args=[None])])]))
fig.show()
'''

WIDGET_CELL = '''\
import ipywidgets as widgets

play = widgets.Play(min=0, max=5, interval=200)
slider = widgets.IntSlider(min=0, max=5)
widgets.jslink((play, "value"), (slider, "value"))
out = widgets.Output()
with out:
    print("written inside the Output widget")
widgets.HBox([play, slider, out])
'''


def load_vendor_script():
    """book/vendor_assets.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("vendor_assets", BOOK / "vendor_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    """Execute the demo chapter with papermill and build the tiny book; returns _build/html."""
    import nbformat
    import papermill

    load_vendor_script().vendor()  # fills book/_vendor once (npm); instant when versions match
    book = tmp_path_factory.mktemp("book")
    shutil.copy(BOOK / "_config.yml", book / "_config.yml")
    (book / "_vendor").symlink_to(BOOK / "_vendor", target_is_directory=True)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - caption: Chapters\n"
                                   "    chapters:\n      - file: demo\n")
    (book / "intro.md").write_text("# Intro\n\nPhases follow $\\dot\\theta_i = \\omega_i + K \\sin(\\theta_j - \\theta_i)$.\n")
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_markdown_cell("# Demo"), nbformat.v4.new_code_cell(PLOTLY_CELL),
                      nbformat.v4.new_code_cell(WIDGET_CELL)]
    nbformat.write(notebook, book / "demo_unexecuted.ipynb")
    papermill.execute_notebook(book / "demo_unexecuted.ipynb", book / "demo.ipynb", kernel_name="python3",
                               progress_bar=False, cwd=book, execution_timeout=120, start_timeout=60)
    build = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "-W", "--keep-going",
                            str(book)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return book / "_build" / "html"


def test_papermill_keeps_plotly_json_and_widget_state(built_book):
    """The inputs the book relies on: plotly's JSON output and the saved widget state."""
    import nbformat

    notebook = nbformat.read(built_book.parents[1] / "demo.ipynb", as_version=4)
    mimes = {mime for cell in notebook.cells for out in cell.get("outputs", []) for mime in out.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes
    assert "application/vnd.jupyter.widget-view+json" in mimes
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    # html-manager 1.0.x reads state schema 2.x, as ipywidgets 8 writes it.
    assert state["version_major"] == 2 and state["state"]


def test_plotly_js_is_served_once_from_static_and_only_where_a_figure_needs_it(built_book):
    """One plotly.min.js in the whole output, under _static, referenced by the page that draws a plotly figure and by
    no other (the intro and the search page do without its 4.8 MB), inlined in none."""
    copies = sorted(p.relative_to(built_book).as_posix() for p in built_book.rglob("plotly*.js"))
    assert copies == ["_static/plotly/plotly.min.js"]
    bundle_head = (built_book / copies[0]).read_text()[:300]
    for page in built_book.glob("*.html"):
        html = page.read_text()
        loads = '<script src="_static/plotly/plotly.min.js' in html
        assert loads == ("Plotly.newPlot" in html), page.name
        assert bundle_head not in html, f"plotly.js inlined in {page.name}"
        assert len(html) < 1_000_000, f"{page.name} is {len(html)} bytes"
    assert '<script src="_static/plotly/plotly.min.js' in (built_book / "demo.html").read_text()


def test_demo_chapter_renders_offline(built_book, chromium):
    """The plotly figure with its slider and play button, and the widget (which plays), render offline."""
    def press_play(page) -> None:
        """Play advances the IntSlider through the saved jslink, with no kernel behind the page."""
        page.click(".widget-play button >> nth=0")
        page.wait_for_function("document.querySelector('.widget-readout').textContent.trim() !== '0'", timeout=10_000)

    with serve(built_book) as base:
        report = load_page(base + "demo.html", timeout_s=30, interact=press_play, wait_for=[
            ".plotly-graph-div .main-svg .slider-container", ".plotly-graph-div .updatemenu-container",
            ".widget-hbox .widget-play", ".widget-hbox .widget-slider"])
    assert report.offsite_requests() == []
    assert report.console_errors == []
    assert report.failed_requests == []
    assert [u for u in report.requests if u.split("?")[0].endswith("/_static/plotly/plotly.min.js")], report.requests
    assert [u for u in report.requests if u.split("?")[0].endswith("/_static/html-manager/embed.js")], report.requests
    assert report.dom_html.count('class="plotly-graph-div') == 1
    assert "written inside the Output widget" in report.dom_html  # the Output widget's saved state rendered


def test_math_renders_offline(built_book, chromium):
    """MathJax comes from _static: an equation typesets with no request off localhost."""
    with serve(built_book) as base:
        report = load_page(base + "intro.html", timeout_s=30, wait_for=["mjx-container"])
    assert report.offsite_requests() == []
    assert report.console_errors == []
    assert report.failed_requests == []
    assert [u for u in report.requests if "/_static/mathjax/tex-mml-chtml.js" in u], report.requests


def test_vendored_assets_are_not_committed():
    """The vendored folder is git-ignored and not book/_static (which Jupyter Book 1 injects everywhere)."""
    ignored = subprocess.run(["git", "check-ignore", "-q", "book/_vendor/plotly/plotly.min.js"], cwd=ROOT)
    assert ignored.returncode == 0, "book/_vendor must be git-ignored"
    assert not (BOOK / "_static" / "plotly").exists()


def test_book_config_points_at_nothing_online():
    """book/_config.yml: no launch buttons, execution off, and no Sphinx setting that names a URL."""
    import yaml

    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off" and config["only_build_toc_files"] is True
    assert not any(config["launch_buttons"].get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url",
                                                              "deepnote_url", "thebe"))
    assert "://" not in str(config["sphinx"]), config["sphinx"]
    assert "oscbind_tools.book.sphinx_ext" in config["sphinx"]["extra_extensions"]
