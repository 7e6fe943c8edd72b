"""Poses from a driving video against the truth: tracking, sides, gaps, smoothing, speed and memory.

Sections (``--sections``, default all but ``memory``):

* ``quality``: for each synthetic driving video (pidm_core/data/synthetic/driving.py, encoded as H.264
  mp4 and decoded again with pidm_core.video.read), the followed person's joints from
  :func:`pidm_core.pose.video.poses_from_frames` (before and after smoothing) and, as the baseline,
  today's Pose From Image run on every frame (``detect_poses``, largest person): PCK@0.05 and @0.1 of
  the person's standing height over the joints the truth shows, frames following someone else,
  identity switches, frames with left and right swapped, jitter (mean joint acceleration, px/frame²)
  against the truth's, and the error on filled frames.
* ``smoothing``: PCK@0.05 and jitter for each method and strength, on the tracked joints of every case
  (the detection is run once per case and reused).
* ``speed``: frames per second of poses_from_frames at 640x480 reading an mp4 (decoding included), and
  of the detector alone in MediaPipe's image and video modes with one and two people.
* ``memory``: peak RSS of poses_from_frames over a long 720p mp4 (each length in a fresh process).

    python -m benchmarks.video_poses
    python -m benchmarks.video_poses --sections memory --memory-frames 1500 6000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pidm_core.pose.keypoints import FLIP_PERMUTATION  # noqa: E402
from pidm_core.pose.track import SIDE_GROUPS  # noqa: E402

CASES = ("crossing", "occluded", "leave_return", "single")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
WRONG_PERSON_PX = 0.15  # of the height: a pose closer to another person than this and to them than to the target


# --------------------------------------------------------------------------------------------------
# videos


def driving_mp4(case: str, seed: int, frames: int, size: tuple[int, int], folder: Path, crf: int = 28):
    """The driving video as an mp4 in ``folder`` (made once) and its truth."""
    from pidm_core.data.synthetic.driving import make_driving_video
    from pidm_core.video.write import VideoWriter

    video = make_driving_video(case, seed, frames, size)
    path = folder / f"{case}_{seed}_{frames}_{size[0]}x{size[1]}_crf{crf}.mp4"
    if not path.is_file():
        with VideoWriter(path, video.fps, crf=crf) as writer:
            for start in range(0, frames, 25):
                writer.write(np.stack([video.images[i] for i in range(start, min(frames, start + 25))]))
    return path, video


# --------------------------------------------------------------------------------------------------
# scores


def pck(pred: np.ndarray, truth: np.ndarray, height: float, fraction: float, frames=None) -> float:
    """Share of the truth's shown joints (confidence > 0) that ``pred`` has within ``fraction`` × height."""
    frames = np.arange(len(truth)) if frames is None else np.asarray(frames, int)
    if len(frames) == 0:
        return float("nan")
    shown = truth[frames, :, 2] > 0
    near = (pred[frames, :, 2] > 0) & (np.linalg.norm(pred[frames, :, :2] - truth[frames, :, :2], axis=2) <= fraction * height)
    return float((near & shown).sum() / max(1, shown.sum()))


def jitter(keypoints: np.ndarray) -> float:
    """Mean |x[t+1] − 2x[t] + x[t−1]| (px) over joints present in all three frames."""
    a, b, c = keypoints[:-2], keypoints[1:-1], keypoints[2:]
    present = (a[:, :, 2] > 0) & (b[:, :, 2] > 0) & (c[:, :, 2] > 0)
    acceleration = np.linalg.norm(c[:, :, :2] - 2 * b[:, :, :2] + a[:, :, :2], axis=2)
    return float(acceleration[present].mean()) if present.any() else float("nan")


def followed(pred: np.ndarray, everyone: np.ndarray) -> np.ndarray:
    """Per frame: which true person (index along P) the pose is nearest (mean distance over the joints
    the pose has; the truth's positions hidden or not), or -1 where the pose has no joints."""
    out = np.full(len(pred), -1)
    for t in range(len(pred)):
        have = pred[t, :, 2] > 0
        if have.any():
            distances = [np.linalg.norm(pred[t, have, :2] - everyone[t, p, have, :2], axis=1).mean()
                         for p in range(everyone.shape[1])]
            out[t] = int(np.argmin(distances))
    return out


