# Entry points; each installs what is missing first (tools/install.sh is idempotent).
PY := .venv/bin/python

.PHONY: install test demo lint

install:
	bash tools/install.sh

test: install
	$(PY) -m pytest -q --durations=20

demo: install
	bash tools/run_demo.sh

lint: install
	.venv/bin/ruff check plgvit_mm tools tests configs
