#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Training steps per second of `attn train reverse` beside an identical PyTorch model, at 1 and 2 threads.

    /usr/bin/python3 bench/compare_torch_train.py [--steps 200] [--threads 1,2] [--rounds 3]
                                                  [--batch 32] [--seq-len 12] [--d-model 64] ...

attn runs as `attn train reverse --quiet --target-accuracy 0` and reports training steps/s (steps only:
zero_grad, forward, backward, clipping, AdamW; no evaluation or checkpoint). PyTorch 1.13 runs the same
model (token embedding scaled by 4/sqrt(d) plus the sinusoidal encoding, a pre-norm
nn.TransformerEncoder with GELU and no dropout and a final LayerNorm, a linear head; cross-entropy,
clip_grad_norm_(1.0), AdamW(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)), timed over the same number of
steps after 10 warm-up steps. At N > 1 threads attn runs twice: its ops split over N threads
(`--threads N`), and N model replicas in threads, one thread each (`--data-parallel N --threads 1`,
the same run as `mpirun -np N`). The runs alternate, round by round, so that a busy moment of a shared
machine hits all; the table gives the median over rounds and the best round.
Skipped with a message (exit 0) when torch is not installed (`scripts/install-deps.sh`).
"""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def attn_steps_per_s(args, threads, replicas=1):
    with tempfile.TemporaryDirectory() as out:
        cmd = [args.attn, "train", "reverse", "--quiet", "--target-accuracy", "0",
               "--steps", str(args.steps), "--eval-every", str(args.steps), "--threads", str(threads),
               "--data-parallel", str(replicas),
               "--batch", str(args.batch), "--seq-len", str(args.seq_len), "--d-model", str(args.d_model),
               "--heads", str(args.heads), "--layers", str(args.layers), "--ff", str(args.ff),
               "--out-dir", out]
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(([0-9.]+) training steps/s\)", text)
    if not m:
        sys.exit("compare_torch_train: no steps/s in attn's output:\n" + text)
    return float(m.group(1))


def torch_model(torch, args):
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            d = args.d_model
            self.embed = nn.Embedding(args.vocab, d)
            layer = nn.TransformerEncoderLayer(d, args.heads, args.ff, dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, args.layers, norm=nn.LayerNorm(d),
                                                 enable_nested_tensor=False)
            self.head = nn.Linear(d, args.vocab)
            pos = torch.arange(args.seq_len, dtype=torch.float32).unsqueeze(1)
            div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
            pe = torch.zeros(args.seq_len, d)
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)
            self.register_buffer("pe", pe)
            self.scale = 4.0 / math.sqrt(d)

        def forward(self, tokens):
            x = self.embed(tokens) * self.scale + self.pe
            return self.head(self.encoder(x))

    return Model()


def torch_steps_per_s(torch, args, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(torch, args)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)

    def step():
        x = torch.randint(0, args.vocab, (args.batch, args.seq_len), generator=g)
        y = torch.flip(x, dims=[1])
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x).reshape(-1, args.vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attn", default=os.path.join(ROOT, "build/release/bin/attn"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=12)
    p.add_argument("--vocab", type=int, default=10)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--ff", type=int, default=128)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("compare_torch_train: PyTorch is not installed; skipped (scripts/install-deps.sh installs it)")
        return 0
    threads = [int(t) for t in args.threads.split(",")]
    runs = {(who, t): [] for who in ("attn", "torch") for t in threads}
    runs.update({("attn-dp", t): [] for t in threads if t > 1})
    for r in range(args.rounds):
        for t in threads:
            runs[("attn", t)].append(attn_steps_per_s(args, t))
            if t > 1:
                runs[("attn-dp", t)].append(attn_steps_per_s(args, 1, replicas=t))
            runs[("torch", t)].append(torch_steps_per_s(torch, args, t))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{who} {t}T {runs[(who, t)][-1]:.1f}" for who, t in runs), file=sys.stderr)
    print(f"attn train reverse vs PyTorch {torch.__version__}: B={args.batch} T={args.seq_len} d={args.d_model} "
          f"heads={args.heads} layers={args.layers} ff={args.ff}, {args.steps} steps x {args.rounds} rounds")
    print(f"{'threads':>8} {'attn steps/s':>14} {'attn data-par.':>15} {'torch steps/s':>14} {'attn/torch':>11}"
          "   (median; best round)")
    for t in threads:
        a, b, dp = runs[("attn", t)], runs[("torch", t)], runs.get(("attn-dp", t))
        dp_text = f"{statistics.median(dp):>8.1f} ({max(dp):5.1f})" if dp else f"{'-':>15}"
        print(f"{t:>8} {statistics.median(a):>8.1f} ({max(a):5.1f}) {dp_text} {statistics.median(b):>7.1f}"
              f" ({max(b):5.1f}) {statistics.median(a) / statistics.median(b):>10.2f}")
    if len(threads) > 1:
        t0, t1 = threads[0], threads[-1]
        a0, a1 = statistics.median(runs[("attn", t0)]), statistics.median(runs[("attn", t1)])
        best_torch = max(statistics.median(runs[("torch", t)]) for t in threads)
        print(f"attn {t1} threads / {t0}: {a1 / a0:.2f}x;  "
              f"attn {t1} threads / PyTorch's best: {a1 / best_torch:.2f}x")
        if ("attn-dp", t1) in runs:
            d1 = statistics.median(runs[("attn-dp", t1)])
            print(f"attn {t1} data-parallel replicas / {t0} thread{'s' if t0 > 1 else ''}: {d1 / a0:.2f}x;  "
                  f"/ PyTorch's best: {d1 / best_torch:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
