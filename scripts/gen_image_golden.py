#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the image-layer fixtures under tests/golden/images/ (Debian's python3-torch:
/usr/bin/python3 scripts/gen_image_golden.py). Deterministic: fixed seeds.

One safetensors file per case, as scripts/gen_nn_golden.py writes them:
  param.<state_dict name>   the module's parameters and buffers before the forward (float32 values)
  in.x, in.dout             the input and the upstream gradient (float32 values)
  out.y                     PyTorch's output in float64 from those float32 values
  out.attention             the SAGAN blocks' attention map (B, N, S)
  after.<buffer>            BatchNorm's running statistics after the forward (training mode)
  grad.in.x, grad.param.<name>  gradients of sum(y·dout)
__metadata__["config"]: the module and its constructor arguments.

The two SAGAN forms are written here in torch as their repositories define them: the paper's block as
heykeetae/Self-Attention-GAN's Self_Attn, the released one as BigGAN-PyTorch's Attention (which
follows brain-research/self-attention-gan's sn_non_local_block_sim), without spectral norm.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_nn_golden import f32, f64, randn  # noqa: E402
from safetensors_writer import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "images")


class PaperSelfAttn(torch.nn.Module):
    """heykeetae/Self-Attention-GAN sagan_models.py Self_Attn (returning the attention too)."""

    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = torch.nn.Conv2d(in_dim, in_dim // 8, kernel_size=1)
        self.key_conv = torch.nn.Conv2d(in_dim, in_dim // 8, kernel_size=1)
        self.value_conv = torch.nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.gamma = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        B, C, width, height = x.size()
        proj_query = self.query_conv(x).view(B, -1, width * height).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(B, -1, width * height)
        attention = F.softmax(torch.bmm(proj_query, proj_key), dim=-1)
        proj_value = self.value_conv(x).view(B, -1, width * height)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1)).view(B, C, width, height)
        return self.gamma * out + x, attention


