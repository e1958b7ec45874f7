# SPDX-License-Identifier: MIT
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def dense_mask(B, NH, T, S, causal=False, window=None, dilation=1, chunk=None, key_lengths=None, query_offset=0,
               alibi=None):
    """The documented mask rules, written out independently: additive (B, NH, T, S) float64."""
    m = np.zeros((B, NH, T, S))
    t = np.arange(T)[:, None] + query_offset
    s = np.arange(S)[None, :]
    ok = np.ones((T, S), bool)
    if causal:
        ok &= s <= t
    if window is not None:
        left, right = window
        if left >= 0:
            ok &= s >= t - left
        if right >= 0:
            ok &= s <= t + right
    if dilation > 1:
        ok &= (t - s) % dilation == 0
    if chunk is not None:
        size, left = (chunk, -1) if np.isscalar(chunk) else chunk
        ct, cs = np.floor_divide(t, size), np.floor_divide(s, size)
        ok &= cs <= ct
        if left >= 0:
            ok &= cs >= ct - left
    m[:, :, ~ok] = -np.inf
    if key_lengths is not None:
        for b, n in enumerate(key_lengths):
            m[b, :, :, n:] = -np.inf
    if alibi is not None:
        m = m - np.asarray(alibi, np.float64)[None, :, None, None] * np.abs(t - s)[None, None]
    return m
