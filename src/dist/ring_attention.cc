// SPDX-License-Identifier: MIT
// Ring attention over MPI (docs/distributed.md). Step j of P-1: rank r receives the key/value rows
// of rank r-j that its queries can see and sends its own to rank r+j, while it attends over the
// block of the step before; every (query segment, key rows) pair is one call of the fused kernel
// with the block's global positions (query_offset, key_offset), merged exactly into the running
// (out, lse). A pair the mask hides costs nothing and a block nobody sees is never sent. The
// backward runs the same schedule; the dK/dV of a received block go back to its owner, which adds
// them in step order (so the result does not depend on message timing).
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
  const ops::AttentionMask& mask;
  int me;
};

// A block's keys and values: the local tensors (local) or a received message.
struct KvBlock {
  ConstTensorView k, v;  // (B, NH_kv, R, HS) and (B, NH_kv, R, HSV)
  bool local;
};

int64_t message_floats(const SequenceDims& d, int64_t rows) {
  return d.B * d.NH_kv * rows * (d.HS + d.HSV);
}

KvBlock kv_views(const SequenceDims& d, const float* buf, int64_t rows) {
  return {ConstTensorView(buf, Shape{d.B, d.NH_kv, rows, d.HS}),
          ConstTensorView(buf + d.B * d.NH_kv * rows * d.HS, Shape{d.B, d.NH_kv, rows, d.HSV}),
          false};
}
std::array<TensorView, 2> grad_views(const SequenceDims& d, float* buf, int64_t rows) {
  return {TensorView(buf, Shape{d.B, d.NH_kv, rows, d.HS}),
          TensorView(buf + d.B * d.NH_kv * rows * d.HS, Shape{d.B, d.NH_kv, rows, d.HSV})};
}

// The owner's rows of a block, copied into one message (k's rows, then v's).
void pack(const SequenceDims& d, const Block& blk, ConstTensorView k, ConstTensorView v,
          std::vector<float>& buf) {
  buf.resize(static_cast<size_t>(message_floats(d, blk.rows)));
  const auto [pk, pv] = grad_views(d, buf.data(), blk.rows);
  for (const BlockPart& p : blk.parts) {
    copy(k.slice(2, p.owner_row, p.owner_row + p.rows),
         pk.slice(2, p.packed_row, p.packed_row + p.rows));
    copy(v.slice(2, p.owner_row, p.owner_row + p.rows),
         pv.slice(2, p.packed_row, p.packed_row + p.rows));
  }
}

// Calls fn(q_row, q_size, mask, key_row, key_count) for every (query segment of this rank, part of
// the block) pair the mask lets meet, with the rows of the block it reaches.
template <typename F>
void for_each_pair(const Geometry& g, const Block& blk, bool local, F&& fn) {
  int64_t q_row = 0;
  for (int qs = g.plan.first_segment(g.me);
       qs < g.plan.first_segment(g.me) + g.plan.segment_count(g.me); ++qs) {
    const Segment& seg = g.plan.segment(qs);
    for (const BlockPart& p : blk.parts) {
      const Rows r = g.plan.reach(qs, p.k_segment);
      if (r.empty() || seg.size == 0) continue;
      const int64_t row = (local ? p.owner_row : p.packed_row) + (r.lo - p.global_start);
      fn(q_row, seg.size, block_mask(g.mask, seg.start, r.lo, r.size()), row, r.size());
    }
    q_row += seg.size;
  }
}

// One ring step's messages: key/value rows in and out, and (backward) their gradients.
struct Step {
  Block in, out;  // rows this rank receives (from src) and sends (to dst)
  int src = 0, dst = 0;
  std::vector<float> kv_in, kv_out, grad_in, grad_out;
  Communicator::Request kv_in_req, kv_out_req, grad_in_req, grad_out_req;
};

