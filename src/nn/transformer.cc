// SPDX-License-Identifier: MIT
// TransformerEncoderLayer / TransformerEncoder (include/attn/nn/transformer.h).
#include "attn/nn/transformer.h"

#include <string>
#include <utility>

#include "nn/internal/module_helpers.h"

namespace attn::nn {

namespace {

// a += b, element-wise (same shapes, contiguous).
void add_into(Tensor& a, const Tensor& b) {
  auto x = a.values();
  const auto y = b.values();
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

// a + b, into b's storage (b is a branch's fresh result, contiguous, of a's shape; a may be any
// view, such as the layer's input). Float addition commutes, so this is a + b bit for bit.
Tensor sum(ConstTensorView a, Tensor&& b) {
  Tensor s = std::move(b);
  if (a.is_contiguous()) {
    const float* x = a.data();
    float* y = s.data();
    const int64_t n = s.numel();
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  } else {
    add_into(s, Tensor::copy_of(a));
  }
  return s;
}

void accumulate_mask_grad(Tensor* dst, Tensor& g) {
  if (!dst || !g.defined()) return;
  if (!dst->defined()) {
    *dst = std::move(g);
  } else {
    add_into(*dst, g);
  }
}

EncoderLayerConfig checked(const EncoderLayerConfig& c) {
  constexpr const char* fn = "TransformerEncoderLayer";
  if (c.d_model < 1 || c.nhead < 1 || c.d_model % c.nhead != 0)
    fail<ValueError>(fn, "d_model ", c.d_model, " must be a positive multiple of nhead ", c.nhead);
  if (c.dim_feedforward < 1)
    fail<ValueError>(fn, "dim_feedforward must be >= 1, got ", c.dim_feedforward);
  return c;
}

}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const EncoderLayerConfig& config, Rng& rng,
                                                 uint64_t seed)
    : self_attn(checked(config).d_model, config.nhead, config.bias, rng, config.rope),
      ff(config.d_model, config.dim_feedforward, config.activation, config.dropout, rng,
         seed * 3 + 1),
      norm1(config.d_model, config.layer_norm_eps),
      norm2(config.d_model, config.layer_norm_eps),
      dropout1(config.dropout, seed * 3 + 2),
      dropout2(config.dropout, seed * 3 + 3),
      config_(config) {
  register_module("self_attn", self_attn);
  register_module("", ff);
  register_module("norm1", norm1);
  register_module("norm2", norm2);
  register_module("", dropout1);
  register_module("", dropout2);
}

Tensor TransformerEncoderLayer::forward(ConstTensorView x, const AttentionOptions& opts, Cache* c,
                                        const Context& ctx) {
  if (!x.defined() || x.rank() != 3 || x.dim(2) != config_.d_model)
    fail<ShapeError>("TransformerEncoderLayer::forward", "x must be (B, T, ", config_.d_model,
                     "), got ", x.defined() ? x.shape().str() : "nothing");
  auto attend = [&](ConstTensorView in) {
    Tensor a = self_attn.forward(in, in, in, opts, c ? &c->self_attn : nullptr, ctx);
    return dropout1.forward(std::move(a), c ? &c->dropout1 : nullptr, ctx);
  };
  auto mlp = [&](auto&& in) {  // a view, or a tensor that ff's cache may take over
    Tensor f = ff.forward(std::forward<decltype(in)>(in), c ? &c->ff : nullptr, ctx);
    return dropout2.forward(std::move(f), c ? &c->dropout2 : nullptr, ctx);
  };
  if (config_.norm_first) {
    const Tensor h = sum(x, attend(norm1.forward(x, c ? &c->norm1 : nullptr, ctx).view()));
    return sum(h, mlp(norm2.forward(h.view(), c ? &c->norm2 : nullptr, ctx)));
  }
  const Tensor h = norm1.forward(sum(x, attend(x)).view(), c ? &c->norm1 : nullptr, ctx);
  return norm2.forward(sum(h, mlp(h.view())).view(), c ? &c->norm2 : nullptr, ctx);
}

Tensor TransformerEncoderLayer::backward(ConstTensorView dout, const Cache& c, const Context& ctx,
                                         Tensor* dattn_mask) {
  // Each residual branch y = x + f(x) passes dy straight to x and through f's backward.
  // Dropout's backward is the identity when its forward was (no mask): d passes as it is.
  auto attend_back = [&](ConstTensorView d) {
    const Tensor g = c.dropout1.mask.defined() ? dropout1.backward(d, c.dropout1, ctx) : Tensor();
    auto grads = self_attn.backward(g.defined() ? g.view() : d, c.self_attn, ctx);
    accumulate_mask_grad(dattn_mask, grads.dattn_mask);
    return std::move(grads.dquery);
  };
  auto mlp_back = [&](ConstTensorView d) {
    const Tensor g = c.dropout2.mask.defined() ? dropout2.backward(d, c.dropout2, ctx) : Tensor();
    return ff.backward(g.defined() ? g.view() : d, c.ff, ctx);
  };
  if (config_.norm_first) {
    const Tensor dh = sum(dout, norm2.backward(mlp_back(dout).view(), c.norm2, ctx));
    return sum(dh, norm1.backward(attend_back(dh.view()).view(), c.norm1, ctx));
  }
  const Tensor ds2 = norm2.backward(dout, c.norm2, ctx);  // d(h + ff(h))
  const Tensor dh = sum(ds2, mlp_back(ds2.view()));
  const Tensor ds1 = norm1.backward(dh.view(), c.norm1, ctx);  // d(x + attn(x))
  return sum(ds1, attend_back(ds1.view()));
}

TransformerEncoder::TransformerEncoder(const EncoderLayerConfig& config, int64_t num_layers,
                                       bool final_norm, Rng& rng, uint64_t seed) {
  if (num_layers < 1)
    fail<ValueError>("TransformerEncoder", "num_layers must be >= 1, got ", num_layers);
  const auto C = static_cast<double>(checked(config).d_model),
             F = static_cast<double>(config.dim_feedforward);
  // Per layer: in_proj 3C·C + 3C, out_proj C·C + C, the FFN 2·C·F + F + C, two norms 4C.
  internal::check_parameter_budget(
      "TransformerEncoder", static_cast<double>(num_layers) * (4 * C * C + 2 * C * F + 9 * C + F));
  for (int64_t i = 0; i < num_layers; ++i) {
    layers_.push_back(std::make_unique<TransformerEncoderLayer>(
        config, rng, seed + static_cast<uint64_t>(i) * 101));
    register_module("layers." + std::to_string(i), *layers_.back());
  }
  if (final_norm) {
    norm_ = std::make_unique<LayerNorm>(config.d_model, config.layer_norm_eps);
    register_module("norm", *norm_);
  }
}

Tensor TransformerEncoder::forward(ConstTensorView x, const AttentionOptions& opts, Cache* cache,
                                   const Context& ctx) {
  if (cache) cache->layers.resize(layers_.size());
  Tensor h;  // layer 0 reads x in place; each layer returns a new tensor
  for (size_t i = 0; i < layers_.size(); ++i)
    h = layers_[i]->forward(i == 0 ? x : ConstTensorView(h.view()), opts,
                            cache ? &cache->layers[i] : nullptr, ctx);
  if (norm_) h = norm_->forward(h.view(), cache ? &cache->norm : nullptr, ctx);
  return h;
}

Tensor TransformerEncoder::backward(ConstTensorView dout, const Cache& cache, const Context& ctx,
                                    Tensor* dattn_mask) {
  if (cache.layers.size() != layers_.size())
    fail<ValueError>("TransformerEncoder::backward",
                     "the cache is empty: run forward with a cache first");
  Tensor g = norm_ ? norm_->backward(dout, cache.norm, ctx) : Tensor::copy_of(dout);
  for (size_t i = layers_.size(); i-- > 0;)
    g = layers_[i]->backward(g.view(), cache.layers[i], ctx, dattn_mask);
  return g;
}

}  // namespace attn::nn
