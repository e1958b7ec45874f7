// SPDX-License-Identifier: MIT
// Linear, LayerNorm, Dropout, Activation, FeedForward, Embedding (include/attn/nn/layers.h).
#include "attn/nn/layers.h"

#include <algorithm>
#include <cmath>

#include "attn/ops/activation.h"
#include "attn/ops/layer_norm.h"
#include "attn/ops/linear.h"
#include "nn/internal/module_helpers.h"

namespace attn::nn {

Shape with_last_dim(const Shape& shape, int64_t last) {
  std::vector<int64_t> dims(shape.begin(), shape.end());
  dims.back() = last;
  return Shape(std::span<const int64_t>(dims));
}

Tensor as_rows(ConstTensorView x, const char* fn) {
  if (!x.defined()) fail<ShapeError>(fn, "x is required but was not given");
  if (x.rank() < 1) fail<ShapeError>(fn, "x must have rank >= 1, got shape ", x.shape().str());
  const int64_t C = x.dim(-1);
  const int64_t rows = C == 0 ? 0 : x.numel() / C;
  Tensor t = Tensor::uninitialized(Shape{rows, C});  // the copy overwrites it
  copy(x, t.view().reshape(x.shape()));
  return t;
}

namespace {

void check_last_dim(const char* fn, ConstTensorView x, int64_t C, const char* what) {
  if (!x.defined()) fail<ShapeError>(fn, "x is required but was not given");
  if (x.rank() < 1 || x.dim(-1) != C)
    fail<ShapeError>(fn, "x has shape ", x.shape().str(), " but its last dimension must be ", what,
                     " = ", C);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Linear

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng)
    : in_(in_features), out_(out_features) {
  if (in_features < 1 || out_features < 1)
    fail<ValueError>("Linear", "in_features and out_features must be >= 1, got ", in_features, ", ",
                     out_features);
  weight_ = &register_parameter("weight", Shape{out_, in_});
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  internal::init_uniform(*weight_, bound, rng);
  if (bias) {
    bias_ = &register_parameter("bias", Shape{out_});
    internal::init_uniform(*bias_, bound, rng);
  }
}

Tensor Linear::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  check_last_dim("Linear::forward", x, in_, "in_features");
  if (!cache) {  // nothing to keep: the op reads x as it is
    const int64_t rows = in_ == 0 ? 0 : x.numel() / in_;
    Tensor y = Tensor::uninitialized(with_last_dim(x.shape(), out_));
    const Tensor copied = x.is_contiguous() ? Tensor() : as_rows(x, "Linear::forward");
    ops::linear_forward(copied.defined() ? copied.view() : x.reshape(Shape{rows, in_}),
                        weight_->value.view(),
                        bias_ ? ConstTensorView(bias_->value.view()) : ConstTensorView(),
                        y.view().reshape(Shape{rows, out_}), ctx);
    return y;
  }
  Tensor y = forward(as_rows(x, "Linear::forward"), cache, ctx);  // (N, OUT) rows
  y.reshape(with_last_dim(x.shape(), out_));
  return y;
}

Tensor Linear::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  check_last_dim("Linear::forward", x.view(), in_, "in_features");
  const int64_t rows = in_ == 0 ? 0 : x.numel() / in_;
  Tensor y = Tensor::uninitialized(with_last_dim(x.shape(), out_));  // the op overwrites it
  ops::linear_forward(x.view().reshape(Shape{rows, in_}), weight_->value.view(),
                      bias_ ? ConstTensorView(bias_->value.view()) : ConstTensorView(),
                      y.view().reshape(Shape{rows, out_}), ctx);
  if (cache) {
    x.reshape(Shape{rows, in_});
    cache->x = std::move(x);
  }
  return y;
}

Tensor Linear::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  constexpr const char* fn = "Linear::backward";
  if (!cache.x.defined())
    fail<ValueError>(fn, "the cache is empty: run forward with a cache first");
  check_last_dim(fn, dout, out_, "out_features");
  // dout as (N, OUT) rows: in place when contiguous, else copied.
  const Tensor copied = dout.is_contiguous() ? Tensor() : as_rows(dout, fn);
  const int64_t rows = out_ == 0 ? 0 : dout.numel() / out_;
  const ConstTensorView g = copied.defined() ? copied.view() : dout.reshape(Shape{rows, out_});
  if (g.dim(0) != cache.x.dim(0))
    fail<ShapeError>(fn, "dout has ", g.dim(0), " rows but the forward had ", cache.x.dim(0));
  Tensor dx(with_last_dim(dout.shape(), in_));  // zeros: linear_backward accumulates into dx
  ops::linear_backward(cache.x.view(), weight_->value.view(), g, dx.view().reshape(cache.x.shape()),
                       weight_->grad.view(), bias_ ? TensorView(bias_->grad.view()) : TensorView(),
                       ctx);
  return dx;
}

