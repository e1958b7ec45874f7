# SPDX-License-Identifier: MIT
"""attn.nn modules loaded from a PyTorch module's state_dict give PyTorch's outputs."""
import re

import numpy as np
import pytest

import attn

torch = pytest.importorskip("torch")


def state_of(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_linear_and_layer_norm(rng):
    torch.manual_seed(0)
    x = rng.standard_normal((3, 5, 16)).astype(np.float32)
    for bias in (True, False):
        t = torch.nn.Linear(16, 7, bias=bias)
        m = attn.nn.Linear(16, 7, bias=bias)
        assert m.load_state_dict(state_of(t)) == ([], [])
        np.testing.assert_allclose(m(x), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    t = torch.nn.LayerNorm(16, eps=1e-6)
    with torch.no_grad():
        t.weight.normal_(), t.bias.normal_()
    m = attn.nn.LayerNorm(16, eps=1e-6)
    m.load_state_dict(t.state_dict())  # torch tensors are accepted too
    np.testing.assert_allclose(m(x), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    assert sorted(m.state_dict()) == ["bias", "weight"]


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_self_and_cross_with_masks(rng, batch_first):
    torch.manual_seed(1)
    t = torch.nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()
    m = attn.nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()
    m.load_state_dict(state_of(t))
    B, T, S = 2, 7, 9
    shape = (lambda L: (B, L, 32)) if batch_first else (lambda L: (L, B, 32))
    x = rng.standard_normal(shape(T)).astype(np.float32)
    mem = rng.standard_normal(shape(S)).astype(np.float32)
    pad = np.zeros((B, S), bool)
    pad[1, 6:] = True
    pad[0, 2] = True  # not a suffix: becomes part of the dense bias
    causal_bool = np.triu(np.ones((T, T), bool), 1)  # True = not allowed (MHA convention)
    float_mask = rng.standard_normal((T, S)).astype(np.float32)
    cases = [
        (x, x, x, dict()),
        (x, x, x, dict(attn_mask=causal_bool)),
        (x, mem, mem, dict(key_padding_mask=pad)),
        (x, mem, mem, dict(attn_mask=float_mask, key_padding_mask=pad, average_attn_weights=False)),
        (x[:, 0] if batch_first else x[:, 0], x[:, 0] if batch_first else x[:, 0], x[:, 0], dict()),  # unbatched
    ]
    for q, k, v, kw in cases:
        tk = {key: torch.from_numpy(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
        want, want_w = t(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), **tk)
        got, got_w = m(q, k, v, **kw)
        np.testing.assert_allclose(got, want.detach().numpy(), atol=2e-5)
        np.testing.assert_allclose(got_w, want_w.detach().numpy(), atol=2e-6)


def test_multihead_attention_kernel_masks_equal_dense_masks(rng):
    m = attn.nn.MultiheadAttention(16, 2, batch_first=True, seed=3).eval()
    x = rng.standard_normal((2, 12, 16)).astype(np.float32)
    t = np.arange(12)
    blocked = np.abs(t[:, None] - t[None, :]) > 2
    dense, _ = m(x, x, x, attn_mask=blocked, need_weights=False)
    windowed, _ = m(x, x, x, window=(2, 2), need_weights=False)
    np.testing.assert_allclose(windowed, dense, atol=1e-6)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layer_and_stack(rng, norm_first, activation):
    torch.manual_seed(2)
    t_layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation=activation, batch_first=True,
                                               norm_first=norm_first)
    t_enc = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(32), enable_nested_tensor=False).eval()
    t_layer.eval()
    layer = attn.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation=activation, batch_first=True,
                                            norm_first=norm_first)
    layer.load_state_dict(state_of(t_layer))
    layer.eval()
    enc = attn.nn.TransformerEncoder(layer, 2, norm=attn.nn.LayerNorm(32))
    assert enc.load_state_dict(state_of(t_enc)) == ([], [])
    enc.eval()
    x = rng.standard_normal((2, 10, 32)).astype(np.float32)
    pad = np.zeros((2, 10), bool)
    pad[1, 7:] = True
    mask = np.triu(np.ones((10, 10), bool), 1)
    with torch.no_grad():
        want_layer = t_layer(torch.from_numpy(x), src_mask=torch.from_numpy(mask))
        want_enc = t_enc(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(pad))
    np.testing.assert_allclose(layer(x, src_mask=mask), want_layer.numpy(), atol=5e-5)
    got = enc(x, src_key_padding_mask=pad)
    np.testing.assert_allclose(got[0], want_enc.numpy()[0], atol=5e-5)
    np.testing.assert_allclose(got[1, :7], want_enc.numpy()[1, :7], atol=5e-5)


def test_activation_given_as_a_callable():
    """torch's callables map to the kernel's activations; the tanh GELU is not the exact one, so it is refused
    (it was taken for 'gelu' by name)."""
    for fn, name in [(torch.nn.functional.gelu, "gelu"), (torch.nn.ReLU(), "relu"), (torch.nn.GELU(), "gelu")]:
        assert attn.nn.TransformerEncoderLayer(8, 2, 16, activation=fn).config["activation"] == name
    with pytest.raises(ValueError, match="only the exact GELU is supported, got approximate='tanh'"):
        attn.nn.TransformerEncoderLayer(8, 2, 16, activation=torch.nn.GELU(approximate="tanh"))


def test_modules_reject_bad_input():
    m = attn.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with pytest.raises(ValueError, match=r"query must be \(B, L, E\) .* E = 16, got shape \(2, 3, 8\)"):
        m(np.zeros((2, 3, 8), np.float32), np.zeros((2, 3, 8), np.float32), np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ValueError, match="missing"):
        m.load_state_dict({"in_proj_weight": np.zeros((48, 16), np.float32)})
    with pytest.raises(ValueError, match="add_bias_kv"):
        attn.nn.MultiheadAttention(16, 4, add_bias_kv=True)
    with pytest.raises(ValueError, match="dropout"):
        attn.nn.MultiheadAttention(16, 4, dropout=0.1)(np.zeros((3, 16)), np.zeros((3, 16)), np.zeros((3, 16)))


@pytest.mark.parametrize("shape", [(), (16,), (1, 2, 3, 16), (2, 5, 15)])
def test_attention_modules_name_a_bad_input_shape(shape):
    """Inputs that are neither (L, E) nor 3-D with E = embed_dim: a ValueError with the module, the argument
    and the caller's shape (a 1-D or 0-D one was an IndexError or numpy's "axes don't match array")."""
    x = np.zeros(shape, np.float32)
    shown = re.escape(str(shape))
    for m, call, what in [
            (attn.nn.MultiheadAttention(16, 4), lambda m: m(x, x, x),
             r"MultiheadAttention.forward: query must be \(L, B, E\)"),
            (attn.nn.MultiheadAttention(16, 4, batch_first=True), lambda m: m(x, x, x),
             r"MultiheadAttention.forward: query must be \(B, L, E\)"),
            (attn.nn.TransformerEncoderLayer(16, 4, 32), lambda m: m(x),
             r"TransformerEncoderLayer.forward: src must be"),
            (attn.nn.TransformerEncoder(attn.nn.TransformerEncoderLayer(16, 4, 32), 2), lambda m: m(x),
             r"TransformerEncoder.forward: src must be")]:
        with pytest.raises(ValueError, match=what + r".* E = 16, got shape " + shown):
            call(m.eval())
    mha = attn.nn.MultiheadAttention(16, 4).eval()
    with pytest.raises(ValueError, match=r"all batched or all unbatched, got shapes \(3, 16\), \(3, 2, 16\)"):
        mha(np.zeros((3, 16), np.float32), np.zeros((3, 2, 16), np.float32), np.zeros((3, 2, 16), np.float32))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional,batch_first,with_state,lengths",
                         [(False, False, False, None), (True, True, True, None), (True, False, True, [5, 1, 3]),
                          (False, True, False, [2, 5, 4])])
