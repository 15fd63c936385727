# Entry points; each installs what is missing first (tools/install.sh is idempotent).
PY := .venv/bin/python
SOURCES := plgvit_mm tools tests configs

.PHONY: install test test-fast demo demo-mono3d lint format onnx-benchmark

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

# mono 3D LW-PLG-ViT-A trained on generated KITTI-format scenes, KITTI AP on held-out frames
demo-mono3d: install
	bash tools/run_demo_mono3d.sh

lint: install
	.venv/bin/ruff check $(SOURCES)
	.venv/bin/ruff format --check $(SOURCES)

format: install
	.venv/bin/ruff format $(SOURCES)
	.venv/bin/ruff check --fix $(SOURCES)

# ONNX Runtime vs PyTorch eager latency of the exported backbones (docs/onnx_benchmarks.json)
onnx-benchmark: install
	$(PY) tools/deployment/benchmark_onnx.py --models lw_plgvit_a lw_plgvit_r nat_tiny --shapes 224x224 384x1280 --threads 2 --export-dir work_dirs/onnx_bench --out docs/onnx_benchmarks.json
