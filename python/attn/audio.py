# SPDX-License-Identifier: MIT
"""Audio in and speech features, with torchaudio's names.

    wav, sr = attn.audio.load("clip.wav")                    # (channels, frames) float32 in [-1, 1]
    feats = attn.audio.fbank(wav * 32768, num_mel_bins=80)   # torchaudio.compliance.kaldi.fbank
    mel = attn.audio.whisper_log_mel(wav[0])                  # (frames, 80), Whisper's features

Arrays come back as float32 numpy arrays; inputs may be numpy arrays, lists or torch tensors.
See docs/speech.md.
"""
import os as _os

import numpy as _np

from . import _attn

__all__ = ["load", "resample", "fbank", "whisper_log_mel", "simd_target", "set_wide_vectors"]

# torchaudio.compliance.kaldi.fbank's keyword arguments (vtln_* aside) and their defaults.
# VTLN: torchaudio's vtln_low and vtln_high act only when vtln_warp != 1, which attn does not do.
_VTLN_DEFAULTS = dict(vtln_high=-500.0, vtln_low=100.0, vtln_warp=1.0)
_FBANK_DEFAULTS = dict(
    blackman_coeff=0.42, dither=0.0, energy_floor=1.0, frame_length=25.0, frame_shift=10.0,
    high_freq=0.0, htk_compat=False, low_freq=20.0, min_duration=0.0, num_mel_bins=23,
    preemphasis_coefficient=0.97, raw_energy=True, remove_dc_offset=True, round_to_power_of_two=True,
    snip_edges=True, subtract_mean=False, use_energy=False, use_log_fbank=True, use_power=True,
    window_type="povey", seed=0)
# attn::audio::FbankOptions has these defaults too, so fbank() passes on only the options given.
_FBANK_KEYS = frozenset(_FBANK_DEFAULTS) | frozenset(_VTLN_DEFAULTS)


def _float32(x, name, check_finite=True):
    """check_finite=False where the C++ side checks (fbank, whisper_log_mel: a SIMD scan that names the
    first bad sample), so that the samples are not scanned twice."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = _np.ascontiguousarray(_np.asarray(x, dtype=_np.float32))
    if check_finite and not _np.isfinite(a).all():
        raise ValueError(f"attn.audio: {name} has NaN or Inf samples")
    return a


def load(path, sample_rate=None, mono=False):
    """Decode an audio file (WAV, FLAC, OGG, ... through libsndfile) as torchaudio.load does:
    returns (waveform (channels, frames) float32 in [-1, 1], sample_rate). sample_rate resamples
    (libsoxr, high quality); mono mixes the channels down to their mean."""
    if not isinstance(path, (str, bytes, _os.PathLike)):
        raise TypeError(f"attn.audio.load: path must be a str or os.PathLike, got {type(path).__name__}")
    return _attn.audio_load(_os.fsdecode(path), int(sample_rate or 0), bool(mono))


def resample(waveform, orig_freq, new_freq):
    """(channels, frames) or (frames) from orig_freq to new_freq Hz (libsoxr high quality)."""
    a = _float32(waveform, "waveform")
    if a.ndim not in (1, 2):
        raise ValueError(f"attn.audio.resample: waveform must be (frames) or (channels, frames), got {a.shape}")
    out = _attn.audio_resample(a.reshape(1, -1) if a.ndim == 1 else a, float(orig_freq), float(new_freq))
    return out[0] if a.ndim == 1 else out


def _channel(a, channel, fn):
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise ValueError(f"attn.audio.{fn}: waveform must be (frames) or (channels, frames), got {a.shape}")
    c = max(int(channel), 0)
    if c >= a.shape[0]:
        raise ValueError(f"attn.audio.{fn}: channel {channel} out of range for waveform {a.shape}")
    return _np.ascontiguousarray(a[c])


def fbank(waveform, sample_frequency=16000.0, channel=-1, **options):
    """Kaldi's log-mel filterbank, as torchaudio.compliance.kaldi.fbank (same keywords and defaults;
    dither draws from `seed`). waveform: (frames) or (channels, frames), at the scale Kaldi expects
    (int16 values: multiply [-1, 1] audio by 32768). Returns (T, num_mel_bins + use_energy)."""
    if not _FBANK_KEYS.issuperset(options):
        raise TypeError(f"attn.audio.fbank: unknown option(s) {sorted(set(options) - _FBANK_KEYS)}")
    vtln_warp = options.pop("vtln_warp", 1.0)
    if float(vtln_warp) != 1.0:
        raise ValueError(f"attn.audio.fbank: VTLN warping is not supported (vtln_warp must be 1.0, got {vtln_warp})")
    options.pop("vtln_low", None)
    options.pop("vtln_high", None)
    a = _channel(_float32(waveform, "waveform", check_finite=False), channel, "fbank")
    if a.shape[0] < options.pop("min_duration", 0.0) * sample_frequency:
        # torchaudio returns torch.empty(0); (0, bins) is what attn gives any waveform too short
        # for a frame.
        bins = int(options.get("num_mel_bins", _FBANK_DEFAULTS["num_mel_bins"]))
        return _np.zeros((0, bins + bool(options.get("use_energy", False))), dtype=_np.float32)
    options["sample_frequency"] = float(sample_frequency)
    return _attn.audio_fbank(a, options)


def whisper_log_mel(waveform, n_mels=80, n_fft=400, hop_length=160, sample_rate=16000):
    """Whisper's log-mel spectrogram of (frames) audio in [-1, 1] at 16 kHz: (frames // hop_length,
    n_mels), the transpose of whisper.log_mel_spectrogram's (n_mels, frames)."""
    a = _float32(waveform, "waveform", check_finite=False)
    if a.ndim == 2 and a.shape[0] != 1:
        raise ValueError(f"attn.audio.whisper_log_mel: waveform must be mono, (frames) or (1, frames), got {a.shape}: "
                         "pick a channel or pass attn.audio.load(..., mono=True)")
    a = _channel(a, 0, "whisper_log_mel")
    return _attn.audio_whisper_log_mel(a, int(n_fft), int(hop_length), int(n_mels), int(sample_rate))


def simd_target():
    """The SIMD target fbank's kernels run: attn.simd_target(), but AVX2 on Intel's AVX-512 cores
    before Sapphire Rapids, which lower their clock for 512-bit vectors (set_wide_vectors)."""
    return _attn.audio_feature_simd_target()


def set_wide_vectors(policy):
    """'auto' (the rule simd_target() describes), 'allow' (512-bit vectors wherever the target has
    them) or 'avoid' (AVX2 at most), for the whole process."""
    _attn.audio_set_wide_vectors(str(policy))
