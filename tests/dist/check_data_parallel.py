#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Data-parallel `attn train reverse` against one process (issue 17).

1. `mpirun -np 2 attn train reverse` follows the one-process loss curve at the same global batch to
   <= 1e-5 per step for the first 20 steps.
2. The checkpoint rank 0 wrote is loadable by any number of ranks: resumed to 30 steps on 1 rank
   and on 4 ranks, the two runs take the same steps (<= 1e-5 per step).
Usage: check_data_parallel.py ATTN_BINARY MPIEXEC WORK_DIR"""
import csv
import os
import shutil
import subprocess
import sys

TOL = 1e-5


def losses(path):
    with open(path) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def train(attn, mpiexec, ranks, out_dir, steps, resume=False):
    cmd = [attn, "train", "reverse", "--steps", str(steps), "--batch", "32", "--threads", "1", "--quiet",
           "--out-dir", out_dir] + (["--resume"] if resume else [])
    if ranks > 0:
        cmd = [mpiexec, "--oversubscribe", "--allow-run-as-root", "-np", str(ranks)] + cmd
    subprocess.run(cmd, check=True, timeout=240, stdout=subprocess.DEVNULL)
    return losses(os.path.join(out_dir, "metrics.csv"))


def compare(what, a, b):
    if len(a) != len(b):
        print(f"FAIL {what}: {len(a)} vs {len(b)} steps")
        return False
    worst = max(abs(x - y) for x, y in zip(a, b))
    ok = worst <= TOL
    print(f"{'ok' if ok else 'FAIL'} {what}: max |loss difference| over {len(a)} steps = {worst:.3g} (tolerance {TOL})")
    return ok


def main(attn, mpiexec, work):
    shutil.rmtree(work, ignore_errors=True)
    one = train(attn, mpiexec, 0, os.path.join(work, "one"), 20)
    two = train(attn, mpiexec, 2, os.path.join(work, "two"), 20)
    ok = compare("2 ranks vs 1 process, steps 1-20", one, two)
    resumed = []
    for ranks in (1, 4):
        d = os.path.join(work, f"resume{ranks}")
        shutil.copytree(os.path.join(work, "two"), d)
        resumed.append(train(attn, mpiexec, ranks, d, 30, resume=True)[20:])
    ok &= compare("2-rank checkpoint resumed to step 30 on 1 rank vs on 4 ranks", resumed[0], resumed[1])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
