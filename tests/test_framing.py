"""Framing (pidm_core.framing): a person at a known place in a scene lands where the model's framing
says, the inverse maps back, target poses follow the source person's size, bad inputs get clear errors."""

import json

import cv2
import numpy as np
import pytest
import torch

from pidm_core import framing as F
from pidm_core import pipeline
from pidm_core.checkpoint import ModelInfo, load_model, official_model_info
from pidm_core.config import get_config
from pidm_core.data.synthetic import make_pair
from pidm_core.data.synthetic.figure import sample_pose_and_parts
from pidm_core.data.synthetic.identity import sample_identity
from pidm_core.data.synthetic.render import SUPERSAMPLE, paint_parts
from pidm_core.errors import CheckpointError
from pidm_core.pose.keypoints import Pose
from pidm_core.samplers import SamplingSettings

from tests.tiny_model import save_tiny_model

SCENE_W, SCENE_H = 400, 300
FIGURE = 128  # the figure's own canvas, pasted into the scene at OFFSET
OFFSET = (250, 90)


def figure(seed: int, kind: str = "standing", size: int = FIGURE):
    """A synthetic person: RGB uint8 [size, size, 3], its alpha mask [size, size], keypoints [18, 3]."""
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    pose, parts = sample_pose_and_parts(rng, identity, size, size, kind)
    big = size * SUPERSAMPLE
    black = paint_parts(np.zeros((big, big, 3), np.uint8), parts, pose, 1).astype(np.float32)
    white = paint_parts(np.full((big, big, 3), 255, np.uint8), parts, pose, 1).astype(np.float32)
    alpha = 1 - (white - black).mean(axis=2) / 255
    return black.astype(np.uint8), alpha, pose.keypoints.copy()


def scene_with_figure(seed: int = 3, kind: str = "standing", offset=OFFSET):
    """The figure pasted into a larger scene with a non-uniform background; returns scene, mask, Pose."""
    rgb, alpha, keypoints = figure(seed, kind)
    yy, xx = np.mgrid[0:SCENE_H, 0:SCENE_W]
    scene = np.stack([xx * 255 / SCENE_W, yy * 255 / SCENE_H, 128 + 60 * np.sin(xx / 17.0)], axis=2)
    mask = np.zeros((SCENE_H, SCENE_W), np.float32)
    x0, y0 = offset
    h, w = min(FIGURE, SCENE_H - y0), min(FIGURE, SCENE_W - x0)  # a figure past the border is cut
    rgb, alpha = rgb[:h, :w], alpha[:h, :w]
    window = (slice(y0, y0 + h), slice(x0, x0 + w))
    scene[window] = rgb * alpha[..., None] + scene[window] * (1 - alpha[..., None])
    mask[window] = alpha
    keypoints[keypoints[:, 2] > 0, :2] += offset
    return scene.astype(np.uint8), mask, Pose(keypoints, SCENE_W, SCENE_H)


def mask_rows(mask: np.ndarray) -> tuple[float, float]:
    """Top and bottom edge of a mask: where its largest value per row crosses 0.5, to a fraction of a pixel."""
    profile = mask.max(axis=1)
    rows = np.nonzero(profile >= 0.5)[0]
    top, bottom = rows[0], rows[-1]
    above = profile[top - 1] if top > 0 else 0.0
    below = profile[bottom + 1] if bottom + 1 < len(profile) else 0.0
    return (top - (profile[top] - 0.5) / (profile[top] - above), bottom + (profile[bottom] - 0.5) / (profile[bottom] - below))


