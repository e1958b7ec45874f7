// SPDX-License-Identifier: MIT
// Conv2d, Conv1d, pooling, BatchNorm and Flatten (include/attn/nn/conv.h) over the ops in
// ops/conv.h, ops/pool.h and ops/batch_norm.h.
#include "attn/nn/conv.h"

#include <cmath>

#include "attn/ops/batch_norm.h"
#include "nn/internal/module_helpers.h"

namespace attn::nn {
namespace {

using internal::init_uniform;
using internal::require_cache;

void check_input(const char* fn, ConstTensorView x, int rank, int64_t channels, const char* dims) {
  if (!x.defined()) fail<ShapeError>(fn, "x is required but was not given");
  if (x.rank() != rank || (channels > 0 && x.dim(1) != channels))
    fail<ShapeError>(fn, "x has shape ", x.shape().str(), " but ", dims, " with C = ", channels,
                     " is expected");
}

void check_same_shape(const char* fn, ConstTensorView dout, const Shape& expected) {
  if (!dout.defined() || !(dout.shape() == expected))
    fail<ShapeError>(fn, "dout has shape ", dout.defined() ? dout.shape().str() : "(undefined)",
                     " but the forward's output had shape ", expected.str());
}

ConstTensorView maybe(const Parameter* p) {
  return p ? ConstTensorView(p->value.view()) : ConstTensorView();
}
TensorView maybe_grad(Parameter* p) { return p ? p->grad.view() : TensorView(); }

}  // namespace

// ----------------------------------------------------------------------------------------------
// Conv2d, Conv1d

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
               const ops::Conv2dOptions& options, bool bias, Rng& rng)
    : in_(in_channels), out_(out_channels), options_(options) {
  if (in_channels < 1 || out_channels < 1 || kernel_h < 1 || kernel_w < 1)
    fail<ValueError>("Conv2d", "channels and kernel sizes must be >= 1, got in ", in_channels,
                     ", out ", out_channels, ", kernel (", kernel_h, ", ", kernel_w, ")");
  if (options.groups < 1 || in_channels % options.groups || out_channels % options.groups)
    fail<ValueError>("Conv2d", "groups = ", options.groups,
                     " must divide in_channels = ", in_channels,
                     " and out_channels = ", out_channels);
  if (options.stride_h < 1 || options.stride_w < 1 || options.pad_h < 0 || options.pad_w < 0 ||
      options.dilation_h < 1 || options.dilation_w < 1)
    fail<ValueError>("Conv2d", "stride >= 1, padding >= 0 and dilation >= 1 are required, got (",
                     options.stride_h, ", ", options.stride_w, "), (", options.pad_h, ", ",
                     options.pad_w, "), (", options.dilation_h, ", ", options.dilation_w, ")");
  const Shape w{out_, in_ / options.groups, kernel_h, kernel_w};
  weight_ = &register_parameter("weight", w);
  const double bound = 1.0 / std::sqrt(static_cast<double>(w[1] * kernel_h * kernel_w));
  init_uniform(*weight_, bound, rng);
  if (bias) {
    bias_ = &register_parameter("bias", Shape{out_});
    init_uniform(*bias_, bound, rng);
  }
}

Tensor Conv2d::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  const char* fn = "Conv2d::forward";
  check_input(fn, x, 4, in_, "(B, C_in, H, W)");
  Tensor y = Tensor::uninitialized(
      ops::conv2d_output_shape(fn, x.shape(), weight_->value.shape(), options_));
  ops::conv2d_forward(x, weight_->value, maybe(bias_), options_, y, ctx);
  if (cache) cache->x = Tensor::copy_of(x);
  return y;
}

Tensor Conv2d::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  Tensor y = forward(x.view(), nullptr, ctx);
  if (cache) cache->x = std::move(x);
  return y;
}

