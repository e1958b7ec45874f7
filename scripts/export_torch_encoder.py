#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Export a torch.nn.TransformerEncoder to the config JSON + safetensors pair that `attn encode` reads.

From your own code (any Python with torch and numpy):
    sys.path.insert(0, "scripts"); from export_torch_encoder import export_encoder
    export_encoder(my_encoder, "out_dir")            # writes out_dir/config.json, out_dir/weights.safetensors

From the command line, a freshly initialised encoder (seeded), or one saved with torch.save(encoder, path):
    /usr/bin/python3 scripts/export_torch_encoder.py --out-dir DIR [--module encoder.pt]
        [--d-model 256 --nhead 8 --dim-feedforward 2048 --num-layers 2 --activation relu
         --norm-first --final-norm --batch-first/--seq-first --seed 0]
        [--example 2,200 --key-lengths 200,131]

--example B,T also writes DIR/input.npy (random, seeded) and DIR/expected.npy: PyTorch's output in float64
(eval mode, padding as src_key_padding_mask), to compare with
    attn encode --config DIR/config.json --weights DIR/weights.safetensors --input DIR/input.npy
                --out DIR/out.npy --key-lengths 200,131
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_writer import write_safetensors  # noqa: E402


def encoder_config(encoder):
    layer = encoder.layers[0]
    act = getattr(layer, "activation_relu_or_gelu", 0)
    if act == 0:  # a callable: recognise the two functions torch allows as strings
        fn = layer.activation
        act = 1 if fn in (torch.nn.functional.relu,) or isinstance(fn, torch.nn.ReLU) else 2
    if act not in (1, 2):
        raise ValueError("attn supports relu and gelu activations")
    return {
        "d_model": layer.self_attn.embed_dim,
        "nhead": layer.self_attn.num_heads,
        "dim_feedforward": layer.linear1.out_features,
        "num_layers": len(encoder.layers),
        "norm_first": bool(layer.norm_first),
        "activation": "relu" if act == 1 else "gelu",
        "layer_norm_eps": float(layer.norm1.eps),
        "final_norm": encoder.norm is not None,
        "batch_first": bool(layer.self_attn.batch_first),
        "bias": layer.linear1.bias is not None,
        "positional": "none",
    }


def export_encoder(encoder, out_dir):
    """Writes config.json and weights.safetensors (float32, state_dict names) for `attn encode`."""
    os.makedirs(out_dir, exist_ok=True)
    config = encoder_config(encoder)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors = [(k, v.detach().to(torch.float32).contiguous().numpy()) for k, v in encoder.state_dict().items()]
    write_safetensors(os.path.join(out_dir, "weights.safetensors"), tensors,
                      {"format": "pt", "exported_by": "attn/scripts/export_torch_encoder.py",
                       "torch": torch.__version__})
    return config


def reference_output(encoder, x, key_lengths, batch_first):
    """PyTorch's output in float64. Gradients stay enabled so PyTorch takes its regular (not the nested-tensor
    fast) path, which computes padded positions like every other position, as attn does."""
    model = encoder.double().eval()
    xb = torch.from_numpy(x).double()
    B = xb.shape[0] if batch_first else xb.shape[1]
    T = xb.shape[1] if batch_first else xb.shape[0]
    pad = None
    if key_lengths:
        pad = torch.arange(T).unsqueeze(0) >= torch.tensor(key_lengths).unsqueeze(1)
    with torch.enable_grad():
        y = model(xb, src_key_padding_mask=pad)
    assert y.shape == xb.shape and len(key_lengths or [0] * B) == B
    return y.detach().numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--module", help="a TransformerEncoder saved with torch.save(encoder, path)")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--nhead", type=int, default=8)
    p.add_argument("--dim-feedforward", type=int, default=2048)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--activation", choices=["relu", "gelu"], default="relu")
    p.add_argument("--norm-first", action="store_true")
    p.add_argument("--final-norm", action="store_true")
    p.add_argument("--seq-first", action="store_true", help="batch_first=False, torch's default layout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--example", help="B,T: also write input.npy and PyTorch's expected.npy")
    p.add_argument("--key-lengths", help="comma-separated valid lengths for the example (padding after)")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    if args.module:
        encoder = torch.load(args.module)
    else:
        layer = torch.nn.TransformerEncoderLayer(args.d_model, args.nhead, args.dim_feedforward,
                                                 activation=args.activation, batch_first=not args.seq_first,
                                                 norm_first=args.norm_first)
        norm = torch.nn.LayerNorm(args.d_model) if args.final_norm else None
        encoder = torch.nn.TransformerEncoder(layer, args.num_layers, norm=norm, enable_nested_tensor=False)
    config = export_encoder(encoder, args.out_dir)
    print(f"wrote {args.out_dir}/config.json and weights.safetensors "
          f"({sum(p.numel() for p in encoder.parameters())} parameters)")
    if args.example:
        B, T = (int(v) for v in args.example.split(","))
        lengths = [int(v) for v in args.key_lengths.split(",")] if args.key_lengths else None
        rng = np.random.default_rng(args.seed)
        shape = (B, T, config["d_model"]) if config["batch_first"] else (T, B, config["d_model"])
        x = rng.standard_normal(shape).astype(np.float32)
        np.save(os.path.join(args.out_dir, "input.npy"), x)
        np.save(os.path.join(args.out_dir, "expected.npy"), reference_output(encoder, x, lengths, config["batch_first"]))
        print(f"wrote {args.out_dir}/input.npy {shape} and expected.npy (PyTorch, float64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
