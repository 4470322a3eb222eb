#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.sh installs on the GPU machine, into .whl/ (not committed).
#
# The GPU machine (see DESIGN.md section 5) has Python 3.12, torch, transformers, accelerate,
# huggingface_hub, opencv, Pillow, numpy, safetensors, regex, requests, httpx, zipp, sentencepiece,
# tokenizers, but no diffusers and no package registry. This fetches what the backend needs on top,
# as py3.12 manylinux wheels without their dependencies (each listed here on purpose):
#   diffusers (the pinned 0.42) + importlib_metadata (its one missing dependency there),
#   python-dotenv (livingphoto.env), ftfy + wcwidth (Wan's prompt cleaning).
# imageio-ffmpeg is left out on purpose (its wheel is 68 MB, over the 64 MiB a call may carry):
# the check renders through the backend, which needs no ffmpeg, and LTX-2's condition
# re-compression falls back to the system ffmpeg, or to none.
#
# Usage (from the repository root, on a machine that reaches PyPI):
#   bash benchmarks/gpu_wheels.sh            # then: device run with carry [".whl"]
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qxF "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >>"$exclude"
mkdir -p .whl
PY=${PYTHON:-python3}
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl \
  "diffusers==0.42.1" "importlib_metadata==8.7.0" "python-dotenv==1.1.1" "ftfy==6.3.1" "wcwidth==0.2.13"
du -sh .whl
ls -1 .whl