def swapped(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per frame: the arms or the legs are labelled mirrored (the mirrored labels nearer the truth by
    more than a pixel); False where the pose lacks both sides of both groups."""
    out = np.zeros(len(pred), bool)
    for t in range(len(pred)):
        for joints in (SIDE_GROUPS["arms"], SIDE_GROUPS["legs"]):
            joints = [j for j in joints if pred[t, j, 2] > 0 and pred[t, FLIP_PERMUTATION[j], 2] > 0]
            if len(joints) < 2:
                continue
            mirrored = [FLIP_PERMUTATION[j] for j in joints]
            direct = np.linalg.norm(pred[t, joints, :2] - truth[t, joints, :2], axis=1).mean()
            other = np.linalg.norm(pred[t, mirrored, :2] - truth[t, joints, :2], axis=1).mean()
            if other + 1.0 < direct:
                out[t] = True
                break
    return out


def scores(pred: np.ndarray, video, filled=(), held=()) -> dict:
    """Every score of one run; ``filled``/``held``: the run's filled and held frames (held frames are
    copies of another frame's pose: left out of the left/right counts)."""
    truth = video.keypoints[:, video.target]
    height = float(video.person_heights[video.target])
    shown = np.nonzero((truth[:, :, 2] > 0).any(axis=1))[0]
    who = followed(pred, video.keypoints)
    tracked = who[who >= 0]
    wrong = int(((who >= 0) & (who != video.target)).sum())
    sided = np.array([t for t in range(len(pred)) if (pred[t, :, 2] > 0).any() and t not in set(held)], int)
    mirrored = swapped(pred[sided], truth[sided]) if len(sided) else np.zeros(0, bool)
    filled = [t for t in filled if t in set(shown)]
    filled_error = (np.linalg.norm(pred[filled, :, :2] - truth[filled, :, :2], axis=2)[(pred[filled, :, 2] > 0)
                    & (truth[filled, :, 2] > 0)].mean() / height) if filled else float("nan")
    return {
        "pck05": pck(pred, truth, height, 0.05, shown), "pck10": pck(pred, truth, height, 0.1, shown),
        "wrong": wrong, "switches": int((tracked[1:] != tracked[:-1]).sum()), "frames": len(shown),
        "swapped": int(mirrored.sum()), "side_changes": int((mirrored[1:] != mirrored[:-1]).sum()), "jitter": jitter(pred), "truth_jitter": jitter(truth),
        "filled": len(filled), "filled_error": filled_error,
        "filled_pck10": pck(pred, truth, height, 0.1, filled) if filled else float("nan"),
    }


# --------------------------------------------------------------------------------------------------
# runs


def person_setting(video) -> int | str:
    """What a user would set to follow the target: with several people, its place left to right in the
    first frame (the crossing's target starts on the left); alone, "largest"."""
    if video.keypoints.shape[1] == 1:
        return "largest"
    necks = video.keypoints[0, :, 1, 0]
    return int(np.argsort(np.argsort(necks))[video.target])


def tracked_run(path: Path, video, **settings):
    """poses_from_frames on the mp4 with smoothing off, and the track's raw keypoints (for the grid)."""
    from pidm_core.pose.video import poses_from_frames
    from pidm_core.video.read import read_frames

    result = poses_from_frames(read_frames(str(path)), width=video.width, height=video.height,
                               frame_rate=video.fps, smoothing=0.0, name=path.name,
                               person=person_setting(video), **settings)
    return np.stack([p.keypoints for p in result.poses]), result


def baseline_run(path: Path) -> np.ndarray:
    """Today's Pose From Image on each frame (largest person; nothing where it finds nobody)."""
    from pidm_core.pose.detect import NoPersonFoundError, detect_poses
    from pidm_core.video.read import read_frames

    out = []
    for _, rgb in read_frames(str(path)):
        try:
            out.append(detect_poses([rgb], backend="mediapipe")[0].keypoints)
        except NoPersonFoundError:
            out.append(np.zeros((18, 3), np.float32))
    return np.stack(out)


def _f(value: float, digits: int = 3) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def quality(args, folder: Path) -> dict:
    from pidm_core.pose.smooth import DEFAULT_METHOD, DEFAULT_STRENGTH, smooth_keypoints

    print(f"## Quality ({args.frames} frames, {args.size[0]}x{args.size[1]}, H.264 crf {args.crf}, seeds "
          f"{' '.join(map(str, args.seeds))}; smoothed = {DEFAULT_METHOD} at {DEFAULT_STRENGTH})\n")
    print("| case | run | PCK@0.05 | PCK@0.1 | wrong person (frames) | switches | L/R swapped frames (changes) | "
          "jitter px (truth) | filled frames | filled error (× height) | filled PCK@0.1 | held |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    raw, totals = {}, {}
    for seed in args.seeds:
        for case in args.cases:
            path, video = driving_mp4(case, seed, args.frames, tuple(args.size), folder, args.crf)
            keypoints, result = tracked_run(path, video)
            raw[f"{case} {seed}"] = (keypoints, video, result)
            rows = [("tracked", keypoints),
                    ("tracked + smoothed", smooth_keypoints(keypoints, video.fps, DEFAULT_STRENGTH, DEFAULT_METHOD))]
            if not args.no_baseline:
                rows.insert(0, ("Pose From Image per frame", baseline_run(path)))
            for label, pred in rows:
                ours = label.startswith("tracked")
                s = scores(pred, video, result.filled if ours else (), result.held if ours else ())
                totals.setdefault(label, []).append(s)
                print(f"| {case} {seed} | {label} | {_f(s['pck05'])} | {_f(s['pck10'])} | {s['wrong']} of "
                      f"{len(pred)} | {s['switches']} | {s['swapped']} ({s['side_changes']}) | "
                      f"{_f(s['jitter'], 2)} ({_f(s['truth_jitter'], 2)}) | {s['filled'] if ours else '–'} | "
                      f"{_f(s['filled_error'])} | {_f(s['filled_pck10'])} | {len(result.held) if ours else '–'} |")
    print("\nMean over the videos above:\n")
    print("| run | PCK@0.05 | PCK@0.1 | wrong person (frames) | switches | L/R swapped frames (changes) | "
          "jitter / truth's |")
    print("|---|---|---|---|---|---|---|")
    for label, rows in totals.items():
        mean = lambda key: float(np.nanmean([r[key] for r in rows]))  # noqa: E731
        ratio = float(np.nanmean([r["jitter"] / r["truth_jitter"] for r in rows]))
        print(f"| {label} | {_f(mean('pck05'))} | {_f(mean('pck10'))} | {sum(r['wrong'] for r in rows)} | "
              f"{sum(r['switches'] for r in rows)} | {sum(r['swapped'] for r in rows)} "
              f"({sum(r['side_changes'] for r in rows)}) | {_f(ratio, 2)} |")
    print()
    return raw


def smoothing_grid(raw: dict) -> None:
    from pidm_core.pose.smooth import METHODS, smooth_keypoints

    print("## Smoothing: mean over the videos of the quality table (tracked joints)\n")
    print("| method | strength | PCK@0.05 | PCK@0.1 | jitter / truth's | filled PCK@0.1 |")
    print("|---|---|---|---|---|---|")
    for method in METHODS:
        for strength in STRENGTHS:
            rows = [scores(smooth_keypoints(k, v.fps, strength, method), v, r.filled, r.held) for k, v, r in raw.values()]
            mean = lambda key: float(np.nanmean([r[key] for r in rows]))  # noqa: E731
            ratio = float(np.nanmean([r["jitter"] / r["truth_jitter"] for r in rows]))
            print(f"| {method} | {strength} | {_f(mean('pck05'))} | {_f(mean('pck10'))} | {_f(ratio, 2)} | "
                  f"{_f(mean('filled_pck10'))} |")
    print()


def speed(args, folder: Path) -> None:
    from pidm_core.pose import mediapipe_pose
    from pidm_core.pose.video import poses_from_frames
    from pidm_core.video.read import read_frames

    print(f"## Speed at 640x480 ({args.frames} frames per video, seed {args.seeds[0]})\n")
    print("| video | what | frames per second | CPU ms per frame (all threads) |")
    print("|---|---|---|---|")
    for case in ("crossing", "single"):
        path, video = driving_mp4(case, args.seeds[0], args.frames, (640, 480), folder, args.crf)
        start = time.perf_counter()
        count = sum(1 for _ in read_frames(str(path)))
        print(f"| {case} | decoding the mp4 alone (pidm_core.video.read) | {count / (time.perf_counter() - start):.0f} | |")
        frames = [rgb for _, rgb in read_frames(str(path))]
        for video_mode in (False, True):
            for people in (1, 2):
                with mediapipe_pose.open_pose_people(people, video=video_mode) as run:
                    run(frames[0], 0)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    found = sum(len(run(rgb, 40 * (i + 1))) for i, rgb in enumerate(frames))
                    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
                mode = "video" if video_mode else "image"
                print(f"| {case} | MediaPipe alone, {mode} mode, num_poses={people} ({found / len(frames):.2f} "
                      f"people/frame) | {len(frames) / elapsed:.1f} | {1000 * cpu / len(frames):.1f} |")
        del frames
        for video_mode in (True, False):
            for workers in (1, 2):
                best, cpu = 0.0, float("inf")
                for _ in range(args.repeats):  # the best of a few: other work on the machine only slows a run
                    start, start_cpu = time.perf_counter(), time.process_time()
                    result = poses_from_frames(read_frames(str(path)), width=640, height=480, frame_rate=video.fps,
                                               video_mode=video_mode, workers=workers, person=person_setting(video))
                    best = max(best, len(result.poses) / (time.perf_counter() - start))
                    cpu = min(cpu, (time.process_time() - start_cpu) / len(result.poses))
                print(f"| {case} | poses_from_frames from the mp4 (decode, detect, track, smooth), "
                      f"{'video' if video_mode else 'image'} mode, {workers} worker(s), best of {args.repeats} | "
                      f"{best:.1f} | {1000 * cpu:.1f} |")
    print()


def memory_child(frames: int, folder: Path) -> dict:
    from pidm_core.pose.video import poses_from_frames
    from pidm_core.video.read import read_frames

    path = folder / f"long_{frames}_1280x720.mp4"
    before = _status_kib("VmHWM:")
    start = time.perf_counter()
    result = poses_from_frames(read_frames(str(path)), width=1280, height=720, frame_rate=25)
    elapsed = time.perf_counter() - start
    peak = _status_kib("VmHWM:")
    return {"frames": len(result.poses), "peak_mib": peak / 1024, "before_mib": before / 1024,
            "fps": len(result.poses) / elapsed, "found": len(result.found)}


def _status_kib(key: str) -> int:
    """A /proc/self/status value in KiB (VmHWM: this process's peak RSS; unlike ru_maxrss it does not
    carry the parent's peak over a fork and exec)."""
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(key)))


