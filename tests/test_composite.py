"""Back into the photo (pidm_core.composite): the round trip crop → paste, the old person filled, the new
person cut out with a soft edge, sequences, upscaled canvases, and every bad input with a clear error."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from pidm_core import composite
from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, make_scene
from pidm_core.framing import frame_person, frame_targets, synthetic_framing
from pidm_core.pose.keypoints import Pose
from tests.capped import run_capped

CANVAS = 64
FRAMING = synthetic_framing(CANVAS)
SEED = SCENE_SEED_OFFSET + 2  # a standing person who steps aside in the target


def ideal_output(scene, source_crop, target_crop):
    """What a perfect model draws on the canvas: the source canvas's backdrop (the model copies it; here
    without the old person: the true backdrop) with the true target person where the target crop puts them."""
    backdrop = source_crop.crop_image(scene.background)
    person = target_crop.crop_image(scene.target_image)
    alpha = target_crop.crop_mask(scene.target_mask)[..., None]
    return backdrop * (1 - alpha) + person * alpha


def _framed(scene):
    """Source crop, target crop, target keypoints on the canvas, source canvas and its person mask."""
    w, h = scene.width, scene.height
    source_crop = frame_person(Pose(scene.source_keypoints, w, h), scene.source_mask, w, h, FRAMING)
    [target], target_crop = frame_targets([Pose(scene.target_keypoints, w, h)], source_crop)
    return (source_crop, target_crop, target.keypoints, source_crop.crop_image(scene.source_image),
            source_crop.crop_mask(scene.source_mask))


def _source_on_canvas(scene, crop):
    keypoints = crop.to_canvas(scene.source_keypoints.astype(np.float64))
    keypoints[scene.source_keypoints[:, 2] <= 0] = 0
    return keypoints


@pytest.fixture(scope="module")
def scene():
    return make_scene(SEED, 192)


@pytest.fixture(scope="module")
def life_size_scene():
    """A scene whose person is as tall in the photo as on the canvas: the crop is (almost) 1:1."""
    probe = make_scene(SEED, 192)
    return make_scene(SEED, int(round(192 * FRAMING.person_height * CANVAS / probe.source_pose.scale_px)))


def test_round_trip_with_an_identity_generator_gives_back_the_photo_outside_the_filled_area(life_size_scene):
    scene = life_size_scene
    source_crop, *_ = _framed(scene)
    assert source_crop.scale == pytest.approx(1.0, abs=0.05)
    canvas = source_crop.crop_image(scene.source_image)  # the "generator" returns its input
    result = composite.paste_into_photo(scene.source_image, canvas, source_crop, _source_on_canvas(scene, source_crop),
                                        old_masks=scene.source_mask, reference=canvas,
                                        reference_mask=source_crop.crop_mask(scene.source_mask))
    photo = scene.source_image.astype(np.float32) / 255
    error = np.abs(result.images[0] - photo).max(-1)
    untouched = (result.person[0] == 0) & (result.filled[0] == 0)
    assert untouched.mean() > 0.8
    np.testing.assert_array_equal(result.images[0][untouched], photo[untouched])  # bit for bit
    outside_filled = result.filled[0] < 0.05
    # under the pasted person: the photo after two resamplings (photo → canvas → photo)
    assert error[outside_filled].mean() < 0.01 and np.percentile(error[outside_filled], 99) < 0.15
    # the new person covers the old one: what stays filled is the grown rim around it, not the body
    assert (result.filled[0] > 0.5)[scene.source_mask > 0.99].mean() < 0.1


def test_the_old_person_is_removed_and_the_filled_area_returned(scene):
    source_crop, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    perfect = ideal_output(scene, source_crop, target_crop)
    result = composite.paste_into_photo(scene.source_image, perfect, target_crop, keypoints,
                                        old_masks=scene.source_mask, reference=source_canvas,
                                        reference_mask=source_canvas_mask)
    out, truth = result.images[0], scene.target_image.astype(np.float32) / 255
    source = scene.source_image.astype(np.float32) / 255
    left_bare = (scene.source_mask > 0.5) & (scene.target_mask == 0)
    assert left_bare.sum() > 100
    # where the old person stood and nobody stands now: filled, and much closer to the backdrop
    assert (result.filled[0][left_bare] > 0.5).mean() > 0.9  # the rest: the new person's feathered rim
    before = np.abs(source - truth)[left_bare].mean()
    after = np.abs(out - truth)[left_bare].mean()
    assert after < 0.4 * before
    # the filled mask is the hole less the new person, and nothing far from the old person
    assert (result.filled[0] <= 1 - result.person[0] + 1e-6).all()
    ys, xs = np.nonzero(scene.source_mask > 0)
    far = np.ones_like(result.filled[0], bool)
    far[max(0, ys.min() - 20):ys.max() + 21, max(0, xs.min() - 20):xs.max() + 21] = False
    assert result.filled[0][far].max() == 0
    # the new person is where the truth has them
    person = result.person[0] > 0.5
    iou = (person & (scene.target_mask > 0.5)).sum() / (person | (scene.target_mask > 0.5)).sum()
    assert iou > 0.75
    # the rest of the error: a 64-pixel canvas enlarged 2.25 times is blurrier than the truth
    assert np.abs(out - truth).mean() < 0.5 * np.abs(source - truth).mean()


def test_the_cut_has_a_soft_edge_inside_the_pose_envelope(scene):
    source_crop, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    image = ideal_output(scene, source_crop, target_crop)
    stature = FRAMING.person_height * CANVAS
    alpha = composite.new_person_alpha(image, keypoints, stature, source_canvas, source_canvas_mask)
    envelope = composite.person_envelope(keypoints, stature, CANVAS, CANVAS)
    assert (alpha[envelope == 0] == 0).all()
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 20  # a feathered rim, not a hard cut
    truth = target_crop.crop_mask(scene.target_mask) > 0.5
    assert alpha[truth].mean() > 0.85  # the body is pasted
    # outside the true person, the envelope alone would paste canvas background; the cut keeps little of it
    only_envelope = composite.new_person_alpha(image, keypoints, stature)
    assert alpha[~truth].sum() < 0.6 * only_envelope[~truth].sum()
    assert only_envelope[truth].mean() > 0.9


def test_a_pose_sequence_pastes_frame_by_frame_with_one_fill(scene):
    source_crop, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    frames = 3
    images = np.stack([ideal_output(scene, source_crop, target_crop)] * frames)
    shifted = np.stack([keypoints + np.array([dx, 0, 0]) * (keypoints[:, 2:] > 0) for dx in (-6, 0, 6)])
    images = np.stack([np.roll(img, dx, axis=1) for img, dx in zip(images, (-6, 0, 6))])
    result = composite.paste_into_photo(scene.source_image, images, target_crop, shifted,
                                        old_masks=scene.source_mask, reference=source_canvas,
                                        reference_mask=source_canvas_mask)
    assert result.images.shape == (frames, scene.height, scene.width, 3)
    assert result.filled.shape == result.person.shape == (frames, scene.height, scene.width)
    centres = [np.nonzero(p > 0.5)[1].mean() for p in result.person]
    assert centres[0] < centres[1] < centres[2]  # the person walks across the photo
    # one fill for every frame: where no frame's person is, the frames agree exactly
    nobody = (result.person.max(0) == 0)
    np.testing.assert_array_equal(result.images[0][nobody], result.images[2][nobody])
    # one pose for every frame is accepted too
    same_pose = composite.paste_into_photo(scene.source_image, images[:2], target_crop, keypoints)
    assert same_pose.images.shape[0] == 2 and same_pose.filled.max() == 0  # no mask: nothing filled


def counting_fills(monkeypatch) -> list:
    """composite.person_fill (every inpainting: the photo's and the source canvas's) counted: what each filled."""
    calls, fill = [], composite.person_fill

    def counted(photo, mask, method="telea"):
        calls.append(photo.shape[:2])
        return fill(photo, mask, method)

    monkeypatch.setattr(composite, "person_fill", counted)
    return calls


def test_a_backdrop_pastes_the_same_frames_and_inpaints_once_for_many_calls(scene, monkeypatch):
    source_crop, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    shifted = np.stack([keypoints + np.array([dx, 0, 0]) * (keypoints[:, 2:] > 0) for dx in (-6, 0, 6)])
    ideal = ideal_output(scene, source_crop, target_crop)
    images = np.stack([np.roll(ideal, dx, axis=1) for dx in (-6, 0, 6)])
    inputs = dict(old_masks=scene.source_mask, reference=source_canvas, reference_mask=source_canvas_mask)
    whole = composite.paste_into_photo(scene.source_image, images, target_crop, shifted, **inputs)
    calls = counting_fills(monkeypatch)
    composite.paste_into_photo(scene.source_image, images, target_crop, shifted, **inputs)
    assert len(calls) == 2  # one call: the photo once, the source canvas once for its three frames
    calls.clear()
    backdrop = composite.photo_backdrop(scene.source_image, (images.shape[2], images.shape[1]), **inputs)
    assert len(calls) == 2
    for i in range(3):  # a frame per call, as a video of one-frame chunks pastes them: nothing inpainted again
        one = composite.paste_into_photo(scene.source_image, images[i:i + 1], target_crop, shifted[i:i + 1],
                                         backdrop=backdrop, **inputs)
        for name in ("images", "filled", "person"):
            assert np.array_equal(getattr(one, name)[0], getattr(whole, name)[i]), (name, i)
    assert len(calls) == 2
    # the source canvas filled once gives new_person_alpha's mask bit for bit
    stature = target_crop.framing.person_height * images.shape[1]
    filled = composite.reference_backdrop(source_canvas, source_canvas_mask, *images.shape[1:3])
    assert np.array_equal(composite.new_person_alpha(images[0], shifted[0], stature, backdrop=filled),
                          composite.new_person_alpha(images[0], shifted[0], stature, source_canvas, source_canvas_mask))
    # without a mask or a source canvas: the pose envelope and no fill, the same with the backdrop
    bare = composite.photo_backdrop(scene.source_image, (images.shape[2], images.shape[1]))
    assert bare.fill is None and bare.reference is None
    assert np.array_equal(composite.paste_into_photo(scene.source_image, images, target_crop, shifted,
                                                     backdrop=bare).images,
                          composite.paste_into_photo(scene.source_image, images, target_crop, shifted).images)


def test_a_backdrop_made_for_other_inputs_is_refused(scene):
    _, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    image = target_crop.crop_image(scene.target_image)
    size = (image.shape[1], image.shape[0])
    backdrop = composite.photo_backdrop(scene.source_image, size, old_masks=scene.source_mask)
    cases = [
        (dict(images=cv2.resize(image, (2 * size[0], 2 * size[1]))), r"made for \d+x\d+ generated images"),
        (dict(old_masks=None), "made with other inputs"),
        (dict(reference=source_canvas, reference_mask=source_canvas_mask), "made with other inputs"),
        (dict(photos=np.stack([scene.source_image] * 2), images=np.stack([image] * 2)), "a backdrop serves one photo"),
    ]
    for change, match in cases:
        with pytest.raises(ValueError, match=match):
            _paste(scene, backdrop=backdrop, **change)
    small = composite.photo_backdrop(scene.source_image[:-2, :-2], size)
    with pytest.raises(ValueError, match="made for a .* photo"):
        _paste(scene, backdrop=small, old_masks=None)
    with pytest.raises(ValueError, match="a backdrop is made for one photo"):
        composite.photo_backdrop(np.stack([scene.source_image] * 2), size)


def test_an_upscaled_canvas_pastes_like_the_canvas(scene):
    source_crop, target_crop, keypoints, source_canvas, source_canvas_mask = _framed(scene)
    image = ideal_output(scene, source_crop, target_crop)
    upscaled = cv2.resize(image, (CANVAS * 4, CANVAS * 4), interpolation=cv2.INTER_CUBIC)
    a = composite.paste_into_photo(scene.source_image, image, target_crop, keypoints, old_masks=scene.source_mask,
                                   reference=source_canvas, reference_mask=source_canvas_mask)
    b = composite.paste_into_photo(scene.source_image, upscaled, target_crop, keypoints, old_masks=scene.source_mask,
                                   reference=source_canvas, reference_mask=source_canvas_mask)
    assert np.abs(a.person - b.person).mean() < 0.01
    assert np.abs(a.images - b.images).mean() < 0.01


def test_a_huge_hole_is_inpainted_at_bounded_resolution_quickly():
    photo = np.zeros((1600, 1200, 3), np.float32)
    photo[..., 0] = np.linspace(0, 1, 1200)[None, :]  # a ramp the fill should continue
    mask = np.zeros((1600, 1200), np.float32)
    mask[200:1500, 400:800] = 1
    start = time.process_time()
    filled, hole = composite.fill_person_area(photo, mask)
    assert time.process_time() - start < 5
    assert hole[200:1500, 400:800].all() and hole.sum() < 1.3 * mask.sum()
    middle = filled[850, 400:800, 0]
    assert np.isfinite(filled).all() and 0.2 < middle.mean() < 0.8
    np.testing.assert_array_equal(filled[hole == 0], photo[hole == 0])


def test_an_empty_mask_fills_nothing(scene):
    filled, hole = composite.fill_person_area(scene.source_image.astype(np.float32) / 255,
                                              np.zeros(scene.source_mask.shape, np.float32))
    assert hole.max() == 0
    np.testing.assert_array_equal(filled, scene.source_image.astype(np.float32) / 255)


def _paste(scene, **changes):
    _, target_crop, keypoints, *_ = _framed(scene)
    args = dict(photos=scene.source_image, images=target_crop.crop_image(scene.target_image), crop=target_crop,
                keypoints=keypoints, old_masks=scene.source_mask)
    args.update(changes)
    return composite.paste_into_photo(args.pop("photos"), args.pop("images"), args.pop("crop"), args.pop("keypoints"),
                                      **args)


@pytest.mark.parametrize("change, match", [
    (lambda s: {"old_masks": np.ones((50, 50), np.float32)}, r"person mask is 50x50 pixels but the photo is"),
    (lambda s: {"photos": s.source_image[:, :-40]}, r"photo is .* but the crop was made for"),
    (lambda s: {"images": np.zeros((64, 100, 3), np.float32)}, r"generated image is 100x64 .* connect the sampler"),
    (lambda s: {"images": np.full((64, 64, 3), np.nan, np.float32)}, r"generated images contains NaN"),
    (lambda s: {"old_masks": np.full(s.source_mask.shape, np.inf, np.float32)}, r"person mask contains NaN"),
    (lambda s: {"keypoints": np.zeros((17, 3))}, r"target keypoints must be \[N, 18, 3\]"),
    (lambda s: {"keypoints": np.zeros((3, 18, 3))}, r"target poses holds 3 items for 1 generated image: give 1$"),
    (lambda s: {"photos": np.stack([s.source_image] * 3), "images": np.zeros((2, 64, 64, 3), np.float32),
                "keypoints": np.zeros((2, 18, 3))}, r"photo holds 3 items for 2 generated images"),
    (lambda s: {"old_masks": np.stack([s.source_mask] * 2)}, r"person mask holds 2 items for 1 photo: give 1$"),
    (lambda s: {"photos": np.zeros((4, 4, 3), np.float32)}, r"photo is 4x4 pixels; it must be at least 8x8"),
    (lambda s: {"images": np.zeros((2, 3), np.float32)}, r"generated images must be an image batch"),
    (lambda s: {"method": "magic"}, r"inpainting method must be one of"),
])
def test_bad_inputs_are_clear_errors(scene, change, match):
    with pytest.raises(ValueError, match=match):
        _paste(scene, **change(scene))


def test_a_mask_of_the_same_aspect_is_resized(scene):
    half = cv2.resize(scene.source_mask, (scene.width // 2, scene.height // 2), interpolation=cv2.INTER_AREA)
    assert _paste(scene, old_masks=half).filled.sum() == pytest.approx(_paste(scene).filled.sum(), rel=0.1)


CASE_TOO_MANY_FRAMES = """
import numpy as np
from pidm_core import composite
from pidm_core.framing import synthetic_framing
from pidm_core.placement import Placement
crop = Placement("person", 2000, 2000, 64, 64, 0.05, 0.05, 0.0, 0.0, synthetic_framing(64), 1000.0)
photo = np.zeros((1, 2000, 2000, 3), np.uint8)
images = np.zeros((40, 8, 8, 3), np.float32)
composite.paste_into_photo(photo, images, crop, np.zeros((18, 3)))
"""


def test_too_many_frames_of_a_large_photo_are_refused_before_allocating():
    # the time limit covers importing torch and cv2 in a fresh process on a loaded 2-core machine
    run_capped(CASE_TOO_MANY_FRAMES).assert_clean_error(ValueError, "40 frames of a 2000x2000 photo need 3.0 GiB",
                                                        max_seconds=90)


# --- from a framed texture (what Put Back Into Photo holds) ---------------------------------------


def _texture(scene):
    """A stand-in for a SourceTexture encoded with fit 'person': its placements and the canvas the model saw."""
    import types

    import torch

    source_crop, *_ = _framed(scene)
    canvas = torch.from_numpy(source_crop.crop_image(scene.source_image)).permute(2, 0, 1)[None] * 2 - 1
    return types.SimpleNamespace(placements=(source_crop,), source=canvas)


def test_paste_from_texture_puts_the_person_where_the_target_pose_stands(scene):
    texture = _texture(scene)
    source_crop, target_crop, keypoints, *_ = _framed(scene)
    target = Pose(scene.target_keypoints, scene.width, scene.height)
    image = ideal_output(scene, source_crop, target_crop)
    at_pose = composite.paste_from_texture(texture, scene.source_image, image, [target], scene.source_mask)
    person = at_pose.person[0] > 0.5
    assert (person & (scene.target_mask > 0.5)).sum() / (person | (scene.target_mask > 0.5)).sum() > 0.75
    # place "source": the same drawing where the source person stood (their soles and centre line)
    at_source = composite.paste_from_texture(texture, scene.source_image, image, [target], scene.source_mask,
                                             place="source")
    ys, xs = np.nonzero(at_source.person[0] > 0.5)
    sy, sx = np.nonzero(scene.source_mask > 0.5)
    assert abs(xs.mean() - sx.mean()) < 0.1 * (sy.max() - sy.min()) and abs(ys.max() - sy.max()) <= 4


def test_a_pose_on_another_canvas_is_fitted_onto_the_photo(scene):
    texture = _texture(scene)
    source_crop, target_crop, *_ = _framed(scene)
    image = ideal_output(scene, source_crop, target_crop)
    target = Pose(scene.target_keypoints, scene.width, scene.height)
    doubled = Pose(scene.target_keypoints * np.array([2, 2, 1], np.float32), scene.width * 2, scene.height * 2)
    a = composite.paste_from_texture(texture, scene.source_image, image, [target])
    b = composite.paste_from_texture(texture, scene.source_image, image, [doubled])
    assert np.abs(a.person - b.person).mean() < 0.01


def test_a_larger_copy_of_the_photo_gets_the_result_in_its_resolution(scene):
    texture = _texture(scene)
    source_crop, target_crop, *_ = _framed(scene)
    image = ideal_output(scene, source_crop, target_crop)
    target = Pose(scene.target_keypoints, scene.width, scene.height)
    large = cv2.resize(scene.source_image, (scene.width * 2, scene.height * 2), interpolation=cv2.INTER_CUBIC)
    small = composite.paste_from_texture(texture, scene.source_image, image, [target], scene.source_mask)
    big = composite.paste_from_texture(texture, large, image, [target], scene.source_mask)
    assert big.images.shape == (1, scene.height * 2, scene.width * 2, 3)
    shrunk = cv2.resize(big.person[0], (scene.width, scene.height), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk - small.person[0]).mean() < 0.01


def test_a_sequence_from_one_source_is_pasted_with_one_crop(scene):
    texture = _texture(scene)
    source_crop, target_crop, *_ = _framed(scene)
    image = ideal_output(scene, source_crop, target_crop)
    frames = [Pose(scene.target_keypoints + np.array([dx, 0, 0], np.float32) * (scene.target_keypoints[:, 2:] > 0),
                   scene.width, scene.height) for dx in (0, 10, 20)]
    result = composite.paste_from_texture(texture, scene.source_image, np.stack([image] * 3), frames, scene.source_mask)
    centres = [np.nonzero(p > 0.5)[1].mean() for p in result.person]
    assert centres[0] < centres[1] < centres[2]


@pytest.mark.parametrize("change, match", [
    (lambda s, t: {"texture": types_ns(placements=None)}, r"texture was not framed .* fit 'person'"),
    (lambda s, t: {"old_masks": np.ones(s.source_mask.shape, np.float32)}, r"person mask covers 100% of the photo"),
    (lambda s, t: {"images": np.zeros((2, 64, 64, 3), np.float32)}, r"generated images holds 2 images for 1 target"),
    (lambda s, t: {"photos": s.source_image[:-30]}, r"photo is .* but the person was framed in a"),
    (lambda s, t: {"poses": []}, r"no target pose given"),
    (lambda s, t: {"place": "moon"}, r"place must be one of pose, source"),
    (lambda s, t: {"method": 3}, r"inpainting method must be one of telea, ns"),
])
def test_bad_paste_from_texture_inputs_are_clear_errors(scene, change, match):
    texture = _texture(scene)
    source_crop, target_crop, *_ = _framed(scene)
    args = dict(texture=texture, photos=scene.source_image, images=ideal_output(scene, source_crop, target_crop),
                poses=[Pose(scene.target_keypoints, scene.width, scene.height)], old_masks=scene.source_mask)
    args.update(change(scene, texture))
    with pytest.raises(ValueError, match=match):
        composite.paste_from_texture(**args)


def types_ns(**fields):
    import types

    return types.SimpleNamespace(**fields)


def test_two_sources_with_their_own_poses_are_pasted_into_their_own_photos(scene):
    import types

    import torch

    other = make_scene(SEED + 5, 192, aspect=scene.width / scene.height)
    assert other.source_image.shape == scene.source_image.shape
    crops = tuple(_framed(s)[0] for s in (scene, other))
    canvases = torch.stack([torch.from_numpy(c.crop_image(s.source_image)).permute(2, 0, 1) * 2 - 1
                            for c, s in zip(crops, (scene, other))])
    texture = types.SimpleNamespace(placements=crops, source=canvases)
    images = np.stack([ideal_output(s, *_framed(s)[:2]) for s in (scene, other)])
    poses = [Pose(s.target_keypoints, s.width, s.height) for s in (scene, other)]
    result = composite.paste_from_texture(texture, np.stack([scene.source_image, other.source_image]), images, poses,
                                          np.stack([scene.source_mask, other.source_mask]))
    for index, s in enumerate((scene, other)):
        person = result.person[index] > 0.5
        assert (person & (s.target_mask > 0.5)).sum() / (person | (s.target_mask > 0.5)).sum() > 0.6
        assert result.filled[index][(s.source_mask > 0.5) & (s.target_mask == 0)].mean() > 0.5


# --- hostile input (issue 23): poses outside the photo, memory, values out of range, photos mixed up ---------


def _target(scene, dx: float = 0.0) -> Pose:
    keypoints = scene.target_keypoints.copy()
    keypoints[keypoints[:, 2] > 0, 0] += dx
    return Pose(keypoints, scene.width, scene.height)


def _paste_texture(scene, **changes):
    source_crop, target_crop, *_ = _framed(scene)
    args = dict(texture=_texture(scene), photos=scene.source_image, images=ideal_output(scene, source_crop, target_crop),
                poses=[_target(scene)], old_masks=scene.source_mask)
    args.update(changes)
    return composite.paste_from_texture(**args)


@pytest.mark.parametrize("dx", [-1000, 300, 5000])
def test_a_target_pose_wholly_outside_the_photo_is_named_not_a_broadcast_error(scene, dx):
    # once a raw numpy broadcast error, or the photo with the old person removed and nothing pasted
    with pytest.raises(ValueError, match=r"target pose stands wholly outside the photo: its joints land at x .* of the "
                                         r"341x192 photo, so nothing of the new person would be pasted; .*place 'source'"):
        _paste_texture(scene, poses=[_target(scene, dx)])
    # the sequence names the frame
    with pytest.raises(ValueError, match=r"target pose 2 of 2 stands wholly outside the photo"):
        _paste_texture(scene, poses=[_target(scene), _target(scene, dx)], images=np.zeros((2, 64, 64, 3), np.float32))
    # and so does paste_into_photo, given keypoints on the canvas
    _, target_crop, keypoints, *_ = _framed(scene)
    away = keypoints.copy()
    away[away[:, 2] > 0, 0] += dx * target_crop.scale_x
    with pytest.raises(ValueError, match="target pose stands wholly outside the photo"):
        _paste(scene, keypoints=away)


def test_a_target_pose_partly_outside_the_photo_is_pasted_where_it_is_in(scene):
    for dx in (-150, 160):  # half of the canvas past the left or right edge
        result = _paste_texture(scene, poses=[_target(scene, dx)])
        assert result.person.max() > 0.5 and np.isfinite(result.images).all()


def test_a_huge_photo_is_refused_from_its_shape_before_any_copy(scene):
    # 16384 wide with the scene's aspect: the output alone would be 2.8 GiB. A broadcast view holds no pixels,
    # so any copy of it would show in the traced peak
    import tracemalloc

    height = round(16384 * scene.height / scene.width)
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.float32), (height, 16384, 3))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"1 frame of a 16384x\d+ photo needs 2.8 GiB of output; at most 2 GiB"):
            _paste_texture(scene, photos=huge, old_masks=np.broadcast_to(np.float32(0), (height, 16384)))
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


def test_a_paste_beyond_the_free_memory_is_refused_before_allocating(scene, monkeypatch):
    monkeypatch.setattr(composite, "free_memory_bytes", lambda device: 100 << 20)
    large = cv2.resize(scene.source_image, (3410, 1920), interpolation=cv2.INTER_LINEAR)
    with pytest.raises(ValueError, match=r"putting 1 frame back into a 3410x1920 photo needs about 0.2 GiB of memory, "
                                         r"but 0.1 GiB is free: paste fewer frames per run, scale the photo down"):
        _paste_texture(scene, photos=large)


@pytest.mark.parametrize("as_uint8, half_mask, frames", [(False, False, 1), (True, True, 1), (False, False, 3)])
def test_peak_memory_of_put_back_is_the_output_and_less_than_one_photo_more(scene, as_uint8, half_mask, frames):
    # Every numpy allocation is traced: the output (5 float32 values a pixel a frame, 1.67 photos) and at most
    # one float32 photo more (measured 0.42-0.73 here, 0.14 for a 4000x2252 photo: docs/robustness.md). Before
    # issue 23 the photo was copied several times: 7.1 photos for one frame, 12.4 for three.
    import tracemalloc

    width, height = 1500, round(1500 * scene.height / scene.width)
    photo = cv2.resize(scene.source_image, (width, height), interpolation=cv2.INTER_LINEAR)
    photo = photo if as_uint8 else photo.astype(np.float32) / 255
    size = (width // 2, height // 2) if half_mask else (width, height)
    mask = cv2.resize(scene.source_mask, size, interpolation=cv2.INTER_LINEAR)
    source_crop, target_crop, *_ = _framed(scene)
    images = np.stack([ideal_output(scene, source_crop, target_crop)] * frames)
    photo_bytes = width * height * 3 * 4
    tracemalloc.start()
    try:
        result = _paste_texture(scene, photos=photo, old_masks=mask, images=images, poses=[_target(scene)] * frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = sum(array.nbytes for array in (result.images, result.filled, result.person))
    assert output == frames * photo_bytes * 5 / 3
    assert peak - output < 1.0 * photo_bytes, f"{(peak - output) / photo_bytes:.2f} photos beyond the output"
    assert result.filled.max() == 1 and result.person.max() > 0.5


def test_out_of_range_pixels_are_read_by_the_whole_image_and_the_photo_is_kept_outside_the_person(scene):
    photo = scene.source_image.astype(np.float32) / 255
    reference = _paste_texture(scene, photos=photo)
    # one stray pixel above range once divided the whole photo by 255: now the photo is no 0-255 image, and an error
    stray = photo.copy()
    stray[3, 3, 0] = 200.0
    with pytest.raises(ValueError, match=r"photo is neither ComfyUI's floats in \[0, 1\] nor 0-255 values: 1 of its "
                                         r"\d+ non-black values are above 1.5 \(up to 200\), the rest in \[0, 1\]; .*fix "
                                         "or replace the node that made it"):
        _paste_texture(scene, photos=stray)
    source_crop, target_crop, *_ = _framed(scene)
    drawn = ideal_output(scene, source_crop, target_crop)
    drawn[5, 5, 1] = 40.0
    with pytest.raises(ValueError, match=r"generated images is neither .* 1 of its \d+ non-black values"):
        _paste_texture(scene, images=drawn)
    # a whole 0-255 float photo is read as such: the same result as the [0, 1] photo
    np.testing.assert_allclose(_paste_texture(scene, photos=photo * 255).images, reference.images, atol=1e-5)
    # values a little outside [0, 1] stay [0, 1] values, and outside the person and the filled area they come back
    # as they went in (a photo is never clipped or rescaled there)
    bright = photo.copy()
    bright[:20, :20] = 1.3
    bright[-20:, -20:] = -0.2
    result = _paste_texture(scene, photos=bright)
    untouched = (result.person[0] == 0) & (result.filled[0] == 0)
    np.testing.assert_array_equal(result.images[0][untouched], bright[untouched])
    assert result.images[0, 0, 0, 0] == np.float32(1.3) and result.images[0, -1, -1, 0] == np.float32(-0.2)
    # a 0-255 person mask whose person covers a small share of the photo is still 0-255 (non-black values decide)
    mask255 = scene.source_mask * 255
    np.testing.assert_allclose(_paste_texture(scene, old_masks=mask255).filled, reference.filled, atol=1e-6)
    stray_mask = scene.source_mask.copy()
    stray_mask[0, 0] = 90.0
    with pytest.raises(ValueError, match="person mask is neither"):
        _paste_texture(scene, old_masks=stray_mask)


def test_a_1x1_mask_is_one_value_for_every_pixel_as_at_encode(scene):
    # once refused here ("1x1 pixels but the photo is ...") while Encode Source Texture accepted it
    nothing = _paste_texture(scene, old_masks=np.zeros((1, 1), np.float32))
    assert nothing.filled.max() == 0
    with pytest.raises(ValueError, match="person mask covers 100% of the photo: that is no person's outline"):
        _paste_texture(scene, old_masks=np.ones((1, 1), np.float32))
    with pytest.raises(ValueError, match="person mask is 2x1 pixels but the photo is 341x192"):
        _paste_texture(scene, old_masks=np.ones((1, 2), np.float32))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from pidm_core.checkpoint import load_model
    from tests.tiny_model import save_tiny_model

    return load_model(save_tiny_model(tmp_path_factory.mktemp("composite") / "tiny.safetensors"))


def test_two_sources_framed_in_two_photos_are_not_pasted_into_one(scene, tiny_model):
    import torch

    from pidm_core import pipeline

    other = make_scene(SEED + 5, 192, aspect=scene.width / scene.height)
    scenes = (scene, other)
    photos = torch.from_numpy(np.stack([s.source_image for s in scenes])).float() / 255
    poses = [Pose(s.source_keypoints, s.width, s.height) for s in scenes]
    texture = pipeline.encode_source(tiny_model, photos, None, "person", poses)
    assert texture.photo_thumbnails.shape == (2, 16, 16, 3)
    targets = [Pose(s.target_keypoints, s.width, s.height) for s in scenes]
    images = np.zeros((2, 32, 22, 3), np.float32)  # the tiny model's framing: DeepFashion's 176x256 aspect
    # the second person once landed in the first photo, at the place they had in the second
    with pytest.raises(ValueError, match=r"photo holds 1 image but the texture was framed from 2 different photos "
                                         r"\(source image 2 is not source image 1\): connect the batch of 2 photos"):
        composite.paste_from_texture(texture, photos[:1], images, targets)
    assert composite.paste_from_texture(texture, photos, images, targets).images.shape == (2, 192, 341, 3)
    # two people of one photo (the same photo twice) may be pasted into that one photo
    same = pipeline.encode_source(tiny_model, photos[:1].repeat(2, 1, 1, 1), None, "person", [poses[0], poses[0]])
    assert composite.paste_from_texture(same, photos[:1], images, [targets[0]] * 2).images.shape == (2, 192, 341, 3)