class Ring {
 public:
  Ring(const Communicator& comm, const Geometry& g, ConstTensorView k, ConstTensorView v,
       bool with_grads, CommStats* stats)
      : comm_(comm), g_(g), k_(k), v_(v), grads_(with_grads), stats_(stats) {}

  // Posts step j's receives and sends (waiting for the slot's messages of step j-3 first).
  void start(int j) {
    Step& s = slot(j);
    finish_sends(s);
    const int P = comm_.size();
    s.src = (g_.me - j + P) % P, s.dst = (g_.me + j) % P;
    s.in = g_.plan.block(s.src, g_.me);
    s.out = g_.plan.block(g_.me, s.dst);
    if (s.in.rows > 0) {
      s.kv_in.resize(static_cast<size_t>(message_floats(g_.d, s.in.rows)));
      s.kv_in_req = comm_.irecv(s.kv_in, s.src, kTagKv + j);
    }
    if (s.out.rows > 0) {
      pack(g_.d, s.out, k_, v_, s.kv_out);
      s.kv_out_req = comm_.isend(s.kv_out, s.dst, kTagKv + j, stats_);
      if (grads_) {
        s.grad_in.assign(s.kv_out.size(), 0.0f);
        s.grad_in_req = comm_.irecv(s.grad_in, s.dst, kTagGrad + j);
      }
    }
  }
  // Step j's block, once it has arrived.
  KvBlock received(int j) {
    Step& s = slot(j);
    wait(s.kv_in_req);
    return kv_views(g_.d, s.kv_in.data(), s.in.rows);
  }
  const Block& block_in(int j) { return slot(j).in; }
  // Backward: the zeroed gradient buffer of step j's received block, and sending it back.
  std::array<TensorView, 2> grad_buffer(int j) {
    Step& s = slot(j);
    s.grad_out.assign(static_cast<size_t>(message_floats(g_.d, s.in.rows)), 0.0f);
    return grad_views(g_.d, s.grad_out.data(), s.in.rows);
  }
  void send_grads(int j) {
    Step& s = slot(j);
    if (s.in.rows > 0) s.grad_out_req = comm_.isend(s.grad_out, s.src, kTagGrad + j, stats_);
  }
  // Backward: adds what rank dst computed for the rows this rank sent it at step j.
  void add_returned_grads(int j, TensorView dk, TensorView dv) {
    Step& s = slot(j);
    if (s.out.rows == 0) return;
    wait(s.grad_in_req);
    const auto [gk, gv] = grad_views(g_.d, s.grad_in.data(), s.out.rows);
    for (const BlockPart& p : s.out.parts) {
      add_into(gk.slice(2, p.packed_row, p.packed_row + p.rows),
               dk.slice(2, p.owner_row, p.owner_row + p.rows));
      add_into(gv.slice(2, p.packed_row, p.packed_row + p.rows),
               dv.slice(2, p.owner_row, p.owner_row + p.rows));
    }
  }
  // Forward: step j is done; its messages' memory goes back (it is most of the ring's memory).
  void release(int j) {
    Step& s = slot(j);
    finish_sends(s);
    std::vector<float>().swap(s.kv_in);
    std::vector<float>().swap(s.kv_out);
  }
  ~Ring() {
    for (Step& s : slots_) finish_sends(s);
  }

 private:
  Step& slot(int j) { return slots_[static_cast<size_t>(j % 3)]; }
  void wait(Communicator::Request& r) {
    const double w = r.wait();
    if (stats_) stats_->wait_seconds += w;
  }
  void finish_sends(Step& s) {
    wait(s.kv_out_req);
    wait(s.grad_out_req);
  }

  const Communicator& comm_;
  const Geometry& g_;
  ConstTensorView k_, v_;
  bool grads_;
  CommStats* stats_;
  std::array<Step, 3> slots_;
};

}  // namespace

