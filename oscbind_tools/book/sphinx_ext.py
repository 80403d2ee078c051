"""What the Jupyter Book needs from Python to work offline: a myst-nb mime renderer and a Sphinx extension.

Plotly run under papermill emits each figure only as ``application/vnd.plotly.v1+json``, a mime type
that myst-nb does not know: it drops the output with "skipping unknown output mime type" (an error
under ``jupyter-book build -W``). We register ``PlotlyMimeRenderer`` as a myst-nb mime renderer
(entry point group ``myst_nb.mime_renderers`` in pyproject.toml) rather than asking notebooks to call
a display helper that writes a second, HTML copy of every figure, because:

- every way a notebook shows a figure (``fig``, ``fig.show()``, ``display(fig)``) keeps working, and
  a chapter that forgets a helper still renders instead of failing the build;
- the notebook stores each figure once, as plotly's own JSON, which JupyterLab renders interactively
  with the ``jupyterlab-plotly`` extension that ships with plotly;
- the page gets a ``div`` and a ``Plotly.newPlot`` call written by ``plotly.io.to_html`` (so frames,
  sliders and play buttons work as in plotly's own HTML export) with ``include_plotlyjs=False``: the
  single local copy of ``plotly.min.js``, copied from the installed plotly by ``book/vendor_assets.py``
  and loaded only on the pages that draw a plotly figure, draws it. No CDN, no per-page copy.

The module is also a small Sphinx extension (``sphinx: extra_extensions`` in book/_config.yml) that
keeps Jupyter Book 1 from loading vendored files on every page, drops its duplicate inline scripts,
stops the theme's Font Awesome from rewriting widget icons (which broke the Play widget), sets code in
glued text as code, and labels each table of a page once.
It imports plotly and docutils lazily, so Sphinx loads it cheaply.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# myst-nb's HTML builders; other builders (LaTeX) keep plotly's JSON at no priority and skip it.
HTML_BUILDERS = ("html", "dirhtml", "singlehtml", "readthedocs", "readthedocsdirhtml", "readthedocssinglehtml")
# Plotly's own notebook renderer uses this height when the figure's layout gives none.
DEFAULT_HEIGHT_PX = 525


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` that ships inside the installed plotly package (the one the book serves)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotly is not installed: pip install -e '.[book]'")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


# A figure whose layout.meta.stack_below is set (plotting.stacked_on_narrow) stacks its row of panels one above the
# other when the page is narrower than that many pixels (a phone), and puts them back side by side when it is wide:
# meta.narrow and meta.wide are its two layouts as Plotly.relayout settings. The box plotly.io wraps the figure in
# has the figure's height written on it, so it takes each layout's height: nothing is cut off below the first panel.
STACK_ON_NARROW = """
(function () {
  var gd = document.getElementById('{plot_id}');
  var meta = (gd.layout || {}).meta || {};
  if (!meta.stack_below || !meta.narrow || !meta.wide) return;
  var stacked = null, width = null, timer = null;
  function fit() {
    var w = gd.parentElement.clientWidth, narrow = w < meta.stack_below;
    if (narrow === stacked && w === width) return;
    var update = narrow === stacked ? {} : JSON.parse(JSON.stringify(narrow ? meta.narrow : meta.wide));
    stacked = narrow;
    width = w;
    // The figure's height is its own, so plotly never resizes it to the box: the width is set here on every change.
    update.width = w;
    if (update.height) gd.parentElement.style.height = update.height + 'px';
    Plotly.relayout(gd, update);
  }
  fit();
  // After the page has settled into its new width (its sidebars come and go with it).
  window.addEventListener('resize', function () { clearTimeout(timer); timer = setTimeout(fit, 150); });
})();
"""


def figure_html(figure: dict[str, Any], div_id: str) -> str:
    """A ``div`` plus the ``Plotly.newPlot`` script for a plotly figure dict, without plotly.js itself."""
    import plotly.io as pio

    return pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=div_id, validate=False,
                       auto_play=False, config=figure.get("config"), default_height=DEFAULT_HEIGHT_PX,
                       post_script=STACK_ON_NARROW)


class PlotlyMimeRenderer:
    """myst-nb mime renderer: plotly JSON outputs become interactive figures in HTML builds."""

    mime_priority_overrides = [(builder, PLOTLY_MIME, 5) for builder in HTML_BUILDERS]

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        """Render ``data`` when it is a block-level plotly figure; return None to leave it to myst-nb."""
        if inline or data.mime_type != PLOTLY_MIME:
            return None
        from docutils import nodes

        figure = data.content if isinstance(data.content, dict) else json.loads(data.content)
        # Deterministic id, unique per output on the page: rebuilds give identical HTML.
        digest = hashlib.sha1(json.dumps(figure, sort_keys=True).encode()).hexdigest()[:10]
        div_id = f"plotly-{data.cell_index}-{data.output_index}-{digest}"
        html = figure_html(figure, div_id)
        return [nodes.raw(text=html, format="html", classes=["output", "text_html", "plotly-figure"])]


def drop_duplicate_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of identical ``<script>`` entries on a page.

    Jupyter Book 1 puts sphinx-thebe's inline ``const THEBE_JS_URL = ...`` (and sphinx-togglebutton's
    setup line) on every page twice, so every page logged "Identifier 'THEBE_JS_URL' has already been
    declared". Identical means the same file, or the same inline body, with the same attributes.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        # Sphinx stores an inline script's missing file as None or as "" depending on how it was added.
        key = (getattr(script, "filename", str(script)) or "",
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


# Folders of book/_vendor (see book/vendor_assets.py), the explorable's script and its exported models: none of them
# goes on every page. plotly.js (4.8 MB) goes only on the pages that draw a plotly figure (``plotly_where_drawn``),
# the widget manager and MathJax only where myst-nb and Sphinx put them, the explorable's files only on its page.
VENDORED_FOLDERS = ("plotly/", "html-manager/", "mathjax/", "explorable/", "explorable-data/", "search/")
PLOTLY_JS = "plotly/plotly.min.js"


def keep_vendored_assets_off_pages(app: Any, config: Any) -> None:
    """Undo Jupyter Book 1's injection of vendored files into every page.

    When ``book/_static`` exists, Jupyter Book 1 adds every .js and .css under *each* folder of
    ``html_static_path`` to every page, _vendor included: all of MathJax's extensions, plotly.js and the
    widget manager would load everywhere. None of them belongs on every page: myst-nb and Sphinx add the
    widget manager and MathJax to the pages that need them, ``plotly_where_drawn`` adds plotly.js.
    """
    for name in ("html_js_files", "html_css_files"):
        kept = []
        for entry in config[name]:
            path = entry if isinstance(entry, str) else entry[0]
            if not str(path).startswith(VENDORED_FOLDERS) and entry not in kept:
                kept.append(entry)
        config[name] = kept


def clean_search_snippets(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """On the search page, cut result snippets from the pages' text without formulas' LaTeX and toggle labels."""
    if pagename == "search":
        app.add_js_file("search/clean-snippets.js", priority=800)


def plotly_where_drawn(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Load plotly.js on a page that draws a plotly figure (``PlotlyMimeRenderer``'s ``Plotly.newPlot``), and on
    no other: a page without one saves its 4.8 MB."""
    if "Plotly.newPlot" in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=200)


