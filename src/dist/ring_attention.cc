// SPDX-License-Identifier: MIT
// Ring attention over MPI (docs/distributed.md). Step j of P-1: rank r receives the key/value rows
// of rank r-j that its queries can see and sends its own to rank r+j, while it attends over what
// has arrived; every (query chunk, key rows) pair is one call of the fused kernel with the block's
// global positions (query_offset, key_offset), merged exactly into the running (out, lse). A pair
// the mask hides costs nothing and a block nobody sees is never sent. The backward runs the same
// schedule; the dK/dV of a received block go back to its owner, which adds them in step order (so
// the result does not depend on message timing).
//
// Memory: a block travels in pieces, each the rows of one batch entry and key/value head, at most
// d.piece_bytes, sent straight from the owner's k and v (one message per contiguous run, so
// nothing is packed) into one of two piece buffers on the receiver; queries are merged in chunks
// of at most half that many bytes of output. So the forward needs a constant amount of memory on
// top of the rank's own tensors. The backward also keeps the returned gradients of the blocks this
// rank sent until it adds them (at most two steps' worth). Pieces are whole heads, not rows of all
// heads, because shared-memory MPI moves a message without the sender's help only once the
// sender has announced it, which it does for a few messages at a time: many small runs per piece
// made the receiver wait for the sender's next MPI call.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "dist/internal/ring.h"
#include "dist/internal/ring_plan.h"
#include "dist/internal/sequence_checks.h"

