# The two commands a newcomer needs: `make run` and `make test`.
# Both set everything up first: uv (from PyPI, if missing), the environment from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
# the interpreter itself, not a shim in front of it (pyenv): uv compares it with the one the
# environment was made from, and a shim path made it build .venv again on every call
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || command -v $(PYTHON))
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: run test setup system-font chromium lint typecheck pytest openapi clean

# Debian packages outside Python: the CJK TrueType font the PDF transcript embeds (every run)
# and Chromium for the verification page test (test runs only). Installed when missing.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
CHROMIUM := /usr/bin/chromium

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

setup: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) system-font
	$(UV) sync --frozen --all-packages

system-font:
	@devstack/system-packages.sh --best-effort $(CJK_FONT) fonts-wqy-microhei

chromium:
	@devstack/system-packages.sh --require $(CHROMIUM) chromium

run: setup
	$(UV) run --frozen python -m devstack

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: setup
	$(UV) run --frozen mypy

pytest: setup chromium
	@devstack/system-packages.sh --require $(CJK_FONT) fonts-wqy-microhei
	$(UV) run --frozen pytest

test: lint typecheck pytest

openapi: setup
	$(UV) run --frozen python -m devstack.openapi

clean:
	rm -rf var .venv .tools
