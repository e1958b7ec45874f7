#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A short tour of `import attn` (run by `make demo`): truncated self-attention on numpy arrays, checked
against PyTorch's own softmax(QKᵀ)V with the same mask as a dense tensor, and the fused backward inside
PyTorch autograd.

    PYTHONPATH=build/release/python /usr/bin/python3 examples/python/tour.py
"""
import time

import numpy as np

import attn

rng = np.random.default_rng(0)
T, NH, HS, W = 2048, 4, 64, 16
q, k, v = (rng.standard_normal((1, NH, T, HS), dtype=np.float32) for _ in range(3))
start = time.perf_counter()
out = attn.scaled_dot_product_attention(q, k, v, window=(W, W))
ms = (time.perf_counter() - start) * 1e3
print(f"attn {attn.__version__} on SIMD target {attn.simd_target()}: window ±{W} over T={T}, {NH} heads: "
      f"{ms:.1f} ms; out[0, 0, 0, :4] = {np.round(out[0, 0, 0, :4], 4)}")

try:
    import torch
except ImportError:
    print("(python3-torch is not installed: skipping the comparison with PyTorch)")
    raise SystemExit(0)
import attn.torch  # noqa: E402

i = torch.arange(T)
dense = torch.zeros(T, T).masked_fill((i[None, :] - i[:, None]).abs() > W, float("-inf"))
qt, kt, vt = (torch.from_numpy(a).double().requires_grad_() for a in (q, k, v))
ref = torch.softmax(qt @ kt.transpose(-1, -2) / HS ** 0.5 + dense.double(), -1) @ vt
print(f"PyTorch float64 softmax(QKᵀ/√d + dense mask)V: max |attn - torch| = "
      f"{np.abs(out - ref.detach().numpy()).max():.2e}  (the T×T mask alone is {T * T * 4 / 2**20:.0f} MiB "
      f"there; attn keeps no T×T tensor)")

x = torch.from_numpy(q).requires_grad_()
attn.torch.scaled_dot_product_attention(x, x, x, window=(W, W)).sum().backward()
ref_x = x.detach().double().requires_grad_()
scores = ref_x @ ref_x.transpose(-1, -2) / HS ** 0.5 + dense.double()
(torch.softmax(scores, -1) @ ref_x).sum().backward()
print(f"gradient through attn.torch (fused backward) vs PyTorch autograd: max |d| = "
      f"{(x.grad.double() - ref_x.grad).abs().max().item():.2e}")
