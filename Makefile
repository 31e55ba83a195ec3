# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone:
# both create .venv (Python >= 3.12, which PyMC 6 needs) and install the package first.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.12 found: on PATH, then under pyenv's versions folder.
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 \
	$(HOME)/.pyenv/versions/3.12*/bin/python3.12 $(HOME)/.pyenv/versions/3.13*/bin/python3.13 \
	/root/.pyenv/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
EXTRAS ?= test,plot,dask,fast,io,mlflow
# Compiled PyTensor code is kept inside the project so that repeated runs do not recompile.
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.cache/pytensor,blas__ldflags=
# The library's own compiled kernels (numba, cache=True) are kept there too.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg
PYTEST_ARGS ?=
# The tests run in one worker process per core (pytest-xdist), a test file per worker at a
# time, so that a file's module fixtures (fitted models) are built once; files that fit
# the same rarely used model structures run as one unit (tests/conftest.py).
PYTEST_WORKERS ?= -n auto --dist loadfile

.PHONY: demo test test-slow docs bench-venv bench-quick bench-speed clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 is required (PyMC 6); set PYTHON=/path/to/python3.12" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

$(VENV): $(VENV)/.installed

demo: $(VENV)
	$(BIN)/bayesclv demo --out demo_predictions.csv

# pytest exits 5 when it collects no test: not a failure of the suite.
test: $(VENV)
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-slow: $(VENV)
	$(BIN)/python -m pytest --run-slow -m slow $(PYTEST_WORKERS) $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The documentation's dependencies (Sphinx, myst-nb, ...) on top of the same .venv.
$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[docs,plot,test]"
	touch $@

# HTML docs in docs/_build/html; every tutorial is executed, and warnings are errors.
# Pages are read by one process per core, the tutorials spread over them (docs/conf.py).
DOCS_JOBS ?= auto
docs: $(VENV)/.installed-docs
	@# Stubs autosummary wrote for names since moved would fail the build: write them anew.
	rm -rf docs/api/generated
	$(BIN)/sphinx-build -j $(DOCS_JOBS) -W --keep-going -b html docs docs/_build/html

# Separate environment for benchmarks/anchors.py (pymc-marketing, lifelines, lifetimes):
# pymc-marketing pins an older PyMC than this project, so it cannot share .venv.
ANCHORS_VENV := benchmarks/.venv-anchors
ANCHORS_PACKAGES := pymc-marketing==1.3.0 lifelines==0.30.3 lifetimes==0.11.3

$(ANCHORS_VENV)/.installed: Makefile
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 is required (PyMC 6); set PYTHON=/path/to/python3.12" >&2; exit 1; }
	test -x $(ANCHORS_VENV)/bin/python || $(PYTHON) -m venv $(ANCHORS_VENV)
	$(ANCHORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ANCHORS_VENV)/bin/python -m pip install --quiet $(ANCHORS_PACKAGES)
	touch $@

bench-venv: $(ANCHORS_VENV)/.installed

# The benchmark in its quick mode (2,000 customers): bayesclv's three variants, and the
# competitors too where `make bench-venv` has built their environment.
bench-quick: $(VENV)
	$(BIN)/python benchmarks/run.py --quick

# Fit and predict times with the library's defaults, each case in a fresh process.
bench-speed: $(VENV)
	$(BIN)/python benchmarks/speed.py --cold

clean:
	rm -rf $(VENV) $(ANCHORS_VENV) .cache build dist src/*.egg-info demo_predictions.csv \
		docs/_build docs/api/generated
