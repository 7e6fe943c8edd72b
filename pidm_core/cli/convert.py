"""Convert PIDM weights to our .safetensors format.

    python -m pidm_core.convert last.pt out.safetensors [--dtype fp16|bf16|fp32] [--drop-unused]

The input is the official ``last.pt`` (read without running any code from it; its ``ema`` weights
are used) or one of our .safetensors files (to change the dtype or drop the unused tensors). Every
size the input declares is checked before anything is allocated (:mod:`pidm_core.checkpoint`), so a forged
file is refused with an error instead of asking for more memory than it holds.
Without ``--drop-unused`` the official tensors that the network never uses are kept under their
names, so the conversion loses nothing but the optimizer state.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checkpoint import CheckpointError, parse_dtype, read_checkpoint, save_state_dict
from ..config import CONFIGS


def _dtype_label(tensors) -> str:
    names = sorted({str(t.dtype).replace("torch.", "") for t in tensors.values() if t.is_floating_point()})
    return "/".join(names) or "no floating-point tensors"


def convert(src: str | Path, dst: str | Path, dtype: str | None = None, drop_unused: bool = False,
            config: str | None = None, log=print) -> Path:
    """Read ``src``, write ``dst`` (.safetensors) and log what was done; returns ``dst``.

    ``config``: network config name of a torch checkpoint (default deepfashion_256, the official)."""
    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise ValueError(f"output {dst} must end with .safetensors")
    tensors, info, report, description = read_checkpoint(src, config)
    log(f"read {src}: {description}, {len(tensors)} tensors ({_dtype_label(tensors)})")
    log(f"  {report.summary()}")
    if drop_unused:
        prefix = len(report.prefix_stripped)
        for key in report.ignored:
            del tensors[key[prefix:]]
        log(f"  dropped the {len(report.ignored)} unused tensors")
    target = parse_dtype(dtype) if dtype else None
    save_state_dict(dst, tensors, info, target)
    params = sum(t.numel() for t in tensors.values())
    size_mb = dst.stat().st_size / 1e6
    log(
        f"wrote {dst}: {len(tensors)} tensors, {params / 1e6:.2f} M parameters, "
        f"{str(target).replace('torch.', '') if target else _dtype_label(tensors)}, {size_mb:.1f} MB; "
        f"config {info.config.image_size}px, source_drop_prob {info.source_drop_prob}, pose_drop_prob {info.pose_drop_prob}"
    )
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pidm_core.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="official last.pt or a PIDM .safetensors")
    parser.add_argument("dst", help="output .safetensors")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None,
                        help="store floating-point tensors in this dtype (default: keep the input's)")
    parser.add_argument("--drop-unused", action="store_true",
                        help="leave out the official tensors that the network never uses (~18 M parameters)")
    parser.add_argument("--config", default=None, choices=sorted(CONFIGS),
                        help="network config of a torch checkpoint (default: deepfashion_256, the official model)")
    args = parser.parse_args(argv)
    try:
        convert(args.src, args.dst, args.dtype, args.drop_unused, args.config)
    except (CheckpointError, ValueError, OSError) as err:  # a refused input, or an output that cannot be written
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
