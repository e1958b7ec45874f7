// SPDX-License-Identifier: MIT
// MultiheadAttention on the fused kernel, and the positional-encoding modules
// (include/attn/nn/attention.h).
#include "attn/nn/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attn/ops/linear.h"

namespace attn::nn {

namespace {

// (B, L, C) -> the (B, NH, L, HS) view the kernel takes, without copying (any strides: head h is
// channels [h·HS, (h+1)·HS) of every row).
template <typename T>
BasicView<T> heads_view(BasicView<T> x, int64_t NH) {
  const int64_t B = x.dim(0), L = x.dim(1), HS = x.dim(2) / NH;
  Strides strides{};
  strides[0] = x.stride(0);
  strides[1] = HS * x.stride(2);
  strides[2] = x.stride(1);
  strides[3] = x.stride(2);
  return BasicView<T>(x.data(), Shape{B, NH, L, HS}, strides);
}

// Row r of in_proj (rows [r·C, (r+1)·C)) of a (3C, C) weight or a (3C) bias.
TensorView third(TensorView w, int64_t r, int64_t C) { return w.slice(0, r * C, (r + 1) * C); }
ConstTensorView third(ConstTensorView w, int64_t r, int64_t C) {
  return w.slice(0, r * C, (r + 1) * C);
}

bool same_view(ConstTensorView a, ConstTensorView b) {
  return a.data() == b.data() && a.shape() == b.shape() && a.strides() == b.strides();
}

// If every row of the (B, S) padding mask is "keys, then padding", the key lengths; otherwise
// empty.
std::vector<int64_t> suffix_lengths(ConstTensorView pad) {
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < pad.dim(0); ++b) {
    int64_t len = pad.dim(1);
    for (int64_t s = 0; s < pad.dim(1); ++s)
      if (pad(b, s) != 0.0f) {
        len = s;
        break;
      }
    for (int64_t s = len; s < pad.dim(1); ++s)
      if (pad(b, s) == 0.0f) return {};
    lengths.push_back(len);
  }
  return lengths;
}

// What the kernel is given for a call's masks: the structure and ALiBi of opts.mask, padding as
// key lengths when it is a suffix, everything dense (attn_mask, other padding patterns) as one
// additive bias: dense_bias, or the caller's attn_mask itself.
struct KernelMask {
  ops::AttentionMask mask;
  Tensor dense_bias;
  ConstTensorView bias;
  Shape attn_mask_shape;  // (B|1, NH|1, T, S), or empty without an attn_mask
};

KernelMask kernel_mask(const char* fn, const AttentionOptions& opts, int64_t B, int64_t NH,
                       int64_t T, int64_t S) {
  KernelMask km{opts.mask, {}, {}, {}};
  ConstTensorView pad = opts.key_padding_mask;
  if (pad.defined()) {
    if (pad.rank() != 2 || pad.dim(0) != B || pad.dim(1) != S)
      fail<ShapeError>(fn, "key_padding_mask must be (B, S) = (", B, ", ", S, "), got ",
                       pad.shape().str());
    auto lengths = suffix_lengths(pad);
    if (!lengths.empty()) {
      if (!km.mask.key_lengths.empty())
        for (size_t b = 0; b < lengths.size(); ++b)
          lengths[b] = std::min(lengths[b], km.mask.key_lengths[b]);
      km.mask.key_lengths = std::move(lengths);
      pad = ConstTensorView();
    }
  }
  ConstTensorView am = opts.attn_mask;
  if (am.defined()) {
    if (am.rank() == 2) am = am.unsqueeze(0).unsqueeze(0);
    if (am.rank() != 4 || am.dim(2) != T || am.dim(3) != S || (am.dim(0) != 1 && am.dim(0) != B) ||
        (am.dim(1) != 1 && am.dim(1) != NH))
      fail<ShapeError>(fn, "attn_mask must be (T, S) or (B|1, NH|1, T, S) with B=", B, " NH=", NH,
                       " T=", T, " S=", S, ", got ", opts.attn_mask.shape().str());
    km.attn_mask_shape = am.shape();
  }
  if (opts.attn_mask_grad && !am.defined())
    fail<ValueError>(fn, "attn_mask_grad is set but there is no attn_mask");
  if (!pad.defined()) {
    km.bias = am;
    return km;
  }
  if (opts.attn_mask_grad)
    fail<ValueError>(fn,
                     "attn_mask_grad needs a key_padding_mask that pads only at the end (or none)");
  const int64_t nh = am.defined() ? am.dim(1) : 1;
  km.dense_bias = Tensor(Shape{B, nh, T, S});
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < S; ++s)
          km.dense_bias(b, h, t, s) = (pad(b, s) != 0.0f ? ninf : 0.0f) +
                                      (am.defined() ? am(am.dim(0) == 1 ? 0 : b, h, t, s) : 0.0f);
  km.bias = km.dense_bias.view();  // moving km keeps dense_bias's buffer, so this view stays valid
  return km;
}

