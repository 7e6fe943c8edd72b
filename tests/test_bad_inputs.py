"""Bad inputs and faults at the library level: every case ends in a defined outcome.

Each test is one row (or a few) of the catalogue in docs/robustness.md: either a ``ValueError`` (or a
project exception) whose message names the input, the batch index where there is one, what was
found and what to do, or a documented fallback whose result is checked. Cases that other test files
already cover (malicious pickles, truncated files, no person in a photo...) are listed in the
catalogue with those tests' names instead of being repeated here.

A random-weight ``tiny_32`` model and 1-3 sampling steps keep the file to seconds of CPU; the
8000×8000 case is the slow one (about 10 s on two busy cores).
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import poses
from tests.capped import run_capped
from tests.tiny_model import save_tiny_model
from pidm_core import checkpoint, checks, pipeline, placement
from pidm_core.checkpoint import ModelInfo, load_model, save_model
from pidm_core.network import PIDMNetwork
from pidm_core.pose import NoPersonFoundError, PoseDetectorUnavailableError, detect_poses
from pidm_core.pose import detect as detect_module
from pidm_core.pose import to_rgb_uint8
from pidm_core.pose.formats import load_pose_file, pose_keypoint_from_poses, poses_from_pose_keypoint
from pidm_core.pose.keypoints import Pose
from pidm_core.samplers import OFFICIAL_RUN, SAMPLERS, SamplingSettings

from tests.optional import HAVE_MEDIAPIPE
needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="mediapipe not importable (see tests/test_pose_detect.py)")

PHOTOS = Path(__file__).resolve().parent / "photos"  # tests/photos/SOURCES.md

SOURCE_W, SOURCE_H = 24, 32  # a small portrait source


# --- inputs ------------------------------------------------------------------------------------


def standing_pose(width: int = SOURCE_W, height: int = SOURCE_H, dx: float = 0.0) -> Pose:
    """The shared standing figure (tests/poses.py) on this file's small portrait source by default."""
    return poses.standing_pose(width, height, dx)


def source_photo(batch: int = 1, height: int = SOURCE_H, width: int = SOURCE_W, channels: int = 3) -> torch.Tensor:
    """IMAGE [B, H, W, C] in [0, 1]: a different random photo per batch item."""
    generator = torch.Generator().manual_seed(7)
    return torch.rand(batch, height, width, channels, generator=generator)


def pose_keypoint_frame(flat: list, width: int = 64, height: int = 64) -> list:
    return [{"people": [{"pose_keypoints_2d": flat}], "canvas_width": width, "canvas_height": height}]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", "tiny random bad-input model")


@pytest.fixture(scope="module")
def model(model_file):
    return load_model(model_file)


@pytest.fixture(scope="module")
def texture(model):
    return pipeline.encode_source(model, source_photo())


def run(model, texture, poses, init_image=None, appearance_mask=None, reference=None, callback=None,
        **settings) -> torch.Tensor:
    settings = {"steps": 1, **OFFICIAL_RUN, **settings}  # frames from noise, in chunks, every step guided
    return pipeline.sample(model, texture, poses, SamplingSettings(**settings), init_image=init_image,
                           appearance_mask=appearance_mask, reference=reference, callback=callback)


def assert_images(images: torch.Tensor, count: int, height: int = SOURCE_H, width: int = SOURCE_W) -> None:
    assert tuple(images.shape) == (count, height, width, 3)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


# --- photos ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (1, 4, 300, 3)])
def test_source_smaller_than_8px_names_the_image_and_its_size(model, shape):
    height, width = shape[1:3]
    with pytest.raises(ValueError, match=f"source image is {width}x{height} pixels; it must be at least 8x8"):
        pipeline.encode_source(model, torch.rand(shape))


@needs_mediapipe
def test_detection_in_a_1x1_photo_finds_nobody():
    with pytest.raises(NoPersonFoundError, match="no person found in image 1 of 1: .*larger or clearer photo"):
        detect_poses([np.zeros((1, 1, 3), np.uint8)], backend="mediapipe")


def test_8000x8000_source_is_fitted_and_restored(model):
    image = torch.zeros(1, 8000, 8000, 3)
    image[:, 2000:6000, 3000:5000] = 0.8  # a light figure on black
    texture = pipeline.encode_source(model, image)
    assert texture.source.shape == (1, 3, 32, 32)
    images = pipeline.sample(model, texture, [standing_pose(8000, 8000)], SamplingSettings(steps=1))
    assert images.shape == (1, 8000, 8000, 3) and torch.isfinite(images).all()


def test_greyscale_and_rgba_sources_are_read_as_rgb(model):
    grey = source_photo(channels=1)
    rgb = grey.expand(-1, -1, -1, 3)
    rgba = torch.cat([rgb, torch.rand(1, SOURCE_H, SOURCE_W, 1)], dim=-1)  # alpha is ignored
    reference = pipeline.encode_source(model, rgb.contiguous()).source
    assert torch.equal(pipeline.encode_source(model, grey).source, reference)
    assert torch.equal(pipeline.encode_source(model, rgba).source, reference)


