"""Evaluation: metric helpers against hand-computed values, the evaluator on the tiny DeepFashion
fixture with a random tiny_32 network, rank sharding, and a 2-process torchrun run."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from pidm_core.checkpoint import ModelInfo, save_model
from pidm_core.data.deepfashion import DeepFashionPairs
from pidm_core.cli.evaluate import main
from pidm_core.evaluation import evaluate, shard_indices
from pidm_core.metrics import psnr_score, ssim_score, ssim_window
from pidm_core.samplers import SamplingSettings
from tests.tiny_model import tiny_network

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "deepfashion_tiny"


@pytest.fixture(autouse=True)
def single_thread():
    """One torch thread, as each torchrun worker below runs: faster on a busy machine, and CPU
    kernels may sum in another order with another thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def noisy_image(seed: int, height: int = 96, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 40, height)[:, None, None]
    return np.clip(smooth + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# metrics


def test_identical_images():
    image = noisy_image(0)
    assert ssim_score(image, image) == pytest.approx(1.0, abs=1e-6)
    assert psnr_score(image, image) == 100.0  # capped
    assert psnr_score(image, image, max_db=None) == math.inf


def test_psnr_of_a_constant_offset():
    truth = noisy_image(1) // 2  # values <= 127, so +9 never saturates
    prediction = truth + np.uint8(9)
    assert psnr_score(prediction, truth) == pytest.approx(20 * math.log10(255 / 9), rel=1e-12)


def test_ssim_is_the_official_protocol():
    truth, prediction = noisy_image(2), noisy_image(3)
    # compare_ssim(gt / 255, pred / 255, data_range=1, win_size=51, multichannel=True) in the official script
    expected = structural_similarity(truth.astype(np.float32) / 255.0, prediction.astype(np.float32) / 255.0,
                                     data_range=1, win_size=51, channel_axis=-1, gaussian_weights=False,
                                     use_sample_covariance=True, K1=0.01, K2=0.03)
    assert ssim_score(prediction, truth) == pytest.approx(float(expected), abs=1e-7)
    # uniform window: averaging per-channel SSIMs gives the same number
    per_channel = [structural_similarity(truth[..., c] / 255.0, prediction[..., c] / 255.0, data_range=1, win_size=51)
                   for c in range(3)]
    assert ssim_score(prediction, truth) == pytest.approx(np.mean(per_channel), abs=1e-5)
    assert 0 < ssim_score(prediction, truth) < 1


def test_small_images_use_the_largest_window_that_fits():
    assert ssim_window(256, 176) == 51 and ssim_window(32, 32) == 31 and ssim_window(64, 50) == 49
    a, b = noisy_image(4, 32, 32), noisy_image(5, 32, 32)
    expected = structural_similarity(b.astype(np.float32) / 255, a.astype(np.float32) / 255, data_range=1,
                                     win_size=31, channel_axis=-1)
    assert ssim_score(a, b) == pytest.approx(float(expected), abs=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        ssim_score(a.astype(np.float32), b)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_shards_cover_every_pair_once_in_whole_batches(world, batch_size):
    single_batches = lambda count: [list(range(s, min(s + batch_size, count))) for s in range(0, count, batch_size)]
    for count in range(0, 12):
        shards = [shard_indices(count, rank, world, batch_size) for rank in range(world)]
        assert sorted(i for shard in shards for i in shard) == list(range(count))
        # each rank runs exactly some of the batches a single process would run
        batches = [shard[s:s + batch_size] for shard in shards for s in range(0, len(shard), batch_size)]
        assert sorted(batches) == single_batches(count)
        assert max(map(len, shards)) - min(map(len, shards)) <= batch_size
    assert shard_indices(5, 1, 2) == [1, 3]
    with pytest.raises(ValueError):
        shard_indices(4, 2, 2)


# ---------------------------------------------------------------------------------------------
# evaluator


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    network = tiny_network()
    save_model(path, network, ModelInfo(name="tiny-random", config=network.config, source_drop_prob=0.1,
                                        pose_drop_prob=0.1))
    return path


def test_evaluate_fixture_with_baselines_and_grid(tmp_path):
    pairs = DeepFashionPairs(FIXTURE, split="test", size=32)
    grid = tmp_path / "grid.png"
    result = evaluate(tiny_network(), pairs, SamplingSettings(steps=2, sampler="ddim"), count=2, batch_size=2,
                      baselines=True, grid_path=grid, log=lambda _: None)
    assert result["count"] == 2 and [r["index"] for r in result["per_pair"]] == [0, 1]
    for summary in (result["metrics"], *result["baselines"].values()):
        assert math.isfinite(summary["ssim"]) and math.isfinite(summary["psnr"])
        for name in ("lpips", "fid"):  # null exactly when skipped, with the reason
            assert (summary[name] is None) == (name in result["skipped"])
    assert result["protocol"]["ssim"]["win_size"] == 51  # metrics in the 176x256 frame
    # copy_source scores the stored source photo against the stored target photo
    source, _, truth, _ = pairs.native_pair(1)
    copy = result["per_pair"][1]["baselines"]["copy_source"]
    assert copy["ssim"] == pytest.approx(ssim_score(source, truth))
    assert copy["psnr"] == pytest.approx(psnr_score(source, truth))
    # the null texture gives another image than the source's texture
    assert result["baselines"]["pose_only"]["ssim"] != result["metrics"]["ssim"]
    assert Image.open(grid).size == (4 * 176, 2 * 256)


def test_cli_writes_json_synthetic(tmp_path, tiny_model_file):
    pytest.importorskip("pidm_core.data.synthetic")
    out = tmp_path / "results.json"
    main(["--model", str(tiny_model_file), "--data", "synthetic", "--count", "2", "--steps", "1",
          "--batch-size", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["count"] == 2 and result["model_name"] == "tiny-random"
    assert result["protocol"]["ssim"]["win_size"] == 31  # 32x32 canvas: the window shrinks to fit
    assert math.isfinite(result["metrics"]["ssim"]) and math.isfinite(result["metrics"]["psnr"])
    if result["metrics"]["lpips"] is None:
        assert "LPIPS skipped" in result["skipped"]["lpips"]


def _torchrun() -> list[str] | None:
    local = Path(sys.executable).with_name("torchrun")
    if local.is_file():
        return [str(local)]
    found = shutil.which("torchrun")
    return [found] if found else None


def test_two_processes_match_one(tmp_path, tiny_model_file):
    torchrun = _torchrun()
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    args = ["--model", str(tiny_model_file), "--data", f"deepfashion:{FIXTURE}", "--count", "3", "--steps", "2",
            "--batch-size", "2", "--baselines", "--device", "cpu"]
    single = main(args + ["--out", str(tmp_path / "one.json")])  # one thread (fixture), like each worker
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = torchrun + ["--standalone", "--nproc_per_node", "2", "-m", "pidm_core.evaluate", *args,
                          "--out", str(tmp_path / "two.json")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    double = json.loads((tmp_path / "two.json").read_text())
    assert double["settings"]["world_size"] == 2 and double["count"] == 3
    assert [r["index"] for r in double["per_pair"]] == [0, 1, 2]
    for one, two in zip(single["per_pair"], double["per_pair"]):
        for key in ("ssim", "psnr"):
            assert two[key] == one[key]
            for name in ("copy_source", "pose_only"):
                assert two["baselines"][name][key] == one["baselines"][name][key]
    for key in ("ssim", "psnr"):
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], rel=1e-12)
