"""Synthetic driving videos with known truth, for the pose-from-video benchmarks and the example workflow.

    python scripts/make_driving_videos.py --out DIR                 # every case, seed 0: 640x480, 25 fps, 150 frames
    python scripts/make_driving_videos.py --out DIR --cases crossing occluded --seeds 0 1 2 --frames 300
    python scripts/make_driving_videos.py --out DIR --cases single --audio       # with a melody as AAC audio
    python scripts/make_driving_videos.py --example assets/pidm_driving_walk.mp4   # the bundled example clip
    python scripts/make_driving_videos.py --fetch-vtest     # real footage into ~/.cache/comfyui-pidm/downloads

Each case is written as ``driving_<case>_seed<seed>.mp4`` (H.264, yuv420p, CRF 28: lossy, as downloaded
videos are) and ``driving_<case>_seed<seed>.npz``, its truth (pidm_core.data.synthetic.driving:
keypoints [T, P, 18, 3] in video pixels, the target person's index, fps, blank / occluded / absent
frames, person heights); load it with ``pidm_core.data.synthetic.driving_files.load_truth``. The same
command writes the same bytes again on the same PyAV / FFmpeg build.

The example clip (``--example``) is the "single" case's walker, small and short, with a melody of a
few tones as its AAC audio track, so that a workflow's output can be checked for frame rate and sound.

Real footage (``--fetch-vtest``): OpenCV's sample ``vtest.avi`` (pedestrians walking in a square, filmed
from above, 768x576, 795 frames at 10 fps, Apache-2.0 like the photos of tests/photos/), taken from
Debian's ``opencv-doc`` package with ``apt-get download`` (about 96 MB, fetched once, deleted once the
video is out of it) into ~/.cache/comfyui-pidm/downloads/vtest.avi, never into the repository. It has
no truth: it shows whether a pipeline runs and how fast on real, noisy video with several people.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pidm_core.data.synthetic.driving import DRIVING_CASES, make_driving_video  # noqa: E402
from pidm_core.data.synthetic.driving_files import (  # noqa: E402
    AUDIO_RATE,
    DEFAULT_CRF,
    encode_h264,
    tone_melody,
    write_driving_case,
)

EXAMPLE_CASE, EXAMPLE_SEED = "single", 0
EXAMPLE_SIZE = (384, 288)  # width, height: 4:3, a width x264 encodes byte for byte the same (driving_files)
EXAMPLE_FPS = 12
EXAMPLE_FRAMES = 42  # 3.5 s
EXAMPLE_AUDIO_RATE = AUDIO_RATE


def make_example(path: Path, crf: int = DEFAULT_CRF) -> Path:
    """The bundled driving clip: :data:`EXAMPLE_FRAMES` frames of the walker at :data:`EXAMPLE_FPS`
    fps, :data:`EXAMPLE_SIZE`, mirrored left to right, with a tone melody as long as the video."""
    video = make_driving_video(EXAMPLE_CASE, seed=EXAMPLE_SEED, frames=EXAMPLE_FRAMES, size=EXAMPLE_SIZE,
                               fps=EXAMPLE_FPS)
    audio = tone_melody(EXAMPLE_FRAMES / EXAMPLE_FPS, EXAMPLE_AUDIO_RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mirrored, so the walker sets off leftwards: in the example workflow the motion starts where the person of
    # assets/pidm_scene.png stands, at the right of the room, and must stay inside the photo
    mirrored = (np.ascontiguousarray(image[:, ::-1]) for image in video.images)
    return encode_h264(mirrored, path, EXAMPLE_FPS, crf=crf, audio=(audio, EXAMPLE_AUDIO_RATE))


DOWNLOADS = Path.home() / ".cache" / "comfyui-pidm" / "downloads"
VTEST_IN_PACKAGE = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"


def fetch_vtest(cache: Path = DOWNLOADS) -> Path:
    """``cache/vtest.avi``, extracted from Debian's opencv-doc package the first time (needs apt-get
    and dpkg-deb, a Debian or Ubuntu system, and the network); afterwards the cached file."""
    target = cache / "vtest.avi"
    if target.is_file():
        return target
    for tool in ("apt-get", "dpkg-deb", "tar"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"fetching vtest.avi needs {tool} (Debian's opencv-doc package); "
                               f"or copy samples/data/vtest.avi of OpenCV 4.6.0 to {target} by hand")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=work, check=True)
        package = next(Path(work).glob("opencv-doc_*.deb"))
        # Only the one video comes out of the package; the rest of its 96 MB goes with the temporary folder.
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(package)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", work, VTEST_IN_PACKAGE], stdin=tar.stdout, check=True)
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"dpkg-deb could not read {package.name}")
        partial = target.with_suffix(".avi.part")
        shutil.move(str(Path(work) / VTEST_IN_PACKAGE), partial)
        partial.replace(target)
    return target


def check_mediapipe(mp4: Path, npz: Path, step: int = 3) -> str:
    """How often MediaPipe (pidm_core.pose.people, two people at most) finds each walker in the encoded
    video: of every ``step``-th frame where the walker shows at least 8 joints, those with a detected
    person whose torso centre lies within 0.15 of the walker's height of the true one."""
    import numpy as np

    from pidm_core.data.synthetic.driving_files import load_truth
    from pidm_core.pose.people import open_people_detector
    from pidm_core.video.read import read_frames

    truth = load_truth(npz)
    torso = [1, 2, 5, 8, 11]  # neck, shoulders, hips
    found, shown = np.zeros(truth.keypoints.shape[1], int), np.zeros(truth.keypoints.shape[1], int)
    with open_people_detector("mediapipe", max_people=2) as detect:
        for index, rgb in read_frames(mp4, step=step):
            people = detect(rgb)
            for person, joints in enumerate(truth.keypoints[index]):
                seen = joints[torso, 2] > 0
                if (joints[:, 2] > 0).sum() < 8 or not seen.any():
                    continue
                shown[person] += 1
                centre = joints[torso][seen, :2].mean(axis=0)
                for detected in people:
                    mine = detected[torso, 2] > 0
                    if mine.sum() >= 2 and np.linalg.norm(detected[torso][mine, :2].mean(axis=0) - centre) < (
                            0.15 * truth.person_heights[person]):
                        found[person] += 1
                        break
    return ", ".join(f"person {p}{' (target)' if p == truth.target else ''}: found in {f}/{n} frames"
                     for p, (f, n) in enumerate(zip(found, shown)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for driving_<case>_seed<seed>.mp4 and .npz")
    parser.add_argument("--cases", nargs="+", choices=DRIVING_CASES, default=list(DRIVING_CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--audio", action="store_true", help="give each video a melody as its AAC audio track")
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="H.264 constant quality (higher: lossier)")
    parser.add_argument("--example", type=Path, help="write the bundled example clip to this path instead")
    parser.add_argument("--check-mediapipe", action="store_true",
                        help="after writing each video, report how often MediaPipe finds its people")
    parser.add_argument("--fetch-vtest", action="store_true",
                        help=f"fetch OpenCV's vtest.avi (real pedestrians) into {DOWNLOADS}")
    args = parser.parse_args(argv)
    if args.example is None and args.out is None and not args.fetch_vtest:
        parser.error("give --out DIR (benchmark videos), --example PATH (the bundled clip) or --fetch-vtest")
    if args.fetch_vtest:
        print(fetch_vtest())
    if args.example is not None:
        path = make_example(args.example, args.crf)
        print(f"{path}: {EXAMPLE_FRAMES} frames, {EXAMPLE_SIZE[0]}x{EXAMPLE_SIZE[1]}, {EXAMPLE_FPS} fps, "
              f"AAC audio; {path.stat().st_size / 1024:.0f} KiB")
    if args.out is not None:
        for seed in args.seeds:
            for case in args.cases:
                mp4, npz = write_driving_case(args.out, case, seed, args.frames, (args.width, args.height),
                                              args.fps, args.crf, args.audio)
                print(f"{mp4} ({mp4.stat().st_size / 1024:.0f} KiB) + {npz.name}", flush=True)
                if args.check_mediapipe:
                    print(f"  MediaPipe, every 3rd frame: {check_mediapipe(mp4, npz)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
