#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""attn's LSTM, GRU and self-attention layers beside PyTorch's on the same shapes, in the same run.

    /usr/bin/python3 bench/compare_torch_rnn.py [--attn build/release/bin/attn] [--seq 100,300,1000,3000]
        [--d-model 256] [--batch 8] [--threads 1,2] [--backward] [--repeats 3] [--models lstm,gru,attention,truncated]

attn runs as `attn bench sequence-models --json` (one layer of each model at width C on (B, T, C) inputs);
PyTorch 1.13 runs torch.nn.LSTM / GRU (batch_first) and torch.nn.MultiheadAttention (batch_first) on the same
shapes, timed the same way (median of --repeats runs after a warm-up; forward under no_grad, forward +
backward of sum(output · dout)). PyTorch has no structured mask, so its truncated layer gets the ±W window as
a dense (T, T) float mask, as a PyTorch user would write it. Ratios are attn ms / torch ms (below 1: attn is
faster). Skipped with a message (exit 0) when torch is not installed (`scripts/install-deps.sh`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(repeats, fn):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def torch_case(torch, model, T, args):
    C, B = args.d_model, args.batch
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, C, generator=g)
    dout = torch.randn(B, T, C, generator=g)
    if model in ("lstm", "gru"):
        m = (torch.nn.LSTM if model == "lstm" else torch.nn.GRU)(C, C, batch_first=True)
        run = lambda inp: m(inp)[0]  # noqa: E731
    else:
        m = torch.nn.MultiheadAttention(C, args.heads, batch_first=True)
        mask = None
        if model == "truncated":
            idx = torch.arange(T)
            far = (idx[None, :] - idx[:, None]).abs() > args.window
            mask = torch.zeros(T, T).masked_fill(far, float("-inf"))
        run = lambda inp: m(inp, inp, inp, attn_mask=mask, need_weights=False)[0]  # noqa: E731

    def forward():
        with torch.no_grad():
            run(x)

    def train():
        xr = x.detach().requires_grad_()
        m.zero_grad()
        (run(xr) * dout).sum().backward()

    return forward, train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attn", default=os.path.join(ROOT, "build", "release", "bin", "attn"))
    p.add_argument("--seq", default="100,300,1000,3000")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--models", default="lstm,gru,attention,truncated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backward", action="store_true")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("compare_torch_rnn: skipped: python3-torch is not installed (scripts/install-deps.sh)")
        return 0
    cmd = [args.attn, "bench", "sequence-models", "--json", "--plot", "", "--seq", args.seq,
           "--d-model", str(args.d_model), "--batch", str(args.batch), "--heads", str(args.heads),
           "--window", str(args.window), "--threads", args.threads, "--models", args.models,
           "--repeats", str(args.repeats)] + (["--backward"] if args.backward else [])
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    attn_rows = {(r["model"], r["T"], r["threads"]): r for r in json.loads(text[text.index("["):])}
    simd = next(iter(attn_rows.values()))["simd"]
    print(f"attn (SIMD {simd}) vs PyTorch {torch.__version__}: B={args.batch} C={args.d_model} "
          f"heads={args.heads} window ±{args.window}; median of {args.repeats} runs; ratio = attn / torch")
    head = f"{'model':<11}{'T':>6}{'thr':>4}{'attn fwd':>11}{'torch fwd':>11}{'ratio':>7}"
    if args.backward:
        head += f"{'attn f+b':>11}{'torch f+b':>11}{'ratio':>7}"
    print(head)
    for T in [int(t) for t in args.seq.split(",")]:
        for model in args.models.split(","):
            for threads in [int(t) for t in args.threads.split(",")]:
                torch.set_num_threads(threads)
                forward, train = torch_case(torch, model, T, args)
                a = attn_rows[(model, T, threads)]
                tf = median_ms(args.repeats, forward)
                line = f"{model:<11}{T:>6}{threads:>4}{a['fwd_ms']:>11.2f}{tf:>11.2f}{a['fwd_ms'] / tf:>7.2f}"
                if args.backward:
                    tb = median_ms(args.repeats, train)
                    line += f"{a['fwd_bwd_ms']:>11.2f}{tb:>11.2f}{a['fwd_bwd_ms'] / tb:>7.2f}"
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
