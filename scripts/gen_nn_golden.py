#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the torch.nn module fixtures under tests/golden/nn/ (Debian's python3-torch: /usr/bin/python3).

One safetensors file per case, written by this script's own minimal writer (so attn's reader is also tested
on files it did not write):
  param.<state_dict name>   the module's parameters (float32 values)
  in.<name>                 inputs (float32), including in.dout, the upstream gradient
  out.<name>                the module's outputs, computed by PyTorch in float64 from the float32 values
  grad.in.<name>            gradients of sum(out.y * in.dout) w.r.t. the inputs (float64)
  grad.param.<name>         gradients w.r.t. the parameters (float64)
__metadata__["config"] holds the module's constructor arguments and call options as JSON.
Also writes dtypes.safetensors (F16, BF16, F64 tensors) for the reader's conversion test, and
t5_buckets.safetensors (HF T5 bucket table). Deterministic: fixed seeds.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_writer import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "nn")


def f32(t):
    return t.detach().to(torch.float32).numpy()


def f64(t):
    return t.detach().to(torch.float64).numpy()


def randn(g, *shape):
    """float32 values held in float64 (so the fixture's inputs are exactly representable in float32)."""
    return torch.randn(*shape, generator=g, dtype=torch.float32).to(torch.float64)


def round_params(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.float32).to(torch.float64))


def save_case(name, module, inputs, outputs, dout, config):
    """inputs: dict name -> leaf tensor (requires_grad where a gradient is wanted)."""
    loss = (outputs["y"] * dout).sum()
    loss.backward()
    tensors = [(f"param.{k}", f32(v)) for k, v in module.state_dict().items()]
    tensors += [(f"in.{k}", f32(v)) for k, v in inputs.items()]
    tensors.append(("in.dout", f32(dout)))
    tensors += [(f"out.{k}", f64(v)) for k, v in outputs.items()]
    tensors += [(f"grad.in.{k}", f64(v.grad)) for k, v in inputs.items() if v.grad is not None]
    tensors += [(f"grad.param.{k}", f64(p.grad)) for k, p in module.named_parameters()]
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, {"config": json.dumps(config)})


def case_linear(g):
    m = torch.nn.Linear(7, 5).double()
    round_params(m)
    x = randn(g, 3, 4, 7).requires_grad_()
    save_case("linear", m, {"x": x}, {"y": m(x)}, randn(g, 3, 4, 5), {"in": 7, "out": 5, "bias": True})


def case_layer_norm(g):
    m = torch.nn.LayerNorm(6, eps=1e-5).double()
    with torch.no_grad():
        m.weight.copy_(randn(g, 6))
        m.bias.copy_(randn(g, 6))
    x = (randn(g, 2, 3, 6) * 3 + 1).requires_grad_()
    save_case("layer_norm", m, {"x": x}, {"y": m(x)}, randn(g, 2, 3, 6), {"C": 6, "eps": 1e-5})


def case_activation(g, kind):
    m = torch.nn.ReLU() if kind == "relu" else torch.nn.GELU()
    x = (randn(g, 4, 9) * 2).requires_grad_()
    save_case(kind, m, {"x": x}, {"y": m(x)}, randn(g, 4, 9), {"kind": kind})


def case_mha_self(g):
    C, NH, B, T = 16, 4, 2, 5
    m = torch.nn.MultiheadAttention(C, NH, batch_first=True).double()
    round_params(m)
    x = randn(g, B, T, C).requires_grad_()
    pad = torch.tensor([[False] * T, [False] * 3 + [True] * 2])  # suffix padding -> kernel key lengths
    y, w = m(x, x, x, key_padding_mask=pad, need_weights=True, average_attn_weights=True)
    save_case("mha_self", m, {"x": x, "key_padding_mask": pad.double()}, {"y": y, "weights": w},
              randn(g, B, T, C), {"C": C, "NH": NH, "average_attn_weights": True})


def case_mha_cross(g):
    C, NH, B, T, S = 12, 3, 2, 3, 6
    m = torch.nn.MultiheadAttention(C, NH, batch_first=True).double()
    round_params(m)
    q = randn(g, B, T, C).requires_grad_()
    k = randn(g, B, S, C).requires_grad_()
    v = randn(g, B, S, C).requires_grad_()
    pad = torch.tensor([[False, True, False, False, True, False], [False] * S])  # not a suffix: dense
    attn_mask = randn(g, T, S) * 0.5
    attn_mask[0, 2] = float("-inf")
    y, w = m(q, k, v, key_padding_mask=pad, attn_mask=attn_mask, need_weights=True, average_attn_weights=False)
    save_case("mha_cross", m, {"query": q, "key": k, "value": v, "key_padding_mask": pad.double(),
                               "attn_mask": attn_mask}, {"y": y, "weights": w},
              randn(g, B, T, C), {"C": C, "NH": NH, "average_attn_weights": False})


def encoder_config(d, nhead, ff, activation, norm_first, layers=1, final_norm=False):
    return {"d_model": d, "nhead": nhead, "dim_feedforward": ff, "activation": activation, "norm_first": norm_first,
            "layer_norm_eps": 1e-5, "num_layers": layers, "final_norm": final_norm, "dropout": 0.0}


def make_layer(cfg):
    return torch.nn.TransformerEncoderLayer(cfg["d_model"], cfg["nhead"], cfg["dim_feedforward"], dropout=0.0,
                                            activation=cfg["activation"], layer_norm_eps=cfg["layer_norm_eps"],
                                            batch_first=True, norm_first=cfg["norm_first"])


