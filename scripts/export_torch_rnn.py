#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Export a torch.nn.LSTM or torch.nn.GRU to the config JSON + safetensors pair that `attn encode` reads.

From your own code (any Python with torch and numpy):
    sys.path.insert(0, "scripts"); from export_torch_rnn import export_rnn
    export_rnn(my_lstm, "out_dir")                   # writes out_dir/config.json, out_dir/weights.safetensors

From the command line, a freshly initialised module (seeded), or one saved with torch.save(module, path):
    /usr/bin/python3 scripts/export_torch_rnn.py --out-dir DIR [--module rnn.pt]
        [--kind lstm|gru --input-size 32 --hidden-size 64 --num-layers 2 --bidirectional --batch-first --seed 0]
        [--example 3,50 --lengths 50,17,33]

--example B,T also writes DIR/input.npy (random, seeded) and DIR/expected.npy: PyTorch's output in float64
(eval mode; lengths through pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence(total_length=T)),
and DIR/expected_h_n.npy, to compare with
    attn encode --config DIR/config.json --weights DIR/weights.safetensors --input DIR/input.npy
                --out DIR/out.npy --state-out DIR/h_n.npy --lengths 50,17,33
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_writer import write_safetensors  # noqa: E402


def rnn_config(module):
    if isinstance(module, torch.nn.LSTM):
        kind = "lstm"
        if module.proj_size:
            raise ValueError("attn does not support proj_size")
    elif isinstance(module, torch.nn.GRU):
        kind = "gru"
    else:
        raise TypeError("export_rnn exports torch.nn.LSTM and torch.nn.GRU")
    return {"type": kind, "input_size": module.input_size, "hidden_size": module.hidden_size,
            "num_layers": module.num_layers, "bias": bool(module.bias), "batch_first": bool(module.batch_first),
            "bidirectional": bool(module.bidirectional)}


def export_rnn(module, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    config = rnn_config(module)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors = [(k, v.detach().to(torch.float32).numpy()) for k, v in module.state_dict().items()]
    write_safetensors(os.path.join(out_dir, "weights.safetensors"), tensors)
    return config


def run_torch(module, x, lengths):
    """PyTorch's output and h_n in float64 for float32 input x (numpy) and optional lengths."""
    m = module.double().eval()
    inp = torch.from_numpy(x.astype(np.float64))
    with torch.no_grad():
        if lengths is not None:
            inp = pack_padded_sequence(inp, torch.tensor(lengths), batch_first=m.batch_first, enforce_sorted=False)
        y, state = m(inp)
        if lengths is not None:
            y, _ = pad_packed_sequence(y, batch_first=m.batch_first, total_length=x.shape[1 if m.batch_first else 0])
    h_n = state[0] if isinstance(m, torch.nn.LSTM) else state
    return y.numpy(), h_n.numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--module", help="a module saved with torch.save")
    p.add_argument("--kind", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--batch-first", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--example", help="B,T: also write input.npy and PyTorch's expected.npy")
    p.add_argument("--lengths", help="comma-separated lengths for the example")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    if args.module:
        module = torch.load(args.module)
    else:
        cls = torch.nn.LSTM if args.kind == "lstm" else torch.nn.GRU
        module = cls(args.input_size, args.hidden_size, num_layers=args.num_layers,
                     bidirectional=args.bidirectional, batch_first=args.batch_first)
    config = export_rnn(module, args.out_dir)
    if args.example:
        B, T = (int(v) for v in args.example.split(","))
        shape = (B, T, config["input_size"]) if config["batch_first"] else (T, B, config["input_size"])
        x = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
        lengths = [int(v) for v in args.lengths.split(",")] if args.lengths else None
        y, h_n = run_torch(module, x, lengths)
        np.save(os.path.join(args.out_dir, "input.npy"), x)
        np.save(os.path.join(args.out_dir, "expected.npy"), y)
        np.save(os.path.join(args.out_dir, "expected_h_n.npy"), h_n)
    print(f"exported {config['type']} ({json.dumps(config)}) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
