# Entry points; each installs what is missing first (tools/install.sh is idempotent).
PY := .venv/bin/python
SOURCES := plgvit_mm tools tests configs

.PHONY: install test test-fast demo lint format

install:
	bash tools/install.sh

# the whole suite, slow tests included (the README's test command)
test: install
	$(PY) -m pytest -q --durations=20

# everything but the tests marked slow (a few minutes)
test-fast: install
	$(PY) -m pytest -q -m "not slow" --durations=10

demo: install
	bash tools/run_demo.sh

lint: install
	.venv/bin/ruff check $(SOURCES)
	.venv/bin/ruff format --check $(SOURCES)

format: install
	.venv/bin/ruff format $(SOURCES)
	.venv/bin/ruff check --fix $(SOURCES)
