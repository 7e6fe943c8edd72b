"""Synthetic driving videos (pidm_core.data.synthetic.driving): the truth says what the frames show,
the walkers walk, each case holds what it promises, the files decode, and MediaPipe finds the people."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pidm_core.data.synthetic.driving import (
    DRIVING_CASES,
    GAIT_PERIOD_S,
    DrivingTruth,
    DrivingVideo,
    make_driving_video,
)
from pidm_core.pose.keypoints import JOINT_NAMES

J = {name: i for i, name in enumerate(JOINT_NAMES)}
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(frames=60, size=(320, 240))


@pytest.fixture(scope="module")
def small():
    return {case: make_driving_video(case, seed=0, **SMALL) for case in DRIVING_CASES}


def _hip_x(video: DrivingVideo, person: int = 0) -> np.ndarray:
    return video.keypoints[:, person, [J["right_hip"], J["left_hip"]], 0].mean(axis=1)


def _visible(video: DrivingVideo, person: int = 0) -> np.ndarray:
    return (video.keypoints[:, person, :, 2] > 0).sum(axis=1)


def test_truth_shapes_and_values(small):
    for case, video in small.items():
        assert isinstance(video.truth(), DrivingTruth)
        people = 2 if case == "crossing" else 1
        assert video.keypoints.shape == (60, people, 18, 3) and video.keypoints.dtype == np.float32
        assert set(np.unique(video.keypoints[..., 2])) <= {0.0, 1.0}
        assert video.target == 0 and video.fps == 25 and (video.width, video.height) == (320, 240)
        assert len(video.images) == 60
        frame = video.images[7]
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        # Standing heights of half to three quarters of the frame, as the brief for MediaPipe asks.
        assert np.all((0.5 * 240 <= video.person_heights) & (video.person_heights <= 0.75 * 240))
        visible = video.keypoints[..., 2] > 0
        xy = video.keypoints[..., :2][visible]
        assert xy[:, 0].min() >= 0 and xy[:, 0].max() <= 319 and xy[:, 1].min() >= 0 and xy[:, 1].max() <= 239


def test_deterministic_and_seeded():
    a = make_driving_video("crossing", seed=3, **SMALL)
    b = make_driving_video("crossing", seed=3, **SMALL)
    c = make_driving_video("crossing", seed=4, **SMALL)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.images[30], b.images[30])
    assert not np.array_equal(a.images[30], c.images[30])


def test_the_truth_lies_on_the_drawn_person(small):
    # Where the truth puts the target's neck and hips, the frame differs from the same frame's backdrop
    # seen elsewhere in the video (a pixel the person covers changes as they walk past it).
    video = small["single"]
    frames = np.stack([video.images[t] for t in range(0, 60, 2)]).astype(np.int16)
    backdrop = np.median(frames, axis=0)
    hits = []
    for k, t in enumerate(range(0, 60, 2)):
        for joint in ("neck", "right_hip", "left_hip"):
            x, y, c = video.keypoints[t, 0, J[joint]]
            if c > 0:
                hits.append(np.abs(frames[k, int(round(y)), int(round(x))] - backdrop[int(round(y)), int(round(x))]).sum() > 30)
    assert np.mean(hits) > 0.9


def test_walkers_walk_with_a_periodic_gait():
    video = make_driving_video("single", seed=1, frames=150)
    hip_x = _hip_x(video)
    assert hip_x[60] - hip_x[0] > 0.3 * video.width  # walks right across the frame, then back
    assert hip_x[-1] < hip_x[90] - 0.2 * video.width
    # The ankles swing about the hips with the gait period: their distance along x (relative to the
    # hips) repeats after one period and is opposite after half of one.
    ankles = video.keypoints[:, 0, [J["right_ankle"], J["left_ankle"]], 0] - hip_x[:, None]
    stride = ankles[:, 0] - ankles[:, 1]
    period = GAIT_PERIOD_S * video.fps
    walking = np.arange(5, 38)  # first leg of the walk: one period later is still before the turn (frame 67)
    shifted = np.interp(walking + period, np.arange(150), stride)
    half = np.interp(walking + period / 2, np.arange(150), stride)
    assert np.abs(stride[walking]).max() > 0.1 * video.person_heights[0]
    assert np.abs(shifted - stride[walking]).mean() < 0.25 * np.abs(stride[walking]).mean()
    assert np.corrcoef(half, stride[walking])[0, 1] < -0.8
    # The arms swing against the legs of the same side.
    wrists = video.keypoints[:, 0, [J["right_wrist"], J["left_wrist"]], 0] - hip_x[:, None]
    assert np.corrcoef(wrists[walking, 0] - wrists[walking, 1], stride[walking])[0, 1] < -0.5


def test_front_and_back_views_mirror_the_sides(small):
    # Facing the camera a person's right shoulder is on the image left; from behind, on the image right.
    video = small["single"]
    shoulders = video.keypoints[:, 0, [J["right_shoulder"], J["left_shoulder"]], 0]
    front = shoulders[:15, 0] < shoulders[:15, 1]
    back = shoulders[-15:, 0] > shoulders[-15:, 1]
    assert front.all() and back.all()
    assert (video.keypoints[-15:, 0, J["nose"], 2] == 0).all()  # no face from behind
    assert (video.keypoints[:15, 0, J["nose"], 2] == 1).all()


def test_crossing(small):
    video = small["crossing"]
    target, other = _hip_x(video, 0), _hip_x(video, 1)
    assert target[0] < other[0] and target[-1] > other[-1]  # they swap sides
    crossing = int(np.argmin(np.abs(target - other)))
    assert 20 < crossing < 40
    # The other walker passes in front: at the crossing some of the target's joints are hidden.
    assert _visible(video, 0)[crossing] < _visible(video, 0)[0]
    assert video.blank_frames == video.occluded_frames == video.absent_frames == ()


def test_occluded(small):
    video = small["occluded"]
    assert len(video.blank_frames) >= 2
    for t in video.blank_frames:
        assert video.images[t].max() == 0 and (video.keypoints[t, :, :, 2] == 0).all()
    occluded = np.array(video.occluded_frames)
    assert 3 <= len(occluded) < 30 and not set(occluded) & set(video.blank_frames)
    assert _visible(video)[occluded].min() < 4  # wholly behind the pillar at some point
    clear = np.setdiff1d(np.arange(60), np.concatenate([occluded, video.blank_frames]))
    assert _visible(video)[clear].min() >= 12


def test_leave_return(small):
    video = small["leave_return"]
    absent = np.array(video.absent_frames)
    assert len(absent) >= 5 and np.all(np.diff(absent) == 1)  # one stretch out of the frame
    assert (video.keypoints[absent, 0, :, 2] == 0).all()
    assert _visible(video)[: absent[0] - 8].min() >= 10 and _visible(video)[absent[-1] + 8 :].min() >= 10
    before, after = video.keypoints[absent[0] - 10, 0], video.keypoints[absent[-1] + 10, 0]
    assert before[J["nose"], 2] == 1 and after[J["nose"], 2] == 0  # leaves facing the camera, returns from behind


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown driving video case 'dance'"):
        make_driving_video("dance")
    for bad in (dict(frames=3), dict(frames=12.5), dict(size=(640,)), dict(size=(10, 480)), dict(fps=0)):
        with pytest.raises(ValueError):
            make_driving_video("single", **bad)


def test_files_decode_with_their_truth(tmp_path):
    pytest.importorskip("av")
    from pidm_core.data.synthetic.driving_files import load_truth, write_driving_case
    from pidm_core.video.read import probe, read_frames

    # A width that is a multiple of 128 encodes to the same bytes every time (driving_files).
    mp4, npz = write_driving_case(tmp_path, "occluded", seed=2, frames=20, size=(256, 192), fps=20)
    assert mp4.name == "driving_occluded_seed2.mp4" and npz.name == "driving_occluded_seed2.npz"
    info = probe(mp4)
    assert (info.width, info.height, info.frame_count, info.frame_rate, info.codec) == (256, 192, 20, 20, "h264")
    truth = load_truth(npz)
    video = make_driving_video("occluded", seed=2, frames=20, size=(256, 192), fps=20)
    np.testing.assert_array_equal(truth.keypoints, video.keypoints)
    assert truth.blank_frames == video.blank_frames and truth.case == "occluded" and truth.seed == 2
    frames = dict(read_frames(mp4))
    assert len(frames) == 20
    error = np.abs(frames[5].astype(int) - video.images[5].astype(int)).mean()
    assert 0.3 < error < 12  # lossy, but the same picture
    again, again_npz = write_driving_case(tmp_path / "again", "occluded", seed=2, frames=20, size=(256, 192), fps=20)
    assert again.read_bytes() == mp4.read_bytes() and again_npz.read_bytes() == npz.read_bytes()


def test_script_writes_every_case(tmp_path):
    pytest.importorskip("av")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_driving_videos", ROOT / "scripts" / "make_driving_videos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--frames", "12", "--width", "96", "--height", "64"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"driving_{case}_seed0.{ext}" for case in DRIVING_CASES for ext in ("mp4", "npz"))
    from pidm_core.video.read import probe

    assert not probe(tmp_path / "driving_single_seed0.mp4").has_audio
    assert module.main(["--out", str(tmp_path / "sound"), "--cases", "single", "--frames", "12", "--width", "128",
                        "--height", "96", "--audio"]) == 0
    info = probe(tmp_path / "sound" / "driving_single_seed0.mp4")
    assert info.has_audio and info.frame_count == 12


def test_bundled_example_clip():
    pytest.importorskip("av")
    from pidm_core.video.read import probe, read_audio, read_frames

    path = ROOT / "assets" / "pidm_driving_walk.mp4"
    info = probe(path)
    assert (info.width, info.height, info.frame_count, info.frame_rate) == (384, 288, 42, 12)
    assert info.has_audio and not info.variable_frame_rate
    assert len(list(read_frames(path, step=7))) == 6
    waveform, rate = read_audio(path)
    assert rate == 22050 and waveform.shape[0] == 1
    assert 3.4 < waveform.shape[1] / rate < 3.7 and 0.1 < np.abs(waveform).max() < 0.8
    assert path.stat().st_size < 400 * 1024


def test_mediapipe_finds_the_walkers():
    pytest.importorskip("mediapipe")
    from pidm_core.pose.detect import detect_people

    torso = [J["neck"], J["right_shoulder"], J["left_shoulder"], J["right_hip"], J["left_hip"]]
    found = {}
    for case in ("single", "crossing"):
        video = make_driving_video(case, seed=0)
        times = [t for t in range(5, 150, 18) if _visible(video)[t] >= 12]
        detections = detect_people([video.images[t] for t in times], backend="mediapipe", masks=False)
        hits = 0
        for t, detection in zip(times, detections):
            keypoints = detection.pose.keypoints
            seen = keypoints[torso, 2] > 0
            if seen.sum() >= 2:
                centre = keypoints[torso][seen, :2].mean(axis=0)
                # Either walker counts: detect_people gives the largest person, not necessarily the target.
                for person in range(video.keypoints.shape[1]):
                    truth = video.keypoints[t, person, torso, :2].mean(axis=0)
                    if np.linalg.norm(centre - truth) < 0.15 * video.person_heights[person]:
                        hits += 1
                        break
        found[case] = (hits, len(times))
    for case, (hits, total) in found.items():
        assert hits >= math.ceil(0.75 * total), found
