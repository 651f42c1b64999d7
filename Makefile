# The README's two commands: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export RAY_USAGE_STATS_ENABLED ?= 0
export RAY_AUTH_MODE ?= token
export PYTHONHASHSEED ?= 0

.PHONY: demo test lint typecheck unit pytest chromium bench proto cluster-config clean help

help:
	@echo "make demo   - run the bundled universe (tinywindow/configs/demo.yaml): backtest, paper replay, same-ledger check"
	@echo "make test   - ruff + mypy + pytest (unit, ray, cluster)"
	@echo "make bench  - run the benchmarks in bench/"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build on these machines; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.bench

demo: $(STAMP)
	$(BIN)/tinywindow demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check tinywindow actors tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy tinywindow actors

pytest: $(STAMP) chromium
	$(BIN)/pytest -q tests

# tests/browser renders the HTML report in headless Chromium (Debian's package), installed when missing.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
		|| { echo "tests/browser needs chromium: run 'sudo apt-get install -y chromium'"; exit 1; }

unit: $(STAMP)
	$(BIN)/pytest -q -m unit tests

bench: $(VENV)/.bench
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
		tinywindow/data/feed/market_data.proto tinywindow/serving/votes.proto

cluster-config: $(STAMP)
	$(BIN)/python cluster/render.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
