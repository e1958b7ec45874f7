// SPDX-License-Identifier: MIT
#include "dist/internal/ring_plan.h"

#include <algorithm>

namespace attn::dist::internal {

RingPlan::RingPlan(const SequenceLayout& layout, const ops::AttentionMask& mask, int64_t B) {
  first_.push_back(0);
  for (int r = 0; r < layout.ranks(); ++r) {
    int64_t row = 0;
    for (const Segment& s : layout.segments(r)) {
      segments_.push_back(s);
      local_row_.push_back(row);
      row += s.size;
    }
    first_.push_back(static_cast<int>(segments_.size()));
  }
  const size_t G = segments_.size();
  reach_.assign(G * G, Rows{layout.length(), 0});
  // The hull of what every query sees, per key segment. O(B · N · G) interval tests, far below the
  // attention they plan.
  for (size_t q = 0; q < G; ++q) {
    const Segment& qs = segments_[q];
    for (int64_t t = qs.start; t < qs.start + qs.size; ++t)
      for (int64_t b = 0; b < B; ++b) {
        const auto [lo, hi] = mask.key_interval(b, t, layout.length());
        if (lo > hi) continue;
        for (size_t k = 0; k < G; ++k) {
          const Segment& ks = segments_[k];
          const int64_t a = std::max(lo, ks.start), z = std::min(hi + 1, ks.start + ks.size);
          if (a >= z) continue;
          Rows& r = reach_[q * G + k];
          r.lo = std::min(r.lo, a), r.hi = std::max(r.hi, z);
        }
      }
  }
  for (Rows& r : reach_)
    if (r.empty()) r = Rows{};
}

Block RingPlan::block(int owner, int dest) const {
  Block blk;
  for (int k = first_segment(owner); k < first_segment(owner) + segment_count(owner); ++k) {
    Rows hull{segment(k).start + segment(k).size, segment(k).start};
    for (int q = first_segment(dest); q < first_segment(dest) + segment_count(dest); ++q) {
      const Rows r = reach(q, k);
      if (r.empty()) continue;
      hull.lo = std::min(hull.lo, r.lo), hull.hi = std::max(hull.hi, r.hi);
    }
    if (hull.empty()) continue;
    blk.parts.push_back({k, hull.lo, hull.size(),
                         local_row_[static_cast<size_t>(k)] + hull.lo - segment(k).start,
                         blk.rows});
    blk.rows += hull.size();
  }
  return blk;
}

}  // namespace attn::dist::internal