// -------------------------------------------------------------------------------------------
// LayerNorm

LayerNorm::LayerNorm(int64_t C, double eps, bool elementwise_affine) : C_(C), eps_(eps) {
  if (C < 1) fail<ValueError>("LayerNorm", "C must be >= 1, got ", C);
  if (!std::isfinite(eps) || eps < 0)
    fail<ValueError>("LayerNorm", "eps must be finite and >= 0, got ", eps);
  if (elementwise_affine) {
    weight_ = &register_parameter("weight", Shape{C});
    fill(weight_->value.view(), 1.0f);
    bias_ = &register_parameter("bias", Shape{C});
  }
}

// Layer norm is O(rows·C) and memory-bound next to the GEMMs around it, so the layer uses the
// reference op (double accumulation) directly.
Tensor LayerNorm::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  check_last_dim("LayerNorm::forward", x, C_, "normalized_shape");
  // Outputs the op overwrites.
  Tensor y = Tensor::uninitialized(x.shape());
  const Shape lead = with_last_dim(x.shape(), 1);
  Tensor mean = Tensor::uninitialized(lead), rstd = Tensor::uninitialized(lead);
  ops::layer_norm_forward(x, weight_ ? ConstTensorView(weight_->value.view()) : ConstTensorView(),
                          bias_ ? ConstTensorView(bias_->value.view()) : ConstTensorView(), eps_,
                          y.view(), mean.view().select(-1, 0), rstd.view().select(-1, 0), ctx);
  if (cache) {
    cache->x = Tensor::copy_of(x);
    cache->mean = std::move(mean);
    cache->rstd = std::move(rstd);
  }
  return y;
}

Tensor LayerNorm::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  constexpr const char* fn = "LayerNorm::backward";
  if (!cache.x.defined())
    fail<ValueError>(fn, "the cache is empty: run forward with a cache first");
  Tensor dx(cache.x.shape());
  ops::layer_norm_backward(cache.x.view(),
                           weight_ ? ConstTensorView(weight_->value.view()) : ConstTensorView(),
                           cache.mean.view().select(-1, 0), cache.rstd.view().select(-1, 0), dout,
                           dx.view(), weight_ ? TensorView(weight_->grad.view()) : TensorView(),
                           bias_ ? TensorView(bias_->grad.view()) : TensorView(), ctx);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Dropout

Dropout::Dropout(double p, uint64_t seed) : p_(p), rng_(seed) {
  if (!(p >= 0.0 && p < 1.0)) fail<ValueError>("Dropout", "p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  if (!x.defined()) fail<ShapeError>("Dropout::forward", "x is required but was not given");
  return forward(Tensor::copy_of(x), cache, ctx);
}

Tensor Dropout::forward(Tensor&& x, Cache* cache, const Context&) {
  if (!x.defined()) fail<ShapeError>("Dropout::forward", "x is required but was not given");
  Tensor y = std::move(x);
  if (cache) cache->mask = Tensor();
  if (!training() || p_ == 0.0) return y;
  Tensor mask = Tensor::uninitialized(y.shape());  // every element is set below
  const auto keep = static_cast<float>(1.0 / (1.0 - p_));
  auto m = mask.values();
  auto v = y.values();
  for (size_t i = 0; i < m.size(); ++i) {
    m[i] = rng_.uniform() < p_ ? 0.0f : keep;
    v[i] *= m[i];
  }
  if (cache) cache->mask = std::move(mask);
  return y;
}

Tensor Dropout::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  if (!dout.defined()) fail<ShapeError>("Dropout::backward", "dout is required but was not given");
  return backward(Tensor::copy_of(dout), cache, ctx);
}

Tensor Dropout::backward(Tensor&& dout, const Cache& cache, const Context&) {
  if (!dout.defined()) fail<ShapeError>("Dropout::backward", "dout is required but was not given");
  Tensor dx = std::move(dout);
  if (!cache.mask.defined()) return dx;
  if (!(cache.mask.shape() == dx.shape()))
    fail<ShapeError>("Dropout::backward", "dout has shape ", dx.shape().str(),
                     " but the forward had ", cache.mask.shape().str());
  auto d = dx.values();
  const auto m = cache.mask.values();
  for (size_t i = 0; i < d.size(); ++i) d[i] *= m[i];
  return dx;
}

// ------------------------------------------------------------------------------------------
// Activation

ActivationKind parse_activation(const std::string& name) {
  if (name == "relu") return ActivationKind::kReLU;
  if (name == "gelu") return ActivationKind::kGELU;
  fail<ValueError>("parse_activation", "activation must be \"relu\" or \"gelu\", got \"", name,
                   "\"");
}

const char* activation_name(ActivationKind kind) {
  return kind == ActivationKind::kReLU ? "relu" : "gelu";
}

