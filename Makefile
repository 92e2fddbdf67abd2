# Two entry points: `make quickstart` (the main job, locally) and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1

.PHONY: quickstart test synth lint lock bench scale-model clean

# Every package pinned and checked against the lock's hashes; then the project itself, from the working tree.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/python examples/digits/quickstart.py

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

# Lint, check types and the layers' import contracts (pyproject.toml), synthesize the stack, then the tests (last,
# so their summary closes the output).
test: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) synth
	$(BIN)/mkdocs build --strict --site-dir site
	$(BIN)/python -m pytest -q

# The stack as `cdk deploy` synthesizes it (Lambda bundle built with pip), then linted.
synth: $(STAMP) $(NPM_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet --no-notices
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/BatchEndpoints.template.json

# The benchmarks' own extras (Ray Data for the comparison, matplotlib for the charts), pinned, in the same environment.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/pip install -q -r bench/requirements.txt
	touch $(BENCH_STAMP)

# Benchmarks print ratios and their verdicts, and write bench/results/.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/first_part.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/s3_latency.py
	$(BIN)/python bench/cloud_cost.py
	$(BIN)/python bench/gpu.py

# The scale model alone (a few minutes): rewrites bench/results/cloud_cost.* and prints the README's scale table.
scale-model: $(STAMP)
	$(BIN)/python bench/cloud_cost.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve the pinned set, with hashes, after changing dependencies in pyproject.toml (tools/lock.py).
lock:
	rm -rf /tmp/bep-lock && $(PYTHON) -m venv /tmp/bep-lock
	/tmp/bep-lock/bin/pip install -q pip-tools==7.7.0
	/tmp/bep-lock/bin/python tools/lock.py requirements.lock

clean:
	rm -rf $(VENV) .bep node_modules cdk.out
