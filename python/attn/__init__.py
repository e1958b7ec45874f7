# SPDX-License-Identifier: MIT
"""attn: fused self-attention on the CPU, forward and backward, with structured masks.

    import attn, numpy as np
    q = np.random.randn(1, 8, 4096, 64).astype(np.float32)
    out = attn.scaled_dot_product_attention(q, q, q, window=(32, 32))

Shapes follow PyTorch: query (B, NH, T, HS), key (B, NH_kv, S, HS), value (B, NH_kv, S, HSV); also
(NH, T, HS) and (T, HS). float32 arrays of any (non-negative) strides are read in place and run on the
fused kernel; float64 arrays run the reference implementation in double. See docs/python.md.
"""
import numpy as _np

from . import _attn
from . import audio
from ._attn import available_simd_targets, get_num_threads, set_num_threads, set_simd_target, simd_target

__version__ = _attn.__version__
__all__ = [
    "scaled_dot_product_attention", "attention_backward", "positional_encoding", "alibi_slopes",
    "set_num_threads", "get_num_threads", "simd_target", "set_simd_target", "available_simd_targets", "set_check_finite", "get_check_finite", "nn", "audio",
]

_check_finite = True


def set_check_finite(enabled):
    """Whether attn's Python entry points reject NaN and Inf in inputs and loaded weights (default True).

    With False they compute with them, and NaN/Inf propagate as docs/masks.md describes. The functions that
    take a check_finite argument use this setting when it is None."""
    global _check_finite
    _check_finite = bool(enabled)


def get_check_finite():
    return _check_finite


def _checking(check_finite):
    return _check_finite if check_finite is None else bool(check_finite)


def _check_array_finite(fn, name, a, hint="check_finite=False (or attn.set_check_finite(False)) accepts it"):
    """Raises ValueError naming the first NaN/Inf of a numpy array, as the extension's own check does."""
    if a.dtype.kind != "f" or _np.isfinite(a).all():
        return
    index = [int(i) for i in _np.argwhere(~_np.isfinite(a))[0]]
    raise ValueError(f"{fn}: {name} (shape {tuple(a.shape)}) holds {a[tuple(index)]} at {index}; {hint}")


_FLOATS = (_np.dtype(_np.float32), _np.dtype(_np.float64))


def _as_array(x, name):
    a = x if type(x) is _np.ndarray else _np.asarray(x)
    if a.dtype not in _FLOATS:
        raise TypeError(f"attn: {name} must be float32 or float64, got {a.dtype}")
    if a.ndim and min(a.strides) < 0:  # the kernels take non-negative strides; copy reversed views
        a = _np.ascontiguousarray(a)
    return a


def _to4d(a, name):
    if a.ndim == 4:
        return a
    if a.ndim not in (2, 3):
        raise ValueError(f"attn: {name} must have 2, 3 or 4 dimensions ((T, HS), (NH, T, HS) or (B, NH, T, HS)), "
                         f"got shape {a.shape}")
    return a[(None,) * (4 - a.ndim)]


def _bias_4d(attn_mask, dtype, B, NH, T, S):
    """PyTorch's attn_mask (bool: True = attend; float: added), broadcast to (B|1, NH|1, T, S).
    Returns (bias array or None, the float mask's original shape or None)."""
    if attn_mask is None:
        return None, None
    m = _np.asarray(attn_mask)
    if m.ndim > 4:
        raise ValueError(f"attn: attn_mask must have at most 4 dimensions, got shape {m.shape}")
    m4 = m[(None,) * (4 - m.ndim)]
    want = (B, NH, T, S)
    for i, (got, full) in enumerate(zip(m4.shape, want)):
        if got not in (1, full):
            raise ValueError(f"attn: attn_mask of shape {m.shape} does not broadcast to (B, NH, T, S) = {want}")
    if m.dtype == _np.bool_:
        bias = _np.where(m4, _np.array(0, dtype), _np.array(-_np.inf, dtype))
        float_shape = None
    elif m.dtype in (_np.float32, _np.float64):
        bias = m4.astype(dtype, copy=False)
        if any(s < 0 for s in bias.strides):
            bias = _np.ascontiguousarray(bias)
        float_shape = m.shape
    else:
        raise TypeError(f"attn: attn_mask must be bool or float, got {m.dtype}")
    # Size-1 T or S dimensions become stride-0 views (no copy); B and NH broadcast inside the kernel.
    bias = _np.broadcast_to(bias, (bias.shape[0], bias.shape[1], T, S))
    return bias, float_shape


