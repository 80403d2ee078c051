# Two commands do everything on a fresh machine: `make book` (the main job) and `make test`.
# Both create and reuse a local virtual environment in .venv with pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPLITS := 95 50 15
SEED := 0
RUNS := runs
CACHE ?= $(CURDIR)/.cache/oscbind

.PHONY: book checkpoints test lab vendor browser slurm system bench venv clean-venv

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

# Main job: run every chapter notebook through papermill (same/different and RMTS for each split,
# the showcase chapters at m = 95), then build the book with warnings as errors: book/_build/html.
# Finished runs are skipped; trained models are shared through the checkpoint cache in .cache/, which
# starts from the book's committed models (book/checkpoints): only what is missing is trained.
# RETRAIN=1: every model trained afresh (in .cache/oscbind/retrain) and every notebook rerun.
book: $(VENV)/.installed vendor
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools sweep --m $(SPLITS) --seeds $(SEED) --runs $(RUNS)/book --build $(if $(RETRAIN),--retrain)

# The book's committed models: every chapter rerun with models trained afresh, which then replace
# book/checkpoints (needed after an edit of the training code: tests/test_checkpoints.py says so).
checkpoints: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools sweep --m $(SPLITS) --seeds $(SEED) --runs $(RUNS)/book --retrain --freeze

# JupyterLab on the chapters, with the checkpoint cache that make book fills.
lab: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(VENV)/bin/jupyter lab book/notebooks

# Debian's chromium for the browser test of every page: installed here when we are root with apt,
# otherwise one line says how; OSCBIND_NO_BROWSER=1 skips the browser checks (and this step).
browser:
	@if [ -x /usr/bin/chromium ] || [ "$$OSCBIND_NO_BROWSER" = 1 ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser test (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "error: the browser test needs Debian's chromium: sudo apt-get install chromium (or OSCBIND_NO_BROWSER=1 make test)"; exit 1; fi

# Debian's Slurm (slurmctld, slurmd, slurmdbd with MariaDB, munge) for tests/test_slurm.py, which starts a
# throwaway single-node cluster (tests/slurm_local.sh): installed here when we are root with apt (about 30 s),
# otherwise that test skips with one line; OSCBIND_NO_SLURM=1 skips both.
slurm:
	@if [ "$$OSCBIND_NO_SLURM" != 1 ]; then tests/slurm_local.sh install || [ $$? = 3 ]; fi

# Everything: the science and contracts (pytest -m "not book and not slurm" runs those alone in about a
# minute), the smoke evidence through a real single-node Slurm, a smoke build of the whole book, and every
# page in headless chromium. The test files go to four workers (pytest-xdist), one file to a worker, the longest
# first (tests/conftest.py): much of a test's time is waiting (for Slurm, a kernel, a browser), which the other
# workers fill; each trains with one thread.
test:
	@$(MAKE) --no-print-directory -j2 vendor system
	$(PY) -m pytest -q -n 4 --dist loadfile --no-loadscope-reorder

# What make test needs from the system, one apt-get after the other (they share dpkg's lock), while the virtual
# environment installs beside them.
system:
	@$(MAKE) --no-print-directory browser
	@$(MAKE) --no-print-directory slurm

# Benchmarks (measured, never asserted by tests): the oscillator update, a training step, scaling,
# time to accuracy (benchmarks/results.*), and the core's accuracy and time targets per split
# (benchmarks/core_targets.*). About 10 minutes here. The book's Performance appendix reads them.
bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py
	OSCBIND_CACHE=$(CACHE) $(PY) benchmarks/core_targets.py

# Every study is one rule: make study-NAME runs the study declared as NAME in oscbind_tools/studies/ (the README's
# table and `python -m oscbind_tools studies` list them, each with what it measures) into results/NAME (the paper
# study: results/), as submitit jobs, 2 local workers x 1 thread here (Slurm where a controller answers); it resumes
# where it stopped. ESBN: the imgs/ folder of a clone of https://github.com/taylorwwebb/emergent_symbols, the icons of
# the authors' protocol. OSCBIND_COMPILE=1 make study-NAME runs the oscillator step kernels through torch.compile.
ESBN ?= $(CURDIR)/../shared/esbn-glyphs
study-%: $(VENV)/.installed
	OSCBIND_ESBN=$(ESBN) OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile $* --workers 2 --threads 1

clean-venv:
	rm -rf $(VENV)