# --- geometry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", [F.synthetic_framing(256), F.deepfashion_framing(256)], ids=["synthetic", "deepfashion"])
def test_person_at_a_known_box_lands_where_the_framing_says(framing):
    scene, mask, pose = scene_with_figure()
    top, bottom = mask_rows(mask)
    crop = F.frame_person(pose, mask, SCENE_W, SCENE_H, framing)
    # head top and soles (the mask's box) go exactly to head_y and feet_y
    (_, head), (_, feet) = crop.to_canvas(np.array([[0.0, top], [0.0, bottom]]))
    assert head == pytest.approx(framing.head_y * 256, abs=1e-6)
    assert feet == pytest.approx(framing.feet_y * 256, abs=1e-6)
    # and so does the warped mask, to a pixel
    on_canvas = crop.crop_mask(mask)
    canvas_top, canvas_bottom = mask_rows(on_canvas)
    assert abs(canvas_top - framing.head_y * 256) <= 1 and abs(canvas_bottom - framing.feet_y * 256) <= 1
    left = np.nonzero((on_canvas >= 0.5).any(axis=0))[0][0]  # and the person is on the canvas, not cut
    assert 0 < left and np.nonzero((on_canvas >= 0.5).any(axis=0))[0][-1] < 255
    # the centre line (neck to mid-hips) goes to center_x; DeepFashion's framing stretches x by 256/176
    centre = (pose.xy[1] + pose.xy[[8, 11]].mean(axis=0)) / 2
    assert crop.to_canvas(centre)[0] == pytest.approx(framing.center_x * 256, abs=1e-4)
    assert crop.scale_x / crop.scale_y == pytest.approx(framing.stretch_x)
    assert crop.stature == pytest.approx(bottom - top)
    # the inverse maps back
    points = np.random.default_rng(0).uniform(-50, 450, size=(20, 2))
    np.testing.assert_allclose(crop.to_photo(crop.to_canvas(points)), points, atol=1e-9)
    np.testing.assert_allclose(crop.pose_to_photo(crop.pose_to_canvas(pose)).keypoints, pose.keypoints, atol=1e-3)


def test_without_a_mask_the_joints_give_nearly_the_same_crop():
    scene, mask, pose = scene_with_figure()
    framing = F.synthetic_framing(64)
    with_mask, without = F.frame_person(pose, mask, SCENE_W, SCENE_H, framing), F.frame_person(pose, None, SCENE_W, SCENE_H, framing)
    assert without.scale == pytest.approx(with_mask.scale, rel=0.06)
    assert abs(without.offset_y - with_mask.offset_y) < 0.06 * 64


def test_crop_image_places_the_person_and_fills_the_background():
    scene, mask, pose = scene_with_figure()
    keep = F.frame_person(pose, mask, SCENE_W, SCENE_H, F.synthetic_framing(64))
    canvas = keep.crop_image(scene)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.float32 and 0 <= canvas.min() and canvas.max() <= 1
    white = F.frame_person(pose, mask, SCENE_W, SCENE_H, F.deepfashion_framing(64))
    canvas = white.crop_image(scene, mask)
    person = white.crop_mask(mask)
    assert np.allclose(canvas[person == 0], 1.0)  # DeepFashion's studio: white around the person
    colour = F.Framing(64, 64, 0.8, 0.9, background="color", background_color=(255, 0, 0))
    canvas = F.frame_person(pose, mask, SCENE_W, SCENE_H, colour).crop_image(scene, mask)
    assert np.allclose(canvas[0, 0], [1, 0, 0])


def test_round_trip_crop_and_back_gives_the_photo():
    # an identity "generator": crop the photo onto the canvas and put the canvas back
    scene, mask, pose = scene_with_figure()
    smooth = np.ascontiguousarray(np.clip(scene.astype(np.float32) / 255, 0, 1))
    smooth[..., 2] = np.linspace(0, 1, SCENE_W)[None]  # low frequencies: the two resamplings keep them
    crop = F.frame_person(pose, None, SCENE_W, SCENE_H, F.synthetic_framing(256))
    canvas = crop.crop_image(smooth)
    region = crop.paste_region()
    _, image = crop.canvas_to_photo(canvas, cv2.BORDER_REPLICATE)
    _, coverage = crop.canvas_to_photo(np.ones(canvas.shape[:2], np.float32))
    assert not region.empty and image.shape[:2] == coverage.shape == (region.height, region.width)
    inner = coverage[2:-2, 2:-2] == 1
    photo = smooth[region.y0:region.y1, region.x0:region.x1][2:-2, 2:-2]
    assert np.abs(image[2:-2, 2:-2][inner] - photo[inner]).mean() < 0.01
    # an upscaled canvas (any size of the whole canvas) lands in the same place
    big = np.repeat(np.repeat(canvas, 2, axis=0), 2, axis=1)
    box2, image2 = crop.canvas_to_photo(big, cv2.BORDER_REPLICATE)
    assert box2 == (region.x0, region.y0, region.x1, region.y1) and np.abs(image2 - image)[4:-4, 4:-4].mean() < 0.02