# The mask arguments of _attn.sdpa / sdpa_backward, in order: causal, query_offset, window_left,
# window_right, dilation, chunk_size, num_left_chunks, key_lengths, alibi_slopes, scale.
_NO_MASK = (False, 0, -1, -1, 1, 0, -1, None, None, None)


def _check_mask_scalars(is_causal, dilation, query_offset):
    """The mask arguments that are one number each (an array there made "dilation == 1" ambiguous)."""
    for name, v in (("is_causal", is_causal), ("dilation", dilation), ("query_offset", query_offset)):
        if _np.ndim(v) != 0:
            raise TypeError(f"attn: {name} must be a scalar, got {type(v).__name__} of shape {tuple(_np.shape(v))}")


def _mask_args(NH, is_causal, scale, window, dilation, chunk, key_lengths, query_offset, alibi):
    _check_mask_scalars(is_causal, dilation, query_offset)
    if (window is None and chunk is None and key_lengths is None and alibi is False and dilation == 1
            and query_offset == 0 and scale is None):
        return (True,) + _NO_MASK[1:] if is_causal else _NO_MASK
    left = right = -1
    if window is not None:
        if len(window) != 2:
            raise ValueError(f"attn: window must be (left, right), got {window!r}")
        left, right = int(window[0]), int(window[1])
    size, chunks_left = 0, -1
    if chunk is not None:
        size, chunks_left = (chunk, -1) if _np.isscalar(chunk) else tuple(chunk)
        if int(size) < 1:
            raise ValueError(f"attn: chunk size must be >= 1, got {size}")
    lengths = None if key_lengths is None else [int(n) for n in _np.asarray(key_lengths).reshape(-1)]
    slopes = None
    if alibi is not False and alibi is not None:
        values = _attn.alibi_slopes(NH) if alibi is True else _np.asarray(alibi, dtype=_np.float32).reshape(-1)
        slopes = [float(x) for x in values]
    return (bool(is_causal), int(query_offset), left, right, int(dilation), int(size), int(chunks_left), lengths,
            slopes, None if scale is None else float(scale))


