#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""attn.torch against PyTorch 1.13 on the CPU, in one run: forward and forward+backward, full attention and
a window of ±32, with each case's peak resident memory, and the per-call overhead at a tiny shape.

    PYTHONPATH=build/release/python /usr/bin/python3 bench/python_vs_torch.py [--seq 1024,4096,16384]
        [--heads 8] [--head-dim 64] [--threads 2] [--repeats 3] [--rounds 1] [--mem-limit-gib 20] [--json]

Rows (B=1, NH heads of HS, float32, autograd with dO = 1):
  attn.torch   attn.torch.scaled_dot_product_attention (fused kernel; the window skips masked work)
  torch        softmax(q kᵀ·scale + mask) v, what a PyTorch 1.13 user writes (1.13 has no public SDPA);
               windows as a dense additive mask
  attn MHA / torch MHA   attn.torch.MultiheadAttention vs torch.nn.MultiheadAttention (C = NH·HS,
               projections included; torch gets the window as a dense attn_mask)
Every case runs in its own process under an address-space limit (--mem-limit-gib), so a case that would
exhaust the machine fails with an allocation error instead, reported as "fails (out of memory)".
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

from compare_torch import median_ms  # same directory: the same timing rule as the C++-vs-torch bench


def dense_window(torch, n, window):
    if window is None:
        return None
    i, j = torch.arange(n).unsqueeze(1), torch.arange(n).unsqueeze(0)
    return torch.zeros(n, n).masked_fill((j < i - window) | (j > i + window), float("-inf"))


def run_case(impl, n, window, backward, args):
    """One measurement in this (child) process: median ms."""
    import torch
    torch.set_num_threads(args.threads)
    import attn
    import attn.torch as at
    attn.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    C = args.heads * args.head_dim
    repeats = args.repeats if n <= 4096 else 1
    if impl in ("attn.torch", "torch"):
        q, k, v = (torch.randn(1, args.heads, n, args.head_dim, generator=g, requires_grad=backward)
                   for _ in range(3))
        if impl == "attn.torch":
            win = None if window is None else (window, window)
            fwd = lambda: at.scaled_dot_product_attention(q, k, v, window=win)  # noqa: E731
        else:
            mask = dense_window(torch, n, window)
            scale = 1.0 / math.sqrt(args.head_dim)

            def fwd():
                s = torch.matmul(q, k.transpose(-1, -2)) * scale
                if mask is not None:
                    s = s + mask
                return torch.matmul(torch.softmax(s, -1), v)
    else:
        cls = at.MultiheadAttention if impl == "attn MHA" else torch.nn.MultiheadAttention
        mha = cls(C, args.heads, batch_first=True)
        x = torch.randn(1, n, C, generator=g, requires_grad=backward)
        if impl == "attn MHA":
            win = None if window is None else (window, window)
            fwd = lambda: mha(x, x, x, need_weights=False, window=win)[0]  # noqa: E731
        else:
            mask = dense_window(torch, n, window)
            fwd = lambda: mha(x, x, x, need_weights=False, attn_mask=mask)[0]  # noqa: E731
    if backward:
        def step():
            fwd().sum().backward()
    else:
        def step():
            with torch.no_grad():
                fwd()
    return median_ms(step, repeats)


