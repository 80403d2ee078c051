# Two commands do everything on a fresh machine: `make book` (the main job) and `make test`.
# Both create and reuse a local virtual environment in .venv with pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPLITS := 95 50 15
SEED := 0
RUNS := runs

.PHONY: book test vendor bench clean-venv

# The environment is rebuilt only when the dependency list changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,book]"
	touch $@

venv: $(VENV)/.installed

# The book's offline JavaScript (plotly.js, the ipywidgets html-manager, MathJax) in book/_vendor,
# git-ignored; npm fetches the pinned packages once, later runs only check their versions.
vendor: $(VENV)/.installed
	$(PY) book/vendor_assets.py

# Main job (for now): train same/different and RMTS on the three splits, write runs/*/metrics.json.
book: $(VENV)/.installed vendor
	for m in $(SPLITS); do \
	  $(PY) -m oscbind_lite train --task same-different --m $$m --seed $(SEED) --out $(RUNS)/same-different-m$$m-seed$(SEED) && \
	  $(PY) -m oscbind_lite train --task rmts --m $$m --seed $(SEED) --out $(RUNS)/rmts-m$$m-seed$(SEED) || exit 1; \
	done
	$(PY) -m oscbind_lite summary $(RUNS)

test: $(VENV)/.installed vendor
	$(PY) -m pytest -q

# Accuracy and time targets of the core, measured (not asserted by tests).
bench: $(VENV)/.installed
	$(PY) benchmarks/core_targets.py

clean-venv:
	rm -rf $(VENV)
