"""Run by ComfyUI-Manager after `pip install -r requirements.txt` (or by hand, with ComfyUI's Python):
installs the pose detectors of Pose From Image without touching what other packs need.

requirements.txt cannot say "--no-deps" nor "only if missing", so the packages whose declared
dependencies would add a second OpenCV are installed here:

- `controlnet-aux` (the OpenPose backend) and the official `mediapipe` (the MediaPipe backend) are
  installed only when they are not importable already, with --no-deps, followed by those of their
  declared dependencies that are missing, never an OpenCV distribution (a second one over the same
  `cv2` breaks when either is upgraded or removed) and never `sounddevice` (MediaPipe's audio, unused).
- OpenCV itself: `opencv-python-headless`, only when no `cv2` is importable.
- Nothing that is installed is upgraded, downgraded or pinned; a MediaPipe that cannot run pose
  detection (an odd build another pack pinned) is left as it is, with a note.

pip then reports, in red, that mediapipe "requires opencv-contrib-python, which is not installed" (or
controlnet-aux, opencv-python-headless): that is the point, not a fault. Those lines are replaced by
one plain note; any other conflict pip reports is shown as pip wrote it. Failure is reported, not
fatal: every other node works without pose detection.
"""

from __future__ import annotations

import re
import subprocess
import sys

OPENCV = "opencv-python-headless"
# (distribution, what to install when it is missing, code that runs when it can serve Pose From Image)
DETECTORS = (
    ("controlnet-aux", "controlnet-aux==0.0.10", "from controlnet_aux.open_pose import Body"),
    ("mediapipe", "mediapipe", None),  # None: PROBE below
)
# Declared dependencies left out on purpose (a second cv2; audio).
LEFT_OUT = ("opencv-contrib-python", "opencv-python", "opencv-python-headless", "opencv-contrib-python-headless",
            "sounddevice")
RESOLVER_HEADER = "ERROR: pip's dependency resolver does not currently take into account"
LEFT_OUT_LINE = re.compile(r"^(mediapipe|controlnet-aux) \S+ requires (%s)\b" % "|".join(re.escape(n) for n in LEFT_OUT))
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
# Prints a distribution's declared requirements (no extras) that are not installed, one a line.
MISSING_REQUIREMENTS = """
import importlib.metadata as metadata, re, sys
for requirement in metadata.requires(sys.argv[1]) or []:
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


def python_says(code: str, *args: str, check: bool = False) -> str:
    """What a fresh interpreter (this one's executable) prints for ``code`` with ``args``; ``check``: a failing
    run raises CalledProcessError (reported by main) instead of printing nothing."""
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, capture_output=True, text=True, check=check).stdout.strip()


def runs(code: str) -> bool:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode == 0


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
        say("pip's note that mediapipe or controlnet-aux requires an OpenCV distribution (or sounddevice) is expected: "
            "they are left out on purpose (the cv2 already installed serves them; a second distribution over the "
            "same cv2 breaks on upgrades; audio is unused); nothing is wrong.")
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


def missing_requirements(distribution: str) -> list[str]:
    """A distribution's declared dependencies that are not installed, less those left out on purpose."""
    lines = python_says(MISSING_REQUIREMENTS, distribution, check=True).splitlines()
    return [line for line in lines if line and requirement_name(line) not in LEFT_OUT]


def install_without_deps(distribution: str, requirement: str) -> None:
    """``requirement`` with --no-deps, then its missing dependencies (no cv2, no audio)."""
    pip_install(["--no-deps", requirement])
    missing = missing_requirements(distribution)
    if missing:
        pip_install(missing)


def needs_install(distribution: str, check: str | None) -> bool:
    if check is not None:
        return not runs(check)
    state = python_says(PROBE)
    if state == "ok":
        return False
    if state and not state.startswith("cannot be imported"):
        say(f"MediaPipe is installed but {state}; left as it is (another pack may need this version). "
            "Pose From Image uses the openpose backend; `pip install -U mediapipe` would enable mediapipe.")
        return False
    return True


def main() -> int:
    try:
        if not runs("import cv2"):
            say(f"no OpenCV found: installing {OPENCV}")
            pip_install([OPENCV])
        for distribution, requirement, check in DETECTORS:
            if not needs_install(distribution, check):
                say(f"{distribution}: already usable; nothing to do.")
                continue
            say(f"installing {requirement} (--no-deps, then its missing dependencies) into {sys.executable}")
            install_without_deps(distribution, requirement)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"ComfyUI-PIDM: could not install the pose detectors ({error}); every node but Pose From Image "
              "works without them. To retry: python install.py", file=sys.stderr)
        return 0
    after = python_says(PROBE)
    say("done." if after == "ok" else f"done, but MediaPipe cannot run: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
