# huzhu — 职工互助保障平台. See README.md and docs/ (INTERFACES.md §1 is the contract).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_LINK_MODE := copy

.PHONY: install demo test test-fast test-browser bench lint format browser-deps clean

# Idempotent: a fresh machine needs only Python and the package registries.
install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $@

# Debian's chromium (never a downloaded browser) and CJK fonts for the browser tests.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; then \
	  echo "installing chromium and fonts-noto-cjk from Debian"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

demo: install
	mkdir -p var
	$(VENV)/bin/huzhu demo

test: install browser-deps
	$(VENV)/bin/huzhu check-migrations
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

test-fast: install
	$(VENV)/bin/pytest -n 2 -q -m "not browser"

bench: install
	mkdir -p bench/results
	@# wrk (Debian) drives bench_settlements; without it that benchmark uses its stdlib client.
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }; } || \
	  echo "wrk unavailable: bench_settlements falls back to its own client"
	$(PY) -m bench.run_all

lint: install
	mkdir -p var
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy huzhu
	$(VENV)/bin/huzhu check-migrations

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .uv var/*.sqlite3*
