# SPDX-License-Identifier: MIT
"""attn.nn: attn's layers with PyTorch's constructor arguments, parameter names and forward semantics,
for inference on numpy arrays. Load a PyTorch module's weights with

    m = attn.nn.MultiheadAttention(256, 8, batch_first=True)
    m.load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})
    out, weights = m(x, x, x)

Modules start in training mode, as PyTorch's do; call .eval() for inference (dropout off).
Every module also accepts attn's kernel masks as keyword arguments of forward: window=(left, right),
dilation, chunk=(size, left_chunks), key_lengths, alibi=True. Those cost only the work they leave.
"""
import numpy as _np

from . import _attn, _check_array_finite, _checking, _mask_args

__all__ = ["Module", "Linear", "LayerNorm", "MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "LSTM", "GRU", "Conv2d", "Conv1d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
           "BatchNorm2d", "Flatten", "SelfAttention2d", "SpeechEncoder", "StreamingEncoder"]


class Module:
    """Common surface: state_dict(), load_state_dict(), train()/eval(), __call__ = forward."""

    _impl = None

    def state_dict(self):
        return self._impl.state_dict()

    def load_state_dict(self, state_dict, strict=True, check_finite=None):
        """state_dict: name -> array (numpy, or anything with .numpy() such as a CPU torch tensor).

        check_finite: reject weights holding NaN or Inf, naming the first (default attn.get_check_finite())."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"attn.nn.{type(self).__name__}.load_state_dict: state_dict must be a mapping of "
                            f"names to arrays, got {type(state_dict).__name__}")
        arrays = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else _np.asarray(v))
                  for k, v in state_dict.items()}
        if _checking(check_finite):
            for name, a in arrays.items():
                _check_array_finite(f"{type(self).__name__}.load_state_dict", f"state_dict[{name!r}]", a)
        missing, unexpected = self._impl.load_state_dict(arrays, strict)
        return missing, unexpected

    def train(self, mode=True):
        self._impl.set_training(bool(mode))
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self):
        return self._impl.training

    def parameter_names(self):
        return self._impl.parameter_names()

    def num_parameters(self):
        return self._impl.num_parameters()

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def _f32(x, name):
    a = _np.asarray(x)
    if a.dtype not in (_np.float32, _np.float64):
        raise TypeError(f"attn.nn: {name} must be a float array, got {a.dtype}")
    a = _np.asarray(a, dtype=_np.float32, order="C")  # (ascontiguousarray makes a 0-d array 1-d)
    if _checking(None):
        _check_array_finite("attn.nn", name, a, "attn.set_check_finite(False) accepts it")
    return a


def _check_sequence(fn, name, a, width, batch_first):
    """A sequence input as PyTorch's attention modules take it: (L, B, E), or (B, L, E) with batch_first, or
    unbatched (L, E), where E = width; checked on the caller's layout, before any transpose."""
    if a.ndim not in (2, 3) or a.shape[-1] != width:
        layout = "(B, L, E)" if batch_first else "(L, B, E)"
        raise ValueError(f"{fn}: {name} must be {layout} or unbatched (L, E) with E = {width}, got shape "
                         f"{a.shape}")


_MASK_KEYS = ("window_left", "window_right", "dilation", "chunk_size", "num_left_chunks", "key_lengths",
              "alibi_slopes")


def _kernel_mask_kwargs(window=None, dilation=1, chunk=None, key_lengths=None, alibi=False, num_heads=None):
    """attn's kernel masks as the C++ modules' keyword arguments, parsed as attn.scaled_dot_product_attention
    parses them."""
    args = _mask_args(num_heads, False, None, window, dilation, chunk, key_lengths, 0, alibi)
    return dict(zip(_MASK_KEYS, args[2:9]))


def _additive_mask(mask, name):
    """PyTorch's MHA/encoder masks: bool True = not allowed (-inf), float = added."""
    if mask is None:
        return None
    m = _np.asarray(mask)
    if m.dtype == _np.bool_:
        return _np.where(m, _np.float32(-_np.inf), _np.float32(0))
    if m.dtype in (_np.float32, _np.float64):
        return _np.ascontiguousarray(m, dtype=_np.float32)
    raise TypeError(f"attn.nn: {name} must be bool or float, got {m.dtype}")


