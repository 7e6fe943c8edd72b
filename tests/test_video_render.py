"""A pose sequence rendered into an mp4 chunk by chunk (pidm_core.video.render): the frames are the sampler's
(and Put Back Into Photo's) bit for bit, the file has the count, rate and sound asked for, bad inputs fail before
any work and an interrupt leaves no file; sample_chunks gives sample()'s frames; the CPU chunk chosen by timing."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from pidm_core import chunk_timing, composite, memory, pipeline, plan  # noqa: E402
from pidm_core.checkpoint import load_model  # noqa: E402
from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, make_scene  # noqa: E402
from pidm_core.pose.interpolate import interpolate_poses  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings  # noqa: E402
from pidm_core.video.render import PutBack, render_video  # noqa: E402
from tests.test_bad_inputs import source_photo, standing_pose  # noqa: E402
from tests.test_composite import counting_fills  # noqa: E402
from tests.tiny_model import save_tiny_model  # noqa: E402

# frames from noise (sequence_denoise 1), so that chunk_size 2 chunks the run
SETTINGS = SamplingSettings(steps=2, sampler="ddpm", seed=3, chunk_size=2, sequence_denoise=1.0)
RATE = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors"), dtype=torch.float32)


@pytest.fixture(scope="module")
def poses():
    return interpolate_poses(standing_pose(dx=-4), standing_pose(dx=4), 5)


@pytest.fixture(scope="module")
def scene():
    return make_scene(SCENE_SEED_OFFSET + 2, 96)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.2 * np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32)


def read_back(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        sound = container.streams.audio[0] if container.streams.audio else None
        count = sum(1 for _ in container.decode(video=0))
        return {"frames": count, "rate": video.average_rate, "size": (video.width, video.height),
                "audio_s": None if sound is None else float(sound.duration * sound.time_base)}


def test_sample_chunks_gives_the_frames_of_sample_as_each_chunk_finishes(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    whole = pipeline.sample(model, texture, poses, SETTINGS)
    seen = []
    chunks = pipeline.sample_chunks(model, texture, poses, SETTINGS, callback=seen.append)
    assert seen == []  # a generator: nothing runs before the first chunk is asked for
    first_frames, first = next(chunks)
    assert first_frames == [0, 1] and len(seen) == 2  # one chunk of two steps ran, no more
    rest = list(chunks)
    assert [frames for frames, _ in rest] == [[2, 3], [4]]
    assert torch.equal(torch.cat([first, *(images for _, images in rest)]), whole)


def test_bad_inputs_of_sample_chunks_fail_in_the_call(model, poses):
    texture = pipeline.encode_source(model, source_photo())
    bad = [*poses[:4], dataclasses.replace(poses[4], keypoints=poses[4].keypoints * 0)]
    with pytest.raises(ValueError, match="target pose 5 of 5 has no joints"):
        pipeline.sample_chunks(model, texture, bad, SETTINGS)


def test_a_sequence_is_written_chunk_by_chunk_with_its_rate_and_sound(model, poses, tmp_path):
    texture = pipeline.encode_source(model, source_photo())
    whole = pipeline.sample(model, texture, poses, SETTINGS)
    written, steps = [], []
    result = render_video(model, texture, poses, tmp_path / "walk.mp4", RATE, SETTINGS, audio=(tone(3.0), 16000),
                          callback=steps.append, on_chunk=lambda frames, images: written.append((frames, images)))
    assert [frames for frames, _ in written] == [[0, 1], [2, 3], [4]] and len(steps) == 6
    assert torch.equal(torch.cat([images for _, images in written]), whole.cpu())  # the sampler's frames, bit for bit
    assert (result.frames, result.frame_rate, result.has_audio) == (5, RATE, True)
    found = read_back(tmp_path / "walk.mp4")
    assert found["frames"] == 5 and found["rate"] == RATE
    assert found["audio_s"] == pytest.approx(5 / RATE, abs=0.05)  # the sound ends with the pictures
    assert found["size"] == (whole.shape[2] + whole.shape[2] % 2, whole.shape[1] + whole.shape[1] % 2)
    one_step = dataclasses.replace(SETTINGS, steps=1)
    silent = render_video(model, texture, poses[:2], tmp_path / "silent.mp4", 24, one_step)
    assert not silent.has_audio and read_back(tmp_path / "silent.mp4")["audio_s"] is None


def _framed_texture(model, scene):
    photo = torch.from_numpy(np.asarray(scene.source_image, np.float32))[None]
    photo = photo / 255 if photo.max() > 1 else photo
    pose = Pose(scene.source_keypoints, scene.width, scene.height)
    mask = torch.from_numpy(np.asarray(scene.source_mask, np.float32))[None]
    return pipeline.encode_source(model, photo, mask, fit_mode="person", source_poses=[pose]), photo, mask


def test_put_back_pastes_each_chunk_as_the_whole_sequence_would_be(model, scene, tmp_path, monkeypatch):
    """One crop for the whole walk (as the sampler framed it), not one per chunk: every frame equals Put Back
    Into Photo run on the whole sequence at once; the photo and the source canvas are inpainted once."""
    texture, photo, mask = _framed_texture(model, scene)
    start = Pose(scene.source_keypoints, scene.width, scene.height)
    moved = scene.source_keypoints + np.array([12, 0, 0], np.float32) * (scene.source_keypoints[:, 2:] > 0)
    walk = interpolate_poses(start, Pose(moved, scene.width, scene.height), 5)
    images = pipeline.sample(model, texture, walk, SETTINGS)
    expected = composite.paste_from_texture(texture, photo, images, walk, mask).images
    fills = counting_fills(monkeypatch)
    written = []
    result = render_video(model, texture, walk, tmp_path / "scene.mp4", 25, SETTINGS, put_back=PutBack(photo, mask),
                          on_chunk=lambda frames, images: written.append((frames, images)))
    assert [frames for frames, _ in written] == [[0, 1], [2, 3], [4]]
    assert np.array_equal(torch.cat([images for _, images in written]).numpy(), expected)
    assert (result.frame_width, result.frame_height) == (scene.width, scene.height)
    assert read_back(tmp_path / "scene.mp4")["frames"] == 5
    assert sorted(fills) == sorted([(scene.height, scene.width), tuple(images.shape[1:3])])  # once per sequence


@pytest.mark.parametrize("change", [dict(chunk_size=1), dict(sequence_denoise=0.5)], ids=["chunk_size=1", "denoise"])
def test_put_back_of_one_frame_chunks_is_the_whole_sequence_s_and_inpaints_once(model, scene, tmp_path, monkeypatch,
                                                                               change):
    """Chunks of one frame (chunk_size 1, or frames that start from the previous one): every frame still equals
    Put Back Into Photo of the whole sequence, bit for bit, and the photo's old person and the source person on the
    canvas are inpainted once for the sequence (a backdrop), not once per chunk and frame."""
    texture, photo, mask = _framed_texture(model, scene)
    start = Pose(scene.source_keypoints, scene.width, scene.height)
    moved = scene.source_keypoints + np.array([12, 0, 0], np.float32) * (scene.source_keypoints[:, 2:] > 0)
    walk = interpolate_poses(start, Pose(moved, scene.width, scene.height), 4)
    settings = dataclasses.replace(SETTINGS, **change)
    images = pipeline.sample(model, texture, walk, settings)
    expected = composite.paste_from_texture(texture, photo, images, walk, mask).images
    fills = counting_fills(monkeypatch)
    written = []
    render_video(model, texture, walk, tmp_path / "one.mp4", 25, settings, put_back=PutBack(photo, mask),
                 on_chunk=lambda frames, images: written.append((frames, images)))
    assert [frames for frames, _ in written] == [[0], [1], [2], [3]]
    assert np.array_equal(torch.cat([images for _, images in written]).numpy(), expected)
    assert sorted(fills) == sorted([(scene.height, scene.width), tuple(images.shape[1:3])])  # photo, canvas: once


def test_bad_inputs_fail_before_any_work_and_leave_no_file(model, poses, scene, tmp_path):
    texture = pipeline.encode_source(model, source_photo())
    path = tmp_path / "bad.mp4"
    steps = []
    cases = [
        (dict(frame_rate=0), "frame rate must be between 0 and 1000"),
        (dict(audio=(tone(1.0)[:, :0], 16000)), "audio holds no samples"),
        (dict(put_back=PutBack(torch.zeros(1, 64, 48, 3))), r"photo: the texture was not framed"),
        (dict(poses=[*poses[:2], dataclasses.replace(poses[2], keypoints=poses[2].keypoints * 0)]),
         "target pose 3 of 3 has no joints"),
    ]
    for change, match in cases:
        args = dict(frame_rate=24, poses=poses) | change
        with pytest.raises(ValueError, match=match):
            render_video(model, texture, args.pop("poses"), path, args.pop("frame_rate"), SETTINGS,
                         callback=steps.append, **args)
    framed, photo, mask = _framed_texture(model, scene)
    with pytest.raises(ValueError, match="photo is 48x96 pixels but the person was framed in a"):
        render_video(model, framed, poses, path, 24, SETTINGS, put_back=PutBack(photo[:, :, :48]),
                     callback=steps.append)
    with pytest.raises(ValueError, match="place must be one of"):
        render_video(model, framed, poses, path, 24, SETTINGS, put_back=PutBack(photo, place="left"))
    assert steps == [] and not path.exists()


def test_an_interrupt_mid_video_leaves_no_file(model, poses, tmp_path):
    texture = pipeline.encode_source(model, source_photo())

    def interrupt(info):
        if info["i"] == 3:  # the second chunk, after the first was written
            raise KeyboardInterrupt("interrupted")

    with pytest.raises(KeyboardInterrupt):
        render_video(model, texture, poses, tmp_path / "stopped.mp4", 24, SETTINGS, callback=interrupt)
    assert not (tmp_path / "stopped.mp4").exists()


# --- the CPU chunk of a long run, chosen by timing -------------------------------------------------------


CLIFF = {2: 0.05, 4: 0.04, 8: 0.030, 16: 0.045, 32: 0.07, 64: 0.09}


@pytest.fixture
def fake_timings(monkeypatch):
    """seconds_per_frame replaced by a table (a cliff past 8 frames, as page faults make it): what was timed."""
    chunk_timing.forget()
    timed = []

    def seconds(network, mode, appearance_scale, pose_scale, batch, calls=1, warmup=True):
        timed.append(batch if warmup else -batch)  # the second look at a size: negative
        return CLIFF[batch] * (1 if warmup else 1.01)

    monkeypatch.setattr(chunk_timing, "seconds_per_frame", seconds)
    yield timed
    chunk_timing.forget()


def test_the_walk_goes_from_the_memory_chunk_to_the_fastest_and_is_kept_per_process(model, fake_timings):
    long_run = 1000 * 25
    assert chunk_timing.measured_chunk_size(model.network, "official", 2.0, 2.0, 2, 64, 17, long_run) == 8
    # from 16 (the candidate at or below the memory rule's 17) down while clearly faster: 8; 4 is slower, so the
    # walk ends there; the two fastest are timed once more
    assert fake_timings == [16, 8, 4, -8, -4]
    assert chunk_timing.timings(model.network, "official", 2) == pytest.approx({16: 0.045, 8: 0.030, 4: 0.04})
    fake_timings.clear()
    assert chunk_timing.measured_chunk_size(model.network, "official", 2.0, 2.0, 2, 64, 17, long_run) == 8
    assert fake_timings == [-8, -4]  # kept: only the second look runs again


def test_the_walk_goes_up_when_smaller_is_slower_and_stays_within_the_limit(model, fake_timings):
    assert chunk_timing.measured_chunk_size(model.network, "official", 2.0, 2.0, 2, 64, 4, 10 ** 6) == 8
    assert fake_timings[:4] == [4, 2, 8, 16]  # 2 is slower than 4: up to 8, then 16 is no faster
    chunk_timing.forget()
    fake_timings.clear()
    assert chunk_timing.measured_chunk_size(model.network, "official", 2.0, 2.0, 2, 6, 17, 10 ** 6) == 4
    assert max(abs(b) for b in fake_timings) <= 6  # the memory limit: nothing above it is timed


def test_a_run_just_long_enough_times_few_sizes(model, fake_timings):
    """The timing takes at most BUDGET_SHARE of the run's estimated time: 1000 frame-steps at 30-45 ms allow
    1.5-2.25 s; a look at 16 frames costs 2 x 16 x 45 ms, one at 8 frames 2 x 8 x 30 ms, and then it stops."""
    assert chunk_timing.measured_chunk_size(model.network, "official", 2.0, 2.0, 2, 64, 17, 1000) == 8
    assert fake_timings == [16, 8]


def test_chunk_size_for_times_long_cpu_runs_only(model, fake_timings):
    free = 64 << 30
    by_memory = memory.auto_chunk_size(model.network.config, 2, torch.float32, free, "cpu")
    assert plan.chunk_size_for(model, SamplingSettings(steps=1), 40, free) == min(40, by_memory)
    assert fake_timings == []  # 40 frame-steps: not worth timing
    chosen = plan.chunk_size_for(model, SamplingSettings(steps=25), 1000, free)
    assert fake_timings[0] == max(b for b in chunk_timing.CANDIDATES if b <= by_memory) and chosen == 8


def test_the_timed_chunk_stays_within_the_free_memory(model, fake_timings):
    per_frame = memory.sampling_memory_bytes(model.network.config, 1, 2, torch.float32)
    free = 2 * 5 * per_frame  # half the free memory holds about 4 frames
    limit = memory.largest_chunk(model.network.config, 2, torch.float32, memory.chunk_budget_bytes(free))
    chunk = plan.chunk_size_for(model, SamplingSettings(steps=25, **OFFICIAL_RUN), 1000, free)
    assert 2 <= chunk <= limit < 8 and max(abs(b) for b in fake_timings) <= limit
    made = plan.plan_sampling(model, SamplingSettings(steps=25, **OFFICIAL_RUN), 1, 1000, free_bytes=free)
    assert made.largest_batch == chunk and made.memory_bytes <= memory.chunk_budget_bytes(free)


def test_timing_one_batch_runs_the_network(model):
    per_frame = chunk_timing.seconds_per_frame(model.network, "official", 2.0, 2.0, 2, calls=1)
    assert per_frame > 0  # a time was taken (how long it was is for benchmarks/)