def long_video(frames: int, folder: Path, crf: int) -> Path:
    """A 720p mp4 of ``frames`` frames: the 150-frame 'single' walk at 1280x720, played forwards and
    backwards over and over."""
    from pidm_core.data.synthetic.driving import make_driving_video
    from pidm_core.video.write import VideoWriter

    path = folder / f"long_{frames}_1280x720.mp4"
    if path.is_file():
        return path
    video = make_driving_video("single", 0, 150, (1280, 720))
    loop = [video.images[i] for i in range(150)]
    loop = loop + loop[::-1]
    with VideoWriter(path, 25, crf=crf) as writer:
        for start in range(0, frames, 25):
            writer.write(np.stack([loop[i % len(loop)] for i in range(start, min(frames, start + 25))]))
    return path


def memory(args, folder: Path) -> None:
    print("## Peak memory, 1280x720 mp4 (each length in a fresh process)\n")
    print("| frames | minutes at 25 fps | peak RSS MiB (VmHWM) | peak before the run (imports) MiB | frames per second | person found in |")
    print("|---|---|---|---|---|---|")
    for frames in args.memory_frames:
        long_video(frames, folder, args.crf)
        done = subprocess.run([sys.executable, "-m", "benchmarks.video_poses", "--memory-child", str(frames),
                               "--folder", str(folder)], capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            print(f"| {frames} | failed: {done.stderr.strip().splitlines()[-1]} |||||")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {row['frames']} | {row['frames'] / 25 / 60:.1f} | {row['peak_mib']:.0f} | {row['before_mib']:.0f} | "
              f"{row['fps']:.1f} | {row['found']} |")
    print()