# Code in glued text: {glue:text} pastes a chapter's string as plain text, so `make book` in it would reach the page
# with its backticks. Each backquoted span of a pasted text becomes inline code, as it would in the prose around it.
BACKQUOTED = re.compile(r"`([^`]+)`")


def code_in_pasted_text(app: Any, doctree: Any, docname: str) -> None:
    """Turn each backquoted span of a ``{glue:text}`` paste (an inline of class pasted-text) into inline code."""
    from docutils import nodes

    for pasted in list(doctree.findall(nodes.inline)):
        if "pasted-text" not in pasted.get("classes", []) or "`" not in pasted.astext():
            continue
        text, parts, at = pasted.astext(), [], 0
        for match in BACKQUOTED.finditer(text):
            parts += [nodes.Text(text[at:match.start()]), nodes.literal(match[1], match[1])]
            at = match.end()
        pasted.children = []
        pasted.extend([*parts, nodes.Text(text[at:])])


# A table is labelled once on its page. A chapter may fold a table into a dropdown titled "Table 2: ..." whose caption
# also starts "Table 2." (the coupling chapter does): the caption's repeat of the number goes, so no page reads
# "Table 2" twice for one table. Two different tables labelled with one number on a page fail the build.
TITLE_LABEL = re.compile(r"Table (\d+)\b")
CAPTION_LABEL = re.compile(r"<caption>Table (\d+)[.:]?\s*")


