"""Poses From Video: one person's pose sequence from a driving video, with its frame rate and sound.

The video is decoded as a stream (``pidm_core.video.read``) and only each frame's keypoints are kept, so a
long video never becomes one IMAGE batch; the person is followed by identity, left and right kept
consistent, gaps filled and the joints smoothed in ``pidm_core.pose.video``.
"""

from __future__ import annotations

from fractions import Fraction

import comfy.model_management as mm
import comfy.utils
import numpy as np
import torch

from ..pidm_core.pose import detect, formats, people, smooth, track
from ..pidm_core.pose import video as video_poses
from ..pidm_core.video import read
from .compat import PoseKeypointType, check_numbers, io
from .pose import _openpose_dirs, person_choice, person_input
from .previews import PREVIEW_FRAMES, THUMBNAIL_MAX_PX, pose_ui

DEFAULT_FRAME_RATE = 25.0  # for an IMAGE batch, which carries no rate of its own


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A small float copy of a frame for the pose preview (a few are kept, never the video)."""
    height, width = rgb.shape[:2]
    step = max(1, -(-max(height, width) // THUMBNAIL_MAX_PX))
    return rgb[::step, ::step].astype(np.float32) / 255.0


class PIDMPosesFromVideo(io.ComfyNode):
    """Detects and follows one person through a video: a pose per frame, the frame rate and the audio."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMPosesFromVideo",
            display_name="Poses From Video",
            category="PIDM/pose",
            description="Follows one person through a driving video (ComfyUI's Load Video, or an IMAGE batch): "
                        "a COCO-18 pose per frame, read as a stream so long videos fit in memory. The person "
                        "chosen where people first appear is tracked by identity; left and right stay consistent, "
                        "short gaps are filled from the neighbouring frames and the joints are smoothed.",
            inputs=[
                io.Video.Input("video", optional=True,
                               tooltip="The driving video (Load Video). Connect this or images."),
                io.Image.Input("images", optional=True,
                               tooltip="The driving frames as an IMAGE batch, instead of a video."),
                io.Float.Input("frame_rate", default=DEFAULT_FRAME_RATE, min=0.1, max=1000.0, step=0.01,
                               tooltip="Frames per second of the images input (a video carries its own rate)."),
                io.Int.Input("start_frame", default=0, min=0, max=10_000_000,
                             tooltip="First frame read (0 = the start)."),
                io.Int.Input("frame_count", default=0, min=0, max=10_000_000,
                             tooltip="How many frames of the video to read from start_frame, before the frame "
                                     "step (0 = to the end)."),
                io.Int.Input("frame_step", default=1, min=1, max=1000,
                             tooltip="Read every n-th frame (2 = half the frames at half the frame rate; the "
                                     "length in seconds and the sound stay the same)."),
                person_input(),
                io.Float.Input("smoothing", default=smooth.DEFAULT_STRENGTH, min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the joints are smoothed over time (0 = raw detections); the "
                                       "detector's confidence decides how much each frame counts."),
                io.Float.Input("max_gap_seconds", default=video_poses.DEFAULT_MAX_GAP_S, min=0.0, max=60.0,
                               step=0.1, tooltip="Longest stretch without the person that is filled by "
                                                 "interpolating between the frames around it."),
                io.Combo.Input("long_gaps", options=list(track.LONG_GAPS), default="hold",
                               tooltip="Longer stretches without the person: 'hold' = keep the nearest pose "
                                       "seen, 'empty' = no pose there (Save Pose keeps such frames; the sampler "
                                       "refuses them). The report output lists them either way."),
                io.Combo.Input("backend", options=list(detect.BACKENDS), default="auto",
                               tooltip="auto: as Pose From Image, OpenPose when its weights are on disk, else "
                                       "MediaPipe (its model ships with the pack; the faster on a CPU)."),
                io.Combo.Input("smoothing_method", options=list(smooth.METHODS), default=smooth.DEFAULT_METHOD,
                               tooltip="savgol: Savitzky-Golay over a window around each frame (keeps the shape of "
                                       "the motion); one_euro: the One Euro filter (less lag on fast moves at "
                                       "rest-steady joints)."),
                io.Float.Input("threshold", default=people.DEFAULT_THRESHOLD, min=0.0, max=1.0, step=0.01,
                               tooltip="Minimum detector confidence for a joint to count."),
            ],
            outputs=[
                PoseKeypointType.Output(display_name="poses", tooltip="One pose per frame read, in video pixels."),
                io.Float.Output(display_name="frame_rate", tooltip="Frames per second of the poses (the video's "
                                                                   "rate divided by the frame step)."),
                io.Audio.Output(display_name="audio", tooltip="The video's sound over the frames read (None "
                                                              "when it has none)."),
                io.String.Output(display_name="report", tooltip="Frames read, and which were filled or left "
                                                                "empty."),
            ],
        )

    @classmethod
    def validate_inputs(cls, frame_rate=None, smoothing=None, max_gap_seconds=None, threshold=None):
        return check_numbers(cls, frame_rate=frame_rate, smoothing=smoothing, max_gap_seconds=max_gap_seconds,
                             threshold=threshold)

    @classmethod
    def execute(cls, person_index: int, frame_rate: float, start_frame: int, frame_count: int, frame_step: int,
                smoothing: float, max_gap_seconds: float, long_gaps: str, backend: str, smoothing_method: str,
                threshold: float, video=None,
                images=None) -> io.NodeOutput:
        if (video is None) == (images is None):
            raise ValueError("Poses From Video needs exactly one of its inputs video and images connected, got "
                             + ("both" if video is not None else "neither"))
        if video is not None:
            source = video.get_stream_source()
            info = read.probe(source, "video")  # every check before any decoding: nothing is lost to a bad file
            frames = read.read_frames(source, start=start_frame, length=frame_count, step=frame_step, name="video")
            rate = info.frame_rate
        else:
            source = None
            frames = read.frames_from_images(images, start=start_frame, length=frame_count, step=frame_step,
                                             name="images")
            info = None
            rate = Fraction(frame_rate).limit_denominator(100_000)
        total_frames = info.frame_count if info is not None else int(images.shape[0])
        expected = read.selected_count(total_frames, start_frame, frame_count, frame_step)
        progress = comfy.utils.ProgressBar(max(1, expected))
        thumbnails: list[np.ndarray] = []

        def kept(stream):
            for index, rgb in stream:
                if len(thumbnails) < PREVIEW_FRAMES:
                    thumbnails.append(_thumbnail(rgb))
                yield index, rgb

        def on_frame(done: int, total) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(done, max(expected, done))

        mm.throw_exception_if_processing_interrupted()
        height, width = (info.height, info.width) if info is not None else (int(images.shape[1]), int(images.shape[2]))
        output_rate = rate / frame_step
        found = video_poses.poses_from_frames(
            kept(frames), width=width, height=height, frame_rate=output_rate, backend=backend,
            person=person_choice(person_index), smoothing=smoothing, smoothing_method=smoothing_method,
            max_gap=max(0, round(max_gap_seconds * float(output_rate))), long_gaps=long_gaps, threshold=threshold,
            callback=on_frame, total=expected, name="video" if video is not None else "images",
            openpose_dirs=_openpose_dirs())
        poses = formats.pose_keypoint_from_poses(found.poses)
        audio = None
        if info is not None and info.has_audio:
            # the sound of the frames read: from the first one, as long as they last (a frame step keeps the length)
            sound = read.read_audio(source, start_s=float(found.frame_indices[0] / rate),
                                    duration_s=float(len(found.poses) * frame_step / rate), name="video")
            if sound is not None:
                waveform, sample_rate = sound
                audio = {"waveform": torch.from_numpy(waveform).unsqueeze(0), "sample_rate": int(sample_rate)}
        return io.NodeOutput(poses, float(output_rate), audio, found.summary(),
                             ui=pose_ui(poses, thumbnails or None))


NODES = [PIDMPosesFromVideo]
