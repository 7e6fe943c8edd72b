"""Checkpoint reading and writing: our safetensors format, the official torch pickle, the converter."""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pidm_core import checkpoint, torch_pickle
from pidm_core.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    ModelInfo,
    load_model,
    match_state_dict,
    safe_torch_load,
    save_model,
)
from pidm_core.config import PIDMConfig, get_config
from pidm_core.network import CrossAttentionBlock, PIDMNetwork, ResBlock
from tests.tiny_model import tiny_network
from pidm_core.torch_pickle import PickleStub

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = get_config("tiny_32")


# ---------------------------------------------------------------------------------------------
# Helpers and module-level classes (pickle needs them importable)


class TrainingConf:
    """Stands in for the official pickled ``conf`` object."""

    def __init__(self):
        self.batch_size = 8
        self.lr = 2e-5
        self.name = "deepfashion"


def _write_marker(path):
    Path(path).write_text("code from the checkpoint ran")


class FunctionPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_write_marker, (self.marker,))


class SystemPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('x')",))


def _random_network(config=TINY, seed=0) -> PIDMNetwork:
    return tiny_network(seed, every_weight_std=0.05, config=config)


def _unused_official_tensors(net: PIDMNetwork) -> dict[str, torch.Tensor]:
    """Fabricated tensors named like the official checkpoint's unused ones, for this network."""
    g = torch.Generator().manual_seed(1)
    extra = {}
    for name, module in net.named_modules():
        if isinstance(module, ResBlock):
            ch = module.out_layers[0].num_channels
            extra[f"{name}.cond_emb_layers.1.weight"] = torch.randn(ch, 8, generator=g)
            extra[f"{name}.cond_emb_layers.1.bias"] = torch.randn(ch, generator=g)
            if not hasattr(module, "emb_layers"):
                extra[f"{name}.emb_layers.1.weight"] = torch.randn(2 * ch, 8, generator=g)
                extra[f"{name}.emb_layers.1.bias"] = torch.randn(2 * ch, generator=g)
        if isinstance(module, CrossAttentionBlock):
            ch = module.to_q.in_channels
            extra[f"{name}.qkv.weight"] = torch.randn(3 * ch, ch, 1, generator=g)
            extra[f"{name}.qkv.bias"] = torch.randn(3 * ch, generator=g)
            extra[f"{name}.proj_out1.weight"] = torch.randn(ch, ch, 1, generator=g)
            extra[f"{name}.proj_out1.bias"] = torch.randn(ch, generator=g)
    for i in (0, 2):
        extra[f"encoder.time_embed.{i}.weight"] = torch.randn(8, 8, generator=g)
        extra[f"encoder.time_embed.{i}.bias"] = torch.randn(8, generator=g)
    return extra


def _official_dict(model_net, ema_net, conf=None, prefix="") -> dict:
    unused = _unused_official_tensors(ema_net)
    model_sd = OrderedDict((prefix + k, v.clone()) for k, v in {**model_net.state_dict(), **unused}.items())
    ema_sd = OrderedDict((prefix + k, v.clone()) for k, v in {**ema_net.state_dict(), **unused}.items())
    first = next(iter(model_net.parameters()))
    return {
        "model": model_sd,
        "ema": ema_sd,
        "scheduler": {"base_lrs": [2e-5], "last_epoch": 12, "_step_count": 13},
        "optimizer": {"state": {0: {"step": torch.tensor(12.0), "exp_avg": torch.zeros_like(first)}},
                      "param_groups": [{"lr": 2e-5, "betas": (0.9, 0.999), "params": [0]}]},
        "conf": TrainingConf() if conf is None else conf,
    }


def _outputs(net: PIDMNetwork) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    size = net.config.image_size
    x_t = torch.randn(2, 3, size, size, generator=g)
    pose = torch.rand(2, 20, size, size, generator=g)
    source = torch.randn(2, 3, size, size, generator=g)
    x_t, pose, source = (x.to(next(net.parameters()).dtype) for x in (x_t, pose, source))
    with torch.no_grad():
        return net(x_t, pose, torch.tensor([10.0, 900.0]), net.encode_texture(source)).float()


def _assert_same_weights(net_a, net_b):
    sd_a, sd_b = net_a.state_dict(), net_b.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k].to(sd_a[k].dtype)), k


@pytest.fixture(scope="module")
def tiny_net():
    return _random_network()


@pytest.fixture(scope="module")
def tiny_info():
    return ModelInfo(
        name="tiny test model",
        config=TINY,
        source_drop_prob=0.1,
        pose_drop_prob=0.05,
        extra={"training": json.dumps({"steps": 12, "dataset": "synthetic"})},
    )


