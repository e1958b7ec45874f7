// SPDX-License-Identifier: MIT
// attn dist attention: sequence-parallel attention over MPI ranks (mpirun -np P attn dist ...).
// Every rank makes only its own positions' inputs (values derived from the global position, so
// any P gives the same global problem), runs the ring or Ulysses, and rank 0 prints each rank's
// time, GFLOP/s, bytes sent, time blocked on communication and peak RSS. --check also runs the
// whole sequence in one process on rank 0 and prints max_abs_diff.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "attn/attn.h"
#include "attn/dist/communicator.h"
#include "attn/dist/sequence.h"
#include "bench_util.h"
#include "commands.h"
#include "mask_flags.h"

namespace attn::cli {
namespace {

struct DistOptions {
  int64_t seq = 4096, batch = 1, heads = 8, kv_heads = 0, head_dim = 64;
  std::string mode = "ring", split;
  MaskFlags mask;
  bool backward = false, check = false;
  int threads = 1, repeats = 1;
  double piece_mib = 16;
  uint64_t seed = 1;
};

// N(0, 1) values for rank's positions of a (B, H, N, D) tensor: row (b, h, position) draws from its
// own generator, so the global tensor does not depend on how it is split.
Tensor positional_random(const Shape& local, const dist::SequenceLayout& layout, int rank,
                         uint64_t seed, uint64_t tensor_id) {
  Tensor t(local);
  const int64_t B = local[0], H = local[1], D = local[3];
  int64_t row = 0;
  for (const dist::Segment& s : layout.segments(rank)) {
    for (int64_t p = s.start; p < s.start + s.size; ++p, ++row)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          Rng rng(seed * 0x9E3779B97F4A7C15ull ^ (tensor_id << 56) ^
                  (static_cast<uint64_t>(b * H + h) << 40) ^ static_cast<uint64_t>(p));
          float* x = t.data() + ((b * H + h) * local[2] + row) * D;
          for (int64_t d = 0; d < D; ++d) x[d] = static_cast<float>(rng.normal());
        }
  }
  return t;
}

// Multiply-adds the mask leaves this rank's queries, as FLOPs: 2·(HS + HSV) per visible (query,
// key) pair and head forward; the backward's five products are 2.5 times that (FlashAttention-2's
// count).
double forward_flops(const ops::AttentionMask& mask, const dist::SequenceLayout& layout, int rank,
                     const DistOptions& o) {
  double pairs = 0;
  for (const dist::Segment& s : layout.segments(rank))
    for (int64_t t = s.start; t < s.start + s.size; ++t)
      for (int64_t b = 0; b < o.batch; ++b) {
        const auto [lo, hi] = mask.key_interval(b, t, layout.length());
        if (hi >= lo) pairs += static_cast<double>((hi - lo) / mask.dilation + 1);
      }
  return pairs * static_cast<double>(o.heads) * 2.0 * 2.0 * static_cast<double>(o.head_dim);
}

struct Inputs {
  Tensor q, k, v, dout;
};
Inputs make_inputs(const DistOptions& o, const dist::SequenceLayout& layout, int rank) {
  const int64_t n = layout.local_length(rank), kvh = o.kv_heads > 0 ? o.kv_heads : o.heads;
  return {positional_random(Shape{o.batch, o.heads, n, o.head_dim}, layout, rank, o.seed, 1),
          positional_random(Shape{o.batch, kvh, n, o.head_dim}, layout, rank, o.seed, 2),
          positional_random(Shape{o.batch, kvh, n, o.head_dim}, layout, rank, o.seed, 3),
          o.backward
              ? positional_random(Shape{o.batch, o.heads, n, o.head_dim}, layout, rank, o.seed, 4)
              : Tensor()};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// max |a - b| over two tensors of one shape.
double max_abs_diff(ConstTensorView a, ConstTensorView b) {
  double m = 0;
  for_each_offset_pair(a, b, [&](int64_t x, int64_t y) {
    m = std::max(m, static_cast<double>(std::abs(a.at_offset(x) - b.at_offset(y))));
  });
  return m;
}

// Rank 0 runs the whole sequence in one process and compares it with every rank's part.
void check_against_one_process(const dist::Communicator& comm, const dist::SequenceLayout& layout,
                               const DistOptions& o, const dist::DistAttentionOptions& da,
                               const ops::AttentionResult& got, const ops::AttentionGrads* got_g,
                               const Context& ctx) {
  const Tensor out = dist::allgather_sequence(comm, got.out, layout);
  Tensor dq, dk, dv;
  if (got_g) {
    dq = dist::allgather_sequence(comm, got_g->dq, layout);
    dk = dist::allgather_sequence(comm, got_g->dk, layout);
    dv = dist::allgather_sequence(comm, got_g->dv, layout);
  }
  if (comm.rank() != 0) return;
  const dist::SequenceLayout whole(layout.length(), 1);
  const Inputs all = make_inputs(o, whole, 0);
  const ops::AttentionResult want = ops::attention(all.q, all.k, all.v, da.attention, {}, ctx);
  std::printf("check: max_abs_diff=%.3g (out, against one process)\n", max_abs_diff(out, want.out));
  if (got_g) {
    const ops::AttentionGrads g = ops::attention_grad(all.q, all.k, all.v, want.out, want.lse,
                                                      all.dout, da.attention, {}, ctx);
    const double d =
        std::max({max_abs_diff(dq, g.dq), max_abs_diff(dk, g.dk), max_abs_diff(dv, g.dv)});
    std::printf("check: max_abs_diff=%.3g (dq, dk, dv, against one process)\n", d);
  }
}

// Rank 0 prints one line per rank and the totals.
void report(const dist::Communicator& comm, const DistOptions& o, const char* what, double seconds,
            double flops, const dist::CommStats& st) {
  const int P = comm.size();
  constexpr int kFields = 6;
  std::vector<double> all(static_cast<size_t>(P * kFields), 0.0);
  const double mine[kFields] = {
      seconds,         flops,          static_cast<double>(st.bytes_sent),
      st.wait_seconds, peak_rss_mib(), static_cast<double>(st.messages_sent)};
  std::copy(mine, mine + kFields, all.begin() + comm.rank() * kFields);
  comm.allreduce_sum(all);
  if (comm.rank() != 0) return;
  std::printf("%s: rank       ms    GFLOP/s   MiB sent  messages    wait ms  peak RSS MiB\n", what);
  double wall = 0, total_flops = 0, total_bytes = 0;
  for (int r = 0; r < P; ++r) {
    const double* f = all.data() + r * kFields;
    std::printf("%s: %4d %8.1f %10.1f %10.2f %9.0f %10.1f %13.1f\n", what, r,
                f[0] / o.repeats * 1e3, f[1] / (f[0] / o.repeats) * 1e-9,
                f[2] / o.repeats / (1 << 20), f[5] / o.repeats, f[3] / o.repeats * 1e3, f[4]);
    wall = std::max(wall, f[0] / o.repeats), total_flops += f[1], total_bytes += f[2] / o.repeats;
  }
  std::printf("%s: total %8.1f ms %8.1f GFLOP/s %9.2f MiB sent\n", what, wall * 1e3,
              total_flops / wall * 1e-9, total_bytes / (1 << 20));
}

void run(const DistOptions& o) {
  dist::Environment env(nullptr, nullptr);
  const dist::Communicator comm = dist::Communicator::world();
  Context ctx(ContextOptions{.num_threads = checked_threads("dist attention", o.threads)});
  dist::DistAttentionOptions da;
  // Every rank parses the same command line, so every rank throws the same usage error here.
  {
    if (o.seq < 1) usage_fail("--seq", "must be >= 1, got ", o.seq);
    check_counts({{"--batch", o.batch}, {"--heads", o.heads}, {"--head-dim", o.head_dim}});
    if (o.kv_heads < 0 || (o.kv_heads > 0 && o.heads % o.kv_heads != 0))
      usage_fail("--kv-heads", "must divide --heads ", o.heads, " (0 = as many), got ", o.kv_heads);
    if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
    if (!(o.piece_mib > 0 && o.piece_mib < 1e6))
      usage_fail("--piece-mib", "must be > 0 and < 1e6, got ", o.piece_mib);
    if (o.check && o.seq > 16384)
      usage_fail("--check", "runs one process over the whole sequence: use --seq <= 16384");
    if (o.mode != "ring" && o.mode != "ulysses")
      usage_fail("--mode", "expected ring or ulysses, got '", o.mode, "'");
    if (!o.split.empty() && o.split != "contiguous" && o.split != "zigzag")
      usage_fail("--split", "expected contiguous or zigzag, got '", o.split, "'");
    da.attention.mask = o.mask.build(o.heads, o.batch);
  }
  da.mode = o.mode == "ulysses" ? dist::Mode::ulysses : dist::Mode::ring;
  da.ring_piece_bytes = std::max<int64_t>(1, static_cast<int64_t>(o.piece_mib * (1 << 20)));
  // Causal work is balanced by the zigzag split; everything else by contiguous shards.
  const bool zigzag = o.split.empty() ? da.attention.mask.causal : o.split == "zigzag";
  const dist::SequenceLayout layout(o.seq, comm.size(),
                                    zigzag ? dist::Split::zigzag : dist::Split::contiguous);
  const Inputs in = make_inputs(o, layout, comm.rank());
  if (comm.rank() == 0)
    std::printf(
        "dist attention: %d ranks x %d threads, SIMD %s, N=%lld B=%lld NH=%lld NH_kv=%lld HS=%lld, "
        "mode %s, "
        "split %s, mask%s\n",
        comm.size(), ctx.num_threads(), ops::simd_target(), static_cast<long long>(o.seq),
        static_cast<long long>(o.batch), static_cast<long long>(o.heads),
        static_cast<long long>(in.k.dim(1)), static_cast<long long>(o.head_dim), o.mode.c_str(),
        zigzag ? "zigzag" : "contiguous", o.mask.describe().c_str());
  const double flops = forward_flops(da.attention.mask, layout, comm.rank(), o);
  dist::CommStats fwd_stats, bwd_stats;
  ops::AttentionResult res;
  double fwd_s = 0, bwd_s = 0;
  for (int r = 0; r < o.repeats; ++r) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    res = dist::attention(comm, layout, in.q, in.k, in.v, da, ctx, &fwd_stats);
    fwd_s += seconds_since(t0);
  }
  report(comm, o, "forward", fwd_s, flops * o.repeats, fwd_stats);
  std::unique_ptr<ops::AttentionGrads> grads;
  if (o.backward) {
    for (int r = 0; r < o.repeats; ++r) {
      comm.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      grads = std::make_unique<ops::AttentionGrads>(dist::attention_grad(
          comm, layout, in.q, in.k, in.v, res.out, res.lse, in.dout, da, ctx, &bwd_stats));
      bwd_s += seconds_since(t0);
    }
    report(comm, o, "backward", bwd_s, 2.5 * flops * o.repeats, bwd_stats);
  }
  if (o.check) check_against_one_process(comm, layout, o, da, res, grads.get(), ctx);
}

}  // namespace

