"""Following one person through synthetic keypoint tracks: crossings, side swaps, dropouts, leaving and
coming back. The 'detector' here is the truth plus noise, so no pose model is needed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pidm_core.pose.keypoints import FLIP_PERMUTATION
from pidm_core.pose.track import (
    SIDE_GROUPS,
    PersonTracker,
    clothes_histogram,
    colour_distance,
    fill_joint_gaps,
    flip_group,
    hold_or_empty,
)
from tests.poses import standing_pose

WIDTH, HEIGHT, FPS = 320, 240, 25.0
COLOURS = {0: (200, 40, 40), 1: (40, 60, 200)}  # the followed walker in red, the other in blue


def walker(frames: int, start_x: float, speed: float, height: float = 150.0, phase: float = 0.0) -> np.ndarray:
    """Truth [frames, 18, 3] of a standing figure gliding sideways with swinging arms and legs."""
    base = standing_pose(48, 64).keypoints.astype(np.float64)
    scale = height / 64
    out = np.zeros((frames, 18, 3))
    for t in range(frames):
        joints = base.copy()
        swing = 3.0 * np.sin(0.4 * t + phase)
        joints[[4, 10], 0] += swing  # right wrist and ankle one way,
        joints[[7, 13], 0] -= swing  # left ones the other
        joints[:, :2] = (joints[:, :2] - (24, 0)) * scale + (start_x + speed * t, 30)
        out[t] = joints
    return out


def render(people: list[np.ndarray], order: list[int], rng: np.random.Generator) -> np.ndarray:
    """A noisy backdrop with each person's torso and thighs painted in their colour (back to front)."""
    frame = rng.integers(90, 160, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for who in order:
        xy = people[who][:, :2]
        colour = COLOURS[who]
        cv2.fillPoly(frame, [np.round(xy[[2, 5, 11, 8]]).astype(np.int32)], colour)
        for hip, knee in ((8, 9), (11, 12)):
            cv2.line(frame, tuple(np.round(xy[hip]).astype(int)), tuple(np.round(xy[knee]).astype(int)), colour, 12)
    return frame


def detections(truth: np.ndarray, rng: np.random.Generator, noise: float = 1.5, swap_rate: float = 0.3) -> np.ndarray:
    """Truth plus noise, with each side group swapped in a share of frames (as detectors do)."""
    seen = truth.copy()
    seen[:, :, :2] += rng.normal(0, noise, seen[:, :, :2].shape)
    seen[:, :, 2] = 0.9
    for group in SIDE_GROUPS:
        for t in np.nonzero(rng.random(len(truth)) < swap_rate)[0]:
            seen[t] = flip_group(seen[t], group)
    return seen


def crossing(frames: int = 100, seed: int = 0):
    """Walker 0 left to right, walker 1 right to left in front of them; at the crossing only the front
    one is detected; walker 0 is also missing in frames 70-73. Returns (frames, people per frame, truth)."""
    rng = np.random.default_rng(seed)
    truth = [walker(frames, 30, 2.6), walker(frames, 290, -2.6, phase=1.0)]
    seen = [detections(t, rng) for t in truth]
    centre_gap = np.abs(truth[0][:, 1, 0] - truth[1][:, 1, 0])
    hidden = set(np.nonzero(centre_gap < 25)[0]) | {70, 71, 72, 73}
    images, people = [], []
    for t in range(frames):
        frame_people = [seen[1][t]] + ([] if t in hidden else [seen[0][t]])
        rng.shuffle(frame_people)  # detectors give people in no useful order
        images.append(render([truth[0][t], truth[1][t]], [0, 1], rng))
        people.append(frame_people)
    return images, people, truth[0], sorted(hidden)


def run(images, people, person="largest", max_gap=6, long_gaps="hold"):
    tracker = PersonTracker(WIDTH, HEIGHT, FPS, person)
    for image, frame_people in zip(images, people):
        tracker.update(frame_people, image)
    return tracker.finish(max_gap, long_gaps)


def side_errors(keypoints: np.ndarray, truth: np.ndarray) -> int:
    """Frames × groups where the mirrored labelling is closer to the truth than the one given."""
    errors = 0
    for t in range(len(truth)):
        if not (keypoints[t, :, 2] > 0).any():
            continue
        for group, joints in SIDE_GROUPS.items():
            joints = list(joints)
            direct = np.linalg.norm(keypoints[t, joints, :2] - truth[t, joints, :2], axis=1).mean()
            mirrored = np.linalg.norm(keypoints[t, [FLIP_PERMUTATION[j] for j in joints], :2]
                                      - truth[t, joints, :2], axis=1).mean()
            errors += mirrored < direct
    return errors


def test_follows_the_person_through_a_crossing_and_keeps_sides():
    images, people, truth, hidden = crossing()
    track = run(images, people, person=0, max_gap=10)  # walker 0 starts on the left
    error = np.linalg.norm(track.keypoints[:, :, :2] - truth[:, :, :2], axis=2)
    assert track.chosen_at == 0
    assert set(np.nonzero(~track.found)[0]) == set(hidden), "someone else was taken for the person"
    assert error[track.found].max() < 12, "a found frame is far from the person's joints"
    assert sorted(track.filled) == hidden and track.held == [] and track.empty == []
    assert error[hidden].mean() < 8, "frames filled from the neighbours are far from the truth"
    assert side_errors(track.keypoints, truth) == 0
    assert track.refused, "the walker in front was not recognised as someone else"


def test_without_colours_the_front_walker_is_taken_at_the_crossing():
    # what the colour cue is for: the same frames without images follow the wrong walker
    images, people, truth, hidden = crossing()
    track = run([None] * len(images), people, person=0)
    error = np.linalg.norm(track.keypoints[:, :, :2] - truth[:, :, :2], axis=2).mean(axis=1)
    assert (error > 30).any()


def test_person_by_index_left_to_right():
    images, people, truth, _ = crossing()
    right = run(images, people, person=1)
    assert right.found.sum() == len(images)  # walker 1 is in front: never hidden
    assert abs(right.keypoints[0, 1, 0] - 290) < 10


def test_index_counts_people_where_most_are_seen_and_earlier_frames_are_followed_back():
    images, people, truth, _ = crossing(40)
    # frames 5-9 show only the walker on the right (the left one missed): "person 1" is not defined there
    right = [max(p, key=lambda joints: joints[1, 0]) for p in people[5:10]]
    people = [[] for _ in range(5)] + [[r] for r in right] + people[10:]
    track = run(images, people, person=1)
    assert track.chosen_at == 10  # the first frame showing both
    assert track.found[5:10].all(), "the frames before the choice were not followed backwards"
    assert track.held == list(range(5))
    assert np.array_equal(track.keypoints[0], track.keypoints[5])
    assert abs(track.keypoints[10, 1, 0] - 290 + 2.6 * 10) < 10


def test_never_found_is_an_error():
    tracker = PersonTracker(WIDTH, HEIGHT, FPS)
    for _ in range(5):
        tracker.update([], None)
    with pytest.raises(ValueError, match="no person to follow: nobody found in 5 frame"):
        tracker.finish(3)
    tracker = PersonTracker(WIDTH, HEIGHT, FPS, person=2)
    tracker.update([walker(1, 50, 0)[0]], None)
    with pytest.raises(ValueError, match="never 3 people at once"):
        tracker.finish(3)


def test_long_gaps_held_or_empty():
    truth = walker(30, 60, 1.0)
    people = [[truth[t]] if not 10 <= t < 20 else [] for t in range(30)]
    held = run([None] * 30, people, max_gap=4)
    assert held.held == list(range(10, 20)) and held.filled == []
    assert np.array_equal(held.keypoints[12], held.keypoints[9]) and np.array_equal(held.keypoints[17], held.keypoints[20])
    empty = run([None] * 30, people, max_gap=4, long_gaps="empty")
    assert empty.empty == list(range(10, 20)) and not (empty.keypoints[10:20, :, 2] > 0).any()
    filled = run([None] * 30, people, max_gap=10)
    assert filled.filled == list(range(10, 20))
    steady = [j for j in range(18) if j not in (4, 7, 10, 13)]  # joints moving in a straight line: exact
    assert np.abs(filled.keypoints[15, steady, :2] - truth[15, steady, :2]).max() < 1e-3


def test_leaving_and_coming_back_while_someone_else_stays():
    rng = np.random.default_rng(3)
    frames = 140
    stay = walker(frames, 240, 0.0, phase=2.0)  # walker 1 stands on the right all along
    away = walker(frames, 40, 0.0)
    away[:, :, 0] += np.where(np.arange(frames) < 30, 0, np.where(np.arange(frames) < 100, 1000, 30))[:, None]
    present = (np.arange(frames) < 30) | (np.arange(frames) >= 100)
    images = [render([away[t], stay[t]], [1, 0] if present[t] else [1], rng) for t in range(frames)]
    seen_away, seen_stay = detections(away, rng), detections(stay, rng)
    people = [[seen_stay[t]] + ([seen_away[t]] if present[t] else []) for t in range(frames)]
    track = run(images, people, person=0, max_gap=5)
    assert np.array_equal(track.found, present), "the person who stayed was taken while the other was away"
    assert track.held == list(range(30, 100))
    assert np.abs(track.keypoints[120, 1, 0] - away[120, 1, 0]) < 8


def test_clothes_histogram_tells_people_apart_and_is_bounded():
    rng = np.random.default_rng(0)
    a, b = walker(1, 80, 0)[0], walker(1, 230, 0)[0]
    frame = render([a, b], [0, 1], rng)
    same = colour_distance(clothes_histogram(frame, a), clothes_histogram(render([a, b], [0, 1], rng), a))
    other = colour_distance(clothes_histogram(frame, a), clothes_histogram(frame, b))
    assert same < 0.2 < 0.6 < other
    hidden = a.copy()
    hidden[:, 2] = 0
    assert clothes_histogram(frame, hidden) is None and colour_distance(None, clothes_histogram(frame, a)) is None
    big = cv2.resize(frame, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)  # a 2560 px frame
    scaled = a.copy()
    scaled[:, :2] = (scaled[:, :2] + 0.5) * 8 - 0.5
    assert colour_distance(clothes_histogram(big, scaled), clothes_histogram(frame, a)) < 0.2


def test_fill_joint_gaps_only_short_ones():
    keypoints = np.zeros((10, 18, 3), np.float32)
    keypoints[:, :, 2] = 0.8
    keypoints[:, :, 0] = np.arange(10)[:, None] * 2.0
    keypoints[3:5, 4] = 0  # a wrist missing for 2 frames
    keypoints[1:9, 7] = 0  # the other for 8
    keypoints[4, 7, 2] = 0
    out = fill_joint_gaps(keypoints, 3)
    assert np.allclose(out[3:5, 4, 0], [6, 8]) and (out[3:5, 4, 2] == pytest.approx(0.8))
    assert not (out[1:9, 7, 2] > 0).any()
    unchanged, missing = hold_or_empty(out, "hold")
    assert missing == [] and np.array_equal(unchanged, out)


def test_bad_settings():
    with pytest.raises(ValueError, match="person must be"):
        PersonTracker(WIDTH, HEIGHT, FPS, person=-1)
    with pytest.raises(ValueError, match="frame_rate"):
        PersonTracker(WIDTH, HEIGHT, 0)
    tracker = PersonTracker(WIDTH, HEIGHT, FPS)
    tracker.update([walker(1, 50, 0)[0]], None)
    with pytest.raises(ValueError, match="max_gap"):
        tracker.finish(-1)
    with pytest.raises(ValueError, match="long_gaps"):
        tracker.finish(2, "drop")
