"""Decoding a video as a stream of RGB frames, and its audio track, with PyAV.

:func:`read_frames` never holds the video: it yields one decoded frame at a time (PyAV's decoder
threads buffer a few more), so a ten-minute video costs what one frame costs. Everything that can be
said about a file is said by :func:`probe` from its headers and the timestamps of its first packets,
before a frame is decoded: not a video, no video stream, no frames, frames over :data:`MAX_FRAME_PIXELS`,
a start or step past the end. A stream that breaks while decoding (a truncated download) raises where
it broke, after the frames before it have been yielded.

Frame indices count decoded frames from 0 in presentation order. A variable-frame-rate video is read
frame by frame like any other; :attr:`VideoInfo.frame_rate` is then its average rate, the rate its
frames are shown at when written back as a constant-rate video.

A source is a file path or a binary stream (``io.BytesIO``, what ComfyUI's ``VideoFromFile`` holds);
a stream is rewound before each use, so two readers of one stream must not be iterated at once.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Union

import av
import numpy as np

Source = Union[str, os.PathLike, BinaryIO]

MAX_FRAME_PIXELS = 7680 * 4320  # 8K UHD; one RGB frame of it is 100 MB, one float IMAGE frame 400 MB
_TIMESTAMP_PACKETS = 300  # video packets whose timestamps decide variable frame rate (read, not decoded)
_VFR_TOLERANCE = 0.1  # relative spread of frame intervals above which the frame rate counts as variable
_SEEK_MIN_SECONDS = 2.0  # a start closer than this to the beginning is reached by decoding, not seeking
_STILL_IMAGE_FORMATS = ("image2", "image2pipe")  # and every "*_pipe" demuxer: png_pipe, jpeg_pipe, ...


@dataclass(frozen=True)
class VideoInfo:
    """What the headers say about a video's first video stream.

    ``frame_count`` comes from the container's index where it has one (``frame_count_exact``), else
    from the duration and the average rate (an estimate). ``frame_rate`` is the average rate;
    ``variable_frame_rate`` says the first frames' intervals differ by more than 10 %. ``width`` and
    ``height`` are those of the frames as shown: a phone stores a portrait video as landscape frames
    plus a ``rotation``, which :func:`read_frames` applies.
    """

    width: int
    height: int
    frame_rate: Fraction
    frame_count: int
    duration_s: float
    has_audio: bool
    variable_frame_rate: bool
    frame_count_exact: bool = True
    codec: str = ""
    container: str = ""
    rotation: int = 0  # degrees counter-clockwise (0, 90, 180, 270) the frames are turned by to be shown


def _label(source: Source, name: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"{name} '{os.fspath(source)}'"
    return f"{name} (an in-memory file)"


def _check_source(source: Source, label: str) -> None:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str) or not path:
            raise ValueError(f"{label}: a video path must be a non-empty string")
        if not os.path.exists(path):
            raise ValueError(f"{label} does not exist")
        if os.path.isdir(path):
            raise ValueError(f"{label} is a folder, not a video file")
        return
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise ValueError(f"{label}: expected a file path or a binary stream (io.BytesIO), got {type(source).__name__}")


@contextmanager
def _opened(source: Source, label: str):
    """The source opened by PyAV for reading, every FFmpeg failure to open it a ValueError."""
    _check_source(source, label)
    if not isinstance(source, (str, os.PathLike)):
        source.seek(0)
    try:
        container = av.open(source if not isinstance(source, os.PathLike) else os.fspath(source), mode="r",
                            metadata_errors="ignore")
    except av.error.InvalidDataError as error:
        raise ValueError(f"{label} is not a video file, or is damaged beyond reading "
                         f"(FFmpeg cannot read it: {error.strerror})") from error
    except av.error.EOFError as error:
        raise ValueError(f"{label} is empty or cut short: it ends inside its own headers") from error
    except (av.error.FFmpegError, OSError) as error:
        raise ValueError(f"{label} cannot be opened: {error}") from error
    try:
        format_name = container.format.name
        if format_name in _STILL_IMAGE_FORMATS or format_name.endswith("_pipe"):
            raise ValueError(f"{label} is a still image ({format_name.removesuffix('_pipe')}), not a video file")
        yield container
    finally:
        container.close()


def _video_stream(container, label: str):
    if not container.streams.video:
        kinds = ", ".join(sorted({stream.type for stream in container.streams})) or "no streams at all"
        raise ValueError(f"{label} has no video stream (it holds {kinds})")
    return container.streams.video[0]


def _check_frame_size(width: int, height: int, label: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"{label} has frames of an unknown size ({width}x{height})")
    if width * height > max_pixels:
        raise ValueError(
            f"{label} has {width}x{height} frames, more than the {max_pixels:,} pixels allowed per frame "
            f"(8K, 7680x4320); scale it down first")


def _packet_times(container, stream) -> list[int]:
    """Presentation timestamps of the first video packets, sorted (demuxed only, nothing decoded)."""
    times = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                times.append(int(packet.pts))
            if len(times) >= _TIMESTAMP_PACKETS:
                break
    except av.error.FFmpegError:
        pass  # a damaged file: decoding will say where; the probe works with the packets it got
    return sorted(times)


def _is_variable(times: list[int], time_base: Fraction) -> bool:
    intervals = np.diff(np.asarray(times, dtype=np.int64))
    intervals = intervals[intervals > 0]
    if len(intervals) < 2:
        return False
    typical = float(np.median(intervals))
    # A millisecond time base rounds 29.97 fps to 33/34 ms: a tick or two of spread is not a variable rate.
    allowed = max(_VFR_TOLERANCE * typical, 1.5)
    return bool(np.abs(intervals - typical).max() > allowed)


def _frame_rate(stream, times: list[int]) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    intervals = np.diff(np.asarray(times, dtype=np.int64))
    intervals = intervals[intervals > 0]
    if len(intervals) and stream.time_base:
        return (1 / (Fraction(stream.time_base) * int(np.median(intervals)))).limit_denominator(100_000)
    return None


def _duration_s(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _quarter_turns(frame) -> int:
    """Quarter turns counter-clockwise (0..3) that the frame's display matrix asks for."""
    rotation = getattr(frame, "rotation", 0) or 0
    return int(round(rotation / 90)) % 4 if math.isfinite(rotation) else 0


