"""Diffusion maths, samplers and guidance on analytic denoisers and a tiny network."""


import argparse
import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pidm_core import diffusion, guidance, plan, samplers
from pidm_core.pipeline import generate_from_tensors
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings
from tests.scripts import make_reference_outputs
from tests.tiny_model import tiny_network

SCHEDULE = diffusion.linear_schedule()


def sampling_timesteps(schedule, name, steps):
    return samplers.get_sampler(name).timesteps(schedule, steps)


def test_linear_schedule_matches_official_numbers():
    betas = SCHEDULE.betas
    assert betas.shape == (1000,) and betas.dtype == torch.float64
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(2e-2)
    abar = SCHEDULE.alphas_cumprod
    assert abar[-1].item() == pytest.approx(np.prod(1 - np.linspace(1e-4, 2e-2, 1000)), rel=1e-9)
    # the DDIM lookup pads a leading 1 for t = -1
    x = torch.zeros(1, 1)
    assert diffusion.alpha_bar(SCHEDULE, torch.tensor([-1]), x).item() == 1.0


def test_official_timesteps_and_respacing():
    assert diffusion.official_timesteps(50)[:3] == [0, 20, 40] and len(diffusion.official_timesteps(50)) == 50
    ts = diffusion.official_timesteps(10)
    resp = diffusion.respace(SCHEDULE, ts)
    # the respaced chain reaches the same ᾱ at each kept step
    assert torch.allclose(resp.alphas_cumprod, SCHEDULE.alphas_cumprod[ts])
    with pytest.raises(ValueError, match="steps"):
        diffusion.official_timesteps(0)


def _point_mass_denoiser(target):
    """Exact ε-prediction for data that is always ``target``."""

    def denoise(x, t):
        a = diffusion.alpha_bar(SCHEDULE, t, x)
        return (x - a.sqrt() * target) / (1 - a).sqrt(), torch.zeros_like(x)

    return denoise


def _gaussian_denoiser(mu, s):
    """Exact E[ε | x_t] for data ~ N(mu, s²) (per element)."""

    def denoise(x, t):
        a = diffusion.alpha_bar(SCHEDULE, t, x)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s**2 + 1 - a), torch.zeros_like(x)

    return denoise


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_samplers_recover_a_point_mass(name):
    target = torch.linspace(-0.9, 0.9, 12).view(1, 3, 2, 2).repeat(2, 1, 1, 1)
    noise = samplers.BatchNoise([1, 2])
    x = noise(target)
    ts = diffusion.official_timesteps(20)[::-1]
    out = samplers.get_sampler(name).loop(_point_mass_denoiser(target), x, ts, schedule=SCHEDULE, noise=noise)
    assert (out - target).abs().max() < 1e-3


@pytest.mark.parametrize("name,steps", [("ddim", 100), ("ddpm", 100), ("dpmpp_2m", 20)])
def test_samplers_reproduce_a_gaussian(name, steps):
    mu, s = 0.3, 0.5
    n = 4000
    noise = samplers.BatchNoise([0])
    x = torch.randn(1, n, 1, 1, generator=torch.Generator().manual_seed(0))
    ts = sampling_timesteps(SCHEDULE, name, steps)
    options = {"clip_x0": False} if name == "ddpm" else {}  # this Gaussian has mass beyond ±1
    out = samplers.get_sampler(name).loop(_gaussian_denoiser(mu, s), x, ts, schedule=SCHEDULE, noise=noise, **options)
    assert out.mean().item() == pytest.approx(mu, abs=0.03)
    assert out.std().item() == pytest.approx(s, abs=0.03)