def label_tables_once(app: Any, doctree: Any, docname: str) -> None:
    """Drop a caption's "Table N." where its dropdown's title already says "Table N"; warn (an error under -W) when
    two tables of the page carry one number."""
    from docutils import nodes
    from sphinx.util import logging

    labels = []  # the number of each labelled table of the page, in order
    titled = set()  # the raw outputs inside a dropdown titled "Table N"
    for admonition in doctree.findall(nodes.admonition):
        title = next((c for c in admonition.children if isinstance(c, nodes.title)), None)
        match = TITLE_LABEL.match(title.astext()) if title is not None else None
        tables = [raw for raw in admonition.findall(nodes.raw) if "<table" in raw.astext()]
        if not (match and tables):
            continue
        labels.append(match[1])
        for raw in tables:
            titled.add(id(raw))
            text = raw.astext()
            kept = CAPTION_LABEL.sub(lambda m: "<caption>" if m[1] == match[1] else m[0], text)
            if kept != text:
                raw.children = []
                raw.append(nodes.Text(kept))
            labels += CAPTION_LABEL.findall(kept)
    for raw in doctree.findall(nodes.raw):
        if id(raw) not in titled:
            labels += CAPTION_LABEL.findall(raw.astext())
    repeated = sorted({n for n in labels if labels.count(n) > 1}, key=int)
    if repeated:
        logging.getLogger(__name__).warning(f"{docname}: two tables are labelled Table {repeated[0]}; number each "
                                            "table of a page once", location=docname)


# The theme's Font Awesome (SVG + JS) swaps every <i class="fa ..."> for an <svg>, and its first pass
# runs after the window's load event, when the widget manager has already drawn the widgets: the Play
# widget then fails on its first click ("Cannot set properties of undefined (setting 'className')")
# because the <i> in its buttons is gone. Turned off automatic swapping, and swapped once at
# DOMContentLoaded instead: that catches the theme's icons (all in the HTML) and never the widgets',
# which keep their own icon font from the html-manager bundle.
FONTAWESOME_ONCE = (
    "window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {autoReplaceSvg: false});"
    "document.addEventListener('DOMContentLoaded', function () {"
    " if (window.FontAwesome) { window.FontAwesome.dom.i2svg(); } });")


STATIC = Path(__file__).resolve().parent / "static"  # oscbind.css: wrapped output, table style; explorable/
# Files the sweep generates for the pages, staged beside the book's sources (the explorable's exported
# models, in explorable-data/); served from _static/ like the vendored files when the folder exists.
GENERATED = "_generated"


def add_own_static(app: Any, config: Any) -> None:
    """Serve this package's static folder (oscbind.css, the explorable's script) and the sweep's generated
    files beside the book's own."""
    generated = Path(app.confdir) / GENERATED
    config.html_static_path = [*config.html_static_path, str(STATIC), *([str(generated)] if generated.is_dir() else [])]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension (``sphinx: extra_extensions: [oscbind_tools.book.sphinx_ext]``): the page fixes above."""
    app.connect("config-inited", add_own_static, priority=90)
    app.connect("config-inited", keep_vendored_assets_off_pages, priority=100)
    app.add_css_file("oscbind.css")
    # Inline and not deferred: it runs before the theme's deferred fontawesome.js reads its config.
    app.add_js_file(None, body=FONTAWESOME_ONCE, priority=100)
    app.connect("html-page-context", plotly_where_drawn)
    app.connect("html-page-context", clean_search_snippets)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("doctree-resolved", code_in_pasted_text)
    app.connect("doctree-resolved", label_tables_once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