def test_all_black_source_is_a_valid_photo(model):
    texture = pipeline.encode_source(model, torch.zeros(1, SOURCE_H, SOURCE_W, 3))
    assert_images(run(model, texture, [standing_pose()]), 1)


def test_non_finite_empty_and_out_of_range_pixels(model):
    image = source_photo()
    image[0, 3, 4, 1] = float("nan")
    with pytest.raises(ValueError, match="source image contains NaN or infinite values"):
        pipeline.encode_source(model, image)
    with pytest.raises(ValueError, match="source image is an empty batch"):
        pipeline.encode_source(model, torch.zeros(0, SOURCE_H, SOURCE_W, 3))
    # values a little outside [0, 1] (an HDR or overshooting image) are clipped, as ComfyUI's savers do
    bright = source_photo() * 1.4 - 0.2
    assert torch.equal(pipeline.encode_source(model, bright).source, pipeline.encode_source(model, bright.clamp(0, 1)).source)


def test_0_255_images_are_read_as_such_with_a_warning(model, texture, caplog):
    # an IMAGE that a node passed as 0-255 pixel values (a uint8 tensor, or floats far above 1) would come
    # out almost white: it is divided by 255 with a logged warning, on every IMAGE input of the pack
    photo = (source_photo() * 255).round()
    expected = pipeline.encode_source(model, photo / 255).source
    for given in (photo.to(torch.uint8), photo, photo.to(torch.int64)):
        caplog.clear()
        assert torch.allclose(pipeline.encode_source(model, given).source, expected, atol=1e-6)
        assert "source image holds 0-255 values" in caplog.text and "divided by 255" in caplog.text
    init = run(model, texture, [standing_pose()], steps=2, init_image=photo / 255, denoise=0.5)
    assert torch.equal(run(model, texture, [standing_pose()], steps=2, init_image=photo.to(torch.uint8), denoise=0.5), init)
    mask = torch.zeros(1, SOURCE_H, SOURCE_W)
    kept = run(model, texture, [standing_pose()], appearance_mask=mask, reference=photo / 255)
    assert torch.equal(run(model, texture, [standing_pose()], appearance_mask=mask, reference=photo), kept)
    # Pose From Image hands the IMAGE to detection as numpy arrays: the same rule there
    rgb = photo[0].numpy().astype(np.uint8)
    for given in (photo[0].numpy(), photo[0].numpy().astype(np.int64), photo[0].numpy() / 255):
        assert np.array_equal(to_rgb_uint8(given), rgb)
    # more than 255 is no pixel scale at all
    for name, options in (("source image", {}), ("init image", {"init_image": photo * 4}),
                          ("reference image", {"appearance_mask": mask, "reference": photo * 4})):
        with pytest.raises(ValueError, match=f"{name} has values up to 1020; expected floats in \\[0, 1\\]"):
            if options:
                run(model, texture, [standing_pose()], **options)
            else:
                pipeline.encode_source(model, photo * 4)
    with pytest.raises(ValueError, match=r"image 1 of 1 has values up to 1020; expected floats in \[0, 1\] \(0-255 is read too\)"):
        detect_poses([photo[0].numpy() * 4], backend="mediapipe")


def test_stray_values_above_range_are_an_error_not_a_0_255_image(model, texture):
    # one value above range once made the whole image 0-255 (divided by 255, every pixel changed) with only a
    # warning: the reading is decided by the whole image, and a [0, 1] image with strays is neither
    photo = source_photo()
    photo[0, 3, 4, 1] = 200.0
    with pytest.raises(ValueError, match=r"source image is neither ComfyUI's floats in \[0, 1\] nor 0-255 values: 1 of "
                                         r"its \d+ non-black values are above 1.5 \(up to 200\), the rest in \[0, 1\]; "
                                         r"an image is read as 0-255 only when most of them are: fix or replace the node"):
        pipeline.encode_source(model, photo)
    batch = source_photo(3)
    batch[1] = batch[1] * 255  # a 0-255 image in a batch is read as such; a stray in another is named by its index
    batch[2, 0, 0, 0] = 9.0
    with pytest.raises(ValueError, match=r"source image \(image 3 of 3\) is neither"):
        pipeline.encode_source(model, batch)
    with pytest.raises(ValueError, match=r"init image is neither"):
        run(model, texture, [standing_pose()], init_image=photo, denoise=0.5)
    # a dark 0-255 photo (most values black) is still 0-255: only the non-black values decide
    dark = (source_photo() * 255).round()
    dark[:, :, : SOURCE_W - 2] = 0
    assert torch.allclose(pipeline.encode_source(model, dark).source, pipeline.encode_source(model, dark / 255).source,
                          atol=1e-6)
    # a 0-255 mask of a small person is 0-255; a [0, 1] mask with a stray value is an error
    small = torch.zeros(1, SOURCE_H, SOURCE_W)
    small[0, 10:12, 10:12] = 1
    assert torch.equal(pipeline.encode_source(model, source_photo(), small * 255).source,
                       pipeline.encode_source(model, source_photo(), small).source)
    stray = person_mask().clone()
    stray[0, 0, 0] = 80.0
    with pytest.raises(ValueError, match="source mask is neither"):
        pipeline.encode_source(model, source_photo(), stray)