def test_dpmpp_20_steps_as_close_to_the_ode_as_ddim_100():
    mu, s = -0.2, 0.4
    x = torch.randn(1, 256, 1, 1, generator=torch.Generator().manual_seed(3))
    noise = samplers.BatchNoise([0])
    den = _gaussian_denoiser(mu, s)
    exact = samplers.sample_ddim(den, x, list(range(999, -1, -1)), schedule=SCHEDULE, noise=noise)
    ddim_100 = samplers.sample_ddim(den, x, sampling_timesteps(SCHEDULE, "ddim", 100), schedule=SCHEDULE, noise=noise)
    ddim_20 = samplers.sample_ddim(den, x, sampling_timesteps(SCHEDULE, "ddim", 20), schedule=SCHEDULE, noise=noise)
    fast = samplers.sample_dpmpp_2m(den, x, sampling_timesteps(SCHEDULE, "dpmpp_2m", 20), schedule=SCHEDULE, noise=noise)
    err = lambda y: (y - exact).abs().max().item()
    assert err(fast) < err(ddim_100) < err(ddim_20)


def test_callback_and_blend_are_called_every_step():
    seen = []
    target = torch.zeros(1, 3, 2, 2)
    noise = samplers.BatchNoise([0])
    ts = diffusion.official_timesteps(5)[::-1]

    def blend(x, t):
        return x

    samplers.sample_ddim(_point_mass_denoiser(target), noise(target), ts, schedule=SCHEDULE, noise=noise,
                         callback=lambda info: seen.append((info["i"], info["total"], info["t"], info["x0"].shape)), blend=blend)
    assert [s[0] for s in seen] == list(range(5)) and seen[0][1] == 5 and seen[0][2] == ts[0]


def test_callback_can_cancel():
    class Stop(Exception):
        pass

    def cb(info):
        if info["i"] == 1:
            raise Stop

    target = torch.zeros(1, 3, 2, 2)
    noise = samplers.BatchNoise([0])
    with pytest.raises(Stop):
        samplers.sample_dpmpp_2m(_point_mass_denoiser(target), noise(target), [900, 500, 0], schedule=SCHEDULE,
                                 noise=noise, callback=cb)


def test_batch_noise_is_position_independent():
    a = samplers.BatchNoise([5, 7])(torch.empty(2, 3, 4, 4))
    b = samplers.BatchNoise([7])(torch.empty(1, 3, 4, 4))
    assert torch.equal(a[1], b[0])


def test_hybrid_loss_terms():
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 500])
    x_t = diffusion.q_sample(SCHEDULE, x0, t, noise)
    perfect = torch.cat([noise, torch.zeros_like(noise)], 1)
    terms = diffusion.hybrid_loss(SCHEDULE, perfect, x0, x_t, t, noise)
    assert terms["mse"].abs().max() < 1e-10
    assert torch.isfinite(terms["vb"]).all() and (terms["vb"] >= -1e-6).all()
    worse = diffusion.hybrid_loss(SCHEDULE, perfect + 0.5, x0, x_t, t, noise)
    assert (worse["mse"] > terms["mse"]).all()


