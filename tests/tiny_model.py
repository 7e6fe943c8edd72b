"""Tiny random-weight PIDM networks and model files, shared by tests that need a model quickly."""

from pathlib import Path

import torch

from pidm_core.checkpoint import ModelInfo, save_model
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork


def tiny_network(seed: int = 0, every_weight_std: float | None = None, config=None) -> PIDMNetwork:
    """A ``config`` (default tiny_32) network in eval mode, seeded. ``every_weight_std``: every weight drawn
    from N(0, std²); None: the network's own initialisation, with its zero-initialised layers (cross-attention
    outputs, the last conv) drawn from N(0, 0.02²). Either way the output depends on every input."""
    torch.manual_seed(seed)
    network = PIDMNetwork(config or get_config("tiny_32")).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            if every_weight_std is not None:
                parameter.normal_(0, every_weight_std)
            elif not parameter.any():
                parameter.normal_(0, 0.02)
    return network


def save_tiny_model(path: Path, name: str = "tiny random test model") -> Path:
    """tiny_32 with every weight drawn from N(0, 0.05²), saved as our .safetensors at ``path``."""
    network = tiny_network(every_weight_std=0.05)
    info = ModelInfo(name=name, config=network.config, source_drop_prob=0.1, pose_drop_prob=0.1)
    return save_model(path, network, info)
