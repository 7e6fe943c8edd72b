#!/usr/bin/env bash
# THE demo: a local ComfyUI with ComfyUI-PIDM, the "photo to new pose" example run once, the UI left open.
#
#   bash scripts/demo.sh                  # writes demo_output/photo_to_new_pose.png, serves http://127.0.0.1:8188 until Ctrl-C
#   bash scripts/demo.sh --exit           # stop after writing the image (also: PIDM_DEMO_EXIT=1)
#   bash scripts/demo.sh --output out.png --workflow pose_sequence_to_frames --port 8190
#
# Steps: scripts/setup_env.sh (the venv and the cached ComfyUI 0.3.75; a no-op once done), then
# scripts/demo.py: a ComfyUI tree in ${PIDM_DEMO_DIR:-~/.cache/comfyui-pidm/demo} with this repo
# symlinked as a custom node, assets/* copied into its input folder, the workflow
# example_workflows/api/<name>.json posted over HTTP, the first saved image written out.
#
# Environment: PIDM_DEMO_DIR, PIDM_DEMO_PORT (8188; 0 or a taken port = a free one),
# PIDM_DEMO_OUTPUT, PIDM_DEMO_WORKFLOW, PIDM_DEMO_EXIT, PIDM_VENV, PIDM_CACHE, PIDM_COMFYUI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PIDM_VENV:-$HOME/.cache/comfyui-pidm/venv}"
cd "$ROOT"

bash scripts/setup_env.sh
# OpenMP threads sleep while they wait instead of spinning: on a busy machine spinning threads
# slow sampling several times over (scripts/test.sh has the numbers). The server inherits it.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "$VENV/bin/python" scripts/demo.py "$@"