class Linear(Module):
    """torch.nn.Linear: y = x Wᵀ + b; weight (out, in), bias (out)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, seed=0):
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._impl = _attn.nn.Linear(self.in_features, self.out_features, bool(bias), int(seed))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class LayerNorm(Module):
    """torch.nn.LayerNorm over the last dimension (normalized_shape an int or a 1-tuple)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        shape = (normalized_shape,) if _np.isscalar(normalized_shape) else tuple(normalized_shape)
        if len(shape) != 1:
            raise ValueError(f"attn.nn.LayerNorm: only the last dimension can be normalised, got {shape}")
        if elementwise_affine and not bias:
            raise ValueError("attn.nn.LayerNorm: bias=False with elementwise_affine is not supported")
        self.normalized_shape, self.eps = shape, float(eps)
        self._impl = _attn.nn.LayerNorm(int(shape[0]), self.eps, bool(elementwise_affine))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention (self- and cross-attention with kdim = vdim = embed_dim).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
            average_attn_weights=True, is_causal=False, **kernel_masks) -> (attn_output, attn_weights or None)
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None, *, seed=0):
        if add_bias_kv or add_zero_attn:
            raise ValueError("attn.nn.MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        if (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise ValueError("attn.nn.MultiheadAttention: kdim and vdim must equal embed_dim")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self._impl = _attn.nn.MultiheadAttention(self.embed_dim, self.num_heads, bool(bias), int(seed))

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False, *, window=None, dilation=1, chunk=None,
                key_lengths=None, alibi=False):
        if self.training and self.dropout > 0:
            raise ValueError("attn.nn.MultiheadAttention: attention dropout is not supported; call .eval()")
        same = query is key and key is value
        q, k, v = _f32(query, "query"), _f32(key, "key"), _f32(value, "value")
        fn = "attn.nn.MultiheadAttention.forward"
        for name, a in (("query", q), ("key", k), ("value", v)):
            _check_sequence(fn, name, a, self.embed_dim, self.batch_first)
        if not q.ndim == k.ndim == v.ndim:
            raise ValueError(f"{fn}: query, key and value must be all batched or all unbatched, got shapes "
                             f"{q.shape}, {k.shape} and {v.shape}")
        unbatched = q.ndim == 2
        if unbatched:
            q, k, v = q[None], k[None], v[None]
        elif not self.batch_first:  # (L, B, C) -> (B, L, C)
            q, k, v = (_np.ascontiguousarray(a.transpose(1, 0, 2)) for a in (q, k, v))
        if same:
            k = v = q
        B, T, S = q.shape[0], q.shape[1], k.shape[1]
        am = _additive_mask(attn_mask, "attn_mask")
        if am is not None and am.ndim == 3:  # (B·NH, T, S) -> (B, NH, T, S)
            am = am.reshape(B, self.num_heads, T, S)
        kpm = None
        if key_padding_mask is not None:
            pm = _np.asarray(key_padding_mask)
            if unbatched:
                pm = pm[None]
            if pm.dtype == _np.bool_:
                kpm = pm.astype(_np.float32)
            else:  # a float padding mask is added, as PyTorch does: fold it into attn_mask
                add = _np.asarray(pm, _np.float32).reshape(B, 1, 1, S)
                base = _np.zeros((1, 1, T, S), _np.float32) if am is None else (am if am.ndim == 4 else am[None, None])
                am = _np.ascontiguousarray(base + add)
        if is_causal and attn_mask is None:
            raise ValueError("attn.nn.MultiheadAttention: is_causal needs attn_mask, as in PyTorch "
                             "(or pass causal masks to attn.scaled_dot_product_attention)")
        kw = _kernel_mask_kwargs(window, dilation, chunk, key_lengths, alibi, self.num_heads)
        out, weights = self._impl.forward(q, k, v, kpm, am, bool(need_weights), bool(average_attn_weights), **kw)
        if unbatched:
            out = out[0]
            weights = None if weights is None else weights[0]
        elif not self.batch_first:
            out = _np.ascontiguousarray(out.transpose(1, 0, 2))
        return out, weights


