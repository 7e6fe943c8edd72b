"""Pose detection on real photos (MediaPipe) and the OpenPose backend's offline behaviour.

Photos: tests/photos/ (OpenCV sample data, Apache-2.0; see tests/photos/SOURCES.md). Expected joint
positions were checked by eye on the photos.
"""

import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from pidm_core.pose import (
    JOINT_NAMES,
    NoPersonFoundError,
    Pose,
    PoseDetectorUnavailableError,
    detect_poses,
    find_openpose_weights,
    resolve_backend,
    to_rgb_uint8,
)
from pidm_core.pose import detect as detect_module


PHOTOS = Path(__file__).resolve().parent / "photos"  # in the repository: a missing photo fails, never skips

from tests.optional import HAVE_MEDIAPIPE
needs_mediapipe = pytest.mark.skipif(
    not HAVE_MEDIAPIPE,
    reason="mediapipe not importable: python install.py (see pidm_core/pose/mediapipe_pose.py)",
)

J = {name: i for i, name in enumerate(JOINT_NAMES)}

# Positions (x, y) in pixels read off the photos by eye.
BASKETBALL_LEFT_MAN = {"nose": (97, 116), "right_ankle": (65, 449), "left_ankle": (121, 440)}
MESSI = {
    "nose": (250, 113), "right_wrist": (101, 101), "left_wrist": (349, 166),
    "right_ankle": (283, 310), "left_ankle": (406, 262),
}  # fmt: skip
TOLERANCE_PX = 15


def _read_rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _assert_near(pose: Pose, expected: dict, tolerance: float = TOLERANCE_PX) -> None:
    for name, xy in expected.items():
        assert pose.present[J[name]], f"{name} not detected"
        distance = np.hypot(*(pose.xy[J[name]] - np.array(xy)))
        assert distance <= tolerance, f"{name} at {pose.xy[J[name]]}, expected near {xy}"


@pytest.fixture(scope="module")
def photo_poses():
    if not HAVE_MEDIAPIPE:
        pytest.skip("needs mediapipe")
    basketball_grey = cv2.imread(str(PHOTOS / "basketball1.png"), cv2.IMREAD_GRAYSCALE)  # [H, W] input
    messi = _read_rgb("messi5.jpg")
    poses = detect_poses([basketball_grey, messi], backend="mediapipe")
    return dict(zip(("basketball", "messi"), poses))


# --------------------------------------------------------------------------------------------------
# MediaPipe on real photos


@needs_mediapipe
def test_basketball_left_man(photo_poses):
    pose = photo_poses["basketball"]
    assert (pose.width, pose.height) == (640, 480)
    assert pose.present[[J["nose"], J["right_ankle"], J["left_ankle"]]].all()
    assert pose.xy[J["nose"], 0] < 200  # the man standing on the left
    for ankle in ("right_ankle", "left_ankle"):
        assert 430 <= pose.xy[J[ankle], 1] <= 460
    _assert_near(pose, BASKETBALL_LEFT_MAN)


@needs_mediapipe
def test_messi_main_person(photo_poses):
    pose = photo_poses["messi"]
    assert (pose.width, pose.height) == (548, 342)
    assert pose.present.sum() >= 14
    _assert_near(pose, MESSI)
    assert np.isfinite(pose.keypoints).all()


@needs_mediapipe
def test_rgba_and_float_inputs_give_the_same_pose(photo_poses):
    messi = _read_rgb("messi5.jpg")
    rgba_float = np.concatenate([messi, np.full(messi.shape[:2] + (1,), 255, np.uint8)], axis=2) / 255.0
    (pose,) = detect_poses(np.stack([rgba_float]), backend="mediapipe")  # a [B, H, W, 4] batch
    np.testing.assert_allclose(pose.xy, photo_poses["messi"].xy, atol=1.0)


@needs_mediapipe
def test_person_cut_by_the_bottom_border(photo_poses):
    # The left man cropped at y = 300 (mid-thigh): feet are not in the picture, so not in the pose.
    crop = _read_rgb("basketball1.png")[:300]
    (pose,) = detect_poses([crop], backend="mediapipe")
    assert not pose.present[[J["right_ankle"], J["left_ankle"]]].any()
    assert pose.xy[pose.present, 1].max() <= 299.5  # nothing guessed beyond the border is kept
    _assert_near(pose, {"nose": photo_poses["basketball"].xy[J["nose"]]}, tolerance=6)
    assert pose.present[[J["neck"], J["right_shoulder"], J["left_shoulder"]]].all()


