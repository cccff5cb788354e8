# The only entry point for developers and CI: `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help demo test check lint typecheck docs docs-serve test-only bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.demo: pyproject.toml | $(PY)
	$(PIP) install -e '.[sqlite]'
	@touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PIP) install -e '.[sqlite,postgres,redis,dev,docs]'
	@touch $@ $(VENV)/.demo

$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e '.[sqlite,postgres,redis,dev,docs,bench]'
	@touch $@

demo: $(VENV)/.demo ## Run the bank demo on the default store (a SQLite file)
	$(PY) -m orchestrix.demo

lint: $(VENV)/.dev ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev ## mypy --strict on the package, tests and benchmarks
	$(VENV)/bin/mypy

docs: $(VENV)/.dev ## Build the documentation site, failing on any warning
	$(VENV)/bin/mkdocs build --strict --quiet

check: lint typecheck ## Lint and type-check

# coverage starts before pytest, so the import of orchestrix by its pytest
# plugin (an entry point, loaded before pytest-cov could start) is measured.
test-only: $(VENV)/.dev ## Run the test suite only (PostgreSQL and Redis must answer)
	$(PY) -m coverage run -m pytest $(PYTEST_ARGS)
	$(PY) -m coverage report

test: lint typecheck docs test-only ## The whole gate: lint, types, docs build, all tests

bench: $(VENV)/.bench ## Run the benchmarks (not part of `make test`)
	$(PY) -m benchmarks $(BENCH_ARGS)

clean: ## Remove the virtualenv and build output
	rm -rf $(VENV) site .mypy_cache .ruff_cache .pytest_cache .coverage
