# Two entry points: `make quickstart` (the main job, locally) and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint lock clean

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
