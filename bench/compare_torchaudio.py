#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Kaldi fbank of 10 s of real speech: attn.audio.fbank beside torchaudio.compliance.kaldi.fbank, same
process, same audio, same options (80 bins, torchaudio's defaults otherwise), 1 and 2 threads.

    PYTHONPATH=build/release/python /usr/bin/python3 bench/compare_torchaudio.py [--seconds 10] [--repeats 30]
        [--attn-alone-targets AVX3,AVX2,SSE4,SSSE3,SCALAR]

The audio: the five LibriVox clips of Debian's pocketsphinx-testdata, concatenated (24.7 s) and cut to
--seconds, at int16 scale (x 32768, what Kaldi and WeNet feed fbank). torchaudio runs on a float32
tensor with torch.set_num_threads(n); attn with attn.set_num_threads(n). The two alternate repeat by
repeat (so a busy moment of a shared machine hits both); each figure is the median. The largest
difference between the two feature matrices is printed too. Skipped with a message (exit 0) when
torchaudio or the clips are not installed.

Threads: torch 1.13's set_num_threads does not reach the OpenBLAS that Debian's torch links, whose
pthreads build runs a matrix product (fbank's mel filters are one) on every core: with
torch.set_num_threads(1), torchaudio's calls used 2.0 CPU-seconds a second on a 2-core VM. So each
row also sets OpenBLAS's thread count to n (openblas_set_num_threads, when torch's BLAS is OpenBLAS),
and prints the CPU time each side used per second of its calls, which shows the threads that ran.
--torch-blas-threads default leaves OpenBLAS as torch leaves it (the benchmark before 2026-12-08).

Page faults: torch's CPU allocator takes its temporaries (a few MB a call) from glibc's malloc, which
gives them back to the kernel between calls, so every call faults its pages in again (the minor
page faults per call are printed). Where faults are dear (a VM: 4-6 µs each on the 2026-12-06
machine), that is most of torchaudio's time; to time torchaudio without it, run with
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295
(glibc then keeps freed memory in the process; attn makes no faults either way).

--attn-alone-targets also times attn by itself on one thread on each SIMD target named (all Highway
kernels follow attn.set_simd_target, AVX-512 ones too: attn.audio.set_wide_vectors("allow"); FFTW
keeps its own codelets): rounds of 200 calls with nothing between them, the best call of each round,
the median over 5 rounds. "auto" in the list times the features' own choice (attn.audio.simd_target():
AVX2 on Intel cores that lower their clock for 512-bit vectors).
"""
import argparse
import ctypes
import glob
import json
import os
import resource
import statistics
import sys
import time

CLIPS = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))


def timed(fn):
    """(ms, minor page faults, CPU ms of the whole process, fn())"""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = time.process_time()
    start = time.perf_counter()
    out = fn()
    ms = (time.perf_counter() - start) * 1e3
    cpu_ms = (time.process_time() - cpu) * 1e3
    return ms, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, cpu_ms, out


def openblas():
    """The process's OpenBLAS, or None: attn links it, and Debian's torch links the same soname, so
    one library serves both (a torch built on another BLAS would not follow its thread count)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        lib.openblas_get_num_threads()
        return lib
    except (OSError, AttributeError):
        return None


