"""oscbind_tools: the book's and the studies' tooling around the science package ``oscbind_lite``.

* ``chapter``: a book chapter's parameters (papermill), checked, turned into the run it asks for.
* ``sweep``: every chapter notebook through papermill, then the Jupyter Book build.
* ``evidence``: the multi-seed study (models, baselines, ablations) as submitit jobs.
* ``provenance``: one staleness rule for the sweep and the evidence (stamps with a code fingerprint).
* ``stats``: 95 % intervals, paired and Welch tests, Holm's correction.
* ``table``: the HTML tables of the pages and the formats of their cells.
* ``studies`` and ``protocols``: the committed studies read back (``results/``), with their paired comparisons.
* ``plotting``: every figure of the book (matplotlib, plotly, ipywidgets).
* ``sphinx_ext``: the Sphinx extension and myst-nb renderer that keep the built book offline.

It depends on ``oscbind_lite``, never the other way round, and needs the ``book`` extra
(``pip install -e ".[book]"``). Command line: ``python -m oscbind_tools sweep|evidence|summary``.
"""