def _first_frame_turns(container, stream, label: str) -> int:
    """The rotation of the first frame: only a decoded frame carries its display matrix in PyAV."""
    try:
        container.seek(0, stream=stream, backward=True)
    except av.error.FFmpegError:
        pass
    for frame in _decoded(container, stream, label, lambda: "at frame 0"):
        return _quarter_turns(frame)
    raise ValueError(f"{label} has no frames that can be decoded")


def probe(source: Source, name: str = "video", *, max_pixels: int = MAX_FRAME_PIXELS) -> VideoInfo:
    """The :class:`VideoInfo` of ``source`` from its headers, its first packets' timestamps and its first
    frame (decoded for its rotation, once the size is known to be within ``max_pixels``); ValueError
    naming ``name`` for a file that is not a video, has no video stream or no frames, or has frames over
    ``max_pixels``."""
    label = _label(source, name)
    with _opened(source, label) as container:
        stream = _video_stream(container, label)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        _check_frame_size(width, height, label, max_pixels)
        times = _packet_times(container, stream)
        frame_rate = _frame_rate(stream, times)
        if frame_rate is None:
            raise ValueError(f"{label} states no frame rate and its frames carry no timestamps")
        duration = _duration_s(container, stream)
        count, exact = int(stream.frames or 0), True
        if count <= 0 and duration is not None:
            count, exact = int(round(duration * frame_rate)), False
        if count <= 0 and len(times) < _TIMESTAMP_PACKETS:
            count, exact = len(times), False  # every packet was read: no index, but a count of the packets
        if count <= 0:
            raise ValueError(f"{label} has no frames")
        if duration is None:
            duration = float(count / frame_rate)
        turns = _first_frame_turns(container, stream, label)
        if turns % 2:
            width, height = height, width
        return VideoInfo(
            width=width, height=height, frame_rate=frame_rate, frame_count=count, duration_s=float(duration),
            rotation=90 * turns,
            has_audio=bool(container.streams.audio), variable_frame_rate=_is_variable(times, stream.time_base),
            frame_count_exact=exact, codec=stream.codec_context.name, container=container.format.name,
        )