Tensor Activation::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  if (!x.defined()) fail<ShapeError>("Activation::forward", "x is required but was not given");
  Tensor y = Tensor::uninitialized(x.shape());  // the op overwrites every element
  if (kind_ == ActivationKind::kReLU) {
    ops::relu_forward(x, y.view(), ctx);
  } else {
    ops::gelu_forward(x, y.view(), ctx);
  }
  if (cache) cache->x = Tensor::copy_of(x);
  return y;
}

Tensor Activation::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  Tensor y = forward(x.view(), nullptr, ctx);
  if (cache) cache->x = std::move(x);
  return y;
}

Tensor Activation::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  if (!cache.x.defined())
    fail<ValueError>("Activation::backward", "the cache is empty: run forward with a cache first");
  Tensor dx(cache.x.shape());
  if (kind_ == ActivationKind::kReLU) {
    ops::relu_backward(cache.x.view(), dout, dx.view(), ctx);
  } else {
    ops::gelu_backward(cache.x.view(), dout, dx.view(), ctx);
  }
  return dx;
}

// -----------------------------------------------------------------------------------------
// FeedForward

FeedForward::FeedForward(int64_t C, int64_t FF, ActivationKind kind, double p, Rng& rng,
                         uint64_t dropout_seed)
    : linear1(C, FF, true, rng),
      linear2(FF, C, true, rng),
      activation(kind),
      dropout(p, dropout_seed) {
  register_module("linear1", linear1);
  register_module("linear2", linear2);
  register_module("", activation);
  register_module("", dropout);
}

// Each intermediate goes to the next layer (and its cache) by move, never copied.
Tensor FeedForward::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  return rest_of_forward(linear1.forward(x, cache ? &cache->linear1 : nullptr, ctx), cache, ctx);
}

Tensor FeedForward::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  return rest_of_forward(linear1.forward(std::move(x), cache ? &cache->linear1 : nullptr, ctx),
                         cache, ctx);
}

Tensor FeedForward::rest_of_forward(Tensor&& h, Cache* cache, const Context& ctx) {
  h = activation.forward(std::move(h), cache ? &cache->activation : nullptr, ctx);
  h = dropout.forward(std::move(h), cache ? &cache->dropout : nullptr, ctx);
  return linear2.forward(std::move(h), cache ? &cache->linear2 : nullptr, ctx);
}

Tensor FeedForward::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  Tensor g = linear2.backward(dout, cache.linear2, ctx);
  g = dropout.backward(std::move(g), cache.dropout, ctx);
  g = activation.backward(g.view(), cache.activation, ctx);
  return linear1.backward(g.view(), cache.linear1, ctx);
}

// -------------------------------------------------------------------------------------------
// Embedding

Embedding::Embedding(int64_t num_embeddings, int64_t C, Rng& rng) : V_(num_embeddings), C_(C) {
  if (num_embeddings < 1 || C < 1)
    fail<ValueError>("Embedding", "sizes must be >= 1, got ", num_embeddings, ", ", C);
  weight_ = &register_parameter("weight", Shape{V_, C_});
  for (auto& v : weight_->value.values()) v = static_cast<float>(rng.normal());
}

Tensor Embedding::forward(std::span<const int64_t> tokens, int64_t B, int64_t T, Cache* cache,
                          const Context&) {
  constexpr const char* fn = "Embedding::forward";
  if (B < 0 || T < 0 || static_cast<int64_t>(tokens.size()) != B * T)
    fail<ShapeError>(fn, "got ", tokens.size(), " tokens for (B, T) = (", B, ", ", T, ")");
  Tensor y = Tensor::uninitialized(Shape{B, T, C_});  // every row is copied below
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t id = tokens[i];
    if (id < 0 || id >= V_)
      fail<ValueError>(fn, "token ", i, " is ", id, ", outside [0, ", V_, ")");
    std::copy_n(weight_->value.data() + id * C_, C_, y.data() + static_cast<int64_t>(i) * C_);
  }
  if (cache) cache->tokens.assign(tokens.begin(), tokens.end());
  return y;
}

void Embedding::backward(ConstTensorView dout, const Cache& cache, const Context&) {
  constexpr const char* fn = "Embedding::backward";
  const auto n = static_cast<int64_t>(cache.tokens.size());
  if (!dout.defined() || dout.numel() != n * C_ || dout.dim(-1) != C_)
    fail<ShapeError>(fn, "dout must hold ", n, " rows of ", C_, ", got ",
                     dout.defined() ? dout.shape().str() : "nothing");
  const Tensor copied = dout.is_contiguous() ? Tensor() : as_rows(dout, fn);
  const float* g = copied.defined() ? copied.data() : dout.data();
  for (int64_t i = 0; i < n; ++i) {
    float* dst = weight_->grad.data() + cache.tokens[static_cast<size_t>(i)] * C_;
    const float* src = g + i * C_;
    for (int64_t c = 0; c < C_; ++c) dst[c] += src[c];
  }
}

}  // namespace attn::nn
