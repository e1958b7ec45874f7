#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the PyTorch fixtures under tests/golden/ (run with Debian's python3-torch: /usr/bin/python3).

attention/<case>/: float32 inputs q, k, v, dout (and bias), and float64 expectations out, lse, dq, dk, dv
(and dbias) computed by PyTorch in float64 from those same float32 values: softmax(q kᵀ·scale + mask) v,
gradients by autograd of sum(out ⊙ dout). The mask is built here, densely, by code written independently
of attn's C++ (from the rules in include/attn/ops/attention.h). meta.json holds the mask parameters, the
matching `attn attend` flags, and the generator versions.
layer_norm/: torch.nn.functional.layer_norm forward and gradients.
npy/: arrays written by NumPy itself (np.save), for the .npy reader's tests.

Deterministic: same seeds, same files (up to NumPy's header padding, which is stable).
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
torch.set_default_dtype(torch.float64)


def alibi_slopes(n):
    """Press et al.'s reference slopes (power of two, else the interleaved completion)."""
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return pow2(n)
    p = 2 ** math.floor(math.log2(n))
    return pow2(p) + alibi_slopes(2 * p)[0::2][: n - p]


def visible(m, b, t, s):
    p = t + m.get("query_offset", 0)
    if m.get("causal") and s > p:
        return False
    wl, wr = m.get("window_left", -1), m.get("window_right", -1)
    if wl >= 0 and s < p - wl:
        return False
    if wr >= 0 and s > p + wr:
        return False
    d = m.get("dilation", 1)
    if d > 1 and (p - s) % d != 0:  # Python's % is already the floor modulo
        return False
    c = m.get("chunk_size", 0)
    if c > 0:
        left = m.get("num_left_chunks", -1)
        if s // c > p // c or (left >= 0 and s // c < p // c - left):
            return False
    lengths = m.get("key_lengths")
    if lengths and s >= lengths[b]:
        return False
    return True


def cli_args(m, scale):
    args = []
    if m.get("causal"):
        args.append("--causal")
    if m.get("window_left", -1) >= 0 or m.get("window_right", -1) >= 0:
        args.append("--window=%d,%d" % (m.get("window_left", -1), m.get("window_right", -1)))
    if m.get("dilation", 1) > 1:
        args.append("--dilation=%d" % m["dilation"])
    if m.get("chunk_size", 0) > 0:
        args.append("--chunk=%d,%d" % (m["chunk_size"], m.get("num_left_chunks", -1)))
    if m.get("key_lengths"):
        args.append("--key-lengths=" + ",".join(str(x) for x in m["key_lengths"]))
    if m.get("alibi"):
        args.append("--alibi")
    if m.get("query_offset", 0):
        args.append("--query-offset=%d" % m["query_offset"])
    if scale is not None:
        args.append("--scale=%r" % scale)
    return args


def attention_case(name, seed, B, NH, NH_kv, T, S, HS, HSV, mask, scale=None, bias_shape=None):
    g = torch.Generator().manual_seed(seed)
    f32 = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float32)
    q, k, v = f32(B, NH, T, HS), f32(B, NH_kv, S, HS), f32(B, NH_kv, S, HSV)
    dout = f32(B, NH, T, HSV)
    bias = f32(*bias_shape) if bias_shape else None

    Q, K, V = (x.double().requires_grad_() for x in (q, k, v))
    Bias = bias.double().requires_grad_() if bias is not None else None
    used_scale = scale if scale is not None else 1.0 / math.sqrt(HS)
    allowed = torch.tensor([[[[visible(mask, b, t, s) for s in range(S)] for t in range(T)]
                             for _ in range(NH)] for b in range(B)])
    add = torch.zeros(B, NH, T, S)
    if mask.get("alibi"):
        slopes = alibi_slopes(NH)
        off = mask.get("query_offset", 0)
        for h in range(NH):
            for t in range(T):
                for s in range(S):
                    add[:, h, t, s] = -slopes[h] * abs(t + off - s)
    group = NH // NH_kv
    Kx, Vx = K.repeat_interleave(group, dim=1), V.repeat_interleave(group, dim=1)
    scores = used_scale * Q @ Kx.transpose(-1, -2) + add
    if Bias is not None:
        scores = scores + Bias
    scores = scores.masked_fill(~allowed, -math.inf)
    fully = torch.isneginf(scores).all(dim=-1, keepdim=True)
    safe = torch.where(fully, torch.zeros_like(scores), scores)  # keeps autograd NaN-free
    probs = torch.where(fully, torch.zeros_like(safe), torch.softmax(safe, dim=-1))
    out = probs @ Vx
    lse = torch.where(fully.squeeze(-1), torch.full_like(fully.squeeze(-1), -math.inf, dtype=torch.float64),
                      torch.logsumexp(safe, dim=-1))
    (out * dout.double()).sum().backward()

    d = os.path.join(ROOT, "attention", name)
    os.makedirs(d, exist_ok=True)
    arrays = {"q": q, "k": k, "v": v, "dout": dout, "out": out, "lse": lse, "dq": Q.grad, "dk": K.grad,
              "dv": V.grad}
    if bias is not None:
        arrays.update(bias=bias, dbias=Bias.grad)
    for key, value in arrays.items():
        np.save(os.path.join(d, key + ".npy"), value.detach().numpy())
    meta = {"case": name, "shape": {"B": B, "NH": NH, "NH_kv": NH_kv, "T": T, "S": S, "HS": HS, "HSV": HSV},
            "mask": mask, "alibi_slopes": alibi_slopes(NH) if mask.get("alibi") else None,
            "scale": used_scale, "has_bias": bias is not None, "cli_args": cli_args(mask, scale),
            "generator": generator_info()}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def layer_norm_case():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 5, 8, generator=g, dtype=torch.float32)
    w = torch.randn(8, generator=g, dtype=torch.float32)
    b = torch.randn(8, generator=g, dtype=torch.float32)
    dout = torch.randn(3, 5, 8, generator=g, dtype=torch.float32)
    X, W, Bb = (t.double().requires_grad_() for t in (x, w, b))
    out = torch.nn.functional.layer_norm(X, (8,), W, Bb, eps=1e-5)
    (out * dout.double()).sum().backward()
    d = os.path.join(ROOT, "layer_norm")
    os.makedirs(d, exist_ok=True)
    for key, value in {"x": x, "weight": w, "bias": b, "dout": dout, "out": out, "dx": X.grad, "dweight": W.grad,
                       "dbias": Bb.grad}.items():
        np.save(os.path.join(d, key + ".npy"), value.detach().numpy())
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"eps": 1e-5, "generator": generator_info()}, f, indent=1, sort_keys=True)
        f.write("\n")


