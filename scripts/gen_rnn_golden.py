#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the torch.nn.LSTM / torch.nn.GRU fixtures under tests/golden/rnn/ (Debian's python3-torch:
/usr/bin/python3 scripts/gen_rnn_golden.py). Deterministic: fixed seeds.

One safetensors file per case, as scripts/gen_nn_golden.py writes them:
  param.<state_dict name>          the module's parameters (float32 values)
  in.x, in.h0, in.c0               inputs (float32); h0/c0 only where the case has an initial state
  in.dout, in.dh_n, in.dc_n        upstream gradients of output, h_n and c_n (float32)
  out.y, out.h_n, out.c_n          PyTorch's outputs in float64 from those float32 values
  grad.in.<name>, grad.param.<name>  gradients of sum(y·dout) + sum(h_n·dh_n) + sum(c_n·dc_n)
__metadata__["config"]: the constructor arguments, the lengths (or null) and whether h0 was given.
Lengths run through pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence(total_length=T),
which is what attn's lengths mean.
"""
import json
import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_nn_golden import f32, f64, randn, round_params  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "rnn")
T, B, IN, H = 6, 3, 5, 4


def run(module, x, h0, c0, lengths, batch_first):
    lstm = isinstance(module, torch.nn.LSTM)
    state = None if h0 is None else ((h0, c0) if lstm else h0)
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, hn = module(inp, state)
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    h_n, c_n = hn if lstm else (hn, None)
    return y, h_n, c_n


def case(g, name, kind, layers, bidirectional, batch_first, initial_state, lengths, dropout=0.0):
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    module = cls(IN, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                 dropout=dropout)
    round_params(module)
    D = 2 if bidirectional else 1
    x = randn(g, *((B, T, IN) if batch_first else (T, B, IN))).requires_grad_()
    inputs = {"x": x}
    h0 = c0 = None
    if initial_state:
        h0 = randn(g, layers * D, B, H).requires_grad_()
        inputs["h0"] = h0
        if kind == "lstm":
            c0 = randn(g, layers * D, B, H).requires_grad_()
            inputs["c0"] = c0
    y, h_n, c_n = run(module, x, h0, c0, lengths, batch_first)
    dout, dh_n = randn(g, *y.shape), randn(g, *h_n.shape)
    loss = (y * dout).sum() + (h_n * dh_n).sum()
    grads_in = {"dout": dout, "dh_n": dh_n}
    outputs = {"y": y, "h_n": h_n}
    if c_n is not None:
        dc_n = randn(g, *c_n.shape)
        loss = loss + (c_n * dc_n).sum()
        grads_in["dc_n"] = dc_n
        outputs["c_n"] = c_n
    loss.backward()
    tensors = [(f"param.{k}", f32(v)) for k, v in module.state_dict().items()]
    tensors += [(f"in.{k}", f32(v)) for k, v in inputs.items()]
    tensors += [(f"in.{k}", f32(v)) for k, v in grads_in.items()]
    tensors += [(f"out.{k}", f64(v)) for k, v in outputs.items()]
    tensors += [(f"grad.in.{k}", f64(v.grad)) for k, v in inputs.items()]
    tensors += [(f"grad.param.{k}", f64(p.grad)) for k, p in module.named_parameters()]
    config = {"kind": kind, "input_size": IN, "hidden_size": H, "num_layers": layers,
              "bidirectional": bidirectional, "batch_first": batch_first, "lengths": lengths,
              "torch": torch.__version__}
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, {"config": json.dumps(config)})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(2026)
    g = torch.Generator().manual_seed(2026)
    for kind in ("lstm", "gru"):
        case(g, f"{kind}_l1", kind, 1, False, False, False, None)
        case(g, f"{kind}_l1_reverse_lengths_batch_first", kind, 1, True, True, False, [2, 6, 4])
        case(g, f"{kind}_l2_bi_h0_batch_first", kind, 2, True, True, True, None)
        case(g, f"{kind}_l2_bi_h0_lengths", kind, 2, True, False, True, [6, 1, 3])
        case(g, f"{kind}_l2_h0_lengths", kind, 2, False, False, True, [5, 6, 2])
    print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
