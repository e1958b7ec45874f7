#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fbank with 512-bit kernels against 256-bit ones in three settings (docs/speech.md, run 15).

On Intel's AVX-512 cores before Sapphire Rapids, attn.audio's fbank kernels stop at AVX2 because
512-bit vectors lower the core's clock for the whole call. This probe times one-thread fbank of 10 s of
the LibriVox clips with attn.audio.set_wide_vectors("allow") and ("avoid"), alternating in rounds:
  alone             nothing between calls (median of 300)
  after-attention   each call right after an attention call, which runs AVX-512 kernels (median of 150)
  beside-torchaudio each call beside torchaudio's kaldi.fbank, both on one thread (median of 100;
                    skipped without torchaudio)
Run it pinned to one CPU. Not part of the build:

    PYTHONPATH=build/release/python taskset -c 1 /usr/bin/python3 bench/probes/fbank_wide_vectors.py
"""
import ctypes
import glob
import os
import statistics
import time

import numpy as np

import attn

CLIPS = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))
ROUNDS = 4


def median_ms(fn, calls, before=None, after=None):
    """Median ms of fn() alone, with before() and after() run untimed around each call."""
    times = []
    for _ in range(calls):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if after is not None:
            after()
    return round(statistics.median(times) * 1e3, 3)


def main():
    audio = np.concatenate([attn.audio.load(c, sample_rate=16000)[0][0] for c in CLIPS])
    audio = (np.resize(audio, 160000) * 32768.0).astype(np.float32)
    attn.set_num_threads(1)
    ours = lambda: attn.audio.fbank(audio, 16000.0, num_mel_bins=80)  # noqa: E731
    q = np.random.default_rng(0).standard_normal((1, 4, 256, 64)).astype(np.float32)
    settings = {"alone": (300, None, None),
                "after-attention": (150, lambda: attn.scaled_dot_product_attention(q, q, q), None)}
    try:
        import torch
        import torchaudio.compliance.kaldi as kaldi
        torch.set_num_threads(1)
        try:  # Debian's torch shares attn's OpenBLAS, which torch.set_num_threads does not reach
            ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD | os.RTLD_LAZY).openblas_set_num_threads(1)
        except (OSError, AttributeError):
            pass
        wave = torch.from_numpy(audio).unsqueeze(0)
        settings["beside-torchaudio"] = (
            100, None, lambda: kaldi.fbank(wave, num_mel_bins=80, sample_frequency=16000.0))
    except ImportError:
        pass
    print(f"fbank of 10 s, one thread; attn target {attn.simd_target()}, fbank's by default "
          f"{attn.audio.simd_target()}; median ms per round ({ROUNDS} rounds, policies alternating)")
    try:
        for name, (calls, before, after) in settings.items():
            res = {"allow": [], "avoid": []}
            for rnd in range(ROUNDS):
                for policy in (["allow", "avoid"] if rnd % 2 == 0 else ["avoid", "allow"]):
                    attn.audio.set_wide_vectors(policy)
                    for _ in range(20):
                        ours()
                    res[policy].append(median_ms(ours, calls, before, after))
            attn.audio.set_wide_vectors("allow")
            wide = attn.audio.simd_target()
            attn.audio.set_wide_vectors("avoid")
            narrow = attn.audio.simd_target()
            print(f"{name:>18}: {wide} {res['allow']}  {narrow} {res['avoid']}")
    finally:
        attn.audio.set_wide_vectors("auto")


if __name__ == "__main__":
    main()
