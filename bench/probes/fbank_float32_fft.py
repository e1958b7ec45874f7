#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Would a float32 FFT with a per-frame double fallback keep fbank within 1e-3 of float64 (docs/speech.md)?

attn's fbank takes its FFT in double because a float32 FFT put some features 1.2e-3 from torchaudio's
float64 ones: the mel bins in the empty band above the clips' MP3 cut-off hold energies so small next to
the frame's that float32 rounding moves their logs. This probe measures, on the five LibriVox clips
(Kaldi frames: 25 ms Povey window, 10 ms shift, DC removal, pre-emphasis 0.97, 512-point FFT, 80 mel
bins, natural log), the log-mel error of a float32 FFT (torch.fft.rfft in float32) against float64,
and how many frames a simple test would send back to a double FFT: a frame is redone when its smallest
mel energy is under THRESHOLD times its energy (sum of squares times 512). Then the same for fbank's
layout, two frames per float32 complex transform (z = a + i·b), where each frame's rounding follows
its pair's energy and the test compares with that. Not part of the build:

    /usr/bin/python3 bench/probes/fbank_float32_fft.py
"""
import numpy as np
import torch
import torchaudio
from torchaudio.compliance import kaldi

CLIPS = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0{}.wav"


def kaldi_frames(x):
    n = (len(x) - 400) // 160 + 1
    f = x[np.arange(400)[None, :] + 160 * np.arange(n)[:, None]].copy()
    f -= f.mean(1, keepdims=True)
    pre = f.copy()
    pre[:, 1:] = f[:, 1:] - 0.97 * f[:, :-1]
    pre[:, 0] = f[:, 0] - 0.97 * f[:, 0]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85
    out = np.zeros((n, 512))
    out[:, :400] = pre * window
    return out


def pair_power_float32(frames):
    """|A_k|², |B_k|² (k = 0 .. 256) of frames 2i, 2i + 1 from one float32 complex FFT of a + i·b, as fbank does."""
    if len(frames) % 2:
        frames = np.concatenate([frames, np.zeros((1, frames.shape[1]))])
    z = torch.complex(torch.from_numpy(frames[0::2]).float(), torch.from_numpy(frames[1::2]).float())
    Z = torch.fft.fft(z, dim=1)
    Zm = torch.roll(torch.flip(Z, [1]), 1, 1).conj()  # conj Z_((n - k) mod n)
    A, B = (Z + Zm) / 2, (Z - Zm) / 2j
    power = torch.stack([A.abs() ** 2, B.abs() ** 2], 1).reshape(-1, 512)[:, :257]
    pair_total = (Z.abs().double() ** 2).sum(1).repeat_interleave(2)
    return power.double().numpy(), pair_total.numpy()


def main():
    clips = [kaldi_frames(torchaudio.load(CLIPS.format(c))[0][0].double().numpy())
             for c in ("870", "880", "890", "920", "930")]
    frames = np.concatenate(clips)
    mel = np.pad(kaldi.get_mel_banks(80, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)[0].double().numpy(),
                 ((0, 0), (0, 1)))
    floor = np.finfo(float).eps
    e64 = (np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ mel.T
    e32 = (torch.fft.rfft(torch.from_numpy(frames).float(), dim=1).abs().double() ** 2).numpy() @ mel.T
    err = np.abs(np.log(np.maximum(e64, floor)) - np.log(np.maximum(e32, floor)))
    print(f"{len(frames)} frames; float32 real FFT per frame: largest log-mel error {err.max():.2e}, "
          f"frames over 2e-4: {(err.max(1) > 2e-4).mean():.2%}")
    ratio = e64.min(1) / ((frames ** 2).sum(1) * 512)
    print("threshold  frames redone in double  largest error left   (test: smallest mel energy / frame's)")
    for threshold in (1e-7, 1e-8, 1e-9, 1e-10):
        redo = ratio < threshold
        print(f"{threshold:9.0e}  {redo.mean():22.2%}  {err[~redo].max() if (~redo).any() else 0.0:18.2e}")
    # fbank's layout: frames 2i and 2i + 1 of each call share one complex transform, so each one's
    # rounding follows the pair's energy, and the test must use it.
    pairs = [pair_power_float32(c) for c in clips]
    p32 = np.concatenate([p[0][:len(c)] for p, c in zip(pairs, clips)])
    total = np.concatenate([p[1][:len(c)] for p, c in zip(pairs, clips)])
    e32 = p32 @ mel.T
    err = np.abs(np.log(np.maximum(e64, floor)) - np.log(np.maximum(e32, floor)))
    print(f"float32 complex FFT of frame pairs: largest log-mel error {err.max():.2e}, frames over 2e-4: "
          f"{(err.max(1) > 2e-4).mean():.2%}")
    ratio = np.maximum(e32, 0).min(1) / total
    print("threshold  frames redone in double  largest error left   (test: smallest mel energy / pair's, in float32)")
    for threshold in (1e-7, 1e-8, 1e-9, 1e-10):
        redo = ratio < threshold
        print(f"{threshold:9.0e}  {redo.mean():22.2%}  {err[~redo].max() if (~redo).any() else 0.0:18.2e}")


if __name__ == "__main__":
    main()