Tensor Conv2d::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = "Conv2d::backward";
  require_cache(fn, cache.x.defined());
  check_same_shape(fn, dout,
                   ops::conv2d_output_shape(fn, cache.x.shape(), weight_->value.shape(), options_));
  Tensor dx(cache.x.shape());
  ops::conv2d_backward(cache.x, weight_->value, dout, options_, dx, weight_->grad,
                       maybe_grad(bias_), ctx);
  return dx;
}

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
               const ops::Conv1dOptions& options, bool bias, Rng& rng)
    : in_(in_channels), out_(out_channels), options_(options) {
  if (in_channels < 1 || out_channels < 1 || kernel_size < 1)
    fail<ValueError>("Conv1d", "channels and kernel size must be >= 1, got in ", in_channels,
                     ", out ", out_channels, ", kernel ", kernel_size);
  if (options.groups < 1 || in_channels % options.groups || out_channels % options.groups)
    fail<ValueError>("Conv1d", "groups = ", options.groups,
                     " must divide in_channels = ", in_channels,
                     " and out_channels = ", out_channels);
  if (options.stride < 1 || options.padding < 0 || options.dilation < 1)
    fail<ValueError>("Conv1d", "stride >= 1, padding >= 0 and dilation >= 1 are required, got ",
                     options.stride, ", ", options.padding, ", ", options.dilation);
  const Shape w{out_, in_ / options.groups, kernel_size};
  weight_ = &register_parameter("weight", w);
  const double bound = 1.0 / std::sqrt(static_cast<double>(w[1] * kernel_size));
  init_uniform(*weight_, bound, rng);
  if (bias) {
    bias_ = &register_parameter("bias", Shape{out_});
    init_uniform(*bias_, bound, rng);
  }
}

Tensor Conv1d::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  const char* fn = "Conv1d::forward";
  check_input(fn, x, 3, in_, "(B, C_in, L)");
  const Shape o = ops::conv2d_output_shape(fn, x.unsqueeze(2).shape(),
                                           weight_->value.view().unsqueeze(2).shape(),
                                           ops::as_conv2d(options_));
  Tensor y = Tensor::uninitialized(Shape{o[0], o[1], o[3]});
  ops::conv1d_forward(x, weight_->value, maybe(bias_), options_, y, ctx);
  if (cache) cache->x = Tensor::copy_of(x);
  return y;
}

Tensor Conv1d::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = "Conv1d::backward";
  require_cache(fn, cache.x.defined());
  Tensor dx(cache.x.shape());
  ops::conv1d_backward(cache.x, weight_->value, dout, options_, dx, weight_->grad,
                       maybe_grad(bias_), ctx);
  return dx;
}

// ----------------------------------------------------------------------------------------------
// Pooling

Tensor MaxPool2d::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  const char* fn = "MaxPool2d::forward";
  check_input(fn, x, 4, 0, "(B, C, H, W)");
  Tensor y = Tensor::uninitialized(ops::pool2d_output_shape(fn, x.shape(), options_));
  ops::max_pool2d_forward(x, options_, y, ctx);
  if (cache) cache->x = Tensor::copy_of(x);
  return y;
}

Tensor MaxPool2d::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  Tensor y = forward(x.view(), nullptr, ctx);
  if (cache) cache->x = std::move(x);
  return y;
}

Tensor MaxPool2d::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = "MaxPool2d::backward";
  require_cache(fn, cache.x.defined());
  check_same_shape(fn, dout, ops::pool2d_output_shape(fn, cache.x.shape(), options_));
  Tensor dx(cache.x.shape());
  ops::max_pool2d_backward(cache.x, options_, dout, dx, ctx);
  return dx;
}

Tensor AvgPool2d::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  const char* fn = "AvgPool2d::forward";
  check_input(fn, x, 4, 0, "(B, C, H, W)");
  Tensor y = Tensor::uninitialized(ops::pool2d_output_shape(fn, x.shape(), options_));
  ops::avg_pool2d_forward(x, options_, y, ctx);
  if (cache) cache->x = Tensor::copy_of(x);
  return y;
}