def _prepare(query, key, value, attn_mask, is_causal, scale, window, dilation, chunk, key_lengths, query_offset,
             alibi):
    q, k, v = _as_array(query, "query"), _as_array(key, "key"), _as_array(value, "value")
    if not (q.dtype == k.dtype and k.dtype == v.dtype):
        raise TypeError(f"attn: query, key and value must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.ndim == k.ndim == v.ndim):
        raise ValueError(f"attn: query, key and value must have the same rank, got shapes {q.shape}, {k.shape}, "
                         f"{v.shape}")
    rank = q.ndim
    q4, k4, v4 = _to4d(q, "query"), _to4d(k, "key"), _to4d(v, "value")
    B, NH, T = q4.shape[:3]
    S = k4.shape[2]
    bias, float_shape = _bias_4d(attn_mask, q.dtype, B, NH, T, S)
    mask = _mask_args(NH, is_causal, scale, window, dilation, chunk, key_lengths, query_offset, alibi)
    return rank, q4, k4, v4, bias, float_shape, mask


def _restore(x, rank):
    """Drops the leading dimensions _to4d added."""
    return x.reshape(x.shape[4 - rank:]) if rank < 4 else x


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None, *, window=None,
                                 dilation=1, chunk=None, key_lengths=None, query_offset=0, alibi=False,
                                 return_lse=False, return_probs=False, check_finite=None):
    """softmax(scale · q kᵀ + mask) v, as torch.nn.functional.scaled_dot_product_attention.

    attn_mask: bool (True = attend) or float (added), broadcastable to (B, NH, T, S).
    is_causal: key s visible to query t iff s <= t + query_offset (top-left, as PyTorch).
    window=(left, right): t - left <= s <= t + right (-1 = unbounded), as flash-attn's window_size.
    dilation: interval sampling, only keys with (t - s) % dilation == 0.
    chunk=size or (size, left_chunks): WeNet's chunk mask (streaming).
    key_lengths: one length per batch entry (padding at the end, no dense mask).
    query_offset: position of query 0 on the key axis (S - T is flash-attn's bottom-right alignment).
    alibi: True (the usual per-head slopes) or an array of NH slopes.
    check_finite: reject NaN or Inf in query, key, value and attn_mask (-inf allowed there) naming the first
      one (default: attn.get_check_finite(), True unless changed).
    Returns out, plus lse (B, NH, T) and probs (B, NH, T, S) when asked, as a tuple.
    """
    rank, q, k, v, bias, _, mask = _prepare(query, key, value, attn_mask, is_causal, scale, window, dilation, chunk,
                                            key_lengths, query_offset, alibi)
    out, lse, probs = _attn.sdpa(q, k, v, bias, *mask, bool(return_probs), _checking(check_finite))
    if rank == 4 and not return_lse and not return_probs:
        return out
    results = [_restore(out, rank)]
    if return_lse:
        results.append(lse.reshape(lse.shape[4 - rank:]) if rank < 4 else lse)
    if return_probs:
        results.append(_restore(probs, rank))
    return results[0] if len(results) == 1 else tuple(results)


def attention_backward(query, key, value, out, lse, grad_out, attn_mask=None, is_causal=False, scale=None, *,
                       window=None, dilation=1, chunk=None, key_lengths=None, query_offset=0, alibi=False,
                       check_finite=None):
    """Gradients of scaled_dot_product_attention for grad_out (shape of out), given its out and lse.

    Returns (dq, dk, dv), plus d(attn_mask) in the mask's own shape when attn_mask is a float mask.
    """
    rank, q, k, v, bias, float_shape, mask = _prepare(query, key, value, attn_mask, is_causal, scale, window,
                                                      dilation, chunk, key_lengths, query_offset, alibi)
    o = _to4d(_as_array(out, "out"), "out")
    g = _to4d(_as_array(grad_out, "grad_out"), "grad_out")
    lse_a = _as_array(lse, "lse")
    lse4 = lse_a[(None,) * (3 - lse_a.ndim)] if lse_a.ndim < 3 else lse_a
    for name, a in (("out", o), ("lse", lse4), ("grad_out", g)):
        if a.dtype != q.dtype:
            raise TypeError(f"attn: {name} must have the dtype of query ({q.dtype}), got {a.dtype}")
    dq, dk, dv, dbias = _attn.sdpa_backward(q, k, v, o, lse4, g, bias, *mask, float_shape is not None,
                                            _checking(check_finite))
    grads = (_restore(dq, rank), _restore(dk, rank), _restore(dv, rank))
    if float_shape is None:
        return grads
    # Sum over the dimensions the mask was broadcast along, back to its own shape.
    lead = 4 - len(float_shape)
    full = (1,) * lead + tuple(float_shape)
    axes = tuple(i for i in range(4) if full[i] == 1 and dbias.shape[i] != 1)
    dmask = dbias.sum(axis=axes, keepdims=True) if axes else dbias
    return grads + (_np.ascontiguousarray(dmask.reshape(float_shape)),)


def positional_encoding(positions, dim, *, start=0, base=10000.0):
    """The sinusoidal table PE (positions, dim) of "Attention is all you need" (rows start .. start+positions-1)."""
    return _attn.positional_encoding(int(positions), int(dim), int(start), float(base))


def alibi_slopes(num_heads):
    """ALiBi's per-head slopes (Press et al.), float32 array of num_heads."""
    return _attn.alibi_slopes(int(num_heads))


from . import nn  # noqa: E402  (after the functions nn uses)
