"""Edit Pose: a pose changed by hand in the web UI's editor (``js/pose_editor.js``).

The editor writes the whole edited POSE_KEYPOINT as JSON into the ``edited_pose`` widget, so the
workflow file carries it; this node only reads it back (``pidm_core.pose.edit``).
"""

from __future__ import annotations

from ..pidm_core.pose.edit import choose_pose, preview_frames
from .compat import PoseKeypointType, io
from .previews import PREVIEW_FRAMES, pose_ui

EDITED_POSE = "edited_pose"  # the widget's name: js/pose_editor.js writes it, errors name it


class PIDMPoseEditor(io.ComfyNode):
    """Outputs the pose edited in the browser, or its input while nothing has been edited."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMPoseEditor",
            display_name="Edit Pose",
            category="PIDM/pose",
            description="Drag joints, hide or restore them, mirror left/right, undo; the edited pose is saved "
                        "in the workflow. Run once to bring the input pose into the editor; Reset drops the "
                        "edits and passes the input through again.",
            inputs=[
                PoseKeypointType.Input("pose", optional=True,
                                       tooltip="Pose to start from; it appears in the editor after a run. Leave "
                                               "unconnected to start from a standing figure (press New)."),
                io.String.Input(EDITED_POSE, default="", socketless=True,
                                tooltip="The edited POSE_KEYPOINT as JSON, written by the editor; empty = no "
                                        "edit, the input passes through unchanged."),
            ],
            outputs=[PoseKeypointType.Output(display_name="pose", tooltip="The edited pose, or the input pose "
                                                                          "when nothing has been edited.")],
        )

    @classmethod
    def execute(cls, edited_pose: str = "", pose=None) -> io.NodeOutput:
        output = choose_pose(edited_pose, pose, EDITED_POSE)
        ui = pose_ui(output)
        if pose is not None:  # the editor shows it, and starts from it after Reset (strict JSON: see pose_ui)
            ui["pidm_input_pose"] = preview_frames(pose, PREVIEW_FRAMES)
        return io.NodeOutput(output, ui=ui)


NODES = [PIDMPoseEditor]
