# SPDX-License-Identifier: MIT
"""attn.scaled_dot_product_attention / attention_backward against PyTorch's autograd of the same math in
float64, for every mask kind, bool and float masks, GQA, the three input ranks and strided views."""
import itertools
import os

import numpy as np
import pytest

import attn
from conftest import dense_mask

torch = pytest.importorskip("torch")

MASKS = [
    dict(),
    dict(is_causal=True),
    dict(window=(3, 1)),
    dict(window=(0, 0)),
    dict(window=(-1, 2)),
    dict(dilation=3),
    dict(window=(6, 6), dilation=2),
    dict(chunk=3),
    dict(chunk=(2, 1)),
    dict(key_lengths=[11, 5]),
    dict(alibi=True),
    dict(is_causal=True, query_offset=4),
    dict(is_causal=True, window=(4, 0), dilation=2, chunk=(4, 1), key_lengths=[11, 7], alibi=True, query_offset=2),
]


def torch_reference(q, k, v, mask4, scale, attn_bias=None):
    """softmax(scale q kᵀ + mask) v in float64 autograd; fully masked rows -> 0 (attn's documented choice)."""
    group = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    scores = scale * q @ kk.transpose(-1, -2) + torch.from_numpy(mask4)
    if attn_bias is not None:
        scores = scores + attn_bias
    empty = torch.isinf(scores).all(-1, keepdim=True)
    p = torch.softmax(scores.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)
    return p @ vv


def make(rng, B=2, NH=4, NH_kv=2, T=9, S=11, HS=8, HSV=6, dtype=np.float32):
    return (rng.standard_normal((B, NH, T, HS)).astype(dtype), rng.standard_normal((B, NH_kv, S, HS)).astype(dtype),
            rng.standard_normal((B, NH_kv, S, HSV)).astype(dtype))


def check_against_torch(q, k, v, dout, attn_mask=None, float_mask=None, tol=2e-5, **opts):
    B, NH, T, _ = q.shape
    S = k.shape[2]
    alibi = attn.alibi_slopes(NH) if opts.get("alibi") is True else None
    window = opts.get("window")
    mask4 = dense_mask(B, NH, T, S, causal=opts.get("is_causal", False), window=window,
                       dilation=opts.get("dilation", 1), chunk=opts.get("chunk"), key_lengths=opts.get("key_lengths"),
                       query_offset=opts.get("query_offset", 0), alibi=alibi)
    if attn_mask is not None:  # bool: True = attend
        mask4 = mask4 + np.where(np.broadcast_to(attn_mask, mask4.shape), 0.0, -np.inf)
    tq, tk, tv = (torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in (q, k, v))
    tb = None if float_mask is None else torch.tensor(np.asarray(float_mask, np.float64), requires_grad=True)
    scale = 1.0 / np.sqrt(q.shape[-1])
    ref = torch_reference(tq, tk, tv, mask4, scale, tb)
    ref.backward(torch.from_numpy(np.asarray(dout, np.float64)))
    mask_arg = attn_mask if float_mask is None else float_mask
    out, lse = attn.scaled_dot_product_attention(q, k, v, mask_arg, return_lse=True, **opts)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=tol, rtol=tol)
    grads = attn.attention_backward(q, k, v, out, lse, dout, mask_arg, **opts)
    for got, want in zip(grads, (tq.grad, tk.grad, tv.grad) + (() if tb is None else (tb.grad,))):
        np.testing.assert_allclose(got, want.numpy(), atol=tol * 5, rtol=tol * 5)
    assert len(grads) == (3 if float_mask is None else 4)


