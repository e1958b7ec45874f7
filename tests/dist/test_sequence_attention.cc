// SPDX-License-Identifier: MIT
// Sequence-parallel attention against the single-process fused kernel. Run under mpirun with 2, 3
// and 4 ranks (tests/CMakeLists.txt); every rank builds the same global tensors from one seed,
// takes its shard, and compares its part of the result with its shard of the one-process result.
#include <gtest/gtest.h>

#include <string>

#include "attn/dist/communicator.h"
#include "attn/dist/sequence.h"
#include "testing/testing.h"

namespace attn::dist {
namespace {

using attn::testing::random_tensor;

// ≤ 1e-5 (absolute, and relative to large values): the bar for matching one process.
::testing::AssertionResult close(ConstTensorView got, ConstTensorView want, double tol) {
  return attn::testing::all_close<float, float>(got, want, tol, tol);
}

const Communicator& comm() {
  static const Communicator c = Communicator::world();
  return c;
}

struct Case {
  std::string name;
  ops::AttentionMask mask;
  Split split = Split::contiguous;
};

std::vector<Case> mask_cases(int64_t N) {
  std::vector<Case> cases;
  cases.push_back({"full", {}});
  ops::AttentionMask causal;
  causal.causal = true;
  cases.push_back({"causal_contiguous", causal});
  cases.push_back({"causal_zigzag", causal, Split::zigzag});
  ops::AttentionMask window;
  window.window_left = 3, window.window_right = 2;
  cases.push_back({"window_3_2", window});
  ops::AttentionMask wc = window;
  wc.causal = true, wc.dilation = 2;
  cases.push_back({"window_causal_dilation2_zigzag", wc, Split::zigzag});
  ops::AttentionMask chunk;
  chunk.chunk_size = 5, chunk.num_left_chunks = 1;
  cases.push_back({"chunk5_left1", chunk});
  ops::AttentionMask pad;
  pad.key_lengths = {N - 7, 0};  // batch 1 sees no key: out 0, lse -inf
  cases.push_back({"key_padding", pad, Split::zigzag});
  ops::AttentionMask alibi = causal;
  alibi.alibi_slopes = ops::alibi_slopes(4);
  alibi.query_offset = 2;
  cases.push_back({"causal_alibi_query_offset", alibi});
  return cases;
}

struct Problem {
  Tensor q, k, v, dout;
};
Problem make_problem(int64_t B, int64_t NH, int64_t NH_kv, int64_t N, int64_t HS, int64_t HSV,
                     uint64_t seed) {
  Rng rng(seed);
  return {random_tensor<float>(Shape{B, NH, N, HS}, rng),
          random_tensor<float>(Shape{B, NH_kv, N, HS}, rng),
          random_tensor<float>(Shape{B, NH_kv, N, HSV}, rng),
          random_tensor<float>(Shape{B, NH, N, HSV}, rng)};
}

// A copy of t whose rows are not contiguous (t sits inside a wider tensor), to exercise the ring's
// path for keys and values it cannot send in place.
TensorView strided_copy(ConstTensorView t, Tensor& storage) {
  storage = Tensor(Shape{t.dim(0), t.dim(1), t.dim(2), t.dim(3) + 3});
  const TensorView view = storage.view().slice(3, 1, 1 + t.dim(3));
  copy(t, view);
  return view;
}

// The distributed forward and backward of one case against one process over the whole sequence.
// piece_bytes: DistAttentionOptions::ring_piece_bytes (0: its default); strided_kv: k and v with
// non-contiguous rows.
void expect_matches_one_process(const Problem& p, const Case& c, Mode mode,
                                int64_t piece_bytes = 0, bool strided_kv = false) {
  SCOPED_TRACE(c.name + (mode == Mode::ring ? " ring" : " ulysses") +
               " P=" + std::to_string(comm().size()) + " piece_bytes=" +
               std::to_string(piece_bytes) + (strided_kv ? " strided" : ""));
  const SequenceLayout layout(p.q.dim(2), comm().size(), c.split);
  const int me = comm().rank();
  DistAttentionOptions o;
  o.attention.mask = c.mask;
  o.mode = mode;
  if (piece_bytes > 0) o.ring_piece_bytes = piece_bytes;
  const ops::AttentionResult want = ops::attention(p.q, p.k, p.v, o.attention);
  const ops::AttentionGrads want_g =
      ops::attention_grad(p.q, p.k, p.v, want.out, want.lse, p.dout, o.attention);
  const Tensor q = shard(p.q, layout, me), dout = shard(p.dout, layout, me);
  Tensor k_storage = shard(p.k, layout, me), v_storage = shard(p.v, layout, me);
  ConstTensorView k = k_storage.view(), v = v_storage.view();
  Tensor k_wide, v_wide;
  if (strided_kv) k = strided_copy(k, k_wide), v = strided_copy(v, v_wide);
  CommStats stats;
  const ops::AttentionResult got = attention(comm(), layout, q, k, v, o, thread_context(), &stats);
  EXPECT_TRUE(close(got.out, shard(want.out, layout, me), 1e-5));
  const Tensor want_lse = shard(
      ConstTensorView(want.lse.data(), Shape{want.lse.dim(0), want.lse.dim(1), want.lse.dim(2), 1}),
      layout, me);
  EXPECT_TRUE(close(ConstTensorView(got.lse.data(), want_lse.shape()), want_lse, 1e-5));
  const ops::AttentionGrads g = attention_grad(comm(), layout, q, k, v, got.out, got.lse, dout, o);
  EXPECT_TRUE(close(g.dq, shard(want_g.dq, layout, me), 1e-5));
  EXPECT_TRUE(close(g.dk, shard(want_g.dk, layout, me), 1e-5));
  EXPECT_TRUE(close(g.dv, shard(want_g.dv, layout, me), 1e-5));
}

TEST(SequenceLayout, ContiguousAndZigzagCoverTheSequenceOnce) {
  for (const Split split : {Split::contiguous, Split::zigzag})
    for (int P = 1; P <= 5; ++P)
      for (const int64_t N : {0, 1, 7, 64, 101}) {
        const SequenceLayout layout(N, P, split);
        std::vector<int> owner(static_cast<size_t>(N), -1);
        for (int r = 0; r < P; ++r)
          for (const Segment& s : layout.segments(r))
            for (int64_t t = s.start; t < s.start + s.size; ++t) {
              ASSERT_EQ(owner[static_cast<size_t>(t)], -1) << "position " << t << " held twice";
              owner[static_cast<size_t>(t)] = r;
            }
        for (int64_t t = 0; t < N; ++t) ASSERT_NE(owner[static_cast<size_t>(t)], -1) << t;
        if (split == Split::zigzag && P > 1 &&
            N >= 2 * P) {  // rank 0 holds the first and the last chunk
          EXPECT_EQ(layout.segments(0).back().start + layout.segments(0).back().size, N);
        }
      }
  EXPECT_THROW(SequenceLayout(10, 0), ValueError);
}

TEST(SequenceLayout, ShardThenUnshardRestoresTheTensor) {
  Rng rng(3);
  const Tensor g = random_tensor<float>(Shape{2, 3, 29, 5}, rng);
  const SequenceLayout layout(29, 3, Split::zigzag);
  Tensor back(g.shape());
  for (int r = 0; r < 3; ++r) unshard(shard(g, layout, r), layout, r, back.view());
  EXPECT_TRUE(close(back, g, 0.0));
  EXPECT_THROW(shard(g.view().slice(2, 0, 28), layout, 0), ShapeError);
}

TEST(DistAttention, AllgatherSequenceGathersEveryRanksPositions) {
  Rng rng(5);
  const Tensor g = random_tensor<float>(Shape{2, 2, 31, 3}, rng);
  const SequenceLayout layout(31, comm().size(), Split::zigzag);
  const Tensor all = allgather_sequence(comm(), shard(g, layout, comm().rank()), layout);
  EXPECT_TRUE(close(all, g, 0.0));
}

TEST(DistAttention, RingMatchesOneProcessUnderEveryMask) {
  // GQA (4 query heads over 2 kv heads), HSV != HS, N not a multiple of P or of the kernel's
  // blocks.
  const int64_t N = 203;
  const Problem p = make_problem(2, 4, 2, N, 8, 6, 11);
  for (const Case& c : mask_cases(N)) expect_matches_one_process(p, c, Mode::ring);
}

TEST(DistAttention, RingMatchesOneProcessInSmallPiecesAndStridedKeys) {
  // A piece holds rows of one batch entry and head, (8+6)·4 = 56 bytes each: pieces of 5 rows (so
  // blocks travel in many pieces, cut across segments and parts), query chunks of 2 rows (pieces:
  // 140 bytes over 2 heads × 6 floats) and 1 row (the local block, all heads).
  const int64_t N = 203;
  const Problem p = make_problem(2, 4, 2, N, 8, 6, 11);
  for (const Case& c : mask_cases(N)) {
    expect_matches_one_process(p, c, Mode::ring, 5 * 56);
    expect_matches_one_process(p, c, Mode::ring, 1, /*strided_kv=*/true);
  }
}

TEST(DistAttention, UlyssesMatchesOneProcessUnderEveryMask) {
  const int64_t N = 97;
  const Problem p =
      make_problem(2, 12, 12, N, 8, 8, 12);  // 12 heads: divisible by 2, 3 and 4 ranks
  for (Case c : mask_cases(N)) {
    if (!c.mask.alibi_slopes.empty()) c.mask.alibi_slopes = ops::alibi_slopes(12);
    expect_matches_one_process(p, c, Mode::ulysses);
  }
}

TEST(DistAttention, WindowedRingSendsOnlyTheRowsTheWindowReaches) {
  // ±3 over contiguous shards: a rank sends its neighbours 3 rows each, whatever N is.
  std::vector<int64_t> bytes;
  for (const int64_t N : {120, 480}) {
    const Problem p = make_problem(1, 2, 2, N, 4, 4, 13);
    const SequenceLayout layout(N, comm().size());
    DistAttentionOptions o;
    o.attention.mask.window_left = 3, o.attention.mask.window_right = 3;
    CommStats stats;
    const int me = comm().rank();
    attention(comm(), layout, shard(p.q, layout, me), shard(p.k, layout, me),
              shard(p.v, layout, me), o, thread_context(), &stats);
    const int neighbours = (me > 0) + (me + 1 < comm().size());
    EXPECT_EQ(stats.bytes_sent, neighbours * 3 * 1 * 2 * (4 + 4) * int64_t{4}) << "N=" << N;
    bytes.push_back(stats.bytes_sent);
  }
  EXPECT_EQ(bytes[0], bytes[1]);
}

TEST(DistAttention, ABadArgumentOnOneRankIsTheSameErrorOnEveryRank) {
  const int64_t N = 40;
  const SequenceLayout layout(N, comm().size());
  const Problem p = make_problem(1, 2, 2, N, 8, 8, 14);
  const int me = comm().rank();
  const Tensor q = shard(p.q, layout, me), k = shard(p.k, layout, me), v = shard(p.v, layout, me);
  const int bad = comm().size() - 1;
  // The last rank passes keys of another head size.
  const Tensor k_bad = Tensor(Shape{1, 2, layout.local_length(me), 4});
  try {
    attention(comm(), layout, q, me == bad ? k_bad.view() : k.view(), v);
    ADD_FAILURE() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_EQ(std::string(e.what()),
              "rank " + std::to_string(bad) +
                  ": dist::attention: k has head size 4 but q has 8 (q (1, 2, " +
                  std::to_string(layout.local_length(bad)) + ", 8), k (1, 2, " +
                  std::to_string(layout.local_length(bad)) + ", 4), v (1, 2, " +
                  std::to_string(layout.local_length(bad)) + ", 8))");
  }
  // Options the last rank does not share with the others: a ValueError on every rank naming them.
  auto expect_disagreement = [&](const DistAttentionOptions& o, const std::string& what) {
    try {
      attention(comm(), layout, q, k, v, o);
      ADD_FAILURE() << "no error";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(bad) + " has " + what),
                std::string::npos)
          << e.what();
    }
  };
  // The last rank asks for a causal mask the others do not.
  DistAttentionOptions o;
  o.attention.mask.causal = me == bad;
  expect_disagreement(o, "mask.causal = 1 and rank 0 has 0");
  // Ulysses with heads the ranks do not divide; return_probs; a global key_offset.
  DistAttentionOptions u;
  u.mode = Mode::ulysses;
  const Problem odd = make_problem(1, 5, 5, N, 8, 8, 15);
  EXPECT_THROW(attention(comm(), layout, shard(odd.q, layout, me), shard(odd.k, layout, me),
                         shard(odd.v, layout, me), u),
               ValueError);
  DistAttentionOptions probs;
  probs.attention.return_probs = true;
  EXPECT_THROW(attention(comm(), layout, q, k, v, probs), ValueError);
  // Pieces of no bytes on the last rank; pieces the ranks do not agree on (their messages would
  // not match).
  DistAttentionOptions pieces;
  pieces.ring_piece_bytes = me == bad ? 0 : 4096;
  EXPECT_THROW(attention(comm(), layout, q, k, v, pieces), ValueError);
  pieces.ring_piece_bytes = me == bad ? 8192 : 4096;
  expect_disagreement(pieces, "ring_piece_bytes = 8192 and rank 0 has 4096");
  // allgather_sequence with another head size on the last rank.
  const Tensor wide(Shape{1, 2, layout.local_length(me), me == bad ? 9 : 8});
  EXPECT_THROW(allgather_sequence(comm(), wide, layout), ShapeError);
  // Work goes on after the errors: every rank is still in step.
  const ops::AttentionResult r = attention(comm(), layout, q, k, v);
  EXPECT_EQ(r.out.dim(2), layout.local_length(me));
}

}  // namespace
}  // namespace attn::dist

int main(int argc, char** argv) {
  attn::dist::Environment env(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Rank 0 reports everything, the others only their failures (and any failure fails mpirun).
  if (attn::dist::comm().rank() != 0) GTEST_FLAG_SET(brief, true);
  return RUN_ALL_TESTS();
}
