"""The trainer: loss goes down, a resumed run is the same run, DDP on CPU works, v-prediction."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pidm_core import diffusion
from pidm_core.checkpoint import load_model
from pidm_core.config import PIDMConfig, get_config
from pidm_core.network import PIDMNetwork
from pidm_core.training import TrainingModule, TrainOptions, load_training_state, make_dataset, train, training_loss

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = diffusion.linear_schedule()


def _options(out: Path, **changes) -> TrainOptions:
    base = dict(config="tiny_32", data="synthetic", out=str(out), steps=4, batch_size=2, lr=1e-3, warmup=1,
                ema_start=1, ema_decay=0.9, save_every=1, sample_every=0, workers=0, threads=1)
    return TrainOptions(**{**base, **changes})


def _fixed_batch(size: int = 32, count: int = 4) -> dict:
    data = make_dataset("synthetic", size, _options(Path(".")))
    items = [data[i] for i in range(count)]
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_a_few_steps_decrease_the_loss_on_a_fixed_batch(prediction):
    torch.manual_seed(0)
    config = dataclasses.replace(get_config("tiny_32"), prediction=prediction)
    module = TrainingModule(PIDMNetwork(config))
    optimizer = torch.optim.Adam(module.parameters(), lr=2e-3)
    batch = _fixed_batch()
    opts = _options(Path("."), source_drop=0.0, pose_drop=0.0)

    def loss() -> torch.Tensor:
        # the same timesteps and noise every time, so only the weights change the loss
        return training_loss(module, SCHEDULE, batch, opts, torch.Generator().manual_seed(1), torch.device("cpu"),
                             prediction)["loss"]

    first = loss().item()
    for _ in range(25):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.7 * first


def test_resume_continues_the_same_run(tmp_path):
    straight = train(_options(tmp_path / "straight"))
    train(_options(tmp_path / "split", steps=2))  # killed after 2 steps, as far as the files know
    resumed = train(_options(tmp_path / "split"))
    assert straight["step"] == resumed["step"] == 4
    a = load_training_state(tmp_path / "straight" / "last.pt")
    b = load_training_state(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == 4
    for part in ("model", "ema"):
        for name in a[part]:
            assert torch.allclose(a[part][name], b[part][name], atol=1e-6), f"{part}.{name} differs after resume"
    moments_a, moments_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert moments_a.keys() == moments_b.keys()
    for key in moments_a:
        assert torch.allclose(moments_a[key]["exp_avg_sq"], moments_b[key]["exp_avg_sq"], atol=1e-9)
        assert float(moments_a[key]["step"]) == float(moments_b[key]["step"]) == 4
    losses = [h["loss"] for h in json.loads(b["history"])]
    assert losses == [h["loss"] for h in json.loads(a["history"])]
    # the EMA lags the weights (decay 0.9 from step 1), so it is really tracked, not copied
    assert any(not torch.equal(b["ema"][n], b["model"][n].float()) for n in b["model"])


def test_two_process_ddp_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pidm_core.train", "--config", "tiny_32", "--data", "synthetic", "--out", str(out),
           "--steps", "2", "--batch-size", "2", "--workers", "0", "--sample-every", "0", "--threads", "1"]
    # own session, so a hung rank can be killed together with its launcher
    launcher = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        stdout, stderr = launcher.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        stdout, stderr = launcher.communicate()
        pytest.fail(f"2-process DDP run did not finish in 240 s (hung collective?):\n{stderr[-3000:]}")
    assert launcher.returncode == 0, stderr[-3000:]
    state = load_training_state(out / "last.pt")
    assert state["step"] == 2 and len(state["generator"]) == 2  # one RNG state per rank
    summaries = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["step"] == 2  # rank 0 alone prints


def test_v_prediction_run_exports_a_v_model(tmp_path):
    export = tmp_path / "v.safetensors"
    train(_options(tmp_path / "run", steps=2, prediction="v", export=str(export)))
    model = load_model(export)
    assert model.info.config.prediction == "v"
    assert model.network.config.prediction == "v"


def test_high_noise_weight_is_refused_for_v_prediction(tmp_path):
    with pytest.raises(ValueError, match="high-noise-weight"):
        train(_options(tmp_path / "run", prediction="v", high_noise_weight=20.0))


def test_fine_tune_from_a_training_state_and_from_safetensors(tmp_path):
    """--init takes our own last.pt (read as this run's config) and our .safetensors (its own config)."""
    train(_options(tmp_path / "first", steps=1, export=str(tmp_path / "first.safetensors")))
    for init in (tmp_path / "first" / "last.pt", tmp_path / "first.safetensors"):
        out = tmp_path / f"from_{init.suffix[1:]}"
        export = out.with_suffix(".safetensors")
        result = train(_options(out, steps=1, init=str(init), prediction="v", export=str(export)))
        assert result["step"] == 1
        training = json.loads(load_model(export).info.extra["training"])
        assert training["init"] == init.name and training["prediction"] == "v"
        if init.suffix == ".pt":
            assert training["init_steps"] == 1
        else:
            assert training["init_training"]["steps"] == 1


def test_v_conversions_invert_q_sample():
    torch.manual_seed(0)
    x0, noise = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 300, 700, 999])
    x_t = diffusion.q_sample(SCHEDULE, x0, t, noise)
    v = diffusion.v_target(SCHEDULE, x0, t, noise)
    eps = diffusion.eps_from_v(SCHEDULE, x_t, t, v)
    assert torch.allclose(eps, noise, atol=1e-5)
    assert torch.allclose(diffusion.predict_x0(SCHEDULE, x_t, t, eps), x0, atol=1e-3)
    # at t = T-1 v is almost −x_0: the prediction must carry the image, not the noise
    assert torch.allclose(v[3], -x0[3], atol=0.05)