namespace attn::dist::internal {
namespace {

constexpr int kTagKv = 0, kTagGrad = 10000;

struct Geometry {
  const SequenceDims& d;
  const RingPlan& plan;
  int me;
  int64_t group;  // query heads per key/value head, NH / NH_kv
};

// Batch entries [b0, b0 + nb) and key/value heads [h0, h0 + nh): all of them for the local block,
// one of each for a piece.
struct Heads {
  int64_t b0, nb, h0, nh;
};
struct Piece {
  Heads heads;
  Block rows;
};

// The heads' slice of a (B, heads, ...) tensor; group: query heads per key/value head for
// query-side tensors, 1 for k and v.
template <typename View>
View select(View t, const Heads& s, int64_t group) {
  return t.slice(0, s.b0, s.b0 + s.nb).slice(1, s.h0 * group, (s.h0 + s.nh) * group);
}
ops::AttentionMask select_mask(const ops::AttentionMask& m, const Heads& s, int64_t group) {
  return heads_mask(m, s.b0, s.nb, s.h0 * group, s.nh * group);
}

// Keys and values to attend over: the local tensors (local) or a received piece.
struct KvBlock {
  ConstTensorView k, v;  // (nb, nh, R, HS) and (nb, nh, R, HSV) for the heads
  Heads heads;
  bool local;
};

int64_t piece_floats(const SequenceDims& d, int64_t rows) { return rows * (d.HS + d.HSV); }
int64_t piece_rows(const SequenceDims& d) {
  const int64_t row_bytes = (d.HS + d.HSV) * int64_t{sizeof(float)};
  return std::max<int64_t>(1, d.piece_bytes / row_bytes);
}
// Query rows per kernel call for the given heads: at most half a piece of output.
int64_t query_chunk_rows(const SequenceDims& d, const Heads& s, int64_t group) {
  const int64_t row_bytes = s.nb * s.nh * group * d.HSV * int64_t{sizeof(float)};
  return std::max<int64_t>(1, d.piece_bytes / 2 / row_bytes);
}

// A piece's buffer: k's rows (1, 1, R, HS), then v's (1, 1, R, HSV).
std::array<TensorView, 2> piece_views(const SequenceDims& d, float* buf, int64_t rows) {
  return {TensorView(buf, Shape{1, 1, rows, d.HS}),
          TensorView(buf + rows * d.HS, Shape{1, 1, rows, d.HSV})};
}

// Packed rows [lo, hi) of a block, as a block of its own (its packed rows counted from lo).
Block clip(const Block& blk, int64_t lo, int64_t hi) {
  Block out;
  for (const BlockPart& p : blk.parts) {
    const int64_t a = std::max(lo, p.packed_row), z = std::min(hi, p.packed_row + p.rows);
    if (a >= z) continue;
    const int64_t skip = a - p.packed_row;
    out.parts.push_back({p.k_segment, p.global_start + skip, z - a, p.owner_row + skip, a - lo});
    out.rows += z - a;
  }
  return out;
}
// The block's pieces: batch entry by batch entry, head by head, rows in order.
std::vector<Piece> split(const SequenceDims& d, const Block& blk) {
  std::vector<Piece> pieces;
  const int64_t rows = piece_rows(d);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH_kv; ++h)
      for (int64_t lo = 0; lo < blk.rows; lo += rows)
        pieces.push_back({{b, 1, h, 1}, clip(blk, lo, std::min(blk.rows, lo + rows))});
  return pieces;
}

// Calls fn(run) for every contiguous run of a piece's rows in (k, v) of shape (B, NH_kv, R, D),
// at batch entry b and head h, rows p.owner_row (owner) or p.packed_row (receiver) on: k's runs,
// then v's, part by part. Sender and receiver walk the same order, so MPI matches their messages
// one to one (messages between two ranks with one tag never overtake).
template <typename T, typename F>
void for_each_run(const Block& piece, int64_t b, int64_t h, BasicView<T> k, BasicView<T> v,
                  bool owner, F&& fn) {
  for (const BasicView<T>& t : {k, v})
    for (const BlockPart& p : piece.parts) {
      const int64_t row = owner ? p.owner_row : p.packed_row;
      fn(std::span<T>(t.data() + b * t.stride(0) + h * t.stride(1) + row * t.stride(2),
                      static_cast<size_t>(p.rows * t.dim(3))));
    }
}

// Calls fn(q_row, q_size, mask, key_row, key_count) for every (query chunk of at most q_chunk
// rows of this rank, part of the block) pair the mask lets meet, with the rows of the block it
// reaches. mask: the global mask of the block's heads.
template <typename F>
void for_each_pair(const Geometry& g, const Block& blk, bool local, const ops::AttentionMask& mask,
                   int64_t q_chunk, F&& fn) {
  int64_t q_row = 0;
  for (int qs = g.plan.first_segment(g.me);
       qs < g.plan.first_segment(g.me) + g.plan.segment_count(g.me); ++qs) {
    const Segment& seg = g.plan.segment(qs);
    for (const BlockPart& p : blk.parts) {
      const Rows reach = g.plan.reach(qs, p.k_segment);
      const Rows r{std::max(reach.lo, p.global_start), std::min(reach.hi, p.global_start + p.rows)};
      if (r.empty()) continue;
      const int64_t row = (local ? p.owner_row : p.packed_row) + (r.lo - p.global_start);
      for (int64_t t = 0; t < seg.size; t += q_chunk) {
        const int64_t nq = std::min(q_chunk, seg.size - t);
        fn(q_row + t, nq, block_mask(mask, seg.start + t, r.lo, r.size()), row, r.size());
      }
    }
    q_row += seg.size;
  }
}

// One ring step: the pieces this rank receives from src and sends to dst, the requests of the
// sends, and (backward) the gradients dst returns for what this rank sent.
struct Step {
  int src = 0, dst = 0;
  std::vector<Piece> in, out;
  std::vector<Communicator::Request> sends;
  std::vector<float> grad_in;  // out's pieces' gradients, piece after piece
  std::vector<Communicator::Request> grad_in_reqs;
};

class Ring {
 public:
  Ring(const Communicator& comm, const Geometry& g, ConstTensorView k, ConstTensorView v,
       bool with_grads, CommStats* stats)
      : comm_(comm), g_(g), grads_(with_grads), stats_(stats) {
    // Sends go straight from k and v, whose rows must then be contiguous within each head.
    auto rows_contiguous = [](ConstTensorView t) {
      return t.stride(3) == 1 && t.stride(2) == t.dim(3);
    };
    if (rows_contiguous(k) && rows_contiguous(v)) {
      k_ = k, v_ = v;
    } else {
      k_copy_ = Tensor(k.shape()), v_copy_ = Tensor(v.shape());
      copy(k, k_copy_.view()), copy(v, v_copy_.view());
      k_ = k_copy_.view(), v_ = v_copy_.view();
    }
    const int P = comm_.size();
    steps_.resize(static_cast<size_t>(P));
    for (int j = 1; j < P; ++j) {
      Step& s = step(j);
      s.src = (g_.me - j + P) % P, s.dst = (g_.me + j) % P;
      s.in = split(g_.d, g_.plan.block(s.src, g_.me));
      s.out = split(g_.d, g_.plan.block(g_.me, s.dst));
      for (const Piece& piece : s.in) flat_.push_back({j, &piece});
    }
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    for (Step& s : steps_) wait_all(s.sends);
    for (Communicator::Request& r : grad_out_reqs_) wait(r);
  }