def test_init_and_reference_images_count_size_and_values(model):
    two = pipeline.encode_source(model, source_photo(2))
    poses = [standing_pose()]
    for name, option in (("init image", "init_image"), ("reference image", "reference")):
        extra = {"appearance_mask": torch.zeros(1, SOURCE_H, SOURCE_W)} if option == "reference" else {}
        with pytest.raises(ValueError, match=f"{name} has 3 images for 2 output images: give 1 image .* or 2"):
            run(model, two, poses, **{option: source_photo(3)}, **extra)
        with pytest.raises(ValueError, match=f"{name} is 40x40 pixels but the source image is 24x32"):
            run(model, two, poses, **{option: source_photo(1, 40, 40)}, **extra)
        bad = source_photo(2)
        bad[1, 0, 0, 0] = float("inf")
        with pytest.raises(ValueError, match=f"{name} contains NaN or infinite values \\(image 2 of 2\\)"):
            run(model, two, poses, **{option: bad}, **extra)
        with pytest.raises(ValueError, match=f"{name} is an empty batch"):
            run(model, two, poses, **{option: source_photo(1)[:0]}, **extra)
    # another size of the same aspect ratio is fitted like the source
    assert_images(run(model, two, poses, init_image=source_photo(1, 2 * SOURCE_H, 2 * SOURCE_W), denoise=0.5), 2)


HUGE_BATCHES = """
import os, torch
from pidm_core import pipeline
from pidm_core.checkpoint import load_model
from pidm_core.pose.keypoints import Pose
from pidm_core.samplers import SAMPLERS, SamplingSettings
model = load_model(os.environ["MODEL"])
photos = torch.rand(2, 32, 24, 3)
texture = pipeline.encode_source(model, photos)
pose = Pose(torch.tensor([[12.0, 4, 1], [12, 8, 1]] + [[0, 0, 0]] * 16).numpy(), 24, 32)
masks = torch.ones(1, 8000, 6000).expand(10000, -1, -1)
cases = {
    "source mask": lambda: pipeline.encode_source(model, photos, masks),
    "appearance mask": lambda: pipeline.sample(model, texture, [pose], SamplingSettings(steps=1), appearance_mask=masks),
    "init image": lambda: pipeline.sample(model, texture, [pose], SamplingSettings(steps=1),
                                          init_image=torch.rand(1, 800, 600, 3).expand(10000, -1, -1, -1)),
}
messages = []
for name, case in cases.items():
    try:
        case()
    except ValueError as error:
        messages.append(str(error))
    else:
        raise AssertionError(name + ": no error")
raise ValueError(" | ".join(messages))
"""


def test_batch_of_10000_for_2_images_is_an_error_not_a_copy(model_file):
    # expanded views: 10,000 masks of 8000x6000 (or images of 800x600) hold one item's memory, and a copy
    # would need terabytes; each count is checked first, in a process capped at 4 GB (one process, three cases)
    run_capped(HUGE_BATCHES, env={"MODEL": str(model_file)}).assert_clean_error(
        ValueError, "source mask has 10000 masks for 2 source images: give 1 mask (used for every image) or 2",
        "appearance mask has 10000 masks for 2 output images: give 1 mask",
        "init image has 10000 images for 2 output images: give 1 image")


@needs_mediapipe
def test_tiny_person_is_not_found():
    import cv2

    messi = cv2.cvtColor(cv2.imread(str(PHOTOS / "messi5.jpg")), cv2.COLOR_BGR2RGB)
    canvas = np.full((1024, 1024, 3), 128, np.uint8)
    canvas[500:517, 500:527] = cv2.resize(messi, (27, 17), interpolation=cv2.INTER_AREA)  # the person is ~15 px tall
    with pytest.raises(NoPersonFoundError, match="no person found in image 1 of 1: .*larger or clearer photo"):
        detect_poses([canvas], backend="mediapipe")


