"""Samplers: plain loops over a ``denoise(x, t) -> (eps, v)`` callable.

Every sampler has the same shape::

    sample_<name>(denoise, x, timesteps, *, schedule, noise, callback=None, blend=None, **options)

``x`` is the starting sample at ``timesteps[0]``; ``timesteps`` are descending integer timesteps of
the full T = 1000 schedule (``official_timesteps(n)[::-1]``, or a tail of it for img2img). ``noise``
draws fresh Gaussian noise (see :class:`BatchNoise`). After each step the sampler calls
``callback({"i", "total", "t", "x", "x0"})`` (progress, previews, cancellation by raising) and, if
given, ``blend(x, t)`` (appearance masking). Guidance lives in ``denoise``, never here.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from . import diffusion
from .diffusion import Schedule

Denoise = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Callback = Optional[Callable[[dict], None]]
Blend = Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]


class BatchNoise:
    """Gaussian noise drawn per batch item from its own seeded generator, so that an item's
    result does not depend on its position in the batch or on the batch size."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu"):
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        self.device = device

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(self.generators):
            raise ValueError(f"noise for a batch of {like.shape[0]} requested from {len(self.generators)} seeds")
        draws = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(draws).to(device=like.device, dtype=like.dtype)


def _t_batch(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)


def _after_step(x, x0, i, t, total, callback, blend):
    if blend is not None:
        x = blend(x, t)
    if callback is not None:
        callback({"i": i, "total": total, "t": int(t[0]), "x": x, "x0": x0})
    return x


@torch.no_grad()
def sample_ddim(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                blend: Blend = None, eta: float = 0.0, clip_x0: bool = False):
    """DDIM (Song et al. 2021) as the official PIDM loop runs it (``clip_x0=False``: x̂_0 is not clipped), and
    x_{t'} = √ᾱ_{t'} x̂_0 + c1·z + c2·ε with c1 = η·√((1-ᾱ_t/ᾱ_{t'})(1-ᾱ_{t'})/(1-ᾱ_t)), c2 = √(1-ᾱ_{t'}-c1²)."""
    total = len(timesteps)
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        t_next = _t_batch(timesteps[i + 1] if i + 1 < total else -1, x)
        eps, _ = denoise(x, t)
        a, a_next = diffusion.alpha_bar(schedule, t, x), diffusion.alpha_bar(schedule, t_next, x)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        if clip_x0:
            # keep ε consistent with the clipped x̂_0 so the update stays on the clipped trajectory
            x0 = x0.clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        c1 = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
        c2 = ((1 - a_next) - c1**2).clamp(min=0).sqrt()
        x = a_next.sqrt() * x0 + c2 * eps
        if eta > 0:
            x = x + c1 * noise(x)
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


@torch.no_grad()
def sample_ddpm(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                blend: Blend = None, clip_x0: bool = True):
    """Ancestral sampling with the learned-range variance, on the schedule respaced to ``timesteps``
    (all 1000 steps reproduce the official ``p_sample_loop``, which clips x̂_0 to [-1, 1])."""
    ascending = sorted(timesteps)
    if ascending[0] != 0 or ascending != list(reversed(timesteps)):
        raise ValueError("ddpm needs descending timesteps that end at 0")
    respaced = diffusion.respace(schedule, ascending)
    total = len(timesteps)
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        idx = _t_batch(total - 1 - i, x)  # position in the respaced schedule
        eps, v = denoise(x, t)
        x0 = diffusion.predict_x0(respaced, x, idx, eps)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        mean = diffusion.posterior_mean(respaced, x0, x, idx)
        if i + 1 < total:
            log_var = diffusion.learned_log_variance(respaced, v.float(), idx)
            x = mean + torch.exp(0.5 * log_var).to(x.dtype) * noise(x)
        else:
            x = mean
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                    blend: Blend = None):
    """DPM-Solver++(2M) (Lu et al. 2022), multistep second order in x̂_0, deterministic. The last
    step lands on the clean image (σ = 0), where the update reduces to x = x̂_0."""
    total = len(timesteps)
    x0_prev, h_prev = None, None
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        eps, _ = denoise(x, t)
        a = diffusion.alpha_bar(schedule, t, x)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        if i + 1 == total:
            x = x0
        else:
            a_next = diffusion.alpha_bar(schedule, _t_batch(timesteps[i + 1], x), x)
            lam, lam_next = 0.5 * torch.log(a / (1 - a)), 0.5 * torch.log(a_next / (1 - a_next))
            h = lam_next - lam
            if x0_prev is None:
                d = x0
            else:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = ((1 - a_next) / (1 - a)).sqrt() * x - a_next.sqrt() * torch.expm1(-h) * d
            x0_prev, h_prev = x0, h
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


SAMPLERS = {"ddim": sample_ddim, "ddpm": sample_ddpm, "dpmpp_2m": sample_dpmpp_2m}


def get_sampler(name: str):
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None