// The (B, NH, T, S) probabilities averaged over the heads: (B, T, S).
Tensor head_average(const Tensor& probs) {
  const int64_t B = probs.dim(0), NH = probs.dim(1), T = probs.dim(2), S = probs.dim(3);
  Tensor avg(Shape{B, T, S});
  const float inv = 1.0f / static_cast<float>(NH);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < S; ++s) avg(b, t, s) += probs(b, h, t, s) * inv;
  return avg;
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t C, int64_t NH, bool bias, Rng& rng, RopeConfig rope)
    : out_proj(C, C, bias, rng), C_(C), NH_(NH), rope_(rope) {
  if (NH < 1 || C < 1 || C % NH != 0)
    fail<ValueError>("MultiheadAttention", "embed_dim ", C,
                     " must be a positive multiple of num_heads ", NH);
  if (rope.enabled && (C / NH) % 2 != 0)
    fail<ValueError>("MultiheadAttention", "RoPE needs an even head size, got ", C / NH);
  in_proj_weight_ = &register_parameter("in_proj_weight", Shape{3 * C, C});
  const double bound =
      std::sqrt(6.0 / static_cast<double>(C + 3 * C));  // xavier_uniform_ on (3C, C)
  for (auto& v : in_proj_weight_->value.values())
    v = static_cast<float>(rng.uniform(-bound, bound));
  if (bias) in_proj_bias_ = &register_parameter("in_proj_bias", Shape{3 * C});
  if (Parameter* b = out_proj.bias()) fill(b->value.view(), 0.0f);
  register_module("out_proj", out_proj);
}

Tensor MultiheadAttention::forward(ConstTensorView query, ConstTensorView key,
                                   ConstTensorView value, const AttentionOptions& opts,
                                   Cache* cache, const Context& ctx, Tensor* weights) {
  constexpr const char* fn = "MultiheadAttention::forward";
  for (auto [name, x] : {std::pair{"query", query}, {"key", key}, {"value", value}}) {
    if (!x.defined() || x.rank() != 3 || x.dim(2) != C_)
      fail<ShapeError>(fn, name, " must be (B, L, C) with C = ", C_, ", got ",
                       x.defined() ? x.shape().str() : "nothing");
  }
  const int64_t B = query.dim(0), T = query.dim(1), S = key.dim(1);
  if (key.dim(0) != B || !(value.shape() == key.shape()))
    fail<ShapeError>(fn, "query ", query.shape().str(), ", key ", key.shape().str(), " and value ",
                     value.shape().str(),
                     " must share B, and key and value must have the same shape");
  if (opts.need_weights && !weights)
    fail<ValueError>(fn, "need_weights is set but no weights output was given");
  const bool self = same_view(query, key) && same_view(key, value);

  // Input projections: three GEMMs against the row blocks of in_proj_weight.
  const ConstTensorView w = in_proj_weight_->value.view();
  const ConstTensorView bvec =
      in_proj_bias_ ? ConstTensorView(in_proj_bias_->value.view()) : ConstTensorView();
  Tensor query_in = as_rows(query, fn);
  Tensor key_in = self ? Tensor() : as_rows(key, fn),
         value_in = self ? Tensor() : as_rows(value, fn);
  const ConstTensorView key_rows = self ? query_in.view() : key_in.view();
  const ConstTensorView value_rows = self ? query_in.view() : value_in.view();
  // The projections and the attention below overwrite these.
  Tensor q = Tensor::uninitialized(Shape{B, T, C_}), k = Tensor::uninitialized(Shape{B, S, C_}),
         v = Tensor::uninitialized(Shape{B, S, C_});
  auto project = [&](ConstTensorView rows, int64_t r, Tensor& dst) {
    ops::linear_forward(rows, third(w, r, C_),
                        bvec.defined() ? third(bvec, r, C_) : ConstTensorView(),
                        dst.view().reshape(Shape{rows.dim(0), C_}), ctx);
  };
  project(query_in.view(), 0, q);
  project(key_rows, 1, k);
  project(value_rows, 2, v);
  if (rope_.enabled) {
    ops::rope_forward(heads_view(q.view(), NH_), opts.start_pos, ctx, rope_.base, rope_.layout);
    ops::rope_forward(heads_view(k.view(), NH_), opts.start_pos, ctx, rope_.base, rope_.layout);
  }

  KernelMask km = kernel_mask(fn, opts, B, NH_, T, S);
  Tensor attn = Tensor::uninitialized(Shape{B, T, C_}),
         lse = Tensor::uninitialized(Shape{B, NH_, T});
  Tensor probs;
  if (opts.need_weights) probs = Tensor::uninitialized(Shape{B, NH_, T, S});
  const double scale = ops::default_attention_scale(C_ / NH_);
  ops::attention_forward(heads_view(q.view(), NH_), heads_view(k.view(), NH_),
                         heads_view(v.view(), NH_), km.mask, km.bias, scale,
                         heads_view(attn.view(), NH_), lse.view(), probs.view(), ctx);
  if (opts.need_weights)
    *weights = opts.average_attn_weights ? head_average(probs) : std::move(probs);
  // With a cache, out_proj's cache takes the heads' outputs over: the backward reads them there.
  Tensor out = cache ? out_proj.forward(std::move(attn), &cache->out_proj, ctx)
                     : out_proj.forward(attn.view(), nullptr, ctx);
  if (cache) {
    cache->self = self;
    cache->query_in = std::move(query_in);
    cache->key_in = std::move(key_in);
    cache->value_in = std::move(value_in);
    cache->q = std::move(q);
    cache->k = std::move(k);
    cache->v = std::move(v);
    cache->lse = std::move(lse);
    cache->dense_bias = std::move(km.dense_bias);
    cache->mask = std::move(km.mask);
    // Moving a Tensor keeps its buffer, so a bias viewing dense_bias stays valid; attn_mask is the
    // caller's and must outlive the cache (documented on AttentionOptions::attn_mask).
    cache->bias = km.bias;
    cache->start_pos = opts.start_pos;
    cache->attn_mask_grad = opts.attn_mask_grad;
    cache->attn_mask_shape = km.attn_mask_shape;
  }
  return out;
}