@pytest.mark.parametrize("framing", [F.synthetic_framing(64), F.deepfashion_framing(256)], ids=["synthetic", "deepfashion"])
def test_target_pose_gets_the_source_size_and_the_training_feet(framing):
    scene, mask, pose = scene_with_figure()
    source_crop = F.frame_person(pose, mask, SCENE_W, SCENE_H, framing)
    # the same person drawn 2.5x larger in another photo: framed at the source person's size on the canvas
    _, _, target_kp = figure(11, "walking", size=320)
    target = Pose(target_kp, 320, 320)
    framed, crop = F.frame_targets([target], source_crop)
    size = framing.canvas_height
    measure = F.measure_person(framed[0], stretch_x=framing.stretch_x)  # DeepFashion's canvas is stretched in x
    assert measure.stature == pytest.approx(source_crop.stature * source_crop.scale, rel=1e-6)
    assert measure.sole == pytest.approx(framing.feet_y * size, abs=1e-4)
    assert measure.center_x == pytest.approx(framing.center_x * size, abs=1e-4)
    assert crop.scale_x / crop.scale_y == pytest.approx(framing.stretch_x)
    np.testing.assert_allclose(F.frame_target(target, source_crop, pose).keypoints, framed[0].keypoints)


def test_a_pose_sequence_is_framed_with_one_crop():
    _, _, kp = figure(5, "walking")
    base = Pose(kp, 300, 200)
    frames = []
    for step in range(4):  # walking to the right, 20 px a frame
        moved = kp.copy()
        moved[moved[:, 2] > 0, 0] += 20 * step
        frames.append(Pose(moved, 300, 200))
    source_crop = F.frame_person(base, None, 300, 200, F.synthetic_framing(64))
    framed, crop = F.frame_targets(frames, source_crop)
    shifts = [f.xy[1, 0] - framed[0].xy[1, 0] for f in framed]
    np.testing.assert_allclose(shifts, [20 * crop.scale_x * i for i in range(4)], atol=1e-4)  # still walks
    assert np.mean([F.measure_person(f).center_x for f in framed]) == pytest.approx(32, abs=1e-4)
    with pytest.raises(ValueError, match="target pose 2 of 2 is on a 100x200 canvas, the first on 300x200"):
        F.frame_targets([frames[0], Pose(kp, 100, 200)], source_crop)


def test_an_upside_down_target_stays_on_the_canvas():
    scene, mask, pose = scene_with_figure()
    source_crop = F.frame_person(pose, mask, SCENE_W, SCENE_H, F.synthetic_framing(64))
    flipped = pose.keypoints.copy()
    flipped[pose.present, 1] = SCENE_H - 1 - flipped[pose.present, 1]  # a handstand
    framed = F.frame_target(Pose(flipped, SCENE_W, SCENE_H), source_crop)
    y = framed.xy[framed.present, 1]
    assert 0 <= y.min() and y.max() <= 63
    assert y.min() == pytest.approx(F.synthetic_framing(64).head_y * 64 + 0.055 * source_crop.stature * source_crop.scale, abs=1e-3)


def test_framing_matches_the_synthetic_generator():
    """The embedded model's framing, re-measured on held-out synthetic poses (joints only)."""
    statures, soles, centres = [], [], []
    for seed in range(10_000_000, 10_000_080):
        pair = make_pair(seed, 64)
        for pose_info, kp in ((pair.source_pose, pair.source_keypoints), (pair.target_pose, pair.target_keypoints)):
            if pose_info.out_of_frame:
                continue
            try:
                m = F.measure_person(Pose(kp, 64, 64))
            except ValueError:
                continue
            statures.append(m.stature / 64)
            centres.append(m.center_x / 64)
            if m.sole is not None:
                soles.append(m.sole / 64)
    framing = F.framing_for(get_config("synthetic_64"))
    assert len(statures) > 100
    assert np.median(statures) == pytest.approx(framing.person_height, abs=0.03)
    assert np.median(soles) == pytest.approx(framing.feet_y, abs=0.02)
    assert np.median(centres) == pytest.approx(framing.center_x, abs=0.02)


# --- the model's framing ---------------------------------------------------------------------------


def test_framing_belongs_to_the_model():
    embedded = F.framing_for(load_model("embedded"))
    assert embedded == F.synthetic_framing(64) and embedded.background == "keep"
    official = F.framing_for(official_model_info())
    assert official.aspect == pytest.approx(176 / 256) and official.background == "white"
    assert official.output_size == (176, 256) and official.canvas_width == 256
    # a file's own framing metadata wins, at the file's canvas size
    custom = F.Framing(32, 32, 0.6, 0.8, background="color", background_color=(10, 20, 30), source="test")
    info = ModelInfo("m", get_config("tiny_32"), 0.1, 0.1, extra={"framing": custom.to_json()})
    assert F.framing_for(info) == custom == info.framing
    assert F.framing_for(ModelInfo.from_metadata(info.to_metadata())) == custom
    # files without it: our trainer's synthetic models get the synthetic framing, the rest DeepFashion's
    trained = ModelInfo("t", get_config("tiny_32"), 0.1, 0.1, extra={"fit": "pad", "training": json.dumps({"data": "synthetic"})})
    assert F.framing_for(trained) == F.synthetic_framing(32)
    tuned = ModelInfo("t", get_config("tiny_32"), 0.1, 0.1, extra={"training": json.dumps({"data": "deepfashion:/x"})})
    assert F.framing_for(tuned) == F.deepfashion_framing(32)