class TransformerEncoderLayer(Module):
    """torch.nn.TransformerEncoderLayer (activation 'relu' or 'gelu')."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None, *, seed=0):
        if not isinstance(activation, str):
            if getattr(activation, "approximate", "none") != "none":
                raise ValueError("attn.nn.TransformerEncoderLayer: only the exact GELU is supported, got "
                                 f"approximate={activation.approximate!r}")
            name = getattr(activation, "__name__", type(activation).__name__).lower()
            activation = "gelu" if "gelu" in name else "relu" if "relu" in name else name
        self.config = dict(d_model=int(d_model), nhead=int(nhead), dim_feedforward=int(dim_feedforward),
                           dropout=float(dropout), activation=str(activation), layer_norm_eps=float(layer_norm_eps),
                           norm_first=bool(norm_first), bias=bool(bias))
        self.batch_first, self.seed = bool(batch_first), int(seed)
        self._impl = _attn.nn.TransformerEncoderLayer(**self.config, seed=self.seed)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False, **kernel_masks):
        return _encoder_forward(self, src, src_mask, src_key_padding_mask, kernel_masks)


class TransformerEncoder(Module):
    """torch.nn.TransformerEncoder: num_layers copies of encoder_layer ("layers.<i>.*") and an optional norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        if not isinstance(encoder_layer, TransformerEncoderLayer):
            raise TypeError("attn.nn.TransformerEncoder: encoder_layer must be an attn.nn.TransformerEncoderLayer")
        if norm is not None and not isinstance(norm, LayerNorm):
            raise TypeError("attn.nn.TransformerEncoder: norm must be an attn.nn.LayerNorm or None")
        self.config, self.batch_first = encoder_layer.config, encoder_layer.batch_first
        self.num_layers = int(num_layers)
        self.nhead = encoder_layer.config["nhead"]
        self._impl = _attn.nn.TransformerEncoder(**self.config, num_layers=self.num_layers,
                                                 final_norm=norm is not None, seed=encoder_layer.seed)
        # PyTorch deep-copies the layer: every layer starts with its weights.
        layer_state = encoder_layer.state_dict()
        state = {f"layers.{i}.{k}": v for i in range(self.num_layers) for k, v in layer_state.items()}
        if norm is not None:
            state.update({f"norm.{k}": v for k, v in norm.state_dict().items()})
        self._impl.load_state_dict(state, True)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None, **kernel_masks):
        return _encoder_forward(self, src, mask, src_key_padding_mask, kernel_masks)


def _encoder_forward(module, src, mask, src_key_padding_mask, kernel_masks):
    x = _f32(src, "src")
    _check_sequence(f"attn.nn.{type(module).__name__}.forward", "src", x, module.config["d_model"],
                    module.batch_first)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    elif not module.batch_first:
        x = _np.ascontiguousarray(x.transpose(1, 0, 2))
    am = _additive_mask(mask, "mask")
    kpm = None
    if src_key_padding_mask is not None:
        pm = _np.asarray(src_key_padding_mask)
        pm = pm[None] if unbatched else pm
        if pm.dtype != _np.bool_:
            raise TypeError("attn.nn: src_key_padding_mask must be bool (True = padding)")
        kpm = pm.astype(_np.float32)
    kw = _kernel_mask_kwargs(num_heads=module.config["nhead"], **kernel_masks)
    y = module._impl.forward(x, am, kpm, **kw)
    if unbatched:
        return y[0]
    return y if module.batch_first else _np.ascontiguousarray(y.transpose(1, 0, 2))


class _RNNBase(Module):
    """torch.nn.LSTM / GRU: input (T, B, input_size), (B, T, input_size) with batch_first, or unbatched
    (T, input_size); parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and _reverse).
    forward(input, hx=None, lengths=None): lengths (B values in [1, T]) act as
    pack_padded_sequence(..., enforce_sorted=False) then pad_packed_sequence(total_length=T): outputs past a
    sequence's end are 0 and its final state is the one at its last valid step."""

    _mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, seed=0):
        if proj_size:
            raise ValueError(f"attn.nn.{self._mode}: proj_size is not supported")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.batch_first, self.bidirectional, self.dropout = bool(batch_first), bool(bidirectional), float(dropout)
        self._impl = _attn.nn.RNN(self._mode, self.input_size, self.hidden_size, self.num_layers, bool(bias),
                                  self.batch_first, self.dropout, self.bidirectional, int(seed))

    def _run(self, input, h0, c0, lengths):
        x = _f32(input, "input")
        h0 = None if h0 is None else _f32(h0, "h0")
        c0 = None if c0 is None else _f32(c0, "c0")
        if lengths is not None:
            lengths = [int(v) for v in (lengths.tolist() if hasattr(lengths, "tolist") else lengths)]
        return self._impl.forward(x, h0, c0, lengths)


