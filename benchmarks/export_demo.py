"""Write the demo slice pairs (nearest and B-spline LR) to one .npz for train_eval.py.

python benchmarks/export_demo.py demo.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ressrdiff.data.sources import demo_pairs


def main(path: str) -> None:
    near = demo_pairs("brain-4x", "nearest")
    bspl = demo_pairs("brain-4x", "bspline")
    assert np.array_equal(near["test"].index, bspl["test"].index)
    f16 = np.float16
    np.savez_compressed(
        path,
        train_hr=near["train"].hr.astype(f16),
        train_lr=near["train"].lr.astype(f16),
        test_hr=near["test"].hr.astype(f16),
        test_lr_nearest=near["test"].lr.astype(f16),
        test_lr_bspline=bspl["test"].lr.astype(f16),
        test_index=near["test"].index,
    )
    np.save(Path(path).with_name("demo_test_slice_lr.npy"), near["test"].lr[0])
    print(f"{path}: train {near['train'].hr.shape}, test {near['test'].hr.shape}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo.npz")