def child_main(args):
    limit = int(args.mem_limit_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result = {}
    try:
        result["ms"] = run_case(args.impl, args.n, args.window, args.backward, args)
    except (RuntimeError, MemoryError) as e:
        result["error"] = "out of memory" if "memory" in str(e).lower() or isinstance(e, MemoryError) else str(e)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


def measure(impl, n, window, backward, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--impl", impl, "--n", str(n),
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--heads", str(args.heads),
           "--head-dim", str(args.head_dim), "--mem-limit-gib", str(args.mem_limit_gib)]
    if window is not None:
        cmd += ["--window", str(window)]
    if backward:
        cmd.append("--backward")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        why = "killed" if proc.returncode < 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": why[:80]}
    return json.loads(lines[-1])


def cell(r, width=10):
    """ms and peak MiB of one measurement, or why it failed."""
    if "error" in r:
        return f"{'fails':>{width}} {r['error'][:8]:>8}"
    return f"{r['ms']:>{width}.2f} {r['peak_mib']:>8.0f}"


def overhead_us(args):
    """Per-call cost at B = NH = 1, T = S = 16, HS = 64: median over many calls, in µs."""
    import numpy as np
    import torch
    import attn
    import attn.torch as at
    attn.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    qn = rng.standard_normal((1, 1, 16, 64), dtype=np.float32)
    qt = torch.from_numpy(qn)

    def per_call(fn, calls=3000):
        for _ in range(200):
            fn()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times.append((time.perf_counter() - start) / calls * 1e6)
        return min(times)

    qg = qt.clone().requires_grad_()
    scale = 1.0 / 8.0
    kernel = min(attn._attn._kernel_us(qn, qn, qn, 3000) for _ in range(5))
    calls = {
        "attn (numpy)": per_call(lambda: attn.scaled_dot_product_attention(qn, qn, qn)),
        "attn.torch": per_call(lambda: at.scaled_dot_product_attention(qt, qt, qt)),
        "attn.torch (autograd)": per_call(lambda: at.scaled_dot_product_attention(qg, qg, qg)),
        "torch softmax(QKᵀ)V": per_call(lambda: torch.matmul(torch.softmax(qt @ qt.transpose(-1, -2) * scale, -1),
                                                            qt)),
    }
    return kernel, calls


def alternating_rounds(args):
    """Full attention fwd+bwd, attn.torch then torch, args.rounds times: torch/attn per round, by N."""
    out = {}
    for n in [int(s) for s in args.seq.split(",") if int(s) <= 4096]:
        ratios = []
        for _ in range(args.rounds):
            a, t = measure("attn.torch", n, None, True, args), measure("torch", n, None, True, args)
            if "ms" in a and "ms" in t:
                ratios.append(t["ms"] / a["ms"])
        if ratios:
            print(f"N={n} full fwd+bwd, {len(ratios)} alternating rounds: attn.torch {statistics.median(ratios):.2f}x "
                  f"faster than torch (median; rounds {min(ratios):.2f}-{max(ratios):.2f}x)", flush=True)
            out[n] = ratios
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq", default="1024,4096,16384")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mem-limit-gib", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=1,
                   help="also time full-attention fwd+bwd of attn.torch and torch in this many alternating rounds "
                        "(N <= 4096) and report the median of the per-round ratios: on a shared machine the "
                        "table's two rows run minutes apart")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, help=argparse.SUPPRESS)
    p.add_argument("--backward", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child_main(args)
    try:
        import torch
        import attn
    except ImportError as e:
        print(f"python_vs_torch: skipped ({e}); install python3-torch and build attn's Python module")
        return 0
    print(f"# attn {attn.__version__} (SIMD {attn.simd_target()}) vs torch {torch.__version__}, {args.threads} "
          f"threads, B=1 NH={args.heads} HS={args.head_dim} fp32; peak RSS per case; address-space limit "
          f"{args.mem_limit_gib:g} GiB per case")
    rows = []
    header = f"{'N':>6} {'mask':>9} {'impl':>11} {'fwd ms':>10} {'fwd MiB':>8} {'fwd+bwd ms':>11} {'f+b MiB':>8}"
    print(header)
    for n in [int(s) for s in args.seq.split(",")]:
        for window in (None, 32):
            for impl in ("attn.torch", "torch", "attn MHA", "torch MHA"):
                row = {"N": n, "mask": "full" if window is None else "±32", "impl": impl}
                for backward in (False, True):
                    r = measure(impl, n, window, backward, args)
                    key = "fwd_bwd" if backward else "fwd"
                    row[key] = r
                rows.append(row)

                print(f"{n:>6} {row['mask']:>9} {impl:>11} {cell(row['fwd'])} {cell(row['fwd_bwd'], 11)}", flush=True)
    ratios = []
    for n in sorted({r["N"] for r in rows}):
        for mask in ("full", "±32"):
            pick = {r["impl"]: r for r in rows if r["N"] == n and r["mask"] == mask}
            for ours, theirs in (("attn.torch", "torch"), ("attn MHA", "torch MHA")):
                a, t = pick[ours]["fwd_bwd"], pick[theirs]["fwd_bwd"]
                if "ms" in a and "ms" in t:
                    ratios.append(f"N={n} {mask} {ours}: fwd+bwd {t['ms'] / a['ms']:.2f}x faster than {theirs}")
                elif "ms" in a:
                    ratios.append(f"N={n} {mask} {ours}: fwd+bwd runs in {a['peak_mib']:.0f} MiB; {theirs} fails "
                                  f"({t.get('error')})")
    print("\n".join(ratios))
    rounds = alternating_rounds(args) if args.rounds > 1 else {}
    kernel, calls = overhead_us(args)
    print(f"per call at B=NH=1, T=S=16, HS=64 (1 thread); the fused kernel alone, timed in C++: {kernel:.1f} µs")
    for name, us in calls.items():
        extra = f", overhead {us - kernel:.1f} µs over the kernel" if name.startswith("attn") else ""
        print(f"  {name}: {us:.1f} µs{extra}")
    if args.json:
        print(json.dumps({"rows": rows, "rounds": rounds, "kernel_us": kernel, "call_us": calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
