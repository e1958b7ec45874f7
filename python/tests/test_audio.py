# SPDX-License-Identifier: MIT
"""attn.audio against torchaudio on Debian's real LibriVox clips (pocketsphinx-testdata).

torchaudio's float32 fbank is itself up to ~2e-3 from its float64 one on these clips, so the reference
is torchaudio run in float64 with the same options; the float32 gap is checked more loosely."""
import glob

import numpy as np
import pytest

import attn

torch = pytest.importorskip("torch")
torchaudio = pytest.importorskip("torchaudio")
from torchaudio.compliance import kaldi  # noqa: E402

CLIPS = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))
pytestmark = pytest.mark.skipif(not CLIPS, reason="pocketsphinx-testdata is not installed")

OPTIONS = [
    dict(num_mel_bins=80),
    dict(num_mel_bins=80, use_energy=True),
    dict(num_mel_bins=40, snip_edges=False),
    dict(num_mel_bins=23, window_type="hamming", round_to_power_of_two=False, frame_length=24.0),
    dict(num_mel_bins=80, use_energy=True, raw_energy=False, htk_compat=True, subtract_mean=True),
]


@pytest.mark.parametrize("clip", CLIPS)
def test_load_matches_torchaudio(clip):
    wav, sr = attn.audio.load(clip)
    ref, ref_sr = torchaudio.load(clip)
    assert sr == ref_sr and wav.shape == tuple(ref.shape)
    np.testing.assert_array_equal(wav, ref.numpy())


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_fbank_matches_torchaudio(clip, options):
    ref, _ = torchaudio.load(clip)
    ours = attn.audio.fbank(ref.numpy() * 32768, **options)
    want64 = kaldi.fbank(ref.double() * 32768, **options).numpy()
    want32 = kaldi.fbank(ref * 32768, **options).numpy()
    assert ours.shape == want64.shape
    assert np.abs(ours - want64).max() <= 1e-3
    assert np.abs(ours - want32).max() <= 3e-3


@pytest.mark.parametrize("clip", CLIPS[:2])
def test_whisper_log_mel_matches_torch(clip):
    ref, _ = torchaudio.load(clip)
    x = ref[0].double()
    stft = torch.stft(x, 400, 160, window=torch.hann_window(400, dtype=torch.float64), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    filters = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 80, 16000, norm="slaney",
                                                    mel_scale="slaney").double()
    log_spec = torch.clamp(filters.T @ power, min=1e-10).log10()
    log_spec = (torch.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0
    ours = attn.audio.whisper_log_mel(ref[0].numpy())
    assert ours.shape == tuple(log_spec.T.shape)
    assert np.abs(ours - log_spec.T.numpy()).max() <= 1e-4


def test_resample_and_errors():
    t = np.arange(22050) / 22050.0
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = attn.audio.resample(x, 22050, 16000)
    assert y.shape == (16000,)
    want = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000.0)
    assert np.abs(y[400:-400] - want[400:-400]).max() < 2e-3
    with pytest.raises(TypeError):
        attn.audio.fbank(x, bogus=1)
    with pytest.raises(ValueError, match="non-finite|NaN"):
        attn.audio.fbank(np.full(1000, np.nan, dtype=np.float32))
    with pytest.raises(OSError, match="audio::read"):
        attn.audio.load("/nonexistent.wav")
    # An option or a path of the wrong type is a TypeError that names it (pybind11's cast error was a
    # RuntimeError naming nothing; a number as a path was looked up as a file).
    for options, says in [(dict(frame_length=[25.0]), "option frame_length must be a number, got list"),
                          (dict(num_mel_bins=2.5), "option num_mel_bins must be an int, got float"),
                          (dict(snip_edges="yes"), "option snip_edges must be a bool, got str"),
                          (dict(window_type=3), "option window_type must be a str, got int"),
                          (dict(seed=-1), "option seed must be a non-negative int, got int")]:
        with pytest.raises(TypeError, match="attn.audio.fbank: " + says):
            attn.audio.fbank(x, **options)
    # torchaudio's VTLN options at their no-op values are accepted; warping is not done, so refused.
    np.testing.assert_array_equal(attn.audio.fbank(x, vtln_warp=1.0, vtln_low=90.0, vtln_high=-400.0),
                                  attn.audio.fbank(x))
    with pytest.raises(ValueError, match="VTLN warping is not supported"):
        attn.audio.fbank(x, vtln_warp=0.9)
    assert attn.audio.fbank(x, min_duration=5.0, num_mel_bins=40, use_energy=True).shape == (0, 41)
    with pytest.raises(ValueError, match=r"whisper_log_mel: waveform must be mono.*\(2, 22050\)"):
        attn.audio.whisper_log_mel(np.stack([x, x]))
    assert attn.audio.whisper_log_mel(x[None]).shape == attn.audio.whisper_log_mel(x).shape
    with pytest.raises(TypeError, match="attn.audio.load: path must be a str or os.PathLike, got int"):
        attn.audio.load(3)
    with pytest.raises(TypeError, match="Linear.load_state_dict: state_dict must be a mapping"):
        attn.nn.Linear(3, 2).load_state_dict([("weight", np.zeros((2, 3), np.float32))])
