"""oscbind_tools: the book's and the studies' tooling around the science package ``oscbind_lite``.

Its rooms::

    findings.py      the book's answer: the thesis, the claims graded on one scale, how our model differs
    studies/         one file per study (declaration, plan, reader, figures, the claims it carries), and the engine
                     that runs them: engine, evidence, reading, stats, table, forest (see its own map)
    book/            the book's machinery: chapter (a chapter's papermill parameters, checked), sweep (every chapter
                     through papermill, then the build), checkpoints (the book's committed models), explorable (a
                     trained model exported for the in-browser page), sphinx_ext (offline plotly, page fixes), static/
    plotting.py      the figures of a trained model (matplotlib, plotly, ipywidgets) and their readable text
    provenance.py    one staleness rule for the sweep and the evidence (stamps with a code fingerprint)
    cli.py           python -m oscbind_tools sweep | evidence | findings | summary | studies

Data flows one way: ``book`` and ``findings`` read ``studies``; ``studies`` draws with ``plotting``; everything depends
on ``oscbind_lite``, never the other way round. It needs the ``book`` extra (``pip install -e ".[book]"``).
"""
