# Two commands do everything on a fresh machine: `make book` (the main job) and `make test`.
# Both create and reuse a local virtual environment in .venv with pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPLITS := 95 50 15
SEED := 0
RUNS := runs
CACHE ?= $(CURDIR)/.cache/oscbind

.PHONY: book checkpoints test lab vendor browser slurm bench results energy validation mechanism gap few authors ladder coupling tcn venv clean-venv

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
# page in headless chromium.
test: $(VENV)/.installed vendor browser slurm
	$(PY) -m pytest -q

# Benchmarks (measured, never asserted by tests): the oscillator update, a training step, scaling,
# time to accuracy (benchmarks/results.*), and the core's accuracy and time targets per split
# (benchmarks/core_targets.*). About 10 minutes here. The book's Performance appendix reads them.
bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py
	OSCBIND_CACHE=$(CACHE) $(PY) benchmarks/core_targets.py

# The evidence: 5 seeds x 3 splits x (oscillator, difference, concat, symmetric-J variant) and the
# ablations at m = 50, as submitit jobs (Slurm where a controller answers, else 2 local workers); resumes.
# OSCBIND_COMPILE=1: the oscillator step kernels go through torch.compile (1.3-1.8x on them here).
results: $(VENV)/.installed
	OSCBIND_COMPILE=1 OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile paper --results results

# The poster's energy and locking claims over every split and seed (descent per step size with a rounding
# tolerance, the paired partner-swap energy gap, locking by start and by drive agreement): 45 jobs,
# profile-scoped into results/energy; resumes.
energy: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile energy --results results/energy --workers 2 --threads 1

# The validation protocol: 7 models x 2 learning rates at m = 50, held out on validation icons carved out
# of the training icons (the test icons unused); writes results/validation/choice.json. 14 jobs; resumes.
validation: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile validation --results results/validation --workers 2 --threads 1

# Does binding through coupling matter? The 7 models at their chosen settings, 5 seeds x 3 splits (m = 95 on
# disjoint 5-icon folds), then folds 5..19 for the oscillator and the strongest baseline: 135 jobs; resumes.
mechanism: $(VENV)/.installed results/validation/choice.json
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile mechanism --results results/mechanism --workers 2 --threads 1

results/validation/choice.json:
	$(MAKE) validation

# The few-icon gap: the default model and each candidate remedy alone (rotation, shear, stroke width,
# feature dropout, hard negatives, T_eval, votes over starts, weight decay, a smaller CNN, longer and shorter
# training) at m = 15, 5 seeds, on validation icons carved out of the training icons (the test icons unused): 75 jobs;
# resumes. GAP=gap-50: the same at m = 50; GAP=gap-combined: the three leaning candidates together against the
# default on fresh seeds 5-9 (10 jobs); GAP=gap-trajectory: the coherence averaged over the last 5 or 13 states
# against x(T) alone (15 jobs).
GAP ?= gap
gap: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile $(GAP) --results results/$(GAP) --workers 2 --threads 1

# The fewest training icons: the main models (oscillator, difference, concat) at m = 5 and 2, 5 seeds, scored on
# the test icons (RMTS training trials reuse icons below five: chapter 2 shows how): 30 jobs; resumes.
few: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile few --results results/few --workers 2 --threads 1

# The authors' protocol in our code (their released runs: ESBN's icons, first-m split, fixed 2,000/4,000
# pairs for 50 epochs, D = 16, gamma = 0.1, fixed von Mises Omega, drive-aligned start, their CNN),
# their five variants x 3 splits x 5 seeds (75 jobs), and the ladder from their protocol to our defaults
# one change at a time at m = 50 and 15 (120 jobs). ESBN: the imgs/ folder of a clone of
# https://github.com/taylorwwebb/emergent_symbols.
ESBN ?= $(CURDIR)/../shared/esbn-glyphs
authors: $(VENV)/.installed
	OSCBIND_ESBN=$(ESBN) OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile authors --results results/authors --workers 2 --threads 1

ladder: $(VENV)/.installed
	OSCBIND_ESBN=$(ESBN) OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile ladder --results results/ladder --workers 2 --threads 1

# When does binding through coupling matter? J_OUT learned and J_OUT = 0 at every ladder rung that fits its training icons
# (the rho-readout rungs where seeds stay near chance are left out), m = 50, seeds 0-4, paired by seed: 80 jobs; resumes.
# COUPLING=coupling-factorial: the change that removes J_OUT's effect (chosen from make coupling's runs) on and off x J_OUT
# learned and 0, m = 50 and 15, fresh seeds 5-14 (80 jobs); COUPLING=coupling-dose: J_OUT learned and 0 with three
# narrower CNNs at our defaults, m = 50 (30 jobs); COUPLING=coupling-unbundle: the chosen step's upper rung with each of
# its changes reverted in turn, and the upper rung itself, J_OUT learned and 0, m = 50, seeds 5-14 (100 jobs), which names
# the change COUPLING=coupling-add-one adds to the lower rung (40 jobs with the lower rung itself). The analysis plan is
# in the chapter "When does coupling matter?".
COUPLING ?= coupling
coupling: $(VENV)/.installed
	OSCBIND_ESBN=$(ESBN) OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile $(COUPLING) --results results/$(COUPLING) --workers 2 --threads 1

# What the encoder hands the oscillators, at m = 15 on validation icons: context normalisation over the pair (TCN) for the
# oscillator model and the difference baseline, and three encoder-side candidates, 5 seeds (35 jobs); keeps by the gap
# study's rule. TCN=tcn-test: what it kept, for both models at m = 95, 50, 15, 5 and 2 on the test icons (and, with TCN
# kept, J_OUT = 0 with it at m = 50 and 15).
TCN ?= tcn
tcn: $(VENV)/.installed
	OSCBIND_CACHE=$(CACHE) $(PY) -m oscbind_tools evidence --profile $(TCN) --results results/$(TCN) --workers 2 --threads 1

clean-venv:
	rm -rf $(VENV)