  // Posts step j's sends to dst and (backward) the receives of their gradients.
  void start(int j) {
    Step& s = step(j);
    for (const Piece& piece : s.out)
      for_each_run(piece.rows, piece.heads.b0, piece.heads.h0, k_, v_, /*owner=*/true,
                   [&](std::span<const float> run) {
                     s.sends.push_back(comm_.isend(run, s.dst, kTagKv + j, stats_));
                   });
    if (!grads_ || s.out.empty()) return;
    int64_t total = 0;
    for (const Piece& piece : s.out) total += piece_floats(g_.d, piece.rows.rows);
    s.grad_in.assign(static_cast<size_t>(total), 0.0f);
    size_t off = 0;
    for (const Piece& piece : s.out) {
      const auto n = static_cast<size_t>(piece_floats(g_.d, piece.rows.rows));
      s.grad_in_reqs.push_back(
          comm_.irecv(std::span(s.grad_in).subspan(off, n), s.dst, kTagGrad + j));
      off += n;
    }
  }

  // Calls fn(piece, kv) for every piece of step j's received block in turn, while the next piece
  // (of this step or the next) arrives in the other buffer.
  template <typename F>
  void for_each_received(int j, F&& fn) {
    for (size_t i = 0; i < flat_.size(); ++i) {
      if (flat_[i].step != j) continue;
      if (posted_ <= i) post_receive(i);
      wait_all(recv_reqs_[i % 2]);
      if (i + 1 < flat_.size()) post_receive(i + 1);
      const Piece& piece = *flat_[i].piece;
      const auto [k, v] = piece_views(g_.d, recv_[i % 2].data(), piece.rows.rows);
      fn(piece, KvBlock{k, v, piece.heads, false});
    }
  }
  // Backward: a zeroed gradient buffer for a received piece, and its return to the owner.
  std::array<TensorView, 2> grad_buffer(const Piece& piece) {
    const size_t slot = grads_sent_ % 2;
    wait(grad_out_reqs_[slot]);
    grad_out_[slot].assign(static_cast<size_t>(piece_floats(g_.d, piece.rows.rows)), 0.0f);
    return piece_views(g_.d, grad_out_[slot].data(), piece.rows.rows);
  }
  void send_grads(int j) {
    const size_t slot = grads_sent_++ % 2;
    grad_out_reqs_[slot] = comm_.isend(grad_out_[slot], step(j).src, kTagGrad + j, stats_);
  }
  // Backward: adds what rank dst computed for the rows this rank sent it at step j.
  void add_returned_grads(int j, TensorView dk, TensorView dv) {
    Step& s = step(j);
    wait_all(s.grad_in_reqs);
    float* buf = s.grad_in.data();
    for (const Piece& piece : s.out) {
      const auto [gk, gv] = piece_views(g_.d, buf, piece.rows.rows);
      const TensorView pk = select(dk, piece.heads, 1), pv = select(dv, piece.heads, 1);
      for (const BlockPart& p : piece.rows.parts) {
        add_into(gk.slice(2, p.packed_row, p.packed_row + p.rows),
                 pk.slice(2, p.owner_row, p.owner_row + p.rows));
        add_into(gv.slice(2, p.packed_row, p.packed_row + p.rows),
                 pv.slice(2, p.owner_row, p.owner_row + p.rows));
      }
      buf += piece_floats(g_.d, piece.rows.rows);
    }
    std::vector<float>().swap(s.grad_in);
  }

