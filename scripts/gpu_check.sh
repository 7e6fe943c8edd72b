#!/usr/bin/env bash
# Everything issue 19 leaves to a real GPU, in one run of under 5 minutes, into one results file.
#
#   bash scripts/gpu_check.sh                 # writes gpu_check_results/gpu_check_<UTC time>.md (+ .json files)
#   PIDM_GPU_CHECK_OUT=/some/dir bash scripts/gpu_check.sh
#
# Steps (each logged with its exit status and time; a failing step does not stop the others):
#   1. the device: nvidia-smi, torch, CUDA
#   2. the `gpu`-marked tests (tests/test_device_paths.py: samplers on CUDA under the float64 /
#      mixed-device audit and equal to the CPU, a resumed training run, the memory estimate against
#      torch.cuda.max_memory_allocated at 256 px)
#   3. one real-host graph on the GPU: scripts/demo.py's "photo to new pose" on ComfyUI 0.3.75
#      started without --cpu, its server log checked for the CUDA device; then the same under --novram
#      (scripts/gpu_check_graph.py)
#   4. benchmarks/bench_sampler.py on cuda, fp16 and bf16 (each table has the channels-last row and
#      the row without), deepfashion_256 random weights
#   5. benchmarks/bench_memory.py on cuda: fp16 and bf16, channels-last on and off, peak VRAM and the
#      activation estimate the sampler node gives ComfyUI
#
# Python: $PIDM_PYTHON, else the venv of scripts/setup_env.sh (~/.cache/comfyui-pidm/venv; made here by
# setup_env.sh when absent and a network is reachable), else python3 if it has torch with CUDA.
# Step 3 needs the ComfyUI host that setup_env.sh unpacks (PIDM_COMFYUI); it is skipped, and says so,
# without one.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT_DIR="${PIDM_GPU_CHECK_OUT:-${OUT:-$ROOT/gpu_check_results}}"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/gpu_check_$STAMP.md"
VENV_PY="${PIDM_VENV:-$HOME/.cache/comfyui-pidm/venv}/bin/python"
START=$SECONDS

pick_python() {
    if [[ -n "${PIDM_PYTHON:-}" ]]; then echo "$PIDM_PYTHON"; return; fi
    if [[ -x "$VENV_PY" ]]; then echo "$VENV_PY"; return; fi
    if command -v python3 >/dev/null && python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
        echo python3; return
    fi
    bash scripts/setup_env.sh >&2 && [[ -x "$VENV_PY" ]] && echo "$VENV_PY"
}
PY="$(pick_python)"
if [[ -z "$PY" ]]; then
    echo "gpu_check: no python with torch found (set PIDM_PYTHON)" | tee "$REPORT"
    exit 2
fi

FAILED=()
step() {  # step "title" timeout_s command...
    local title="$1" limit="$2"; shift 2
    local began=$SECONDS
    {
        echo
        echo "## $title"
        echo
        echo '```'
        echo "\$ $*"
    } >>"$REPORT"
    timeout "$limit" "$@" >>"$REPORT" 2>&1
    local status=$?
    {
        echo '```'
        echo
        echo "exit status $status after $((SECONDS - began)) s"
    } >>"$REPORT"
    echo "gpu_check: $title: exit $status ($((SECONDS - began)) s)"
    [[ $status -eq 0 ]] || FAILED+=("$title (exit $status)")
}

{
    echo "# GPU check, $STAMP"
    echo
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- python: $PY"
} >"$REPORT"

step "device" 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \"$PY\" -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"available\", torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"NO CUDA DEVICE\"); raise SystemExit(not torch.cuda.is_available())'"

# PIDM_REQUIRE_GPU=1: without a GPU these tests fail here rather than skip
step "gpu-marked tests" 120 env PIDM_REQUIRE_GPU=1 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_device_paths.py

HOST_DIR="${PIDM_COMFYUI:-$HOME/.cache/comfyui-pidm/comfyui-0.3.75}"
run_graph() {  # run_graph "title" "host flag or empty" "output name"
    local demo_dir
    demo_dir="$(mktemp -d)"
    step "$1" 120 env PIDM_DEMO_DIR="$demo_dir" GPU_CHECK_FLAG="$2" GPU_CHECK_IMAGE="$OUT_DIR/$3_$STAMP.png" \
        "$PY" "$ROOT/scripts/gpu_check_graph.py"
}
if [[ -f "$HOST_DIR/main.py" ]]; then
    run_graph "real ComfyUI graph on the GPU (photo to new pose)" "" gpu_photo_to_new_pose
    run_graph "the same graph under --novram (PIDM must still run on the GPU)" --novram gpu_photo_to_new_pose_novram
else
    echo "gpu_check: no ComfyUI host at $HOST_DIR: real-host graphs skipped" | tee -a "$REPORT"
    FAILED+=("real-host graph (no host)")
fi

for half in fp16 bf16; do
    step "bench_sampler cuda $half" 120 "$PY" benchmarks/bench_sampler.py --device cuda --half "$half" \
        --sections peak,table,e2e,batch --e2e-256 estimate --repeats 5 --warmup 2 --batches 1,4,8 \
        --json "$OUT_DIR/bench_sampler_cuda_${half}_$STAMP.json"
done

step "bench_memory cuda" 120 "$PY" benchmarks/bench_memory.py --device cuda --json "$OUT_DIR/bench_memory_cuda_$STAMP.json"

{
    echo
    echo "## Summary"
    echo
    echo "total $((SECONDS - START)) s; failed steps: ${#FAILED[@]}"
    for f in "${FAILED[@]}"; do echo "- $f"; done
} >>"$REPORT"
echo "gpu_check: report $REPORT ($((SECONDS - START)) s, ${#FAILED[@]} failed steps)"
[[ ${#FAILED[@]} -eq 0 ]]