def case_encoder_layer(g, name, activation, norm_first):
    cfg = encoder_config(16, 4, 24, activation, norm_first)
    m = make_layer(cfg).double()
    round_params(m)
    m.train()  # dropout is 0; train mode keeps PyTorch off its inference fast path
    x = randn(g, 2, 6, 16).requires_grad_()
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    y = m(x, src_key_padding_mask=pad)
    save_case(name, m, {"x": x, "key_padding_mask": pad.double()}, {"y": y}, randn(g, 2, 6, 16), cfg)


def case_encoder(g):
    cfg = encoder_config(16, 2, 32, "gelu", False, layers=2, final_norm=True)
    m = torch.nn.TransformerEncoder(make_layer(cfg), 2, norm=torch.nn.LayerNorm(16)).double()
    round_params(m)
    m.train()
    x = randn(g, 2, 7, 16).requires_grad_()
    pad = torch.tensor([[False] * 7, [False] * 5 + [True] * 2])
    y = m(x, src_key_padding_mask=pad)
    save_case("encoder", m, {"x": x, "key_padding_mask": pad.double()}, {"y": y}, randn(g, 2, 7, 16), cfg)


def t5_bucket(rel, bidirectional, num_buckets, max_distance):
    """HF transformers' T5Attention._relative_position_bucket, on a tensor of relative positions."""
    ret = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).to(torch.long) * num_buckets
        n = torch.abs(rel)
    else:
        n = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = n < max_exact
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(is_small, n, large)


def case_t5_buckets():
    rel = torch.arange(-300, 301)
    write_safetensors(os.path.join(OUT, "t5_buckets.safetensors"), [
        ("relative_position", rel.numpy().astype(np.float32)),
        ("bidirectional_32_128", t5_bucket(rel, True, 32, 128).numpy().astype(np.float32)),
        ("causal_32_128", t5_bucket(rel, False, 32, 128).numpy().astype(np.float32)),
        ("bidirectional_16_64", t5_bucket(rel, True, 16, 64).numpy().astype(np.float32)),
    ])


def case_dtypes(g):
    x = torch.randn(3, 5, generator=g, dtype=torch.float32)
    x[0, 0], x[0, 1], x[0, 2] = float("inf"), -0.0, 6.0e-8  # inf, negative zero, an fp16 subnormal
    bf16 = x.to(torch.bfloat16)
    write_safetensors(os.path.join(OUT, "dtypes.safetensors"), [
        ("f16", x.to(torch.float16).numpy()),
        ("f16_as_f32", x.to(torch.float16).to(torch.float32).numpy()),
        ("bf16", ("BF16", bf16.view(torch.int16).numpy().view(np.uint16))),
        ("bf16_as_f32", bf16.to(torch.float32).numpy()),
        ("f64", x.to(torch.float64).numpy()),
        ("scalar", np.array(2.5, dtype=np.float32)),
        ("empty", np.zeros((0, 3), dtype=np.float32)),
    ], {"made_by": "gen_nn_golden.py"})


def case_cross_entropy(g):
    logits = (randn(g, 6, 5) * 2).requires_grad_()
    targets = torch.tensor([0, 4, -100, 2, 1, 3])
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1)
    loss.backward()
    write_safetensors(os.path.join(OUT, "cross_entropy.safetensors"), [
        ("in.logits", f32(logits)), ("in.targets", targets.numpy().astype(np.float32)),
        ("out.loss", np.array(loss.item())), ("grad.in.logits", f64(logits.grad))],
        {"config": json.dumps({"ignore_index": -100, "label_smoothing": 0.1})})


def case_optimizers(g):
    """Three steps of AdamW and of SGD with momentum on a Linear(4, 3), gradients from a fixed loss."""
    tensors = []
    for kind in ("adamw", "sgd"):
        m = torch.nn.Linear(4, 3).double()
        round_params(m)
        if kind == "adamw":
            opt = torch.optim.AdamW(m.parameters(), lr=0.01, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
        else:
            opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
        tensors += [(f"{kind}.init.{k}", f32(v)) for k, v in m.state_dict().items()]
        x = randn(g, 5, 4)
        tensors.append((f"{kind}.x", f32(x)))
        for step in range(3):
            opt.zero_grad()
            (m(x) ** 2).sum().backward()  # loss = Σ y²
            opt.step()
        tensors += [(f"{kind}.final.{k}", f64(v)) for k, v in m.state_dict().items()]
    write_safetensors(os.path.join(OUT, "optimizers.safetensors"), tensors,
                      {"config": json.dumps({"adamw": {"lr": 0.01, "betas": [0.9, 0.98], "eps": 1e-8,
                                                       "weight_decay": 0.1},
                                             "sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
                                             "loss": "sum(linear(x)^2)", "steps": 3})})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(2026)  # module initialisation draws from the global generator
    g = torch.Generator().manual_seed(2026)
    case_linear(g)
    case_layer_norm(g)
    case_activation(g, "relu")
    case_activation(g, "gelu")
    case_mha_self(g)
    case_mha_cross(g)
    case_encoder_layer(g, "encoder_layer_post_relu", "relu", False)
    case_encoder_layer(g, "encoder_layer_pre_gelu", "gelu", True)
    case_encoder(g)
    case_cross_entropy(g)
    case_optimizers(g)
    case_t5_buckets()
    case_dtypes(g)
    print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