 private:
  struct Received {
    int step;
    const Piece* piece;
  };
  Step& step(int j) { return steps_[static_cast<size_t>(j)]; }
  void post_receive(size_t i) {
    std::vector<float>& buf = recv_[i % 2];
    const auto need = static_cast<size_t>(piece_floats(g_.d, piece_rows(g_.d)));
    if (buf.size() < need) buf.resize(need);
    const Piece& piece = *flat_[i].piece;
    const auto [k, v] = piece_views(g_.d, buf.data(), piece.rows.rows);
    for_each_run(piece.rows, 0, 0, k, v, /*owner=*/false, [&](std::span<float> run) {
      recv_reqs_[i % 2].push_back(
          comm_.irecv(run, step(flat_[i].step).src, kTagKv + flat_[i].step));
    });
    posted_ = i + 1;
  }
  void wait(Communicator::Request& r) {
    const double w = r.wait();
    if (stats_) stats_->wait_seconds += w;
  }
  void wait_all(std::vector<Communicator::Request>& rs) {
    for (Communicator::Request& r : rs) wait(r);
    rs.clear();
  }

  const Communicator& comm_;
  const Geometry& g_;
  ConstTensorView k_, v_;
  Tensor k_copy_, v_copy_;
  bool grads_;
  CommStats* stats_;
  std::vector<Step> steps_;
  std::vector<Received> flat_;  // every received piece, step after step
  size_t posted_ = 0;           // receives are posted for flat_[0, posted_)
  std::array<std::vector<float>, 2> recv_;
  std::array<std::vector<Communicator::Request>, 2> recv_reqs_;
  std::array<std::vector<float>, 2> grad_out_;
  std::array<Communicator::Request, 2> grad_out_reqs_;
  size_t grads_sent_ = 0;
};

}  // namespace

ops::AttentionResult ring_attention(const Communicator& comm, const SequenceLayout& layout,
                                    ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                    const ops::AttentionMask& mask, const SequenceDims& d,
                                    const Context& ctx, CommStats* stats) {
  const RingPlan plan(layout, mask, d.B);
  const Geometry g{d, plan, comm.rank(), d.NH / d.NH_kv};
  ops::AttentionResult res;
  res.out = Tensor(Shape{d.B, d.NH, d.n, d.HSV});
  res.lse = Tensor(Shape{d.B, d.NH, d.n});
  fill(res.lse.view(), -std::numeric_limits<float>::infinity());
  // One buffer of partial results for every call: at most half a piece of output.
  const Heads all{0, d.B, 0, d.NH_kv}, one{0, 1, 0, 1};
  const int64_t part_rows =
      std::max(d.B * d.NH * std::min(query_chunk_rows(d, all, g.group), d.n),
               g.group * std::min(query_chunk_rows(d, one, g.group), d.n));
  std::vector<float> part_out(static_cast<size_t>(part_rows * d.HSV)),
      part_lse(static_cast<size_t>(part_rows));
  auto attend = [&](const Block& blk, const KvBlock& kv) {
    const int64_t nb = kv.heads.nb, nhq = kv.heads.nh * g.group;
    const ConstTensorView qh = select(q, kv.heads, g.group);
    const TensorView out = select(res.out.view(), kv.heads, g.group),
                     lse = select(res.lse.view(), kv.heads, g.group);
    for_each_pair(
        g, blk, kv.local, select_mask(mask, kv.heads, g.group),
        query_chunk_rows(d, kv.heads, g.group),
        [&](int64_t q_row, int64_t nq, const ops::AttentionMask& m, int64_t row, int64_t nk) {
          const TensorView po(part_out.data(), Shape{nb, nhq, nq, d.HSV}),
              pl(part_lse.data(), Shape{nb, nhq, nq});
          ops::attention_forward(qh.slice(2, q_row, q_row + nq), kv.k.slice(2, row, row + nk),
                                 kv.v.slice(2, row, row + nk), m, {}, d.scale, po, pl, {}, ctx);
          const TensorView o = out.slice(2, q_row, q_row + nq), l = lse.slice(2, q_row, q_row + nq);
          ops::attention_merge_forward(o, l, po, pl, o, l, ctx);
        });
  };
  Ring ring(comm, g, k, v, /*with_grads=*/false, stats);
  const int P = comm.size();
  if (P > 1) ring.start(1);
  attend(plan.block(g.me, g.me), KvBlock{k, v, all, true});
  for (int j = 1; j < P; ++j) {
    if (j + 1 < P) ring.start(j + 1);
    ring.for_each_received(j, [&](const Piece& piece, const KvBlock& kv) { attend(piece.rows, kv); });
  }
  return res;
}

