"""Shipped models: safetensors export, loading, the float16 rule, the manifest and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SyntheticPairs, tiny_config, write_npz_run

from ressrdiff.checkpoint import CheckpointError
from ressrdiff.cli import main as cli_main
from ressrdiff.methods import load_method
from ressrdiff.shipping import export_model, read_shipped, update_manifest, verify_manifest
from ressrdiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny Res-SRDiff checkpoint with EMA weights, trained 3 steps."""
    root = tmp_path_factory.mktemp("ship")
    tr = Trainer(tiny_config(**{"train.steps": 3}), root, dataset=SyntheticPairs(), progress=False)
    tr.train()
    return root / "last.pt"


def _sr(method, x):
    with torch.no_grad():
        return method.super_resolve(x, generator=torch.Generator().manual_seed(0))


def test_float32_export_reproduces_the_checkpoint_exactly(run, tmp_path):
    entry = export_model(run, tmp_path / "m.safetensors", dtype="float32")
    assert entry["dtype"] == "float32" and entry["weights"] == "ema"
    a, b = load_method(run), load_method(tmp_path / "m.safetensors")
    assert b.weights == "ema" and b.trained_step == a.trained_step == 3
    x = SyntheticPairs(n=2).lr
    assert torch.equal(_sr(a, x), _sr(b, x))


def test_export_is_byte_reproducible(run, tmp_path):
    """Two exports of one checkpoint are the same bytes (safetensors alone orders its header
    keys at random), and the canonical file still loads."""
    ckpt = run
    a = export_model(ckpt, tmp_path / "a.safetensors", dtype="float32")
    b = export_model(ckpt, tmp_path / "b.safetensors", dtype="float32")
    assert a["sha256"] == b["sha256"]
    assert load_method(tmp_path / "a.safetensors").signature() == load_method(ckpt).signature()


def test_export_records_the_inference_window_and_the_model_uses_it(run, tmp_path):
    entry = export_model(
        run, tmp_path / "w.safetensors", dtype="float32", infer={"window": 16, "overlap": 0.25}
    )
    assert entry["config"]["infer"] == {"window": 16, "overlap": 0.25, "sw_batch_size": 8}
    a, b = load_method(run), load_method(tmp_path / "w.safetensors")
    assert a.cfg.infer.window is None and b.cfg.infer.window == 16
    x = torch.nn.functional.interpolate(SyntheticPairs(n=2).lr, size=(40, 40))
    assert torch.equal(_sr(b, x), _tiled(a, x, 16, 0.25))
    assert not torch.equal(_sr(b, x), _sr(a, x))  # the U-Net is not pointwise
    with pytest.raises(ValueError, match="infer.window") as info:
        export_model(run, tmp_path / "bad.safetensors", infer={"window": "big"})
    assert "\n" not in str(info.value) and not (tmp_path / "bad.safetensors").exists()


def _tiled(method, x, window, overlap):
    with torch.no_grad():
        return method.super_resolve(
            x, generator=torch.Generator().manual_seed(0), window=window, overlap=overlap
        )


def test_raw_weights_export_differs_from_ema(run, tmp_path):
    entry = export_model(run, tmp_path / "r.safetensors", dtype="float32", weights="raw")
    assert entry["weights"] == "raw"
    raw, ema = load_method(run, use_ema=False), load_method(tmp_path / "r.safetensors")
    x = SyntheticPairs(n=2).lr
    assert torch.equal(_sr(raw, x), _sr(ema, x))
    assert not torch.equal(_sr(load_method(run), x), _sr(ema, x))


def test_float16_export_halves_the_file_and_stays_close(run, tmp_path):
    e16 = export_model(run, tmp_path / "h.safetensors", dtype="float16")
    e32 = export_model(run, tmp_path / "f.safetensors", dtype="float32")
    assert e16["bytes"] < 0.6 * e32["bytes"]
    x = SyntheticPairs(n=2).lr
    ref, half = _sr(load_method(run), x), _sr(load_method(tmp_path / "h.safetensors"), x)
    mse = float(((ref - half) ** 2).mean())
    psnr = 10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-30)))
    assert psnr > 50  # on [-1, 1]
    assert e16["dtype_check"]["fp16_vs_fp32_psnr_db"] > 50


