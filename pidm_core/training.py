"""Train a PIDM network (the command line: :mod:`pidm_core.cli.train`).

Hybrid loss (MSE on ε, or on v with ``--prediction v``, + variational bound), Adam with linear
warm-up, gradient clipping, EMA, optional bf16/fp16 autocast and gradient accumulation. The source image and the pose map are
dropped independently at random (zero image / zero map) so that both the official and the
paper's disentangled guidance work. Pairs are used in both directions, with horizontal flips.
Launched plainly it runs one process (CPU or one GPU); under ``torchrun`` it uses DDP.

Resuming: ``--out`` holds ``last.pt`` (our own file: weights, EMA, optimiser, step, RNG), rewritten
atomically every ``--save-every`` steps and at exit; rerunning the same command continues the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from . import diffusion
from .config import PIDMConfig, get_config
from .data import open_pairs, to_image_tensor
from .network import PIDMNetwork
from .pose.keypoints import FLIP_PERMUTATION
from .pose.render import render_pose_map


@dataclass
class TrainOptions:
    config: str = "synthetic_64"
    data: str = "synthetic"
    out: str = "runs/pidm"
    steps: int = 20000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 2e-4
    warmup: int = 500
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_start: int = 1000  # EMA copies the weights until this step (the official run waits 5k)
    source_drop: float = 0.1
    pose_drop: float = 0.1
    flip: float = 0.5
    swap: float = 0.5
    precision: str = "fp32"  # fp32 | bf16 | fp16
    save_every: int = 200
    sample_every: int = 1000
    workers: int = 1
    seed: int = 0
    init: str = ""  # fine-tune from a checkpoint (official last.pt or our safetensors)
    max_minutes: float = 0.0  # stop (and save) after this wall time; 0 = no limit
    export: str = ""  # when training ends, write the EMA weights here as .safetensors
    name: str = ""  # model name stored in the exported file (default: the config name)
    high_noise_weight: float = 1.0  # >1: weight the ε-MSE by clamp((1-ᾱ)/ᾱ, 1, this) (see training_loss)
    prediction: str = ""  # "eps" | "v": what the network predicts; "" = the config's (official: eps)
    threads: int = 0  # CPU threads for torch (0 = torch's default); 1 copes best with a busy machine


# ---------------------------------------------------------------------------------------------
# Data


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirror keypoints [18, 3] horizontally; left and right joints swap names, as a detector would
    label the mirrored person."""
    out = keypoints[list(FLIP_PERMUTATION)].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


class PairDataset(Dataset):
    """Wraps a source of (source image, source keypoints, target image, target keypoints) pairs,
    applies direction swaps and flips, and renders the target pose map."""

    def __init__(self, pairs, length: int, flip: float, swap: float, seed: int):
        self.pairs, self.length, self.flip, self.swap, self.seed = pairs, length, flip, swap, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        src, src_kp, tgt, tgt_kp = self.pairs(index)
        rng = np.random.default_rng((self.seed, index))
        if rng.random() < self.swap:
            src, src_kp, tgt, tgt_kp = tgt, tgt_kp, src, src_kp
        if rng.random() < self.flip:
            w = src.shape[1]
            src, tgt = src[:, ::-1], tgt[:, ::-1]
            src_kp, tgt_kp = flip_keypoints(src_kp, w), flip_keypoints(tgt_kp, w)
        h, w = tgt.shape[:2]
        return {
            "source_image": to_image_tensor(src),
            "target_image": to_image_tensor(tgt),
            "target_pose": torch.from_numpy(render_pose_map(tgt_kp, h, w)),
        }


def make_dataset(spec: str, size: int, opts: TrainOptions, split: str = "train") -> Dataset:
    pairs = open_pairs(spec, size, split=split)
    augment = split == "train"
    return PairDataset(pairs.pair, len(pairs), opts.flip if augment else 0.0, opts.swap if augment else 0.0, opts.seed)


