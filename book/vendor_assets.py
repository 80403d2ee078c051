"""Fill book/_vendor with the JavaScript the book serves itself, so the built HTML needs no internet.

    python book/vendor_assets.py [--dest DIR]      (make vendor)

- ``plotly/plotly.min.js``: copied from the installed plotly package, so plotly.js always matches the
  plotly.py that wrote the figures; loaded once per page through ``html_js_files``.
- ``html-manager/``: ``npm pack @jupyter-widgets/html-manager`` (the npm registry), its ``dist/embed.js``
  (the non-AMD bundle: no require.js, never reaches for a CDN) and the font files it loads beside
  itself; myst-nb's ``nb_ipywidgets_js`` points at it on pages with saved widget state.
- ``mathjax/``: ``npm pack mathjax``, the ``es5`` build (``tex-mml-chtml.js`` plus the fonts and the
  extensions it loads on demand); Sphinx's ``mathjax_path`` points at it on pages with math.

The folder is git-ignored and is not ``book/_static``: Jupyter Book 1 injects every .js and .css
found under ``_static`` into every page. Each asset is skipped when its recorded version matches,
so running this again is instant; a version change replaces that asset whole.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

BOOK = Path(__file__).resolve().parent
DEST = BOOK / "_vendor"
STAMP = "VERSIONS.json"

# html-manager 1.0.x renders the widget state that ipywidgets 8 writes (state schema 2.0, controls
# 2.0.0, output 1.0.0); 1.0.15 depends on the same @jupyter-widgets/base ^6.0.12, controls ^5.0.13 and
# output ^6.0.12 as the jupyterlab_widgets 3.0.x that ships with ipywidgets 8.1.
HTML_MANAGER = "1.0.15"
# Sphinx's default mathjax_path is MathJax 3 from a CDN; this is the same major version, served locally.
MATHJAX = "3.2.2"
# The MathJax es5 bundles other than tex-mml-chtml.js (Sphinx's default) are not needed.
MATHJAX_SKIP = {"tex-chtml.js", "tex-chtml-full.js", "tex-chtml-full-speech.js", "tex-mml-svg.js", "tex-svg.js",
                "tex-svg-full.js", "mml-chtml.js", "mml-svg.js", "node-main.js"}


def npm_pack(spec: str, workdir: Path) -> Path:
    """Download one npm package tarball with ``npm pack`` and unpack it; returns its ``package`` folder."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor_assets: npm is needed once to fetch %s (apt-get install npm)" % spec)
    out = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", str(workdir)], check=True,
                         capture_output=True, text=True, cwd=workdir).stdout.split()[-1]
    with tarfile.open(workdir / out) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def fill_plotly(target: Path) -> None:
    """Copy plotly.min.js from the installed plotly package."""
    sys.path.insert(0, str(BOOK.parent))
    from oscbind_tools.book.sphinx_ext import plotly_js_path

    target.mkdir()
    shutil.copy2(plotly_js_path(), target / "plotly.min.js")


def fill_html_manager(target: Path) -> None:
    """The html-manager's non-AMD embed bundle, its licence and the fonts it loads relative to itself."""
    with tempfile.TemporaryDirectory() as tmp:
        dist = npm_pack(f"@jupyter-widgets/html-manager@{HTML_MANAGER}", Path(tmp)) / "dist"
        target.mkdir()
        for f in dist.iterdir():
            if f.name in ("embed.js", "embed.js.LICENSE.txt") or f.suffix in (".woff", ".woff2", ".ttf", ".eot", ".svg"):
                shutil.copy2(f, target / f.name)


def fill_mathjax(target: Path) -> None:
    """MathJax's es5 build without the bundles Sphinx does not load."""
    with tempfile.TemporaryDirectory() as tmp:
        package = npm_pack(f"mathjax@{MATHJAX}", Path(tmp))
        shutil.copytree(package / "es5", target, ignore=lambda d, names: [n for n in names if n in MATHJAX_SKIP])
        shutil.copy2(package / "LICENSE", target / "LICENSE")


def wanted_versions() -> dict[str, str]:
    """The version each asset should have: plotly's from the installed package, the others pinned."""
    return {"plotly": version("plotly"), "html-manager": HTML_MANAGER, "mathjax": MATHJAX}


# asset name -> (folder inside DEST, filler); Sphinx serves DEST's folders under _static/.
ASSETS = {"plotly": ("plotly", fill_plotly), "html-manager": ("html-manager", fill_html_manager),
          "mathjax": ("mathjax", fill_mathjax)}


def vendor(dest: Path = DEST) -> dict[str, str]:
    """Make ``dest`` hold every asset at its wanted version; returns the versions. Idempotent."""
    dest.mkdir(parents=True, exist_ok=True)
    stamp_path = dest / STAMP
    want = wanted_versions()
    old = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    have = {name: old[name] for name in want if name in old}
    for name, (folder, fill) in ASSETS.items():
        final = dest / folder
        if have.get(name) == want[name] and final.is_dir():
            continue
        print(f"vendor_assets: {name} {want[name]} -> {final}", flush=True)
        partial = dest / (folder + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        fill(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        have[name] = want[name]
        stamp_path.write_text(json.dumps(have, indent=1, sort_keys=True) + "\n")
    return want


def main(argv: list[str] | None = None) -> None:
    """Command line: vendor into book/_vendor or --dest."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEST, help="folder to fill (default: book/_vendor)")
    args = parser.parse_args(argv)
    print("vendor_assets:", ", ".join(f"{k} {v}" for k, v in vendor(args.dest).items()))


if __name__ == "__main__":
    main()
