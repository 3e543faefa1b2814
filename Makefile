# Two set-up commands: `make test` and `make demo`. Both create .venv from a bare python3 when it
# is missing (idempotent: the stamp file is only rebuilt when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv kernels test test-fast lint demo deploy services-up services-down bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Compiled post-processing and tracker kernels (cstrack/jit.py, cstrack/precompile.py): compiled once into the on-disk
# cache (~10 s), so that test processes and Dask workers load them (~0.4 s) instead of each
# compiling its own; a no-op when the cache is current.
kernels: $(STAMP)
	@$(BIN)/python -m cstrack.precompile

# Whole suite, slow (real services, training) tests included: this is what CI runs.  The type check
# costs 32-50 s on a fresh clone (2-core VM, quiet to loaded; ~3 s with a warm .mypy_cache).
test: kernels
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Inner-loop suite: everything not marked slow.
test-fast: kernels
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Lint rules of pyproject.toml (the code is formatted by hand to STYLE.md, not by `ruff format`) and
# the type check of cstrack/ catalog/ tasks/ flows/ stack/ bench/ ([tool.mypy] in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: kernels
	$(BIN)/python -m flows.demo

# Work pools (created when missing) and every deployment of flows/prefect.yaml, registered with the
# server at $$PREFECT_API_URL (docs/pipeline.md). Run from the repository root: the deployments
# run their flows from the directory they were deployed from.
deploy: $(STAMP)
	$(BIN)/prefect work-pool inspect cpu-pool >/dev/null 2>&1 || $(BIN)/prefect work-pool create cpu-pool --type process
	$(BIN)/prefect work-pool inspect gpu-pool >/dev/null 2>&1 || $(BIN)/prefect work-pool create gpu-pool --type process
	$(BIN)/prefect --no-prompt deploy --all --prefect-file flows/prefect.yaml

# The whole stack on 127.0.0.1 (PostgreSQL, Prefect server + deployments, Dask, process worker) with its
# state in .services/ (stack/local.py); `down` stops exactly what `up` started.
services-up: kernels
	$(BIN)/python -m stack up

services-down:
	$(BIN)/python -m stack down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
