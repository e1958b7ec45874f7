#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Time the same attention shapes through attn's fused kernel and PyTorch in one run; print attn/torch ratios.

    /usr/bin/python3 bench/compare_torch.py [--seq 1024,4096] [--heads 8] [--head-dim 64]
                                            [--window L,R] [--causal] [--backward] [--threads N]

attn is timed by `attn bench attention --json` (median of repeats after a warm-up). PyTorch is timed the
way a PyTorch 1.13 user runs attention on a CPU: softmax(q·kᵀ·scale + mask)·v with a dense additive mask
for windows (1.13 has no public SDPA; its MHA takes this path on the CPU), forward and, with --backward,
autograd backward with dO = O, as in attn's bench. Same thread count, same median-of-repeats.
Skipped with a message (exit 0) when torch is not installed (`scripts/install-deps.sh`).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_window(text):
    parts = [int(p) for p in text.split(",")]
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def torch_times(torch, n, args):
    g = torch.Generator().manual_seed(1)
    shape = (args.batch, args.heads, n, args.head_dim)
    q, k, v = (torch.randn(shape, generator=g, requires_grad=args.backward) for _ in range(3))
    scale = 1.0 / math.sqrt(args.head_dim)
    mask = None
    if args.causal or args.window:
        i = torch.arange(n).unsqueeze(1)
        j = torch.arange(n).unsqueeze(0)
        visible = torch.ones(n, n, dtype=torch.bool)
        if args.causal:
            visible &= j <= i
        if args.window:
            left, right = parse_window(args.window)
            if left >= 0:
                visible &= j >= i - left
            if right >= 0:
                visible &= j <= i + right
        mask = torch.zeros(n, n).masked_fill(~visible, float("-inf"))

    def forward():
        s = torch.matmul(q, k.transpose(-2, -1)) * scale
        if mask is not None:
            s = s + mask
        return torch.matmul(torch.softmax(s, dim=-1), v)

    times = {"fwd": median_ms(lambda: forward() if not args.backward else forward().detach(), args.repeats)}
    if args.backward:
        def fwd_bwd():
            out = forward()
            out.backward(out.detach())  # dO = O
            q.grad = k.grad = v.grad = None
        times["bwd"] = max(median_ms(fwd_bwd, args.repeats) - times["fwd"], 1e-9)
    return times


def attn_rows(args):
    binary = args.attn or os.path.join(ROOT, "build", "release", "bin", "attn")
    cmd = [binary, "bench", "attention", "--json", "--seq", args.seq, "--heads", str(args.heads),
           "--head-dim", str(args.head_dim), "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--threads", str(args.threads), "--reference-max", "0"]
    if args.window:
        cmd += ["--window", args.window]
    if args.causal:
        cmd.append("--causal")
    if args.backward:
        cmd.append("--backward")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [r for r in json.loads(out) if r["kernel"] == "fused"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq", default="1024,4096")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--window", default="")
    p.add_argument("--causal", action="store_true")
    p.add_argument("--backward", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--torch-max", type=int, default=8192,
                   help="largest N run through PyTorch (it materialises B*NH*N*N scores)")
    p.add_argument("--attn", help="path to the attn binary (default build/release/bin/attn)")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("compare_torch: skipped, PyTorch is not installed for this python "
              "(run scripts/install-deps.sh and use /usr/bin/python3)")
        return 0
    torch.set_num_threads(args.threads)
    rows = attn_rows(args)
    print(f"attn vs PyTorch {torch.__version__}, {args.threads} threads, B={args.batch} NH={args.heads} "
          f"HS={args.head_dim}{' causal' if args.causal else ''}{' window=' + args.window if args.window else ''}")
    print(f"{'N':>8} {'pass':>5} {'attn ms':>10} {'torch ms':>10} {'attn/torch':>11} {'attn GFLOP/s':>13}")
    for n in sorted({r["N"] for r in rows}):
        ours = {r["pass"]: r for r in rows if r["N"] == n}
        theirs = torch_times(torch, n, args) if n <= args.torch_max else {}
        for pass_name, row in ours.items():
            t = theirs.get(pass_name)
            ratio = f"{row['ms'] / t:11.3f}" if t else f"{'(skipped)':>11}"
            t_text = f"{t:10.2f}" if t else f"{'-':>10}"
            print(f"{n:>8} {pass_name:>5} {row['ms']:10.2f} {t_text} {ratio} {row['gflops']:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