class LSTM(_RNNBase):
    __doc__ = _RNNBase.__doc__ + "\n    Returns (output, (h_n, c_n)); hx = (h0, c0), each (num_layers * directions, B, H)."
    _mode = "LSTM"

    def forward(self, input, hx=None, lengths=None):
        h0, c0 = (None, None) if hx is None else hx
        output, h_n, c_n = self._run(input, h0, c0, lengths)
        return output, (h_n, c_n)


class GRU(_RNNBase):
    __doc__ = _RNNBase.__doc__ + "\n    Returns (output, h_n); hx = h0 (num_layers * directions, B, H)."
    _mode = "GRU"

    def forward(self, input, hx=None, lengths=None):
        output, h_n, _ = self._run(input, hx, None, lengths)
        return output, h_n


def _pair(v, name, cls):
    t = (v, v) if _np.isscalar(v) else tuple(v)
    if len(t) != 2:
        raise ValueError(f"attn.nn.{cls}: {name} must be an int or a pair, got {v!r}")
    return [int(t[0]), int(t[1])]


def _conv_padding(padding, kernel, dilation, stride, cls):
    """An int/pair padding, or 'valid' / 'same' (odd effective kernels, stride 1), as torch's."""
    if padding == "valid":
        return [0] * len(kernel)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"attn.nn.{cls}: padding='same' needs stride 1, got {tuple(stride)}")
        span = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(v % 2 for v in span):
            raise ValueError(f"attn.nn.{cls}: padding='same' with an even effective kernel {tuple(kernel)} "
                             "pads unevenly; give the padding explicitly")
        return [v // 2 for v in span]
    if isinstance(padding, str):
        raise ValueError(f"attn.nn.{cls}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    return None


class Conv2d(Module):
    """torch.nn.Conv2d over (B, C_in, H, W): stride, padding (int, pair, 'valid', 'same'), dilation, groups
    (depthwise when groups == in_channels), bias. weight (C_out, C_in/groups, KH, KW), bias (C_out)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, seed=0):
        if padding_mode != "zeros":
            raise ValueError(f"attn.nn.Conv2d: padding_mode {padding_mode!r} is not supported (only 'zeros')")
        k, st, dl = (_pair(v, n, "Conv2d") for v, n in ((kernel_size, "kernel_size"), (stride, "stride"),
                                                         (dilation, "dilation")))
        pd = _conv_padding(padding, k, dl, st, "Conv2d") or _pair(padding, "padding", "Conv2d")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride, self.padding, self.dilation = tuple(k), tuple(st), tuple(pd), tuple(dl)
        self._impl = _attn.nn.Conv2d(self.in_channels, self.out_channels, k, st, pd, dl, self.groups,
                                     bool(bias), int(seed))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class Conv1d(Module):
    """torch.nn.Conv1d over (B, C_in, L): weight (C_out, C_in/groups, K), bias (C_out)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, seed=0):
        if padding_mode != "zeros":
            raise ValueError(f"attn.nn.Conv1d: padding_mode {padding_mode!r} is not supported (only 'zeros')")
        one = lambda v: int(v[0]) if not _np.isscalar(v) else int(v)  # noqa: E731
        k, st, dl = one(kernel_size), one(stride), one(dilation)
        pd = _conv_padding(padding, [k], [dl], [st], "Conv1d")
        pd = pd[0] if pd is not None else one(padding)
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride, self.padding, self.dilation = (k,), (st,), (pd,), (dl,)
        self._impl = _attn.nn.Conv1d(self.in_channels, self.out_channels, k, st, pd, dl, self.groups,
                                     bool(bias), int(seed))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class MaxPool2d(Module):
    """torch.nn.MaxPool2d over (B, C, H, W): kernel_size, stride (default kernel_size), padding, dilation,
    ceil_mode. return_indices is not supported."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        if return_indices:
            raise ValueError("attn.nn.MaxPool2d: return_indices is not supported")
        k = _pair(kernel_size, "kernel_size", "MaxPool2d")
        st = k if stride is None else _pair(stride, "stride", "MaxPool2d")
        self._impl = _attn.nn.MaxPool2d(k, st, _pair(padding, "padding", "MaxPool2d"),
                                        _pair(dilation, "dilation", "MaxPool2d"), bool(ceil_mode))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class AvgPool2d(Module):
    """torch.nn.AvgPool2d over (B, C, H, W): kernel_size, stride, padding, ceil_mode, count_include_pad.
    divisor_override is not supported."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        if divisor_override is not None:
            raise ValueError("attn.nn.AvgPool2d: divisor_override is not supported")
        k = _pair(kernel_size, "kernel_size", "AvgPool2d")
        st = k if stride is None else _pair(stride, "stride", "AvgPool2d")
        self._impl = _attn.nn.AvgPool2d(k, st, _pair(padding, "padding", "AvgPool2d"), bool(ceil_mode),
                                        bool(count_include_pad))

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d(output_size): (B, C, H, W) -> (B, C, OH, OW); None in output_size
    keeps that input size, as PyTorch's."""

    def __init__(self, output_size):
        pair = (output_size, output_size) if output_size is None or _np.isscalar(output_size) else tuple(output_size)
        if len(pair) != 2:
            raise ValueError(f"attn.nn.AdaptiveAvgPool2d: output_size must be an int, None or a pair, got {output_size!r}")
        self.output_size = tuple(None if v is None else int(v) for v in pair)
        # With a None, the module's size is known per input: forward makes one for it; this one
        # serves state_dict(), train() and the rest.
        self._impl = _attn.nn.AdaptiveAvgPool2d(*(1 if v is None else v for v in self.output_size))

    def forward(self, input):
        x = _f32(input, "input")
        if None not in self.output_size:
            return self._impl.forward(x)
        if x.ndim != 4:
            raise ValueError(f"attn.nn.AdaptiveAvgPool2d.forward: input must be (B, C, H, W), got shape {x.shape}")
        size = [x.shape[2 + i] if v is None else v for i, v in enumerate(self.output_size)]
        return _attn.nn.AdaptiveAvgPool2d(*size).forward(x)


class _BatchNorm(Module):
    _dims = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None):
        if momentum is None:
            raise ValueError(f"attn.nn.{type(self).__name__}: momentum=None (a cumulative average) is not supported")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self._impl = _attn.nn.BatchNorm(self.num_features, self.eps, self.momentum, bool(affine),
                                        bool(track_running_stats), self._dims)

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class BatchNorm1d(_BatchNorm):
    """torch.nn.BatchNorm1d over (B, C) or (B, C, L): batch statistics in training mode (updating
    running_mean / running_var), the running ones after .eval(). Buffers appear in state_dict()."""
    _dims = 1


