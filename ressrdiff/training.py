"""Training loop for any registered method (Algorithm 1 for Res-SRDiff).

RAdam, linear warm-up then cosine decay, optional EMA, gradient clipping, bf16 autocast and
channels-last on CUDA (fp32 on CPU), atomic checkpoints, exact resume, and DistributedDataParallel
under ``torchrun`` (gloo on CPU, NCCL on CUDA).

Reproducibility does not hinge on saved RNG state: the batch of step ``s`` and every random draw
of a sample are functions of ``(seed, s, position in the global batch)``. A resumed run therefore
replays exactly what an uninterrupted one would have done, and N processes with batch B see the
same samples and noise as one process with batch N*B.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .atomic import text_output, write_files
from .checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from .config import RunConfig
from .devices import resolve_device
from .methods import Method, build_method
from .progress import progress_enabled

__all__ = ["Trainer", "EMA", "lr_factor", "batch_positions", "sample_seeds", "DistInfo"]


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_positions(n: int, global_batch: int, seed: int, step: int) -> tuple[int, np.ndarray]:
    """(epoch, dataset indices) of the global batch at ``step``: each epoch is a seeded
    permutation of the ``n`` samples cut into ``n // global_batch`` batches."""
    if n < global_batch:
        raise ValueError(
            f"dataset has {n} samples per epoch, fewer than one batch ({global_batch})"
        )
    per_epoch = n // global_batch
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return epoch, perm[pos * global_batch : (pos + 1) * global_batch]


def sample_seeds(seed: int, step: int, positions: range) -> torch.Tensor:
    """One 63-bit seed per sample of the global batch at ``step``."""
    vals = [
        int(np.random.SeedSequence([seed, step, p]).generate_state(2, np.uint32).view(np.uint64)[0])
        >> 1
        for p in positions
    ]
    return torch.tensor(vals, dtype=torch.long)