def test_hybrid_loss_with_v_prediction():
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([3, 900])
    x_t = diffusion.q_sample(SCHEDULE, x0, t, noise)
    perfect = torch.cat([diffusion.v_target(SCHEDULE, x0, t, noise), torch.zeros_like(x0)], 1)
    terms = diffusion.hybrid_loss(SCHEDULE, perfect, x0, x_t, t, noise, prediction="v")
    assert terms["mse"].abs().max() < 1e-10
    # the bound sees the same mean as an ε-model with the matching perfect ε
    as_eps = diffusion.hybrid_loss(SCHEDULE, torch.cat([noise, torch.zeros_like(x0)], 1), x0, x_t, t, noise)
    assert torch.allclose(terms["vb"], as_eps["vb"], rtol=1e-3, atol=1e-5)


def test_prediction_is_validated_and_defaults_to_eps_for_old_files():
    with pytest.raises(ValueError, match="prediction must be one of"):
        PIDMConfig(prediction="x0")
    old = json.loads(get_config("tiny_32").to_json())
    del old["prediction"]
    assert PIDMConfig.from_json(json.dumps(old)).prediction == "eps"


def test_fine_tune_starts_from_the_official_checkpoints_ema(tmp_path):
    from test_checkpoint import _official_dict  # an official-format last.pt: model, ema, optimizer, pickled conf

    torch.manual_seed(0)
    config = get_config("tiny_32")
    ema_net = PIDMNetwork(config)
    with torch.no_grad():
        for p in ema_net.parameters():
            p.normal_(0, 0.05)
    official = tmp_path / "last.pt"
    torch.save(_official_dict(PIDMNetwork(config), ema_net), official)
    train(_options(tmp_path / "ft", steps=1, lr=0.0, init=str(official)))  # lr 0: weights stay as loaded
    state = load_training_state(tmp_path / "ft" / "last.pt")
    for name, value in ema_net.state_dict().items():
        assert torch.equal(state["model"][name], value), name
    assert json.loads(state["init_record"]) == {"init": "last.pt"}


def test_the_embedded_model_script_chains_valid_stages(tmp_path):
    """scripts/train_embedded.sh, with a python that records its arguments instead of training: every
    stage parses as trainer options, the ε and the v stages each continue one run, and the last exports."""
    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    log = tmp_path / "calls.jsonl"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    env = {**os.environ, "PIDM_VENV": str(tmp_path / "venv"), "OUT": str(tmp_path / "out"),
           "EXPORT": str(tmp_path / "model.safetensors")}
    subprocess.run(["bash", str(ROOT / "scripts" / "train_embedded.sh")], env=env, check=True, timeout=60)
    from pidm_core.cli.train import parse_options

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(call[:2] == ["-m", "pidm_core.train"] for call in calls)
    stages = [parse_options(call[2:]) for call in calls]
    eps = [s for s in stages if s.prediction == "eps"]
    v = [s for s in stages if s.prediction == "v"]
    assert stages == eps + v and len(eps) == 5 and len(v) == 2
    for run, out in ((eps, "eps"), (v, "v")):  # each stage resumes the one before it
        assert {s.out for s in run} == {str(tmp_path / "out" / out)}
        assert [s.steps for s in run] == sorted(s.steps for s in run)
    assert eps[-1].steps == 11500 and all(s.config == "synthetic_64" for s in stages)
    assert all(s.init == str(tmp_path / "out" / "eps" / "last.pt") for s in v)
    assert [s.export for s in v] == ["", str(tmp_path / "model.safetensors")] and v[-1].name == "pidm_synthetic_64"
    # the shipped file's own record agrees with the script
    training = json.loads(load_model("embedded").info.extra["training"])
    assert training["steps"] == v[-1].steps and training["init_steps"] == eps[-1].steps and training["lr"] == v[-1].lr
