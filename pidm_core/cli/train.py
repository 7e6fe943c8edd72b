"""Train a PIDM network.

    python -m pidm_core.train --config synthetic_64 --data synthetic --out runs/synthetic_64
    torchrun --nproc_per_node 8 -m pidm_core.train --config deepfashion_256 --data deepfashion:/data/fashion --out runs/df

What a run does, and how it resumes: :mod:`pidm_core.training`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..training import TrainOptions, train


def parse_options(argv=None) -> TrainOptions:
    """Command-line flags, one per :class:`TrainOptions` field (``--high-noise-weight`` …)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for field_name, default in asdict(TrainOptions()).items():
        flag = "--" + field_name.replace("_", "-")
        parser.add_argument(flag, type=type(default), default=default)
    return TrainOptions(**vars(parser.parse_args(argv)))


def main(argv=None) -> None:
    opts = parse_options(argv)
    result = train(opts)
    if result["history"] and result["rank"] == 0:  # one summary line per run, not one per process
        print(json.dumps({"step": result["step"], "last": result["history"][-1]}))


if __name__ == "__main__":
    main()
