"""VideoWriter: an H.264 mp4 written chunk by chunk, read back with PyAV: frame count, exact frame rate, size
(odd sides padded), pixels, the sound track cut at the video's duration, and bad inputs as ValueErrors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from pidm_core.video.write import VideoWriter, audio_from_comfy, exact_frame_rate  # noqa: E402


def read_back(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        info = {"rate": video.average_rate, "width": video.width, "height": video.height, "codec": video.codec.name,
                "pix_fmt": video.format.name, "first": container.streams[0].type}
        if audio is not None:
            info["audio_s"] = float(audio.duration * audio.time_base)
            info["audio_rate"] = audio.sample_rate
            info["channels"] = audio.layout.nb_channels
    return frames, info


def gradient(n: int, height: int, width: int) -> np.ndarray:
    """uint8 frames whose colour changes with the frame index (smooth: H.264 keeps it closely)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)),
                               np.full_like(x, 20 * k % 256)], -1) for k in range(n)]).astype(np.uint8)


def tone(seconds: float, rate: int, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], channels, 0)


def test_frames_written_in_chunks_come_back_with_their_count_rate_and_pixels(tmp_path):
    frames = gradient(12, 48, 64)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, Fraction(30000, 1001)) as video:
        video.write(frames[:5])
        video.write(torch.from_numpy(frames[5:]).float() / 255)  # float tensors in [0, 1] too
    assert video.result.frames == 12 and video.result.frame_rate == Fraction(30000, 1001)
    decoded, info = read_back(path)
    assert len(decoded) == 12 and info["rate"] == Fraction(30000, 1001)  # exact, not 29.97
    assert (info["width"], info["height"], info["codec"], info["pix_fmt"]) == (64, 48, "h264", "yuv420p")
    assert "audio_s" not in info
    error = np.abs(np.stack(decoded).astype(np.float32) - frames).mean()
    assert error < 3  # lossy, but the same pictures (mean error in 0-255 levels)


def test_odd_sides_are_padded_by_repeating_the_last_row_and_column(tmp_path):
    frames = gradient(3, 31, 45)
    with VideoWriter(tmp_path / "odd.mp4", 25) as video:
        video.write(frames)
    assert video.result.frame_width == 45 and video.result.frame_height == 31
    assert (video.result.width, video.result.height) == (46, 32)
    decoded, info = read_back(tmp_path / "odd.mp4")
    assert (info["width"], info["height"]) == (46, 32) and info["rate"] == 25
    picture = np.stack(decoded).astype(np.float32)
    assert np.abs(picture[:, :31, :45] - frames).mean() < 3
    assert np.abs(picture[:, 31, :45] - frames[:, 30]).mean() < 6  # the repeated row


@pytest.mark.parametrize("sound_length, rate, channels", [(10.0, 48000, 2), (10.0, 44000, 1), (0.4, 22050, 2)])
def test_the_sound_is_cut_at_the_video_duration(tmp_path, sound_length, rate, channels):
    """A longer clip ends with the video; a rate AAC does not take (44000) is resampled; a shorter clip ends early."""
    path = tmp_path / "sound.mp4"
    with VideoWriter(path, 24, audio=(tone(sound_length, rate, channels), rate)) as video:
        for _ in range(4):
            video.write(gradient(6, 32, 32))
    video_length = video.result.duration_s  # of the file written: 24 frames at 24 fps
    assert video.result.has_audio and video_length == 1.0
    decoded, info = read_back(path)
    assert len(decoded) == 24 and info["first"] == "video" and info["channels"] == channels
    assert info["audio_s"] == pytest.approx(min(sound_length, 1.0), abs=0.05)
    assert info["audio_rate"] == (rate if rate != 44000 else 48000)


def test_comfy_audio_is_read_as_a_view_of_its_first_clip():
    waveform = torch.zeros(1, 2, 100)
    samples, rate = audio_from_comfy({"waveform": waveform, "sample_rate": 16000})
    assert samples.shape == (2, 100) and rate == 16000 and np.shares_memory(samples, waveform.numpy())
    with pytest.raises(ValueError, match=r"audio waveform must be \[1, channels, samples\] \(one clip\), "
                                         r"got shape \(2, 2, 100\)"):
        audio_from_comfy({"waveform": torch.zeros(2, 2, 100), "sample_rate": 16000})
    with pytest.raises(ValueError, match="audio must be ComfyUI AUDIO"):
        audio_from_comfy(torch.zeros(1, 2, 100))


@pytest.mark.parametrize("given, exact", [(29.97, Fraction(30000, 1001)), (30000 / 1001, Fraction(30000, 1001)),
                                          (23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)),
                                          (14.985, Fraction(15000, 1001)),  # every other frame of 29.97
                                          (float(Fraction(15000, 1001)), Fraction(15000, 1001)),
                                          (12.5, Fraction(25, 2)), (25.0, Fraction(25)), (30.03, Fraction(3003, 100)),
                                          (float(Fraction(24, 7)), Fraction(24, 7)), (25, Fraction(25)),
                                          (Fraction(30000, 1001), Fraction(30000, 1001))])
def test_frame_rates_are_kept_exact(given, exact):
    assert exact_frame_rate(given) == exact


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), 1e9, "30", True])
def test_bad_frame_rates_are_refused(bad):
    with pytest.raises(ValueError, match="frame rate must be"):
        exact_frame_rate(bad)


def test_bad_frames_and_sound_are_value_errors_and_leave_no_file(tmp_path):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=r"video frames must be RGB frames \[N, H, W, 3\], got shape \(2, 8, 8\)"):
        with VideoWriter(path, 24) as video:
            video.write(np.zeros((2, 8, 8), np.uint8))
    assert not path.exists()
    with pytest.raises(ValueError, match="video frames are 16x8 pixels but the first ones were 8x8"):
        with VideoWriter(path, 24) as video:
            video.write(np.zeros((2, 8, 8, 3), np.uint8))
            video.write(np.zeros((2, 8, 16, 3), np.uint8))
    assert not path.exists()
    nan = np.zeros((1, 8, 8, 3), np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="video frames contain NaN"), VideoWriter(path, 24) as video:
        video.write(nan)
    with pytest.raises(ValueError, match="video: no frames were written"), VideoWriter(path, 24):
        pass
    assert not path.exists()
    noisy = tone(1, 16000)
    noisy[1, 20000 // 2] = np.inf
    for audio, match in [((noisy, 16000), r"audio holds NaN or infinite samples \(from 0.00 s on\)"),
                         ((tone(1, 16000), 0), "audio sample rate must be between 1 and 384000"),
                         ((tone(1, 16000), 16000.5), "audio sample rate must be a whole number"),
                         ((np.zeros((9, 10), np.float32), 16000), "1 to 8 channels"),
                         ((np.zeros((2, 0), np.float32), 16000), "audio holds no samples"),
                         ((np.zeros((2, 10), np.int16), 16000), "float samples")]:
        with pytest.raises(ValueError, match=match):
            VideoWriter(path, 24, audio=audio)
    with pytest.raises(ValueError, match="its folder does not exist"):
        VideoWriter(tmp_path / "missing" / "x.mp4", 24)
    with pytest.raises(ValueError, match="crf must be"):
        VideoWriter(path, 24, crf=60)
