// SPDX-License-Identifier: MIT
// The SAGAN block (include/attn/nn/self_attention_2d.h): 1×1 convs, the fused attention kernel on
// (B, 1, N, ·) views of their NCHW outputs, and the γ-scaled residual.
#include "attn/nn/self_attention_2d.h"

#include "attn/ops/attention.h"
#include "nn/internal/module_helpers.h"

namespace attn::nn {
namespace {

constexpr const char* kPaperNames[] = {"query_conv", "key_conv", "value_conv"};
constexpr const char* kReleasedNames[] = {"theta", "phi", "g"};

int64_t value_channels(int64_t C, SaganForm form) { return form == SaganForm::kPaper ? C : C / 2; }

int64_t checked_channels(int64_t C) {
  if (C < 8 || C % 8 != 0)
    fail<ValueError>("SelfAttention2d", "channels must be a positive multiple of 8 (queries and ",
                     "keys have C/8), got ", C);
  return C;
}

// The (B, 1, N, C') sequence view of an NCHW tensor t (B, C', H, W): position n = h·W + w.
ConstTensorView as_sequence(const Tensor& t) {
  const int64_t B = t.dim(0), Cp = t.dim(1), N = t.dim(2) * t.dim(3);
  return t.view().reshape(Shape{B, 1, Cp, N}).transpose(2, 3);
}

// The NCHW view (B, C', H, W) of a contiguous (B, 1, N, C') sequence tensor.
template <typename T>
BasicView<T> as_image(BasicView<T> seq, int64_t H, int64_t W) {
  const int64_t B = seq.dim(0), N = seq.dim(2), Cp = seq.dim(3);
  Strides st{};
  st[0] = N * Cp;
  st[1] = 1;
  st[2] = W * Cp;
  st[3] = Cp;
  return BasicView<T>(seq.data(), Shape{B, Cp, H, W}, st);
}

// Σ a·b over all elements, in double (dγ).
double dot_all(ConstTensorView a, ConstTensorView b) {
  double s = 0.0;
  for_each_offset_pair(a, b, [&](int64_t i, int64_t j) {
    s += static_cast<double>(a.at_offset(i)) * static_cast<double>(b.at_offset(j));
  });
  return s;
}

}  // namespace

const char* sagan_form_name(SaganForm form) {
  return form == SaganForm::kPaper ? "paper" : "released";
}

SaganForm parse_sagan_form(const std::string& name) {
  if (name == "paper") return SaganForm::kPaper;
  if (name == "released") return SaganForm::kReleased;
  fail<ValueError>("parse_sagan_form", "'", name, "' is not a SAGAN form (paper, released)");
}

SelfAttention2d::SelfAttention2d(int64_t channels, SaganForm form, Rng& rng)
    : C_(checked_channels(channels)),
      form_(form),
      q_conv_(C_, C_ / 8, 1, 1, {}, form == SaganForm::kPaper, rng),
      k_conv_(C_, C_ / 8, 1, 1, {}, form == SaganForm::kPaper, rng),
      v_conv_(C_, value_channels(C_, form), 1, 1, {}, form == SaganForm::kPaper, rng),
      pool_(ops::Pool2dOptions{}) {
  const auto& names = form == SaganForm::kPaper ? kPaperNames : kReleasedNames;
  register_module(names[0], q_conv_);
  register_module(names[1], k_conv_);
  register_module(names[2], v_conv_);
  if (form == SaganForm::kReleased) {
    o_conv_ = std::make_unique<Conv2d>(C_ / 2, C_, 1, 1, ops::Conv2dOptions{}, false, rng);
    register_module("o", *o_conv_);
  }
  gamma_ = &register_parameter("gamma", form == SaganForm::kPaper ? Shape{1} : Shape{});
}

Tensor SelfAttention2d::forward(ConstTensorView x, Cache* cache, const Context& ctx,
                                Tensor* attention_map) {
  const char* fn = "SelfAttention2d::forward";
  if (!x.defined() || x.rank() != 4 || x.dim(1) != C_)
    fail<ShapeError>(fn, "x has shape ", x.defined() ? x.shape().str() : "(undefined)",
                     " but (B, C, H, W) with C = ", C_, " is expected");
  const bool released = form_ == SaganForm::kReleased;
  if (released && (x.dim(2) % 2 || x.dim(3) % 2))
    fail<ShapeError>(fn,
                     "the released form pools keys and values 2x2: H and W must be even, x has ",
                     "shape ", x.shape().str());
  Cache local;
  Cache& c = cache ? *cache : local;
  const bool keep = cache != nullptr;
  c.x_shape = x.shape();
  const int64_t H = x.dim(2), W = x.dim(3);
  c.q = q_conv_.forward(x, keep ? &c.q_conv : nullptr, ctx);
  c.k = k_conv_.forward(x, keep ? &c.k_conv : nullptr, ctx);
  c.v = v_conv_.forward(x, keep ? &c.v_conv : nullptr, ctx);
  if (released) {
    c.k = pool_.forward(c.k, keep ? &c.k_pool : nullptr, ctx);
    c.v = pool_.forward(c.v, keep ? &c.v_pool : nullptr, ctx);
  }
  ops::AttentionOptions options;
  options.scale = 1.0;  // SAGAN's scores are plain dot products
  options.return_probs = attention_map != nullptr;
  ops::AttentionResult r =
      ops::attention(as_sequence(c.q), as_sequence(c.k), as_sequence(c.v), options, {}, ctx);
  if (attention_map) {
    const int64_t B = x.dim(0), N = r.probs.dim(2), S = r.probs.dim(3);
    *attention_map = Tensor(Shape{B, N, S});
    copy(ConstTensorView(r.probs.view().reshape(Shape{B, N, S})), attention_map->view());
  }
  const ConstTensorView attended_image = as_image(ConstTensorView(r.out.view()), H, W);
  if (released) {
    Tensor a = Tensor::copy_of(attended_image);
    c.o = o_conv_->forward(a, keep ? &c.o_conv : nullptr, ctx);
  } else {
    c.o = Tensor::copy_of(attended_image);
  }
  c.attended = std::move(r.out);
  c.lse = std::move(r.lse);
  Tensor y = Tensor::copy_of(x);  // the residual, then + γ·o
  const float g = gamma_->value.data()[0];
  for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] += g * c.o.data()[i];
  return y;
}

