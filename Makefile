# SparseFuse: `make book` runs the notebooks and builds the HTML book,
# `make test` runs every check that CI runs. Both set up .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMPS  := $(VENV)/.stamps
NPM_STAMP := node_modules/.sparsefuse-npm-ci
# The CPU build of torch and the triton that matches it; a GPU machine keeps its CUDA build.
TORCH_CPU := torch==2.13.0 triton==3.9.0
# Extras of pyproject.toml to install (peers: the other KAN packages the benchmarks and tests compare with).
EXTRAS ?= book,test,peers
HAS_CUDA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
PROFILE ?= $(if $(HAS_CUDA),quick,smoke)
DEVICE  ?= $(if $(HAS_CUDA),cuda,cpu)
# Where `make book` writes result files: GPU runs go to results/ (to be committed as the
# reference); CPU smoke runs to _build/results, so they never mix with committed results.
RESULTS ?= $(if $(HAS_CUDA),$(CURDIR)/results,$(CURDIR)/_build/results)
# Notebook timeout in seconds, per notebook; RUN_FLAGS=--resume skips notebooks already current.
TIMEOUT ?= 1800
RUN_FLAGS ?=
BOOK_FLAGS := --all -n -W --keep-going
# Executed notebooks land where the book reads them.
EXECUTED := $(CURDIR)/book/executed

.PHONY: help install book html notebooks test test-unit test-browser browser sync clean

help:
	@echo "make book      set up .venv, execute the notebooks ($(PROFILE) on $(DEVICE)), build _build/html"
	@echo "make html      build _build/html from the notebooks already executed (no re-run)"
	@echo "make test      unit tests, notebooks at smoke on CPU, book build with -W, browser checks"
	@echo "make sync      regenerate notebooks/*.ipynb from notebooks/*.py"
	@echo "make clean     remove build outputs (keeps .venv, node_modules and results/)"

# ---------------------------------------------------------------- set-up (idempotent, stamped)

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch first, so that installing the package never pulls a CUDA build onto a CPU machine.
$(STAMPS)/torch: | $(PY)
	@mkdir -p $(STAMPS)
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
	    || $(PY) -m pip install torch triton; \
	else \
	  $(PY) -c "import torch, triton, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
	    || $(PY) -m pip install $(TORCH_CPU); \
	fi
	@touch $@

$(STAMPS)/python: pyproject.toml $(STAMPS)/torch
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(STAMPS)/python $(NPM_STAMP)

# Debian's chromium for the browser tests; installed when missing and running as root.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "WARNING: chromium is missing and cannot be installed here (not root or no apt-get): browser tests will skip"; \
	  fi; \
	fi

# ---------------------------------------------------------------- the book

notebooks: install
	SPARSEFUSE_RESULTS=$(RESULTS) $(PY) -m sparsefuse.lab.book run --profile $(PROFILE) --device $(DEVICE) \
	  --timeout $(TIMEOUT) --output-dir $(EXECUTED) $(RUN_FLAGS)

book: notebooks
	$(MAKE) html

html: install
	$(PY) -m sparsefuse.lab.book site
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	@echo "book: $(CURDIR)/_build/html/index.html ($$(du -sh _build/html | cut -f1))"

sync: install
	$(PY) -m sparsefuse.lab.book sync

# ---------------------------------------------------------------- tests

# Unit tests and every notebook at smoke on CPU (executed into the book's folder),
# then the book built with -W from those outputs, then the built HTML in Chromium.
test: install browser
	SPARSEFUSE_NOTEBOOK_OUTPUT=$(EXECUTED) $(PY) -m pytest -m "not browser" -rs --durations=15
	$(MAKE) html
	$(PY) -m pytest -m browser -rs

test-unit: install
	$(PY) -m pytest -m "not browser and not slow" -rs

test-browser: install browser
	$(PY) -m pytest -m browser -rs

clean:
	rm -rf _build build/vendor book/_generated/*.md book/executed/*.ipynb book/executed/failed
