"""Gaussian diffusion maths for PIDM, as small pure functions.

One :class:`Schedule` holds the β-schedule arrays (float64, computed once); every coefficient is
derived from them. Conventions follow improved-DDPM / guided-diffusion, which the official code
uses: integer timesteps t ∈ [0, T), ε-prediction, learned-range variance, and the hybrid loss
L = MSE(ε) + L_vb (variational bound in bits per dimension, ε frozen inside it). Our own models
may predict v instead of ε; samplers always receive ε (see :func:`eps_from_v`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

NUM_TIMESTEPS = 1000


@dataclass(frozen=True)
class Schedule:
    """β schedule and the quantities derived from it, each a float64 tensor [T] on the CPU (never moved
    to the compute device as float64: see :func:`_at`)."""

    betas: torch.Tensor

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(1.0 - self.betas, dim=0)

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        return torch.cat([self.betas.new_ones(1), self.alphas_cumprod[:-1]])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """Variance β̃_t of q(x_{t-1} | x_t, x_0)."""
        return self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @property
    def posterior_log_variance_clipped(self) -> torch.Tensor:
        """log β̃_t with the t=0 entry (β̃_0 = 0) replaced by β̃_1, as guided-diffusion does."""
        var = self.posterior_variance
        return torch.log(torch.cat([var[1:2], var[1:]]))


def linear_schedule(num_timesteps: int = NUM_TIMESTEPS, beta_start: float = 1e-4, beta_end: float = 2e-2) -> Schedule:
    """The official PIDM schedule: β linear from 1e-4 to 2e-2 over T = 1000 steps."""
    return Schedule(torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64))


def official_timesteps(num_steps: int, num_timesteps: int = NUM_TIMESTEPS) -> list[int]:
    """Respaced timesteps as the official DDIM loop uses them, ascending: range(0, T, T // n)."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"steps must be between 1 and {num_timesteps}, got {num_steps}")
    return list(range(0, num_timesteps, num_timesteps // num_steps))


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Gather values[t] for a batch of integer timesteps, as float32 shaped to broadcast over ``like``.

    The float64 table is cast to float32 on the CPU before it moves: MPS has no float64 at all, and
    casting then gathering gives the same values as gathering then casting.
    """
    out = values.float().to(t.device)[t.long()]
    return out.view(-1, *([1] * (like.dim() - 1)))


def alpha_bar(schedule: Schedule, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """ᾱ_t for integer t ≥ 0, and 1 for t = -1 (the clean image), shaped to broadcast over ``like``."""
    padded = torch.cat([schedule.betas.new_ones(1), schedule.alphas_cumprod])
    return _at(padded, t.long() + 1, like)


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)."""
    a = alpha_bar(schedule, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def predict_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t."""
    a = alpha_bar(schedule, t, x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def predict_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """ε implied by x_t and x̂_0."""
    a = alpha_bar(schedule, t, x_t)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def v_target(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = √ᾱ_t ε − √(1-ᾱ_t) x_0, the velocity target of v-prediction."""
    a = alpha_bar(schedule, t, x0)
    return a.sqrt() * noise - (1 - a).sqrt() * x0


def eps_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """ε implied by a v-prediction: ε = √ᾱ_t v + √(1-ᾱ_t) x_t."""
    a = alpha_bar(schedule, t, x_t)
    return a.sqrt() * v + (1 - a).sqrt() * x_t


def eps_denoiser(denoise: Callable, schedule: Schedule, prediction: str) -> Callable:
    """The samplers take ε; a v-predicting network's (guided) ``denoise(x, t) -> (v, variance)`` is
    converted here. The map is linear in the output for fixed x_t and t, so converting after guidance
    equals guiding ε."""
    if prediction == "eps":
        return denoise

    def denoise_eps(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v, variance = denoise(x, t)
        return eps_from_v(schedule, x, t, v), variance

    return denoise_eps


def posterior_mean(schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean of q(x_{t-1} | x_t, x_0)."""
    abar, abar_prev = schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    coef_x0 = schedule.betas * abar_prev.sqrt() / (1 - abar)
    coef_xt = (1 - abar_prev) * (1 - schedule.betas).sqrt() / (1 - abar)
    return _at(coef_x0, t, x_t) * x0 + _at(coef_xt, t, x_t) * x_t


def learned_log_variance(schedule: Schedule, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Learned-range variance: log σ² = f·log β_t + (1-f)·log β̃_t with f = (v + 1) / 2, v ∈ [-1, 1]."""
    frac = (v + 1) / 2
    max_log = _at(torch.log(schedule.betas), t, v)
    min_log = _at(schedule.posterior_log_variance_clipped, t, v)
    return frac * max_log + (1 - frac) * min_log


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of 8-bit images x ∈ [-1, 1] under a Gaussian discretised to 256 bins (nats)."""
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999,
        log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )


def _mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(1, x.dim())))


def hybrid_loss(
    schedule: Schedule, model_output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
    noise: torch.Tensor, prediction: str = "eps",
) -> dict[str, torch.Tensor]:
    """Improved-DDPM hybrid loss per sample: MSE on the prediction (ε, or v for ``prediction="v"``)
    plus the variational bound (bits/dim) that trains the variance, with the prediction detached
    inside the bound so it does not disturb the mean.

    model_output [B, 6, H, W] = (prediction, variance interpolation). Returns {"mse", "vb", "loss"}, each [B].
    """
    pred, variance = model_output.float().chunk(2, dim=1)
    target = noise if prediction == "eps" else v_target(schedule, x0, t, noise)
    mse = _mean_flat((target - pred) ** 2)
    log_var = learned_log_variance(schedule, variance, t)
    eps = pred.detach() if prediction == "eps" else eps_from_v(schedule, x_t, t, pred.detach())
    x0_pred = predict_x0(schedule, x_t, t, eps)
    model_mean = posterior_mean(schedule, x0_pred, x_t, t)
    true_mean = posterior_mean(schedule, x0, x_t, t)
    true_log_var = _at(schedule.posterior_log_variance_clipped, t, x_t)
    kl = _mean_flat(normal_kl(true_mean, true_log_var, model_mean, log_var)) / math.log(2.0)
    nll = -_mean_flat(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * log_var)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return {"mse": mse, "vb": vb, "loss": mse + vb}


def respace(schedule: Schedule, timesteps: list[int]) -> Schedule:
    """The schedule restricted to ascending ``timesteps``: β'_i = 1 - ᾱ_{t_i} / ᾱ_{t_{i-1}}, so that
    ancestral sampling and learned variances work with fewer steps (guided-diffusion's respacing)."""
    abar = schedule.alphas_cumprod[torch.as_tensor(timesteps, dtype=torch.long)]
    prev = torch.cat([abar.new_ones(1), abar[:-1]])
    return Schedule(1.0 - abar / prev)


def logsnr_timesteps(schedule: Schedule, num_steps: int) -> list[int]:
    """Ascending timesteps evenly spaced in log-SNR λ = ½·log(ᾱ/(1-ᾱ)) from t = T-1 down to 0.

    Multistep solvers (DPM-Solver++) need steps of similar size in λ; the official uniform spacing
    in t puts one huge λ-step at the end and makes the second-order correction overshoot.
    """
    if not 1 <= num_steps <= schedule.num_timesteps:
        raise ValueError(f"steps must be between 1 and {schedule.num_timesteps}, got {num_steps}")
    abar = schedule.alphas_cumprod
    lam = 0.5 * torch.log(abar / (1 - abar))
    targets = torch.linspace(lam[-1].item(), lam[0].item(), num_steps, dtype=torch.float64)
    chosen = torch.argmin((lam[None, :] - targets[:, None]).abs(), dim=1).tolist()
    return sorted(set(chosen))
