#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`mpirun -np 3 attn dist attention ... --check` (issue 17): the ring and Ulysses, forward and
backward, in small pieces (--piece-mib) and in the default ones, match one process to <= 1e-5; the
report has a line per rank; a bad --piece-mib, --batch or --kv-heads is a usage error on every rank, not a hang
or a crash.
Usage: check_dist_cli.py ATTN_BINARY MPIEXEC"""
import re
import subprocess
import sys

TOL = 1e-5
RANKS = 3


def dist_attention(attn, mpiexec, args):
    cmd = [mpiexec, "--oversubscribe", "--allow-run-as-root", "-np", str(RANKS), attn, "dist",
           "attention", "--seq", "1001", "--heads", "6", "--head-dim", "16"] + args
    return subprocess.run(cmd, timeout=240, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def check_run(attn, mpiexec, args):
    r = dist_attention(attn, mpiexec, args + ["--backward", "--check"])
    diffs = [float(x) for x in re.findall(r"max_abs_diff=(\S+)", r.stdout)]
    rank_lines = re.findall(r"^forward:\s+\d+\s", r.stdout, re.M)
    ok = r.returncode == 0 and len(diffs) == 2 and max(diffs) <= TOL and len(rank_lines) == RANKS
    print(f"{'ok' if ok else 'FAIL'} {' '.join(args)}: max_abs_diff {diffs}, "
          f"{len(rank_lines)} rank lines, exit {r.returncode}")
    if not ok:
        print(r.stdout)
    return ok


def main(attn, mpiexec):
    ok = True
    for args in (["--piece-mib", "0.01"], ["--piece-mib", "0.01", "--causal"],
                 ["--piece-mib", "0.01", "--window", "40,7"], ["--causal"],
                 ["--mode", "ulysses", "--causal"]):
        ok = check_run(attn, mpiexec, args) and ok
    # --batch 0 divided by zero (SIGFPE) before it was checked.
    for args, message in ((["--piece-mib", "0"], "--piece-mib: must be > 0"),
                          (["--batch", "0"], "--batch: must be >= 1"),
                          (["--kv-heads", "4"], "--kv-heads: must divide --heads 6")):
        r = dist_attention(attn, mpiexec, args)
        bad = r.returncode == 2 and message in r.stdout
        print(f"{'ok' if bad else 'FAIL'} {' '.join(args)}: exit {r.returncode}")
        if not bad:
            print(r.stdout)
        ok = ok and bad
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
