"""Writing an H.264 mp4 a few frames at a time, with an AAC sound track from a waveform.

:class:`VideoWriter` encodes each batch of frames as it is given, so only the encoder's own look-ahead is held,
whatever the video's length. The sound is encoded in step with the pictures (up to the time of the frames written
so far), so the muxer interleaves the two streams as it goes instead of buffering one of them, and it is cut at
the video's duration.

Pictures are yuv420p, the format every player reads, whose chroma planes are half the size: both sides must be
even. A frame with an odd width or height is padded by repeating its last column or row (nothing of the picture
is lost; the file is one pixel wider or taller): :attr:`VideoWriter.size` is the size written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
AUDIO_CODEC = "aac"
AUDIO_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
AUDIO_RATE_FALLBACK = 48000  # a rate AAC does not take is resampled to this
AUDIO_BLOCK_SAMPLES = 1 << 16  # samples per channel converted and encoded at once
DEFAULT_CRF = 18  # x264 constant quality: visually lossless for these pictures, a few hundred KB per 1000 frames
MAX_FRAME_RATE = 1000
NTSC_TOLERANCE = 0.0005  # of rate·1.001 from a whole n: n·1000/1001 fps, which a float cannot hold exactly

Audio = tuple[np.ndarray, int]  # float32 [channels, samples] in [-1, 1], samples per second


def exact_frame_rate(rate: Union[Fraction, float, int], name: str = "frame rate") -> Fraction:
    """``rate`` as a Fraction: a Fraction or int is kept. A float (what a FLOAT socket carries) is read as the
    NTSC rate n·1000/1001 it is within :data:`NTSC_TOLERANCE` of (29.97, 23.976, 59.94, and a stepped 14.985),
    else as the fraction of denominator up to 1001 it is a float of (12.5 = 25/2), else to a thousandth of a
    frame (as ComfyUI's CreateVideo does). ValueError unless finite and in (0, MAX_FRAME_RATE]."""
    if isinstance(rate, bool) or not isinstance(rate, (Fraction, int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number of frames per second, got {type(rate).__name__}")
    if not math.isfinite(float(rate)) or not 0 < float(rate) <= MAX_FRAME_RATE:
        raise ValueError(f"{name} must be between 0 and {MAX_FRAME_RATE} frames per second (above 0), got {rate}")
    if isinstance(rate, (Fraction, int, np.integer)):
        return Fraction(rate)
    value = float(rate)
    ntsc = round(value * 1001 / 1000)
    if ntsc >= 1 and abs(value * 1001 / 1000 - ntsc) < NTSC_TOLERANCE:
        return Fraction(ntsc * 1000, 1001)
    simple = Fraction(value).limit_denominator(1001)
    if abs(float(simple) - value) < 1e-9 * value:
        return simple
    exact = Fraction(round(value * 1000), 1000)
    if exact <= 0:
        raise ValueError(f"{name} must be at least 0.001 frames per second, got {rate}")
    return exact


def audio_from_comfy(audio, name: str = "audio") -> Audio:
    """ComfyUI's AUDIO ({"waveform": tensor [1, channels, samples], "sample_rate": int}) as (float32 array
    [channels, samples], rate), a view where the waveform is already float32 on the CPU."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(f"{name} must be ComfyUI AUDIO (a dict with 'waveform' and 'sample_rate'), "
                         f"got a {type(audio).__name__} value")
    waveform = audio["waveform"]
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().cpu()
        waveform = waveform.float().numpy() if waveform.is_floating_point() else waveform.numpy()
    waveform = np.asarray(waveform)
    if waveform.ndim != 3 or waveform.shape[0] != 1:
        raise ValueError(f"{name} waveform must be [1, channels, samples] (one clip), "
                         f"got shape {tuple(waveform.shape)}")
    return waveform[0], audio["sample_rate"]


def check_audio(audio: Optional[Audio], name: str = "audio") -> Optional[Audio]:
    """(float32 [channels, samples], int rate), checked: 1 to 8 channels, a positive rate, finite samples."""
    if audio is None:
        return None
    try:
        waveform, rate = audio
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (waveform [channels, samples], sample rate), "
                         f"got {type(audio).__name__}") from None
    waveform = np.asarray(waveform)
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[0] not in AUDIO_LAYOUTS:
        raise ValueError(f"{name} waveform must be [channels, samples] with 1 to {max(AUDIO_LAYOUTS)} channels, got "
                         f"shape {tuple(waveform.shape)}")
    if waveform.shape[1] == 0:
        raise ValueError(f"{name} holds no samples: connect a clip with sound, or leave {name} unconnected")
    if not np.issubdtype(waveform.dtype, np.floating):
        raise ValueError(f"{name} waveform must hold float samples in [-1, 1], got {waveform.dtype}")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) and not (
            isinstance(rate, float) and rate.is_integer()):
        raise ValueError(f"{name} sample rate must be a whole number of samples per second, got {rate!r}")
    if not 0 < int(rate) <= 384000:
        raise ValueError(f"{name} sample rate must be between 1 and 384000 samples per second, got {rate}")
    for start in range(0, waveform.shape[1], AUDIO_BLOCK_SAMPLES):  # in blocks: no copy of a long clip
        if not np.isfinite(waveform[:, start:start + AUDIO_BLOCK_SAMPLES]).all():
            raise ValueError(f"{name} holds NaN or infinite samples (from {start / int(rate):.2f} s on): "
                             "the sound cannot be encoded")
    return waveform, int(rate)


def _uint8_frames(frames, name: str) -> np.ndarray:
    """[N, H, W, 3] (or one [H, W, 3]) uint8, or float in [0, 1] (numpy or torch; clipped and rounded) ->
    uint8 numpy [N, H, W, 3]."""
    if hasattr(frames, "detach"):
        frames = frames.detach()
        if frames.is_floating_point():
            if not bool(frames.isfinite().all()):
                raise ValueError(f"{name} contain NaN or infinite values")
            frames = frames.float().clamp(0, 1).mul(255).add(0.5).byte()
        frames = frames.cpu().numpy()
    frames = np.asarray(frames)
    shape = tuple(frames.shape)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] < 1 or frames.shape[2] < 1:
        raise ValueError(f"{name} must be RGB frames [N, H, W, 3], got shape {shape}")
    if frames.dtype == np.uint8:
        return frames
    if np.issubdtype(frames.dtype, np.floating):
        if not np.isfinite(frames).all():
            raise ValueError(f"{name} contain NaN or infinite values")
        return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    raise ValueError(f"{name} must be uint8 or float in [0, 1], got {frames.dtype}")


@dataclass(frozen=True)
class WrittenVideo:
    """What :meth:`VideoWriter.close` wrote: the file, its frame count and rate, the size written (even sides),
    the frames' own size, and whether it has a sound track."""

    path: Path
    frames: int
    frame_rate: Fraction
    width: int
    height: int
    frame_width: int
    frame_height: int
    has_audio: bool

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.frame_rate)


class VideoWriter:
    """An mp4 (H.264 yuv420p, optional AAC sound) written frame batch by frame batch.

    >>> with VideoWriter("out.mp4", Fraction(30000, 1001), audio=(waveform, 48000)) as video:
    ...     for chunk in chunks:
    ...         video.write(chunk)          # uint8 [N, H, W, 3], or float [N, H, W, 3] in [0, 1]
    >>> video.result.frames

    frame_rate: Fraction, int or float (:func:`exact_frame_rate`). audio: (float32 [channels, samples], rate),
    cut at the video's duration (a shorter one ends early). crf: x264 quality (0 = lossless, 51 = worst).
    The size comes from the first frames; later ones must match. A run that raises inside ``with`` leaves no
    file behind.
    """

    def __init__(self, path: Union[str, os.PathLike], frame_rate, *, audio: Optional[Audio] = None,
                 crf: int = DEFAULT_CRF, name: str = "video"):
        import av  # PyAV: ComfyUI requires it; imported here so the rest of pidm_core does not need it

        self.path = Path(path)
        self.name = name
        self.frame_rate = exact_frame_rate(frame_rate)
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be a whole number from 0 to 51, got {crf!r}")
        self._audio = check_audio(audio)
        if not self.path.parent.is_dir():
            raise ValueError(f"{name} file {str(self.path)!r}: its folder does not exist")
        self._av = av
        self._crf = crf
        self._container = av.open(str(self.path), mode="w", format="mp4")
        self._video = None
        self._sound = None
        self._audio_done = 0  # samples of the waveform encoded so far
        self.frames = 0
        self.size: Optional[tuple[int, int]] = None  # (width, height) written, even
        self.frame_size: Optional[tuple[int, int]] = None  # (width, height) of the frames given
        self.result: Optional[WrittenVideo] = None

    # --- frames ------------------------------------------------------------------------------------
    def _open_video(self, width: int, height: int) -> None:
        self.frame_size = (width, height)
        self.size = (width + width % 2, height + height % 2)
        stream = self._container.add_stream(CODEC, rate=self.frame_rate)
        stream.width, stream.height = self.size
        stream.pix_fmt = PIXEL_FORMAT
        stream.options = {"crf": str(self._crf)}
        self._video = stream
        if self._audio is not None:  # after the video: players take the first stream as the picture
            waveform, rate = self._audio
            rates = self._av.codec.Codec(AUDIO_CODEC, "w").audio_rates
            self._sound = self._container.add_stream(AUDIO_CODEC, rate=rate if rate in rates else AUDIO_RATE_FALLBACK)
            self._sound.layout = AUDIO_LAYOUTS[waveform.shape[0]]

    def write(self, frames) -> None:
        """Encode frames [N, H, W, 3] (or one [H, W, 3]): uint8, or float in [0, 1] (numpy or torch)."""
        if self.result is not None:
            raise ValueError(f"{self.name} is closed: no more frames can be written")
        frames = _uint8_frames(frames, f"{self.name} frames")
        height, width = frames.shape[1:3]
        if self._video is None:
            self._open_video(width, height)
        elif (width, height) != self.frame_size:
            raise ValueError(f"{self.name} frames are {width}x{height} pixels but the first ones were "
                             f"{self.frame_size[0]}x{self.frame_size[1]}: every frame of a video has one size")
        for frame in frames:
            if self.size != self.frame_size:  # odd sides: repeat the last column / row (module docstring)
                frame = np.pad(frame, ((0, self.size[1] - height), (0, self.size[0] - width), (0, 0)), mode="edge")
            picture = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = self.frames
            self._container.mux(self._video.encode(picture))
            self.frames += 1
        self._write_audio(self._samples_due(self.frames))

    # --- sound --------------------------------------------------------------------------------------
    def _samples_due(self, frames: int) -> int:
        """Waveform samples that play during the first ``frames`` frames (all of them at most)."""
        if self._audio is None:
            return 0
        waveform, rate = self._audio
        return min(waveform.shape[1], math.floor(frames * rate / self.frame_rate))

    def _write_audio(self, until: int) -> None:
        if self._sound is None or self._video is None:  # the header needs the video stream first
            return
        waveform, rate = self._audio
        while self._audio_done < until:
            end = min(until, self._audio_done + AUDIO_BLOCK_SAMPLES)
            block = np.ascontiguousarray(waveform[:, self._audio_done:end], dtype=np.float32)
            frame = self._av.AudioFrame.from_ndarray(block, format="fltp", layout=self._sound.layout.name)
            frame.sample_rate = rate
            frame.pts = self._audio_done
            frame.time_base = Fraction(1, rate)
            self._container.mux(self._sound.encode(frame))
            self._audio_done = end

    # --- end ----------------------------------------------------------------------------------------
    def close(self) -> WrittenVideo:
        """Flush the encoders and finish the file; returns what was written. ValueError (and no file) when no
        frame was written."""
        if self.result is not None:
            return self.result
        if self._video is None:
            self.abort()
            raise ValueError(f"{self.name}: no frames were written, so there is no video")
        self._container.mux(self._video.encode(None))
        if self._sound is not None:
            self._write_audio(self._samples_due(self.frames))
            self._container.mux(self._sound.encode(None))
        self._container.close()
        self.result = WrittenVideo(self.path, self.frames, self.frame_rate, *self.size, *self.frame_size,
                                   self._sound is not None and self._audio_done > 0)
        return self.result

    def abort(self) -> None:
        """Stop without finishing the file, and delete it."""
        try:
            self._container.close()
        except Exception:  # a half-written container may refuse to close cleanly; the file goes anyway
            pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        elif self.result is None:
            self.abort()