def header() -> None:
    print("# Poses from a driving video\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- python {platform.python_version()}, {platform.platform()}")
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        model = platform.processor()
    print(f"- CPU: {model}, {len(os.sched_getaffinity(0))} cores usable; load average {os.getloadavg()[0]:.2f}")
    import mediapipe

    print(f"- mediapipe {mediapipe.__version__}")
    print(f"- command: `python -m benchmarks.video_poses {' '.join(sys.argv[1:])}`\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["quality", "smoothing", "speed"],
                        choices=["quality", "smoothing", "speed", "memory"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", type=int, nargs=2, default=[640, 480])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--crf", type=int, default=28, help="x264 quality of the encoded driving videos "
                        "(28 as scripts/make_driving_videos.py)")
    parser.add_argument("--repeats", type=int, default=2, help="speed: runs of each setting (the best is shown)")
    parser.add_argument("--no-baseline", action="store_true", help="skip Pose From Image per frame")
    parser.add_argument("--memory-frames", type=int, nargs="+", default=[1500, 6000])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "pidm_video_poses",
                        help="where the encoded videos are kept between runs")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.folder)))
        return
    header()
    raw = {}
    if "quality" in args.sections or "smoothing" in args.sections:
        raw = quality(args, args.folder)
    if "smoothing" in args.sections:
        smoothing_grid(raw)
    if "speed" in args.sections:
        speed(args, args.folder)
    if "memory" in args.sections:
        memory(args, args.folder)


if __name__ == "__main__":
    main()