@pytest.fixture()
def tiny_file(tmp_path, tiny_net, tiny_info):
    return save_model(tmp_path / "tiny.safetensors", tiny_net, tiny_info)


@pytest.fixture()
def official_file(tmp_path, tiny_net):
    model_net = _random_network(seed=7)
    path = tmp_path / "last.pt"
    torch.save(_official_dict(model_net, tiny_net), path)
    return path


# ---------------------------------------------------------------------------------------------
# The official tensor list


def test_official_state_dict_is_our_network_plus_known_unused_tensors():
    official = json.loads((FIXTURES / "official_state_dict_shapes.json").read_text())
    assert len(official) == 852
    with torch.device("meta"):
        net = PIDMNetwork(get_config("deepfashion_256"))
        fake = {k: torch.empty(shape) for k, shape in official.items()}
    report = match_state_dict(net, fake, source="official")
    assert report.loaded == len(net.state_dict()) == 668
    assert len(report.ignored) == 184
    assert report.ignored_parameters == 17_981_312
    assert set(report.key_map.values()) | set(report.ignored) == set(official)
    assert not set(report.key_map.values()) & set(report.ignored)
    assert "ignored 184 unused official tensors (17.98 M parameters)" in report.summary()


def test_official_layout_loads_with_default_config(tmp_path):
    """deepfashion_256 from a torch file, all tensors views of one shared storage (a small file)."""
    official = json.loads((FIXTURES / "official_state_dict_shapes.json").read_text())
    numel = max(torch.Size(s).numel() for s in official.values())
    storage = torch.arange(numel, dtype=torch.float32)
    sd = OrderedDict((k, storage[: torch.Size(s).numel()].view(s)) for k, s in official.items())
    path = tmp_path / "last.pt"
    torch.save({"ema": sd, "conf": TrainingConf()}, path)
    model = load_model(path)
    assert model.config == get_config("deepfashion_256")
    assert model.info.source_drop_prob == 0.1 and model.info.pose_drop_prob == 0.0
    assert not model.info.supports_disentangled_guidance
    assert model.dtype == torch.float32 and model.device == torch.device("cpu")
    assert not model.network.training
    weight = model.network.get_parameter("input_blocks.0.0.weight")
    assert torch.equal(weight.flatten(), storage[: weight.numel()])
    assert "ignored 184 unused official tensors (17.98 M parameters)" in model.report.summary()


# ---------------------------------------------------------------------------------------------
# Our safetensors format


def test_safetensors_round_trip(tiny_file, tiny_net, tiny_info):
    with safe_open(str(tiny_file), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert keys == set(tiny_net.state_dict())
    assert meta["pidm_format"] == "1"
    assert json.loads(meta["config"]) == json.loads(TINY.to_json())
    assert meta["resolution"] == "32"
    assert float(meta["source_drop_prob"]) == 0.1 and float(meta["pose_drop_prob"]) == 0.05
    assert meta["name"] == "tiny test model"
    assert json.loads(meta["training"]) == {"steps": 12, "dataset": "synthetic"}

    model = load_model(str(tiny_file))
    assert model.info == tiny_info
    assert model.info.supports_disentangled_guidance
    assert model.config == TINY and model.dtype == torch.float32
    assert model.report.ignored == []
    _assert_same_weights(tiny_net, model.network)
    assert torch.equal(_outputs(tiny_net), _outputs(model.network))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dtype_conversion(tmp_path, tiny_file, tiny_net, tiny_info, dtype):
    converted = load_model(tiny_file, dtype=dtype)
    assert converted.dtype == dtype
    assert all(p.dtype == dtype for p in converted.network.parameters())
    for k, v in tiny_net.state_dict().items():
        assert torch.equal(converted.network.state_dict()[k], v.to(dtype)), k

    path = save_model(tmp_path / "half.safetensors", tiny_net, tiny_info, dtype=dtype)
    assert path.stat().st_size < tiny_file.stat().st_size * 0.6
    reloaded = load_model(path)  # dtype None keeps the file's
    assert reloaded.dtype == dtype
    back = load_model(path, dtype=torch.float32)
    assert back.dtype == torch.float32
    torch.testing.assert_close(_outputs(back.network), _outputs(tiny_net), atol=0.05, rtol=0.05)


def test_half_weights_load_channels_last_and_own_their_memory(tmp_path, tiny_net, tiny_info):
    path = save_model(tmp_path / "bf16.safetensors", tiny_net, tiny_info, dtype=torch.bfloat16)
    convs = lambda model: [p for p in model.network.parameters() if p.dim() == 4]  # noqa: E731
    half = load_model(path)  # half weights: conv weights NHWC by default
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs(half))
    # every tensor is a copy of its own, so none keeps the memory-mapped file (and its pages) alive;
    # 1x1 conv weights, NCHW and NHWC at once, are the case .contiguous() would have missed
    assert any(p.shape[2:] == (1, 1) for p in convs(half))
    for p in half.network.parameters():
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
    torch.testing.assert_close(_outputs(half.network), _outputs(load_model(path, channels_last=False).network),
                               atol=0.02, rtol=0.02)  # bf16: the layouts sum in different orders
    full = load_model(path, dtype=torch.float32)  # fp32 stays NCHW: bit-exact with the official layout
    assert all(p.is_contiguous() for p in convs(full))


