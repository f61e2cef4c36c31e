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

.PHONY: demo check lint typecheck test bench venv clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	$(BIN)/python -m pip install -q --no-deps "$(TORCHAO_SPEC)"
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