def test_batch_of_mixed_sizes(model, monkeypatch):
    # detection takes a list of photos of any sizes: each pose is in its own photo's pixels
    class FakeDetector:
        def __enter__(self):
            return lambda rgb: [standing_pose(rgb.shape[1], rgb.shape[0]).keypoints]

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(detect_module, "resolve_backend", lambda backend, dirs: "mediapipe")
    monkeypatch.setattr(detect_module, "open_detector", lambda *args: FakeDetector())
    poses = detect_poses([np.zeros((64, 48, 3), np.uint8), np.zeros((200, 100, 4))], backend="mediapipe")
    assert [(p.width, p.height) for p in poses] == [(48, 64), (100, 200)]
    # an IMAGE batch is one tensor: photos of different sizes have to be resized to one size first
    with pytest.raises(ValueError, match=r"source image is a list of 2 images.*resize them to one size"):
        pipeline.encode_source(model, [torch.rand(1, 32, 24, 3), torch.rand(1, 40, 40, 3)])


# --- masks -------------------------------------------------------------------------------------


def person_mask(batch: int = 1, height: int = SOURCE_H, width: int = SOURCE_W) -> torch.Tensor:
    """MASK [B, H, W]: 1 on a central figure-sized block, 0 elsewhere."""
    mask = torch.zeros(batch, height, width)
    mask[:, height // 8: height - height // 8, width // 4: width - width // 4] = 1.0
    return mask


def test_mask_batch_against_image_batch(model):
    # the rule for both masks: 1 mask for every image, or one per image; anything else names both counts
    two = source_photo(2)
    with pytest.raises(ValueError, match=r"source mask has 3 masks for 2 source images: give 1 mask \(used for "
                                         r"every image\) or 2 \(one per image\)"):
        pipeline.encode_source(model, two, person_mask(3))
    with pytest.raises(ValueError, match="source mask has 2 masks for 1 source image: give 1 mask"):
        pipeline.encode_source(model, source_photo(1), person_mask(2))
    masked = pipeline.encode_source(model, two, person_mask(1))
    assert torch.equal(masked.source, pipeline.encode_source(model, two, person_mask(2)).source)
    assert masked.source.shape[0] == 2 and (masked.source[:, :, 0, 16] == 0).all()  # above the head: blanked
    with pytest.raises(ValueError, match="appearance mask has 3 masks for 2 output images: give 1 mask"):
        run(model, masked, [standing_pose()], appearance_mask=person_mask(3))
    assert torch.equal(run(model, masked, [standing_pose()], appearance_mask=person_mask(1)),
                       run(model, masked, [standing_pose()], appearance_mask=person_mask(2)))
    # one source in three poses makes three images: 1 or 3 appearance masks
    one = pipeline.encode_source(model, source_photo(1))
    poses = [standing_pose(), standing_pose(dx=2), standing_pose(dx=-2)]
    assert_images(run(model, one, poses, appearance_mask=person_mask(3)), 3)
    with pytest.raises(ValueError, match="appearance mask has 2 masks for 3 output images"):
        run(model, one, poses, appearance_mask=person_mask(2))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_a_mask_names_the_mask(model, value):
    # once blamed on the guidance scales or a damaged model file: the mask is named before anything runs
    mask = person_mask(2)
    mask[1, 5, 5] = value
    two = source_photo(2)
    with pytest.raises(ValueError, match=r"source mask contains NaN or infinite values \(mask 2 of 2\): fix or "
                                         "replace the node that made it, or disconnect the input"):
        pipeline.encode_source(model, two, mask)
    with pytest.raises(ValueError, match=r"appearance mask contains NaN or infinite values \(mask 2 of 2\)"):
        run(model, pipeline.encode_source(model, two), [standing_pose()], appearance_mask=mask)


def test_mask_values_outside_0_1(model, texture, caplog):
    photo = source_photo()
    soft = person_mask() * 1.4 - 0.2  # -0.2..1.2: clipped, like image values
    assert torch.equal(pipeline.encode_source(model, photo, soft).source,
                       pipeline.encode_source(model, photo, soft.clamp(0, 1)).source)
    expected = pipeline.encode_source(model, photo, person_mask()).source
    for plain in (person_mask().bool(), person_mask().long()):  # 0/1 integer or boolean masks are masks
        assert torch.equal(pipeline.encode_source(model, photo, plain).source, expected)
    for scaled in (person_mask() * 255, (person_mask() * 255).to(torch.uint8)):  # 0-255: read as such, with a warning
        caplog.clear()
        assert torch.equal(pipeline.encode_source(model, photo, scaled).source, expected)
        assert "source mask holds 0-255 values" in caplog.text
    with pytest.raises(ValueError, match=r"appearance mask has values up to 1000; expected floats in \[0, 1\] "
                                         r"\(0-255 is read too\): scale the mask to \[0, 1\]"):
        run(model, texture, [standing_pose()], appearance_mask=person_mask() * 1000)


def test_mask_shapes_and_sizes(model, texture):
    photo = source_photo()
    # another size of the source's aspect ratio is resized; a 1x1 mask is one value for every pixel
    full = pipeline.encode_source(model, photo, person_mask()).source
    half = pipeline.encode_source(model, photo, person_mask(1, SOURCE_H // 2, SOURCE_W // 2)).source
    assert (half - full).abs().mean() < 0.05
    constant = pipeline.encode_source(model, photo, torch.full((1, 1, 1), 0.5)).source
    assert torch.allclose(constant, pipeline.encode_source(model, photo, torch.full((1, SOURCE_H, SOURCE_W), 0.5)).source)
    assert torch.equal(pipeline.encode_source(model, photo, person_mask()[0]).source, full)  # [H, W] is one mask
    one_value = checks.check_masks(torch.full((1, 1, 1), 0.25), "mask", None, "image")
    big = placement.fitted_placement(8000, 8000, 32).canvas_masks(one_value)  # no 8000x8000 copy
    assert big.shape == (1, 1, 32, 32) and torch.allclose(big, torch.tensor(0.25))
    for name, call in (("source mask", lambda m: pipeline.encode_source(model, photo, m)),
                       ("appearance mask", lambda m: run(model, texture, [standing_pose()], appearance_mask=m))):
        with pytest.raises(ValueError, match=f"{name} is 40x40 pixels but the source image is 24x32: give it in the "
                                             "source image's size"):
            call(person_mask(1, 40, 40))
        with pytest.raises(ValueError, match=f"{name} is an empty batch \\(0 masks\\)"):
            call(person_mask(0))
        with pytest.raises(ValueError, match=f"{name} is 0x32 pixels: it holds no values"):
            call(torch.zeros(1, 32, 0))
        for wrong in (person_mask()[:, None], [person_mask()], "mask"):
            with pytest.raises(ValueError, match=f"{name} must be a MASK \\[B, H, W\\] \\(or \\[H, W\\]\\)"):
                call(wrong)


# --- poses -------------------------------------------------------------------------------------


def test_empty_pose_keypoint_and_frames_without_people(model, texture):
    with pytest.raises(ValueError, match="pose is empty: it holds no frames; connect a pose estimator"):
        poses_from_pose_keypoint([], name="pose")
    frames = pose_keypoint_from_poses([standing_pose()]) + [{"people": [], "canvas_width": 24, "canvas_height": 32}]
    with pytest.raises(ValueError, match="pose frame 2 of 2 has no people: the pose estimator found nobody"):
        poses_from_pose_keypoint(frames, name="pose")
    with pytest.raises(ValueError, match="no target pose given: the pose input is empty"):
        run(model, texture, [])


def test_nan_inf_joints_are_missing_and_an_all_nan_person_is_an_error(model, texture):
    pose = standing_pose()
    flat = pose_keypoint_from_poses([pose])[0]["people"][0]["pose_keypoints_2d"]
    flat[3 * 4] = float("nan")  # right wrist x
    flat[3 * 7 + 1] = float("inf")  # left wrist y
    (read,) = poses_from_pose_keypoint(pose_keypoint_frame(flat, SOURCE_W, SOURCE_H), name="pose")
    assert not read.present[[4, 7]].any() and read.present.sum() == 16
    assert np.isfinite(read.keypoints).all()
    assert_images(run(model, texture, [read]), 1)
    with pytest.raises(ValueError, match="pose frame 1 of 1: the chosen person has no joint with confidence > 0"):
        poses_from_pose_keypoint(pose_keypoint_frame([float("nan")] * 54), name="pose")


def test_keypoints_beyond_float32_say_why_no_joint_is_left():
    # once "the chosen person has no joint with confidence > 0": the joints had a confidence, not usable numbers
    flat = [1e308, 1e308, 1.0] * 18
    with pytest.raises(ValueError, match=r"pose frame 1 of 1: the chosen person has no usable joint: 18 joints have a "
                                         r"confidence but coordinates that are not finite numbers .* \(NaN, inf or "
                                         r"1e308\); fix the pose's coordinates"):
        poses_from_pose_keypoint(pose_keypoint_frame(flat), name="pose")
    some = pose_keypoint_from_poses([standing_pose()])[0]["people"][0]["pose_keypoints_2d"]
    some[0:2] = [1e308, 5.0]  # one such joint is missing, like a NaN one, and the rest is used
    (read,) = poses_from_pose_keypoint(pose_keypoint_frame(some, SOURCE_W, SOURCE_H), name="pose")
    assert not read.present[0] and read.present.sum() == 17 and np.isfinite(read.keypoints).all()


def test_joints_off_the_canvas(model, texture):
    # partly off the canvas (a person cut by the border): kept, drawing clips them
    partly = standing_pose(dx=-SOURCE_W / 2)
    assert (partly.xy[partly.present, 0] < 0).any()
    assert_images(run(model, texture, [standing_pose(), partly]), 2)
    # entirely off the canvas (pixels of another canvas, or a bad offset): nothing to draw, an error
    away = standing_pose(dx=10 * SOURCE_W)
    with pytest.raises(ValueError, match=r"target pose 2 of 2 has no joint inside its 24x32 canvas.*canvas size"):
        run(model, texture, [standing_pose(), away])
    with pytest.raises(ValueError, match=r"target pose 1 of 1 has no joints"):
        run(model, texture, [Pose(np.zeros((18, 3)), SOURCE_W, SOURCE_H)])


@pytest.mark.parametrize(("joints", "found"), [(17, "17 joints"), (1, "1 joints")])
def test_fewer_than_18_joints(joints, found):
    with pytest.raises(ValueError, match=f"pose frame 1 of 1, person 1 of 1: 'pose_keypoints_2d' has {found}; expected 18"):
        poses_from_pose_keypoint(pose_keypoint_frame([10.0, 10.0, 1.0] * joints), name="pose")
    with pytest.raises(ValueError, match="has 52 numbers, not a multiple of 3"):
        poses_from_pose_keypoint(pose_keypoint_frame([10.0] * 52), name="pose")


def test_wrong_nesting():
    frame = pose_keypoint_from_poses([standing_pose()])[0]
    with pytest.raises(ValueError, match=r"pose frame 1 of 1: expected a dict with a 'people' list, got list"):
        poses_from_pose_keypoint([[frame]], name="pose")
    with pytest.raises(ValueError, match=r"pose frame 1 of 1, person 1 of 1: expected a dict with 'pose_keypoints_2d', got list"):
        poses_from_pose_keypoint([{**frame, "people": [frame["people"][0]["pose_keypoints_2d"]]}], name="pose")
    with pytest.raises(ValueError, match="pose: expected a list of frames"):
        poses_from_pose_keypoint("0 0 1", name="pose")
    with pytest.raises(ValueError, match="pose frame 1 of 1 has no canvas_width/canvas_height"):
        poses_from_pose_keypoint([{"people": frame["people"]}], name="pose")
    # documented fallbacks: one frame dict = a list of one; [[x, y, c], ...] rows are flattened
    rows = np.reshape(frame["people"][0]["pose_keypoints_2d"], (18, 3)).tolist()
    for data in (frame, [{**frame, "people": [{"pose_keypoints_2d": rows}]}]):
        (pose,) = poses_from_pose_keypoint(data, name="pose")
        np.testing.assert_allclose(pose.keypoints, standing_pose().keypoints)


def test_pixel_and_normalised_coordinates():
    pose = standing_pose(480, 640)
    (normalised,) = poses_from_pose_keypoint(pose_keypoint_from_poses([pose], normalized=True), name="pose")
    (pixels,) = poses_from_pose_keypoint(pose_keypoint_from_poses([pose]), name="pose")
    np.testing.assert_allclose(normalised.keypoints, pose.keypoints, atol=1e-3)
    np.testing.assert_allclose(pixels.keypoints, pose.keypoints)
    # the rule: all present coordinates within [0, 1] on a canvas larger than 4x4 means normalised;
    # a caller who knows better says so
    (forced,) = poses_from_pose_keypoint(pose_keypoint_from_poses([pose], normalized=True), normalized=False, name="pose")
    assert forced.xy[forced.present].max() <= 1.0


def test_pose_batch_against_source_batch(model):
    two = pipeline.encode_source(model, source_photo(2))
    one = pipeline.encode_source(model, source_photo(1))
    poses = [standing_pose(), standing_pose(dx=2), standing_pose(dx=-2)]
    with pytest.raises(ValueError, match="2 source images and 3 poses: give one source, one pose, or as many poses as sources"):
        run(model, two, poses)
    assert_images(run(model, one, poses), 3)  # one person, many poses
    assert_images(run(model, two, poses[:1]), 2)  # one pose, many people
    pairwise = run(model, two, poses[:2])  # B == N: item i gets pose i
    second = run(model, pipeline.encode_source(model, source_photo(2)[1:]), poses[1:2])
    assert (pairwise[1] - second[0]).abs().max() < 1e-4


def test_pose_on_another_canvas_is_fitted_into_the_source_frame(model, texture):
    big = run(model, texture, [standing_pose(2 * SOURCE_W, 2 * SOURCE_H)])
    same = run(model, texture, [standing_pose()])
    assert (big - same).abs().max() < 1e-4


class ReduceToTouch:
    """Pickles into a call of Path.touch(marker): what a booby-trapped file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_broken_pose_files_name_the_file(tmp_path):
    cases = {
        "truncated.json": ('[{"people": [{"pose_keypoints_2d": [1, 2', "is not valid JSON"),
        "binary.json": (b"\x80\x04\x95\xff", "is not valid JSON"),
        "words.txt": ("left arm up\n", "expected 18 rows of 'x y' numbers"),
        "short.txt": ("1 2\n3 4\n", r"expected 18 rows of 'x y' .*got shape \(2, 2\)"),
        "empty.json": ("[]", "is empty: it holds no frames"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError, match=message) as error:
            load_pose_file(path)
        assert str(path) in str(error.value)
    # a .npy holding a pickle is refused, and its payload never runs
    marker = tmp_path / "pwned"
    np.save(tmp_path / "trap.npy", np.array([ReduceToTouch(marker)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "trap.npy", allow_pickle=True)  # the trap is live: a trusting reader runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match="trap.npy is not a plain numpy keypoint array"):
        load_pose_file(tmp_path / "trap.npy", canvas_size=(64, 64))
    assert not marker.exists()


# --- models ------------------------------------------------------------------------------------


def test_nan_weights_are_an_error_not_a_nan_image(model_file, texture):
    broken = load_model(model_file)
    with torch.no_grad():
        broken.network.out[2].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="sampling produced NaN or infinite values.*model file may be damaged"):
        run(broken, texture, [standing_pose()])


def test_disentangled_guidance_needs_a_model_trained_for_it(tmp_path, model):
    info = ModelInfo("official-like", model.config, source_drop_prob=0.1, pose_drop_prob=0.0)
    path = save_model(tmp_path / "official_like.safetensors", model.network, info)
    official_like = load_model(path)
    texture = pipeline.encode_source(official_like, source_photo())
    with pytest.raises(ValueError, match="trained without dropping the pose.*use guidance 'official'"):
        run(official_like, texture, [standing_pose()], guidance="disentangled")


def test_texture_from_another_model_is_named(model, texture, tmp_path):
    wider = dataclasses.replace(model.config, model_channels=64, embed_channels=64)  # same 32 px canvas
    info = ModelInfo("wider", wider, source_drop_prob=0.1, pose_drop_prob=0.1)
    other = load_model(save_model(tmp_path / "wider.safetensors", PIDMNetwork(wider).eval(), info))
    with pytest.raises(ValueError, match="texture was encoded by another model .*: encode the source with the model "
                                         "you sample with"):
        run(other, texture, [standing_pose()])


# --- sampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_steps_range(model, texture, sampler):
    for steps in (0, 1001, 10000):
        with pytest.raises(ValueError, match=f"steps must be between 1 and 1000, got {steps}"):
            run(model, texture, [standing_pose()], steps=steps, sampler=sampler)
    assert_images(run(model, texture, [standing_pose()], steps=1, sampler=sampler), 1)


def test_denoise_ends_and_range(model, texture):
    init = source_photo()
    kept = run(model, texture, [standing_pose()], steps=2, init_image=init, denoise=0.0)
    info = placement.fitted_placement(init.shape[1], init.shape[2], 32)
    fitted = info.canvas_images(checks.check_images(init, "init image"))
    assert torch.allclose(kept, info.output_images(fitted))  # denoise 0: the init image back
    # (steps=2 starts at t=500; one step of the official spacing runs at t=0 only, which keeps the start)
    redrawn = run(model, texture, [standing_pose()], steps=2, init_image=init, denoise=1.0)
    assert_images(redrawn, 1)
    assert (redrawn - kept).abs().max() > 0.1
    for denoise in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="denoise must be in \\[0, 1\\]"):
            run(model, texture, [standing_pose()], init_image=init, denoise=denoise)
    # without an init image denoise has nothing to keep and is ignored
    assert torch.equal(run(model, texture, [standing_pose()], denoise=0.3), run(model, texture, [standing_pose()]))


def test_guidance_scales(model, texture):
    for scale in (0.0, 100.0):
        assert_images(run(model, texture, [standing_pose()], appearance_scale=scale, guidance="disentangled",
                          pose_scale=scale), 1)
    for name in ("appearance_scale", "pose_scale"):
        for value in (1e6, -101.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"{name} must be a finite number within ±100, got {value}"):
                run(model, texture, [standing_pose()], **{name: value})


@pytest.mark.parametrize("value", ["euler", "", None, 3, ["ddim"], {"ddim": 1}, "x" * 10_000])
def test_combo_values_from_a_request_are_checked(model, texture, value):
    # ComfyUI 0.3.75 does not check V3 combos against their options: any JSON value can arrive
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    for name, call in (("sampler", lambda: run(model, texture, [standing_pose()], sampler=value)),
                       ("guidance", lambda: run(model, texture, [standing_pose()], guidance=value)),
                       ("fit", lambda: pipeline.encode_source(model, source_photo(), fit_mode=value))):
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value).startswith(f"{name} must be one of ") and str(error.value).endswith(f"; got {shown}")
        assert len(str(error.value)) < 200


def test_guidance_overflow_is_an_error_not_a_nan_image(model_file, monkeypatch):
    hot = load_model(model_file)
    texture = pipeline.encode_source(hot, source_photo())
    forward = hot.network.forward
    # outputs near the float limit (a diverged model): within-range scales overflow them to inf
    monkeypatch.setattr(hot.network, "forward", lambda *args, **kwargs: forward(*args, **kwargs) * 1e37)
    with pytest.raises(FloatingPointError, match="NaN or infinite values; lower the guidance scales or use fp32"):
        run(hot, texture, [standing_pose()], steps=2, appearance_scale=100.0)


class Interrupted(Exception):
    """Stands in for ComfyUI's InterruptProcessingException."""


def test_interrupt_then_run_again(model, texture):
    poses = [standing_pose(), standing_pose(dx=2)]

    def stop_after_first_step(info):
        if info["i"] == 0:
            raise Interrupted

    clean = run(model, texture, poses, steps=2, seed=5)
    with pytest.raises(Interrupted):
        run(model, texture, poses, steps=2, seed=5, callback=stop_after_first_step)
    assert torch.equal(run(model, texture, poses, steps=2, seed=5), clean)


def test_fp16_on_cpu_works_and_is_close_to_fp32(model_file, model, texture):
    half = load_model(model_file, dtype=torch.float16)
    assert half.dtype == torch.float16
    low = run(half, pipeline.encode_source(half, source_photo()), [standing_pose()])
    assert low.dtype == torch.float32
    assert_images(low, 1)
    assert (low - run(model, texture, [standing_pose()])).abs().max() < 0.05


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: you tried to allocate 1 bytes"),
    # the raw CPU allocator's words on Linux, once passed through without the pack's advice
    RuntimeError("[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 274877906944 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_out_of_memory_suggests_a_smaller_batch_or_dtype(model_file, monkeypatch, error):
    oom = load_model(model_file)
    texture = pipeline.encode_source(oom, source_photo())

    def raise_error(*args, **kwargs):
        raise error

    monkeypatch.setattr(oom.network, "forward", raise_error)
    with pytest.raises(type(error)) as info:
        run(oom, texture, [standing_pose(), standing_pose(dx=2)])
    message = str(info.value)
    assert "out of memory while sampling 2 images at 32x32 with fp32 weights" in message
    assert "fewer poses or source images per run" in message and "bf16 or fp16" in message
    assert str(error) in message  # the original report is kept
    monkeypatch.setattr(oom.network, "encode_texture", raise_error)
    with pytest.raises(type(error), match="out of memory while encoding 3 source images at 32x32.*fewer"):
        pipeline.encode_source(oom, source_photo(3))


def test_other_runtime_errors_pass_through_unchanged(model_file, monkeypatch):
    broken = load_model(model_file)
    texture = pipeline.encode_source(broken, source_photo())
    error = RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    monkeypatch.setattr(broken.network, "forward", lambda *args, **kwargs: (_ for _ in ()).throw(error))
    with pytest.raises(RuntimeError) as info:
        run(broken, texture, [standing_pose()])
    assert info.value is error


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_image_and_batch_position_does_not_matter(model, texture):
    poses = [standing_pose(), standing_pose(dx=3)]
    first = run(model, texture, poses, seed=11)
    assert torch.equal(first, run(model, texture, poses, seed=11))
    assert not torch.equal(first, run(model, texture, poses, seed=12))
    alone = run(model, texture, poses[1:], seed=11)
    assert (first[1] - alone[0]).abs().max() < 1e-4
    # through generate() from the photo, twice
    photo = source_photo()
    assert torch.equal(pipeline.generate(model, photo, poses[0], SamplingSettings(steps=1, seed=3)),
                       pipeline.generate(model, photo, poses[0], SamplingSettings(steps=1, seed=3)))


# --- network and files -------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Every outgoing connection fails and is recorded."""
    attempts = []

    def refuse(address):
        attempts.append(address)
        raise OSError(f"test: network access to {address} refused")

    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", lambda address, *args, **kwargs: refuse(address))
    return attempts


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_load_encode_sample_use_no_network_and_write_no_files(model_file, tmp_path, monkeypatch, no_network):
    monkeypatch.chdir(tmp_path)
    watched = [tmp_path, model_file.parent]
    before = [_files(root) for root in watched]
    model = load_model(model_file)
    images = pipeline.generate(model, source_photo(), [standing_pose()], SamplingSettings(steps=1))
    assert_images(images, 1)
    assert [_files(root) for root in watched] == before
    assert no_network == []


def test_detection_without_download_uses_no_network(tmp_path, no_network):
    with pytest.raises(PoseDetectorUnavailableError, match="not found in .*allow_download=True"):
        detect_poses([np.zeros((64, 64, 3), np.uint8)], backend="openpose", openpose_dirs=[tmp_path])
    if HAVE_MEDIAPIPE:
        with pytest.raises(NoPersonFoundError):
            detect_poses([np.zeros((64, 64, 3), np.uint8)], backend="mediapipe")
    assert no_network == []
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_errors_are_value_errors():
    # the node layer relies on this: ComfyUI shows any exception as a node error, and ValueError
    # subclasses say "your input is wrong", not "the pack is broken"
    assert issubclass(checkpoint.CheckpointError, ValueError)
    assert issubclass(checkpoint.CheckpointNotFoundError, FileNotFoundError)
    assert issubclass(NoPersonFoundError, ValueError)
