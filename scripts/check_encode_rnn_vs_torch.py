#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""`attn encode` on exported torch.nn.LSTM / GRU modules against PyTorch (float64): a 2-layer bidirectional
batch-first GRU and a 1-layer sequence-first LSTM, both with variable lengths, output and h_n.
Exit 0 if max |attn - torch| <= 1e-5, 1 if not, 77 (ctest's skip code) if torch is not installed.

    /usr/bin/python3 scripts/check_encode_rnn_vs_torch.py [ATTN_BINARY]
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
        print("check_encode_rnn_vs_torch: skipped, torch/numpy not installed (scripts/install-deps.sh)")
        return 77
    attn = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "release", "bin", "attn")
    worst = 0.0
    cases = [["--kind", "gru", "--num-layers", "2", "--bidirectional", "--batch-first"], ["--kind", "lstm"]]
    with tempfile.TemporaryDirectory() as d:
        for extra in cases:
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "export_torch_rnn.py"), "--out-dir", d,
                            "--input-size", "24", "--hidden-size", "40", "--example", "3,60", "--lengths", "60,9,31",
                            *extra], check=True, capture_output=True)
            subprocess.run([attn, "encode", "--config", f"{d}/config.json", "--weights", f"{d}/weights.safetensors",
                            "--input", f"{d}/input.npy", "--out", f"{d}/out.npy", "--state-out", f"{d}/h_n.npy",
                            "--lengths", "60,9,31"], check=True)
            err = max(float(np.abs(np.load(f"{d}/out.npy") - np.load(f"{d}/expected.npy")).max()),
                      float(np.abs(np.load(f"{d}/h_n.npy") - np.load(f"{d}/expected_h_n.npy")).max()))
            print(f"{' '.join(extra)}: 3 sequences of up to 60 steps, lengths 60,9,31: max |attn - torch| = {err:.3g}")
            worst = max(worst, err)
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