@needs_mediapipe
def test_person_cut_by_the_right_border_is_not_found():
    # basketball1's right man, half outside the frame, turned away: MediaPipe finds nobody, and the
    # error says which image and what to try.
    crop = _read_rgb("basketball1.png")[:, 420:]
    with pytest.raises(NoPersonFoundError, match=r"no person found in image 1 of 1: .*openpose.*POSE_KEYPOINT"):
        detect_poses([crop], backend="mediapipe")


def _sky() -> np.ndarray:
    """A plain blue-to-pale vertical gradient, 256 × 256 RGB."""
    shade = np.linspace(0.5, 1.0, 256)[:, None, None] * np.array([140, 190, 255])
    return np.broadcast_to(shade, (256, 256, 3)).astype(np.uint8)


@needs_mediapipe
def test_no_person_names_the_image():
    black = np.zeros((256, 256, 3), np.uint8)
    with pytest.raises(NoPersonFoundError, match="no person found in image 1 of 2: mediapipe found nobody") as error:
        detect_poses([black, _sky()], backend="mediapipe")
    assert isinstance(error.value, ValueError)
    with pytest.raises(NoPersonFoundError, match="image 1 of 1"):
        detect_poses([_sky()], backend="mediapipe")


@needs_mediapipe
def test_no_person_in_the_second_image():
    with pytest.raises(NoPersonFoundError, match="no person found in image 2 of 2"):
        detect_poses([_read_rgb("messi5.jpg"), _sky()], backend="mediapipe")


@needs_mediapipe
def test_mediapipe_finds_one_person_only():
    with pytest.raises(NoPersonFoundError, match="MediaPipe finds one person at most"):
        detect_poses([_read_rgb("messi5.jpg")], backend="mediapipe", person=1)


# --------------------------------------------------------------------------------------------------
# OpenPose: local weights only, no download unless allowed


@pytest.fixture
def fake_hub(monkeypatch):
    """A stand-in huggingface_hub that records calls and fails like an offline machine."""
    calls = []

    def hf_hub_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        raise OSError("no network (test)")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    return calls


def test_openpose_weights_not_found_and_nothing_downloaded(tmp_path, fake_hub):
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(PoseDetectorUnavailableError, match=rf"body_pose_model.pth not found in .*{tmp_path.name}.*mediapipe"):
        detect_poses([image], backend="openpose", openpose_dirs=[tmp_path])
    assert fake_hub == []
    with pytest.raises(PoseDetectorUnavailableError, match="could not download body_pose_model.pth .*no network"):
        detect_poses([image], backend="openpose", openpose_dirs=[tmp_path], allow_download=True)
    assert fake_hub == [("lllyasviel/Annotators", "body_pose_model.pth")]


def test_openpose_weights_are_found_in_known_subfolders(tmp_path):
    weights = tmp_path / "ckpts" / "lllyasviel" / "Annotators" / "body_pose_model.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    assert find_openpose_weights([tmp_path / "nothing", tmp_path]) == weights
    assert find_openpose_weights([tmp_path / "nothing"]) is None


def test_auto_backend_choice(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger=detect_module.LOG.name)
    installed = {"controlnet_aux": True}
    mediapipe_problem = [None]
    monkeypatch.setattr(detect_module, "_package_installed", lambda name: installed[name])
    monkeypatch.setattr(detect_module.mediapipe_pose, "why_unavailable", lambda api="auto": mediapipe_problem[0])
    assert resolve_backend("auto", [tmp_path]) == "mediapipe"  # no weights
    assert "skipping openpose: no body_pose_model.pth in" in caplog.text
    (tmp_path / "body_pose_model.pth").write_bytes(b"")
    assert resolve_backend("auto", [tmp_path]) == "openpose"
    installed["controlnet_aux"] = False
    assert resolve_backend("auto", [tmp_path]) == "mediapipe"
    mediapipe_problem[0] = "mediapipe 1.2.2 has no legacy solutions API"
    with pytest.raises(PoseDetectorUnavailableError, match=r"no pose detector can run here .*install MediaPipe with `pip install mediapipe"):
        resolve_backend("auto", [tmp_path])
    with pytest.raises(ValueError, match="pose backend must be one of"):
        resolve_backend("dwpose")


