# GreenForge developer commands. `make demo` and `make check` do all set-up themselves.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch goes in first: an unpinned torch would pull a multi-GB CUDA build.
# GPU users: override, e.g. `make TORCH_SPEC='torch>=2.3' check`.
TORCH_SPEC ?= torch==2.13.0
# torchao's pins fight the CPU torch wheel, so it is installed without its dependencies.
TORCHAO_SPEC ?= torchao==0.18.0
# Flower pins typer<0.21, protobuf<7, packaging<26, starlette<1.4 and ray==2.55.1 for its
# simulation extra, which would downgrade what the rest needs; it is installed without its
# dependencies, and then the ones its simulation engine imports (Ray comes from the ray extra).
FLWR_SPEC ?= flwr==1.42.0
FLWR_DEPS := "grpcio>=1.70" "grpcio-health-checking>=1.70" "cryptography>=50,<51" "pycryptodome>=3.18" "iterators>=0.0.2,<0.0.3" "tomli>=2" "tomli-w>=1" "prompt-toolkit>=3" "pathspec>=0.12"

.PHONY: demo check lint typecheck test bench venv clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	$(BIN)/python -m pip install -q --no-deps "$(TORCHAO_SPEC)"
	$(BIN)/python -m pip install -q --no-deps "$(FLWR_SPEC)"
	$(BIN)/python -m pip install -q $(FLWR_DEPS)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/greenforge forge --example digits --out forge-out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python -m pip install -q codecarbon
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