Tensor SelfAttention2d::backward(ConstTensorView dout, const Cache& c, const Context& ctx) {
  const char* fn = "SelfAttention2d::backward";
  internal::require_cache(fn, c.attended.defined());
  if (!dout.defined() || !(dout.shape() == c.x_shape))
    fail<ShapeError>(fn, "dout has shape ", dout.defined() ? dout.shape().str() : "(undefined)",
                     " but the forward's output had shape ", c.x_shape.str());
  const int64_t H = c.x_shape[2], W = c.x_shape[3];
  const bool released = form_ == SaganForm::kReleased;
  gamma_->grad.data()[0] += static_cast<float>(dot_all(dout, c.o));
  // d o = γ · dout; through o_conv (released) to the attended values' gradient.
  const float g = gamma_->value.data()[0];
  Tensor d_o = Tensor::copy_of(dout);
  for (float& v : d_o.values()) v *= g;
  Tensor d_attended(c.attended.shape());
  const TensorView d_attended_image = as_image(d_attended.view(), H, W);
  if (released)
    copy(ConstTensorView(o_conv_->backward(d_o, c.o_conv, ctx).view()), d_attended_image);
  else
    copy(ConstTensorView(d_o.view()), d_attended_image);
  Tensor dq(as_sequence(c.q).shape()), dk(as_sequence(c.k).shape()), dv(as_sequence(c.v).shape());
  ops::attention_backward(as_sequence(c.q), as_sequence(c.k), as_sequence(c.v), c.attended, c.lse,
                          d_attended, {}, {}, 1.0, dq, dk, dv, {}, ctx);
  // The sequence gradients as NCHW views, back through pooling and the 1×1 convs.
  Tensor dk_img = Tensor::copy_of(as_image(ConstTensorView(dk.view()), c.k.dim(2), c.k.dim(3)));
  Tensor dv_img = Tensor::copy_of(as_image(ConstTensorView(dv.view()), c.v.dim(2), c.v.dim(3)));
  if (released) {
    dk_img = pool_.backward(dk_img, c.k_pool, ctx);
    dv_img = pool_.backward(dv_img, c.v_pool, ctx);
  }
  Tensor dx = Tensor::copy_of(dout);
  const Tensor dx_q = q_conv_.backward(as_image(ConstTensorView(dq.view()), H, W), c.q_conv, ctx);
  const Tensor dx_k = k_conv_.backward(dk_img, c.k_conv, ctx);
  const Tensor dx_v = v_conv_.backward(dv_img, c.v_conv, ctx);
  for (int64_t i = 0; i < dx.numel(); ++i)
    dx.data()[i] += dx_q.data()[i] + dx_k.data()[i] + dx_v.data()[i];
  return dx;
}

}  // namespace attn::nn
