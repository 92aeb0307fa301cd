# avserve: two commands do all set-up. `make serve` and `make test`.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH ?=

.PHONY: help venv serve test test-fast lint typecheck bench model redis worker clean

help:
	@echo "make serve   start the service on http://$(HOST):$(PORT) (bundled model, in-process queue)"
	@echo "make test    create .venv, install, start redis if needed, run the whole suite"
	@echo "make lint    ruff + mypy"
	@echo "make bench   run the benchmarks (numbers go to bench-results/)"
	@echo "make model   regenerate the shipped AVSynth model from scratch (data + training)"

venv: $(STAMP)

# torch==2.13.0 is first tried on its own: on machines that carry that CPU wheel locally it
# avoids a multi-GB CUDA download; anywhere else the project's `torch>=2.4` range applies.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.4"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

redis:
	@bash scripts/ensure_redis.sh

serve: $(STAMP)
	$(BIN)/avserve serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(BIN)/avserve worker

test: $(STAMP) redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) redis
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check models service offline tests benchmarks loadtests
	$(BIN)/ruff format --check models service offline tests benchmarks loadtests
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) redis
	$(BIN)/python -m benchmarks.run_all $(BENCH)

model: $(STAMP)
	bash scripts/make_model.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench-results
