// SPDX-License-Identifier: MIT
// Sequence-parallel attention: a sequence of N positions split over the P ranks of a communicator,
// each rank holding its positions' queries, keys and values, with results equal to one process
// running ops::attention over the whole sequence (docs/distributed.md).
//   ring:    queries stay; key/value blocks go to the ranks whose queries can see them, with
//            non-blocking sends and receives overlapped with the fused kernel; the partial results
//            merge exactly (ops::attention_merge). Under a window or chunk mask a rank receives
//            only the rows some query of its can see, so bytes are O(window), not O(N).
//   ulysses: an all-to-all turns the sequence split into a head split (NH and NH_kv divisible by
//            P), each rank attends over the whole sequence for its heads, and a second all-to-all
//            turns the outputs back (DeepSpeed-Ulysses, Jacobs et al. 2023).
#pragma once

#include <cstdint>
#include <vector>

#include "attn/context.h"
#include "attn/dist/communicator.h"
#include "attn/ops/attention.h"
#include "attn/tensor.h"

namespace attn::dist {

// A run of global positions [start, start + size) that one rank holds.
struct Segment {
  int64_t start = 0;
  int64_t size = 0;
};

// How N positions are split over P ranks.
//   contiguous: rank r holds [r·N/P, (r+1)·N/P) (floor divisions).
//   zigzag:     the sequence is cut into 2P chunks and rank r holds chunks r and 2P-1-r, so under a
//               causal mask every rank has the same work (an early chunk sees few keys, its partner
//               many).
enum class Split { contiguous, zigzag };

class SequenceLayout {
 public:
  SequenceLayout(int64_t length, int ranks, Split split = Split::contiguous);
  int64_t length() const { return length_; }
  int ranks() const { return ranks_; }
  Split split() const { return split_; }
  // The segments of rank r in the order its local tensors hold them.
  const std::vector<Segment>& segments(int rank) const;
  int64_t local_length(int rank) const;

 private:
  int64_t length_;
  int ranks_;
  Split split_;
  std::vector<std::vector<Segment>> segments_;
};

// Rank r's positions of a global (B, H, N, D) tensor, as a new (B, H, n_r, D) tensor.
Tensor shard(ConstTensorView global, const SequenceLayout& layout, int rank);
// Writes rank r's (B, H, n_r, D) positions into the global (B, H, N, D) tensor (overwritten there).
void unshard(ConstTensorView local, const SequenceLayout& layout, int rank, TensorView global);
// Every rank's positions gathered into the global tensor on every rank ((B, H, N, D); O(N) memory).
Tensor allgather_sequence(const Communicator& comm, ConstTensorView local,
                          const SequenceLayout& layout);

enum class Mode { ring, ulysses };

struct DistAttentionOptions {
  // The mask in global positions (query t and key s of the whole sequence; key_lengths per batch
  // over N, key_offset 0). return_probs is not supported (T×S on one rank is what this avoids).
  ops::AttentionOptions attention;
  Mode mode = Mode::ring;
  // Ring mode: keys and values travel in pieces of at most this many bytes (at least one row), and
  // each kernel call merges at most half as many bytes of output; the ring's memory beyond this
  // rank's own tensors is a few times this, whatever N is. Smaller pieces mean more messages and
  // kernel calls.
  int64_t ring_piece_bytes = int64_t{16} << 20;
};

// q (B, NH, n, HS), k (B, NH_kv, n, HS), v (B, NH_kv, n, HSV): this rank's positions, n =
// layout.local_length(comm.rank()). Returns this rank's out (B, NH, n, HSV) and lse (B, NH, n).
// Every rank must call it with the same layout, shapes (but n) and options; a bad argument on any
// rank makes every rank throw the same error. stats, if given, accumulates this rank's traffic.
ops::AttentionResult attention(const Communicator& comm, const SequenceLayout& layout,
                               ConstTensorView q, ConstTensorView k, ConstTensorView v,
                               const DistAttentionOptions& options = {},
                               const Context& ctx = thread_context(), CommStats* stats = nullptr);

// Gradients for this rank's dout (B, NH, n, HSV), given this rank's out and lse from attention().
// Returns this rank's dq, dk, dv (the contributions of every rank's queries summed in).
ops::AttentionGrads attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                   ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                   ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                                   const DistAttentionOptions& options = {},
                                   const Context& ctx = thread_context(),
                                   CommStats* stats = nullptr);

}  // namespace attn::dist