@pytest.mark.parametrize("text, fragment", [
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
    ('{"person_height": 0.8}', "no 'feet_y'"),
    ('{"person_height": 0.8, "feet_y": 0.9, "zoom": 2}', "unknown fields"),
    ('{"person_height": "tall", "feet_y": 0.9}', "person_height must be a number"),
    ('{"person_height": 1e308, "feet_y": 0.9}', "person_height must be a number from"),
    ('{"person_height": 0.8, "feet_y": 0.9, "background": "blur"}', "background must be one of"),
    ('{"person_height": 0.8, "feet_y": 0.9, "background_color": [1, 2]}', "background_color must be 3 whole numbers"),
    ('{"person_height": 0.8, "feet_y": 0.9, "aspect": NaN}', "aspect must be a number"),
    ("x" * 5000, "at most 2000 characters"),
])
def test_bad_framing_metadata_fails_at_load(text, fragment):
    info = ModelInfo("m", get_config("tiny_32"), 0.1, 0.1)
    metadata = dict(info.to_metadata(), framing=text)
    with pytest.raises(CheckpointError, match="invalid framing metadata: .*" + fragment.replace("(", r"\(")):
        ModelInfo.from_metadata(metadata, "bad.safetensors")


# --- bad inputs ------------------------------------------------------------------------------------


def test_bad_sources_get_clear_errors():
    scene, mask, pose = scene_with_figure()
    framing = F.synthetic_framing(64)
    with pytest.raises(ValueError, match="no person: the pose has no joints"):
        F.frame_person(Pose(np.zeros((18, 3)), SCENE_W, SCENE_H), None, SCENE_W, SCENE_H, framing)
    head_and_shoulders = pose.keypoints.copy()
    head_and_shoulders[3:14] = 0  # no arms, hips, legs
    with pytest.raises(ValueError, match="only down to the chest .*at least down to the hips"):
        F.frame_person(Pose(head_and_shoulders, SCENE_W, SCENE_H), None, SCENE_W, SCENE_H, framing)
    no_neck = pose.keypoints.copy()
    no_neck[[1, 2, 5]] = 0
    with pytest.raises(ValueError, match="neck and shoulders are not found"):
        F.frame_person(Pose(no_neck, SCENE_W, SCENE_H), None, SCENE_W, SCENE_H, framing)
    tiny = pose.keypoints.copy()
    tiny[:, :2] = tiny[:, :2] * 0.02
    with pytest.raises(ValueError, match="only about .* pixels tall: too small"):
        F.frame_person(Pose(tiny, SCENE_W, SCENE_H), None, SCENE_W, SCENE_H, framing)
    with pytest.raises(ValueError, match="mask is 300x300 pixels but the photo is 400x300"):
        F.frame_person(pose, np.ones((300, 300)), SCENE_W, SCENE_H, framing)
    with pytest.raises(ValueError, match="person mask is empty"):
        F.frame_person(pose, np.zeros((SCENE_H, SCENE_W)), SCENE_W, SCENE_H, framing)
    other = np.zeros((SCENE_H, SCENE_W), np.float32)
    other[:, :100] = 1  # somebody else, on the left
    with pytest.raises(ValueError, match="does not cover any joint of the pose"):
        F.frame_person(pose, other, SCENE_W, SCENE_H, framing)
    with pytest.raises(ValueError, match="contains NaN"):
        F.frame_person(pose, np.full((SCENE_H, SCENE_W), np.nan), SCENE_W, SCENE_H, framing)
    with pytest.raises(ValueError, match="on a 200x150 canvas but the photo is 400x300"):
        F.frame_person(Pose(pose.keypoints, 200, 150), None, SCENE_W, SCENE_H, framing)
    # a 1x1 mask is one value for every pixel: 0 is an empty mask, 1 the whole photo
    with pytest.raises(ValueError, match="person mask is empty"):
        F.frame_person(pose, np.zeros((1, 1)), SCENE_W, SCENE_H, framing)
    whole = F.frame_person(pose, np.ones((1, 1)), SCENE_W, SCENE_H, framing)  # no edge to read: the joints decide
    assert whole == F.frame_person(pose, None, SCENE_W, SCENE_H, framing)
    # a mask of another size with the photo's aspect is resized, not refused
    half = mask[::2, ::2]
    assert F.frame_person(pose, half, SCENE_W, SCENE_H, framing).scale == pytest.approx(
        F.frame_person(pose, mask, SCENE_W, SCENE_H, framing).scale, rel=0.02)
    crop = F.frame_person(pose, mask, SCENE_W, SCENE_H, framing)
    with pytest.raises(ValueError, match="photo is 100x100 pixels but the crop was made for a 400x300 photo"):
        crop.crop_image(np.zeros((100, 100, 3), np.uint8))