def test_rnn_matches_torch(kind, bidirectional, batch_first, with_state, lengths):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    torch.manual_seed(0)
    t = getattr(torch.nn, kind)(6, 5, num_layers=2, bidirectional=bidirectional, batch_first=batch_first).eval()
    m = getattr(attn.nn, kind)(6, 5, num_layers=2, bidirectional=bidirectional, batch_first=batch_first).eval()
    assert m.load_state_dict(t.state_dict()) == ([], [])
    D = 2 if bidirectional else 1
    x = torch.randn(*((3, 5, 6) if batch_first else (5, 3, 6)))
    h0 = torch.randn(2 * D, 3, 5) if with_state else None
    c0 = torch.randn(2 * D, 3, 5) if with_state else None
    hx = None if not with_state else ((h0, c0) if kind == "LSTM" else h0)
    with torch.no_grad():
        inp = x if lengths is None else pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                             enforce_sorted=False)
        ty, thn = t(inp, hx)
        if lengths is not None:
            ty, _ = pad_packed_sequence(ty, batch_first=batch_first, total_length=5)
    ahx = None if hx is None else ((h0.numpy(), c0.numpy()) if kind == "LSTM" else h0.numpy())
    y, hn = m(x.numpy(), ahx, lengths=lengths)
    np.testing.assert_allclose(y, ty.numpy(), atol=2e-6)
    if kind == "LSTM":
        np.testing.assert_allclose(hn[0], thn[0].numpy(), atol=2e-6)
        np.testing.assert_allclose(hn[1], thn[1].numpy(), atol=2e-6)
    else:
        np.testing.assert_allclose(hn, thn.numpy(), atol=2e-6)


def test_rnn_unbatched_and_errors():
    t = torch.nn.GRU(4, 3).eval()
    m = attn.nn.GRU(4, 3).eval()
    m.load_state_dict(t.state_dict())
    x = torch.randn(7, 4)
    with torch.no_grad():
        ty, th = t(x)
    y, h = m(x.numpy())
    assert y.shape == (7, 3) and h.shape == (1, 3)
    np.testing.assert_allclose(y, ty.numpy(), atol=2e-6)
    assert m.parameter_names() == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    with pytest.raises(ValueError, match=r"GRU.forward: input has 5 features \(shape \(7, 5\)\)"):
        m(np.zeros((7, 5), np.float32))
    with pytest.raises(ValueError, match=r"lengths\[0\] = 9 is not in \[1, T = 7\]"):
        attn.nn.LSTM(4, 3)(np.zeros((7, 1, 4), np.float32), lengths=[9])
    with pytest.raises(ValueError, match="proj_size is not supported"):
        attn.nn.LSTM(4, 3, proj_size=2)
