"""Poses From Video on a real ComfyUI 0.3.75: core Load Video feeds it a synthetic driving video (a walker, with
sound); Save Pose writes what it found, which is read back here against the video's truth; its audio output
reaches core Save Audio; bad videos and bad selections are node errors naming the input, and the server lives on."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from pidm_core.data.synthetic.driving import make_driving_video
from pidm_core.pose.files import read_pose_file
from pidm_core.video.write import VideoWriter

av = pytest.importorskip("av")
pytest.importorskip("mediapipe")

pytestmark = pytest.mark.host

FRAMES = 20
RATE = 25
STEP = 2
SOUND_RATE = 16000


@pytest.fixture(scope="module")
def client(comfy):
    inputs = comfy.server.dirs["input"]
    walker = make_driving_video("single", seed=3, frames=FRAMES, size=(320, 240), fps=RATE)
    seconds = FRAMES / RATE
    t = np.arange(int(seconds * SOUND_RATE)) / SOUND_RATE
    tone = np.stack([0.2 * np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32)
    with VideoWriter(inputs / "poses_walker.mp4", Fraction(RATE), audio=(tone, SOUND_RATE)) as video:
        video.write(np.stack(list(walker.images)))
    with VideoWriter(inputs / "poses_one_frame.mp4", Fraction(RATE)) as video:  # and no sound
        video.write(np.stack(list(walker.images))[:1])
    with VideoWriter(inputs / "poses_nobody.mp4", Fraction(RATE)) as video:
        video.write(np.full((6, 64, 64, 3), 90, np.uint8))
    (inputs / "poses_not_a_video.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    comfy.truth = walker.truth()
    return comfy


def _graph(file: str, prefix: str = "pidm_video_poses/walker", **settings) -> dict:
    inputs = {"video": ["video", 0], "frame_rate": 25.0, "start_frame": 0, "frame_count": 0, "frame_step": 1,
              "person_index": -1, "smoothing": 0.5, "max_gap_seconds": 1.0, "long_gaps": "hold", "backend": "mediapipe",
              "smoothing_method": "savgol", "threshold": 0.3}
    inputs.update(settings)
    return {
        "video": {"class_type": "LoadVideo", "inputs": {"file": file}},
        "poses": {"class_type": "PIDMPosesFromVideo", "inputs": inputs},
        "save": {"class_type": "PIDMSavePose", "inputs": {"pose": ["poses", 0], "filename_prefix": prefix,
                                                          "person_index": -1, "frame_rate": ["poses", 1]}},
        # the audio output, carried by core Create Video into core Save Video (this host has no audio saver)
        "frames": {"class_type": "GetVideoComponents", "inputs": {"video": ["video", 0]}},
        "with_sound": {"class_type": "CreateVideo", "inputs": {"images": ["frames", 0], "fps": 25.0,
                                                               "audio": ["poses", 2]}},
        "sound": {"class_type": "SaveVideo", "inputs": {"video": ["with_sound", 0], "filename_prefix": prefix,
                                                        "format": "auto", "codec": "auto"}},
    }


def _saved(client, result, node: str, key: str):
    entry = client.history(result.prompt_id)["outputs"][node][key][0]
    return client.server.dirs["output"] / entry["subfolder"] / entry["filename"]


def test_poses_follow_the_walker_with_the_frame_rate_and_the_sound(client):
    result = client.run(_graph("poses_walker.mp4", frame_step=STEP), timeout=300)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    saved = read_pose_file(_saved(client, result, "save", "pidm_saved"))
    assert len(saved.poses) == FRAMES // STEP
    assert saved.frame_rate == pytest.approx(RATE / STEP)
    truth = client.truth.keypoints[::STEP, client.truth.target]
    height = float(client.truth.person_heights[client.truth.target])
    errors = []  # each frame's median joint error, in person heights (the detector's joints and the
    for pose, joints in zip(saved.poses, truth):  # generator's differ by a few % of the height even when right)
        both = (pose.keypoints[:, 2] > 0) & (joints[:, 2] > 0)
        assert both.sum() >= 8, "most joints found in every frame"
        errors.append(np.median(np.linalg.norm(pose.keypoints[both, :2] - joints[both, :2], axis=1)) / height)
    assert np.mean(np.array(errors) < 0.2) >= 0.8, f"frame errors {np.round(errors, 2)}"
    with av.open(str(_saved(client, result, "sound", "images"))) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        assert samples / stream.sample_rate == pytest.approx(FRAMES / RATE, abs=0.1)
    shown = result.outputs["poses"]
    assert shown["pidm_frame_count"] == [FRAMES // STEP] and len(shown["pidm_thumbnails"]) == FRAMES // STEP


@pytest.mark.parametrize("file, settings, texts", [
    ("poses_not_a_video.mp4", {}, ["video", "not a video"]),
    ("poses_nobody.mp4", {}, ["video", "no"]),
    ("poses_walker.mp4", {"frame_step": 500}, ["frame step 500", "larger than"]),
    ("poses_walker.mp4", {"start_frame": 900}, ["start frame 900", "past the end"]),
])
def test_bad_videos_and_selections_are_node_errors(client, file, settings, texts):
    client.node_error(_graph(file, **settings), "PIDMPosesFromVideo", *texts)


def test_video_and_images_together_or_neither_is_an_error(client):
    graph = _graph("poses_walker.mp4")
    graph["poses"]["inputs"]["images"] = ["frames", 0]
    client.node_error(graph, "PIDMPosesFromVideo", "exactly one", "both")
    del graph["poses"]["inputs"]["images"], graph["poses"]["inputs"]["video"]
    client.node_error(graph, "PIDMPosesFromVideo", "exactly one", "neither")


def test_an_image_batch_gives_poses_at_the_rate_given(client):
    graph = _graph("poses_walker.mp4", frame_rate=12.5)
    graph["poses"]["inputs"]["images"] = ["frames", 0]
    del graph["poses"]["inputs"]["video"], graph["sound"], graph["with_sound"]
    result = client.run(graph, timeout=300)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    saved = read_pose_file(_saved(client, result, "save", "pidm_saved"))
    assert len(saved.poses) == FRAMES and saved.frame_rate == pytest.approx(12.5)
    json.dumps(result.outputs["poses"])  # strict JSON in the history


def test_one_frame_without_sound_gives_one_pose_and_no_audio(client):
    graph = _graph("poses_one_frame.mp4", prefix="pidm_video_poses/one")
    result = client.run(graph, timeout=300)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    saved = read_pose_file(_saved(client, result, "save", "pidm_saved"))
    assert len(saved.poses) == 1 and saved.frame_rate == pytest.approx(RATE)
    with av.open(str(_saved(client, result, "sound", "images"))) as container:
        assert not container.streams.audio, "no sound in, none out"
