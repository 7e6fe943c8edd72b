"""Rebuild the reference outputs that hold the library's results still through a redesign.

    python scripts/make_reference_outputs.py [--out tests/fixtures/redesign_reference.safetensors]
                                             [--sampling-out tests/fixtures/sampling_reference.safetensors]

Two fixtures, each compared by a test that runs the same cases with the current code:

``sampling_reference.safetensors`` (tests/test_sampling.py): ``sample_tensors`` for every sampler × guidance
mode of an ε-predicting ``tiny_32``, every sampler with official guidance of a v-predicting one, ddpm
img2img (denoise 0.7), ddpm with an appearance mask and ddim with η = 0.5; 3 steps, seeds 4 and 5, each
output reduced to its 4×4 means. Made at commit c945010 (before issue 15's settings object).

``redesign_reference.safetensors`` (tests/test_reference_outputs.py):

a tiny network (``tiny_32``, N(0, 0.05²) weights, seed 0) through the public library calls a user
makes, every output whole (fp32):

- every sampler × guidance mode, img2img, an appearance mask, η (``sample`` on a padded source);
- the fits: pad, stretch, person (a synthetic scene's photo framed around its person);
- sequences: five poses in chunks of two, shared and independent frame noise;
- putting the person back into the photo (``paste_from_texture``: the target's place and the source's).

Both tests compare bit for bit on the machine that made the files, within 1e-5 of each output's largest
value elsewhere (another CPU sums in another order). The second was made at commit 13cbcb8 (main before issue 24's redesign), on the project's 2-core x86-64 CPU, fp32,
one thread. Run it again only when an output is meant to change, and say why in the commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pidm_core import composite, pipeline
from pidm_core.config import get_config
from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, make_scene
from pidm_core.framing import synthetic_framing
from pidm_core.network import PIDMNetwork
from pidm_core.pose.keypoints import Pose
from pidm_core.guidance import GUIDANCE_MODES
from pidm_core.samplers import OFFICIAL_RUN, SAMPLERS, SamplingSettings

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
OUT = FIXTURES / "redesign_reference.safetensors"
SAMPLING_OUT = FIXTURES / "sampling_reference.safetensors"
SIZE = 32
SCENE_SEED = SCENE_SEED_OFFSET + 2  # a standing person who steps aside in the target
# the references were recorded with every step guided and every frame from noise (the defaults of then)
STEPS = dict(steps=2, appearance_scale=2.5, pose_scale=1.5, **OFFICIAL_RUN)


def reference_network(prediction: str = "eps") -> PIDMNetwork:
    torch.manual_seed(0)
    network = PIDMNetwork(dataclasses.replace(get_config("tiny_32"), prediction=prediction)).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.05)
    return network


def _unit(array: np.ndarray) -> np.ndarray:
    """A scene image (0-255 values) as ComfyUI's floats in [0, 1]."""
    return np.ascontiguousarray(array, dtype=np.float32) / 255


