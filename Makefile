# vidpipe: `make run` labels the bundled sample on the cpu backend; `make test` runs the tests.
# Both set everything up on a fresh machine (Python 3.11+): .venv, packages, the cpu model.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := sample/sample.mp4
MODEL_STAMP := $(VENV)/.model
RAY_STAMP := $(VENV)/.ray
DOCS_STAMP := $(VENV)/.docs
PYTEST_ARGS ?=

.PHONY: setup model sample run test test-fast test-all lint docs bench bench-ray clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The tests run a real Ray cluster (the `ray` extra); `make run` does not need it.
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

# The model lives in the user's cache (~/.cache/vidpipe); building it is skipped when present.
model: $(STAMP)
	$(BIN)/vidpipe model

$(SAMPLE): $(STAMP) examples/make_sample.py
	$(BIN)/python examples/make_sample.py $(SAMPLE)

sample: $(SAMPLE)

run: model $(SAMPLE)
	$(BIN)/vidpipe label $(SAMPLE) --out results/ --backend cpu

test: model $(RAY_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: model $(RAY_STAMP)
	$(BIN)/python -m pytest -m 'not slow and not browser and not soak and not extended' $(PYTEST_ARGS)

# Everything but the soak tests: the default run plus the `extended` variants (about 4 minutes more).
test-all: model $(RAY_STAMP)
	$(BIN)/python -m pytest -m 'not soak' $(PYTEST_ARGS)

# The documentation site (MkDocs + mkdocstrings: the API reference from the docstrings, the config
# reference from the field docs); warnings are errors.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --quiet

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: model
	$(BIN)/python -m bench

bench-ray: model $(RAY_STAMP)
	$(BIN)/python -m bench.ray_nodes
	$(BIN)/python -m bench.ray_live

clean:
	rm -rf results sample site bench/results/*.tmp .pytest_cache .mypy_cache .ruff_cache