@pytest.mark.parametrize("opts", MASKS, ids=[",".join(f"{k}" for k in m) or "none" for m in MASKS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_mask_kind_forward_and_backward(rng, opts, dtype):
    q, k, v = make(rng, dtype=dtype)
    dout = rng.standard_normal((2, 4, 9, 6)).astype(dtype)
    check_against_torch(q, k, v, dout, tol=2e-5 if dtype == np.float32 else 1e-10, **opts)


def test_bool_and_float_attn_mask(rng):
    q, k, v = make(rng)
    dout = rng.standard_normal((2, 4, 9, 6)).astype(np.float32)
    allowed = rng.random((9, 11)) > 0.3  # True = attend, broadcast over B and NH
    check_against_torch(q, k, v, dout, attn_mask=allowed, window=(4, 4))
    for shape in [(9, 11), (1, 4, 9, 11), (2, 1, 9, 11), (2, 4, 9, 11), (1, 1, 1, 11), (9, 1)]:
        bias = rng.standard_normal(shape).astype(np.float32)
        check_against_torch(q, k, v, dout, float_mask=bias, is_causal=True)


def test_three_input_ranks(rng):
    q, k, v = make(rng, B=1, NH=1, NH_kv=1)
    full = attn.scaled_dot_product_attention(q, k, v, window=(2, 2))
    three = attn.scaled_dot_product_attention(q[0], k[0], v[0], window=(2, 2))
    two, lse = attn.scaled_dot_product_attention(q[0, 0], k[0, 0], v[0, 0], window=(2, 2), return_lse=True)
    assert three.shape == (1, 9, 6) and two.shape == (9, 6) and lse.shape == (9,)
    np.testing.assert_array_equal(full[0], three)
    np.testing.assert_array_equal(full[0, 0], two)
    dq, dk, dv = attn.attention_backward(q[0, 0], k[0, 0], v[0, 0], two, lse, np.ones_like(two), window=(2, 2))
    assert dq.shape == (9, 8) and dk.shape == (11, 8) and dv.shape == (11, 6)


def test_strided_and_transposed_views_give_the_same_result(rng):
    q, k, v = make(rng, NH_kv=4)
    want = attn.scaled_dot_product_attention(q, k, v, is_causal=True)
    # (B, T, NH, HS) memory seen as (B, NH, T, HS); every other element; a Fortran-ordered copy; reversed
    qt = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    kw = np.zeros((2, 4, 11, 16), np.float32)
    kw[..., ::2] = k
    vf = np.asfortranarray(v)
    vr = np.ascontiguousarray(v[:, :, ::-1])[:, :, ::-1]
    for qq, kk, vv in [(qt, k, v), (q, kw[..., ::2], v), (q, k, vf), (q, k, vr)]:
        np.testing.assert_allclose(attn.scaled_dot_product_attention(qq, kk, vv, is_causal=True), want, atol=1e-6)


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def test_float32_inputs_are_read_in_place(rng):
    # q and k: 32 MiB each, as transposed (strided) views; a copy of either would raise the peak by 32 MiB.
    T, NH, HS = 16384, 8, 64
    base_q = rng.standard_normal((1, T, NH, HS), dtype=np.float32)
    base_k = rng.standard_normal((1, T, NH, HS), dtype=np.float32)
    v = rng.standard_normal((1, NH, T, 1), dtype=np.float32)
    q, k = base_q.transpose(0, 2, 1, 3), base_k.transpose(0, 2, 1, 3)
    assert not q.flags.c_contiguous
    attn.scaled_dot_product_attention(q[:, :, :64], k[:, :, :64], v[:, :, :64])  # warm up (threads, scratch)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS counter here")
    before = peak_rss_mib()
    out = attn.scaled_dot_product_attention(q, k, v, window=(16, 16))
    grown = peak_rss_mib() - before
    assert out.shape == (1, NH, T, 1)
    assert grown < 16, f"peak RSS grew by {grown:.1f} MiB: an input was copied"


def test_bad_input_raises_with_the_message(rng):
    q, k, v = make(rng)
    k3, v3 = np.concatenate([k, k[:, :1]], 1), np.concatenate([v, v[:, :1]], 1)
    cases = [
        (lambda: attn.scaled_dot_product_attention(q, k[:, :, :, :5], v), ValueError, "head size 5"),
        (lambda: attn.scaled_dot_product_attention(q, k3, v3), ValueError, "not a multiple"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, window=(-3, 1)), ValueError, "window_left"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, key_lengths=[1, 2, 3]), ValueError, "key_lengths has 3"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, key_lengths=[12, 1]), ValueError, "key_lengths[0] = 12"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, dilation=0), ValueError, "dilation"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, chunk=0), ValueError, "chunk size"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, alibi=[1.0]), ValueError, "alibi_slopes has 1"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, scale=float("nan")), ValueError, "scale must be finite"),
        (lambda: attn.scaled_dot_product_attention(q, k, v, np.zeros((3, 9, 11), np.float32)), ValueError,
         "does not broadcast"),
        (lambda: attn.scaled_dot_product_attention(q, k.astype(np.float64), v), TypeError, "one dtype"),
        (lambda: attn.scaled_dot_product_attention(q.astype(np.int32), k, v), TypeError, "float32 or float64"),
        (lambda: attn.scaled_dot_product_attention(q[0, 0, 0], k, v), ValueError, "same rank"),
        (lambda: attn.scaled_dot_product_attention(q[None], k[None], v[None]), ValueError, "2, 3 or 4 dimensions"),
        (lambda: attn.attention_backward(q, k, v, q, q[..., 0], q), ValueError, "out has shape"),
        (lambda: attn.set_num_threads(-1), ValueError, "thread count"),
        (lambda: attn.positional_encoding(4, 0), ValueError, "dim must be >= 1"),
    ]
    for fn, error, fragment in cases:
        with pytest.raises(error) as e:
            fn()
        assert fragment in str(e.value), str(e.value)


