"""Person masks (pidm_core.pose.detect): MediaPipe's segmentation of the chosen person, offline, on the
photos of tests/photos/ (OpenCV sample data, Apache-2.0; see tests/photos/SOURCES.md)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pidm_core.pose import NoPersonFoundError, Pose
from pidm_core.pose import detect as detect_module
from pidm_core.pose.detect import detect_people, isolate_person, person_mask

PHOTOS = Path(__file__).resolve().parent / "photos"  # in the repository: a missing photo fails, never skips

from tests.optional import HAVE_MEDIAPIPE
needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="mediapipe not importable (see pidm_core/pose/detect.py)")


def _read_rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _inside(mask: np.ndarray, box) -> float:
    """Share of the mask (≥ 0.5) inside box (x0, y0, x1, y1)."""
    on = mask >= 0.5
    x0, y0, x1, y1 = box
    return on[y0:y1, x0:x1].sum() / max(1, on.sum())


@pytest.fixture(scope="module")
def detections():
    if not HAVE_MEDIAPIPE:
        pytest.skip("needs mediapipe")
    photos = {name: _read_rgb(name) for name in ("messi5.jpg", "basketball1.png")}
    found = {name: detect_people([rgb], backend="mediapipe")[0] for name, rgb in photos.items()}
    return photos, found


@needs_mediapipe
def test_messi_is_cut_out_without_the_ball(detections):
    photos, found = detections
    rgb, det = photos["messi5.jpg"], found["messi5.jpg"]
    mask = det.mask
    assert mask.shape == rgb.shape[:2] and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    on = mask >= 0.5
    assert 0.08 < on.mean() < 0.25  # the player, not the stadium
    # every joint the detector found lies on the mask (or within a few pixels of it)
    near = cv2.dilate(on.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    xy = np.round(det.pose.xy[det.pose.present]).astype(int)
    assert near[xy[:, 1], xy[:, 0]].mean() > 0.9
    # the player's box holds the mask; the ball (at about x 362, y 312) and the crowd's top band do not
    assert _inside(mask, (60, 55, 470, 342)) > 0.99
    assert on[300:325, 345:380].mean() < 0.2
    assert on[:40].sum() == 0
    # soft edge: some values strictly between 0 and 1
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 100


@needs_mediapipe
def test_basketball_mask_is_the_chosen_man_only(detections):
    photos, found = detections
    mask = found["basketball1.png"].mask
    assert mask.shape == (480, 640)
    # the man on the left (x ≈ 40..180) is in it; the man on the right (x > 440) is not
    assert _inside(mask, (0, 0, 230, 480)) > 0.99
    assert (mask[:, 440:] >= 0.5).sum() == 0
    assert (mask[150:420, 60:150] >= 0.5).mean() > 0.5  # his torso and legs


@needs_mediapipe
def test_person_index_picks_the_person_whose_mask_is_returned(detections):
    photos, found = detections
    first = detect_people([photos["basketball1.png"]], backend="mediapipe", person=0)[0]
    np.testing.assert_array_equal(first.mask, found["basketball1.png"].mask)
    with pytest.raises(NoPersonFoundError, match="person 1 requested in image 1 of 1, but mediapipe found 1"):
        detect_people([photos["basketball1.png"]], backend="mediapipe", person=1)


@needs_mediapipe
def test_mask_of_another_person_from_their_pose(detections):
    """The openpose path: MediaPipe on a crop around the chosen person's skeleton gives their mask (here the
    man on the right, cut by the border, whom MediaPipe Pose does not find: selfie segmentation steps in)."""
    photos, _ = detections
    rgb = photos["basketball1.png"]
    kp = np.zeros((18, 3))
    for joint, xy in {0: (522, 110), 1: (565, 150), 2: (525, 185), 3: (515, 290), 4: (450, 240), 5: (620, 170),
                      8: (555, 420), 11: (610, 425)}.items():  # read off the photo by eye
        kp[joint] = (*xy, 1.0)
    mask = person_mask(rgb, Pose(kp, 640, 480))
    assert mask.shape == (480, 640)
    assert _inside(mask, (420, 0, 640, 480)) > 0.95  # him
    assert (mask[:, :250] >= 0.5).sum() == 0  # not the man on the left
    with pytest.raises(ValueError, match="pose is on a 100x100 canvas but the image is 640x480"):
        person_mask(rgb, Pose(kp, 100, 100))
    with pytest.raises(ValueError, match="the pose has no joints"):
        person_mask(rgb, Pose(np.zeros((18, 3)), 640, 480))


@needs_mediapipe
def test_openpose_backend_gets_masks_through_mediapipe(monkeypatch, detections):
    photos, found = detections
    rgb = photos["messi5.jpg"]
    pose = found["messi5.jpg"].pose

    class FakeOpenPose:  # the openpose backend without its weights: it "finds" MediaPipe's pose
        def __enter__(self):
            return lambda image: [pose.keypoints.astype(np.float64)]

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(detect_module, "open_detector", lambda *args: FakeOpenPose())
    det = detect_people([rgb], backend="openpose")[0]
    assert det.mask is not None and det.mask.shape == rgb.shape[:2]
    on, reference = det.mask >= 0.5, found["messi5.jpg"].mask >= 0.5
    assert (on & reference).sum() / (on | reference).sum() > 0.8  # nearly the same cut-out


def test_masks_are_left_out_without_mediapipe(monkeypatch, caplog):
    class FakeDetector:
        def __enter__(self):
            def detect(image):
                joints = np.zeros((18, 3))
                joints[[1, 2, 5, 8, 11]] = [[20, 10, 1], [15, 10, 1], [25, 10, 1], [17, 30, 1], [23, 30, 1]]
                return [joints]
            return detect

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(detect_module, "open_detector", lambda *args: FakeDetector())
    monkeypatch.setattr(detect_module.mediapipe_pose, "why_unavailable", lambda api="auto": "MediaPipe cannot be imported")
    det = detect_people([np.zeros((40, 40, 3), np.uint8)], backend="openpose")[0]
    assert det.mask is None and "person masks need MediaPipe" in caplog.text


def test_isolate_person_keeps_the_regions_under_the_skeleton():
    mask = np.zeros((60, 80), np.float32)
    mask[10:50, 10:25] = 1.0  # this person
    mask[10:50, 50:70] = 0.9  # somebody else
    mask[5:8, 5:8] = 0.3  # faint noise below 0.5
    joints = np.zeros((18, 3))
    joints[1] = (17, 15, 1)
    joints[8] = (15, 35, 1)
    joints[11] = (20, 35, 1)
    kept = isolate_person(mask, Pose(joints, 80, 60))
    assert kept[10:50, 10:25].min() == 1.0 and kept[:, 45:].max() == 0.0
    # a mask that touches no joint is returned as it is (nothing better to go on)
    away = np.zeros((18, 3))
    away[1] = (40, 55, 1)
    away[8] = (41, 58, 1)
    np.testing.assert_array_equal(isolate_person(mask, Pose(away, 80, 60)), mask)
