#!/usr/bin/env bash
# Reproduce the embedded model from scratch: the stages the shipped file went through, in order,
# with the settings each stage ran with. Resumable: rerun the script and it continues where it
# stopped (each stage resumes its last.pt; finished stages are skipped in seconds).
#
#   bash scripts/train_embedded.sh            # writes pidm_core/weights/pidm_synthetic_64.safetensors
#
# Env: OUT (training state, default ~/.cache/comfyui-pidm/train/embedded), THREADS (default 2),
# EXPORT (default the shipped path), PIDM_VENV (default ~/.cache/comfyui-pidm/venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PIDM_VENV:-$HOME/.cache/comfyui-pidm/venv}/bin/python"
OUT="${OUT:-$HOME/.cache/comfyui-pidm/train/embedded}"
EXPORT="${EXPORT:-$ROOT/pidm_core/weights/pidm_synthetic_64.safetensors}"
cd "$ROOT"

common=(--config synthetic_64 --data synthetic --batch-size 16 --warmup 200 --ema-decay 0.999 --ema-start 500
        --precision bf16 --threads "${THREADS:-2}" --save-every 50 --sample-every 500 --workers 1)

# Stage 1, ε-prediction (the official parametrisation): learns to draw a figure in the target pose.
# The learning rate and the high-noise weight changed between sessions; these are the boundaries.
eps_stage() { "$PY" -m pidm_core.train "${common[@]}" --out "$OUT/eps" --prediction eps "$@"; }
eps_stage --steps 1389 --lr 2e-4
eps_stage --steps 3906 --lr 3e-4
eps_stage --steps 5150 --lr 2e-4 --high-noise-weight 20
eps_stage --steps 7100 --lr 1e-4 --high-noise-weight 300
eps_stage --steps 11500 --lr 1e-4 --high-noise-weight 1000

# Stage 2, v-prediction fine-tune from stage 1's EMA: learns to carry the source's colours, which
# ε-prediction's loss hardly sees at the high noise levels where they are decided. The second
# session of it ran at half the learning rate.
v_stage() { "$PY" -m pidm_core.train "${common[@]}" --out "$OUT/v" --prediction v --init "$OUT/eps/last.pt" "$@"; }
v_stage --steps 5000 --lr 2e-4
v_stage --steps "${V_STEPS:-10000}" --lr 1e-4 --export "$EXPORT" --name pidm_synthetic_64
