"""Pose sequences whose frames start from the previous frame (``sequence_denoise`` < 1, issue 26): frame 0 from
noise, frame k from frame k-1's canvas re-noised by img2img at ``denoise = sequence_denoise`` with frame k's own
seed; the plan runs one frame per chunk and counts the steps and network rows of the whole run. 1 (the default)
changes nothing; an init image or several sources leave every frame independent."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pidm_core import pipeline, plan
from pidm_core.checkpoint import load_model
from pidm_core.network import repeat_texture
from pidm_core.placement import pose_maps
from pidm_core.pose.interpolate import interpolate_poses
from pidm_core.samplers import SamplingSettings
from tests.test_bad_inputs import source_photo, standing_pose
from tests.tiny_model import save_tiny_model

FRAMES = 4
# ddim with η = 0 draws noise only where a run starts (no fresh draw per step), so the frames that follow draw
# exactly what an img2img call with their seed draws, whatever the later steps' noise bookkeeping
# every step guided and every frame from noise (the defaults before 2026-12-07): the runs these tests compare with
SETTINGS = SamplingSettings(steps=4, sampler="ddim", seed=3, guidance_start=0.0, guidance_end=1.0, sequence_denoise=1.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors"), dtype=torch.float32)


@pytest.fixture(scope="module")
def texture(model):
    return pipeline.encode_source(model, source_photo())


@pytest.fixture(scope="module")
def poses():
    return interpolate_poses(standing_pose(dx=-4), standing_pose(dx=4), FRAMES)


def run(model, texture, poses, **settings):
    return pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, **settings))


@pytest.fixture(scope="module")
def independent(model, texture, poses):
    """The frames of the run with the setting off (1): each from its own noise, as before it existed."""
    return run(model, texture, poses)


def manual_chain(model, texture, poses, settings):
    """The frames sampled by hand at the tensor level: frame 0 from noise, frame k by img2img from frame k-1's
    canvas clamped to [-1, 1], with the following settings and frame k's seed. Canvases and output images."""
    network, made = model.network, pipeline.plan_for(model, texture, poses, settings)
    placements = pipeline.target_placements(texture, poses)
    canvases, previous = [], None
    for k in range(len(poses)):
        maps = pose_maps([placements[k]], [poses[k]])
        following = settings if previous is None else plan.following_settings(settings)
        out = pipeline.sample_tensors(network, repeat_texture(texture.texture, 1), texture.null_texture, maps,
                                      following, seeds=[made.seeds[k]], init=previous)
        canvases.append(out)
        previous = out.clamp(-1, 1)
    images = torch.cat([texture.placements[0].output_images(x) for x in canvases])
    return torch.cat(canvases), images


# --- 1 = off: the frames of before ----------------------------------------------------------------


def test_1_is_off_the_independent_run_bit_for_bit(model, texture, poses, independent):
    assert SamplingSettings().sequence_denoise == 0.6  # chosen by measurement (docs/compute.md); 1 is off
    assert torch.equal(run(model, texture, poses, sequence_denoise=1.0), independent)
    made = pipeline.plan_for(model, texture, poses, dataclasses.replace(SETTINGS, sequence_denoise=1.0))
    assert made.follow_steps is None and made.follow_rows == 0 and not made.follows_previous
    assert made == pipeline.plan_for(model, texture, poses, SETTINGS)
    assert made.total_steps == made.steps * len(made.chunks) and made.run_rows == made.image_rows * FRAMES


# --- the chain -------------------------------------------------------------------------------------


def test_each_frame_is_img2img_from_the_previous_frame_bit_for_bit(model, texture, poses, independent):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    out = pipeline.sample(model, texture, poses, settings)
    _, expected = manual_chain(model, texture, poses, settings)
    assert torch.equal(out, expected)
    # frame 0 is sampled from noise: the frame of pose 0 sampled alone (a batch of 1 in both runs)
    assert torch.equal(out[0], pipeline.sample(model, texture, poses[:1], SETTINGS)[0])
    assert not torch.equal(out[1:], independent[1:])  # the later frames really start elsewhere