ops::AttentionResult ring_attention(const Communicator& comm, const SequenceLayout& layout,
                                    ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                    const ops::AttentionMask& mask, const SequenceDims& d,
                                    const Context& ctx, CommStats* stats) {
  const RingPlan plan(layout, mask, d.B);
  const Geometry g{d, plan, mask, comm.rank()};
  ops::AttentionResult res;
  res.out = Tensor(Shape{d.B, d.NH, d.n, d.HSV});
  res.lse = Tensor(Shape{d.B, d.NH, d.n});
  fill(res.lse.view(), -std::numeric_limits<float>::infinity());
  int64_t max_q = 0;
  for (const Segment& s : layout.segments(comm.rank())) max_q = std::max(max_q, s.size);
  Tensor part_out(Shape{d.B, d.NH, max_q, d.HSV}), part_lse(Shape{d.B, d.NH, max_q});
  auto attend = [&](const Block& blk, const KvBlock& kv) {
    for_each_pair(
        g, blk, kv.local,
        [&](int64_t q_row, int64_t nq, const ops::AttentionMask& m, int64_t row, int64_t nk) {
          const TensorView po = part_out.view().slice(2, 0, nq),
                           pl = part_lse.view().slice(2, 0, nq);
          ops::attention_forward(q.slice(2, q_row, q_row + nq), kv.k.slice(2, row, row + nk),
                                 kv.v.slice(2, row, row + nk), m, {}, d.scale, po, pl, {}, ctx);
          const TensorView o = res.out.view().slice(2, q_row, q_row + nq),
                           l = res.lse.view().slice(2, q_row, q_row + nq);
          ops::attention_merge_forward(o, l, po, pl, o, l, ctx);
        });
  };
  Ring ring(comm, g, k, v, /*with_grads=*/false, stats);
  const int P = comm.size();
  if (P > 1) ring.start(1);
  attend(plan.block(g.me, g.me), KvBlock{k, v, true});
  for (int j = 1; j < P; ++j) {
    const KvBlock kv = ring.received(j);
    if (j + 1 < P) ring.start(j + 1);
    attend(ring.block_in(j), kv);
    ring.release(j);
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
  const Geometry g{d, plan, mask, comm.rank()};
  ops::AttentionGrads grads;
  grads.dq = Tensor(q.shape());
  grads.dk = Tensor(k.shape());
  grads.dv = Tensor(v.shape());
  // The global out and lse of each query make every block's gradients exact on their own.
  auto backward = [&](const Block& blk, const KvBlock& kv, TensorView dk, TensorView dv) {
    for_each_pair(
        g, blk, kv.local,
        [&](int64_t q_row, int64_t nq, const ops::AttentionMask& m, int64_t row, int64_t nk) {
          auto rows = [&](auto t) { return t.slice(2, q_row, q_row + nq); };
          ops::attention_backward(rows(q), kv.k.slice(2, row, row + nk),
                                  kv.v.slice(2, row, row + nk), rows(out), rows(lse), rows(dout), m,
                                  {}, d.scale, rows(grads.dq.view()), dk.slice(2, row, row + nk),
                                  dv.slice(2, row, row + nk), {}, ctx);
        });
  };
  Ring ring(comm, g, k, v, /*with_grads=*/true, stats);
  const int P = comm.size();
  if (P > 1) ring.start(1);
  backward(plan.block(g.me, g.me), KvBlock{k, v, true}, grads.dk.view(), grads.dv.view());
  for (int j = 1; j < P; ++j) {
    const KvBlock kv = ring.received(j);
    if (j + 1 < P) ring.start(j + 1);
    const auto [gk, gv] = ring.grad_buffer(j);
    backward(ring.block_in(j), kv, gk, gv);
    ring.send_grads(j);
    if (j > 1) ring.add_returned_grads(j - 1, grads.dk.view(), grads.dv.view());
  }
  if (P > 1) ring.add_returned_grads(P - 1, grads.dk.view(), grads.dv.view());
  return grads;
}

}  // namespace attn::dist::internal