MultiheadAttention::Grads MultiheadAttention::backward(ConstTensorView dout, const Cache& cache,
                                                       const Context& ctx) {
  constexpr const char* fn = "MultiheadAttention::backward";
  if (!cache.q.defined())
    fail<ValueError>(fn, "the cache is empty: run forward with a cache first");
  const int64_t B = cache.q.dim(0), T = cache.q.dim(1), S = cache.k.dim(1);
  if (!dout.defined() || !(dout.shape() == Shape{B, T, C_}))
    fail<ShapeError>(fn, "dout must be ", Shape{B, T, C_}.str(), ", got ",
                     dout.defined() ? dout.shape().str() : "nothing");
  const Tensor dattn = out_proj.backward(dout, cache.out_proj, ctx);
  Tensor dq(cache.q.shape()), dk(cache.k.shape()), dv(cache.v.shape());
  Grads g;
  TensorView dbias;
  if (cache.attn_mask_grad) {
    g.dattn_mask = Tensor(cache.attn_mask_shape);
    dbias = g.dattn_mask.view();
  }
  // The kernel's out is the heads' output before out_proj, which out_proj's cache holds.
  const ConstTensorView heads_out = cache.out_proj.x.view().reshape(Shape{B, T, C_});
  ops::attention_backward(heads_view(cache.q.view(), NH_), heads_view(cache.k.view(), NH_),
                          heads_view(cache.v.view(), NH_), heads_view(heads_out, NH_),
                          cache.lse.view(), heads_view(dattn.view(), NH_), cache.mask, cache.bias,
                          ops::default_attention_scale(C_ / NH_), heads_view(dq.view(), NH_),
                          heads_view(dk.view(), NH_), heads_view(dv.view(), NH_), dbias, ctx);
  if (rope_.enabled) {
    ops::rope_backward(heads_view(dq.view(), NH_), cache.start_pos, ctx, rope_.base, rope_.layout);
    ops::rope_backward(heads_view(dk.view(), NH_), cache.start_pos, ctx, rope_.base, rope_.layout);
  }
  const ConstTensorView w = in_proj_weight_->value.view();
  const TensorView dw = in_proj_weight_->grad.view();
  const TensorView db = in_proj_bias_ ? TensorView(in_proj_bias_->grad.view()) : TensorView();
  g.dquery = Tensor(Shape{B, T, C_});
  if (!cache.self) {
    g.dkey = Tensor(Shape{B, S, C_});
    g.dvalue = Tensor(Shape{B, S, C_});
  }
  auto project_back = [&](const Tensor& in, int64_t r, const Tensor& d, Tensor& dx) {
    ops::linear_backward(in.view(), third(w, r, C_), d.view().reshape(in.shape()),
                         dx.view().reshape(in.shape()), third(dw, r, C_),
                         db.defined() ? third(db, r, C_) : TensorView(), ctx);
  };
  project_back(cache.query_in, 0, dq, g.dquery);
  project_back(cache.self ? cache.query_in : cache.key_in, 1, dk, cache.self ? g.dquery : g.dkey);
  project_back(cache.self ? cache.query_in : cache.value_in, 2, dv,
               cache.self ? g.dquery : g.dvalue);
  return g;
}

