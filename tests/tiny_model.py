"""A tiny random-weight PIDM model file, shared by tests that need a loadable model quickly."""

from pathlib import Path

import torch

from pidm_core.checkpoint import ModelInfo, save_model
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork


def save_tiny_model(path: Path, name: str = "tiny random test model") -> Path:
    """tiny_32 with every weight drawn from N(0, 0.05²) (zero-initialised layers too, so outputs
    depend on every input), saved as our .safetensors at ``path``."""
    torch.manual_seed(0)
    network = PIDMNetwork(get_config("tiny_32")).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.05)
    info = ModelInfo(name=name, config=network.config, source_drop_prob=0.1, pose_drop_prob=0.1)
    return save_model(path, network, info)