def test_helpers(rng):
    pe = attn.positional_encoding(100, 128)
    assert pe.shape == (100, 128)
    np.testing.assert_allclose(pe[1, :4], [np.sin(1), np.cos(1), np.sin(1 / 10000 ** (2 / 128)),
                                           np.cos(1 / 10000 ** (2 / 128))], atol=1e-6)
    np.testing.assert_allclose(attn.alibi_slopes(8), 2.0 ** (-np.arange(1, 9)), rtol=1e-6)
    old = attn.get_num_threads()
    attn.set_num_threads(1)
    q, k, v = make(rng, T=200, S=200)
    one = attn.scaled_dot_product_attention(q, k, v)
    attn.set_num_threads(2)
    assert attn.get_num_threads() == 2
    np.testing.assert_array_equal(one, attn.scaled_dot_product_attention(q, k, v))  # bitwise, any thread count
    attn.set_num_threads(old)
    assert attn.simd_target()


def test_every_simd_target_gives_the_same_attention_within_rounding():
    rng = np.random.default_rng(3)
    q, k, v = make(rng, T=37, S=45)
    targets = attn.available_simd_targets()
    assert targets[0] == attn.simd_target()
    best = attn.scaled_dot_product_attention(q, k, v)
    try:
        for target in targets:
            attn.set_simd_target(target)
            assert attn.simd_target() == target
            np.testing.assert_allclose(attn.scaled_dot_product_attention(q, k, v), best, atol=2e-5, rtol=2e-5)
    finally:
        attn.set_simd_target("")
    assert attn.simd_target() == targets[0]
    with pytest.raises(ValueError, match="set_simd_target"):
        attn.set_simd_target("NOPE")


def test_fbank_simd_target_follows_the_wide_vector_policy():
    x = np.random.default_rng(4).standard_normal(4000).astype(np.float32)
    try:
        attn.audio.set_wide_vectors("allow")
        assert attn.audio.simd_target() == attn.simd_target()
        wide = attn.audio.fbank(x, num_mel_bins=40)
        attn.audio.set_wide_vectors("avoid")
        assert not attn.audio.simd_target().startswith("AVX3")
        np.testing.assert_allclose(attn.audio.fbank(x, num_mel_bins=40), wide, atol=1e-4)
        with pytest.raises(ValueError, match="attn.audio.set_wide_vectors: policy must be 'auto'"):
            attn.audio.set_wide_vectors("sometimes")
    finally:
        attn.audio.set_wide_vectors("auto")
    assert attn.audio.simd_target() in attn.available_simd_targets()