def npy_cases():
    d = os.path.join(ROOT, "npy")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "f4_2x3.npy"), np.arange(6, dtype="<f4").reshape(2, 3) * 0.5)
    np.save(os.path.join(d, "f8_4.npy"), np.array([1.5, -2.25, 1e300, -0.0], dtype="<f8"))
    np.save(os.path.join(d, "i4_2x2.npy"), np.array([[1, -2], [3, 2147483647]], dtype="<i4"))
    np.save(os.path.join(d, "i8_3.npy"), np.array([0, -9007199254740993, 42], dtype="<i8"))
    np.save(os.path.join(d, "bool_2x2.npy"), np.array([[True, False], [False, True]]))
    np.save(os.path.join(d, "f4_scalar.npy"), np.array(3.25, dtype="<f4"))
    np.save(os.path.join(d, "f4_empty_0x3.npy"), np.zeros((0, 3), dtype="<f4"))
    with open(os.path.join(d, "f4_v2_2x2.npy"), "wb") as f:
        np.lib.format.write_array(f, np.array([[1, 2], [3, 4]], dtype="<f4"), version=(2, 0))
    np.save(os.path.join(d, "f4_fortran_2x3.npy"), np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    np.save(os.path.join(d, "f4_bigendian_3.npy"), np.arange(3, dtype=">f4"))
    np.save(os.path.join(d, "u2_3.npy"), np.arange(3, dtype="<u2"))


def generator_info():
    return {"script": "scripts/gen_golden.py", "torch": torch.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def main():
    for sub in ("attention", "layer_norm", "npy"):
        shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    attention_case("basic", 1, B=2, NH=2, NH_kv=2, T=5, S=7, HS=4, HSV=4, mask={})
    attention_case("causal", 2, B=1, NH=3, NH_kv=3, T=6, S=6, HS=8, HSV=8, mask={"causal": True})
    attention_case("window_dilation", 3, B=2, NH=2, NH_kv=1, T=9, S=9, HS=4, HSV=3,
                   mask={"window_left": 4, "window_right": 2, "dilation": 2})
    attention_case("chunk_key_lengths", 4, B=2, NH=2, NH_kv=2, T=8, S=8, HS=5, HSV=5,
                   mask={"chunk_size": 3, "num_left_chunks": 1, "key_lengths": [8, 5]})
    attention_case("alibi_gqa_scale", 5, B=1, NH=4, NH_kv=2, T=6, S=10, HS=6, HSV=6,
                   mask={"alibi": True, "query_offset": 4}, scale=0.3)
    attention_case("bias_padding_empty_row", 6, B=2, NH=2, NH_kv=2, T=4, S=6, HS=3, HSV=2,
                   mask={"key_lengths": [6, 0]}, bias_shape=(1, 2, 4, 6))
    attention_case("causal_window_bottom_right", 7, B=2, NH=2, NH_kv=2, T=3, S=8, HS=4, HSV=4,
                   mask={"causal": True, "window_left": 2, "query_offset": 5, "key_lengths": [8, 7]})
    layer_norm_case()
    npy_cases()
    print("wrote fixtures under", os.path.normpath(ROOT))


if __name__ == "__main__":
    main()