# ---------------------------------------------------------------------------------------------
# One optimisation step


def drop_conditions(batch: dict, source_drop: float, pose_drop: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the source image and/or the pose map of random samples (independent probabilities)."""
    b = batch["source_image"].shape[0]
    keep_source = (torch.rand(b, generator=generator) >= source_drop).float().view(b, 1, 1, 1)
    keep_pose = (torch.rand(b, generator=generator) >= pose_drop).float().view(b, 1, 1, 1)
    return batch["source_image"] * keep_source, batch["target_pose"] * keep_pose


def training_loss(network: PIDMNetwork, schedule: diffusion.Schedule, batch: dict, opts: TrainOptions,
                  generator: torch.Generator, device: torch.device, prediction: str = "eps") -> dict[str, torch.Tensor]:
    """Hybrid loss of one batch (dict of CPU tensors); returns batch means."""
    source, pose = drop_conditions(batch, opts.source_drop, opts.pose_drop, generator)
    x0 = batch["target_image"].to(device)
    source, pose = source.to(device), pose.to(device)
    b = x0.shape[0]
    t = torch.randint(0, schedule.num_timesteps, (b,), generator=generator).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    # Only the main module's forward is wrapped by DDP; call the encoder through it too.
    out = network(x_t, pose, t, source_texture=source)
    terms = diffusion.hybrid_loss(schedule, out, x0, x_t, t, noise, prediction=prediction)
    if opts.high_noise_weight > 1:
        # ε-MSE hardly notices errors at high noise, where x̂_0 = (x_t − √(1−ᾱ)ε)/√ᾱ magnifies them and
        # where the source must supply colours and layout: weight those steps by 1/SNR, capped.
        abar = diffusion.alpha_bar(schedule, t, terms["mse"])
        weight = ((1 - abar) / abar).clamp(1.0, opts.high_noise_weight)
        terms["loss"] = terms["mse"] * weight + terms["vb"]
    return {k: v.mean() for k, v in terms.items()}


class TrainingModule(torch.nn.Module):
    """Network + texture encoding in one forward, so DDP sees every parameter used in one call."""

    def __init__(self, network: PIDMNetwork):
        super().__init__()
        self.network = network

    def forward(self, x_t, pose, t, source_texture):
        return self.network(x_t, pose, t, self.network.encode_texture(source_texture))


# ---------------------------------------------------------------------------------------------
# Checkpoints


def save_training_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict:
    # Our own file, but still loaded without executing pickled code.
    return torch.load(path, map_location="cpu", weights_only=True)


def ema_on_device(ema: dict[str, torch.Tensor], network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The EMA weights (fp32) on the device of the network they follow: a training state is loaded onto
    the CPU, and ``update_ema`` blends them with the network's weights in place every step."""
    device = next(network.parameters()).device
    return {name: value.to(device=device, dtype=torch.float32) for name, value in ema.items()}


def update_ema(ema: dict[str, torch.Tensor], network: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for name, param in network.state_dict().items():
            ema[name].lerp_(param.detach().float(), 1.0 - decay)


# ---------------------------------------------------------------------------------------------


def _distributed() -> tuple[int, int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


def _any_rank(flag: bool, world: int) -> bool:
    """True on every rank if it is true on any: ranks must stop at the same step or DDP hangs."""
    if world == 1:
        return flag
    value = torch.tensor([float(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _lr_at(step: int, opts: TrainOptions) -> float:
    return opts.lr * min(1.0, (step + 1) / max(1, opts.warmup))


def _run_config(opts: TrainOptions) -> PIDMConfig:
    config: PIDMConfig = get_config(opts.config)
    if opts.prediction:
        config = dataclasses.replace(config, prediction=opts.prediction)
    if opts.high_noise_weight > 1 and config.prediction != "eps":
        raise ValueError("--high-noise-weight reweights the ε-MSE; a v-prediction run needs none (leave it at 1)")
    return config


def _initial_network(opts: TrainOptions, config: PIDMConfig, device: torch.device) -> tuple[PIDMNetwork, dict]:
    """The network to train (fresh, or from ``--init``) and the record of where its weights came from."""
    network = PIDMNetwork(config).to(device)
    if not opts.init:
        return network, {}
    from .checkpoint import load_model

    # a torch checkpoint (official last.pt, or our training state) carries no trusted config: read it
    # as this run's network; a safetensors file names its own, and only the weights are taken
    torch_file = Path(opts.init).suffix != ".safetensors"
    initial = load_model(opts.init, config=config if torch_file else None)
    network.load_state_dict(initial.network.state_dict())
    return network, _init_record(Path(opts.init), initial.info)


@dataclass
class _Run:
    """The state of one training run, saved to ``last.pt`` and resumed from it."""

    opts: TrainOptions
    config: PIDMConfig
    rank: int
    world: int
    device: torch.device
    network: PIDMNetwork
    module: torch.nn.Module  # the network in a TrainingModule (DDP-wrapped when world > 1)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: dict
    generator: torch.Generator
    init_record: dict
    step: int = 0
    elapsed_before: float = 0.0
    history: list = field(default_factory=list)
    start: float = 0.0

    @property
    def last(self) -> Path:
        return Path(self.opts.out) / "last.pt"


def _start_run(opts: TrainOptions) -> _Run:
    rank, world, local_rank = _distributed()
    device = _device(local_rank)
    config = _run_config(opts)
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    network, init_record = _initial_network(opts, config, device)
    module = TrainingModule(network)
    if world > 1:
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(network.parameters(), lr=opts.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=opts.precision == "fp16")
    ema = {k: v.detach().float().clone() for k, v in network.state_dict().items()}
    generator = torch.Generator().manual_seed(opts.seed * 1000 + rank)
    return _Run(opts, config, rank, world, device, network, module, optimizer, scaler, ema, generator, init_record)


def _resume(run: _Run, log) -> None:
    """Continue from ``last.pt`` when the output folder has one."""
    if not run.last.exists():
        return
    state = load_training_state(run.last)
    run.network.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.ema = ema_on_device(state["ema"], run.network)
    run.step = int(state["step"])
    generators = state["generator"]
    run.generator.set_state(generators[run.rank] if run.rank < len(generators) else run.generator.get_state())
    run.history = json.loads(state.get("history", "[]"))
    run.elapsed_before = float(state.get("elapsed_s", 0.0))
    if "init_record" in state:
        run.init_record = json.loads(state["init_record"])
    if run.rank == 0:
        log(f"resumed from {run.last} at step {run.step}")


def _batches(run: _Run):
    # Data order is a function of the step (and rank), so a resumed run continues on new pairs.
    opts = run.opts
    dataset = make_dataset(opts.data, run.config.image_size, opts)
    per_rank = opts.batch_size * opts.grad_accum
    return iter(DataLoader(dataset, batch_size=opts.batch_size, num_workers=opts.workers,
                           sampler=_StepIndices(len(dataset), run.step, per_rank, run.rank, run.world, opts.seed),
                           persistent_workers=opts.workers > 0))


def _save(run: _Run) -> None:
    """Write ``last.pt``. A collective: every rank takes part (generator states), only rank 0 writes."""
    gens = [run.generator.get_state()]
    if run.world > 1:
        mine = gens[0].to(run.device)  # NCCL gathers only device tensors
        gathered = [torch.empty_like(mine) for _ in range(run.world)]
        dist.all_gather(gathered, mine)
        gens = [g.cpu() for g in gathered]
    if run.rank != 0:
        return
    save_training_state(run.last, {
        "model": run.network.state_dict(), "optimizer": run.optimizer.state_dict(), "ema": run.ema, "step": run.step,
        "generator": gens, "options": json.dumps(asdict(run.opts)), "config": run.config.to_json(),
        "history": json.dumps(run.history[-2000:]), "elapsed_s": run.elapsed_before + time.time() - run.start,
        "init_record": json.dumps(run.init_record),
    })


def _optimizer_step(run: _Run, batches, schedule: diffusion.Schedule) -> dict[str, float]:
    """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss terms."""
    opts = run.opts
    for group in run.optimizer.param_groups:
        group["lr"] = _lr_at(run.step, opts)
    run.optimizer.zero_grad(set_to_none=True)
    sums = {"loss": 0.0, "mse": 0.0, "vb": 0.0}
    for micro in range(opts.grad_accum):
        batch = next(batches)
        last_micro = run.world == 1 or micro == opts.grad_accum - 1
        with contextlib.nullcontext() if last_micro else run.module.no_sync():
            with _autocast(opts.precision, run.device):
                terms = training_loss(run.module, schedule, batch, opts, run.generator, run.device, run.config.prediction)
            run.scaler.scale(terms["loss"] / opts.grad_accum).backward()
        for k in sums:
            sums[k] += terms[k].item() / opts.grad_accum
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.network.parameters(), opts.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    update_ema(run.ema, run.network, 0.0 if run.step < opts.ema_start else opts.ema_decay)
    return sums


def _progress_bar(run: _Run):
    try:
        from tqdm import tqdm
    except ImportError:  # progress falls back to log lines
        return None
    return tqdm(total=run.opts.steps, initial=run.step, disable=run.rank != 0, dynamic_ncols=True)


def _after_step(run: _Run, sums: dict[str, float], bar, log) -> None:
    """History, progress, periodic saves and sample grids."""
    opts, step = run.opts, run.step
    run.history.append({"step": step, **{k: round(v, 5) for k, v in sums.items()}})
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{sums['loss']:.4f}", mse=f"{sums['mse']:.4f}")
    elif run.rank == 0 and step % 20 == 0:
        log(f"step {step} loss {sums['loss']:.4f} mse {sums['mse']:.4f}")
    if step % opts.save_every == 0:
        _save(run)
    if run.rank == 0 and opts.sample_every and step % opts.sample_every == 0:
        _save_sample_grid(Path(opts.out) / f"samples_{step:07d}.png", run.ema, run.config, opts, run.device)


def train(opts: TrainOptions, log=print) -> dict:
    """Run (or resume) training; returns the final metrics dict."""
    run = _start_run(opts)
    _resume(run, log)
    schedule = diffusion.linear_schedule()
    batches = _batches(run)
    run.start = time.time()
    run.module.train()
    bar = _progress_bar(run)
    while run.step < opts.steps:
        sums = _optimizer_step(run, batches, schedule)
        _after_step(run, sums, bar, log)
        if opts.max_minutes and _any_rank((time.time() - run.start) > opts.max_minutes * 60, run.world):
            break
    _save(run)
    if bar is not None:
        bar.close()
    if run.world > 1:
        dist.barrier()
    elapsed = run.elapsed_before + time.time() - run.start
    if run.rank == 0 and opts.export and run.step >= opts.steps:
        export_ema(run.ema, run.config, opts, run.step, elapsed, run.history, run.init_record)
        log(f"exported EMA weights to {opts.export}")
    return {"step": run.step, "history": run.history, "elapsed_s": elapsed, "rank": run.rank}


def _init_record(path: Path, info) -> dict:
    """What a fine-tune started from, for the exported metadata: the file's name and, when known,
    how long it had been trained (our training state) or its own training record (our safetensors)."""
    record: dict = {"init": path.name}
    if path.suffix == ".safetensors":
        if "training" in info.extra:
            record["init_training"] = json.loads(info.extra["training"])
        return record
    try:
        state = load_training_state(path)
    except Exception:  # the official last.pt holds a pickled config object: no record of ours
        return record
    if isinstance(state, dict) and "step" in state:
        record.update(init_steps=int(state["step"]), init_wall_time_s=round(float(state.get("elapsed_s", 0))))
    return record


def export_ema(ema: dict, config: PIDMConfig, opts: TrainOptions, step: int, elapsed_s: float, history: list,
               init_record: dict | None = None) -> Path:
    """Write the EMA weights as our .safetensors, recording the config, the dropped conditions and
    how the model was trained (and, for a fine-tune, what it started from)."""
    from .checkpoint import ModelInfo, save_model

    network = PIDMNetwork(config)
    network.load_state_dict(ema)
    recent = history[-200:]
    training = {
        "steps": step, "wall_time_s": round(elapsed_s), "data": opts.data, "batch_size": opts.batch_size,
        "grad_accum": opts.grad_accum, "lr": opts.lr, "precision": opts.precision, "ema_decay": opts.ema_decay,
        "final_loss": round(sum(h["loss"] for h in recent) / max(1, len(recent)), 5),
        "prediction": config.prediction, **(init_record or {}),
    }
    info = ModelInfo(name=opts.name or f"pidm_{opts.config}", config=config, source_drop_prob=opts.source_drop,
                     pose_drop_prob=opts.pose_drop, extra={"fit": "pad", "training": json.dumps(training)})
    return save_model(opts.export, network, info, dtype=torch.float32)


class _StepIndices(torch.utils.data.Sampler):
    """Endless dataset indices, ``per_rank`` per optimiser step for each rank, starting at ``step``.
    Finite datasets are walked in a fresh seeded permutation per epoch; huge procedural ones in order."""

    def __init__(self, length: int, step: int, per_rank: int, rank: int, world: int, seed: int):
        self.length, self.step, self.per_rank, self.rank, self.world, self.seed = length, step, per_rank, rank, world, seed

    def __iter__(self):
        position = self.step * self.per_rank * self.world + self.rank * self.per_rank
        permuted = self.length < 10**7
        epoch, perm = -1, None
        while True:
            for offset in range(self.per_rank):
                index = position + offset
                if permuted:
                    if index // self.length != epoch:
                        epoch = index // self.length
                        perm = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed + epoch))
                    index = int(perm[index % self.length])
                yield index
            position += self.per_rank * self.world


def _save_sample_grid(path: Path, ema: dict, config: PIDMConfig, opts: TrainOptions, device: torch.device,
                      count: int = 4) -> None:
    """Source | target pose | EMA output | truth, for a few held-out pairs (ddpm 25 steps).

    Sampled on the training device: under DDP the other ranks wait in their next collective meanwhile,
    and a slow CPU run could outlast the NCCL watchdog.
    """
    from PIL import Image

    from .pipeline import generate_from_tensors
    from .samplers import SamplingSettings

    with torch.device(device):
        network = PIDMNetwork(config)
    network.load_state_dict(ema)  # a copy: sampling must never touch the EMA itself
    network.eval()
    data = make_dataset(opts.data, config.image_size, opts, split="held_out")
    items = [data[i] for i in range(count)]
    source = torch.stack([it["source_image"] for it in items]).to(device)
    pose = torch.stack([it["target_pose"] for it in items]).to(device)
    # ddpm: its fresh noise each step forgives an early model's imprecise ε at high noise, which
    # sends deterministic ddim off to noise, so the grid shows what the model already knows
    settings = SamplingSettings(steps=25, sampler="ddpm", guidance="official", appearance_scale=2.0, seed=0)
    out = generate_from_tensors(network, source, pose, settings).cpu()
    rows = []
    for i, it in enumerate(items):
        cells = [it["source_image"], it["target_pose"][:3] * 2 - 1, out[i], it["target_image"]]
        rows.append(torch.cat(cells, dim=2))
    grid = ((torch.cat(rows, dim=1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(grid).save(path)
