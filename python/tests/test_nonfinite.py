# SPDX-License-Identifier: MIT
"""NaN and Inf at the Python entry points: rejected by default naming the array and the first bad index;
check_finite=False / attn.set_check_finite(False) lets them through, and they propagate as docs/masks.md says."""
import numpy as np
import pytest

import attn


@pytest.fixture
def qkv(rng):
    q, k, v = (rng.standard_normal((1, 2, 6, 4)).astype(np.float32) for _ in range(3))
    return q, k, v


def test_functional_rejects_nan_and_inf_naming_the_first_index(qkv):
    q, k, v = qkv
    q[0, 1, 4, 2] = np.nan
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: query \(shape \(1, 2, 6, 4\)\) holds nan "
                                         r"at \[0, 1, 4, 2\]; check_finite=False"):
        attn.scaled_dot_product_attention(q, k, v)
    v2 = v.copy()
    v2[0, 0, 3, 1] = np.inf
    with pytest.raises(ValueError, match=r"value .* holds inf at \[0, 0, 3, 1\]"):
        attn.scaled_dot_product_attention(k, k, v2)
    out = attn.scaled_dot_product_attention(q, k, v, check_finite=False)
    assert np.isnan(out[0, 1, 4]).all() and np.isfinite(np.delete(out[0, 1], 4, axis=0)).all()
    with pytest.raises(ValueError, match=r"attention_backward: grad_out .* holds nan at \[0, 0, 0, 0\]"):
        g = np.zeros_like(q)
        g[0, 0, 0, 0] = np.nan
        o, lse = attn.scaled_dot_product_attention(k, k, v, return_lse=True)
        attn.attention_backward(k, k, v, o, lse, g)


def test_float_masks_may_hold_minus_inf_but_not_nan_or_plus_inf(qkv):
    q, k, v = qkv
    mask = np.zeros((6, 6), np.float32)
    mask[:, 5] = -np.inf
    masked = attn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(masked, attn.scaled_dot_product_attention(q, k[:, :, :5], v[:, :, :5]), rtol=1e-5,
                               atol=1e-6)
    for bad in (np.nan, np.inf):
        mask[2, 3] = bad
        with pytest.raises(ValueError, match=r"attn_mask .* at \[0, 0, 2, 3\]"):
            attn.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_global_switch_and_hidden_keys(qkv):
    q, k, v = qkv
    k[0, 0, 5, 0] = np.nan  # the last key: hidden from every query but the last under a causal mask
    assert attn.get_check_finite()
    attn.set_check_finite(False)
    try:
        out = attn.scaled_dot_product_attention(q, k, v, is_causal=True)
    finally:
        attn.set_check_finite(True)
    assert np.isnan(out[0, 0, 5]).all()
    assert np.isfinite(out[0, 0, :5]).all() and np.isfinite(out[0, 1]).all()


def test_nn_rejects_nan_weights_and_inputs(rng):
    m = attn.nn.Linear(4, 3).eval()
    state = {k: v.copy() for k, v in m.state_dict().items()}
    state["weight"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"Linear.load_state_dict: state_dict\['weight'\] \(shape \(3, 4\)\) holds "
                                         r"nan at \[1, 2\]"):
        m.load_state_dict(state)
    m.load_state_dict(state, check_finite=False)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    assert np.isnan(m(x)[:, 1]).all()
    x[1, 0] = -np.inf
    with pytest.raises(ValueError, match=r"attn.nn: input \(shape \(2, 4\)\) holds -inf at \[1, 0\]"):
        m(x)


def test_torch_entry_point_checks_too(qkv):
    torch = pytest.importorskip("torch")
    import attn.torch as at
    q, k, v = (torch.from_numpy(a) for a in qkv)
    q[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"query .* holds nan at \[0, 0, 1, 1\]"):
        at.scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=r"query .* holds nan"):
        at.scaled_dot_product_attention(q.requires_grad_(), k, v)