def test_the_plan_runs_one_frame_at_a_time_and_counts_the_whole_run(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    made = pipeline.plan_for(model, texture, poses, settings)
    following = plan.following_settings(settings)
    assert following == dataclasses.replace(settings, denoise=0.5)
    first, later = len(plan.run_timesteps(settings)), len(plan.run_timesteps(following, True))
    assert (first, later) == (4, 2)  # ddim with 4 steps: t = 750, 500, 250, 0; the tail keeps round(4·0.5): 250, 0
    assert made.follows_previous and made.follow_steps == later and made.steps == first
    assert made.chunks == tuple((k,) for k in range(FRAMES)) and made.largest_batch == 1
    assert [made.chunk_steps(k) for k in range(FRAMES)] == [first] + [later] * (FRAMES - 1)
    assert made.total_steps == first + (FRAMES - 1) * later
    assert made.batch((2,)) == [2]  # no duplicated row: nothing to be chunked differently
    # official guidance at scale 2: two network rows at every step
    assert (made.image_rows, made.follow_rows) == (2 * first, 2 * later)
    assert made.run_rows == 2 * first + (FRAMES - 1) * 2 * later


def test_a_guidance_interval_counts_the_rows_of_each_part(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5, guidance_start=0.5)
    made = pipeline.plan_for(model, texture, poses, settings)
    whole, tail = plan.step_rows(settings), plan.step_rows(plan.following_settings(settings), img2img=True)
    assert whole == [1, 1, 2, 2] and tail == [2, 2]  # guided from progress 0.5: t = 250 and 0 (500 is at 0.4995)
    assert (made.image_rows, made.follow_rows) == (sum(whole), sum(tail))
    assert made.run_rows == sum(whole) + (FRAMES - 1) * sum(tail)
    calls = []
    original = model.network.forward

    def counting(x, pose, t, texture, branch_rows=None):
        calls.append(x.shape[0] if branch_rows is None else len(branch_rows))
        return original(x, pose, t, texture, branch_rows=branch_rows)

    model.network.forward = counting
    try:
        pipeline.sample(model, texture, poses, settings)
    finally:
        del model.network.forward
    assert calls == whole + tail * (FRAMES - 1) and sum(calls) == made.run_rows  # the network ran what was counted


def test_one_progress_count_runs_over_every_step_once(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    made = pipeline.plan_for(model, texture, poses, settings)
    seen = []
    pipeline.sample(model, texture, poses, settings, callback=seen.append)
    assert [s["i"] for s in seen] == list(range(made.total_steps))
    assert {s["total"] for s in seen} == {made.total_steps}
    assert [s["frames"] for s in seen] == [[k] for k in range(FRAMES) for _ in range(made.chunk_steps(k))]


def test_sample_chunks_yields_one_frame_at_a_time(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    chunks = list(pipeline.sample_chunks(model, texture, poses, settings))
    assert [frames for frames, _ in chunks] == [[k] for k in range(FRAMES)]
    assert all(images.shape[0] == 1 for _, images in chunks)
    assert torch.equal(torch.cat([images for _, images in chunks]), pipeline.sample(model, texture, poses, settings))


def test_independent_frame_noise_gives_frame_k_the_seed_plus_k(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5, frame_noise="independent")
    made = pipeline.plan_for(model, texture, poses, settings)
    assert made.follows_previous and made.seeds == tuple(SETTINGS.seed + k for k in range(FRAMES))
    out = pipeline.sample(model, texture, poses, settings)
    assert torch.equal(out, manual_chain(model, texture, poses, settings)[1])
    shared = pipeline.sample(model, texture, poses, dataclasses.replace(settings, frame_noise="shared"))
    assert torch.equal(out[0], shared[0]) and not torch.equal(out[1:], shared[1:])


def test_sequence_denoise_0_keeps_the_first_frame(model, texture, poses):
    """A tail of no steps returns its init: every later frame is frame 0's canvas, clamped to [-1, 1]. The
    clamp comes before the output is resized to the photo (bicubic, which can overshoot), so in general a later
    frame equals frame 0's image only where that resize is the identity, as here: the 24x32 source lies on the
    canvas at its own size (the tiny untrained model's canvas goes far outside [-1, 1], so the clamp matters)."""
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.0)
    made = pipeline.plan_for(model, texture, poses, settings)
    assert made.follow_steps == 0 and made.follow_rows == 0 and made.total_steps == made.steps
    seen = []
    out = pipeline.sample(model, texture, poses, settings, callback=seen.append)
    assert [s["i"] for s in seen] == list(range(made.steps))  # only frame 0 runs steps
    canvases, images = manual_chain(model, texture, poses, settings)
    assert torch.equal(out, images)
    assert all(torch.equal(canvases[k], canvases[0].clamp(-1, 1)) for k in range(1, FRAMES))
    assert all(torch.equal(out[k], out[1]) for k in range(2, FRAMES))
    assert torch.equal(out[1], texture.placements[0].output_images(canvases[:1].clamp(-1, 1))[0])
    assert torch.equal(out[0], run(model, texture, poses[:1])[0])
    source = texture.placements[0]
    assert (source.content_width, source.content_height) == (source.photo_width, source.photo_height)
    assert canvases[0].abs().max() > 1 and all(torch.equal(out[k], out[0]) for k in range(FRAMES))


# --- ignored: every frame independent -------------------------------------------------------------


def test_an_init_image_leaves_the_frames_independent(model, texture, poses):
    init = source_photo()
    made = pipeline.plan_for(model, texture, poses, dataclasses.replace(SETTINGS, denoise=0.5, sequence_denoise=0.5),
                             img2img=True)
    assert not made.follows_previous
    before = pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, denoise=0.5), init_image=init)
    after = pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, denoise=0.5, sequence_denoise=0.5),
                            init_image=init)
    assert torch.equal(after, before)