void MultiheadAttention::project_self(ConstTensorView x, TensorView q, TensorView k, TensorView v,
                                      int64_t start_pos, const Context& ctx) {
  constexpr const char* fn = "MultiheadAttention::project_self";
  if (!x.defined() || x.rank() != 3 || x.dim(2) != C_)
    fail<ShapeError>(fn, "x must be (B, T, ", C_, "), got ",
                     x.defined() ? x.shape().str() : "nothing");
  for (auto [name, dst] : {std::pair{"q", q}, {"k", k}, {"v", v}})
    if (!dst.defined() || !(dst.shape() == x.shape()) || dst.stride(2) != 1 ||
        dst.stride(1) != C_ || (dst.dim(0) > 1 && dst.stride(0) != dst.dim(1) * C_))
      fail<ShapeError>(fn, name, " must be a row-contiguous ", x.shape().str(), ", got ",
                       dst.defined() ? dst.shape().str() : "nothing");
  const Tensor rows = as_rows(x, fn);
  const ConstTensorView w = in_proj_weight_->value.view();
  const ConstTensorView bvec =
      in_proj_bias_ ? ConstTensorView(in_proj_bias_->value.view()) : ConstTensorView();
  const int64_t N = rows.dim(0);
  int64_t r = 0;
  for (TensorView dst : {q, k, v}) {
    const TensorView out(dst.data(), Shape{N, C_});
    ops::linear_forward(rows.view(), third(w, r, C_),
                        bvec.defined() ? third(bvec, r, C_) : ConstTensorView(), out, ctx);
    ++r;
  }
  if (rope_.enabled) {
    ops::rope_forward(heads_view(q, NH_), start_pos, ctx, rope_.base, rope_.layout);
    ops::rope_forward(heads_view(k, NH_), start_pos, ctx, rope_.base, rope_.layout);
  }
}

Tensor MultiheadAttention::attend_projected(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                            const ops::AttentionMask& mask, const Context& ctx) {
  constexpr const char* fn = "MultiheadAttention::attend_projected";
  for (auto [name, x] : {std::pair{"q", q}, {"k", k}, {"v", v}})
    if (!x.defined() || x.rank() != 3 || x.dim(2) != C_)
      fail<ShapeError>(fn, name, " must be (B, L, ", C_, "), got ",
                       x.defined() ? x.shape().str() : "nothing");
  if (k.dim(0) != q.dim(0) || !(k.shape() == v.shape()))
    fail<ShapeError>(fn, "q ", q.shape().str(), ", k ", k.shape().str(), " and v ",
                     v.shape().str(), " must share B, and k and v must have the same shape");
  const int64_t B = q.dim(0), T = q.dim(1);
  Tensor attn(Shape{B, T, C_}), lse(Shape{B, NH_, T});
  ops::attention_forward(heads_view(q, NH_), heads_view(k, NH_), heads_view(v, NH_), mask, {},
                         ops::default_attention_scale(C_ / NH_), heads_view(attn.view(), NH_),
                         lse.view(), {}, ctx);
  return out_proj.forward(attn.view(), nullptr, ctx);
}

// ------------------------------------------------------------------------------ positional
// encodings

Tensor SinusoidalPositionalEncoding::forward(ConstTensorView x, int64_t start_pos,
                                             const Context& ctx) {
  if (!x.defined() || x.rank() != 3 || x.dim(2) != C_)
    fail<ShapeError>("SinusoidalPositionalEncoding::forward", "x must be (B, T, ", C_, "), got ",
                     x.defined() ? x.shape().str() : "nothing");
  Tensor y(x.shape());
  ops::add_sinusoidal_encoding(x, y.view(), start_pos, ctx, base_);
  return y;
}

LearnedPositionalEncoding::LearnedPositionalEncoding(int64_t max_len, int64_t C, Rng& rng)
    : max_len_(max_len), C_(C) {
  if (max_len < 1 || C < 1)
    fail<ValueError>("LearnedPositionalEncoding", "sizes must be >= 1, got ", max_len, ", ", C);
  weight_ = &register_parameter("weight", Shape{max_len, C});
  for (auto& v : weight_->value.values()) v = static_cast<float>(rng.normal());
}

