// SPDX-License-Identifier: MIT
// Basic layers with PyTorch's parameter names, shapes and default initialisation:
// Linear, LayerNorm, Dropout, Activation (ReLU/GELU), FeedForward, Embedding.
// Inputs are (..., C): every leading dimension is a row. See module.h for the forward/backward
// pattern.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attn/context.h"
#include "attn/nn/module.h"
#include "attn/tensor.h"

namespace attn::nn {

// y = x Wᵀ + b, as torch.nn.Linear. Parameters "weight" (OUT, IN) and, with bias, "bias" (OUT),
// both initialised U(-1/√IN, 1/√IN) like PyTorch's default (kaiming_uniform with a = √5).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng);
  struct Cache {
    Tensor x;  // (N, IN): the input rows, N = product of the leading dimensions
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);  // (..., IN) -> (..., OUT)
  // The same; the cache takes x over instead of copying it (when x is contiguous).
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache,
                  const Context& ctx);  // (..., OUT) -> dx (..., IN)

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

 private:
  int64_t in_, out_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

// torch.nn.LayerNorm over the last dimension: "weight" (C) = 1 and "bias" (C) = 0 when
// elementwise_affine.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t C, double eps = 1e-5, bool elementwise_affine = true);
  struct Cache {
    Tensor x;           // (..., C)
    Tensor mean, rstd;  // (...)
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
  double eps() const { return eps_; }

 private:
  int64_t C_;
  double eps_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
};

// torch.nn.Dropout: in training, zeroes each element with probability p and scales the rest by
// 1/(1-p); the identity in evaluation. Its own Rng (seeded at construction) makes runs reproducible
// bit for bit.
class Dropout : public Module {
 public:
  explicit Dropout(double p, uint64_t seed = 0);
  struct Cache {
    Tensor mask;  // (...) same as x: 0 or 1/(1-p); undefined when the forward was the identity
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
  // The same on owned tensors: the identity (evaluation, p = 0) hands x back without a copy, and
  // dropout scales x in place.
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);
  Tensor backward(Tensor&& dout, const Cache& cache, const Context& ctx);
  double p() const { return p_; }

 private:
  double p_;
  Rng rng_;
};

enum class ActivationKind { kReLU, kGELU };
// "relu" / "gelu" (as TransformerEncoderLayer's activation argument); throws ValueError otherwise.
ActivationKind parse_activation(const std::string& name);
const char* activation_name(ActivationKind kind);

class Activation : public Module {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  struct Cache {
    Tensor x;  // the input, any shape
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);  // the cache takes x over
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
  ActivationKind kind() const { return kind_; }

 private:
  ActivationKind kind_;
};

// The transformer's position-wise MLP: linear2(dropout(activation(linear1(x)))), C -> FF -> C.
// Parameters "linear1.*" and "linear2.*", as in torch.nn.TransformerEncoderLayer.
class FeedForward : public Module {
 public:
  FeedForward(int64_t C, int64_t FF, ActivationKind activation, double dropout, Rng& rng,
              uint64_t dropout_seed = 0);
  struct Cache {
    Linear::Cache linear1, linear2;
    Activation::Cache activation;
    Dropout::Cache dropout;
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);  // (..., C) -> (..., C)
  Tensor forward(Tensor&& x, Cache* cache, const Context& ctx);  // linear1's cache takes x over
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

  Linear linear1, linear2;
  Activation activation;
  Dropout dropout;

 private:
  Tensor rest_of_forward(Tensor&& h, Cache* cache, const Context& ctx);  // after linear1
};

// torch.nn.Embedding: "weight" (V, C) ~ N(0, 1). Token ids index rows.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t C, Rng& rng);
  struct Cache {
    std::vector<int64_t> tokens;
  };
  // tokens: B·T ids in [0, V), row-major (B, T) -> (B, T, C)
  Tensor forward(std::span<const int64_t> tokens, int64_t B, int64_t T, Cache* cache,
                 const Context& ctx);
  // dout: (B, T, C); accumulates into weight.grad (there is no input gradient)
  void backward(ConstTensorView dout, const Cache& cache, const Context& ctx);
  Parameter& weight() { return *weight_; }
  const Parameter& weight() const { return *weight_; }

 private:
  int64_t V_, C_;
  Parameter* weight_;
};

// Helpers shared by the layers and their callers.
// x (..., C) as a contiguous (rows, C) tensor: a copy (layers keep inputs in their caches).
Tensor as_rows(ConstTensorView x, const char* fn);
// The shape with its last dimension replaced.
Shape with_last_dim(const Shape& shape, int64_t last);

}  // namespace attn::nn