Tensor AvgPool2d::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = "AvgPool2d::backward";
  require_cache(fn, cache.x.defined());
  check_same_shape(fn, dout, ops::pool2d_output_shape(fn, cache.x.shape(), options_));
  Tensor dx(cache.x.shape());
  ops::avg_pool2d_backward(cache.x, options_, dout, dx, ctx);
  return dx;
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h_(out_h), out_w_(out_w) {
  if (out_h < 1 || out_w < 1)
    fail<ValueError>("AdaptiveAvgPool2d", "output size must be >= 1, got (", out_h, ", ", out_w,
                     ")");
}

Tensor AdaptiveAvgPool2d::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  check_input("AdaptiveAvgPool2d::forward", x, 4, 0, "(B, C, H, W)");
  Tensor y = Tensor::uninitialized(Shape{x.dim(0), x.dim(1), out_h_, out_w_});
  ops::adaptive_avg_pool2d_forward(x, y, ctx);
  if (cache) cache->x_shape = x.shape();
  return y;
}

Tensor AdaptiveAvgPool2d::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = "AdaptiveAvgPool2d::backward";
  require_cache(fn, cache.x_shape.rank() == 4);
  check_same_shape(fn, dout, Shape{cache.x_shape[0], cache.x_shape[1], out_h_, out_w_});
  Tensor dx(cache.x_shape);
  ops::adaptive_avg_pool2d_backward(dout, dx, ctx);
  return dx;
}

// ----------------------------------------------------------------------------------------------
// BatchNorm

BatchNorm::BatchNorm(int64_t num_features, const BatchNormOptions& options, int spatial_dims)
    : C_(num_features), options_(options), spatial_dims_(spatial_dims) {
  const char* fn = spatial_dims == 1 ? "BatchNorm1d" : "BatchNorm2d";
  if (num_features < 1) fail<ValueError>(fn, "num_features must be >= 1, got ", num_features);
  if (!(options.eps >= 0.0) || !(options.momentum >= 0.0 && options.momentum <= 1.0))
    fail<ValueError>(fn, "eps must be >= 0 and momentum in [0, 1], got ", options.eps, ", ",
                     options.momentum);
  if (options.affine) {
    weight_ = &register_parameter("weight", Shape{C_});
    fill(weight_->value.view(), 1.0f);
    bias_ = &register_parameter("bias", Shape{C_});
  }
  if (options.track_running_stats) {
    running_mean_ = &register_buffer("running_mean", Shape{C_});
    running_var_ = &register_buffer("running_var", Shape{C_});
    fill(running_var_->view(), 1.0f);
    num_batches_tracked_ = &register_buffer("num_batches_tracked", Shape{});
  }
}

Tensor BatchNorm::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  return forward_impl(x, nullptr, cache, ctx);
}

Tensor BatchNorm::forward(Tensor&& x, Cache* cache, const Context& ctx) {
  return forward_impl(x.view(), &x, cache, ctx);
}

namespace {
// x as (B, C, L): a view of x when it is contiguous, else of a copy held in `holder`.
ConstTensorView as_bcl(ConstTensorView x, int64_t C, Tensor& holder) {
  const int64_t B = x.dim(0), L = x.numel() / std::max<int64_t>(B * C, 1);
  if (x.is_contiguous()) return x.reshape(Shape{B, C, L});
  holder = Tensor::copy_of(x);
  return holder.view().reshape(Shape{B, C, L});
}
}  // namespace

