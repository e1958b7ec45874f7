// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstring>
#include <functional>

#include "dist/internal/sequence_checks.h"
#include "ops/internal/attention_checks.h"

namespace attn::dist::internal {
namespace {

using attn::internal::check_rank;
using attn::internal::check_shape;

// Everything about the call that every rank must share, as integers (doubles by their bits).
std::vector<int64_t> fingerprint(const SequenceDims& d, const SequenceLayout& layout,
                                 const DistAttentionOptions& o) {
  const ops::AttentionMask& m = o.attention.mask;
  auto bits = [](double x) {
    int64_t b = 0;
    std::memcpy(&b, &x, sizeof b);
    return b;
  };
  uint64_t hash = 0;  // key_lengths and ALiBi slopes (unsigned: wraps without overflow)
  for (const int64_t len : m.key_lengths) hash = hash * 1000003u + static_cast<uint64_t>(len);
  for (const float s : m.alibi_slopes)
    hash = hash * 1000003u + static_cast<uint64_t>(bits(static_cast<double>(s)));
  const auto h = static_cast<int64_t>(hash >> 1);
  return {d.B,
          d.NH,
          d.NH_kv,
          d.HS,
          d.HSV,
          layout.length(),
          static_cast<int64_t>(layout.split()),
          static_cast<int64_t>(o.mode),
          o.ring_piece_bytes,
          bits(d.scale),
          m.causal,
          m.query_offset,
          m.window_left,
          m.window_right,
          m.dilation,
          m.chunk_size,
          m.num_left_chunks,
          h};
}

constexpr const char* kFieldNames[] = {"B",
                                       "NH",
                                       "NH_kv",
                                       "HS",
                                       "HSV",
                                       "N",
                                       "split",
                                       "mode",
                                       "ring_piece_bytes",
                                       "scale",
                                       "mask.causal",
                                       "mask.query_offset",
                                       "mask.window_left",
                                       "mask.window_right",
                                       "mask.dilation",
                                       "mask.chunk_size",
                                       "mask.num_left_chunks",
                                       "mask.key_lengths/alibi_slopes"};

void check_every_rank_agrees(const char* fn, const Communicator& comm,
                             const std::vector<int64_t>& mine) {
  const std::vector<int64_t> all = comm.allgather(mine);
  const size_t n = mine.size();
  for (int r = 1; r < comm.size(); ++r)
    for (size_t i = 0; i < n; ++i)
      if (all[static_cast<size_t>(r) * n + i] != all[i])
        fail<ValueError>(fn, "every rank must pass the same shapes and options, but rank ", r,
                         " has ", kFieldNames[i], " = ", all[static_cast<size_t>(r) * n + i],
                         " and rank 0 has ", all[i]);
}

SequenceDims check_local(const char* fn, const Communicator& comm, const SequenceLayout& layout,
                         ConstTensorView q, ConstTensorView k, ConstTensorView v,
                         const DistAttentionOptions& options) {
  check_rank(fn, "q", q, 4);
  check_rank(fn, "k", k, 4);
  check_rank(fn, "v", v, 4);
  const std::string shapes =
      "q " + q.shape().str() + ", k " + k.shape().str() + ", v " + v.shape().str();
  if (layout.ranks() != comm.size())
    fail<ValueError>(fn, "the layout splits the sequence over ", layout.ranks(),
                     " ranks but the communicator has ", comm.size());
  const int64_t n = layout.local_length(comm.rank());
  SequenceDims d{q.dim(0), q.dim(1), k.dim(1),       n, q.dim(3), v.dim(3), layout.length(),
                 0.0,      options.ring_piece_bytes};
  if (q.dim(2) != n || k.dim(2) != n || v.dim(2) != n)
    fail<ShapeError>(fn, "this rank holds ", n, " positions of ", layout.length(),
                     ", so q, k and v need ", n, " in dimension 2 (", shapes, ")");
  if (k.dim(0) != d.B || v.dim(0) != d.B)
    fail<ShapeError>(fn, "q, k and v must have the same batch size (", shapes, ")");
  if (k.dim(3) != d.HS)
    fail<ShapeError>(fn, "k has head size ", k.dim(3), " but q has ", d.HS, " (", shapes, ")");
  if (v.dim(1) != d.NH_kv) fail<ShapeError>(fn, "v must have as many heads as k (", shapes, ")");
  if (d.NH_kv < 1 || d.NH % d.NH_kv != 0)
    fail<ShapeError>(fn, "q has ", d.NH, " heads, which is not a multiple of k's ", d.NH_kv,
                     " heads (", shapes, ")");
  const ops::AttentionOptions& a = options.attention;
  d.scale = a.scale ? *a.scale : ops::default_attention_scale(d.HS);
  attn::internal::check_finite(fn, "scale", d.scale);
  if (options.ring_piece_bytes < 1)
    fail<ValueError>(fn, "ring_piece_bytes must be at least 1 but is ", options.ring_piece_bytes);
  if (a.return_probs) fail<ValueError>(fn, "return_probs is not supported (it is T×S on one rank)");
  if (a.mask.key_offset != 0)
    fail<ValueError>(fn, "mask.key_offset must be 0 (the mask is in global positions) but is ",
                     a.mask.key_offset);
  attn::internal::check_attention_mask(fn, a.mask, d.B, d.NH, d.N);
  if (options.mode == Mode::ulysses && (d.NH % comm.size() != 0 || d.NH_kv % comm.size() != 0))
    fail<ValueError>(fn, "Ulysses splits the heads over the ranks, so NH (", d.NH, ") and NH_kv (",
                     d.NH_kv, ") must be multiples of the ", comm.size(), " ranks; use the ring");
  return d;
}

}  // namespace

SequenceDims check_sequence_attention(const char* fn, const Communicator& comm,
                                      const SequenceLayout& layout, ConstTensorView q,
                                      ConstTensorView k, ConstTensorView v,
                                      const DistAttentionOptions& options) {
  SequenceDims d{};
  comm.agree_on([&] { d = check_local(fn, comm, layout, q, k, v, options); });
  // Every rank sees every fingerprint, so every rank throws the same error here without agreeing.
  check_every_rank_agrees(fn, comm, fingerprint(d, layout, options));
  return d;
}

SequenceDims check_sequence_attention_grad(const char* fn, const Communicator& comm,
                                           const SequenceLayout& layout, ConstTensorView q,
                                           ConstTensorView k, ConstTensorView v,
                                           ConstTensorView out, ConstTensorView lse,
                                           ConstTensorView dout,
                                           const DistAttentionOptions& options) {
  SequenceDims d{};
  comm.agree_on([&] {
    d = check_local(fn, comm, layout, q, k, v, options);
    check_shape(fn, "out", out, Shape{d.B, d.NH, d.n, d.HSV}, "(B, NH, n, HSV)");
    check_shape(fn, "lse", lse, Shape{d.B, d.NH, d.n}, "(B, NH, n)");
    check_shape(fn, "dout", dout, Shape{d.B, d.NH, d.n, d.HSV}, "(B, NH, n, HSV)");
  });
  // Every rank sees every fingerprint, so every rank throws the same error here without agreeing.
  check_every_rank_agrees(fn, comm, fingerprint(d, layout, options));
  return d;
}

ops::AttentionMask block_mask(const ops::AttentionMask& global, int64_t q_start, int64_t k_start,
                              int64_t rows) {
  ops::AttentionMask m = global;
  m.query_offset = global.query_offset + q_start;
  m.key_offset = k_start;
  for (int64_t& len : m.key_lengths) len = std::clamp<int64_t>(len - k_start, 0, rows);
  return m;
}

ops::AttentionMask heads_mask(const ops::AttentionMask& global, int64_t b0, int64_t nb, int64_t h0,
                              int64_t nh) {
  ops::AttentionMask m = global;
  if (!global.key_lengths.empty())
    m.key_lengths.assign(global.key_lengths.begin() + b0, global.key_lengths.begin() + b0 + nb);
  if (!global.alibi_slopes.empty())
    m.alibi_slopes.assign(global.alibi_slopes.begin() + h0, global.alibi_slopes.begin() + h0 + nh);
  return m;
}

void add_into(ConstTensorView src, TensorView dst) {
  ATTN_DCHECK(src.shape() == dst.shape());
  const float* s = src.data();
  float* d = dst.data();
  for_each_offset_pair(src, dst, [&](int64_t a, int64_t b) { d[b] += s[a]; });
}

}  // namespace attn::dist::internal
