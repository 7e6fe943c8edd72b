"""Long pose sequences: chunked sampling (bounded memory, same frames as one batch), one progress
count across chunks, interrupts, per-frame noise, and the automatic chunk size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.tiny_model import save_tiny_model
from pidm_core import memory, pipeline, plan
from pidm_core.checkpoint import load_model
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork
from pidm_core.pose.interpolate import interpolate_poses
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings
from tests.test_bad_inputs import source_photo, standing_pose

FRAMES = 7
# ddpm draws noise at every step; every frame from noise, in chunks (OFFICIAL_RUN)
SETTINGS = SamplingSettings(steps=2, sampler="ddpm", seed=5, **OFFICIAL_RUN)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors"), dtype=torch.float32)


@pytest.fixture(scope="module")
def poses():
    return interpolate_poses(standing_pose(dx=-4), standing_pose(dx=4), FRAMES)


def run(model, texture, poses, **settings):
    return pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, **settings))


@pytest.mark.parametrize("frame_noise", ["shared", "independent"])
def test_chunks_give_the_frames_of_one_batch_bit_for_bit(model, poses, frame_noise):
    texture = pipeline.encode_source(model, source_photo())
    whole = run(model, texture, poses, chunk_size=FRAMES, frame_noise=frame_noise)
    assert whole.shape[0] == FRAMES and not torch.equal(whole[0], whole[-1])
    for chunk_size in (1, 3):
        assert torch.equal(run(model, texture, poses, chunk_size=chunk_size, frame_noise=frame_noise), whole)


def test_several_sources_are_sampled_in_chunks_too(model, poses):
    """Pairwise sources and poses: each chunk picks its own sources' textures; ddim with η draws noise."""
    texture = pipeline.encode_source(model, source_photo(batch=4))
    four = poses[:4]
    whole = run(model, texture, four, chunk_size=4, sampler="ddim", eta=1.0)
    assert torch.equal(run(model, texture, four, chunk_size=3, sampler="ddim", eta=1.0), whole)
    # and each frame equals that source sampled alone (its texture, its pose)
    alone = pipeline.sample(model, pipeline.encode_source(model, source_photo(batch=4)[2:3]), [four[2]],
                            dataclasses.replace(SETTINGS, sampler="ddim", eta=1.0))
    assert torch.allclose(alone[0], whole[2], atol=1e-5)


def test_independent_noise_gives_frame_k_the_seed_plus_k(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    frames = run(model, texture, poses[:3], frame_noise="independent", chunk_size=2)
    third = run(model, texture, poses[2:3], seed=SETTINGS.seed + 2)
    assert torch.allclose(frames[2], third[0], atol=1e-5)
    shared = run(model, texture, poses[:3], chunk_size=2)
    assert not torch.allclose(frames[2], shared[2], atol=1e-3)


def test_the_texture_is_encoded_once_and_one_progress_count_spans_the_chunks(model, poses, monkeypatch):
    texture = pipeline.encode_source(model, source_photo())
    calls = []
    monkeypatch.setattr(type(model.network), "encode_texture", lambda *a, **k: calls.append(1))
    seen = []
    pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, chunk_size=3), callback=seen.append)
    assert calls == []  # sampling reads the texture it was given; nothing is encoded again
    assert [s["i"] for s in seen] == list(range(6)) and {s["total"] for s in seen} == {6}  # 3 chunks × 2 steps
    assert [s["frames"] for s in seen[::2]] == [[0, 1, 2], [3, 4], [5, 6]]


def test_an_interrupt_in_a_later_chunk_stops_within_the_step(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    seen = []

    def interrupt(info):
        seen.append(info["i"])
        if info["i"] == 3:  # the second chunk's second step
            raise KeyboardInterrupt("interrupted")

    with pytest.raises(KeyboardInterrupt):
        pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, chunk_size=3), callback=interrupt)
    assert seen == [0, 1, 2, 3]


