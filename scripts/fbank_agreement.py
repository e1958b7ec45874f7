#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""attn.audio.fbank against torchaudio.compliance.kaldi.fbank (float64 and float32 input) on the five
LibriVox clips of pocketsphinx-testdata, for the option sets of python/tests/test_audio.py: the largest
absolute difference per option set, as the markdown table of docs/speech.md.

    PYTHONPATH=build/release/python /usr/bin/python3 scripts/fbank_agreement.py
"""
import glob
import sys

import numpy as np

sys.path.insert(0, "python/tests")
from test_audio import OPTIONS  # noqa: E402  the test's option sets


def main():
    import torch
    import torchaudio.compliance.kaldi as kaldi

    import attn
    clips = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))
    print("| options | attn vs torchaudio float64 | attn vs torchaudio float32 | torchaudio float32 vs its float64 |")
    print("|---|---|---|---|")
    for opts in OPTIONS:
        w64 = w32 = t = 0.0
        for c in clips:
            w, sr = attn.audio.load(c)
            x = w[0] * 32768.0
            ours = attn.audio.fbank(x, sr, **opts)
            t64 = kaldi.fbank(torch.from_numpy(x.astype(np.float64))[None], sample_frequency=sr, **opts).numpy()
            t32 = kaldi.fbank(torch.from_numpy(x)[None], sample_frequency=sr, **opts).numpy()
            w64, w32 = max(w64, np.abs(ours - t64).max()), max(w32, np.abs(ours - t32).max())
            t = max(t, np.abs(t32 - t64).max())
        name = ", ".join(f"{k}={v}" for k, v in opts.items())
        print(f"| `{name}` | {w64:.1e} | {w32:.1e} | {t:.1e} |")


if __name__ == "__main__":
    main()
