# SPDX-License-Identifier: MIT
"""attn.torch: attn's fused CPU kernel inside PyTorch autograd (imports torch lazily: only this module
needs it).

    import attn.torch
    out = attn.torch.scaled_dot_product_attention(q, k, v, window=(32, 32))   # differentiable
    mha = attn.torch.MultiheadAttention(256, 8, batch_first=True)             # a torch.nn.MultiheadAttention
    attn.torch.replace_attention(model)   # swap every nn.MultiheadAttention of a model for attn's, in place

CPU float32 tensors are shared with the kernel both ways (no copies); float64 tensors run the reference.
"""
import warnings as _warnings

import numpy as _np
import torch as _torch
import torch.nn.functional as _F

from . import _NO_MASK, _attn, _check_mask_scalars, _checking, _prepare
from . import attention_backward as _attention_backward
from . import scaled_dot_product_attention as _sdpa

__all__ = ["scaled_dot_product_attention", "MultiheadAttention", "replace_attention"]
_F32 = _torch.float32


def _numpy(t, name):
    """The tensor's memory as a numpy array (no copy). Only CPU tensors have one; the dtype is checked by
    the numpy layer (float32 or float64; bool for masks)."""
    try:
        return t.detach().numpy() if t.requires_grad else t.numpy()
    except (AttributeError, TypeError, RuntimeError) as e:
        what = type(t).__name__ if not isinstance(t, _torch.Tensor) else f"{t.dtype} tensor on {t.device}"
        raise TypeError(f"attn.torch: {name} must be a CPU float32/float64 torch.Tensor, got {what} ({e})") from None


class _Attention(_torch.autograd.Function):
    """out = sdpa(q, k, v, mask); backward on attn's fused kernel (no T×S matrix in either pass)."""

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, options):
        mask_np = None if attn_mask is None else _numpy(attn_mask, "attn_mask")
        prepared = _prepare(_numpy(query, "query"), _numpy(key, "key"), _numpy(value, "value"), mask_np, **options)
        rank, q, k, v, bias, float_shape, mask = prepared
        out, lse, _ = _attn.sdpa(q, k, v, bias, *mask, False, _checking(None))
        out_t, lse_t = _torch.from_numpy(out), _torch.from_numpy(lse)
        ctx.save_for_backward(query, key, value, out_t, lse_t)
        ctx.attn_mask, ctx.options = attn_mask, options
        ctx.mark_non_differentiable(lse_t)
        if rank < 4:
            out_t, lse_t = out_t.reshape(out.shape[4 - rank:]), lse_t.reshape(lse.shape[4 - rank:])
        return out_t, lse_t

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        query, key, value, out, lse = ctx.saved_tensors
        mask = ctx.attn_mask
        mask_np = None if mask is None else _numpy(mask, "attn_mask")
        grads = _attention_backward(_numpy(query, "query"), _numpy(key, "key"), _numpy(value, "value"),
                                    out.numpy(), lse.numpy(), _numpy(grad_out, "grad_out").reshape(out.shape),
                                    mask_np, **ctx.options)
        dq, dk, dv = (_torch.from_numpy(g) for g in grads[:3])
        dmask = None
        if mask is not None and mask.requires_grad and len(grads) == 4:
            dmask = _torch.from_numpy(grads[3])
        return dq, dk, dv, dmask, None


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, *,
                                 window=None, dilation=1, chunk=None, key_lengths=None, query_offset=0, alibi=False,
                                 return_lse=False):
    """torch.nn.functional.scaled_dot_product_attention on attn's kernel, with autograd.

    Same shapes and mask semantics as attn.scaled_dot_product_attention (bool attn_mask: True = attend;
    float: added, and differentiable). dropout_p must be 0.
    """
    if dropout_p:
        raise ValueError("attn.torch.scaled_dot_product_attention: dropout_p is not supported (must be 0)")
    fn = "attn.torch.scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, _torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if attn_mask is not None and not isinstance(attn_mask, _torch.Tensor):
        raise TypeError(f"{fn}: attn_mask must be a torch.Tensor or None, got {type(attn_mask).__name__}")
    _check_mask_scalars(is_causal, dilation, query_offset)
    grad = _torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad or
                                         (attn_mask is not None and attn_mask.requires_grad))
    if (not grad and attn_mask is None and window is None and chunk is None and key_lengths is None and
            alibi is False and dilation == 1 and query_offset == 0 and scale is None and not return_lse and
            query.dtype is _F32 and key.dtype is _F32 and value.dtype is _F32 and
            query.dim() == 4 and key.dim() == 4 and value.dim() == 4):
        # The common inference call, straight to the kernel (the extension checks shapes and dtypes).
        out, _, _ = _attn.sdpa(query.numpy(), key.numpy(), value.numpy(), None, bool(is_causal), *_NO_MASK[1:],
                               False, _checking(None))
        return _torch.from_numpy(out)
    if isinstance(alibi, _torch.Tensor):
        alibi = alibi.detach().cpu().numpy()
    if isinstance(key_lengths, _torch.Tensor):
        key_lengths = key_lengths.detach().cpu().numpy()
    options = dict(is_causal=is_causal, scale=scale, window=window, dilation=dilation, chunk=chunk,
                   key_lengths=key_lengths, query_offset=query_offset, alibi=alibi)
    if not grad:  # inference: no autograd node, no saved tensors
        mask_np = None if attn_mask is None else _numpy(attn_mask, "attn_mask")
        result = _sdpa(_numpy(query, "query"), _numpy(key, "key"), _numpy(value, "value"), mask_np,
                       return_lse=return_lse, **options)
        return tuple(_torch.from_numpy(r) for r in result) if return_lse else _torch.from_numpy(result)
    out, lse = _Attention.apply(query, key, value, attn_mask, options)
    return (out, lse) if return_lse else out


