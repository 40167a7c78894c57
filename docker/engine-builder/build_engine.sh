#!/usr/bin/env bash
# Build model_smXY.plan for the GPU this runs on, unless one built by this TensorRT exists.
# Environment (defaults in Dockerfile.engine-builder): ONNX_MODEL, ENGINE_DIR, PRECISION
# (fp16 | int8 — int8 expects the QDQ file from `fashiontag export --precision int8`),
# MIN_BATCH, OPT_BATCH, MAX_BATCH (must match the Triton config: fashiontag ServingSettings).
set -euo pipefail
: "${ONNX_MODEL:?}" "${ENGINE_DIR:?}" "${PRECISION:=fp16}"
: "${MIN_BATCH:=1}" "${OPT_BATCH:=32}" "${MAX_BATCH:=64}"
INPUT=PIXELS
SIZE=224

cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' ')
[[ "$cc" =~ ^[0-9]+\.[0-9]+$ ]] || { echo "cannot read the GPU compute capability: '$cc'" >&2; exit 1; }
engine="${ENGINE_DIR}/model_sm${cc/./}.plan"
trt_version=$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || echo unknown)
stamp="${engine}.built-by"
want="tensorrt=${trt_version} precision=${PRECISION} profile=${MIN_BATCH},${OPT_BATCH},${MAX_BATCH} model=$(sha256sum "$ONNX_MODEL" | cut -c1-16)"

mkdir -p "$ENGINE_DIR"
if [[ -s "$engine" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "engine $engine is current ($want)"
  exit 0
fi

flags=(--fp16)
if [[ "$PRECISION" == "int8" ]]; then flags+=(--int8); fi
echo "building $engine on sm${cc} ($want)"
trtexec --onnx="$ONNX_MODEL" \
  --minShapes="${INPUT}:${MIN_BATCH}x${SIZE}x${SIZE}x3" \
  --optShapes="${INPUT}:${OPT_BATCH}x${SIZE}x${SIZE}x3" \
  --maxShapes="${INPUT}:${MAX_BATCH}x${SIZE}x${SIZE}x3" \
  "${flags[@]}" --memPoolSize=workspace:2048 \
  --saveEngine="${engine}.tmp" --skipInference
mv "${engine}.tmp" "$engine"
echo "$want" > "$stamp"
echo "engine written: $engine"
