# SPDX-License-Identifier: MIT
"""attn.nn's image layers loaded from PyTorch modules give PyTorch's outputs; bad arguments raise."""
import numpy as np
import pytest

import attn

torch = pytest.importorskip("torch")
F = torch.nn.functional


def state_of(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def run(t, x):
    with torch.no_grad():
        return t(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("kw", [dict(kernel_size=3, padding=1), dict(kernel_size=(3, 2), stride=(2, 1), padding=(2, 1),
                                dilation=2), dict(kernel_size=3, groups=4, padding="same"),
                                dict(kernel_size=1, bias=False), dict(kernel_size=4, stride=4, padding="valid")])
def test_conv2d(rng, kw):
    torch.manual_seed(0)
    t = torch.nn.Conv2d(4, 8, **kw)
    m = attn.nn.Conv2d(4, 8, **kw)
    assert m.load_state_dict(state_of(t)) == ([], [])
    x = rng.standard_normal((2, 4, 12, 9)).astype(np.float32)
    np.testing.assert_allclose(m(x), run(t, x), atol=2e-5)


def test_conv1d(rng):
    t = torch.nn.Conv1d(4, 6, 5, stride=2, padding=2, groups=2)
    m = attn.nn.Conv1d(4, 6, 5, stride=2, padding=2, groups=2)
    m.load_state_dict(t.state_dict())
    x = rng.standard_normal((3, 4, 17)).astype(np.float32)
    np.testing.assert_allclose(m(x), run(t, x), atol=2e-5)


def test_pools_and_flatten(rng):
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    pairs = [(torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), attn.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (torch.nn.MaxPool2d(2), attn.nn.MaxPool2d(2)),
             (torch.nn.MaxPool2d(2, 1, dilation=2), attn.nn.MaxPool2d(2, 1, dilation=2)),
             (torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), attn.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
             (torch.nn.AvgPool2d(2, ceil_mode=True), attn.nn.AvgPool2d(2, ceil_mode=True)),
             (torch.nn.AdaptiveAvgPool2d((3, 4)), attn.nn.AdaptiveAvgPool2d((3, 4))),
             (torch.nn.AdaptiveAvgPool2d(1), attn.nn.AdaptiveAvgPool2d(1)),
             (torch.nn.AdaptiveAvgPool2d((None, 4)), attn.nn.AdaptiveAvgPool2d((None, 4))),
             (torch.nn.AdaptiveAvgPool2d((5, None)), attn.nn.AdaptiveAvgPool2d((5, None))),
             (torch.nn.Flatten(), attn.nn.Flatten())]
    for t, m in pairs:
        np.testing.assert_allclose(m(x), run(t, x), atol=1e-6, err_msg=repr(t))
    # An empty batch keeps its feature count, as PyTorch's (it was (0, 0)); a rank-1 input has no
    # dimension 1 to start from, an error in PyTorch (it was reshaped to (B, 1)).
    assert attn.nn.Flatten()(np.zeros((0, 3, 4), np.float32)).shape == (0, 12)
    keep_h = attn.nn.AdaptiveAvgPool2d((None, 2)).eval()  # a None size still has the Module methods
    assert keep_h.state_dict() == {} and keep_h(x).shape == (2, 3, 11, 2)
    for shape in [(5,), ()]:
        with pytest.raises(ValueError, match=r"Flatten::forward: x must be \(B, \.\.\.\) with rank >= 2, got \("):
            attn.nn.Flatten()(np.zeros(shape, np.float32))


def test_batch_norm_training_then_eval(rng):
    t = torch.nn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        t.weight.normal_(), t.bias.normal_()
    m = attn.nn.BatchNorm2d(3, momentum=0.2)
    m.load_state_dict(t.state_dict())
    assert sorted(m.state_dict()) == ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    for _ in range(3):  # training: batch statistics, running ones updated
        x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(np.float32)
        np.testing.assert_allclose(m(x), run(t, x), atol=2e-5)
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(m.state_dict()[k], t.state_dict()[k].numpy(), rtol=1e-5)
    t.eval(), m.eval()
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(m(x), run(t, x), atol=2e-5)
    t1, m1 = torch.nn.BatchNorm1d(4, affine=False), attn.nn.BatchNorm1d(4, affine=False)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(m1(x), run(t1, x), atol=2e-5)


@pytest.mark.parametrize("form", ["paper", "released"])
def test_self_attention_2d_matches_its_repository(rng, form):
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "gen_image_golden.py")
    spec = importlib.util.spec_from_file_location("gen_image_golden", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    torch.manual_seed(2)
    t = gen.PaperSelfAttn(16) if form == "paper" else gen.ReleasedAttention(16)
    with torch.no_grad():
        t.gamma.fill_(0.5)
    m = attn.nn.SelfAttention2d(16, form=form)
    assert m.load_state_dict(state_of(t)) == ([], [])
    x = rng.standard_normal((2, 16, 6, 8)).astype(np.float32)
    y, w = m(x, need_weights=True)
    with torch.no_grad():
        ty, tw = t(torch.from_numpy(x))
    np.testing.assert_allclose(y, ty.numpy(), atol=2e-5)
    np.testing.assert_allclose(w, tw.numpy(), atol=1e-5)
    assert m(x)[1] is None


def test_image_layers_reject_bad_arguments(rng):
    with pytest.raises(ValueError, match="groups = 3"):
        attn.nn.Conv2d(4, 8, 3, groups=3)
    with pytest.raises(ValueError, match="padding_mode"):
        attn.nn.Conv2d(4, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="even effective kernel"):
        attn.nn.Conv2d(4, 8, 2, padding="same")
    with pytest.raises(ValueError, match="return_indices"):
        attn.nn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="multiple of 8"):
        attn.nn.SelfAttention2d(12)
    conv = attn.nn.Conv2d(4, 8, 3)
    with pytest.raises(ValueError, match=r"Conv2d::forward.*\(2, 5, 8, 8\)"):
        conv(np.zeros((2, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match="H and W must be even"):
        attn.nn.SelfAttention2d(16, form="released")(np.zeros((1, 16, 5, 6), np.float32))