def _whole(value: object, what: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return int(value)


def _check_selection(start: object, length: object, step: object) -> tuple[int, int, int]:
    return _whole(start, "start frame", 0), _whole(length, "frame count (length)", 0), _whole(step, "frame step", 1)


def selected_count(total: int, start: int = 0, length: int = 0, step: int = 1) -> int:
    """How many frames a selection yields from a video of ``total`` frames: from frame ``start``,
    ``length`` frames (0: to the end), every ``step``-th of them."""
    span = max(0, total - start) if length == 0 else max(0, min(length, total - start))
    return (span + step - 1) // step


def _check_against_count(total: int, start: int, step: int, label: str) -> None:
    if start >= total:
        raise ValueError(f"start frame {start} is past the end of {label}, which has {total} frames (0..{total - 1})")
    if step > total:
        raise ValueError(f"frame step {step} is larger than {label}, which has {total} frames")


def _estimate_margin(count: int) -> int:
    return count + max(2, count // 20)


def read_frames(
    source: Source, *, start: int = 0, length: int = 0, step: int = 1, name: str = "video",
    max_pixels: int = MAX_FRAME_PIXELS,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, rgb)`` for frames ``start``, ``start + step``, ... of ``source`` (``length`` frames of the
    video from ``start``, 0: to the end), ``rgb`` uint8 ``[H, W, 3]``, decoded one at a time.

    Checked at once, before anything is decoded: the file (:func:`probe`) and the selection against the
    video's frame count. A stream that breaks while decoding raises ValueError at the first frame it
    could not decode, after yielding the frames before it.
    """
    label = _label(source, name)
    start, length, step = _check_selection(start, length, step)
    info = probe(source, name, max_pixels=max_pixels)
    if info.frame_count_exact:
        _check_against_count(info.frame_count, start, step, label)
    elif start >= _estimate_margin(info.frame_count) or step > _estimate_margin(info.frame_count):
        # An estimated count (from the duration) may be a frame or two short: refuse only beyond that.
        _check_against_count(info.frame_count, start, step, f"{label} (frame count estimated)")
    return _frames(source, label, info, start, length, step, max_pixels)


def _frames(source: Source, label: str, info: VideoInfo, start: int, length: int, step: int, max_pixels: int
            ) -> Iterator[tuple[int, np.ndarray]]:
    stop = start + length if length else None
    yielded, last = 0, -1
    with _opened(source, label) as container:
        stream = _video_stream(container, label)
        stream.thread_type = "AUTO"
        for index, frame in _indexed_frames(container, stream, info, start, label):
            last = index
            if index < start or (index - start) % step:
                continue
            if stop is not None and index >= stop:
                return
            _check_frame_size(frame.width, frame.height, f"frame {index} of {label}", max_pixels)
            yielded += 1
            rgb = frame.to_ndarray(format="rgb24")
            turns = _quarter_turns(frame)
            yield index, (np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb)
    if yielded == 0:
        if last < 0:
            raise ValueError(f"{label} has no frames that can be decoded")
        raise ValueError(f"start frame {start} is past the end of {label}, which has {last + 1} frames")
    # A file cut short in a way FFmpeg does not notice only shows as missing frames at the end. A frame
    # or two fewer than the index says is allowed: some files' edit lists drop frames at the start.
    if info.frame_count_exact and last + 1 < info.frame_count - max(2, info.frame_count // 100):
        raise ValueError(f"{label} is corrupt or truncated: its frames stop at frame {last + 1} "
                         f"but it states {info.frame_count}")


def _indexed_frames(container, stream, info: VideoInfo, start: int, label: str):
    """``(index, av.VideoFrame)`` in presentation order. A far start of a constant-rate video is reached
    by seeking to the keyframe before it, indices then coming from timestamps; a seek that does not
    land at or before the start (or frames without timestamps) falls back to decoding from the beginning."""
    rate = info.frame_rate
    if start / rate >= _SEEK_MIN_SECONDS and not info.variable_frame_rate and stream.time_base:
        time_base = Fraction(stream.time_base)
        origin = stream.start_time if stream.start_time is not None else 0
        # Half a frame early, so rounding never puts the keyframe search after the start frame.
        target = origin + int((Fraction(start) - Fraction(1, 2)) / rate / time_base)
        landed = False
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            pass
        else:
            last = None
            for frame in _decoded(container, stream, label, lambda: f"after frame {last if last is not None else start}"):
                index = None if frame.pts is None else int(round((frame.pts - origin) * time_base * rate))
                if not landed:
                    if index is None or index > start:
                        break
                    landed = True
                elif index is None:
                    raise ValueError(f"{label} is corrupt: its frames lose their timestamps after frame {last}")
                last = index
                yield index, frame
            if landed:
                return
        container.seek(0, stream=stream, backward=True)
        stream.codec_context.flush_buffers()
    index = -1
    for frame in _decoded(container, stream, label, lambda: f"at frame {index + 1}"):
        index += 1
        yield index, frame


def _decoded(container, stream, label: str, where):
    """The decoded frames of ``stream``; an FFmpeg error while decoding becomes a ValueError saying
    where (``where()``) it broke."""
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.FFmpegError as error:
            raise ValueError(f"{label} is corrupt or truncated: decoding failed {where()} "
                             f"({getattr(error, 'strerror', None) or error})") from error
        yield frame


def _as_float_planar(frame) -> np.ndarray:
    """An audio frame's samples as float32 ``[channels, samples]`` in [-1, 1]."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: [1, samples * channels], channels interleaved
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    return data.astype(np.float32, copy=False)


def read_audio(
    source: Source, *, start_s: float = 0.0, duration_s: float | None = None, name: str = "video",
) -> tuple[np.ndarray, int] | None:
    """The first audio track of ``source`` from ``start_s`` seconds for ``duration_s`` seconds (None: to
    the end) as float32 ``[channels, samples]`` and its sample rate; None when there is no audio track.

    Seconds count from the first video frame (the audio of frames ``start..`` starts at
    ``start / frame_rate``); audio that begins after it is padded with silence at the front. A window
    past the end of the track gives zero samples.
    """
    label = _label(source, name)
    if isinstance(start_s, bool) or not isinstance(start_s, (int, float)) or not math.isfinite(start_s) or start_s < 0:
        raise ValueError(f"audio start of {label} must be a finite number of seconds >= 0, got {start_s!r}")
    if duration_s is not None and (isinstance(duration_s, bool) or not isinstance(duration_s, (int, float))
                                   or not math.isfinite(duration_s) or duration_s <= 0):
        raise ValueError(f"audio duration of {label} must be a finite number of seconds > 0 or None, got {duration_s!r}")
    with _opened(source, label) as container:
        if not container.streams.audio:
            return None
        audio = container.streams.audio[0]
        rate = int(audio.sample_rate or audio.codec_context.sample_rate or 0)
        if rate <= 0:
            raise ValueError(f"the audio track of {label} states no sample rate")
        video = container.streams.video[0] if container.streams.video else None
        origin_s = 0.0
        if video is not None and video.start_time is not None and video.time_base:
            origin_s = float(video.start_time * video.time_base)
        first = int(round(start_s * rate))
        end = None if duration_s is None else first + int(round(duration_s * rate))
        pieces, position, channels = [], None, None
        try:
            for frame in container.decode(audio):
                samples = _as_float_planar(frame)
                channels = samples.shape[0]
                if position is None:  # where the track starts, against the first video frame
                    position = 0 if frame.time is None else int(round((frame.time - origin_s) * rate))
                    if position > first:
                        pieces.append(np.zeros((channels, position - first if end is None else
                                                min(position, end) - first), np.float32))
                lo, hi = max(first, position), position + samples.shape[1] if end is None else min(end, position + samples.shape[1])
                if hi > lo:
                    pieces.append(samples[:, lo - position : hi - position])
                position += samples.shape[1]
                if end is not None and position >= end:
                    break
        except av.error.FFmpegError as error:
            raise ValueError(f"the audio track of {label} is corrupt or truncated: decoding failed "
                             f"{(position or 0) / rate:.2f} s in ({getattr(error, 'strerror', None) or error})") from error
        if channels is None:
            channels = len(audio.layout.channels) if audio.layout else 1
        waveform = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
        return np.ascontiguousarray(waveform, dtype=np.float32), rate


def frames_from_images(
    images, *, start: int = 0, length: int = 0, step: int = 1, name: str = "images",
    max_pixels: int = MAX_FRAME_PIXELS,
) -> Iterator[tuple[int, np.ndarray]]:
    """The same ``(index, rgb uint8 [H, W, 3])`` stream as :func:`read_frames`, from an IMAGE batch
    (torch or numpy ``[N, H, W, C]``, C 3 or 4 (alpha dropped), values 0..1), one frame converted at a time."""
    start, length, step = _check_selection(start, length, step)
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) != 4 or shape[3] not in (3, 4):
        raise ValueError(f"{name} must be an IMAGE batch [frames, height, width, 3], got "
                         f"{type(images).__name__} of shape {shape or 'none'}")
    total, height, width = int(shape[0]), int(shape[1]), int(shape[2])
    if total == 0:
        raise ValueError(f"{name} has no frames")
    _check_frame_size(width, height, name, max_pixels)
    _check_against_count(total, start, step, name)
    stop = total if length == 0 else min(total, start + length)

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        for index in range(start, stop, step):
            frame = images[index, :, :, :3]
            if hasattr(frame, "detach"):  # torch
                frame = frame.detach().float().cpu().numpy()
            frame = np.asarray(frame, dtype=np.float32)
            if not np.isfinite(frame).all():
                raise ValueError(f"frame {index} of {name} holds NaN or infinite values")
            yield index, (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    return frames()
