"""PIDM (Bhunia et al., CVPR 2023) in plain PyTorch: network, diffusion, sampling, checkpoints.

This package never imports ComfyUI. The names below are imported lazily, so ``import pidm_core``
itself loads nothing heavy.
"""

__all__ = ["load_model", "PIDMModel", "ModelInfo"]


def __getattr__(name: str):
    if name in __all__:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'pidm_core' has no attribute {name!r}")
