// SPDX-License-Identifier: MIT
// Ulysses (DeepSpeed-Ulysses, Jacobs et al. 2023): one all-to-all gives every rank all N positions
// of NH/P heads, the fused kernel attends over the whole sequence under the global mask, and a
// second all-to-all gives every rank its positions of every head back. Two all-to-alls of the
// activations per call instead of P-1 key/value blocks; needs NH and NH_kv divisible by P.
#include "dist/internal/ring.h"

namespace attn::dist::internal {
namespace {

// A rank-3 (B, H, n) tensor as (B, H, n, 1), copied when it is not contiguous.
struct As4d {
  Tensor copy;
  ConstTensorView view;
};
As4d as_4d(ConstTensorView t) {
  As4d a;
  a.copy = Tensor::copy_of(t);
  a.view = ConstTensorView(a.copy.data(), Shape{t.dim(0), t.dim(1), t.dim(2), 1});
  return a;
}

// Sequence split → head split: every (B, H_i, n_me, D_i) tensor becomes (B, H_i/P, N, D_i), this
// rank's heads of every position.
std::vector<Tensor> to_heads(const Communicator& comm, const SequenceLayout& layout,
                             const std::vector<ConstTensorView>& locals, CommStats* stats) {
  const int P = comm.size();
  std::vector<int64_t> send_counts(static_cast<size_t>(P)), recv_counts(static_cast<size_t>(P));
  std::vector<float> send;
  for (int r = 0; r < P; ++r)
    for (const ConstTensorView& t : locals) {
      const int64_t h = t.dim(1) / P;
      const Tensor part = Tensor::copy_of(t.slice(1, r * h, (r + 1) * h));
      send.insert(send.end(), part.data(), part.data() + part.numel());
      send_counts[static_cast<size_t>(r)] += part.numel();
      recv_counts[static_cast<size_t>(r)] += t.dim(0) * h * layout.local_length(r) * t.dim(3);
    }
  int64_t total = 0;
  for (const int64_t c : recv_counts) total += c;
  std::vector<float> recv(static_cast<size_t>(total));
  comm.alltoallv(send, send_counts, recv, recv_counts, stats);
  std::vector<Tensor> heads;
  for (const ConstTensorView& t : locals)
    heads.emplace_back(Shape{t.dim(0), t.dim(1) / P, layout.length(), t.dim(3)});
  const float* at = recv.data();
  for (int r = 0; r < P; ++r)
    for (size_t i = 0; i < locals.size(); ++i) {
      const Shape s{heads[i].dim(0), heads[i].dim(1), layout.local_length(r), heads[i].dim(3)};
      unshard(ConstTensorView(at, s), layout, r, heads[i].view());
      at += s.numel();
    }
  return heads;
}

// Head split → sequence split: every (B, H_i, N, D_i) tensor becomes (B, H_i·P, n_me, D_i).
std::vector<Tensor> to_sequence(const Communicator& comm, const SequenceLayout& layout,
                                const std::vector<ConstTensorView>& heads, CommStats* stats) {
  const int P = comm.size(), me = comm.rank();
  const int64_t n = layout.local_length(me);
  std::vector<int64_t> send_counts(static_cast<size_t>(P)), recv_counts(static_cast<size_t>(P));
  std::vector<float> send;
  for (int r = 0; r < P; ++r)
    for (const ConstTensorView& t : heads) {
      const Tensor part = shard(t, layout, r);
      send.insert(send.end(), part.data(), part.data() + part.numel());
      send_counts[static_cast<size_t>(r)] += part.numel();
      recv_counts[static_cast<size_t>(r)] += t.dim(0) * t.dim(1) * n * t.dim(3);
    }
  int64_t total = 0;
  for (const int64_t c : recv_counts) total += c;
  std::vector<float> recv(static_cast<size_t>(total));
  comm.alltoallv(send, send_counts, recv, recv_counts, stats);
  std::vector<Tensor> locals;
  for (const ConstTensorView& t : heads)
    locals.emplace_back(Shape{t.dim(0), t.dim(1) * P, n, t.dim(3)});
  const float* at = recv.data();
  for (int r = 0; r < P; ++r)
    for (size_t i = 0; i < heads.size(); ++i) {
      const int64_t h = heads[i].dim(1);
      const Shape s{heads[i].dim(0), h, n, heads[i].dim(3)};
      copy(ConstTensorView(at, s), locals[i].view().slice(1, r * h, (r + 1) * h));
      at += s.numel();
    }
  return locals;
}

ops::AttentionOptions options_for(const ops::AttentionMask& mask, const SequenceDims& d) {
  ops::AttentionOptions o;
  o.mask = mask;
  o.scale = d.scale;
  return o;
}

}  // namespace

ops::AttentionResult ulysses_attention(const Communicator& comm, const SequenceLayout& layout,
                                       ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                       const ops::AttentionMask& mask, const SequenceDims& d,
                                       const Context& ctx, CommStats* stats) {
  ops::AttentionOptions o = options_for(mask, d);
  // ALiBi slopes belong to heads: this rank's heads get theirs.
  const int64_t h = d.NH / comm.size();
  o.mask = heads_mask(o.mask, 0, d.B, comm.rank() * h, h);
  const std::vector<Tensor> heads = to_heads(comm, layout, {q, k, v}, stats);
  const ops::AttentionResult r = ops::attention(heads[0], heads[1], heads[2], o, {}, ctx);
  const As4d lse = as_4d(r.lse);
  std::vector<Tensor> back = to_sequence(comm, layout, {r.out, lse.view}, stats);
  ops::AttentionResult res;
  res.out = std::move(back[0]);
  res.lse = Tensor(Shape{d.B, d.NH, d.n});
  copy(ConstTensorView(back[1].data(), res.lse.shape()), res.lse.view());
  return res;
}

ops::AttentionGrads ulysses_attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                           ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                           ConstTensorView out, ConstTensorView lse,
                                           ConstTensorView dout, const ops::AttentionMask& mask,
                                           const SequenceDims& d, const Context& ctx,
                                           CommStats* stats) {
  ops::AttentionOptions o = options_for(mask, d);
  const int64_t h = d.NH / comm.size();
  o.mask = heads_mask(o.mask, 0, d.B, comm.rank() * h, h);
  const As4d lse4 = as_4d(lse);
  const std::vector<Tensor> heads = to_heads(comm, layout, {q, k, v, out, lse4.view, dout}, stats);
  const ConstTensorView head_lse(heads[4].data(), Shape{d.B, h, d.N});
  const ops::AttentionGrads g =
      ops::attention_grad(heads[0], heads[1], heads[2], heads[3], head_lse, heads[5], o, {}, ctx);
  std::vector<Tensor> back = to_sequence(comm, layout, {g.dq, g.dk, g.dv}, stats);
  ops::AttentionGrads res;
  res.dq = std::move(back[0]);
  res.dk = std::move(back[1]);
  res.dv = std::move(back[2]);
  return res;
}

}  // namespace attn::dist::internal
