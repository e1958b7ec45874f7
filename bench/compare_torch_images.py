#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The CNN's training step and Conv2d forward+backward in attn and in PyTorch, same shapes and threads.

    /usr/bin/python3 bench/compare_torch_images.py [--threads 2] [--rounds 3] [--batch 128] [--attn PATH]

attn runs `attn bench images --json` (the CNN of `attn train fashion-mnist --model cnn`: two blocks of a
3x3 conv without bias, BatchNorm2d, a 2x2 max pool and ReLU, then Linear(3136, 128), ReLU, Dropout(0.25),
Linear(128, 10); one step = zero_grad, forward in training mode, cross-entropy, backward, no optimiser;
and Conv2d B=128, 32 -> 64, 28x28, 3x3, padding 1, forward then backward for dx and dw). PyTorch 1.13 runs
the same model (in both block orders, pool then ReLU as attn's and ReLU then pool, the same function; its
faster one is compared) and conv with torch.set_num_threads(threads), medians of 5 runs after a warm-up. The two
alternate round by round so that a busy moment of a shared machine hits both; the table gives the
median over rounds. Skipped with a message (exit 0) when torch is not installed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def attn_round(args):
    cmd = [args.attn, "bench", "images", "--json", "--threads", str(args.threads), "--batch", str(args.batch)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def median_ms(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def torch_round(torch, args):
    nn = torch.nn

    def block(cin, cout, pool_first):
        tail = [nn.MaxPool2d(2), nn.ReLU()] if pool_first else [nn.ReLU(), nn.MaxPool2d(2)]
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)] + tail

    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.arange(args.batch) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step_ms(pool_first):
        model = nn.Sequential(*block(1, 32, pool_first), *block(32, 64, pool_first), nn.Flatten(),
                              nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10)).train()

        def step():
            model.zero_grad(set_to_none=False)
            loss_fn(model(x), y).backward()
        return median_ms(step)

    conv = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    cx = torch.randn(args.batch, 32, 28, 28, requires_grad=True)
    g = torch.randn(args.batch, 64, 28, 28)

    def conv_fwd():
        with torch.no_grad():
            conv(cx)

    def conv_fwd_bwd():
        cx.grad = None
        conv.zero_grad()
        conv(cx).backward(g)

    relu_first = step_ms(False)  # PyTorch's usual order first, as this script timed it before
    pool_first = step_ms(True)
    return {"cnn_step_ms": min(pool_first, relu_first), "pool_first_ms": pool_first, "relu_first_ms": relu_first,
            "conv_forward_ms": median_ms(conv_fwd),
            "conv_fwd_bwd_ms": median_ms(conv_fwd_bwd)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--attn", default=os.path.join(ROOT, "build", "release", "bin", "attn"))
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("compare_torch_images: torch is not installed (scripts/install-deps.sh installs python3-torch); skipped")
        return 0
    torch.set_num_threads(args.threads)
    a_rounds, t_rounds = [], []
    for r in range(args.rounds):
        a_rounds.append(attn_round(args))
        t_rounds.append(torch_round(torch, args))
        print(f"round {r + 1}: attn step {a_rounds[-1]['cnn_step_ms']:.1f} ms, torch step "
              f"{t_rounds[-1]['pool_first_ms']:.1f} ms (pool then ReLU), "
              f"{t_rounds[-1]['relu_first_ms']:.1f} ms (ReLU then pool)", file=sys.stderr)
    med = lambda rows, k: statistics.median(row[k] for row in rows)  # noqa: E731
    a_step, t_step = med(a_rounds, "cnn_step_ms"), med(t_rounds, "cnn_step_ms")
    a_conv = med(a_rounds, "conv_forward_ms") + med(a_rounds, "conv_backward_ms")
    t_conv = med(t_rounds, "conv_fwd_bwd_ms")
    print(f"{args.threads} threads, attn SIMD {a_rounds[0]['simd']}, torch {torch.__version__}, batch {args.batch}, "
          f"median of {args.rounds} rounds")
    print(f"{'case':<34}{'attn ms':>10}{'torch ms':>10}{'torch/attn':>12}")
    print(f"{'CNN training step (no optimiser)':<34}{a_step:>10.1f}{t_step:>10.1f}{t_step / a_step:>12.2f}"
          f"   (torch: the faster block order of each round; pool then ReLU "
          f"{med(t_rounds, 'pool_first_ms'):.1f}, ReLU then pool {med(t_rounds, 'relu_first_ms'):.1f})")
    print(f"{'Conv2d 32->64 28x28 fwd+bwd':<34}{a_conv:>10.1f}{t_conv:>10.1f}{t_conv / a_conv:>12.2f}")
    print(f"attn's Conv2d forward+backward: {med(a_rounds, 'conv_percent_of_peak'):.1f}% of its measured peak "
          f"({a_rounds[0]['peak_gflops']:.0f} GFLOP/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
