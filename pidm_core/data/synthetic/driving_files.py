"""Driving videos on disk: H.264 mp4 (what artists' videos are) and the truth beside it as .npz.

Both files are deterministic for a given PyAV / FFmpeg build: the encoder runs on one thread with fixed
settings and numbered frames, and the .npz is written with fixed zip timestamps (``numpy.savez`` stamps
the current time). One condition, measured: the width must be a multiple of 128 (640, 384, 256). Other
widths came out a few bytes different from run to run of one process (160x128: 7883, 7881, 7859 bytes),
since libavcodec copies each frame into rows padded to 64 bytes that it leaves uninitialised, and x264's
output depends on them; the decoded pictures differ by no more than the codec's own loss.
"""

from __future__ import annotations

import io
import itertools
import math
import zipfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .driving import DRIVING_CASES, DrivingTruth, make_driving_video

DEFAULT_CRF = 28  # lossy, as downloaded videos are: blocky edges and smeared patterns at 640x480
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
AUDIO_RATE = 22_050


def save_truth(truth: DrivingTruth, path: str | Path) -> Path:
    """Write ``truth`` as an .npz (one array per field, :meth:`DrivingTruth.arrays`); the same bytes every time."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in truth.arrays().items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.array(array, order="C"), allow_pickle=False)  # keeps 0-d as 0-d
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    return path


def load_truth(path: str | Path) -> DrivingTruth:
    """The :class:`DrivingTruth` saved by :func:`save_truth`."""
    with np.load(path, allow_pickle=False) as arrays:
        return DrivingTruth.from_arrays({name: arrays[name] for name in arrays.files})


def encode_h264(frames: Iterable[np.ndarray], path: str | Path, fps: int | Fraction, *, crf: int = DEFAULT_CRF,
                audio: tuple[np.ndarray, int] | None = None, audio_bitrate: int = 48_000) -> Path:
    """Encode uint8 RGB frames (``[H, W, 3]``, even sides) as H.264 yuv420p at constant quality ``crf``,
    with ``audio`` = (float32 ``[channels, samples]`` in [-1, 1], sample rate) as AAC when given.
    Frames are encoded as they come, so a generator of frames is never held whole."""
    import av  # the video extra: only what writes files needs it

    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to encode into '{path}'")
    if first.ndim != 3 or first.shape[2] != 3 or first.shape[0] % 2 or first.shape[1] % 2:
        raise ValueError(f"frames for '{path}' must be RGB [H, W, 3] with even sides (yuv420p), got {first.shape}")
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        # Every stream is added before the first packet: a container takes no new stream once it writes.
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # one thread: the same file from the same frames, every time
        stream.options = {"crf": str(int(crf)), "preset": "medium", "threads": "1"}
        sound = None
        if audio is not None:
            waveform, rate = audio
            waveform = np.ascontiguousarray(np.clip(waveform, -1, 1), dtype=np.float32)
            layout = "mono" if waveform.shape[0] == 1 else "stereo"
            sound = container.add_stream("aac", rate=int(rate), layout=layout)
            sound.bit_rate = int(audio_bitrate)
        time_base = 1 / Fraction(fps)
        for index, rgb in enumerate(itertools.chain([first], frames)):
            # Converted by OpenCV (BT.601, limited range, as decoders assume; closer to the input than
            # PyAV's conversion) and numbered here: frames PyAV numbered gave another first file per process.
            yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            chunk = sound.codec_context.frame_size or 1024
            for start in range(0, waveform.shape[1], chunk):
                piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(waveform[:, start : start + chunk]),
                                                   format="fltp", layout=layout)
                piece.sample_rate, piece.pts = int(rate), start
                container.mux(sound.encode(piece))
            container.mux(sound.encode(None))
    return path


def driving_file_stem(case: str, seed: int) -> str:
    return f"driving_{case}_seed{seed}"


def write_driving_case(out_dir: str | Path, case: str, seed: int = 0, frames: int = 150,
                       size: tuple[int, int] = (640, 480), fps: int = 25, crf: int = DEFAULT_CRF,
                       audio: bool = False) -> tuple[Path, Path]:
    """Render driving video ``case`` (:func:`~.driving.make_driving_video`) into ``out_dir`` as
    ``driving_<case>_seed<seed>.mp4`` and its truth ``.npz``; returns both paths. ``audio`` adds a
    :func:`tone_melody` track as long as the video (22.05 kHz mono AAC)."""
    if case not in DRIVING_CASES:
        raise ValueError(f"unknown driving video case {case!r}; expected one of {DRIVING_CASES}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = make_driving_video(case, seed=seed, frames=frames, size=size, fps=fps)
    stem = driving_file_stem(case, seed)
    sound = (tone_melody(frames / fps, AUDIO_RATE), AUDIO_RATE) if audio else None
    mp4 = encode_h264(iter(video.images), out_dir / f"{stem}.mp4", video.fps, crf=crf, audio=sound)
    return mp4, save_truth(video.truth(), out_dir / f"{stem}.npz")


def tone_melody(seconds: float, rate: int = 22_050, notes_hz: tuple[float, ...] = (392.0, 523.25, 659.25, 523.25)
                ) -> np.ndarray:
    """A few soft tones one after another (float32 ``[1, samples]``): an audio track whose timing can
    be heard and checked (each note starts ``seconds / len(notes_hz)`` after the previous one)."""
    total = int(round(seconds * rate))
    t = np.arange(total) / rate
    note_length = seconds / len(notes_hz)
    index = np.minimum((t / note_length).astype(int), len(notes_hz) - 1)
    local = t - index * note_length
    envelope = np.minimum(1.0, local / 0.02) * np.exp(-3.0 * local)  # a quick attack, then a decay
    wave = np.sin(2 * math.pi * np.asarray(notes_hz)[index] * t)
    return (0.3 * envelope * wave).astype(np.float32)[None]
