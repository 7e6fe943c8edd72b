"""pidm_core.video.read: streaming decode of tiny videos made here with PyAV, and every bad input a
clear ValueError naming the input."""

from __future__ import annotations

import io
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from pidm_core.video.read import (  # noqa: E402
    MAX_FRAME_PIXELS,
    VideoInfo,
    frames_from_images,
    probe,
    read_audio,
    read_frames,
    selected_count,
)

SAMPLE_RATE = 16000
TONE_HZ = 440


def _frame(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i``: red level 20 * i (mod 256), a green bar as wide as 3 * i pixels."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (20 * i) % 256
    image[:, : (3 * i) % width, 1] = 255
    return image


def write_video(path, frames=10, width=32, height=24, fps=25, audio=False, intervals_ms=None, codec="libx264",
                options=None, keyframe_every=None):
    """An H.264 mp4 (yuv420p) of ``frames`` frames; ``intervals_ms`` gives a variable frame rate,
    ``audio`` a mono AAC track of a 440 Hz tone as long as the video."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        if keyframe_every:
            stream.options = {"preset": "ultrafast", "g": str(keyframe_every), "keyint_min": str(keyframe_every),
                              "sc_threshold": "0"}
        if intervals_ms is not None:
            stream.time_base = Fraction(1, 1000)
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio else None
        time_ms = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame(i, width, height), format="rgb24")
            if intervals_ms is not None:
                frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
                time_ms += intervals_ms[i % len(intervals_ms)]
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            n = int(SAMPLE_RATE * frames / fps)
            tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / SAMPLE_RATE)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, 0
            container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    made = {
        "plain": write_video(root / "plain.mp4"),
        "audio": write_video(root / "audio.mp4", audio=True),
        "vfr": write_video(root / "vfr.mp4", intervals_ms=[40, 80]),
        "long": write_video(root / "long.mp4", frames=90, keyframe_every=12),
        "faststart": write_video(root / "faststart.mp4", frames=60, width=64, height=48,
                                 options={"movflags": "faststart"}),
    }
    return made


def _indices(frames):
    return [index for index, _ in frames]


# --- probe -------------------------------------------------------------------------------------


def test_probe_reads_the_headers(videos):
    info = probe(str(videos["plain"]))
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.frame_count, info.frame_rate) == (32, 24, 10, Fraction(25))
    assert info.frame_count_exact and not info.has_audio and not info.variable_frame_rate
    video_length = info.duration_s  # from the headers: 10 frames at 25 fps
    assert video_length == pytest.approx(0.4)
    assert probe(videos["audio"]).has_audio  # a pathlib.Path works too


def test_probe_of_a_stream_equals_the_path(videos):
    data = io.BytesIO(videos["audio"].read_bytes())
    data.seek(17)  # a stream is rewound before use
    assert probe(data) == probe(str(videos["audio"]))
    assert probe(data) == probe(str(videos["audio"]))  # and again: the first probe did not consume it


def test_variable_frame_rate_is_reported_with_the_average_rate(videos):
    info = probe(videos["vfr"])
    assert info.variable_frame_rate
    assert info.frame_count == 10
    # 5 intervals of 40 ms and 5 of 80 ms: 10 frames in 0.6 s (the last frame lasts 80 ms), 16.7 fps average.
    assert 15 < float(info.frame_rate) < 20
    assert _indices(read_frames(videos["vfr"])) == list(range(10))


def test_a_millisecond_time_base_is_not_a_variable_rate(tmp_path):
    # Matroska stores 29.97 fps as 33 and 34 ms steps: rounding, not a variable frame rate. It has no
    # frame index either, so the count is estimated from the duration.
    path = write_video(tmp_path / "ntsc.mkv", frames=30, fps=Fraction(30000, 1001))
    info = probe(path)
    assert not info.variable_frame_rate and info.frame_rate == Fraction(30000, 1001)
    assert info.frame_count == 30 and not info.frame_count_exact
    assert _indices(read_frames(path, start=20, step=3)) == [20, 23, 26, 29]


# --- read_frames -------------------------------------------------------------------------------


def test_frames_are_rgb_uint8_in_order(videos):
    frames = list(read_frames(videos["plain"]))
    assert _indices(frames) == list(range(10))
    for index, rgb in frames:
        assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
        assert abs(float(np.median(rgb[:, -4:, 0])) - (20 * index) % 256) < 12  # lossy codec


def test_selection_start_length_step(videos):
    assert _indices(read_frames(videos["plain"], start=2, length=5, step=2)) == [2, 4, 6]
    assert _indices(read_frames(videos["plain"], start=7)) == [7, 8, 9]
    assert _indices(read_frames(videos["plain"], step=10)) == [0]
    assert _indices(read_frames(videos["plain"], start=9, length=100)) == [9]
    for start, length, step in [(0, 0, 1), (2, 5, 2), (7, 0, 1), (9, 100, 3), (3, 0, 4)]:
        assert selected_count(10, start, length, step) == len(list(read_frames(videos["plain"], start=start,
                                                                                length=length, step=step)))


def test_a_far_start_seeks_and_gives_the_same_frames(videos):
    # Frame 70 of a 25 fps video is 2.8 s in: reached by seeking to the keyframe at 60, not decoding 0..69.
    whole = dict(read_frames(videos["long"]))
    part = list(read_frames(videos["long"], start=70, length=13, step=3))
    assert _indices(part) == [70, 73, 76, 79, 82]
    for index, rgb in part:
        np.testing.assert_array_equal(rgb, whole[index])


def test_a_stream_source_reads_like_a_path(videos):
    data = io.BytesIO(videos["long"].read_bytes())
    from_stream = list(read_frames(data, start=61, step=7))
    from_path = list(read_frames(videos["long"], start=61, step=7))
    assert _indices(from_stream) == _indices(from_path) == [61, 68, 75, 82, 89]
    for (_, a), (_, b) in zip(from_stream, from_path):
        np.testing.assert_array_equal(a, b)


def test_frames_are_streamed_not_collected(tmp_path):
    # A 4K video decodes frame by frame: holding two 4K RGB frames (25 MB each) is the most a reader may
    # keep while the caller holds one more.
    path = write_video(tmp_path / "uhd.mp4", frames=4, width=3840, height=2160, fps=25)
    info = probe(path)
    assert (info.width, info.height) == (3840, 2160)
    frame_bytes = 3840 * 2160 * 3
    tracemalloc.start()
    try:
        count = 0
        for index, rgb in read_frames(path):
            assert rgb.shape == (2160, 3840, 3)
            count += 1
            del rgb
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 4
    assert peak < 2.5 * frame_bytes


# --- bad input ---------------------------------------------------------------------------------


def test_not_a_video(tmp_path):
    import cv2

    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.zeros((20, 20, 3), np.uint8))
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(ValueError, match=r"photo\.png' is a still image"):
        probe(png)
    for path in (noise, empty, text):
        with pytest.raises(ValueError, match=rf"video '.*{path.name}' is not a video file"):
            read_frames(path)
    with pytest.raises(ValueError, match=r"driving video \(an in-memory file\) is not a video file"):
        probe(io.BytesIO(b"\x00" * 100), name="driving video")


def test_missing_folder_and_wrong_types(tmp_path):
    with pytest.raises(ValueError, match=r"'.*missing\.mp4' does not exist"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="is a folder"):
        probe(tmp_path)
    with pytest.raises(ValueError, match="expected a file path or a binary stream"):
        probe(42)


def test_no_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, SAMPLE_RATE), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = SAMPLE_RATE, 0
        container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    with pytest.raises(ValueError, match=r"sound\.m4a' has no video stream \(it holds audio\)"):
        read_frames(path)
    assert read_audio(path)[0].shape[0] == 1  # its audio still reads


def test_a_video_without_frames(tmp_path):
    path = tmp_path / "nothing.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        container.start_encoding()
    with pytest.raises(ValueError, match=r"nothing\.mkv'"):
        read_frames(path)


def test_truncated_stream_fails_at_a_frame_after_yielding_the_ones_before(videos, tmp_path):
    data = videos["faststart"].read_bytes()  # index first, so a cut file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(ValueError, match=r"cut\.mp4' is corrupt or truncated: .*frame (\d+)") as raised:
        for index, rgb in read_frames(cut):
            got.append(index)
    assert 0 < len(got) < 60
    assert got == list(range(len(got)))
    assert str(len(got)) in str(raised.value)  # the frame where it stopped


def test_a_truncated_file_without_its_index_is_refused_at_once(videos, tmp_path):
    data = videos["long"].read_bytes()  # index at the end: cut, nothing can be read
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.mp4' is not a video file, or is damaged"):
        read_frames(cut)


def test_selection_past_the_video_is_refused_before_decoding(videos):
    with pytest.raises(ValueError, match=r"start frame 10 is past the end of video '.*plain\.mp4', which has 10 frames"):
        read_frames(videos["plain"], start=10)
    with pytest.raises(ValueError, match=r"frame step 11 is larger than video '.*plain\.mp4', which has 10 frames"):
        read_frames(videos["plain"], step=11)
    for bad in (dict(step=0), dict(start=-1), dict(length=-3), dict(step=1.5), dict(start=True)):
        with pytest.raises(ValueError, match="must be"):
            read_frames(videos["plain"], **bad)


def test_frames_over_8k_are_refused_from_the_headers(tmp_path, videos):
    path = write_video(tmp_path / "huge.mp4", frames=1, width=7696, height=4336)
    with pytest.raises(ValueError, match=r"huge\.mp4' has 7696x4336 frames, more than the 33,177,600 pixels"):
        probe(path)
    with pytest.raises(ValueError, match="7696x4336"):
        read_frames(path)
    assert MAX_FRAME_PIXELS == 7680 * 4320
    with pytest.raises(ValueError, match="32x24 frames"):
        read_frames(videos["plain"], max_pixels=32 * 24 - 1)


# --- read_audio --------------------------------------------------------------------------------


def test_audio_is_float_channels_by_samples(videos):
    waveform, rate = read_audio(videos["audio"])
    assert rate == SAMPLE_RATE and waveform.dtype == np.float32 and waveform.shape[0] == 1
    assert 0.4 * SAMPLE_RATE <= waveform.shape[1] <= 0.4 * SAMPLE_RATE + 2048  # AAC pads its last frame
    spectrum = np.abs(np.fft.rfft(waveform[0, 1024:6144]))
    assert np.fft.rfftfreq(5120, 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(TONE_HZ, abs=5)
    assert 0.2 < np.abs(waveform).max() < 0.4


def test_audio_window_is_trimmed(videos):
    full, _ = read_audio(videos["audio"])
    part, rate = read_audio(videos["audio"], start_s=0.1, duration_s=0.15)
    assert part.shape == (1, int(0.15 * SAMPLE_RATE))
    np.testing.assert_allclose(part, full[:, 1600 : 1600 + 2400], atol=1e-6)
    empty, _ = read_audio(videos["audio"], start_s=5.0)
    assert empty.shape == (1, 0)


def test_audio_absent_or_asked_badly(videos):
    assert read_audio(videos["plain"]) is None
    assert read_audio(io.BytesIO(videos["plain"].read_bytes())) is None
    for bad in (dict(start_s=-1.0), dict(start_s=float("nan")), dict(duration_s=0), dict(duration_s="1")):
        with pytest.raises(ValueError, match=r"audio (start|duration) of video '.*audio\.mp4' must be"):
            read_audio(videos["audio"], **bad)
    with pytest.raises(ValueError, match="is not a video file"):
        read_audio(io.BytesIO(b"nonsense" * 100))


# --- frames_from_images ------------------------------------------------------------------------


def test_frames_from_an_image_batch():
    torch = pytest.importorskip("torch")
    images = torch.linspace(0, 1, 5).view(5, 1, 1, 1).expand(5, 4, 6, 3).contiguous()
    frames = list(frames_from_images(images))
    assert _indices(frames) == [0, 1, 2, 3, 4]
    assert frames[0][1].dtype == np.uint8 and frames[0][1].shape == (4, 6, 3)
    assert [int(rgb[0, 0, 0]) for _, rgb in frames] == [0, 64, 128, 191, 255]
    assert _indices(frames_from_images(images, start=1, step=2)) == [1, 3]
    assert _indices(frames_from_images(images.numpy(), length=2)) == [0, 1]
    rgba = torch.ones(2, 4, 6, 4)
    assert next(frames_from_images(rgba))[1].shape == (4, 6, 3)


def test_bad_image_batches():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"images must be an IMAGE batch"):
        frames_from_images(torch.zeros(4, 6, 3))
    with pytest.raises(ValueError, match="images has no frames"):
        frames_from_images(torch.zeros(0, 4, 6, 3))
    with pytest.raises(ValueError, match="frame step 3 is larger than images"):
        frames_from_images(torch.zeros(2, 4, 6, 3), step=3)
    bad = torch.zeros(2, 4, 6, 3)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="frame 1 of images holds NaN"):
        list(frames_from_images(bad))


def test_an_estimated_count_refuses_only_far_past_the_end(tmp_path):
    path = write_video(tmp_path / "ntsc.mkv", frames=30, fps=Fraction(30000, 1001))
    with pytest.raises(ValueError, match=r"start frame 40 is past the end of video '.*ntsc\.mkv' \(frame count estimated\)"):
        read_frames(path, start=40)
    with pytest.raises(ValueError, match="frame step 50 is larger than"):
        read_frames(path, step=50)
    with pytest.raises(ValueError, match=r"start frame 31 is past the end of video '.*ntsc\.mkv', which has 30 frames"):
        list(read_frames(path, start=31))  # within the estimate's margin: found out while decoding


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_phone_rotation_is_applied(tmp_path, degrees):
    # Phones store portrait video as landscape frames and a display matrix; the frames come out as shown.
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.set_display_rotation(degrees)
        image = np.zeros((24, 32, 3), np.uint8)
        image[:8, :8] = 255  # a mark in the stored top-left corner
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe(path)
    assert info.rotation == degrees % 360
    assert (info.width, info.height) == ((24, 32) if degrees % 180 else (32, 24))
    rgb = next(read_frames(path))[1]
    assert rgb.shape == (info.height, info.width, 3) and rgb.flags.c_contiguous
    expected = np.rot90(image, degrees // 90)  # counter-clockwise, as FFmpeg's autorotate shows it
    assert np.abs(rgb.astype(int) - expected).mean() < 10
