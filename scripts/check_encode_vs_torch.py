#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The issue's acceptance check: export a torch.nn.TransformerEncoder (2 layers, d_model 256, 8 heads),
run `attn encode` on random 2 x 200 x 256 input with key padding, and compare with PyTorch (float64).
Exit 0 if max |attn - torch| <= 1e-4, 1 if not, 77 (ctest's skip code) if torch is not installed.

    /usr/bin/python3 scripts/check_encode_vs_torch.py [ATTN_BINARY]
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    try:
        import numpy as np
        import torch  # noqa: F401
    except ImportError:
        print("check_encode_vs_torch: skipped, torch/numpy not installed (scripts/install-deps.sh)")
        return 77
    attn = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "release", "bin", "attn")
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for extra in ([], ["--norm-first", "--activation", "gelu", "--final-norm"]):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "export_torch_encoder.py"), "--out-dir", d,
                            "--d-model", "256", "--nhead", "8", "--num-layers", "2", "--example", "2,200",
                            "--key-lengths", "200,131", *extra], check=True, capture_output=True)
            subprocess.run([attn, "encode", "--config", f"{d}/config.json", "--weights", f"{d}/weights.safetensors",
                            "--input", f"{d}/input.npy", "--out", f"{d}/out.npy", "--key-lengths", "200,131"],
                           check=True)
            err = float(np.abs(np.load(f"{d}/out.npy") - np.load(f"{d}/expected.npy")).max())
            print(f"2x200x256, 2 layers{' ' + ' '.join(extra) if extra else ' (post-norm, relu)'}: "
                  f"max |attn - torch| = {err:.3g}")
            worst = max(worst, err)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