class FakeNetwork(torch.nn.Module):
    """Output depends on pose and texture in a known way: ε = x + mean(pose) + k·src, v = 0.1·src."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, pose, t, texture, branch_rows=None):
        if branch_rows is not None:
            x, pose = x[branch_rows], pose[branch_rows]
        src = texture["middle_block"][0].mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        eps = x + pose.mean(dim=1, keepdim=True) + 3 * src
        return torch.cat([eps, 0.1 * src.expand_as(x)], 1)


def _tex(value, b=1):
    t = torch.full((b, 1, 4, 2), float(value))
    return {"middle_block": (t, t)}


def test_official_guidance_formula():
    net = FakeNetwork()
    x, pose, t = torch.randn(1, 3, 4, 4), torch.rand(1, 20, 4, 4), torch.tensor([10])
    den = guidance.official_guidance(net, pose, _tex(2.0), _tex(0.0), appearance_scale=2.5)
    eps, v = den(x, t)
    f = lambda p, s: net(x, p, t, _tex(s))
    expected = f(pose, 0.0) + 2.5 * (f(pose, 2.0) - f(pose, 0.0))
    assert torch.allclose(torch.cat([eps, v], 1), expected, atol=1e-6)


def test_disentangled_guidance_formula():
    net = FakeNetwork()
    x, pose, t = torch.randn(1, 3, 4, 4), torch.rand(1, 20, 4, 4), torch.tensor([10])
    zero = torch.zeros_like(pose)
    den = guidance.disentangled_guidance(net, pose, _tex(2.0), _tex(0.0), pose_scale=1.5, appearance_scale=3.0)
    eps, v = den(x, t)
    f = lambda p, s: net(x, p, t, _tex(s))
    expected = f(zero, 0.0) + 1.5 * (f(pose, 0.0) - f(zero, 0.0)) + 3.0 * (f(zero, 2.0) - f(zero, 0.0))
    assert torch.allclose(torch.cat([eps, v], 1), expected, atol=1e-6)


def test_guidance_runs_one_batched_call_per_step():
    calls = []
    net = FakeNetwork()
    original = net.forward
    net.forward = lambda *a, **k: (calls.append((a[0].shape[0], a[3]["middle_block"][0].shape[0])), original(*a, **k))[1]
    x, pose = torch.randn(2, 3, 4, 4), torch.rand(2, 20, 4, 4)
    guidance.official_guidance(net, pose, _tex(1.0, 2), _tex(0.0, 2), 2.0)(x, torch.tensor([5, 5]))
    guidance.disentangled_guidance(net, pose, _tex(1.0, 2), _tex(0.0, 2), 2.0, 2.0)(x, torch.tensor([5, 5]))
    # (distinct inputs, branch rows): official = one pose for both branches; disentangled = two poses
    assert calls == [(2, 4), (4, 6)]


def test_unknown_modes_are_named():
    with pytest.raises(ValueError, match="guidance mode 'cfg'"):
        guidance.build_denoiser("cfg", FakeNetwork(), torch.zeros(1, 20, 4, 4), _tex(0), _tex(0), pose_scale=1, appearance_scale=1)
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        samplers.get_sampler("euler")


def ddim_3_steps(seed: int) -> SamplingSettings:
    return SamplingSettings(steps=3, sampler="ddim", seed=seed, **OFFICIAL_RUN)


@pytest.fixture(scope="module")
def tiny():
    return tiny_network()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shared_prefix_equals_one_input_per_row(tiny, dtype):
    import copy

    net = copy.deepcopy(tiny).to(dtype)
    torch.manual_seed(3)
    x, pose = torch.randn(2, 3, 32, 32, dtype=dtype), torch.rand(2, 20, 32, 32, dtype=dtype)
    t = torch.tensor([7.0, 400.0])
    texture = net.encode_texture(torch.rand(3, 3, 32, 32, dtype=dtype) * 2 - 1)
    rows = torch.tensor([1, 0, 1])
    shared = net(x, pose, t, texture, branch_rows=rows).float()
    separate = net(x[rows], pose[rows], t[rows], texture).float()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert (shared - separate).abs().max() <= tol * separate.abs().max()


def test_seeds_reproducible_and_different(tiny):
    src = torch.rand(1, 3, 32, 32) * 2 - 1
    pose = torch.rand(1, 20, 32, 32)
    a = generate_from_tensors(tiny, src, pose, ddim_3_steps(1))
    b = generate_from_tensors(tiny, src, pose, ddim_3_steps(1))
    c = generate_from_tensors(tiny, src, pose, ddim_3_steps(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_batch_position_does_not_change_result(tiny):
    src = torch.rand(2, 3, 32, 32) * 2 - 1
    pose = torch.rand(2, 20, 32, 32)
    both = generate_from_tensors(tiny, src, pose, ddim_3_steps(4))
    second = generate_from_tensors(tiny, src[1:], pose[1:], ddim_3_steps(4))
    assert (both[1:] - second).abs().max() < 1e-5 * second.abs().max()


def test_bf16_close_to_fp32(tiny):
    import copy

    src = torch.rand(1, 3, 32, 32) * 2 - 1
    pose = torch.rand(1, 20, 32, 32)
    ref = generate_from_tensors(tiny, src, pose, ddim_3_steps(0))
    low = generate_from_tensors(copy.deepcopy(tiny).to(torch.bfloat16), src, pose, ddim_3_steps(0))
    assert low.dtype == torch.float32
    # an untrained net amplifies values (x̂_0 is not clipped), so compare relative to their size
    assert (ref - low).abs().max() < 0.05 * ref.abs().max()


# --- one settings object: the same outputs as the keyword options before it --------------------

def test_outputs_match_the_reference_from_before_the_settings_object():
    reference = load_file(make_reference_outputs.SAMPLING_OUT)
    outputs = make_reference_outputs.sampling_reference()
    assert set(reference) <= set(outputs)  # a new sampler or case adds outputs; none that were there may go
    for key, expected in reference.items():
        assert (outputs[key] - expected).abs().max() <= 1e-5 * expected.abs().max(), key


# --- settings: validation, one home for defaults, choices and help ------------------------------


def test_settings_name_the_bad_option():
    with pytest.raises(ValueError, match="sampler must be one of ddim, ddpm, dpmpp_2m; got 'euler'"):
        SamplingSettings(sampler="euler")
    with pytest.raises(ValueError, match="guidance must be one of official, disentangled; got 'cfg'"):
        SamplingSettings(guidance="cfg")
    with pytest.raises(ValueError, match="steps must be between 1 and 1000, got 0"):
        SamplingSettings(steps=0)
    with pytest.raises(ValueError, match="steps must be a int, got 2.5"):
        SamplingSettings(steps=2.5)
    with pytest.raises(ValueError, match="seed must be a int, got True"):
        SamplingSettings(seed=True)
    with pytest.raises(ValueError, match="denoise must be in \\[0, 1\\], got 1.5"):
        SamplingSettings(denoise=1.5)
    for name in ("appearance_scale", "pose_scale", "eta"):
        with pytest.raises(ValueError, match=f"{name} must be a finite number within ±100, got nan"):
            SamplingSettings(**{name: float("nan")})


def test_every_sampler_record_is_complete():
    fields = {f.name for f in dataclasses.fields(SamplingSettings)}
    for name, record in samplers.SAMPLERS.items():
        assert record.name == name and record.description
        assert set(record.options) <= fields, name
        steps = record.timesteps(SCHEDULE, 10)
        assert steps == sorted(steps, reverse=True) and steps[-1] == 0, name
        assert record.timesteps(SCHEDULE, 10, 0.5) == steps[len(steps) - 5:]
        assert f"{name}: {record.description}" in samplers.setting_help("sampler")
    assert SamplingSettings(sampler="ddim", eta=0.3).sampler_options() == {"eta": 0.3}
    assert SamplingSettings(sampler="ddpm", eta=0.3).sampler_options() == {}


def test_command_line_flags_come_from_the_settings():
    parser = argparse.ArgumentParser()
    samplers.add_settings_arguments(parser, skip=("denoise",))
    assert samplers.settings_from_args(parser.parse_args([])) == SamplingSettings()
    args = parser.parse_args(["--sampler", "ddim", "--steps", "7", "--appearance-scale", "1.5", "--eta", "0.2"])
    assert samplers.settings_from_args(args) == SamplingSettings(sampler="ddim", steps=7, appearance_scale=1.5, eta=0.2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--denoise", "0.5"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--sampler", "euler"])


# --- guidance in a limited interval (issue 26) ----------------------------------------------------
# ddim with 3 steps runs the official spacing range(0, T, T // 3) backwards, 4 steps: t = 999, 666, 333, 0,
# at progress 1 - t/999 = 0, 1/3, 2/3, 1.


def _row_counter(net):
    """Network rows each call runs (branch rows where given, else the batch), recorded in a list."""
    calls = []
    original = net.forward

    def counting(x, pose, t, texture, branch_rows=None):
        calls.append(x.shape[0] if branch_rows is None else len(branch_rows))
        return original(x, pose, t, texture, branch_rows=branch_rows)

    net.forward = counting
    return calls


def test_guidance_progress_and_interval_ends():
    assert guidance.schedule_progress(999) == 0.0 and guidance.schedule_progress(0) == 1.0
    assert all(guidance.guided_at(t) for t in range(1000))  # the default: every step
    assert guidance.guided_at(333, (2 / 3, 1.0)) and not guidance.guided_at(334, (2 / 3, 1.0))
    assert guidance.guided_at(0, (1.0, 1.0)) and not guidance.guided_at(1, (1.0, 1.0))


def test_the_whole_interval_is_the_guided_denoiser_bit_for_bit():
    """0 to 1 guides every step with the guided denoiser itself: the runs from before the interval existed (their
    recorded outputs: the reference tests, which run with OFFICIAL_RUN)."""
    net = FakeNetwork()
    x, pose, t = torch.randn(1, 3, 4, 4), torch.rand(1, 20, 4, 4), torch.tensor([10])
    plain = guidance.official_guidance(net, pose, _tex(2.0), _tex(0.0), appearance_scale=2.5)(x, t)
    built = guidance.build_denoiser("official", net, pose, _tex(2.0), _tex(0.0), pose_scale=2.0, appearance_scale=2.5,
                                    interval=(0.0, 1.0))(x, t)
    assert all(torch.equal(a, b) for a, b in zip(plain, built))


@pytest.mark.parametrize("mode", guidance.GUIDANCE_MODES)
def test_an_interval_holding_no_step_is_conditional_sampling(tiny, mode):
    """Outside the interval the denoiser is f(pose, src) alone: official guidance at appearance scale 1 (for
    disentangled guidance too, whose guided rows never include f(pose, src)). One row per step."""
    torch.manual_seed(6)
    src, pose = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 20, 32, 32)
    unguided = generate_from_tensors(tiny, src, pose, SamplingSettings(steps=3, sampler="ddim", appearance_scale=1.0))
    none = SamplingSettings(steps=3, sampler="ddim", guidance=mode, guidance_start=0.8, guidance_end=0.9)
    assert plan.network_rows(none) == 4 and plan.step_rows(none) == [1, 1, 1, 1]
    calls = _row_counter(tiny)
    try:
        out = generate_from_tensors(tiny, src, pose, none)
    finally:
        del tiny.forward
    assert torch.equal(out, unguided)
    assert calls == [2, 2, 2, 2]  # 2 images × 1 row, every step


@pytest.mark.parametrize("mode,rows", [("official", 2), ("disentangled", 3)])
def test_guided_rows_run_inside_the_interval_only(tiny, mode, rows):
    torch.manual_seed(7)
    src, pose = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 20, 32, 32)
    part = SamplingSettings(steps=3, sampler="ddim", guidance=mode, guidance_start=0.5, guidance_end=1.0)  # the last 2 of 4
    assert plan.step_rows(part) == [1, 1, rows, rows] and plan.network_rows(part) == 2 + 2 * rows
    calls = _row_counter(tiny)
    try:
        out = generate_from_tensors(tiny, src, pose, part)
    finally:
        del tiny.forward
    assert calls == [2 * r for r in plan.step_rows(part)]  # the network ran what the count says
    whole = generate_from_tensors(tiny, src, pose, SamplingSettings(steps=3, sampler="ddim", guidance=mode,
                                                                     **OFFICIAL_RUN))
    assert not torch.equal(out, whole)


def test_interval_denoiser_switches_by_timestep():
    net = FakeNetwork()
    x, pose = torch.randn(2, 3, 4, 4), torch.rand(2, 20, 4, 4)
    den = guidance.build_denoiser("official", net, pose, _tex(2.0, 2), _tex(0.0, 2), pose_scale=2.0,
                                  appearance_scale=2.5, interval=(0.5, 1.0))
    f = lambda s, t: net(x, pose, t, _tex(s, 2))
    guided = lambda t: f(0.0, t) + 2.5 * (f(2.0, t) - f(0.0, t))
    for t, expected in [(10, guided), (900, lambda t: f(2.0, t))]:
        tt = torch.tensor([t, t])
        assert torch.allclose(torch.cat(den(x, tt), 1), expected(tt), atol=1e-6), t
    # rows with differing t (no sampler loop makes them) each get their own side
    mixed = torch.tensor([10, 900])
    out = torch.cat(den(x, mixed), 1)
    assert torch.allclose(out[:1], guided(mixed)[:1], atol=1e-6)
    assert torch.allclose(out[1:], f(2.0, mixed)[1:], atol=1e-6)


def test_network_rows_per_image():
    # the defaults: ddpm, 6 steps = t 996, 830, 664, 498, 332, 166, 0 (every 1000 // 6), guided at 664, 498, 332
    assert plan.step_rows(SamplingSettings()) == [1, 1, 2, 2, 2, 1, 1]
    assert plan.network_rows(SamplingSettings()) == 10
    before = SamplingSettings(steps=50, guidance_start=0.0, guidance_end=1.0)  # the defaults until 2026-12-07
    assert plan.network_rows(before) == 100  # 50 steps × 2 rows
    assert plan.network_rows(dataclasses.replace(before, appearance_scale=1.0)) == 50
    assert plan.network_rows(dataclasses.replace(before, guidance="disentangled")) == 150
    ten = SamplingSettings(steps=10, sampler="ddim", guidance_start=0.0, guidance_end=1.0)
    # t = 900, 800, ..., 0: progress 0.0991, 0.1992, 0.2993 ... 1
    assert plan.run_timesteps(ten) == list(range(900, -1, -100))
    middle = dataclasses.replace(ten, guidance_start=0.3, guidance_end=0.7)
    assert plan.step_rows(middle) == [1, 1, 1, 2, 2, 2, 2, 1, 1, 1]
    assert plan.network_rows(dataclasses.replace(ten, guidance_end=0.5)) == 5 * 2 + 5 * 1
    assert plan.network_rows(dataclasses.replace(ten, guidance_end=0.5, appearance_scale=1.0)) == 10
    # img2img keeps the last half of the steps (progress ≥ 0.5): all inside an interval that starts at 0.5
    half = dataclasses.replace(ten, denoise=0.5, guidance_start=0.5)
    assert plan.step_rows(half, img2img=True) == [2] * 5 and plan.network_rows(half) == 5 * 1 + 5 * 2


def test_plan_sizes_memory_for_the_largest_step(tiny):
    big = 64 << 30
    whole = plan.plan_sampling(tiny, SamplingSettings(steps=4, chunk_size=3, **OFFICIAL_RUN), 1, 3, free_bytes=big)
    part = plan.plan_sampling(tiny, SamplingSettings(steps=4, chunk_size=3, **{**OFFICIAL_RUN, "guidance_start": 0.6}),
                              1, 3, free_bytes=big)
    empty = SamplingSettings(steps=4, chunk_size=3, guidance_start=0.2, guidance_end=0.21,  # t = 750 is at 0.249
                             sequence_denoise=1.0)
    none = plan.plan_sampling(tiny, empty, 1, 3, free_bytes=big)
    assert (whole.guidance_rows, whole.image_rows) == (2, 8)
    assert (part.guidance_rows, part.image_rows) == (2, 1 + 1 + 2 + 2) and part.memory_bytes == whole.memory_bytes
    assert (none.guidance_rows, none.image_rows) == (1, 4) and none.memory_bytes < whole.memory_bytes


def test_guidance_interval_settings_are_checked():
    with pytest.raises(ValueError, match=r"guidance_start \(0.7\) must not be after guidance_end \(0.6\)"):
        SamplingSettings(guidance_start=0.7, guidance_end=0.6)
    with pytest.raises(ValueError, match=r"guidance_end must be in \[0, 1\], got 1.5"):
        SamplingSettings(guidance_end=1.5)
    with pytest.raises(ValueError, match=r"guidance_start must be in \[0, 1\], got -0.1"):
        SamplingSettings(guidance_start=-0.1)
    with pytest.raises(ValueError, match=r"guidance_start must be in \[0, 1\], got nan"):
        SamplingSettings(guidance_start=float("nan"))
    with pytest.raises(ValueError, match="guidance_end must be a float, got '1'"):
        SamplingSettings(guidance_end="1")
    assert SamplingSettings(guidance_start=0.4, guidance_end=0.4).guidance_interval == (0.4, 0.4)
    parser = argparse.ArgumentParser()
    samplers.add_settings_arguments(parser)
    args = parser.parse_args(["--guidance-start", "0.2", "--guidance-end", "0.8"])
    assert samplers.settings_from_args(args).guidance_interval == (0.2, 0.8)
