"""Run by ComfyUI-Manager after `pip install -r requirements.txt` (or by hand, with ComfyUI's Python):
installs MediaPipe for Pose From Image without touching what other packs need.

- Nothing happens when a MediaPipe that can run pose detection is already importable (the official
  1.x with its Tasks API, or an older build with the legacy API): Pose From Image uses either, with the
  model bundle the pack ships.
- Otherwise the official `mediapipe` is installed with --no-deps, then only those of its declared
  dependencies that are missing, and never: an OpenCV distribution (a second one over the same `cv2`
  breaks when either is upgraded or removed; the pack's own cv2 serves MediaPipe) or `sounddevice`
  (MediaPipe's audio tasks, unused). Nothing that is installed is upgraded, downgraded or pinned.

pip then reports, in red, that mediapipe "requires opencv-contrib-python, which is not installed" (and
sounddevice): that is the point, not a fault. Those lines are replaced by one plain note; any other
conflict pip reports is shown as pip wrote it. Failure is reported, not fatal: the openpose backend
and every other node work without MediaPipe.
"""

from __future__ import annotations

import re
import subprocess
import sys

MEDIAPIPE = "mediapipe"
# Declared by the official wheel and left out on purpose (a second cv2; audio).
LEFT_OUT = ("opencv-contrib-python", "opencv-python", "opencv-python-headless", "opencv-contrib-python-headless",
            "sounddevice")
RESOLVER_HEADER = "ERROR: pip's dependency resolver does not currently take into account"
LEFT_OUT_LINE = re.compile(r"^mediapipe \S+ requires (%s)\b" % "|".join(re.escape(n) for n in LEFT_OUT))
CONFLICT_LINE = re.compile(r"^\S+ \S+ (requires|has requirement) ")
# Run in a fresh interpreter: a package installed a moment ago is not importable in this one. Prints
# "ok", or why MediaPipe Pose cannot run (same checks as pidm_core/pose/mediapipe_pose.py).
PROBE = """
try:
    import mediapipe as mp
except Exception as error:
    print(f"cannot be imported ({type(error).__name__}: {error})"); raise SystemExit
try:
    from mediapipe.tasks.python import vision
    vision.PoseLandmarker
    print("ok"); raise SystemExit
except Exception as error:
    tasks = f"{type(error).__name__}: {error}"
try:
    mp.solutions.pose.Pose
    print("ok")
except Exception:
    print(f"mediapipe {getattr(mp, '__version__', '?')} has neither API ({tasks})")
"""
# Prints mediapipe's declared requirements (no extras) whose distribution is not installed, one a line.
MISSING_REQUIREMENTS = """
import importlib.metadata as metadata, re
for requirement in metadata.requires("mediapipe") or []:
    if "extra ==" in requirement:
        continue
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(requirement.split(";")[0].strip())
"""


def say(message: str) -> None:
    print(f"ComfyUI-PIDM install.py: {message}", flush=True)


def python_says(code: str) -> str:
    """What a fresh interpreter (this one's executable) prints for ``code``."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip()


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def filter_pip_output(lines) -> tuple[list[str], bool]:
    """pip's lines minus the resolver's complaint about the dependencies left out on purpose.
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
        say("pip's note that mediapipe requires opencv-contrib-python / sounddevice is expected: they are left out "
            "on purpose (a second OpenCV over the same cv2, and audio the pack does not use); nothing is wrong.")
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


def missing_requirements() -> list[str]:
    """MediaPipe's declared dependencies that are not installed, less those left out on purpose."""
    lines = python_says(MISSING_REQUIREMENTS).splitlines()
    return [line for line in lines if line and requirement_name(line) not in LEFT_OUT]


def main() -> int:
    state = python_says(PROBE)
    if state == "ok":
        say("MediaPipe can already run pose detection; nothing to do.")
        return 0
    if state and not state.startswith("cannot be imported"):
        say(f"MediaPipe is installed but {state}; left as it is (another pack may need this version). "
            "Pose From Image uses the openpose backend; `pip install -U mediapipe` would enable mediapipe.")
        return 0
    say(f"installing MediaPipe (the official package, --no-deps) for Pose From Image, into {sys.executable}")
    try:
        pip_install(["--no-deps", MEDIAPIPE])
        missing = missing_requirements()
        if missing:
            pip_install(missing)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"ComfyUI-PIDM: could not install MediaPipe ({error}); Pose From Image can still use the "
              "openpose backend. To retry: pip install --no-deps mediapipe", file=sys.stderr)
        return 0
    after = python_says(PROBE)
    say("done." if after == "ok" else f"installed, but MediaPipe still cannot run: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