def test_save_model_rejects_mismatched_info(tmp_path, tiny_net, tiny_info):
    other = ModelInfo("x", get_config("synthetic_64"), 0.1, 0.0)
    with pytest.raises(ValueError, match="does not match"):
        save_model(tmp_path / "x.safetensors", tiny_net, other)
    clash = ModelInfo("x", TINY, 0.1, 0.0, extra={"config": "{}"})
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path / "x.safetensors", tiny_net, clash)


def test_embedded_model(monkeypatch, tmp_path):
    assert checkpoint.EMBEDDED_PATH.is_file(), "the embedded model ships in the repo"
    model = load_model()  # load time: benchmarks/bench_sampler.py --sections load
    assert model.config == get_config("synthetic_64")
    monkeypatch.setattr(checkpoint.load, "EMBEDDED_PATH", tmp_path / "weights" / "pidm_synthetic_64.safetensors")
    with pytest.raises(FileNotFoundError, match="pidm_synthetic_64.safetensors"):
        load_model("embedded")


def test_synthetic_64_round_trips(tmp_path):
    """Saved and loaded back, the embedded model's architecture keeps every weight (how long a load takes is
    measured by benchmarks/bench_sampler.py --sections load, not asserted here)."""
    net = PIDMNetwork(get_config("synthetic_64"))
    path = save_model(tmp_path / "s64.safetensors", net, ModelInfo("s64", net.config, 0.1, 0.1))
    _assert_same_weights(net, load_model(path).network)


# ---------------------------------------------------------------------------------------------
# The official torch pickle