Tensor LearnedPositionalEncoding::forward(ConstTensorView x, int64_t start_pos, const Context&) {
  constexpr const char* fn = "LearnedPositionalEncoding::forward";
  if (!x.defined() || x.rank() != 3 || x.dim(2) != C_)
    fail<ShapeError>(fn, "x must be (B, T, ", C_, "), got ",
                     x.defined() ? x.shape().str() : "nothing");
  if (start_pos < 0 || start_pos + x.dim(1) > max_len_)
    fail<ValueError>(fn, "positions [", start_pos, ", ", start_pos + x.dim(1), ") exceed max_len ",
                     max_len_);
  Tensor y = Tensor::copy_of(x);
  for (int64_t b = 0; b < x.dim(0); ++b)
    for (int64_t t = 0; t < x.dim(1); ++t)
      for (int64_t c = 0; c < C_; ++c) y(b, t, c) += weight_->value(start_pos + t, c);
  return y;
}

Tensor LearnedPositionalEncoding::backward(ConstTensorView dout, int64_t start_pos,
                                           const Context&) {
  constexpr const char* fn = "LearnedPositionalEncoding::backward";
  if (!dout.defined() || dout.rank() != 3 || dout.dim(2) != C_ || start_pos < 0 ||
      start_pos + dout.dim(1) > max_len_)
    fail<ShapeError>(fn, "dout must be (B, T, ", C_, ") with start_pos + T <= ", max_len_);
  for (int64_t b = 0; b < dout.dim(0); ++b)
    for (int64_t t = 0; t < dout.dim(1); ++t)
      for (int64_t c = 0; c < C_; ++c) weight_->grad(start_pos + t, c) += dout(b, t, c);
  return Tensor::copy_of(dout);
}

RelativePositionBias::RelativePositionBias(int64_t NH, Rng& rng, bool bidirectional,
                                           int64_t num_buckets, int64_t max_distance)
    : relative_attention_bias(num_buckets, NH, rng),
      NH_(NH),
      num_buckets_(num_buckets),
      max_distance_(max_distance),
      bidirectional_(bidirectional) {
  (void)ops::t5_relative_position_bucket(0, bidirectional, num_buckets,
                                         max_distance);  // validates the sizes
  register_module("relative_attention_bias", relative_attention_bias);
}

std::vector<int64_t> RelativePositionBias::buckets(int64_t T, int64_t S,
                                                   int64_t query_offset) const {
  // The bucket depends only on s - t: T + S - 1 distinct values (each a log), not T·S.
  std::vector<int64_t> by_distance(static_cast<size_t>(std::max<int64_t>(T + S - 1, 0)));
  for (size_t i = 0; i < by_distance.size(); ++i)
    by_distance[i] =
        ops::t5_relative_position_bucket(static_cast<int64_t>(i) - (T - 1) - query_offset,
                                         bidirectional_, num_buckets_, max_distance_);
  return by_distance;
}

Tensor RelativePositionBias::forward(int64_t T, int64_t S, int64_t query_offset) const {
  if (T < 0 || S < 0)
    fail<ValueError>("RelativePositionBias::forward", "T and S must be >= 0, got ", T, ", ", S);
  Tensor bias(Shape{1, NH_, T, S});
  const auto* table = relative_attention_bias.weight().value.data();
  const std::vector<int64_t> bucket = buckets(T, S, query_offset);
  for (int64_t h = 0; h < NH_; ++h)
    for (int64_t t = 0; t < T; ++t) {
      float* row = bias.data() + (h * T + t) * S;
      for (int64_t s = 0; s < S; ++s)
        row[s] = table[bucket[static_cast<size_t>(s - t + T - 1)] * NH_ + h];
    }
  return bias;
}

void RelativePositionBias::backward(ConstTensorView dbias, int64_t query_offset) {
  if (!dbias.defined() || dbias.rank() != 4 || dbias.dim(0) != 1 || dbias.dim(1) != NH_)
    fail<ShapeError>("RelativePositionBias::backward", "dbias must be (1, ", NH_, ", T, S)");
  const int64_t T = dbias.dim(2), S = dbias.dim(3);
  float* grad = relative_attention_bias.weight().grad.data();
  const std::vector<int64_t> bucket = buckets(T, S, query_offset);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t b = bucket[static_cast<size_t>(s - t + T - 1)];
      for (int64_t h = 0; h < NH_; ++h) grad[b * NH_ + h] += dbias(0, h, t, s);
    }
}

}  // namespace attn::nn