void add_dist_command(CLI::App& app) {
  CLI::App* dist =
      app.add_subcommand("dist", "Sequence-parallel attention over MPI (run under mpirun -np P)");
  dist->require_subcommand(1);
  auto o = std::make_shared<DistOptions>();
  CLI::App* sub = dist->add_subcommand(
      "attention",
      "Ring or Ulysses attention over the ranks on generated inputs; prints per-rank time, "
      "GFLOP/s, "
      "bytes sent, communication wait and peak RSS. --check compares with one process.");
  sub->add_option("--seq", o->seq, "Sequence length N (split over the ranks)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "Batch B")->capture_default_str();
  sub->add_option("--heads", o->heads, "Query heads NH")->capture_default_str();
  sub->add_option("--kv-heads", o->kv_heads, "Key/value heads NH_kv, a divisor of NH (0 = NH)");
  sub->add_option("--head-dim", o->head_dim, "Head size HS")->capture_default_str();
  sub->add_option("--mode", o->mode, "ring or ulysses")->capture_default_str();
  sub->add_option("--split", o->split, "contiguous or zigzag (default: zigzag when causal)");
  sub->add_option("--piece-mib", o->piece_mib,
                  "Ring: keys and values travel in pieces of at most this many MiB (memory per "
                  "rank beyond its own tensors is a few pieces)")
      ->capture_default_str();
  add_mask_flags(
      sub, o->mask,
      kCausalFlag | kWindowFlag | kDilationFlag | kChunkFlag | kKeyLengthsFlag | kAlibiFlag);
  sub->add_flag("--backward", o->backward, "Also run (and time) the backward");
  sub->add_flag("--check", o->check,
                "Compare with one process on rank 0 (N <= 16384); prints max_abs_diff");
  sub->add_option("--threads", o->threads, "Threads per rank (0 = all)")->capture_default_str();
  sub->add_option("--repeats", o->repeats, "Timed runs (their mean is printed)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the generated inputs")->capture_default_str();
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