def test_auto_falls_back_to_float32_when_float16_loses_accuracy(run, tmp_path):
    entry = export_model(run, tmp_path / "a.safetensors", dtype="auto", tol_db=1e9)
    assert entry["dtype"] == "float32"
    entry = export_model(run, tmp_path / "b.safetensors", dtype="auto", tol_db=0.0)
    assert entry["dtype"] == "float16"


def test_shipped_model_keeps_config_and_signature(run, tmp_path):
    export_model(run, tmp_path / "m.safetensors")
    ck = read_shipped(tmp_path / "m.safetensors")
    assert ck["config"]["schedule"]["preset"] == "paper"
    # a shipped model is checked against an expected config like a checkpoint
    with pytest.raises(CheckpointError, match="does not match"):
        load_method(
            tmp_path / "m.safetensors", expect=tiny_config(**{"schedule.preset": "authors-code"})
        )


def test_bad_model_files_give_one_line_errors(run, tmp_path):
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.safetensors: not a readable safetensors"):
        load_method(text)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "other"})
    with pytest.raises(CheckpointError, match="foreign.safetensors: not a ressrdiff model"):
        load_method(foreign)
    with pytest.raises(CheckpointError, match="model file not found"):
        load_method(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="must end in .safetensors"):
        export_model(run, tmp_path / "m.pt")


def test_manifest_update_replaces_and_verify_catches_tampering(run, tmp_path):
    man = tmp_path / "manifest.json"
    e = export_model(run, tmp_path / "m.safetensors")
    update_manifest(man, e)
    update_manifest(man, e)  # same file again: replaced, not duplicated
    assert len(json.loads(man.read_text())["models"]) == 1
    assert verify_manifest(man) == []
    (tmp_path / "m.safetensors").write_bytes(b"x" + (tmp_path / "m.safetensors").read_bytes())
    assert verify_manifest(man) == [
        f"{tmp_path / 'm.safetensors'}: sha256 differs from manifest.json"
    ]


def test_cli_export_writes_model_and_manifest_entry(tmp_path, capsys):
    cfg, _ = write_npz_run(tmp_path, steps=2, batch=4, n=8)
    assert cli_main(["train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out, man = tmp_path / "ship" / "r.safetensors", tmp_path / "ship" / "manifest.json"
    argv = ["export", str(tmp_path / "r" / "last.pt"), "-o", str(out), "--manifest", str(man)]
    assert cli_main(argv) == 0
    entry = json.loads(man.read_text())["models"][0]
    assert entry["file"] == "r.safetensors" and entry["steps"] == 2
    assert entry["data"]["degradation"] == "resample"  # the manifest names the degradation
    assert entry["data"]["source"] == "npz" and entry["export_command"].startswith(
        "ressrdiff export"
    )
    assert out.stat().st_mode & 0o777 == 0o644
    assert (
        cli_main(["export", str(tmp_path / "r" / "last.pt"), "-o", str(tmp_path / "r" / "last.pt")])
        == 2
    )
    assert "must end in .safetensors" in capsys.readouterr().err


def test_committed_models_match_their_manifest():
    man = ROOT / "models" / "manifest.json"
    if not man.exists():
        pytest.skip("no shipped models in this checkout")
    assert verify_manifest(man) == []
    strict = {"parse_constant": lambda c: pytest.fail(f"{man}: {c} is not JSON")}
    doc = json.loads(man.read_text(encoding="utf-8"), **strict)
    for m in doc["models"]:
        assert m["train_command"] and m["export_command"] and m["train_machine"]
        if "kept_from_run" in m:  # a budget-curve checkpoint: the run's wall time, not its own
            assert m["train_wall_s"] is None and f"step {m['steps']} of" in m["kept_from_run"]
        else:
            assert m["train_wall_s"] > 0 or m["steps"] == 0  # bicubic: nothing to train
        assert (ROOT / "models" / m["file"]).stat().st_size == m["bytes"]


def test_the_manifest_names_every_shipped_models_degradation():
    import json
    from pathlib import Path

    from ressrdiff.data.degrade import degradation_of

    doc = json.loads((Path(__file__).parents[1] / "models" / "manifest.json").read_text("utf-8"))
    for entry in doc["models"]:
        trained = degradation_of(entry["config"]["data"])
        assert entry["data"]["degradation"] == trained, entry["file"]
