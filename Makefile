# Two entry points: `make quickstart` (the main job, locally) and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint lock bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/python examples/digits/quickstart.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Benchmarks print ratios and write bench/results/; matplotlib (charts) and ray[data] (Ray comparison) are optional.
bench: $(STAMP)
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/throughput.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/bep-lock && $(PYTHON) -m venv /tmp/bep-lock
	/tmp/bep-lock/bin/pip install -q '.[dev]'
	/tmp/bep-lock/bin/pip freeze --exclude batch-endpoints > requirements.lock

clean:
	rm -rf $(VENV) .bep
