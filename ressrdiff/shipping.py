"""Shipped models: trained weights as small safetensors files plus a manifest of provenance.

A training checkpoint (``last.pt``) holds the optimiser, RNG states and both raw and EMA weights,
so it is several times larger than what inference needs. :func:`export_model` keeps only the
weights inference uses (EMA when present, as :func:`~ressrdiff.methods.load_method` does), stores
them in float16 when that keeps the method's output within ``tol_db`` of float32 (else float32),
and writes them atomically with the run's config in the safetensors metadata. The manifest
(``models/manifest.json``) records, per file: method, config, data split and hashes, steps, wall
time, machine, package version, the sha256 of the file and the commands that reproduce it.

``load_method`` reads a ``.safetensors`` file written here exactly like a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .atomic import bytes_output, write_files
from .checkpoint import load_checkpoint
from .data.prepare import file_sha256
from .methods.loading import load_method
from .model_file import MODEL_FORMAT, _flatten, read_shipped

__all__ = [
    "MODEL_FORMAT",
    "export_model",
    "read_shipped",
    "update_manifest",
    "verify_manifest",
    "data_provenance",
]


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted.

    ``safetensors`` writes the header from a hash map, so the order of its keys (and the file's
    sha256) changes from one call to the next. Sorting the keys keeps every byte offset: the
    header's length is unchanged (it is padded with spaces, as safetensors pads it)."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(text) > n:  # cannot happen for a header written by safetensors; keep the original
        return blob
    return blob[:8] + text.ljust(n, b" ") + blob[8 + n :]


def _atomic_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` verified and atomically (:mod:`ressrdiff.atomic`), readable by all."""
    write_files([bytes_output(path, data, mode=0o644)])