class BatchNorm2d(_BatchNorm):
    """torch.nn.BatchNorm2d over (B, C, H, W), as BatchNorm1d."""
    _dims = 2


class Flatten(Module):
    """torch.nn.Flatten() (start_dim=1, end_dim=-1): (B, ...) -> (B, prod(...))."""

    def __init__(self, start_dim=1, end_dim=-1):
        if (start_dim, end_dim) != (1, -1):
            raise ValueError("attn.nn.Flatten: only start_dim=1, end_dim=-1 is supported")
        self._impl = _attn.nn.Flatten()

    def forward(self, input):
        return self._impl.forward(_f32(input, "input"))


class SelfAttention2d(Module):
    """The SAGAN block over (B, C, H, W), y = gamma * attention(x) + x with gamma starting at 0.
    form="paper": heykeetae/Self-Attention-GAN's Self_Attn (query_conv, key_conv, value_conv, gamma);
    form="released": BigGAN-PyTorch's Attention (theta, phi, g, o, gamma; keys and values 2x2 max-pooled).
    forward(x, need_weights=False) returns (y, attention), attention (B, H*W, keys) or None."""

    def __init__(self, channels, form="paper", *, seed=0):
        self.channels, self.form = int(channels), str(form)
        self._impl = _attn.nn.SelfAttention2d(self.channels, self.form, int(seed))

    def forward(self, input, need_weights=False):
        return self._impl.forward(_f32(input, "input"), bool(need_weights))


