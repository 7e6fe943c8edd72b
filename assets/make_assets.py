"""Regenerate the bundled example inputs in this folder (deterministic).

    python assets/make_assets.py

Everything comes from the pack's own synthetic-person generator (``pidm_core.data.synthetic``),
so the assets carry no third-party rights and match the embedded 64x64 model's training domain.
Their names start with ``pidm_``: the pack copies them into ComfyUI's input folder, beside the user's
own files (nodes/folders.py), and the prefix keeps them from meeting a user's ``person.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pidm_core.data.synthetic import make_pair  # noqa: E402
from pidm_core.data.synthetic.scene import make_scene  # noqa: E402
from pidm_core.pose.formats import save_pose_file  # noqa: E402
from pidm_core.pose.interpolate import interpolate_poses  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402

SIZE = 256
SOURCE_SEED = 14  # a front-facing standing person, all 18 joints visible; its pair's target has arms raised
SECOND_SEED = 1  # another identity, arms held out sideways, all 18 joints visible: a pose to borrow
SEQUENCE_FRAMES = 8
SCENE_SEED, SCENE_HEIGHT = 113, 384  # a person standing at the side of a room, 44 % of the photo's height
UPPER_MARGIN = 0.06  # fraction of the canvas added around the upper-body box


def _upper_body_mask(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [H, W]: 255 over the box from above the head to the hips, arms included."""
    present = keypoints[:, 2] > 0
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16, 17]  # head, neck, arms, hips
    points = keypoints[[i for i in upper if present[i]], :2]
    hips_y = keypoints[[8, 11], 1][present[[8, 11]]].mean()
    margin_x, margin_y = 1.5 * UPPER_MARGIN * width, UPPER_MARGIN * height
    x0 = max(0, int(points[:, 0].min() - margin_x))
    x1 = min(width, int(np.ceil(points[:, 0].max() + margin_x)))
    y0 = max(0, int(points[:, 1].min() - 2 * margin_y))  # the head reaches above the eyes and ears
    y1 = min(height, int(np.ceil(hips_y + margin_y / 2)))
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def main(out_dir: Path = HERE) -> None:
    pair = make_pair(SOURCE_SEED, SIZE)
    second = make_pair(SECOND_SEED, SIZE)
    assert pair.source_pose.kind == "standing" and pair.target_pose.kind == "arms_raised"
    assert second.source_pose.kind == "arms_out"

    Image.fromarray(pair.source_image).save(out_dir / "pidm_person.png")
    Image.fromarray(second.source_image).save(out_dir / "pidm_person2.png")

    source = Pose(pair.source_keypoints, SIZE, SIZE)
    raised = Pose(pair.target_keypoints, SIZE, SIZE)
    save_pose_file(out_dir / "pidm_pose_arms_raised.json", [raised])
    save_pose_file(out_dir / "pidm_pose_sequence.json", interpolate_poses(source, raised, SEQUENCE_FRAMES))

    Image.fromarray(_upper_body_mask(pair.source_keypoints, SIZE, SIZE), mode="L").save(out_dir / "pidm_mask_upper.png")
    scene = make_scene(SCENE_SEED, SCENE_HEIGHT)
    assert scene.source_pose.kind == "standing" and scene.source_image.shape == (384, 512, 3)
    Image.fromarray(scene.source_image).save(out_dir / "pidm_scene.png")
    for name in ("pidm_person.png", "pidm_person2.png", "pidm_pose_arms_raised.json", "pidm_pose_sequence.json",
                 "pidm_mask_upper.png", "pidm_scene.png"):
        print(out_dir / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
