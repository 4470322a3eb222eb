#!/usr/bin/env bash
# The GPU check in one command: the diffusers backend's whole GPU path on one CUDA GPU, < 8 minutes.
#
#   1. installs the wheels carried in .whl/ (benchmarks/gpu_wheels.sh fetches them) into /tmp/site,
#      unless diffusers is already importable;
#   2. tiny LTX / Wan / SVD / LTX-2 renders through DiffusersBackend in bf16, and the float32 VAE
#      retry on a VAE that decodes NaN in bf16 (benchmarks/gpu_tiny_renders.py; ~1 min);
#   3. the real-size LTX-Video 2B distilled benchmark (3 x 3 s loops at 512 px; eager, sequential,
#      regional torch.compile);
#   4. the real-size LTX-2 distilled benchmark (19B transformer + Gemma 3 12B, random weights).
#
# Each step has its own time limit, and its output is appended to $OUT/gpu_check.md as it comes,
# so a step that runs long still leaves the others' tables. No ffmpeg is needed (renders are
# checked in memory; export is not part of the check).
#
# Usage:
#   bash benchmarks/gpu_wheels.sh                       # here, once: fills .whl/ (~6 MB)
#   device run: command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 540
# Step limits: 100 + 140 + 200 s, plus ~20 s of installing and start-up: under 8 minutes.
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh --device cpu   # step 2 only, on the CPU
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [ "${1:-}" = "--device" ] && [ -n "${2:-}" ]; then DEVICE=$2; fi
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
REPORT=$OUT/gpu_check.md
: >"$REPORT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

say() { echo "$*" | tee -a "$REPORT"; }

# step: LIMIT_SECONDS TITLE COMMAND...  (runs it, appends its stdout to the report)
step() {
  local limit=$1 title=$2
  shift 2
  say ""
  say "## $title"
  local started=$SECONDS
  timeout --signal=INT --kill-after=15 "$limit" "$@" 2>>"$OUT/gpu_check.stderr.log" | tee -a "$REPORT"
  local rc=${PIPESTATUS[0]}
  say ""
  say "(exit $rc after $((SECONDS - started)) s$([ "$rc" = 124 ] && echo ", stopped at its ${limit} s limit"))"
}

if ! "$PY" -c "import diffusers" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "no diffusers here and no wheels in .whl/: run benchmarks/gpu_wheels.sh first" >&2
    exit 2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi

say "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
"$PY" - <<'EOF' | tee -a "$REPORT"
import diffusers, torch, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"{gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}); diffusers {diffusers.__version__}; "
      f"transformers {transformers.__version__}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$REPORT"

step 100 "Tiny renders ($DEVICE)" "$PY" benchmarks/gpu_tiny_renders.py --device "$DEVICE"
if [ "$DEVICE" != cuda ]; then
  echo "report: $REPORT"
  exit 0
fi
step 140 "LTX-Video 2B distilled, 3 x 3 s at 512 px" \
  "$PY" benchmarks/diffusers_gpu.py --family ltx --runs 3
step 200 "LTX-2 distilled, 3 x 3 s at 512 px" \
  "$PY" benchmarks/diffusers_gpu.py --family ltx2 --runs 2
echo "report: $REPORT"