class SpeechEncoder(Module):
    """The speech encoder of WeNet's transformer models (docs/speech.md): feats (B, T, F) or (T, F), Kaldi
    fbank frames, -> Conv2dSubsampling4 (two 3x3 stride-2 convolutions + ReLU, then Linear) -> x*sqrt(C) +
    sinusoidal positions -> num_layers encoder layers -> LayerNorm -> (B, T', C), T' = ((T-1)//2-1)//2.
    forward(feats, window=..., chunk=(size, left_chunks), dilation=..., key_lengths=...) takes attn's kernel
    masks over encoder frames. Parameters "embed.*", "encoder.layers.<i>.*", "encoder.norm.*"."""

    def __init__(self, input_dim=80, d_model=256, nhead=4, dim_feedforward=1024, num_layers=12, dropout=0.1,
                 activation="relu", layer_norm_eps=1e-5, norm_first=True, *, seed=0):
        self.nhead, self.input_dim = int(nhead), int(input_dim)
        self._impl = _attn.nn.SpeechEncoder(int(input_dim), int(d_model), self.nhead, int(dim_feedforward),
                                            int(num_layers), float(dropout), str(activation),
                                            float(layer_norm_eps), bool(norm_first), int(seed))

    @classmethod
    def from_pretrained(cls, directory):
        """A model directory as `attn speech new-model` writes it (config.json + model.safetensors), in
        evaluation mode."""
        self = cls.__new__(cls)
        self._impl = _attn.nn.SpeechEncoder.from_dir(str(directory))
        import json
        config = json.loads(self._impl.config_json)
        self.nhead, self.input_dim = config.get("nhead", 4), config["input_dim"]
        return self

    def save_pretrained(self, directory):
        """Writes config.json and model.safetensors into directory (created), as `attn speech new-model`."""
        self._impl.save_dir(str(directory))

    @staticmethod
    def output_length(T):
        """Encoder frames for T feature frames (0 when T < 7)."""
        return _attn.nn.SpeechEncoder.output_length(int(T))

    def forward(self, feats, **kernel_masks):
        x = _f32(feats, "feats")
        width = self.input_dim
        if x.ndim not in (2, 3) or x.shape[-1] != width:  # checked on the caller's shape, before x[None]
            raise ValueError(f"attn.nn.SpeechEncoder.forward: feats must be (T, F) or (B, T, F) with F = "
                             f"input_dim = {width}, got shape {x.shape}")
        unbatched = x.ndim == 2
        y = self._impl.forward(x[None] if unbatched else x,
                               **_kernel_mask_kwargs(num_heads=self.nhead, **kernel_masks))
        return y[0] if unbatched else y


class StreamingEncoder:
    """A SpeechEncoder run on a stream: push(frames (n, F)) returns the encoder frames completed so far, in
    whole chunks of chunk_size; flush() returns the rest and resets. Equals encoder(feats, chunk=(chunk_size,
    num_left_chunks)) on the whole stream; its key/value caches hold num_left_chunks + 1 chunks per layer
    (-1: all). The encoder must be in eval() mode."""

    def __init__(self, encoder, chunk_size=16, num_left_chunks=4):
        if not isinstance(encoder, SpeechEncoder):
            raise TypeError("attn.nn.StreamingEncoder: encoder must be an attn.nn.SpeechEncoder")
        if encoder.training:
            raise ValueError("attn.nn.StreamingEncoder: the encoder is in training mode: call encoder.eval() first")
        self.encoder = encoder
        self._impl = _attn.nn.StreamingEncoder(encoder._impl, int(chunk_size), int(num_left_chunks))

    def push(self, frames):
        return self._impl.push(_f32(frames, "frames"))

    def flush(self):
        return self._impl.flush()

    @property
    def frames_emitted(self):
        return self._impl.frames_emitted

    @property
    def cache_bytes(self):
        return self._impl.cache_bytes
