# The two commands a newcomer needs: `make run` and `make test`.
# Both set everything up first: uv (from PyPI, if missing), the environment from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: run test setup lint typecheck pytest openapi clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

setup: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --all-packages

run: setup
	$(UV) run --frozen python -m devstack

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: setup
	$(UV) run --frozen mypy

pytest: setup
	$(UV) run --frozen pytest

test: lint typecheck pytest

openapi: setup
	$(UV) run --frozen python -m devstack.openapi

clean:
	rm -rf var .venv .tools
