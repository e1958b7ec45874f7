# SPDX-License-Identifier: MIT
"""attn.nn.SpeechEncoder and StreamingEncoder from Python: streaming equals the offline chunk mask, the
subsampling's frame count, clean errors; and the encoder on real speech features when the clips are
installed."""
import glob

import numpy as np
import pytest

import attn

CLIPS = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))


def small(seed=3):
    return attn.nn.SpeechEncoder(input_dim=13, d_model=16, nhead=4, dim_feedforward=24, num_layers=2,
                                 dropout=0.0, seed=seed).eval()


def stream(enc, feats, chunk, left, piece):
    s = attn.nn.StreamingEncoder(enc, chunk, left)
    parts = [s.push(feats[i:i + piece]) for i in range(0, len(feats), piece)]
    parts.append(s.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize("chunk,left,piece", [(4, 1, 1), (16, -1, 37), (3, 0, 200)])
def test_streaming_equals_offline_chunk_mask(rng, chunk, left, piece):
    enc = small()
    feats = rng.standard_normal((203, 13)).astype(np.float32)
    offline = enc(feats, chunk=(chunk, left))
    assert offline.shape == (attn.nn.SpeechEncoder.output_length(203), 16) == (50, 16)
    got = stream(enc, feats, chunk, left, piece)
    np.testing.assert_allclose(got, offline, atol=1e-5, rtol=0)
    assert np.abs(got - enc(feats)).max() > 1e-2  # full attention differs: the comparison can fail


def test_batched_forward_and_errors(rng):
    enc = small()
    feats = rng.standard_normal((2, 40, 13)).astype(np.float32)
    y = enc(feats, window=(2, 2))
    assert y.shape == (2, 9, 16)
    np.testing.assert_allclose(y[1], enc(feats[1], window=(2, 2)), atol=1e-6)
    # The caller's shape in the message (an unbatched one was reported with the batch added).
    with pytest.raises(ValueError, match=r"SpeechEncoder.forward: feats must be .* F = input_dim = 13, "
                                         r"got shape \(40, 12\)"):
        enc(rng.standard_normal((40, 12)).astype(np.float32))
    with pytest.raises(ValueError, match=r"got shape \(13,\)"):
        enc(np.zeros(13, np.float32))
    with pytest.raises(ValueError, match=r"training mode: call encoder\.eval\(\) first"):
        attn.nn.StreamingEncoder(small().train(), 4, 1)
    with pytest.raises(ValueError, match="chunk_size"):
        attn.nn.StreamingEncoder(enc, 0, 1)
    with pytest.raises(ValueError, match="d_model"):
        attn.nn.SpeechEncoder(d_model=30, nhead=4)


@pytest.mark.skipif(not CLIPS, reason="pocketsphinx-testdata is not installed")
def test_real_speech_streams_like_offline():
    wav, sr = attn.audio.load(CLIPS[0], sample_rate=16000)
    feats = attn.audio.fbank(wav[0] * 32768.0, sr, num_mel_bins=80)
    enc = attn.nn.SpeechEncoder(num_layers=2, seed=1).eval()
    s = attn.nn.StreamingEncoder(enc, 16, 4)
    got = np.concatenate([s.push(feats[i:i + 10]) for i in range(0, len(feats), 10)] + [s.flush()])
    np.testing.assert_allclose(got, enc(feats, chunk=(16, 4)), atol=1e-5, rtol=0)
    assert s.cache_bytes < 2 * 2 * 5 * 16 * 256 * 4 + 64 * 1024


def test_save_and_load_pretrained(tmp_path, rng):
    enc = small(seed=9)
    enc.save_pretrained(tmp_path / "model")
    back = attn.nn.SpeechEncoder.from_pretrained(tmp_path / "model")
    assert not back.training
    feats = rng.standard_normal((60, 13)).astype(np.float32)
    np.testing.assert_array_equal(back(feats), enc(feats))
    with pytest.raises(OSError):
        attn.nn.SpeechEncoder.from_pretrained(tmp_path / "missing")
    # A config with bytes that are not UTF-8: the error quotes them escaped (Python raised such a
    # message as a ValueError with no text at all).
    (tmp_path / "model" / "config.json").write_bytes(b'{"input_dim": \xff\xfe 80}')
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON: .*\\xFF"):
        attn.nn.SpeechEncoder.from_pretrained(tmp_path / "model")