def test_people_cut_by_the_border_are_framed_with_a_note(caplog):
    scene, mask, pose = scene_with_figure(offset=(250, 200))  # feet below the bottom edge
    kp = pose.keypoints.copy()
    outside = (kp[:, 1] > SCENE_H - 0.5) | (kp[:, 0] > SCENE_W - 0.5)
    kp[outside] = 0  # a detector does not report joints off the photo
    cut = Pose(kp, SCENE_W, SCENE_H)
    assert not cut.present[[10, 13]].any()
    framing = F.synthetic_framing(64)
    crop = F.frame_person(cut, mask, SCENE_W, SCENE_H, framing)
    assert any("feet are not in the photo" in note for note in crop.notes)
    assert "feet are not in the photo" in caplog.text
    # placed by the head: the head top goes to head_y, the person keeps a full-body scale
    top, _ = mask_rows(mask)
    assert crop.to_canvas(np.array([0.0, top]))[1] == pytest.approx(framing.head_y * 64, abs=1.5)
    full = F.frame_person(pose, None, SCENE_W, SCENE_H, framing)
    assert crop.scale == pytest.approx(full.scale, rel=0.1)
    # the canvas reaches past the photo: that part is filled (the border repeated for "keep")
    assert crop.paste_region().y1 == SCENE_H and crop.canvas_box_in_photo()[3] > SCENE_H


# --- through the pipeline --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(save_tiny_model(tmp_path_factory.mktemp("framing") / "tiny.safetensors"))


def test_fit_person_crops_travel_with_the_texture(tiny):
    scene, mask, pose = scene_with_figure()
    image = torch.from_numpy(scene).float()[None] / 255
    texture = pipeline.encode_source(tiny, image, torch.from_numpy(mask)[None], "auto", [pose])
    assert texture.fit_mode == "person" and len(texture.placements) == 1 and texture.source.shape == (1, 3, 32, 32)
    framing = texture.framing
    assert framing == F.deepfashion_framing(32)  # the tiny test file has no framing and no training record
    assert texture.placements[0] == F.frame_person(pose, mask, SCENE_W, SCENE_H, framing)
    # the sampler frames the target with the same crop rules and returns the framed canvas
    target = Pose(figure(7, "walking")[2], FIGURE, FIGURE)
    out = pipeline.sample(tiny, texture, [target, target], SamplingSettings(steps=1))
    assert out.shape == (2, 32, framing.output_size[0], 3)
    crops = pipeline.target_placements(texture, [target, target])
    assert crops[0] == crops[1] == F.frame_targets([target, target], texture.placements[0])[1]
    # without a pose, auto keeps the model's own fit
    assert pipeline.encode_source(tiny, image).fit_mode in ("pad", "stretch")