def test_bad_inputs_fail_before_the_first_chunk(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    seen = []
    bad = [*poses[:5], dataclasses.replace(poses[5], keypoints=poses[5].keypoints * 0)]
    with pytest.raises(ValueError, match="target pose 6 of 6 has no joints"):
        pipeline.sample(model, texture, bad, dataclasses.replace(SETTINGS, chunk_size=2), callback=seen.append)
    nan_init = source_photo(batch=len(poses))
    nan_init[4, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="init image contains NaN"):
        pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, chunk_size=2, denoise=0.5),
                        init_image=nan_init, callback=seen.append)
    assert seen == []


def test_frame_chunks_are_even_and_cover_every_frame_once():
    assert plan.frame_chunks(7, 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert plan.frame_chunks(1000, 64)[-1][-1] == 999
    for n, size in [(1, 1), (5, 5), (10, 4), (65, 64), (1000, 7)]:
        chunks = plan.frame_chunks(n, size)
        assert sum(chunks, []) == list(range(n)) and max(map(len, chunks)) <= size
        assert min(map(len, chunks)) >= min(2, n) or size == 1  # no lone frame unless asked for


def test_chunk_size_setting_is_checked():
    with pytest.raises(ValueError, match="chunk_size must be between 0 and 4096"):
        SamplingSettings(chunk_size=-1)
    with pytest.raises(ValueError, match="frame_noise"):
        SamplingSettings(frame_noise="per-pixel")


def test_auto_chunk_size_fits_the_budget():
    config = get_config("synthetic_64")
    estimate = memory.sampling_memory_bytes
    # on the CPU a chunk takes at most half the free memory and CPU_CHUNK_MAX_BYTES
    for free in (200 << 20, 4 << 30, 256 << 30):
        chunk = memory.auto_chunk_size(config, 2, torch.float32, free, "cpu")
        assert 2 <= chunk <= memory.MAX_CHUNK_FRAMES
        budget = min(free / 2, memory.CPU_CHUNK_MAX_BYTES)
        assert estimate(config, chunk, 2, torch.float32) <= budget < estimate(config, chunk + 1, 2, torch.float32)
    big = get_config("deepfashion_256")
    assert memory.auto_chunk_size(big, 2, torch.bfloat16, 256 << 30, "cpu") == 2  # 406 MiB each: 2 fit the RAM
    assert memory.auto_chunk_size(big, 2, torch.bfloat16, 500 << 20, "cpu") == 1  # 2 do not
    # on a GPU most of the free memory, up to MAX_CHUNK_FRAMES
    assert memory.auto_chunk_size(big, 2, torch.bfloat16, 80 << 30, "cuda") == memory.MAX_CHUNK_FRAMES
    assert memory.free_memory_bytes("cpu") > 0


def test_one_plan_is_made_and_followed(model, poses):
    """The plan the node asks for (frames, chunks, the batch a lone frame runs as, seeds, memory to reserve) is
    the one the sampler follows; a plan made for other inputs is refused."""
    texture = pipeline.encode_source(model, source_photo())
    settings = dataclasses.replace(SETTINGS, chunk_size=3, frame_noise="independent")
    made = pipeline.plan_for(model, texture, poses, settings)
    assert made.frames == FRAMES and made.chunks == ((0, 1, 2), (3, 4), (5, 6))
    assert made.seeds == tuple(range(5, 5 + FRAMES)) and made.guidance_rows == 2 and made.steps == 2
    assert made.batch((6,)) == [6, 6] and made.largest_batch == 3
    assert made.memory_bytes == memory.sampling_memory_bytes(model.network.config, 3, 2, torch.float32)
    seen = []
    pipeline.sample(model, texture, poses, settings, plan=made, callback=seen.append)
    assert sorted({tuple(s["frames"]) for s in seen}) == [(0, 1, 2), (3, 4), (5, 6)]
    with pytest.raises(ValueError, match="the sampling plan is for 7 images, but these inputs give 2"):
        pipeline.sample(model, texture, poses[:2], settings, plan=made)


def test_the_automatic_chunk_follows_the_free_memory(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    tiny_config = model.network.config
    per_frame = memory.sampling_memory_bytes(tiny_config, 1, 2, torch.float32)
    assert plan.chunk_size_for(model, SETTINGS, FRAMES, free_bytes=2 * 3 * per_frame) == 3
    seen = []
    pipeline.sample(model, texture, poses, SETTINGS, free_bytes=2 * 3 * per_frame, callback=seen.append)
    assert len({tuple(s["frames"]) for s in seen}) == 3


def test_one_timestep_rows_do_not_depend_on_the_batch():
    """The network broadcasts one time embedding when every row has the same timestep."""
    torch.manual_seed(0)
    network = PIDMNetwork(get_config("tiny_32")).eval()
    for p in network.parameters():
        p.data.normal_(0, 0.05)
    x, pose = torch.randn(3, 3, 32, 32), torch.rand(3, 20, 32, 32)
    texture = network.encode_texture(torch.rand(3, 3, 32, 32) * 2 - 1)
    with torch.no_grad():
        both = network(x, pose, torch.full((3,), 400), texture)
        varied = network(x, pose, torch.tensor([400, 10, 400]), texture)
    assert torch.allclose(both[0], varied[0], atol=1e-5) and (both[1] - varied[1]).abs().max() > 1e-4


def test_synthetic_sequence_renders_one_person_moving():
    import numpy as np

    from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET
    from pidm_core.data.synthetic.sequence import make_sequence

    sequence = make_sequence(HELD_OUT_SEED_OFFSET + 3, 4, 64)
    again = make_sequence(HELD_OUT_SEED_OFFSET + 3, 4, 64)
    assert len(sequence.images) == len(sequence.keypoints) == 4
    assert all(np.array_equal(a, b) for a, b in zip(sequence.images, again.images))  # deterministic in the seed
    assert all(np.array_equal(sequence.images[0][:4, :4], image[:4, :4]) for image in sequence.images)  # one backdrop
    assert not np.array_equal(sequence.images[0], sequence.images[-1])
    moved = np.abs(sequence.keypoints[-1][:, :2] - sequence.keypoints[0][:, :2]).max()
    assert moved > 0.5 and all(kp.shape == (18, 3) for kp in sequence.keypoints)
    with pytest.raises(ValueError, match="at least 2 frames"):
        make_sequence(1, 1)


def test_flicker_counts_only_the_change_beyond_the_true_frames():
    import numpy as np

    from benchmarks.sequence_quality import flicker

    truth = [np.full((4, 4, 3), 10 + 2 * k, np.uint8) for k in range(3)]  # the truth changes 2 levels a frame
    jumpy = [np.full((4, 4, 3), 10 + 5 * k, np.uint8) for k in range(3)]
    assert flicker(jumpy, truth) == pytest.approx(3.0)
    assert flicker(truth, truth) == 0.0 and flicker([truth[0]] * 3, truth) == 0.0  # a still output never flickers


def test_a_chunk_size_beyond_the_free_memory_is_refused_before_sampling(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    per_frame = memory.sampling_memory_bytes(model.network.config, 1, 2, torch.float32)
    seen = []
    # an explicit chunk may take half the free RAM (the automatic chunk's part, without its speed cap): 2.5 frames
    with pytest.raises(ValueError, match="chunk_size 7 needs about .* GiB for sampling 7 frames at once, but a chunk "
                                         r"may take at most .* GiB on the CPU \(half of the .* GiB free\): set "
                                         r"chunk_size to 2 or lower, or set it to 0 \(automatic\)"):
        pipeline.sample(model, texture, poses, dataclasses.replace(SETTINGS, chunk_size=7), free_bytes=5 * per_frame,
                        callback=seen.append)
    assert seen == []
    assert plan.chunk_size_for(model, dataclasses.replace(SETTINGS, chunk_size=2), FRAMES, 5 * per_frame) == 2
    with pytest.raises(ValueError, match=r"chunk_size 2 needs .* GiB free\): set chunk_size to 1 or lower"):
        plan.chunk_size_for(model, dataclasses.replace(SETTINGS, chunk_size=2), FRAMES, 3 * per_frame)
    # nothing fits: free memory first
    with pytest.raises(ValueError, match=r"free\): free memory .*, or set it to 0"):
        plan.chunk_size_for(model, dataclasses.replace(SETTINGS, chunk_size=2), FRAMES, per_frame)