def _image(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(_unit(array))[None]


def _scaled_pose(pose: Pose, width: int, height: int) -> Pose:
    keypoints = pose.keypoints.astype(np.float32).copy()
    keypoints[:, 0] *= width / pose.width
    keypoints[:, 1] *= height / pose.height
    return Pose(keypoints, width, height)


def _walk(pose: Pose, count: int) -> list[Pose]:
    """``count`` poses stepping right by 2 % of the width a frame (a short sequence)."""
    frames = []
    for k in range(count):
        keypoints = pose.keypoints.astype(np.float32).copy()
        keypoints[:, 0] += 0.02 * pose.width * k * (keypoints[:, 2] > 0)
        frames.append(Pose(keypoints, pose.width, pose.height))
    return frames


def sampling_cases(network: PIDMNetwork, scene) -> Iterator[tuple[str, Callable[[], torch.Tensor]]]:
    photo = _image(scene.source_image)
    height, width = scene.source_image.shape[:2]
    target = Pose(scene.target_keypoints.astype(np.float32), width, height)
    padded = pipeline.encode_source(network, photo, fit_mode="pad")
    init = _image(scene.background)
    mask = torch.from_numpy(scene.source_mask.astype(np.float32))[None]
    for sampler in SAMPLERS:
        for mode in GUIDANCE_MODES:
            settings = SamplingSettings(sampler=sampler, guidance=mode, **STEPS)
            yield f"pad/{sampler}/{mode}", lambda s=settings: pipeline.sample(network, padded, [target], s)
    ddpm = SamplingSettings(sampler="ddpm", **STEPS)
    yield "pad/ddpm/img2img", lambda: pipeline.sample(network, padded, [target], dataclasses.replace(ddpm, denoise=0.6),
                                                      init_image=init)
    yield "pad/ddpm/mask", lambda: pipeline.sample(network, padded, [target], ddpm, appearance_mask=mask, reference=init)
    yield "pad/ddim/eta", lambda: pipeline.sample(network, padded, [target],
                                                  SamplingSettings(sampler="ddim", eta=0.5, **STEPS))
    stretched = pipeline.encode_source(network, photo, mask, fit_mode="stretch")
    yield "stretch/ddim", lambda: pipeline.sample(network, stretched, [target], SamplingSettings(**STEPS))
    for noise in ("shared", "independent"):
        settings = SamplingSettings(frame_noise=noise, chunk_size=2, **STEPS)
        yield f"sequence/{noise}", lambda s=settings: pipeline.sample(network, padded, _walk(target, 5), s)


def framed_cases(network: PIDMNetwork, scene) -> Iterator[tuple[str, Callable[[], object]]]:
    photo = _image(scene.source_image)
    height, width = scene.source_image.shape[:2]
    source_pose = Pose(scene.source_keypoints.astype(np.float32), width, height)
    target = Pose(scene.target_keypoints.astype(np.float32), width, height)
    mask = torch.from_numpy(scene.source_mask.astype(np.float32))[None]
    framed = pipeline.encode_source(network, photo, mask, fit_mode="person", source_poses=[source_pose],
                                    framing=synthetic_framing(SIZE))
    settings = SamplingSettings(**STEPS)
    poses = _walk(_scaled_pose(target, 2 * width, 2 * height), 2)  # poses on another canvas are fitted
    outputs = pipeline.sample(network, framed, poses, settings)
    yield "person/ddim", lambda: outputs
    for place in composite.PLACES:
        yield f"put_back/{place}", lambda p=place: composite.paste_from_texture(
            framed, _unit(scene.source_image), outputs.numpy(), poses, scene.source_mask, place=p)


def _tensor_cases() -> Iterator[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(15)
    source = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    pose = torch.rand(2, 20, 32, 32, generator=g)
    init = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    mask = (torch.rand(2, 1, 32, 32, generator=g) > 0.5).float()
    for prediction in ("eps", "v"):  # v: the conversion to ε, once per sampler
        network = reference_network(prediction)
        texture, null = pipeline.encode_texture_pair(network, source)

        def run(settings, **inputs):
            return pipeline.sample_tensors(network, texture, null, pose, settings, seeds=[4, 5], **inputs)

        for sampler in SAMPLERS:
            for mode in GUIDANCE_MODES if prediction == "eps" else ("official",):
                yield f"{prediction}/{sampler}/{mode}", run(SamplingSettings(steps=3, sampler=sampler, guidance=mode,
                                                                             appearance_scale=2.5, pose_scale=1.5,
                                                                             **OFFICIAL_RUN))
        if prediction == "eps":
            settings = SamplingSettings(steps=3, sampler="ddpm", appearance_scale=2.5, pose_scale=1.5, **OFFICIAL_RUN)
            yield "eps/ddpm/official/img2img", run(dataclasses.replace(settings, denoise=0.7), init=init)
            yield "eps/ddpm/official/mask", run(settings, mask=mask, reference=init)
            yield "eps/ddim/eta", run(SamplingSettings(steps=3, sampler="ddim", eta=0.5, **OFFICIAL_RUN))


def sampling_reference() -> dict[str, torch.Tensor]:
    """The tensor-level cases, each output [2, 3, 32, 32] reduced to its 4×4 means."""
    with torch.no_grad():
        return {name: torch.nn.functional.avg_pool2d(out, 4).contiguous() for name, out in _tensor_cases()}


def reference_outputs() -> dict[str, torch.Tensor]:
    """Every case's outputs, named ``case`` (and ``case/images|filled|person`` for put-back)."""
    torch.set_num_threads(1)
    network = reference_network()
    scene = make_scene(SCENE_SEED, 64)
    outputs = {}
    with torch.no_grad():
        for name, run in [*sampling_cases(network, scene), *framed_cases(network, scene)]:
            result = run()
            if isinstance(result, torch.Tensor):
                outputs[name] = result.float().contiguous()
            else:  # a composite: its three arrays
                for field in ("images", "filled", "person"):
                    outputs[f"{name}/{field}"] = torch.from_numpy(np.ascontiguousarray(getattr(result, field)))
    return outputs


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--sampling-out", type=Path, default=SAMPLING_OUT)
    args = parser.parse_args(argv)
    for outputs, path in ((reference_outputs(), args.out), (sampling_reference(), args.sampling_out)):
        save_file(outputs, str(path))
        print(f"{len(outputs)} outputs written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