def test_fit_person_bad_inputs(tiny):
    scene, mask, pose = scene_with_figure()
    image = torch.from_numpy(scene).float()[None] / 255
    with pytest.raises(ValueError, match="fit 'person' needs the source person's pose: connect Pose From Image"):
        pipeline.encode_source(tiny, image, None, "person")
    with pytest.raises(ValueError, match="2 source poses for 1 source image: give one pose per source image"):
        pipeline.encode_source(tiny, image, None, "person", [pose, pose])
    with pytest.raises(ValueError, match="source image: no person: the pose has no joints"):
        pipeline.encode_source(tiny, image, None, "person", [Pose(np.zeros((18, 3)), SCENE_W, SCENE_H)])
    with pytest.raises(ValueError, match="source pose is on a 100x100 canvas but its photo is 400x300"):
        pipeline.encode_source(tiny, image, None, "person", [Pose(pose.keypoints, 100, 100)])
    with pytest.raises(ValueError, match="source mask has 2 masks for 1 source image"):
        pipeline.encode_source(tiny, image, torch.ones(2, SCENE_H, SCENE_W), "person", [pose])
    with pytest.raises(ValueError, match="source image: person mask is 50x50 pixels but the photo is 400x300"):
        pipeline.encode_source(tiny, image, torch.ones(1, 50, 50), "person", [pose])
    with pytest.raises(ValueError, match="fit must be one of auto, person, pad, stretch"):
        pipeline.encode_source(tiny, image, None, "zoom", [pose])
    # a pose detected on a half-size copy of the photo is scaled to it
    half = Pose(np.concatenate([pose.keypoints[:, :2] / 2, pose.keypoints[:, 2:]], axis=1), 200, 150)
    texture = pipeline.encode_source(tiny, image, None, "person", [half])
    assert texture.placements[0].scale == pytest.approx(F.frame_person(pose, None, SCENE_W, SCENE_H, texture.framing).scale, rel=1e-4)
    texture = pipeline.encode_source(tiny, image, None, "person", [pose])
    with pytest.raises(ValueError, match="target pose 1 of 1 has no joints"):  # the sampler's own check, first
        pipeline.sample(tiny, texture, [Pose(np.zeros((18, 3)), 64, 64)], SamplingSettings(steps=1))
    with pytest.raises(ValueError, match="not supported with fit 'person' yet"):
        pipeline.sample(tiny, texture, [pose], SamplingSettings(steps=1), appearance_mask=torch.ones(1, SCENE_H, SCENE_W))


def test_a_source_pose_wholly_outside_its_photo_is_an_error_not_a_blank_canvas(tiny):
    # once only a log line ("cut by the side") and a texture of the photo's repeated border
    scene, mask, pose = scene_with_figure()
    away = pose.keypoints.copy()
    away[pose.present, 0] += 1000
    framing = F.synthetic_framing(64)
    with pytest.raises(ValueError, match=r"the source pose has no joint inside its 400x300 photo \(x 1.*\): the crop would "
                                         r"hold no person; give the pose of this photo's person"):
        F.frame_person(Pose(away, SCENE_W, SCENE_H), None, SCENE_W, SCENE_H, framing)
    image = torch.from_numpy(scene).float()[None] / 255
    with pytest.raises(ValueError, match="source image: the source pose has no joint inside its 400x300 photo"):
        pipeline.encode_source(tiny, image, None, "auto", [Pose(away, SCENE_W, SCENE_H)])


def test_target_poses_that_cannot_be_framed_are_told_about_the_pose():
    # once "the photo shows the person only down to the chest ... or use fit 'pad'" for a target pose
    _, mask, pose = scene_with_figure()
    crop = F.frame_person(pose, mask, SCENE_W, SCENE_H, F.synthetic_framing(64))
    chest = pose.keypoints.copy()
    chest[[8, 9, 10, 11, 12, 13]] = 0
    no_neck = pose.keypoints.copy()
    no_neck[[1, 2, 5]] = 0
    tiny_pose = pose.keypoints.copy()
    tiny_pose[:, :2] *= 0.02
    for keypoints, fragment in ((chest, "the pose ends at the chest .*give a target pose down to the hips"),
                                (no_neck, "the pose has no neck and no pair of shoulders"),
                                (tiny_pose, "the pose is only about .* pixels tall on its canvas")):
        with pytest.raises(ValueError, match="target pose: " + fragment) as info:
            F.frame_targets([Pose(keypoints, SCENE_W, SCENE_H)], crop)
        assert "photo" not in str(info.value) and "fit 'pad'" not in str(info.value)
    with pytest.raises(ValueError, match="target pose 2 of 2: the pose ends at the chest"):
        F.frame_targets([pose, Pose(chest, SCENE_W, SCENE_H)], crop)


def test_an_upside_down_source_is_told_so_not_that_its_feet_are_missing(caplog):
    rgb, alpha, keypoints = figure(3)
    flipped = keypoints.copy()
    flipped[flipped[:, 2] > 0, 1] = FIGURE - 1 - flipped[flipped[:, 2] > 0, 1]  # a handstand
    crop = F.frame_person(Pose(flipped, FIGURE, FIGURE), None, FIGURE, FIGURE, F.synthetic_framing(64))
    assert any("upside down" in note for note in crop.notes)
    assert not any("feet are not in the photo" in note for note in crop.notes)
    assert "upside down (ankles above the neck)" in caplog.text