ops::AttentionGrads ring_attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                        ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                        ConstTensorView out, ConstTensorView lse,
                                        ConstTensorView dout, const ops::AttentionMask& mask,
                                        const SequenceDims& d, const Context& ctx,
                                        CommStats* stats) {
  const RingPlan plan(layout, mask, d.B);
  const Geometry g{d, plan, comm.rank(), d.NH / d.NH_kv};
  ops::AttentionGrads grads;
  grads.dq = Tensor(q.shape());
  grads.dk = Tensor(k.shape());
  grads.dv = Tensor(v.shape());
  // The global out and lse of each query make every block's gradients exact on their own.
  auto backward = [&](const Block& blk, const KvBlock& kv, TensorView dk, TensorView dv) {
    auto heads = [&](auto t) { return select(t, kv.heads, g.group); };
    const ConstTensorView qh = heads(q), oh = heads(out), lh = heads(lse), gh = heads(dout);
    const TensorView dqh = heads(grads.dq.view());
    for_each_pair(
        g, blk, kv.local, select_mask(mask, kv.heads, g.group), std::max<int64_t>(d.n, 1),
        [&](int64_t q_row, int64_t nq, const ops::AttentionMask& m, int64_t row, int64_t nk) {
          auto rows = [&](auto t) { return t.slice(2, q_row, q_row + nq); };
          ops::attention_backward(rows(qh), kv.k.slice(2, row, row + nk),
                                  kv.v.slice(2, row, row + nk), rows(oh), rows(lh), rows(gh), m,
                                  {}, d.scale, rows(dqh), dk.slice(2, row, row + nk),
                                  dv.slice(2, row, row + nk), {}, ctx);
        });
  };
  Ring ring(comm, g, k, v, /*with_grads=*/true, stats);
  const int P = comm.size();
  if (P > 1) ring.start(1);
  backward(plan.block(g.me, g.me), KvBlock{k, v, Heads{0, d.B, 0, d.NH_kv}, true}, grads.dk.view(),
           grads.dv.view());
  for (int j = 1; j < P; ++j) {
    if (j + 1 < P) ring.start(j + 1);
    ring.for_each_received(j, [&](const Piece& piece, const KvBlock& kv) {
      const auto [gk, gv] = ring.grad_buffer(piece);
      backward(piece.rows, kv, gk, gv);
      ring.send_grads(j);
    });
    if (j > 1) ring.add_returned_grads(j - 1, grads.dk.view(), grads.dv.view());
  }
  if (P > 1) ring.add_returned_grads(P - 1, grads.dk.view(), grads.dv.view());
  return grads;
}

}  // namespace attn::dist::internal
