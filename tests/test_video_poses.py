"""poses_from_frames: frames in, one followed person's poses out; progress, interruption, bad input, and
memory that does not hold the frames. A stand-in detector replays synthetic people (tests/test_pose_track.py);
a few frames go through MediaPipe for real."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from pidm_core.pose.people import open_people_detector, shrink_for_detection
from pidm_core.pose.video import VideoPoses, poses_from_frames
from tests.optional import HAVE_MEDIAPIPE
from tests.test_pose_track import FPS, HEIGHT, WIDTH, crossing

PHOTOS = Path(__file__).resolve().parent / "photos"


class Replay:
    """A detector that gives, call after call, the people listed for each frame."""

    backend = "replay"

    def __init__(self, people):
        self.people, self.calls = list(people), 0

    def __call__(self, rgb):
        self.calls += 1
        return self.people[self.calls - 1]


def frames_of(images, first_index=0, step=1):
    for position, image in enumerate(images):
        yield first_index + position * step, image


def test_follows_one_person_and_reports_the_filled_frames():
    images, people, truth, hidden = crossing()
    progress = []
    result = poses_from_frames(frames_of(images, 10, 2), width=WIDTH, height=HEIGHT, frame_rate=FPS, person=0,
                               max_gap=10, detector=Replay(people), callback=lambda done, total: progress.append((done, total)),
                               total=len(images), name="video 'walk.mp4'")
    assert isinstance(result, VideoPoses) and len(result.poses) == len(images)
    assert result.frame_indices == list(range(10, 10 + 2 * len(images), 2))
    assert result.filled == hidden and result.held == [] and result.empty == []
    assert sorted(set(result.found) | set(hidden)) == list(range(len(images)))
    assert progress == [(i + 1, len(images)) for i in range(len(images))]
    assert result.backend == "replay" and result.frame_rate == FPS
    assert all((p.width, p.height) == (WIDTH, HEIGHT) for p in result.poses)
    error = np.array([np.linalg.norm(p.xy - truth[t, :, :2], axis=1).mean() for t, p in enumerate(result.poses)])
    assert error.max() < 10
    assert "filled: 102-118, 150-156" in result.summary()  # video frame indices (step 2 from 10)


def test_an_exception_in_the_callback_stops_the_run():
    images, people, _, _ = crossing(30)
    consumed = []

    def frames():
        for i, image in enumerate(images):
            consumed.append(i)
            yield i, image

    def stop(done, total):
        if done == 5:
            raise KeyboardInterrupt("interrupted")

    with pytest.raises(KeyboardInterrupt):
        poses_from_frames(frames(), width=WIDTH, height=HEIGHT, frame_rate=FPS, detector=Replay(people), callback=stop)
    assert consumed == list(range(5))


def test_the_frames_are_not_kept():
    # 200 frames of 640x480 are 184 MB; the run must hold one at a time
    person = crossing(1)[1][0][0] * 2

    def frames():
        for i in range(200):
            yield i, np.full((480, 640, 3), i % 250, np.uint8)

    tracemalloc.start()
    try:
        result = poses_from_frames(frames(), width=640, height=480, frame_rate=FPS,
                                   detector=lambda rgb: [person], smoothing=0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result.poses) == 200
    assert peak < 12 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"


def test_bad_input_names_the_video():
    images, people, _, _ = crossing(5)
    kwargs = dict(width=WIDTH, height=HEIGHT, frame_rate=FPS, name="video 'walk.mp4'")
    with pytest.raises(ValueError, match=r"video 'walk.mp4' has no frames"):
        poses_from_frames(iter(()), detector=Replay([]), **kwargs)
    with pytest.raises(ValueError, match=r"no person found in video 'walk.mp4': nobody found in 5 frame"):
        poses_from_frames(frames_of(images), detector=lambda rgb: [], **kwargs)
    wrong = [images[0], images[1][:100]]
    with pytest.raises(ValueError, match=r"video 'walk.mp4': frame 1 is uint8 \(100, 320, 3\)"):
        poses_from_frames(frames_of(wrong), detector=Replay(people), **kwargs)
    with pytest.raises(ValueError, match="frame rate"):
        poses_from_frames(frames_of(images), detector=Replay(people), **{**kwargs, "frame_rate": 0})
    never = Replay([])  # settings are refused before the first frame is looked at
    with pytest.raises(ValueError, match="smoothing strength"):
        poses_from_frames(frames_of(images), detector=never, smoothing=2, **kwargs)
    with pytest.raises(ValueError, match="smoothing method"):
        poses_from_frames(frames_of(images), detector=never, smoothing_method="kalman", **kwargs)
    with pytest.raises(ValueError, match="max_gap"):
        poses_from_frames(frames_of(images), detector=never, max_gap=-1, **kwargs)
    with pytest.raises(ValueError, match="long_gaps"):
        poses_from_frames(frames_of(images), detector=never, long_gaps="drop", **kwargs)
    with pytest.raises(ValueError, match="person must be"):
        poses_from_frames(frames_of(images), detector=never, person="tallest", **kwargs)
    assert never.calls == 0


def test_shrinking_for_detection():
    frame = np.zeros((2160, 3840, 3), np.uint8)
    small, scale = shrink_for_detection(frame, 640)
    assert small.shape == (360, 640, 3) and scale == pytest.approx(1 / 6)
    same, one = shrink_for_detection(frame[:480, :640], 640)
    assert one == 1.0 and same.shape == (480, 640, 3)


def test_people_detector_settings_are_checked():
    with pytest.raises(ValueError, match="max_people"):
        with open_people_detector("mediapipe", max_people=0):
            pass
    with pytest.raises(ValueError, match="threshold"):
        with open_people_detector("mediapipe", threshold=1.5):
            pass
    with pytest.raises(ValueError, match="pose backend"):
        with open_people_detector("yolo"):
            pass


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="needs mediapipe")
def test_mediapipe_people_in_a_large_frame_land_where_they_are_in_the_small_one():
    photo = cv2.cvtColor(cv2.imread(str(PHOTOS / "basketball1.png")), cv2.COLOR_BGR2RGB)  # 640x480
    large = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    with open_people_detector("mediapipe", max_people=2) as detect:
        small_people, large_people = detect(photo), detect(large)
    assert len(small_people) >= 1 and len(large_people) == len(small_people)
    a, b = small_people[0], large_people[0]
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    assert both.sum() >= 12
    # the left man's nose and ankles, read off the photo (tests/test_pose_detect.py)
    assert np.linalg.norm(a[0, :2] - (97, 116)) < 15
    assert np.median(np.linalg.norm(b[both, :2] / 3 - a[both, :2], axis=1)) < 4


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="needs mediapipe")
def test_mediapipe_video_of_a_few_frames():
    photo = cv2.cvtColor(cv2.imread(str(PHOTOS / "basketball1.png")), cv2.COLOR_BGR2RGB)
    frames = [np.roll(photo, 4 * i, axis=1) for i in range(6)]  # the scene panning right
    result = poses_from_frames(frames_of(frames), width=640, height=480, frame_rate=25, backend="mediapipe")
    assert len(result.poses) == 6 and result.backend == "mediapipe"
    noses = np.array([p.xy[0] for p in result.poses])
    assert np.all(np.abs(noses[:, 0] - (97 + 4 * np.arange(6))) < 15)


def test_stream_detects_in_parallel_and_gives_frames_in_order():
    import threading
    import time

    from pidm_core.pose.people import PeopleDetector

    person = crossing(1)[1][0][0]
    calls = {0: [], 1: []}

    def worker(k):
        def raw(rgb, number):
            calls[k].append((number, threading.get_ident()))
            time.sleep(0.002 * (number % 3))  # finish out of order
            shifted = person.copy()
            shifted[:, 0] += rgb[0, 0, 0]  # the frame's mark moves the person
            return [shifted]
        return raw

    detector = PeopleDetector("fake", [worker(0), worker(1)], 640, 0.3, 2)
    read = []

    def frames():
        for i in range(20):
            read.append(i)
            yield i, np.full((HEIGHT, WIDTH, 3), i, np.uint8)

    out = []
    for index, rgb, people in detector.stream(frames()):
        assert len(read) - index <= 2, "more frames read than workers"
        out.append((index, people[0][1, 0] - person[1, 0], int(rgb[0, 0, 0])))
    assert out == [(i, pytest.approx(i, abs=1e-3), i) for i in range(20)]
    for k in (0, 1):  # each worker's model sees its frames in order (video mode's timestamps grow)
        numbers = [n for n, _ in calls[k]]
        assert numbers == sorted(numbers) and len(numbers) == 10
