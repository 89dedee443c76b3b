"""The validation ablation table: rows differ in their lever only, and the test head is refused."""

from __future__ import annotations

import numpy as np
import pytest

from ressrdiff.ablation import AblationRow, ablation_table, refuse_test_subject
from ressrdiff.config import load_config
from ressrdiff.data.slices import MaskedPairedSlices
from ressrdiff.methods import build_method


def _pairs(subject: str = "pydeface-mean", n: int = 2) -> MaskedPairedSlices:
    rng = np.random.default_rng(0)
    hr = rng.uniform(-1, 1, (n, 32, 32)).astype(np.float32)
    lr = (hr + 0.1 * rng.standard_normal(hr.shape)).clip(-1, 1).astype(np.float32)
    mask = np.zeros_like(hr, dtype=bool)
    mask[:, 8:24, 8:24] = True
    return MaskedPairedSlices(
        hr=hr, lr=lr, subject=np.array([subject] * n), index=np.arange(n), mask=mask
    )


def test_rows_share_slices_and_report_their_settings():
    m = build_method(load_config("smoke").replace(**{"loss.lpips": "off"})).eval()
    rows = [
        AblationRow("K1", m, 1, lever="steps"),
        AblationRow("K2-det", m, 2, {"stochasticity": 0.0, "temperature": 0.0}),
    ]
    df = ablation_table(rows, _pairs()).set_index("row")
    assert list(df.index) == ["K1", "K2-det"]
    assert df.loc["K1", "t"] == "15" and df.loc["K2-det", "t"] == "1,15"
    assert df.loc["K1", "eta"] == 1.0 and df.loc["K2-det", "eta"] == 0.0
    assert df.loc["K2-det", "tau"] == 0.0 and df.loc["K1", "lever"] == "steps"
    # the untrained network returns x_LR: zero gain, its spectrum that of the input
    assert np.allclose(df["psnr_gain"], 0.0, atol=1e-4)
    assert (df["s_per_slice"] > 0).all()


def test_test_subject_and_other_data_are_refused():
    with pytest.raises(ValueError, match="refusing to score the test subject"):
        refuse_test_subject(_pairs("pycortex-s1"))
    a = build_method(load_config("smoke").replace(**{"loss.lpips": "off"}))
    b = build_method(load_config("acquisition-cpu").replace(**{"loss.lpips": "off"}))
    with pytest.raises(ValueError, match="not comparable"):
        ablation_table([AblationRow("a", a, 1), AblationRow("b", b, 1)], _pairs())