class FakeBody:
    """controlnet_aux Body's output contract: candidate rows (x, y, score, id), subset rows of 18 candidate
    indices (-1 = none), total score, part count. Two people: a small one at the left and a large one
    at the right with a weak nose."""

    def __init__(self):
        self.images = []

    def __call__(self, image_bgr):
        self.images.append(image_bgr)
        candidate, subset = [], []
        for x0, size, nose_score in ((20, 40, 0.9), (120, 100, 0.2)):
            row = np.full(20, -1.0)
            for joint, (dx, dy) in enumerate(np.random.default_rng(0).uniform(0, 1, (18, 2))):
                row[joint] = len(candidate)
                score = nose_score if joint == 0 else 0.8
                candidate.append((x0 + dx * size, 10 + dy * size * 1.5, score, len(candidate)))
            row[[5, 6, 7]] = -1  # left arm not found
            subset.append(row)
        return np.array(candidate), np.array(subset)


def test_openpose_people_order_and_selection(tmp_path, monkeypatch):
    (tmp_path / "body_pose_model.pth").write_bytes(b"")
    body = FakeBody()
    monkeypatch.setattr(detect_module, "_load_openpose_body", lambda weights, device: body)
    image = np.zeros((200, 240, 3), np.uint8)
    image[..., 0] = 255  # red in RGB
    largest, left, right = (
        detect_poses([image], backend="openpose", person=person, openpose_dirs=[tmp_path])[0]
        for person in ("largest", 0, 1)
    )
    assert body.images[0][0, 0].tolist() == [0, 0, 255]  # Body gets BGR, as from cv2.imread
    assert left.xy[left.present, 0].max() < 61 and right.xy[right.present, 0].min() >= 120
    np.testing.assert_array_equal(largest.keypoints, right.keypoints)
    assert not right.present[0] and left.present[0]  # nose score 0.2 < threshold 0.3
    assert not left.present[[5, 6, 7]].any() and left.present.sum() == 15
    with pytest.raises(NoPersonFoundError, match="person 2 requested in image 1 of 1, but openpose found 2"):
        detect_poses([image], backend="openpose", person=2, openpose_dirs=[tmp_path])


# --------------------------------------------------------------------------------------------------
# input conversion


def test_to_rgb_uint8():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_uint8(grey).shape == (3, 4, 3) and (to_rgb_uint8(grey)[..., 2] == grey).all()
    assert to_rgb_uint8(grey[..., None]).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0] = 200
    assert to_rgb_uint8(rgba)[0, 0].tolist() == [200, 0, 0]
    assert to_rgb_uint8(np.full((2, 2, 3), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    with pytest.raises(ValueError, match="image 3 of 4"):
        to_rgb_uint8(np.zeros((2, 2, 3)) + 300.0, "image 3 of 4")  # 0-255 is read, more is an error
    with pytest.raises(ValueError, match="shape"):
        to_rgb_uint8(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="batch"):
        detect_poses(np.zeros((8, 8, 3), np.uint8), backend="mediapipe")


def test_pose_from_image_reads_0_255_by_the_whole_image():
    """One stray value above 1 does not make a [0, 1] photo a 0-255 one (that would darken every pixel):
    the same rule as Encode and Put Back (pidm_core/pixels.py)."""
    photo = np.full((20, 20, 3), 0.5, np.float32)
    assert to_rgb_uint8(photo * 255)[0, 0].tolist() == [128, 128, 128]  # a 0-255 float image, read as such
    stray = photo.copy()
    stray[3, 4, 1] = 7.0
    with pytest.raises(ValueError, match=r"image 2 of 2 is neither ComfyUI's floats in \[0, 1\] nor 0-255"):
        to_rgb_uint8(stray, "image 2 of 2")
