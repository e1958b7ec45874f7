# SPDX-License-Identifier: MIT
"""attn.torch: the autograd Function's gradients equal PyTorch's autograd of the same math, and a
TransformerEncoder whose attention runs on attn trains like PyTorch's own."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import attn.torch as at  # noqa: E402


def manual_sdpa(q, k, v, mask=None, causal=False):
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if causal:
        T, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        scores = scores + mask
    return torch.softmax(scores, -1) @ v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_equal_torch_autograd(dtype, causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 13, 8, dtype=dtype, requires_grad=True) for _ in range(3))
    bias = torch.randn(1, 4, 13, 13, dtype=dtype, requires_grad=True)
    # Separate leaves for attn; q as a transposed (strided) view, read in place.
    qa = q.detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
    ka, va, ba = (t.detach().clone().requires_grad_() for t in (k, v, bias))
    out = at.scaled_dot_product_attention(qa, ka, va, ba, is_causal=causal)
    want = manual_sdpa(q, k, v, bias, causal=causal)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(out, want, atol=tol, rtol=tol)
    g = torch.randn_like(out)
    out.backward(g)
    want.backward(g)
    for got, ref in ((qa.grad, q.grad), (ka.grad, k.grad), (va.grad, v.grad), (ba.grad, bias.grad)):
        torch.testing.assert_close(got, ref, atol=tol * 10, rtol=tol * 10)


def test_window_gradient_through_gradcheck():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 9, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, b, c: at.scaled_dot_product_attention(a, b, c, window=(2, 1)),
                                    (q, k, v))


def test_multihead_attention_is_a_drop_in():
    torch.manual_seed(2)
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    ours = at.MultiheadAttention(32, 4, batch_first=True)
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours, torch.nn.MultiheadAttention)
    x = torch.randn(2, 11, 32)
    pad = torch.zeros(2, 11, dtype=torch.bool)
    pad[1, 8:] = True
    mask = torch.triu(torch.ones(11, 11, dtype=torch.bool), 1)
    for kw in (dict(), dict(key_padding_mask=pad), dict(attn_mask=mask, average_attn_weights=False)):
        a, wa = ours(x, x, x, **kw)
        b, wb = ref(x, x, x, **kw)
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(wa, wb, atol=2e-6, rtol=1e-5)


def make_encoder(seed):
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.TransformerEncoder(layer, 2), torch.nn.Linear(32, 3))


def train_losses(model, steps=20):
    torch.manual_seed(7)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        x = torch.randn(4, 16, 8)
        target = torch.randint(0, 3, (4, 16))
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 3), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_transformer_encoder_trains_like_pytorch():
    ref = make_encoder(3)
    ours = at.replace_attention(copy.deepcopy(ref))
    n_replaced = sum(isinstance(m, at.MultiheadAttention) for m in ours.modules())
    assert n_replaced == 2
    want, got = train_losses(ref), train_losses(ours)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert got[-1] < got[0]


def test_replace_attention_keeps_what_attn_cannot_run():
    """kdim/vdim and add_bias_kv modules stay torch's, with a warning naming them (they were swapped and then
    failed on their first call)."""
    model = torch.nn.ModuleDict({"ok": torch.nn.MultiheadAttention(8, 2),
                                 "inner": torch.nn.ModuleDict({"kdim": torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4),
                                                               "bias_kv": torch.nn.MultiheadAttention(8, 2, add_bias_kv=True)})})
    with pytest.warns(UserWarning) as record:
        at.replace_attention(model)
    assert sorted(str(w.message).split(": ")[1].split(" ")[0] for w in record) == ["inner.bias_kv", "inner.kdim"]
    assert isinstance(model["ok"], at.MultiheadAttention)
    assert not isinstance(model["inner"]["kdim"], at.MultiheadAttention)
    x = torch.randn(5, 1, 8)
    model["inner"]["kdim"](x, torch.randn(5, 1, 4), torch.randn(5, 1, 4))  # still runs, as torch's


def test_bad_input():
    q = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match="dropout_p"):
        at.scaled_dot_product_attention(q, q, q, dropout_p=0.1)
    with pytest.raises(TypeError, match="float32 or float64"):
        at.scaled_dot_product_attention(q.half(), q, q)
    with pytest.raises(ValueError, match="head size"):
        at.scaled_dot_product_attention(q, q[..., :3], q)
    # Arguments of the wrong kind name themselves (they were an AttributeError on .requires_grad, or
    # torch's "Boolean value of Tensor ... is ambiguous" from the mask arguments).
    with pytest.raises(TypeError, match="key must be a torch.Tensor, got ndarray"):
        at.scaled_dot_product_attention(q, q.numpy(), q)
    with pytest.raises(TypeError, match="attn_mask must be a torch.Tensor or None, got list"):
        at.scaled_dot_product_attention(q, q, q, attn_mask=[[True]])
    with pytest.raises(TypeError, match=r"dilation must be a scalar, got Tensor of shape \(2,\)"):
        at.scaled_dot_product_attention(q, q, q, dilation=torch.tensor([1, 2]))


def test_inference_calls_equal_the_autograd_path():
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 4, 33, 16) for _ in range(3))
    qt = q.transpose(2, 3).contiguous().transpose(2, 3)  # strided, read in place
    with_grad = at.scaled_dot_product_attention(q.requires_grad_(), k, v, is_causal=True).detach()
    q.requires_grad_(False)
    with torch.no_grad():
        torch.testing.assert_close(at.scaled_dot_product_attention(qt, k, v, is_causal=True), with_grad, rtol=0,
                                   atol=0)
    plain = at.scaled_dot_product_attention(q, k, v, is_causal=True)  # nothing requires grad: no graph
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, with_grad, rtol=0, atol=0)
    with pytest.raises(ValueError, match="head size"):
        at.scaled_dot_product_attention(q, k[..., :5], v)
