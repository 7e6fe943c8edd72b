"""Hostile model files in models/pidm, loaded through Load PIDM Model on a real ComfyUI 0.3.75 server
(issue 14, models): each is a node error carrying our CheckpointError, the server stays up and grows
by less than 3 GB, and the next good prompt runs. The library side, with many more cases of the same
families, is tests/test_hostile_models.py (the files are built by its writers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.keypoints import Pose
from tests.test_hostile_models import (
    BOMB_BYTES, HOSTILE_PICKLES, _metadata, _safetensors, official_zip_bomb, write_torch_zip, zeros_deflated,
)
from tests.graphs import one_step_sampler_graph
from tests.tiny_model import save_tiny_model

pytestmark = pytest.mark.host

GROWTH_LIMIT_KB = 3 << 20  # 3 GB
W, H = 48, 64
GOOD_MODEL = "hostile_models_tiny.safetensors"


def _standing() -> Pose:
    joints = [(24, 8), (24, 16), (16, 16), (14, 26), (13, 36), (32, 16), (34, 26), (35, 36), (19, 36), (19, 48),
              (19, 60), (29, 36), (29, 48), (29, 60), (22, 7), (26, 7), (20, 8), (28, 8)]
    return Pose(np.array([(x, y, 1.0) for x, y in joints], np.float32), W, H)


@pytest.fixture(scope="module")
def models(comfy):
    """The client, with the hostile files and a good tiny model in models/pidm and a photo and a pose
    in input/."""
    server = comfy.server
    folder = server.models_pidm
    official_zip_bomb(folder / "hostile_zip_bomb.pt", zeros_deflated(BOMB_BYTES))
    _safetensors(folder / "hostile_huge_config.safetensors", {"__metadata__": _metadata(num_res_blocks=3000)})
    _safetensors(folder / "hostile_fit.safetensors", {"__metadata__": {**_metadata(), "fit": "banana"}})
    # the pickle that crashed the process before it was checked: a 300,000-deep tuple as a dict key
    write_torch_zip(folder / "hostile_deep_key.pt", HOSTILE_PICKLES["deep_tuple_key"][0])
    save_tiny_model(folder / GOOD_MODEL, "tiny random hostile-model test model")
    (server.dirs["input"] / "hostile_models_pose.json").write_text(json.dumps(pose_keypoint_from_poses([_standing()])))
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(server.dirs["input"] / "hostile_models_photo.png")
    yield comfy


def _graph(model_name: str) -> dict:
    return one_step_sampler_graph(model_name, "hostile_models_photo.png", "hostile_models_pose.json")


@pytest.mark.parametrize(("model_name", "texts"), [
    ("hostile_zip_bomb.pt", ("data/0 is compressed", "zip bomb")),
    ("hostile_huge_config.safetensors", ("invalid network config", "num_res_blocks must be from 1 to 8, got 3000")),
    ("hostile_fit.safetensors", ("fit = 'banana' is not one of",)),
    ("hostile_deep_key.pt", ("nested more than",)),
])
def test_hostile_model_file_is_a_node_error_and_the_server_serves_on(models, model_name, texts):
    client = models
    before = client.memory_kb()
    error = client.node_error(_graph(model_name), "PIDMLoadModel", model_name, *texts)
    assert error["exception_type"].endswith("CheckpointError"), error
    after = client.memory_kb()
    assert after["VmHWM"] - before["VmRSS"] < GROWTH_LIMIT_KB, (before, after)

    good = client.run(_graph(GOOD_MODEL), timeout=180)
    assert good.error is None, f"{good.error}\n{client.server.log_tail()}"
    images = client.output_images(good, "preview")
    assert len(images) == 1 and images[0].size == (W, H)
