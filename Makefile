# avserve: two commands do all set-up. `make serve` and `make test`.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve
# `make serve HOST=0.0.0.0 PORT=8001` passes flags; otherwise AVSERVE_HOST / AVSERVE_PORT (env or
# .env) apply, then the defaults 127.0.0.1:8000. Only command-line values count, so a stray PORT
# in the environment cannot override AVSERVE_PORT.
SERVE_FLAGS := $(if $(filter command line,$(origin HOST)),--host $(HOST)) \
	$(if $(filter command line,$(origin PORT)),--port $(PORT))
PYTEST_ARGS ?=
BENCH ?=

.PHONY: help venv serve test test-fast lint typecheck bench bench-peers loadtest model redis browser worker clean

help:
	@echo "make serve   start the service (bundled model, in-process queue) on http://127.0.0.1:8000;"
	@echo "             other address: make serve HOST=0.0.0.0 PORT=8001 (or AVSERVE_HOST/AVSERVE_PORT)"
	@echo "make test    create .venv, install, start redis if needed, run the whole suite"
	@echo "make lint    ruff + mypy + hadolint (Dockerfiles)"
	@echo "make bench   run the benchmarks (numbers go to bench-results/)"
	@echo "make loadtest  Locust against a gateway it starts (~60 s; LOADTEST_ARGS=\"--rate 0.5\")"
	@echo "make bench-peers  LitServe and PyTorchVideo vs avserve in .venv-bench (large torch build)"
	@echo "make model   regenerate the shipped AVSynth model from scratch (data + training)"

venv: $(STAMP)

# torch==2.13.0 is first tried on its own: on machines that carry that CPU wheel locally it
# avoids a multi-GB CUDA download; anywhere else the project's `torch>=2.4` range applies.
define install_base
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.4"
endef

# Development (make test, lint, bench): the project with its dev extras. A superset of what
# serving needs, so it also satisfies `make serve`.
$(STAMP): pyproject.toml
	$(install_base)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@ $(SERVE_STAMP)

# Serving only: the project and its runtime dependencies, no test or lint tools.
$(SERVE_STAMP): pyproject.toml
	$(install_base)
	$(BIN)/python -m pip install -q -e .
	@touch $@

redis:
	@bash scripts/ensure_redis.sh

browser:
	@bash scripts/ensure_browser.sh

serve: $(SERVE_STAMP)
	$(BIN)/avserve serve $(strip $(SERVE_FLAGS))

worker: $(SERVE_STAMP)
	$(BIN)/avserve worker

test: $(STAMP) redis browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) redis
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check models service offline tests benchmarks loadtests
	$(BIN)/ruff format --check models service offline tests benchmarks loadtests
	$(BIN)/mypy
	$(BIN)/hadolint --failure-threshold style docker/Dockerfile docker/Dockerfile.gpu

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) redis
	$(BIN)/python -m benchmarks.run_all $(BENCH)

# The peer benchmarks run in their own environment: LitServe, PyTorchVideo and the torchvision
# build PyTorchVideo needs (torch 2.14.1, a large download) never enter the service's .venv.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): pyproject.toml benchmarks/peers/requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/peers/requirements.txt
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps "pytorchvideo==0.1.5"
	$(BENCH_VENV)/bin/python -m pip install -q -e .
	@touch $@

bench-peers: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.bench_peers --models shipped
	$(BENCH_VENV)/bin/python -m benchmarks.bench_peers --models avslowfast_r50_4x16 \
		--out bench-results/peers_serving_r50.json
	$(BENCH_VENV)/bin/python -m benchmarks.bench_pytorchvideo

# Open-loop Locust profile against a gateway started on loopback; report + SLO summary.
LOADTEST_ARGS ?=
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.run $(LOADTEST_ARGS)

model: $(STAMP)
	bash scripts/make_model.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench-results