def attn_alone(attn, audio, targets, rounds=5, calls=200):
    """{target: median over rounds of the best of `calls` one-thread fbank calls, in ms}."""
    attn.set_num_threads(1)
    best = {t: [] for t in targets}
    try:
        for _ in range(rounds):
            for t in targets:
                attn.set_simd_target("" if t == "auto" else t)
                attn.audio.set_wide_vectors("auto" if t == "auto" else "allow")
                for _ in range(20):
                    attn.audio.fbank(audio, 16000.0, num_mel_bins=80)
                best[t].append(min(timed(lambda: attn.audio.fbank(audio, 16000.0, num_mel_bins=80))[0]
                                   for _ in range(calls)))
    finally:
        attn.set_simd_target("")
        attn.audio.set_wide_vectors("auto")
    return {t: statistics.median(v) for t, v in best.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--json", action="store_true")
    p.add_argument("--attn-alone-targets", default="",
                   help="comma-separated SIMD targets to time attn alone on (one thread)")
    p.add_argument("--torch-blas-threads", choices=["match", "default"], default="match",
                   help="match: OpenBLAS gets the row's thread count too; default: as torch leaves it")
    args = p.parse_args()
    try:
        import numpy as np
        import torch
        import torchaudio.compliance.kaldi as kaldi
    except ImportError as e:
        print(f"compare_torchaudio: skipped ({e})")
        return 0
    if not CLIPS:
        print("compare_torchaudio: skipped (pocketsphinx-testdata is not installed)")
        return 0
    import attn

    audio = np.concatenate([attn.audio.load(c, sample_rate=16000)[0][0] for c in CLIPS])
    n = int(args.seconds * 16000)
    audio = (np.resize(audio, n) * 32768.0).astype(np.float32)
    wave = torch.from_numpy(audio).unsqueeze(0)
    blas = openblas()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        if blas is not None and args.torch_blas_threads == "match":
            blas.openblas_set_num_threads(threads)
        attn.set_num_threads(threads)
        ours = lambda: attn.audio.fbank(audio, 16000.0, num_mel_bins=80)  # noqa: E731
        theirs = lambda: kaldi.fbank(wave, num_mel_bins=80, sample_frequency=16000.0)  # noqa: E731
        ours(), theirs()  # warm-up
        a_ms, t_ms, a_faults, t_faults, a_cpu, t_cpu = [], [], 0, 0, 0.0, 0.0
        for _ in range(args.repeats):
            ms, faults, cpu_ms, a = timed(ours)
            a_ms.append(ms)
            a_faults += faults
            a_cpu += cpu_ms
            ms, faults, cpu_ms, t = timed(theirs)
            t_ms.append(ms)
            t_faults += faults
            t_cpu += cpu_ms
        diff = float(np.abs(a - t.numpy()).max())
        rows.append({"threads": threads, "attn_ms": statistics.median(a_ms),
                     "torchaudio_ms": statistics.median(t_ms), "frames": int(a.shape[0]), "max_abs_diff": diff,
                     "attn_faults": a_faults / args.repeats, "torchaudio_faults": t_faults / args.repeats,
                     "attn_cpu_per_wall": a_cpu / sum(a_ms), "torchaudio_cpu_per_wall": t_cpu / sum(t_ms),
                     "openblas_threads": blas.openblas_get_num_threads() if blas is not None else None})
    alone = attn_alone(attn, audio, [t for t in args.attn_alone_targets.split(",") if t])
    if args.json:
        print(json.dumps({"simd": attn.simd_target(), "features_simd": attn.audio.simd_target(),
                          "seconds": args.seconds, "rows": rows, "attn_alone_ms": alone}))
        return 0
    print(f"fbank of {args.seconds:g} s of LibriVox speech, 80 bins; attn SIMD target {attn.simd_target()} "
          f"(fbank's kernels {attn.audio.simd_target()}), "
          f"torch {torch.__version__}, torch's OpenBLAS threads: "
          + ("not OpenBLAS" if blas is None else args.torch_blas_threads))
    print(f"{'threads':>7} {'frames':>7} {'torchaudio ms':>14} {'attn ms':>9} {'speed-up':>9} {'max |diff|':>11}"
          f" {'page faults a call: torchaudio, attn':>37} {'CPU s per s: torchaudio, attn':>31}")
    for r in rows:
        print(f"{r['threads']:>7} {r['frames']:>7} {r['torchaudio_ms']:>14.2f} {r['attn_ms']:>9.2f} "
              f"{r['torchaudio_ms'] / r['attn_ms']:>8.2f}x {r['max_abs_diff']:>11.2e}"
              f" {r['torchaudio_faults']:>29.0f}, {r['attn_faults']:.0f}"
              f" {r['torchaudio_cpu_per_wall']:>25.2f}, {r['attn_cpu_per_wall']:.2f}")
    if alone:
        print("attn alone, 1 thread, best call of 200, median of 5 rounds: " +
              ", ".join(f"{t} {ms:.3f} ms" for t, ms in alone.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
