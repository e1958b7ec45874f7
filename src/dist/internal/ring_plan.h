// SPDX-License-Identifier: MIT
// What the ring moves: for every pair of segments (a query segment, a key segment) the rows of the
// key segment that some query of the other can see under the mask (ignoring dilation), and from
// those, for every (owner, destination) pair of ranks, the block of key/value rows the owner sends.
// Every rank builds the same plan from the same arguments, so sender and receiver agree on every
// message's size without exchanging it.
#pragma once

#include <vector>

#include "attn/dist/sequence.h"

namespace attn::dist::internal {

struct Rows {
  int64_t lo = 0, hi = 0;  // global key positions [lo, hi); empty when lo >= hi
  bool empty() const { return lo >= hi; }
  int64_t size() const { return hi > lo ? hi - lo : 0; }
};

// One run of rows of a block: `rows` keys of the owner's segment k_segment from global position
// global_start, at row owner_row of the owner's local tensors and packed_row of the message.
struct BlockPart {
  int k_segment;
  int64_t global_start, rows, owner_row, packed_row;
};
struct Block {
  std::vector<BlockPart> parts;
  int64_t rows = 0;
};

class RingPlan {
 public:
  // B: the batch (key_lengths differ per batch entry).
  RingPlan(const SequenceLayout& layout, const ops::AttentionMask& mask, int64_t B);
  int first_segment(int rank) const { return first_[static_cast<size_t>(rank)]; }
  int segment_count(int rank) const {
    return first_[static_cast<size_t>(rank) + 1] - first_segment(rank);
  }
  const Segment& segment(int g) const { return segments_[static_cast<size_t>(g)]; }
  // Rows of key segment k that queries of segment q can see.
  Rows reach(int q, int k) const {
    return reach_[static_cast<size_t>(q) * segments_.size() + static_cast<size_t>(k)];
  }
  // The rows of owner's keys that dest's queries can see, in owner's segment order.
  Block block(int owner, int dest) const;

 private:
  std::vector<Segment> segments_;   // every rank's segments, rank after rank
  std::vector<int> first_;          // rank r's segments are [first_[r], first_[r + 1])
  std::vector<int64_t> local_row_;  // row of each segment in its rank's local tensors
  std::vector<Rows> reach_;
};

}  // namespace attn::dist::internal
