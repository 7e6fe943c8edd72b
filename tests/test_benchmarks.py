"""The benchmark scripts: the official-algorithm baseline equals our fp32 path, and each script runs
end to end with its tiniest settings (tiny_32, one repeat, one or two steps)."""

import copy
import dataclasses
import math

import pytest
import torch

from benchmarks import bench_memory, bench_sampler, common
from benchmarks import official_baseline as off
from pidm_core import checkpoint, guidance, pipeline, samplers
from pidm_core.config import get_config
from pidm_core.network import PIDMNetwork, repeat_texture

S = 32


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks gain nothing from more threads, and spinning OpenMP workers make these tests
    # crawl on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    network = common.random_network("tiny_32", seed=3)
    source = common.smooth_source(S, 2, seed=1)
    pose = common.pose_batch(S, 2)
    x, t = common.step_inputs(S, 2)
    t = torch.tensor([999, 420])
    return network, source, pose, x, t


def test_random_weights_reach_every_path(tiny):
    network, source, pose, x, t = tiny
    # no zero-initialised layer is left, so the texture changes the output
    assert all(m.weight.any() for m in network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv1d)))
    feats = off.encoder_features(network, source)
    null = off.encoder_features(network, torch.zeros_like(source))
    diff = (off.official_forward(network, x, pose, t, feats) - off.official_forward(network, x, pose, t, null)).abs().max()
    assert diff > 1e-2


def test_baseline_equals_ours_in_fp32(tiny):
    network, source, pose, x, t = tiny
    feats = off.encoder_features(network, source)
    null_feats = off.encoder_features(network, torch.zeros_like(source))
    baseline = off.official_guided(network, x, pose, t, feats, null_feats)

    texture, null = pipeline.encode_texture_pair(network, source)
    with torch.no_grad():
        eps, v = guidance.official_guidance(network, pose, texture, repeat_texture(null, 2), 2.0)(x, t)
    assert (torch.cat([eps, v], 1) - baseline).abs().max() < 1e-4

    # each optimisation alone keeps the fp32 result
    kv, null_kv = off.project_all_kv(network, feats), off.project_all_kv(network, null_feats)
    variants = {
        "kv": off.official_guided(network, x, pose, t, None, None, kv=kv, null_kv=null_kv),
        "sdpa": off.official_guided(network, x, pose, t, feats, null_feats, sdpa=True),
        "batched": off.batched_guided(network, x, pose, t, off.concat_features(feats, null_feats)),
    }
    for name, out in variants.items():
        assert (out - baseline).abs().max() < 1e-4, name


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_baseline_ddim_equals_our_ddim(tiny, prediction):
    network, source, pose, _, _ = tiny
    network = copy.copy(network)
    network.config = dataclasses.replace(network.config, prediction=prediction)
    x_T = bench_sampler._x_T((2, 3, S, S), 5, "cpu")
    ours = pipeline.generate_from_tensors(network, source, pose, samplers.SamplingSettings(steps=2, sampler="ddim", seed=5,
                                                                                          **samplers.OFFICIAL_RUN))
    baseline = off.official_ddim_sample(network, source, pose, x_T, steps=2)
    assert (ours - baseline).abs().max() < 1e-4


def test_legacy_attention_is_the_official_formula():
    g = torch.Generator().manual_seed(0)
    q, kv = torch.randn(2, 8, 5, generator=g), torch.randn(2, 16, 5, generator=g)
    k, v = kv.chunk(2, dim=1)
    weight = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(8), dim=-1)
    expected = torch.einsum("bts,bcs->bct", weight, v)
    assert torch.allclose(off.legacy_qkv_attention(torch.cat([q, kv], 1), 1), expected, atol=1e-6)


def test_unused_official_tensors_are_the_official_files():
    # The official deepfashion_256 state dict: 852 tensors, 180,355,718 parameters (counted from
    # ankanbhunia/PIDM's BeatGANsAutoencModel); the loader must accept and drop exactly these extras.
    with torch.device("meta"):
        network = PIDMNetwork(get_config("deepfashion_256"))
    unused = off.official_unused_tensors(network)
    assert len(unused) == 184 and len(network.state_dict()) + len(unused) == 852
    assert common.parameter_count(network) + sum(math.prod(s) for s in unused.values()) == 180_355_718
    official = {**network.state_dict(), **{k: torch.empty(s, device="meta") for k, s in unused.items()}}
    assert len(checkpoint.match_state_dict(network, official, "official").ignored) == 184


def test_bench_sampler_runs(tmp_path, capsys):
    model = common.write_random_checkpoint(tmp_path / "tiny.safetensors", common.random_network("tiny_32"), torch.float32)
    results = bench_sampler.main([
        "--config", "tiny_32", "--threads", "1", "--repeats", "1", "--steps", "2", "--baseline-steps", "2", "--batches", "1,2",
        "--matmul-size", "64", "--e2e-model", str(model), "--tmpdir", str(tmp_path), "--json", str(tmp_path / "out.json"),
    ])
    out = capsys.readouterr().out
    for heading in ("Matmul peak", "Per guided step", "Loading a model", "One image end to end", "ESTIMATE", "Batches of poses"):
        assert heading in out
    rows = {row["key"]: row for row in results["table"]}
    assert rows["ours_fp32"]["max_abs_drift_eps"] <= 1e-4
    assert all(row["median_s"] > 0 for row in rows.values())
    assert [r["batch"] for r in results["batch"]] == [1, 2]
    assert next(r for r in results["e2e_embedded"] if r["run"].startswith("ours DDIM"))["max_abs_diff"] < 1e-4
    assert (tmp_path / "out.json").is_file()


def test_bench_memory_runs(tmp_path, capsys):
    results = bench_memory.main(["--config", "tiny_32", "--settings", "ours_bf16,baseline_fp32", "--threads", "1",
                                 "--tmpdir", str(tmp_path)])
    assert [r["setting"] for r in results] == ["ours_bf16", "baseline_fp32"]
    assert all(r["finite"] and r["peak_rss_mib"] >= r["rss_load_mib"] > 0 for r in results)
    assert results[0]["weights_dtype"] == "bf16"
    assert "Peak memory" in capsys.readouterr().out
