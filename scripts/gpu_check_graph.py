"""One real ComfyUI graph on the GPU, for scripts/gpu_check.sh.

Runs scripts/demo.py's "photo to new pose" (``--exit``) with the host started without ``--cpu`` (and
with ``GPU_CHECK_FLAG``, e.g. ``--novram``, when set), writes the image to ``GPU_CHECK_IMAGE``, and
fails unless the server log names a CUDA device. Environment: PIDM_DEMO_DIR (a fresh ComfyUI tree),
GPU_CHECK_FLAG, GPU_CHECK_IMAGE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402  (scripts/demo.py)

LOG_WORDS = ("Device:", "VRAM", "loaded completely", "loaded partially")


def main() -> int:
    flag = os.environ.get("GPU_CHECK_FLAG", "")
    real_popen = subprocess.Popen

    def popen_on_gpu(command, *args, **kwargs):
        # demo.py starts the host with --cpu; here the host picks its own device
        if isinstance(command, list) and "main.py" in command:
            command = [part for part in command if part != "--cpu"] + ([flag] if flag else [])
            print(f"host started without --cpu{', with ' + flag if flag else ''}", flush=True)
        return real_popen(command, *args, **kwargs)

    subprocess.Popen = popen_on_gpu
    status = demo.main(["--exit", "--port", "0", "--output", os.environ["GPU_CHECK_IMAGE"]])
    log_path = Path(os.environ["PIDM_DEMO_DIR"]) / "server.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    lines = [line for line in log.splitlines() if any(word in line for word in LOG_WORDS)]
    print("\n".join(lines) or "the server log names no device")
    if not any("Device:" in line and "cuda" in line for line in lines):
        print("the host did not run on a CUDA device", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