def test_official_format_round_trip(official_file, tiny_net):
    model = load_model(official_file, config="tiny_32")
    _assert_same_weights(tiny_net, model.network)  # the 'ema' weights, not 'model'
    assert model.info.extra["state_dict"] == "ema"
    assert (model.info.source_drop_prob, model.info.pose_drop_prob) == (0.1, 0.0)
    n_unused = len(_unused_official_tensors(tiny_net))
    assert model.report.ignored and len(model.report.ignored) == n_unused
    assert f"ignored {n_unused} unused official tensors" in model.report.summary()
    assert torch.equal(_outputs(tiny_net), _outputs(model.network))

    tree = safe_torch_load(official_file)
    conf = tree["conf"]
    assert isinstance(conf, PickleStub) and not isinstance(conf, TrainingConf)
    assert conf.stub_name == "TrainingConf" and conf.stub_module.endswith("test_checkpoint")
    assert conf.stub_state == {"batch_size": 8, "lr": 2e-5, "name": "deepfashion"}
    assert isinstance(tree["optimizer"]["state"][0]["exp_avg"], torch.Tensor)
    assert tree["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert isinstance(tree["ema"], OrderedDict)


def test_official_model_used_when_no_ema(tmp_path, tiny_net):
    data = _official_dict(tiny_net, _random_network(seed=9))
    del data["ema"]
    torch.save(data, tmp_path / "no_ema.pt")
    model = load_model(tmp_path / "no_ema.pt", config=TINY)
    assert model.info.extra["state_dict"] == "model"
    _assert_same_weights(tiny_net, model.network)


def test_ddp_prefix_and_legacy_format(tmp_path, tiny_net):
    path = tmp_path / "legacy.pt"
    torch.save(_official_dict(tiny_net, tiny_net, prefix="module."), path, _use_new_zipfile_serialization=False)
    model = load_model(path, config="tiny_32")
    assert model.report.prefix_stripped == "module."
    _assert_same_weights(tiny_net, model.network)

    prefixed = {f"module.{k}": v for k, v in tiny_net.state_dict().items()}
    saved = checkpoint.save_state_dict(tmp_path / "ddp.safetensors", prefixed, ModelInfo("ddp", TINY, 0.1, 0.0))
    with safe_open(str(saved), framework="pt") as f:
        assert set(f.keys()) == set(tiny_net.state_dict())


@pytest.mark.parametrize("payload", [FunctionPayload, SystemPayload, ExecPayload])
def test_malicious_pickle_never_runs(tmp_path, tiny_net, payload):
    marker = tmp_path / "pwned"
    if payload is FunctionPayload:  # the payload is live: a plain unpickler runs it
        pickle.loads(pickle.dumps(payload(marker)))
        assert marker.exists()
        marker.unlink()

    bare = tmp_path / "bare.pt"
    torch.save({"x": payload(marker)}, bare)
    with pytest.raises(CheckpointError, match="holds no PIDM state dict"):
        load_model(bare, config=TINY)
    stub = safe_torch_load(bare)["x"]
    assert isinstance(stub, PickleStub) and stub.stub_args  # recorded, never called

    inside = tmp_path / "inside.pt"
    torch.save(_official_dict(tiny_net, tiny_net, conf=[payload(marker)]), inside)
    load_model(inside, config=TINY)
    assert not marker.exists()


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


@pytest.mark.parametrize(
    "target", ["torch FloatStorage", "torch._utils _rebuild_tensor_v2", "collections OrderedDict", "torch float32"]
)
def test_pickle_cannot_modify_allowed_globals(target):
    """BUILD on an allow-listed global (e.g. to make FloatStorage mean fp16 for later loads) fails."""
    module, name = target.split()
    data = (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"}" + _binunicode("dtype")
            + b"ctorch\nfloat16\ns" + b"b.")
    with pytest.raises((pickle.UnpicklingError, TypeError, AttributeError)):
        torch_pickle.RestrictedUnpickler(io.BytesIO(data), None).load()
    assert torch_pickle._ALLOWED[("torch", "FloatStorage")].dtype == torch.float32


def test_stable_diffusion_like_checkpoints(tmp_path):
    sd = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
        "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3),
    }
    save_file(sd, str(tmp_path / "sd.safetensors"))
    with pytest.raises(CheckpointError, match="looks like a Stable Diffusion checkpoint, not PIDM"):
        load_model(tmp_path / "sd.safetensors")
    torch.save({"state_dict": sd, "global_step": 10}, tmp_path / "sd.ckpt")
    with pytest.raises(CheckpointError, match="looks like a Stable Diffusion checkpoint, not PIDM"):
        load_model(tmp_path / "sd.ckpt")


# ---------------------------------------------------------------------------------------------
# Broken files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(CheckpointNotFoundError, match="nope.safetensors") as err:
        load_model(str(path))
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)


def test_truncated_files(tmp_path, tiny_file, official_file, tiny_net):
    legacy = tmp_path / "legacy.pt"
    torch.save(_official_dict(tiny_net, tiny_net), legacy, _use_new_zipfile_serialization=False)
    for path in (tiny_file, official_file, legacy):
        data = path.read_bytes()
        cut = tmp_path / ("cut_" + path.name)
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="truncated") as err:
            load_model(cut, config=TINY)
        assert str(cut) in str(err.value)


def test_zero_and_empty_files(tmp_path):
    zeros = tmp_path / "zeros.safetensors"
    zeros.write_bytes(bytes(100_000))
    with pytest.raises(CheckpointError, match="zeros") as err:
        load_model(zeros)
    assert str(zeros) in str(err.value)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(empty)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a recognised weights file"):
        load_model(text)


