"""DeepFashion pairs in the GFLA layout, on the tiny fixture (tests/fixtures/deepfashion_tiny)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pidm_core.data.deepfashion import DatasetLayoutError, DeepFashionPairs

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "deepfashion_tiny"
# The right wrist of this image is annotated -1 in the fixture.
MISSING_WRIST_IMAGE = "fashionMENTees_Tanksid0000000202_2side.jpg"


def annotation(split: str) -> dict[str, np.ndarray]:
    """Raw (x, y) [18, 2] per image name, straight from the CSV text (-1 = missing)."""
    rows = (FIXTURE / f"fasion-resize-annotation-{split}.csv").read_text().splitlines()[1:]
    out = {}
    for row in rows:
        name, ys, xs = row.split(":")
        out[name.strip()] = np.stack([json.loads(xs), json.loads(ys)], axis=1).astype(np.float64)
    return out


def test_lengths_shapes_and_names():
    train = DeepFashionPairs(FIXTURE, split="train", size=64)
    test = DeepFashionPairs(FIXTURE, split="test", size=64)
    assert (len(train), len(test)) == (2, 3)
    source, source_kp, target, target_kp = test.pair(2)
    assert source.shape == target.shape == (64, 64, 3) and source.dtype == target.dtype == np.uint8
    assert source_kp.shape == target_kp.shape == (18, 3) and source_kp.dtype == np.float32
    assert test.names(0) == ("fashionMENTees_Tanksid0000000202_1front.jpg", MISSING_WRIST_IMAGE)
    # held_out is the trainer's name for the test split
    assert DeepFashionPairs(FIXTURE, split="held_out", size=32).pairs == test.pairs


@pytest.mark.parametrize("split", ["train", "test"])
def test_stretch_maps_keypoints_like_the_official_loader(split):
    size = 64
    data = DeepFashionPairs(FIXTURE, split=split, size=size)
    raw = annotation(split)
    for index in range(len(data)):
        _, source_kp, _, target_kp = data.pair(index)
        for name, kp in zip(data.names(index), (source_kp, target_kp)):
            xy = raw[name]
            present = (xy != -1).all(axis=1)
            # no -40: the CSV coordinates are in the 176-wide photo itself
            np.testing.assert_allclose(kp[present, 0], xy[present, 0] * size / 176, rtol=1e-6)
            np.testing.assert_allclose(kp[present, 1], xy[present, 1] * size / 256, rtol=1e-6)
            assert (kp[present, 2] == 1).all()
            assert (kp[~present] == 0).all()  # missing joints stay missing, never a joint at (0, 0)


def test_missing_joint_and_images_as_stored():
    data = DeepFashionPairs(FIXTURE, split="test", size=64)
    source, _, target, target_kp = data.pair(0)
    assert target_kp[4, 2] == 0  # right wrist annotated -1
    # the CSV says .jpg, the file is .png; the image is the stored one, stretched with PIL bicubic
    stored = Image.open(FIXTURE / "test" / "fashionMENTees_Tanksid0000000202_2side.png").convert("RGB")
    assert stored.size == (176, 256)
    np.testing.assert_array_equal(target, np.asarray(stored.resize((64, 64), Image.BICUBIC)))
    native_source, native_pose, native_target, _ = data.native_pair(0)
    assert native_source.shape == native_target.shape == (256, 176, 3)
    assert (native_pose.width, native_pose.height) == (176, 256)


def test_pad_fit_keeps_the_aspect():
    data = DeepFashionPairs(FIXTURE, split="test", size=64, fit="pad")
    info = data.fit
    assert (info.content_width, info.content_height, info.offset_x, info.offset_y) == (44, 64, 10, 0)
    source, source_kp, _, _ = data.pair(1)
    raw = annotation("test")[data.names(1)[0]]
    present = (raw != -1).all(axis=1)
    np.testing.assert_allclose(source_kp[present, 0], raw[present, 0] * 44 / 176 + 10, rtol=1e-6)
    np.testing.assert_allclose(source_kp[present, 1], raw[present, 1] * 64 / 256, rtol=1e-6)
    # the border columns repeat the photo's edge
    np.testing.assert_array_equal(source[:, 0], source[:, 10])


def test_gfla_file_names_are_accepted(tmp_path):
    root = tmp_path / "fashion_data"
    shutil.copytree(FIXTURE, root)
    for kind in ("pairs", "annotation"):
        (root / f"fasion-resize-{kind}-test.csv").rename(root / f"fasion-{kind}-test.csv")
    assert DeepFashionPairs(root, split="test", size=32).pairs == DeepFashionPairs(FIXTURE, split="test", size=32).pairs


def test_wrong_layout_errors_name_root_and_file(tmp_path):
    with pytest.raises(DatasetLayoutError, match="fasion-resize-pairs-test.csv") as error:
        DeepFashionPairs(tmp_path, split="test")
    assert str(tmp_path) in str(error.value)
    shutil.copy(FIXTURE / "fasion-resize-pairs-test.csv", tmp_path)
    with pytest.raises(DatasetLayoutError, match="fasion-resize-annotation-test.csv"):
        DeepFashionPairs(tmp_path, split="test")
    shutil.copy(FIXTURE / "fasion-resize-annotation-test.csv", tmp_path)
    with pytest.raises(DatasetLayoutError, match="image folder"):
        DeepFashionPairs(tmp_path, split="test")
    (tmp_path / "test").mkdir()
    with pytest.raises(DatasetLayoutError, match="fashionMENTees_Tanksid0000000202_1front"):
        DeepFashionPairs(tmp_path, split="test")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        DeepFashionPairs(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        DeepFashionPairs(FIXTURE, split="val")


def test_train_cli_runs_on_the_fixture(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pidm_core.train", "--config", "tiny_32", "--data", f"deepfashion:{FIXTURE}",
               "--out", str(tmp_path), "--steps", "2", "--batch-size", "2", "--workers", "0", "--sample-every", "0"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "last.pt").is_file()
