"""Matching a checkpoint's tensors to the network: every tensor by name and exact shape, the official
file's unused tensors accepted and reported, anything else refused with the reason."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import torch

from ..config import CONFIGS, PIDMConfig
from ..errors import CheckpointError
from ..network import CrossAttentionBlock, ResBlock


@dataclass
class LoadReport:
    """How a checkpoint's tensors map onto a network.

    ``key_map``: network tensor name → key in the checkpoint (they differ by ``prefix_stripped``).
    ``ignored``: checkpoint keys of official tensors that the forward pass never uses.
    """

    source: str
    key_map: dict[str, str]
    ignored: list[str]
    ignored_parameters: int
    prefix_stripped: str = ""

    @property
    def loaded(self) -> int:
        return len(self.key_map)

    def summary(self) -> str:
        text = f"loaded {self.loaded} tensors"
        if self.ignored:
            text += f"; ignored {len(self.ignored)} unused official tensors ({self.ignored_parameters / 1e6:.2f} M parameters)"
        if self.prefix_stripped:
            text += f"; stripped the {self.prefix_stripped!r} prefix"
        return text


# Official tensors that the forward pass never uses, by the kind of module that owns them here.
_UNUSED_RESBLOCK = re.compile(r"^(?P<owner>.+)\.cond_emb_layers\.\d+\.(weight|bias)$")
_UNUSED_ENCODER_EMB = re.compile(r"^(?P<owner>.+)\.emb_layers\.\d+\.(weight|bias)$")
_UNUSED_ATTENTION = re.compile(r"^(?P<owner>.+)\.(qkv|proj_out1)\.(weight|bias)$")
_UNUSED_ENCODER_TIME = re.compile(r"^encoder\.time_embed\.\d+\.(weight|bias)$")

_STABLE_DIFFUSION_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.embedders.")


def _is_unused_official(name: str, resblocks: set[str], timeless_resblocks: set[str], attention: set[str]) -> bool:
    for pattern, owners in (
        (_UNUSED_RESBLOCK, resblocks),
        (_UNUSED_ENCODER_EMB, timeless_resblocks),
        (_UNUSED_ATTENTION, attention),
    ):
        m = pattern.match(name)
        if m and m.group("owner") in owners:
            return True
    return bool(_UNUSED_ENCODER_TIME.match(name))


def check_foreign(keys, source: str) -> None:
    """Refuse the checkpoints of other model families by their tensor names, saying which they are."""
    keys = list(keys)
    if any(k.startswith(_STABLE_DIFFUSION_PREFIXES) for k in keys):
        raise CheckpointError(
            f"{source} looks like a Stable Diffusion checkpoint, not PIDM (it has tensors such as "
            f"{next(k for k in keys if k.startswith(_STABLE_DIFFUSION_PREFIXES))!r}); load it with "
            "ComfyUI's checkpoint loader instead"
        )
    if any(k.startswith("down_blocks.") for k in keys) and any(k.startswith("mid_block.") for k in keys):
        raise CheckpointError(f"{source} looks like a diffusers UNet, not PIDM")


def first_few(items: list[str], sep: str, n: int = 5) -> str:
    """The first ``n`` items joined for an error message, with how many more there are."""
    return sep.join(items[:n]) + (f"{sep}... and {len(items) - n} more" if len(items) > n else "")


def format_shape(shape) -> str:
    """A shape as errors write it: ``[6, 32, 3, 3]``."""
    return "[" + ", ".join(str(s) for s in shape) + "]"


def match_shapes(network: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]], source: str, hint: str = "") -> LoadReport:
    check_foreign(shapes, source)
    long_names = [k for k in shapes if len(k) > 300]
    if long_names:
        raise CheckpointError(f"{source} has a tensor name of {len(long_names[0])} characters ({long_names[0][:60]!r}...); "
                              "PIDM tensor names are short: the file is damaged or not a PIDM model")
    prefix = "module." if shapes and all(k.startswith("module.") for k in shapes) else ""
    found = {k[len(prefix):]: (k, tuple(s)) for k, s in shapes.items()}
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}

    wrong, missing = [], []  # wrong shapes first: they say more about the file than missing names
    for name, shape in expected.items():
        if name not in found:
            missing.append(f"{name}: expected {format_shape(shape)}, missing")
        elif found[name][1] != shape:
            wrong.append(f"{name}: expected {format_shape(shape)}, found {format_shape(found[name][1])}")
    problems = wrong + missing
    config = getattr(network, "config", None)
    what = f"the {config_label(config)} network" if config is not None else "the network"
    if problems:
        raise CheckpointError(
            f"{source} does not fit {what}: {len(problems)} of its {len(expected)} tensors are missing "
            f"or have another shape: {first_few(problems, '; ')}{hint}"
        )

    modules = dict(network.named_modules())
    resblocks = {n for n, m in modules.items() if isinstance(m, ResBlock)}
    timeless = {n for n in resblocks if not hasattr(modules[n], "emb_layers")}
    attention = {n for n, m in modules.items() if isinstance(m, CrossAttentionBlock)}
    ignored, unknown = [], []
    for name, (key, shape) in found.items():
        if name in expected:
            continue
        (ignored if _is_unused_official(name, resblocks, timeless, attention) else unknown).append(key)
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} tensors that {what} does not have and that are not known "
            f"unused official tensors: {first_few(unknown, ', ')}"
        )
    ignored_parameters = sum(math.prod(shapes[k]) for k in ignored)
    network_parameters = sum(math.prod(shape) for shape in expected.values())
    if ignored_parameters > network_parameters:
        # The official file's unused tensors hold 18 M parameters against the network's 162 M.
        raise CheckpointError(
            f"{source}: its {len(ignored)} unused official tensors declare {ignored_parameters} parameters, more "
            f"than the {network_parameters} of {what} itself; the file is forged or damaged")
    return LoadReport(
        source=source,
        key_map={name: found[name][0] for name in expected},
        ignored=ignored,
        ignored_parameters=ignored_parameters,
        prefix_stripped=prefix,
    )


def config_label(config: PIDMConfig) -> str:
    """The config's name, or its size when it is not a named one."""
    names = [n for n, c in CONFIGS.items() if c == config]
    return names[0] if names else f"{config.image_size}px custom-config"


def match_state_dict(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> LoadReport:
    """Check that ``state_dict`` holds every tensor of ``network`` with its exact shape.

    Keys may carry a ``module.`` (DDP) prefix. Extra tensors are accepted only when they are the
    official checkpoint's unused ones, and are listed in the report; anything else raises
    :class:`CheckpointError`, as do missing tensors and wrong shapes.
    """
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries {bad[:5]} are not tensors (found {type(state_dict[bad[0]]).__name__})")
    return match_shapes(network, {k: tuple(v.shape) for k, v in state_dict.items()}, source)