class ReleasedAttention(torch.nn.Module):
    """BigGAN-PyTorch layers.py Attention (plain convs in place of its spectral-norm ones)."""

    def __init__(self, ch):
        super().__init__()
        self.ch = ch
        self.theta = torch.nn.Conv2d(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.phi = torch.nn.Conv2d(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.g = torch.nn.Conv2d(ch, ch // 2, kernel_size=1, padding=0, bias=False)
        self.o = torch.nn.Conv2d(ch // 2, ch, kernel_size=1, padding=0, bias=False)
        self.gamma = torch.nn.Parameter(torch.tensor(0.), requires_grad=True)

    def forward(self, x):
        theta = self.theta(x)
        phi = F.max_pool2d(self.phi(x), [2, 2])
        g = F.max_pool2d(self.g(x), [2, 2])
        theta = theta.view(-1, self.ch // 8, x.shape[2] * x.shape[3])
        phi = phi.view(-1, self.ch // 8, x.shape[2] * x.shape[3] // 4)
        g = g.view(-1, self.ch // 2, x.shape[2] * x.shape[3] // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(-1, self.ch // 2, x.shape[2], x.shape[3]))
        return self.gamma * o + x, beta


def round_state(module):
    """Every parameter and buffer to a float32 value (held in float64)."""
    with torch.no_grad():
        for t in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            t.copy_(t.to(torch.float32).to(torch.float64))


def save(name, module, x, config, g, train=False):
    module = module.double()
    round_state(module)
    if config["module"].startswith("SelfAttention2d"):
        with torch.no_grad():  # a nonzero gamma, or the attention branch would get no gradient
            module.gamma.fill_(0.75)
    module.train(train)
    before = [(f"param.{k}", f32(v)) for k, v in module.state_dict().items()]
    x = x.clone().requires_grad_()
    result = module(x)
    y, attention = result if isinstance(result, tuple) else (result, None)
    dout = randn(g, *y.shape)
    (y * dout).sum().backward()
    tensors = before + [("in.x", f32(x)), ("in.dout", f32(dout)), ("out.y", f64(y))]
    if attention is not None:
        tensors.append(("out.attention", f64(attention)))
    if train:
        tensors += [(f"after.{k}", f32(v)) for k, v in module.named_buffers()]
    tensors.append(("grad.in.x", f64(x.grad)))
    tensors += [(f"grad.param.{k}", f64(p.grad)) for k, p in module.named_parameters()]
    config["torch"] = torch.__version__
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, {"config": json.dumps(config)})


def conv2d_case(g, name, cin, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, hw=(9, 8)):
    m = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                        bias=bias)
    kh, kw = (k, k) if isinstance(k, int) else k
    pair = lambda v: list(v) if isinstance(v, tuple) else [v, v]  # noqa: E731
    cfg = {"module": "Conv2d", "in": cin, "out": cout, "kernel": [kh, kw], "stride": pair(stride),
           "padding": pair(padding), "dilation": pair(dilation), "groups": groups, "bias": bias}
    save(name, m, randn(g, 2, cin, *hw), cfg, g)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(14)
    conv2d_case(g, "conv2d_3x3_pad1", 3, 5, 3, padding=1)
    conv2d_case(g, "conv2d_stride2_dil2", 4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=2)
    conv2d_case(g, "conv2d_groups2_nobias", 4, 6, 3, groups=2, bias=False, padding=1)
    conv2d_case(g, "conv2d_depthwise", 6, 6, 3, groups=6, stride=2, padding=1)
    conv2d_case(g, "conv2d_patch4", 1, 8, 4, stride=4, hw=(12, 8))
    m = torch.nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=1, groups=2)
    save("conv1d_stride2_groups2", m, randn(g, 3, 4, 17),
         {"module": "Conv1d", "in": 4, "out": 6, "kernel": 5, "stride": 2, "padding": 2,
          "dilation": 1, "groups": 2, "bias": True}, g)
    save("maxpool_3s2p1_ceil", torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), randn(g, 2, 3, 9, 10),
         {"module": "MaxPool2d", "kernel": 3, "stride": 2, "padding": 1, "dilation": 1, "ceil_mode": True}, g)
    save("maxpool_2_dil2", torch.nn.MaxPool2d(2, 1, 0, dilation=2), randn(g, 1, 2, 7, 6),
         {"module": "MaxPool2d", "kernel": 2, "stride": 1, "padding": 0, "dilation": 2, "ceil_mode": False}, g)
    save("avgpool_3s2p1_exclude", torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         randn(g, 2, 2, 9, 8), {"module": "AvgPool2d", "kernel": 3, "stride": 2, "padding": 1,
                                "ceil_mode": True, "count_include_pad": False}, g)
    save("avgpool_2", torch.nn.AvgPool2d(2), randn(g, 2, 2, 6, 7),
         {"module": "AvgPool2d", "kernel": 2, "stride": 2, "padding": 0, "ceil_mode": False,
          "count_include_pad": True}, g)
    save("adaptive_avgpool_3x2", torch.nn.AdaptiveAvgPool2d((3, 2)), randn(g, 2, 3, 7, 5),
         {"module": "AdaptiveAvgPool2d", "out": [3, 2]}, g)
    for train in (True, False):
        m = torch.nn.BatchNorm2d(4, momentum=0.2)
        with torch.no_grad():
            m.weight.copy_(torch.randn(4, generator=g))
            m.bias.copy_(torch.randn(4, generator=g))
            m.running_mean.copy_(torch.randn(4, generator=g))
            m.running_var.copy_(torch.rand(4, generator=g) + 0.5)
        x = (randn(g, 3, 4, 5, 6) * 2 + 1).to(torch.float32).to(torch.float64)
        save("batchnorm2d_" + ("train" if train else "eval"), m, x,
             {"module": "BatchNorm2d", "C": 4, "momentum": 0.2, "eps": 1e-5, "affine": True,
              "train": train}, g, train=train)
    m = torch.nn.BatchNorm1d(5, affine=False)
    save("batchnorm1d_train_noaffine", m, randn(g, 6, 5, 3), {"module": "BatchNorm1d", "C": 5,
         "momentum": 0.1, "eps": 1e-5, "affine": False, "train": True}, g, train=True)
    m = torch.nn.BatchNorm1d(5)
    save("batchnorm1d_2d_input", m, randn(g, 7, 5), {"module": "BatchNorm1d", "C": 5,
         "momentum": 0.1, "eps": 1e-5, "affine": True, "train": True}, g, train=True)
    save("sagan_paper", PaperSelfAttn(16), randn(g, 2, 16, 5, 6),
         {"module": "SelfAttention2d", "C": 16, "form": "paper"}, g)
    save("sagan_released", ReleasedAttention(16), randn(g, 2, 16, 6, 8),
         {"module": "SelfAttention2d", "C": 16, "form": "released"}, g)
    print("wrote", len(os.listdir(OUT)), "fixtures to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