def _probe_input(seed: int = 0, size: int = 32) -> torch.Tensor:
    """A smooth, brain-like test batch in [-1, 1] for the float16 check (no data needed)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    blob = (1 - (xx**2 + (yy / 1.2) ** 2)).clamp(min=0).sqrt()
    tex = torch.nn.functional.avg_pool2d(torch.randn(2, 1, size, size, generator=g), 5, 1, 2)
    return (blob * (0.6 + 2.0 * tex) * 2 - 1).clamp(-1, 1)


def _psnr_between(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(4.0 / mse))


def export_model(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dtype: str = "auto",
    tol_db: float = 50.0,
    weights: str = "ema",
    infer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the inference weights of ``checkpoint`` to ``out`` (``.safetensors``).

    ``dtype`` 'float16', 'float32', or 'auto': float16 if the method's output on a probe batch
    stays within ``tol_db`` dB PSNR (on [-1, 1]) of its float32 output, else float32. Returns the
    manifest entry (without the fields only the caller knows: commands, wall time, machine).
    ``weights`` 'ema' (the EMA weights when the checkpoint has them, else the raw ones) or 'raw'
    (the optimised weights, as the authors' inference loads them). ``infer`` sets the exported
    config's inference section (:class:`ressrdiff.config.InferConfig`, e.g. ``{"window":
    "auto"}``: sliding windows of the training patch), chosen after training on validation data;
    the weights are unchanged.
    """
    from safetensors.torch import save

    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: the output must end in .safetensors")
    if out.resolve() == checkpoint.resolve():
        raise ValueError(f"{out}: refusing to overwrite the input checkpoint")
    if dtype not in ("auto", "float16", "float32"):
        raise ValueError(f"dtype {dtype!r}: use auto, float16 or float32")
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights {weights!r}: use ema or raw")
    ckpt = load_checkpoint(checkpoint)
    if infer:
        from .config import ConfigError, RunConfig

        cfg = RunConfig.from_dict(ckpt["config"], where=str(checkpoint))
        try:
            cfg = cfg.replace(**{f"infer.{k}": v for k, v in infer.items()})
        except ConfigError as e:
            raise ValueError(f"export: {e}") from None
        ckpt["config"] = cfg.to_dict()
    method = load_method(checkpoint, use_ema=weights == "ema")
    weights = method.weights
    nets = {name: net.state_dict() for name, net in method.networks().items()}
    check: dict[str, Any] = {}
    chosen = dtype
    if dtype in ("auto", "float16"):
        x = _probe_input()
        with torch.no_grad():
            ref = method.super_resolve(x, generator=torch.Generator().manual_seed(0))
            half = load_method(checkpoint, use_ema=weights == "ema")
            for net in half.networks().values():
                net.half().float()  # round-trip the weights through float16
            y = half.super_resolve(x, generator=torch.Generator().manual_seed(0))
        psnr = _psnr_between(ref, y)
        # JSON has no infinity: identical outputs (e.g. no weights at all) are recorded as None
        check = {
            "fp16_vs_fp32_psnr_db": round(psnr, 2) if np.isfinite(psnr) else None,
            "identical": not np.isfinite(psnr),
            "tol_db": tol_db,
        }
        if dtype == "auto":
            chosen = "float16" if psnr >= tol_db else "float32"
    torch_dtype = torch.float16 if chosen == "float16" else torch.float32
    flat = {
        k: (v.to(torch_dtype) if v.is_floating_point() else v).contiguous()
        for k, v in _flatten(nets).items()
    }
    meta = {
        "format": MODEL_FORMAT,
        "ressrdiff_version": __version__,
        "config": json.dumps(ckpt["config"], sort_keys=True),
        "signature": json.dumps(ckpt.get("signature", {}), sort_keys=True),
        "step": str(int(ckpt.get("step", 0))),
        "weights": weights,
        "loss": str(ckpt.get("loss", "")),
        "source_checkpoint_sha256": file_sha256(checkpoint),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_bytes(canonical_safetensors(save(flat, metadata=meta)), out)
    return {
        "file": out.name,
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
        "dtype": chosen,
        "dtype_check": check,
        "method": method.name,
        "config_name": ckpt["config"].get("name"),
        "config": ckpt["config"],
        "steps": int(ckpt.get("step", 0)),
        "weights": weights,
        "loss": meta["loss"],
        "parameters": sum(p.numel() for n in method.networks().values() for p in n.parameters()),
        "ressrdiff_version": __version__,
        "source_checkpoint_sha256": meta["source_checkpoint_sha256"],
    }


def data_provenance(cfg: dict[str, Any]) -> dict[str, Any]:
    """The data a run trained on: source, preset, degradation (``"resample"`` for configs
    without the field), re-gridding and, for the default data set or a manifest, every subject's
    role and the sha256 of its HR file (the split training used)."""
    from .data.degrade import degradation_of
    from .data.manifest import assign_roles, read_subjects
    from .data.prepare import prepare_dataset

    data = cfg.get("data", {})
    prov: dict[str, Any] = {
        k: data.get(k) for k in ("source", "path", "preset", "regrid", "axis", "patch")
    }
    prov["degradation"] = degradation_of(data)
    if data.get("source") in ("default", "manifest"):
        src = (
            prepare_dataset("default") / "manifest.csv"
            if data.get("source") == "default"
            else data.get("path")
        )
        entries = assign_roles(read_subjects(src), 0.1, 0.2, int(cfg.get("seed", 0)))
        prov["subjects"] = [
            {"subject": e.subject, "role": e.role, "hr_sha256": file_sha256(e.hr_path)}
            for e in entries
        ]
    return prov


def update_manifest(manifest: str | Path, entry: dict[str, Any]) -> Path:
    """Insert or replace ``entry`` (keyed by its ``file``) in the JSON manifest, atomically."""
    manifest = Path(manifest)
    doc = (
        json.loads(manifest.read_text(encoding="utf-8"))
        if manifest.exists()
        else {"format": "ressrdiff-manifest/1", "models": []}
    )
    doc["models"] = [m for m in doc["models"] if m["file"] != entry["file"]] + [entry]
    doc["models"].sort(key=lambda m: m["file"])
    manifest.parent.mkdir(parents=True, exist_ok=True)
    _atomic_bytes((json.dumps(doc, indent=1) + "\n").encode("utf-8"), manifest)
    return manifest


def verify_manifest(manifest: str | Path) -> list[str]:
    """Problems with the files a manifest lists (missing, or sha256 differs); [] if none."""
    manifest = Path(manifest)
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    problems = []
    for m in doc["models"]:
        f = manifest.parent / m["file"]
        if not f.is_file():
            problems.append(f"{f}: listed in {manifest.name} but missing")
        elif file_sha256(f) != m["sha256"]:
            problems.append(f"{f}: sha256 differs from {manifest.name}")
    return problems
