// SPDX-License-Identifier: MIT
// StreamingEncoder (include/attn/nn/speech_encoder.h): the chunk mask run on a stream with bounded
// caches. Chunk i's queries see chunks [i - L, i] (WeNet's subsequent_chunk_mask); the keys and
// values of those chunks are the only state a layer needs, so each layer keeps them in a ring of
// L + 1 chunk slots, chunk i in slot i mod (L + 1).
#include <algorithm>
#include <cstring>

#include "attn/nn/speech_encoder.h"

namespace attn::nn {

ops::AttentionMask streaming_mask(int64_t chunk_size, int64_t num_left_chunks) {
  ops::AttentionMask m;
  m.chunk_size = chunk_size;
  m.num_left_chunks = num_left_chunks;
  return m;
}

StreamingEncoder::StreamingEncoder(SpeechEncoder& model, int64_t chunk_size,
                                   int64_t num_left_chunks, const Context& ctx)
    : model_(model),
      ctx_(ctx),
      chunk_(chunk_size),
      left_(num_left_chunks),
      F_(model.config().input_dim),
      C_(model.d_model()) {
  constexpr const char* fn = "StreamingEncoder";
  if (chunk_size < 1) fail<ValueError>(fn, "chunk_size must be >= 1, got ", chunk_size);
  if (num_left_chunks < -1)
    fail<ValueError>(fn, "num_left_chunks must be >= 0, or -1 for all, got ", num_left_chunks);
  if (model.training())
    fail<ValueError>(fn, "the model is in training mode: call set_training(false) first");
  reset();
}

void StreamingEncoder::reset() {
  pending_.clear();
  ring_rows_ = left_ >= 0 ? (left_ + 1) * chunk_ : 0;
  keys_.clear();
  values_.clear();
  for (int64_t l = 0; l < model_.encoder.num_layers(); ++l) {
    keys_.emplace_back(Shape{1, ring_rows_, C_});
    values_.emplace_back(Shape{1, ring_rows_, C_});
  }
  filled_rows_ = 0;
  emitted_ = 0;
  chunks_ = 0;
}

int64_t StreamingEncoder::cache_bytes() const {
  int64_t bytes = static_cast<int64_t>(pending_.capacity() * sizeof(float));
  for (size_t l = 0; l < keys_.size(); ++l)
    bytes += (keys_[l].numel() + values_[l].numel()) * static_cast<int64_t>(sizeof(float));
  return bytes;
}

void StreamingEncoder::ensure_capacity(int64_t rows) {
  if (rows <= ring_rows_) return;
  const int64_t grown = std::max(rows, 2 * ring_rows_);
  for (auto* ring : {&keys_, &values_})
    for (Tensor& t : *ring) {
      Tensor bigger(Shape{1, grown, C_});
      if (ring_rows_ > 0)
        std::memcpy(bigger.data(), t.data(), static_cast<size_t>(ring_rows_ * C_) * sizeof(float));
      t = std::move(bigger);
    }
  ring_rows_ = grown;
}

Tensor StreamingEncoder::push(ConstTensorView frames) {
  if (!frames.defined() || frames.rank() != 2 || frames.dim(1) != F_)
    fail<ShapeError>("StreamingEncoder::push", "frames must be (n, ", F_, "), got ",
                     frames.defined() ? frames.shape().str() : "nothing");
  for (int64_t r = 0; r < frames.dim(0); ++r)
    for (int64_t f = 0; f < F_; ++f) pending_.push_back(frames(r, f));
  // A chunk of chunk_ encoder frames reads 4·chunk + 3 feature frames and consumes 4·chunk of
  // them; the next window reads the last 3 again (the subsampling's overlap).
  const int64_t window =
      Conv2dSubsampling4::kRate * (chunk_ - 1) + Conv2dSubsampling4::kRightContext + 1;
  const int64_t stride = Conv2dSubsampling4::kRate * chunk_;
  std::vector<Tensor> outs;
  int64_t consumed = 0;
  while (static_cast<int64_t>(pending_.size()) / F_ - consumed >= window) {
    const ConstTensorView w(pending_.data() + consumed * F_, Shape{window, F_});
    outs.push_back(run_chunk(w, chunk_));
    consumed += stride;
  }
  pending_.erase(pending_.begin(), pending_.begin() + consumed * F_);
  Tensor out(Shape{static_cast<int64_t>(outs.size()) * chunk_, C_});
  for (size_t i = 0; i < outs.size(); ++i)
    std::memcpy(out.data() + static_cast<int64_t>(i) * chunk_ * C_, outs[i].data(),
                static_cast<size_t>(chunk_ * C_) * sizeof(float));
  return out;
}

Tensor StreamingEncoder::flush() {
  const int64_t rows = static_cast<int64_t>(pending_.size()) / F_;
  const int64_t n = Conv2dSubsampling4::output_length(rows);
  Tensor out(Shape{n, C_});
  if (n > 0) {
    const Tensor y = run_chunk(ConstTensorView(pending_.data(), Shape{rows, F_}), n);
    std::memcpy(out.data(), y.data(), static_cast<size_t>(n * C_) * sizeof(float));
  }
  reset();
  return out;
}

// One chunk: n encoder frames (n <= chunk_) from a window of feature frames. Returns (n, C).
Tensor StreamingEncoder::run_chunk(ConstTensorView window, int64_t n) {
  const int64_t start = chunks_ * chunk_;  // position of the chunk's first encoder frame
  Tensor x = model_.embed.forward(window.unsqueeze(0), nullptr, ctx_);  // (1, n, C)
  if (x.dim(1) != n)
    fail<ValueError>("StreamingEncoder", "internal: a window of ", window.dim(0), " frames gave ",
                     x.dim(1), " encoder frames, expected ", n);
  model_.add_positions(x.view(), start, ctx_);

  // Where this chunk's keys go, and which ring rows its queries read.
  const int64_t row0 = left_ >= 0 ? (chunks_ % (left_ + 1)) * chunk_ : start;
  if (left_ < 0) ensure_capacity(start + chunk_);
  const bool wrapped = left_ >= 0 && chunks_ > left_;
  filled_rows_ = wrapped ? ring_rows_ : row0 + n;
  const bool gap = wrapped && n < chunk_;  // the last, partial chunk leaves stale rows in its slot

  Tensor q(Shape{1, n, C_});
  for (int64_t l = 0; l < model_.encoder.num_layers(); ++l) {
    TransformerEncoderLayer& layer = model_.encoder.layer(l);
    const bool pre = layer.config().norm_first;
    const Tensor normed = pre ? layer.norm1.forward(x.view(), nullptr, ctx_) : Tensor();
    const ConstTensorView in = pre ? normed.view() : x.view();
    Tensor& K = keys_[static_cast<size_t>(l)];
    Tensor& V = values_[static_cast<size_t>(l)];
    layer.self_attn.project_self(in, q.view(), K.view().slice(1, row0, row0 + n),
                                 V.view().slice(1, row0, row0 + n), start, ctx_);
    Tensor a;
    if (!gap) {
      a = layer.self_attn.attend_projected(q.view(), K.view().slice(1, 0, filled_rows_),
                                           V.view().slice(1, 0, filled_rows_), {}, ctx_);
    } else {
      // Gather the visible rows (all but the slot's stale tail) once, for this last chunk only.
      const int64_t keep = ring_rows_ - (chunk_ - n);
      Tensor k(Shape{1, keep, C_}), v(Shape{1, keep, C_});
      const auto head = static_cast<size_t>((row0 + n) * C_) * sizeof(float);
      const auto tail = static_cast<size_t>((ring_rows_ - row0 - chunk_) * C_) * sizeof(float);
      std::memcpy(k.data(), K.data(), head);
      std::memcpy(v.data(), V.data(), head);
      std::memcpy(k.data() + (row0 + n) * C_, K.data() + (row0 + chunk_) * C_, tail);
      std::memcpy(v.data() + (row0 + n) * C_, V.data() + (row0 + chunk_) * C_, tail);
      a = layer.self_attn.attend_projected(q.view(), k.view(), v.view(), {}, ctx_);
    }
    auto add = [](Tensor& dst, const Tensor& src) {
      auto d = dst.values();
      const auto s = src.values();
      for (size_t i = 0; i < d.size(); ++i) d[i] += s[i];
    };
    if (pre) {
      add(x, a);  // h = x + attn(norm1(x))
      const Tensor f =
          layer.ff.forward(layer.norm2.forward(x.view(), nullptr, ctx_).view(), nullptr, ctx_);
      add(x, f);  // y = h + ff(norm2(h))
    } else {
      add(x, a);
      Tensor h = layer.norm1.forward(x.view(), nullptr, ctx_);
      const Tensor f = layer.ff.forward(h.view(), nullptr, ctx_);
      add(h, f);
      x = layer.norm2.forward(h.view(), nullptr, ctx_);
    }
  }
  if (LayerNorm* norm = model_.encoder.norm()) x = norm->forward(x.view(), nullptr, ctx_);
  ++chunks_;
  emitted_ += n;
  return Tensor::copy_of(x.view().select(0, 0));
}

}  // namespace attn::nn
