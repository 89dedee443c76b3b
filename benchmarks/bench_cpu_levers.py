"""CPU speed levers for Res-SRDiff inference (issue 19), as ratios to the reference path in one run.

Part 1, slices: each lever runs the same model with K steps on the same 256 x 256 slices
(validation slices of the default data set, padded with background to 256 x 256) and reports the
median seconds per slice after a warm-up, the implied seconds for 256 such slices, the speed-up
over the reference path (fp32, ``torch.no_grad``, one slice per call, the model's own ``infer``
window setting), and the masked PSNR of its output against the reference output (brain mask, dB
on [-1, 1]; inf: identical). Every lever samples at ``temperature=0`` (no noise draws;
:func:`ressrdiff.diffusion.sample`), so the output is a function of the input alone and only
numerical differences separate the levers.

``--onnx`` adds a lever that runs the U-Net as a graph exported with ``torch.onnx.export``
(dynamo) under ONNX Runtime's CPU execution provider, fp32, when ``onnxruntime``, ``onnx`` and
``onnxscript`` are installed (they are not dependencies of the package: see chapter 11 for why).
The graph is exported once per input shape, in the warm-up, and the export time is printed.

Part 2, ``--volume``: the whole validation head (256 axial slices), its LR simulated with the
model's degradation, super-resolved by :func:`ressrdiff.inference.super_resolve_volume` as
``ressrdiff sr`` does: the reference path (``--reference-path``: fp32, every slice) against the
fast path (bf16 where native, background slices copied) on one plane (``ressrdiff sr --planes
axial``), and with ``--fusion`` across three planes (``ressrdiff sr``'s default for a model whose
``infer.planes`` names them, as the shipped default model's does). Wall seconds per volume,
and masked PSNR (brain mask, the volume mapped to [-1, 1] by the HR's 0.5/99.5 percentiles in
the mask) against the reference output. ``--json`` writes every table with its setting.

    python benchmarks/bench_cpu_levers.py models/acquisition-cpu-exposure.safetensors --volume
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import SimpleITK as sitk
import torch

from ressrdiff.atomic import text_output, write_files
from ressrdiff.devices import cpu_has_native_bf16
from ressrdiff.diagnosis import degrade_like, percentile_unit, split_volume
from ressrdiff.fusion import super_resolve_planes
from ressrdiff.inference import super_resolve_volume
from ressrdiff.levers import LEVERS, lever_table, masked_psnr, validation_input
from ressrdiff.methods import load_method
from ressrdiff.timing import machine_description

SIZE = 256


class OrtNet(torch.nn.Module):
    """``net(x, x_lr, t)`` run by ONNX Runtime (CPU execution provider, ``threads`` intra-op
    threads): ``net`` is exported once per input shape on first use (``export_seconds`` sums
    those exports)."""

    def __init__(self, net: torch.nn.Module, folder: Path, threads: int):
        super().__init__()
        import onnxruntime as ort

        self.ort, self.net_ref, self.folder = ort, [net], folder  # a list: not a submodule
        self.threads, self.sessions, self.export_seconds = threads, {}, 0.0

    def _session(self, x: torch.Tensor, x_lr: torch.Tensor, t: torch.Tensor):
        key = tuple(x.shape)
        if key not in self.sessions:
            t0 = time.perf_counter()
            path = self.folder / f"unet-{'x'.join(map(str, key))}.onnx"
            torch.onnx.export(
                self.net_ref[0],
                (x.float(), x_lr.float(), t),
                str(path),
                dynamo=True,
                input_names=["x", "x_lr", "t"],
                verbose=False,
            )
            so = self.ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = self.threads, 1
            self.sessions[key] = self.ort.InferenceSession(
                str(path), so, providers=["CPUExecutionProvider"]
            )
            self.export_seconds += time.perf_counter() - t0
        return self.sessions[key]

    def forward(self, x: torch.Tensor, x_lr: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sess = self._session(x, x_lr, t)
        feed = {"x": x.float().numpy(), "x_lr": x_lr.float().numpy(), "t": t.numpy()}
        return torch.from_numpy(sess.run(None, feed)[0])


def slice_levers(m, a) -> tuple[pd.DataFrame, float | None]:
    """The lever table and the ONNX export seconds (None without ``--onnx``)."""
    x, mask = validation_input(m, a.slices, SIZE)
    if not cpu_has_native_bf16():
        print("note: this CPU has no native bf16; the bf16 rows run in fp32")
    levers = dict(LEVERS)
    ort_net = None
    if a.onnx:
        try:
            ort_net = OrtNet(m.net, Path(tempfile.mkdtemp(prefix="ressrdiff-onnx-")), a.threads)
        except ImportError as err:
            print(f"note: --onnx needs onnxruntime, onnx and onnxscript ({err}); row skipped")
        else:
            levers["whole slices, ONNX Runtime fp32"] = {
                "batch": 8,
                "inference_mode": True,
                "window": None,
                "net": ort_net,
            }
    df = lever_table(m, x, mask, steps=a.steps, repeats=a.repeats, levers=levers)
    if ort_net is None:
        return df, None
    print(f"ONNX export + session setup (once per shape): {ort_net.export_seconds:.1f} s")
    return df, ort_net.export_seconds


def volume_levers(m, a) -> tuple[pd.DataFrame, str]:
    """The whole-volume table and which volume it ran on."""
    subject, hr, mask = split_volume(m, "val")
    if a.slab:  # the central slab of that many axial slices (a quick check of the script)
        z0 = max(0, (hr.GetSize()[2] - a.slab) // 2)
        hr, mask = hr[:, :, z0 : z0 + a.slab], mask[z0 : z0 + a.slab]
    lr = degrade_like(m, hr)
    ref_hr = sitk.GetArrayFromImage(hr)
    unit = percentile_unit(ref_hr, mask)

    common = dict(steps=a.steps, progress=False, device="cpu")
    paths: dict[str, Callable[[dict], sitk.Image]] = {
        "reference path (fp32, every slice)": lambda st: super_resolve_volume(
            m, lr, bf16=False, skip_background=False, channels_last=False, stats=st, **common
        )[0],
        "one plane (bf16 if native, background copied)": lambda st: super_resolve_volume(
            m, lr, stats=st, **common
        )[0],
    }
    if a.fusion:
        paths["3-plane mean fusion (sr default with infer.planes)"] = lambda st: (
            super_resolve_planes(m, lr, stats=st, **common)[0]
        )
    rows, ref = [], None
    for name, fn in paths.items():
        st: dict[str, int] = {}
        t0 = time.perf_counter()
        out = unit(sitk.GetArrayFromImage(fn(st)))
        s = time.perf_counter() - t0
        ref = out if ref is None else ref
        rows.append(
            {
                "path": name,
                "slices": st["slices"],
                "sampled": st["network_slices"],
                "s_per_volume": s,
                "masked_psnr_vs_reference_db": masked_psnr(out, ref, mask),
                "gain_over_bspline_db": masked_psnr(out, unit(ref_hr), mask)
                - masked_psnr(unit(sitk.GetArrayFromImage(lr)), unit(ref_hr), mask),
            }
        )
    df = pd.DataFrame(rows)
    df["ratio"] = df["s_per_volume"].iloc[0] / df["s_per_volume"]
    which = f"{subject} (validation), {'x'.join(map(str, hr.GetSize()))}"
    print(f"volume: {which}")
    return df, which


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-slices", dest="slice_levers", action="store_false")
    ap.add_argument("--onnx", action="store_true", help="add the ONNX Runtime lever")
    ap.add_argument("--volume", action="store_true", help="part 2: the whole validation head")
    ap.add_argument("--fusion", action="store_true", help="part 2 adds 3-plane fusion")
    ap.add_argument("--slab", type=int, default=0, help="part 2 on this many central slices")
    ap.add_argument("--json", type=Path, help="also write the tables and the setting here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = load_method(a.checkpoint, device="cpu")
    pd.set_option("display.width", 200)
    print(
        f"{a.checkpoint}: K={a.steps}, {a.threads} threads, {machine_description()}, native "
        f"bf16: {cpu_has_native_bf16()}; model infer window: {m.cfg.infer.window}"
    )
    result: dict = {
        "checkpoint": a.checkpoint,
        "steps": a.steps,
        "threads": a.threads,
        "interop_threads": torch.get_num_interop_threads(),
        "machine": machine_description(),
        "native_bf16": cpu_has_native_bf16(),
        "torch": torch.__version__,
        "command": "python benchmarks/bench_cpu_levers.py " + " ".join(argv or sys.argv[1:]),
    }
    if a.slice_levers:
        df, onnx_export_s = slice_levers(m, a)
        print(f"{a.slices} slices of {SIZE}x{SIZE}; median of {a.repeats} after a warm-up")
        print(df.round(3).to_string(index=False))
        result.update(slices=a.slices, size=SIZE, repeats=a.repeats)
        result["levers"] = df.to_dict(orient="records")
        result["onnx_export_s"] = onnx_export_s
    if a.volume:
        vol, which = volume_levers(m, a)
        print(vol.round(3).to_string(index=False))
        result["volume"] = vol.to_dict(orient="records")
        result["volume_subject"] = which
    if a.json:
        write_files([text_output(a.json, json.dumps(result, indent=1, default=float))])
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