class EMA:
    """Exponential moving average of a module's floating-point parameters and buffers."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for s, p in zip(
            self.shadow.state_dict().values(), module.state_dict().values(), strict=True
        ):
            if s.dtype.is_floating_point:
                s.lerp_(p.detach(), 1.0 - self.decay)
            else:
                s.copy_(p)


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_pref: str) -> tuple[DistInfo, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    resolve_device(device_pref, what="train.device")  # a one-line error without a GPU
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{info.local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, device


class Trainer:
    """Train ``cfg.method`` on ``dataset`` and write checkpoints and a log to ``out_dir``.

    ``dataset`` needs ``__len__``, ``__getitem__`` returning ``{"hr", "lr"}`` tensors, and
    optionally ``set_epoch``. Without one, it is built from ``cfg.data``.
    """

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: str | Path,
        *,
        dataset: Any = None,
        resume: bool = False,
        progress: bool = True,
        method: Method | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.dist, self.device = _init_distributed(cfg.train.device)
        if resume and not self.ckpt_path.is_file():
            raise CheckpointError(
                f"{self.ckpt_path}: nothing to resume from (no checkpoint in {self.out})"
            )
        # the data and the network first: bad data or a bad config must fail before the run
        # folder exists (it is made at the end of __init__)
        self.dataset = dataset if dataset is not None else build_dataset(cfg)
        self.progress = progress and self.dist.main
        torch.manual_seed(cfg.seed)
        self.method = (method or build_method(cfg)).to(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda and cfg.train.channels_last:
            self.method = self.method.to(memory_format=torch.channels_last)
        t = cfg.train
        # one RAdam + schedule per parameter group (one group, "loss", unless the method is
        # adversarial); groups are stepped in the method's order, each on its own loss term
        self.groups = self.method.optim_groups()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        for k, params in self.groups.items():
            kw = {"lr": t.lr, "weight_decay": t.weight_decay}
            kw.update(self.method.optimizer_overrides.get(k, {}))
            self.optimizers[k] = torch.optim.RAdam(params, **kw)
            self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(
                self.optimizers[k],
                lambda s: lr_factor(s, t.warmup_steps, t.steps, t.min_lr / t.lr),
            )
        first = next(iter(self.groups))
        self.optimizer, self.scheduler = self.optimizers[first], self.schedulers[first]
        self.ema = (
            {k: EMA(m, t.ema_decay) for k, m in self.method.networks().items()}
            if t.ema_decay
            else {}
        )
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.saved_step: int | None = None  # the step of the last checkpoint written (or read)
        if resume:
            self._resume()
            self.saved_step = self.step
        self.model: nn.Module = self.method
        if self.dist.world > 1:
            if len(self.groups) > 1:
                raise ValueError(
                    f"method {cfg.method!r} has {len(self.groups)} optimiser groups; "
                    "distributed training supports single-loss methods only"
                )
            self.model = nn.parallel.DistributedDataParallel(
                self.method, device_ids=[self.device.index] if self.cuda else None
            )
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in self.out.glob(".*.pt.*.tmp"):  # left by a kill during a write
                stale.unlink(missing_ok=True)

    # -- checkpoints ------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "last.pt"

    def snapshot_path(self, step: int) -> Path:
        """Where ``train.keep_every`` keeps the checkpoint of ``step`` (a budget curve)."""
        return self.out / f"step_{step:06d}.pt"

    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "signature": self.method.signature(),
            "method": self.cfg.method,
            "loss": getattr(self.method, "loss_description", "see config"),
            "step": self.step,
            "networks": {k: m.state_dict() for k, m in self.method.networks().items()},
            "ema": {k: e.shadow.state_dict() for k, e in self.ema.items()},
            "optimizer": {k: o.state_dict() for k, o in self.optimizers.items()},
            "lr_scheduler": {k: s.state_dict() for k, s in self.schedulers.items()},
            "schedule": getattr(self.method, "schedule", None) and self.method.schedule.to_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.cuda else None,
                "numpy": np.random.get_state(),  # noqa: NPY002 (legacy global state, saved as is)
                "python": random.getstate(),
            },
            "history": self.history,
            "world_size": self.dist.world,
            "torch_version": torch.__version__,
        }

    def save(self, *paths: Path) -> Path | None:
        """Write the state to each of ``paths`` (default: ``last.pt``), gathered once; returns
        the first path (None on a non-main process)."""
        if not self.dist.main:
            return None
        state = self.state()
        paths = paths or (self.ckpt_path,)
        for p in paths:
            save_checkpoint(p, state)
        self.saved_step = self.step
        return paths[0]

    def kept_checkpoints(self) -> list[Path]:
        """The step checkpoints ``train.keep_every`` kept in the run folder, newest first."""
        return sorted(self.out.glob("step_*.pt"), reverse=True)

    def _resume(self) -> None:
        path = self.ckpt_path
        if not path.is_file():
            raise CheckpointError(f"{path}: nothing to resume from (no checkpoint in {self.out})")
        try:
            ckpt = load_checkpoint(path, map_location=self.device)
        except CorruptCheckpointError:
            kept = [p.name for p in self.kept_checkpoints()]
            way = (
                f"resume from one of: {', '.join(kept)} (copy it over last.pt, then --resume)"
                if kept
                else f"{self.out} keeps no step checkpoints (train.keep_every) to resume from; "
                "train again into another --out"
            )
            raise CheckpointError(f"checkpoint {path} is corrupt (truncated?); {way}") from None
        self.method.check_signature(ckpt, str(path))
        if ckpt["step"] > self.cfg.train.steps:
            raise CheckpointError(
                f"{path}: checkpoint is at step {ckpt['step']}, "
                f"past train.steps={self.cfg.train.steps}"
            )
        for k, m in self.method.networks().items():
            m.load_state_dict(ckpt["networks"][k])
        for k, e in self.ema.items():
            if k in ckpt.get("ema", {}):
                e.shadow.load_state_dict(ckpt["ema"][k])
        opt, sch = ckpt["optimizer"], ckpt["lr_scheduler"]
        if "state" in opt:  # a single-optimiser checkpoint (format before optimiser groups)
            opt, sch = {"loss": opt}, {"loss": sch}
        if set(opt) != set(self.optimizers):
            raise CheckpointError(
                f"{path}: optimiser groups {sorted(opt)} do not match {sorted(self.optimizers)}"
            )
        for k in self.optimizers:
            self.optimizers[k].load_state_dict(opt[k])
            self.schedulers[k].load_state_dict(sch[k])
        self.step = int(ckpt["step"])
        self.history = list(ckpt.get("history", []))
        rng = ckpt.get("rng", {})
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"].cpu())
        if self.cuda and rng.get("cuda") is not None:
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        if rng.get("numpy") is not None:
            np.random.set_state(rng["numpy"])  # noqa: NPY002
        if rng.get("python") is not None:
            random.setstate(rng["python"])

    # -- one step -----------------------------------------------------------------------------
    def _batch(self, step: int) -> dict[str, torch.Tensor]:
        B, W, r = self.cfg.train.batch_size, self.dist.world, self.dist.rank
        epoch, idx = batch_positions(len(self.dataset), B * W, self.cfg.seed, step)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        items = [self.dataset[int(i)] for i in idx[r * B : (r + 1) * B]]
        batch = {k: torch.stack([it[k] for it in items]).to(self.device) for k in ("hr", "lr")}
        if self.cuda and self.cfg.train.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
        batch["seed"] = sample_seeds(self.cfg.seed, step, range(r * B, (r + 1) * B))
        return batch

    def train_step(self) -> dict[str, float]:
        self.model.train()
        # dropout and any other global-RNG use are seeded per step and rank
        torch.manual_seed(
            int(
                np.random.SeedSequence(
                    [self.cfg.seed, self.step, self.dist.rank, 7]
                ).generate_state(1)[0]
            )
        )
        batch = self._batch(self.step)
        with torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=self.cuda and self.cfg.train.bf16
        ):
            out = self.model(batch)
        gnorm = float("nan")
        names = list(self.groups)
        for i, k in enumerate(names):
            # every group starts from clean gradients: a generator loss also reaches the
            # discriminator's parameters, which must not leak into the discriminator's step
            for p in self.method.parameters():
                p.grad = None
            if k not in out:
                raise KeyError(f"method {self.cfg.method!r}: training step returned no {k!r}")
            out[k].backward(retain_graph=i < len(names) - 1)
            if self.cfg.train.grad_clip:
                g = float(nn.utils.clip_grad_norm_(self.groups[k], self.cfg.train.grad_clip))
                gnorm = g if i == 0 else gnorm
            self.optimizers[k].step()
            self.schedulers[k].step()
        for k, e in self.ema.items():
            e.update(self.method.networks()[k])
        vals = torch.stack([v.detach().float() for v in out.values()])
        if self.dist.world > 1:
            dist.all_reduce(vals)
            vals /= self.dist.world
        self.step += 1
        rec = {"step": self.step, **{k: float(v) for k, v in zip(out, vals.tolist(), strict=True)}}
        rec["lr"] = self.scheduler.get_last_lr()[0]
        rec["grad_norm"] = gnorm
        return rec

    # -- loop ---------------------------------------------------------------------------------
    def train(self, stop_at: int | None = None) -> list[dict[str, float]]:
        """Run until ``train.steps`` (or ``stop_at``); return the history: one record per
        ``log_every`` steps holding the mean loss terms over those steps."""
        end = min(self.cfg.train.steps, stop_at or self.cfg.train.steps)
        t = self.cfg.train
        bar = tqdm(
            total=t.steps,
            initial=self.step,
            disable=not progress_enabled(self.progress),
            desc=self.cfg.name,
            unit="step",
            dynamic_ncols=True,
        )
        t0, s0 = time.perf_counter(), self.step
        window: list[dict[str, float]] = []
        while self.step < end:
            window.append(self.train_step())
            if self.step % t.log_every == 0 or self.step == end:
                # one history record per log_every steps: the mean over those steps
                rec = {k: sum(r[k] for r in window) / len(window) for k in window[-1]}
                rec["step"] = self.step
                rec["lr"] = window[-1]["lr"]
                rec["time_s"] = time.perf_counter() - t0
                self.history.append(rec)
                window.clear()
                rate = (self.step - s0) / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{rec['loss']:.4f}", steps_per_s=f"{rate:.2f}")
            bar.update(1)
            if self.step % t.ckpt_every == 0 or self.step == end:
                keep = t.keep_every and self.step % t.keep_every == 0
                self.save(self.ckpt_path, *([self.snapshot_path(self.step)] if keep else []))
                self._write_log()
        bar.close()
        if self.dist.world > 1:
            dist.barrier()
        return self.history

    def _write_log(self) -> None:
        if not self.dist.main:
            return
        log = "".join(json.dumps(r) + "\n" for r in self.history)
        meta = {
            "ressrdiff_version": __version__,
            "config": self.cfg.to_dict(),
            "loss": getattr(self.method, "loss_description", ""),
            "step": self.step,
            "device": str(self.device),
            "world_size": self.dist.world,
        }
        write_files(
            [
                text_output(self.out / "log.jsonl", log),
                text_output(self.out / "run.json", json.dumps(meta, indent=2)),
            ]
        )


def build_dataset(cfg: RunConfig):
    """The training patch dataset described by ``cfg.data``."""
    from .data.training_data import patch_dataset_from_config

    return patch_dataset_from_config(cfg.data, seed=cfg.seed)