def _padding_lengths(mask):
    """Per-row key lengths if every row of a bool (B, S) padding mask is "keys, then padding", else None."""
    m = mask.detach().cpu().numpy()
    lengths = (~m).sum(axis=1)
    expected = _np.arange(m.shape[1])[None, :] >= lengths[:, None]
    return lengths if _np.array_equal(m, expected) else None


class MultiheadAttention(_torch.nn.MultiheadAttention):
    """A drop-in torch.nn.MultiheadAttention (same constructor, parameters and state_dict) whose attention
    runs on attn. forward also takes attn's masks: window=(left, right), dilation, chunk, key_lengths, alibi."""

    @classmethod
    def from_module(cls, mha):
        """An attn MultiheadAttention sharing mha's parameters (same state, no copies)."""
        new = cls.__new__(cls)
        new.__dict__.update(mha.__dict__)
        return new

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False, *, window=None, dilation=1, chunk=None,
                key_lengths=None, alibi=False):
        if not _supported(self):
            raise ValueError("attn.torch.MultiheadAttention: kdim/vdim, add_bias_kv and add_zero_attn are not "
                             "supported")
        if self.training and self.dropout > 0:
            raise ValueError("attn.torch.MultiheadAttention: attention dropout is not supported (dropout must be 0 "
                             "while training)")
        unbatched = query.dim() == 2
        same = query is key and key is value
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        B, T, E = query.shape
        S, NH = key.shape[1], self.num_heads
        w, b = self.in_proj_weight, self.in_proj_bias
        if same:
            q, k, v = _F.linear(query, w, b).chunk(3, dim=-1)
        else:
            wq, wk, wv = w.chunk(3)
            bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
            q, k, v = _F.linear(query, wq, bq), _F.linear(key, wk, bk), _F.linear(value, wv, bv)
        # (B, L, E) -> (B, NH, L, HS): strided views, read in place by the kernel
        q, k, v = (t.unflatten(-1, (NH, E // NH)).transpose(1, 2) for t in (q, k, v))

        bias = None
        if attn_mask is not None:
            bias = attn_mask
            if bias.dtype == _torch.bool:  # MHA: True = not allowed
                bias = _torch.zeros(bias.shape, dtype=q.dtype).masked_fill(bias, float("-inf"))
            if bias.dim() == 3:  # (B·NH, T, S)
                bias = bias.view(B, NH, T, S)
        if key_padding_mask is not None:
            lengths = _padding_lengths(key_padding_mask) if key_padding_mask.dtype == _torch.bool else None
            if lengths is not None:
                key_lengths = lengths if key_lengths is None else _np.minimum(lengths, key_lengths)
            else:
                pad = key_padding_mask
                if pad.dtype == _torch.bool:
                    pad = _torch.zeros(pad.shape, dtype=q.dtype).masked_fill(pad, float("-inf"))
                pad = pad.to(q.dtype).view(B, 1, 1, S)
                bias = pad if bias is None else bias + pad
        options = dict(is_causal=is_causal and attn_mask is None, window=window, dilation=dilation, chunk=chunk,
                       key_lengths=key_lengths, alibi=alibi)
        out = scaled_dot_product_attention(q, k, v, bias, **options)
        out = _F.linear(out.transpose(1, 2).reshape(B, T, E), self.out_proj.weight, self.out_proj.bias)
        weights = None
        if need_weights:  # the probabilities from the kernel (O(T·S) memory; no gradient flows through them)
            if isinstance(options["key_lengths"], _torch.Tensor):
                options["key_lengths"] = options["key_lengths"].numpy()
            _, probs = _sdpa(_numpy(q, "query"), _numpy(k, "key"), _numpy(v, "value"),
                             None if bias is None else _numpy(bias, "attn_mask"), return_probs=True, **options)
            weights = _torch.from_numpy(probs.mean(axis=1) if average_attn_weights else probs)
            if unbatched:
                weights = weights[0]
        if unbatched:
            out = out[0]
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _supported(mha):
    return mha._qkv_same_embed_dim and mha.bias_k is None and not mha.add_zero_attn


def replace_attention(module, _prefix=""):
    """Replaces, in place, every torch.nn.MultiheadAttention inside module by attn's (parameters shared).
    Ones attn cannot run (kdim/vdim, add_bias_kv, add_zero_attn) stay PyTorch's, with a warning naming them."""
    for name, child in list(module.named_children()):
        path = _prefix + name
        if isinstance(child, _torch.nn.MultiheadAttention) and not isinstance(child, MultiheadAttention):
            if _supported(child):
                setattr(module, name, MultiheadAttention.from_module(child))
            else:
                _warnings.warn(f"attn.torch.replace_attention: {path} kept as torch's (kdim/vdim, add_bias_kv "
                               "or add_zero_attn are not supported)", stacklevel=2)
        else:
            replace_attention(child, path + ".")
    return module