def test_several_sources_leave_the_frames_independent(model, poses):
    sources = pipeline.encode_source(model, source_photo(batch=3))
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    assert not pipeline.plan_for(model, sources, poses[:3], settings).follows_previous
    assert torch.equal(pipeline.sample(model, sources, poses[:3], settings),
                       pipeline.sample(model, sources, poses[:3], SETTINGS))
    # several sources with one pose: one image per source, independent too
    assert not pipeline.plan_for(model, sources, poses[:1], settings).follows_previous
    assert torch.equal(pipeline.sample(model, sources, poses[:1], settings),
                       pipeline.sample(model, sources, poses[:1], SETTINGS))


def test_a_single_pose_is_sampled_as_before(model, texture, poses):
    settings = dataclasses.replace(SETTINGS, sequence_denoise=0.5)
    assert not pipeline.plan_for(model, texture, poses[:1], settings).follows_previous
    assert torch.equal(pipeline.sample(model, texture, poses[:1], settings),
                       pipeline.sample(model, texture, poses[:1], SETTINGS))


def test_follows_previous_needs_one_source_several_poses_and_no_init():
    on = SamplingSettings(sequence_denoise=0.5)
    assert plan.follows_previous(on, 1, 2) and not plan.follows_previous(SETTINGS, 1, 2)
    assert not plan.follows_previous(on, 1, 2, img2img=True)
    assert not plan.follows_previous(on, 2, 2) and not plan.follows_previous(on, 1, 1)


# --- bad values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    (float("nan"), r"sequence_denoise must be in \[0, 1\], got nan"),
    (1.5, r"sequence_denoise must be in \[0, 1\], got 1.5"),
    (-0.1, r"sequence_denoise must be in \[0, 1\], got -0.1"),
    ("0.5", "sequence_denoise must be a float, got '0.5'"),
])
def test_bad_values_are_refused_naming_the_setting(value, message):
    with pytest.raises(ValueError, match=message):
        SamplingSettings(sequence_denoise=value)


# --- the noise of frames that follow ----------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "appearance mask"])
def test_frames_that_follow_draw_the_noise_the_first_frame_drew_at_each_step(model, monkeypatch, masked):
    """ddpm draws fresh noise after every step but the last (and an appearance mask one more per step): a frame that
    starts from the previous one is noised with the first draw of a run from noise and then gets, at each step,
    the draw that run got at the same step, so every frame of the sequence sees the same noise at a given t."""
    network, drawn = model.network, []
    original = pipeline.samplers.BatchNoise.__call__

    def recording(self, like):
        drawn.append(original(self, like))
        return drawn[-1]

    monkeypatch.setattr(pipeline.samplers.BatchNoise, "__call__", recording)
    size = network.config.image_size
    texture, null_texture = pipeline.encode_texture_pair(network, torch.zeros(1, 3, size, size))
    maps = torch.rand(1, 20, size, size, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, 1, size, size) if masked else None
    reference = torch.zeros(1, 3, size, size) if masked else None
    full = SamplingSettings(steps=4, sampler="ddpm", seed=5)
    pipeline.sample_tensors(network, texture, null_texture, maps, full, mask=mask, reference=reference)
    from_noise, drawn[:] = list(drawn), []
    init = torch.zeros(1, 3, size, size)
    pipeline.sample_tensors(network, texture, null_texture, maps, dataclasses.replace(full, denoise=0.5), init=init,
                            mask=mask, reference=reference, noise_as_full_run=True)
    per_step = 2 if masked else 1
    skipped = 2 * per_step  # the tail of 4 steps at denoise 0.5 skips 2 steps
    expected = [from_noise[0], *from_noise[1 + skipped:]]
    assert len(drawn) == len(expected) and all(torch.equal(a, b) for a, b in zip(drawn, expected))


def test_ddpm_sequences_run_the_aligned_chain(model, texture, poses):
    """The pipeline's frames that follow are the aligned img2img calls (ddpm: one draw per step)."""
    settings = SamplingSettings(steps=4, sampler="ddpm", seed=3, sequence_denoise=0.5)
    out = pipeline.sample(model, texture, poses, settings)
    network, made = model.network, pipeline.plan_for(model, texture, poses, settings)
    placements, previous, frames = pipeline.target_placements(texture, poses), None, []
    for k in range(len(poses)):
        maps = pose_maps([placements[k]], [poses[k]])
        following = settings if previous is None else plan.following_settings(settings)
        canvas = pipeline.sample_tensors(network, repeat_texture(texture.texture, 1), texture.null_texture, maps,
                                         following, seeds=[made.seeds[k]], init=previous,
                                         noise_as_full_run=previous is not None)
        frames.append(texture.placements[0].output_images(canvas))
        previous = canvas.clamp(-1, 1)
    assert torch.equal(out, torch.cat(frames))