// `owned` (x's own storage, when the caller gave it up) goes to the cache instead of a copy.
Tensor BatchNorm::forward_impl(ConstTensorView x, Tensor* owned, Cache* cache,
                               const Context& ctx) {
  const char* fn = spatial_dims_ == 1 ? "BatchNorm1d::forward" : "BatchNorm2d::forward";
  if (!x.defined()) fail<ShapeError>(fn, "x is required but was not given");
  const bool rank_ok = spatial_dims_ == 1 ? (x.rank() == 2 || x.rank() == 3) : x.rank() == 4;
  if (!rank_ok || x.dim(1) != C_)
    fail<ShapeError>(fn, "x has shape ", x.shape().str(), " but ",
                     spatial_dims_ == 1 ? "(B, C) or (B, C, L)" : "(B, C, H, W)", " with C = ", C_,
                     " is expected");
  const bool batch_stats = training() || !options_.track_running_stats;
  if (batch_stats && x.numel() <= C_)  // as PyTorch's check, with the module's name and x's shape
    fail<ValueError>(fn, "batch statistics need more than 1 value per channel, x has shape ",
                     x.shape().str());
  Tensor holder;
  const ConstTensorView x3 = as_bcl(x, C_, holder);
  const bool update = training() && options_.track_running_stats;
  Tensor y = Tensor::uninitialized(x.shape()), mean(Shape{C_}), rstd(Shape{C_});
  // Training updates the running statistics; evaluation reads them (batch_stats = false).
  const bool pass_running = options_.track_running_stats && (update || !batch_stats);
  ops::batch_norm_forward(
      x3, maybe(weight_), maybe(bias_), pass_running ? running_mean_->view() : TensorView(),
      pass_running ? running_var_->view() : TensorView(), batch_stats, options_.momentum,
      options_.eps, y.view().reshape(x3.shape()), mean, rstd, ctx);
  if (update) num_batches_tracked_->data()[0] += 1.0f;
  if (cache) {
    Tensor kept = owned                ? std::move(*owned)
                  : holder.defined() ? std::move(holder)
                                     : Tensor::copy_of(x);
    *cache = Cache{std::move(kept), std::move(mean), std::move(rstd), batch_stats, x.shape()};
  }
  return y;
}

Tensor BatchNorm::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const char* fn = spatial_dims_ == 1 ? "BatchNorm1d::backward" : "BatchNorm2d::backward";
  require_cache(fn, cache.x.defined());
  check_same_shape(fn, dout, cache.x_shape);
  Tensor x_holder, g_holder;
  const ConstTensorView x3 = as_bcl(cache.x.view(), C_, x_holder), g = as_bcl(dout, C_, g_holder);
  Tensor dx(cache.x_shape);
  ops::batch_norm_backward(x3, maybe(weight_), cache.mean, cache.rstd, cache.batch_stats, g,
                           dx.view().reshape(x3.shape()), maybe_grad(weight_), maybe_grad(bias_),
                           ctx);
  return dx;
}

// ----------------------------------------------------------------------------------------------
// Flatten

Tensor Flatten::forward(ConstTensorView x, Cache* cache, const Context&) {
  // PyTorch's start_dim = 1 needs a dimension 1: a rank-1 x is an error there, not (B, 1).
  if (!x.defined() || x.rank() < 2)
    fail<ShapeError>("Flatten::forward", "x must be (B, ...) with rank >= 2, got ",
                     x.defined() ? x.shape().str() : "(undefined)");
  int64_t rest = 1;  // a product of dimensions, not numel / B: B may be 0
  for (int i = 1; i < x.rank(); ++i) rest *= x.dim(i);
  const int64_t B = x.dim(0);
  Tensor y = Tensor::uninitialized(Shape{B, rest});
  copy(x, y.view().reshape(x.shape()));
  if (cache) cache->x_shape = x.shape();
  return y;
}

Tensor Flatten::backward(ConstTensorView dout, const Cache& cache, const Context&) {
  const char* fn = "Flatten::backward";
  require_cache(fn, cache.x_shape.rank() >= 2);
  if (!dout.defined() || dout.numel() != cache.x_shape.numel() || dout.rank() != 2)
    fail<ShapeError>(fn, "dout has shape ", dout.defined() ? dout.shape().str() : "(undefined)",
                     " but the forward flattened ", cache.x_shape.str());
  Tensor dx = Tensor::uninitialized(cache.x_shape);
  copy(dout, dx.view().reshape(dout.shape()));
  return dx;
}

}  // namespace attn::nn