def test_wrong_shapes_missing_and_unknown_tensors(tmp_path, tiny_net, tiny_info):
    sd = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    sd["out.2.weight"] = torch.zeros(6, 32, 5, 5)
    del sd["input_blocks.0.0.bias"]
    save_file(sd, str(tmp_path / "bad.safetensors"), metadata=tiny_info.to_metadata())
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "bad.safetensors")
    message = str(err.value)
    assert "bad.safetensors" in message and "tiny_32" in message
    assert "out.2.weight: expected [6, 32, 3, 3], found [6, 32, 5, 5]" in message
    assert "input_blocks.0.0.bias: expected [32], missing" in message

    sd = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    sd["input_blocks.1.0.lora_down.weight"] = torch.zeros(4, 32)
    sd["input_blocks.1.0.cond_emb_layers.1.weight"] = torch.zeros(32, 8)  # a known unused one
    unknown = r"1 tensors .* not known unused official tensors: input_blocks.1.0.lora_down.weight"
    with pytest.raises(CheckpointError, match=unknown):
        match_state_dict(tiny_net, sd)
    del sd["input_blocks.1.0.lora_down.weight"]
    report = match_state_dict(tiny_net, sd)
    assert report.ignored == ["input_blocks.1.0.cond_emb_layers.1.weight"] and report.ignored_parameters == 256
    # The unused patterns only apply to the modules that own such tensors officially.
    sd["out.cond_emb_layers.1.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="out.cond_emb_layers.1.weight"):
        match_state_dict(tiny_net, sd)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pidm_format": None}, "without PIDM metadata"),
        ({"pidm_format": "2"}, "unsupported pidm_format '2'"),
        ({"config": '{"image_size": 32, "wings": 2}'}, "invalid network config.*unknown fields"),
        ({"config": "not json"}, "invalid network config"),
        ({"config": None}, "has no 'config'"),
        ({"resolution": "64"}, "resolution '64' does not match"),
        ({"pose_drop_prob": "1.5"}, "pose_drop_prob = '1.5' is not a probability"),
        ({"source_drop_prob": None}, "has no 'source_drop_prob'"),
    ],
)
def test_bad_metadata(tmp_path, tiny_net, tiny_info, change, message):
    meta = tiny_info.to_metadata()
    for key, value in change.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    path = tmp_path / "meta.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_net.state_dict().items()}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_config_must_match_safetensors(tiny_file):
    with pytest.raises(CheckpointError, match="not the requested"):
        load_model(tiny_file, config="synthetic_64")


# ---------------------------------------------------------------------------------------------
# Converter


def test_convert_cli(tmp_path, official_file, tiny_net):
    out = tmp_path / "converted.safetensors"
    result = subprocess.run(
        [sys.executable, "-m", "pidm_core.convert", str(official_file), str(out), "--config", "tiny_32"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    n_used = len(tiny_net.state_dict())
    unused = _unused_official_tensors(tiny_net)
    assert f"{n_used + len(unused)} tensors" in result.stdout
    assert f"ignored {len(unused)} unused official tensors" in result.stdout
    assert "MB" in result.stdout

    with safe_open(str(out), framework="pt") as f:  # lossless: the unused tensors are kept
        assert set(f.keys()) == set(tiny_net.state_dict()) | set(unused)
        for name, tensor in unused.items():
            assert torch.equal(f.get_tensor(name), tensor)
    model = load_model(out)
    assert model.info.source_drop_prob == 0.1 and model.info.pose_drop_prob == 0.0
    assert len(model.report.ignored) == len(unused)
    _assert_same_weights(tiny_net, model.network)

    from pidm_core.cli.convert import main

    small = tmp_path / "small.safetensors"
    assert main([str(out), str(small), "--dtype", "fp16", "--drop-unused"]) == 0
    with safe_open(str(small), framework="pt") as f:
        assert set(f.keys()) == set(tiny_net.state_dict())
    model = load_model(small)
    assert model.dtype == torch.float16 and model.report.ignored == []
    assert main([str(tmp_path / "missing.pt"), str(small)]) == 1


def test_package_import_is_light():
    code = "import sys, pidm_core; assert 'torch' not in sys.modules; assert callable(pidm_core.load_model)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_config_checks_match_what_the_network_can_build():
    """PIDMConfig refuses exactly the GroupNorm widths the network cannot build, so a config read
    from a file either builds or is refused with a ValueError, never fails later in the network."""
    import dataclasses
    import random

    rng = random.Random(0)
    built = refused = 0
    for _ in range(40):
        levels = rng.randint(1, 4)
        fields = dict(image_size=8 * 2 ** (levels - 1), model_channels=rng.choice([8, 16, 32, 48, 64]),
                      channel_mult=tuple(rng.randint(1, 4) for _ in range(levels)), num_res_blocks=rng.randint(1, 3),
                      attention_resolutions=(), embed_channels=16)
        try:
            config = PIDMConfig(**fields)
        except ValueError as error:
            assert "GroupNorm widths" in str(error)
            unchecked = object.__new__(PIDMConfig)  # the same fields, past the checks
            for name, value in {**dataclasses.asdict(TINY), **fields}.items():
                object.__setattr__(unchecked, name, value)
            with pytest.raises(ValueError, match="divisible"), torch.device("meta"):
                PIDMNetwork(unchecked)  # what the check saves a file's reader from
            refused += 1
            continue
        with torch.device("meta"):
            network = PIDMNetwork(config)
        widths = {m.num_channels for m in network.modules() if isinstance(m, torch.nn.GroupNorm)}
        assert widths == config._norm_widths()
        built += 1
    assert built > 10 and refused > 5
