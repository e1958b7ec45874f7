// SPDX-License-Identifier: MIT
// Convolutional layers with PyTorch's names, shapes, defaults and initialisation: Conv2d, Conv1d,
// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d/2d, Flatten. Images are NCHW
// (B, C, H, W), sequences NCL (B, C, L). The forward/backward pattern is module.h's.
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/nn/module.h"
#include "attn/ops/conv.h"
#include "attn/ops/pool.h"
#include "attn/tensor.h"

namespace attn::nn {

// torch.nn.Conv2d. "weight" (C_out, C_in/groups, KH, KW) and "bias" (C_out), both
// U(−1/√fan_in, 1/√fan_in) with fan_in = C_in/groups·KH·KW (PyTorch's default).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
         const ops::Conv2dOptions& options, bool bias, Rng& rng);
  struct Cache {
    Tensor x;  // (B, C_in, H, W)
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);  // -> (B, C_out, OH, OW)
  // The same, with the cache taking x over instead of copying it (an activation that dies here).
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);  // -> dx

  const ops::Conv2dOptions& options() const { return options_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

 private:
  int64_t in_, out_;
  ops::Conv2dOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

// torch.nn.Conv1d: "weight" (C_out, C_in/groups, K), "bias" (C_out); x (B, C_in, L).
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
         const ops::Conv1dOptions& options, bool bias, Rng& rng);
  struct Cache {
    Tensor x;  // (B, C_in, L)
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);  // -> (B, C_out, OL)
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

 private:
  int64_t in_, out_;
  ops::Conv1dOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

// torch.nn.MaxPool2d / AvgPool2d (ops::Pool2dOptions: kernel, stride = kernel by default, padding,
// dilation for max, ceil_mode, count_include_pad for avg). No parameters.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const ops::Pool2dOptions& options) : options_(options) {}
  struct Cache {
    Tensor x;  // (B, C, H, W): the backward finds each window's maximum again
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);  // the cache takes x over
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

 private:
  ops::Pool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const ops::Pool2dOptions& options) : options_(options) {}
  struct Cache {
    Tensor x;  // (B, C, H, W)
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

 private:
  ops::Pool2dOptions options_;
};

// torch.nn.AdaptiveAvgPool2d((OH, OW)): (B, C, H, W) -> (B, C, OH, OW).
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  struct Cache {
    Shape x_shape;
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

 private:
  int64_t out_h_, out_w_;
};

// torch.nn.BatchNorm1d ((B, C) or (B, C, L)) and BatchNorm2d ((B, C, H, W)). Parameters "weight" =
// 1 and "bias" = 0 when affine; buffers "running_mean" = 0, "running_var" = 1 and
// "num_batches_tracked" when track_running_stats. Training mode normalises by batch statistics and
// updates the running ones; evaluation mode uses the running ones.
struct BatchNormOptions {
  double eps = 1e-5, momentum = 0.1;
  bool affine = true, track_running_stats = true;
};
class BatchNorm : public Module {
 public:
  struct Cache {
    Tensor x;           // the input, in its own shape (contiguous)
    Tensor mean, rstd;  // (C): the statistics used
    bool batch_stats = true;
    Shape x_shape;  // the input's own shape
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);  // the cache takes x over
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
  int64_t num_features() const { return C_; }

 protected:
  BatchNorm(int64_t num_features, const BatchNormOptions& options, int spatial_dims);

 private:
  Tensor forward_impl(ConstTensorView x, Tensor* owned, Cache* cache, const Context& ctx);
  int64_t C_;
  BatchNormOptions options_;
  int spatial_dims_;  // 1: BatchNorm1d, 2: BatchNorm2d
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
  Tensor* num_batches_tracked_ = nullptr;
};
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& options = {})
      : BatchNorm(num_features, options, 1) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {})
      : BatchNorm(num_features, options, 2) {}
};

// torch.nn.Flatten(start_dim = 1): (B, d1, d2, ...) -> (B, d1·d2·...).
class Flatten : public Module {
 public:
  struct Cache {
    Shape x_shape;
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
};

}  // namespace attn::nn
