# har-lab: `make run` (install + quickstart pipeline) and `make test` (install + full test suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false

.PHONY: help install install-dev run test lint bench bench-accuracy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed  ## create .venv and install har-lab

install-dev: $(VENV)/.installed-dev  ## create .venv and install har-lab with test tools

run: install  ## the quickstart pipeline on the bundled sample, offline (dvc repro)
	dvc repro prepare@uci_hapt_sample
	har data info uci_hapt_sample
	@echo "next: 'har data list', 'har data permutations uci_hapt_sample', docs/datasets.md"

test: install-dev  ## the whole test suite (real data from ../shared/datasets when present)
	pytest

lint: install-dev  ## ruff
	ruff check har tests bench

bench: install  ## quick benchmarks (prepare, throughput); results in bench/results/
	python bench/prepare.py
	python bench/throughput.py

bench-accuracy: install  ## the accuracy benchmark (hours on a 2-core CPU): docs/results.md
	har data fetch uci_hapt && har data prepare uci_hapt
	python bench/accuracy.py

clean:  ## remove generated data and caches (not the venv)
	rm -rf data/raw data/prepared .pytest_cache .ruff_cache
