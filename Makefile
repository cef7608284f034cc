# har-lab: `make run` (install + quickstart pipeline) and `make test` (install + full test suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false
# setuptools prints a banner on every editable install ("be careful with folders ... same name"): informational only
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: help install install-dev run test lint bench bench-tune docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(EDITABLE_QUIET) $(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(EDITABLE_QUIET) $(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed  ## create .venv and install har-lab

install-dev: $(VENV)/.installed-dev  ## create .venv and install har-lab with test tools

run: install  ## the quickstart pipeline, offline: prepare the bundled sample -> tune -> register (dvc repro) -> report
	dvc repro tune@quickstart
	har models list
	har report --study quickstart
	@echo "best metrics: runs/quickstart/metrics.json ('dvc metrics show'); plots: 'dvc plots show' (offline)"
	@echo "next: 'har ui --study quickstart' (the MLflow UI on http://127.0.0.1:5000, links to the study's runs),"
	@echo "      'har predict --model har-uci_hapt_sample-all@champion --input recording.csv', docs/studies.md"

test: install-dev  ## the whole test suite (real data from ../shared/datasets when present)
	pytest -n 2 --durations=25

lint: install-dev  ## ruff check and ruff format --check over har tests bench docs
	ruff check har tests bench docs
	ruff format --check har tests bench docs

bench: install-dev  ## benchmarks (prepare, throughput, tracking load; tune needs uci_hapt): bench/results/, then docs
	python bench/prepare.py
	python bench/throughput.py
	python bench/tracking_load.py
	python docs/render.py

bench-tune: install  ## tuning benchmarks on UCI HAR: searchers, overhead against a bare loop, 1 vs 2 nodes (hours)
	har data fetch uci_hapt && har data prepare uci_hapt
	python bench/search.py
	python bench/overhead.py
	python bench/tune.py

docs: install  ## render the figures of docs/results.md and docs/models.md from their JSON records
	python docs/render.py

clean:  ## remove generated data and caches (not the venv)
	rm -rf data/raw data/prepared .pytest_cache .ruff_cache
