// SPDX-License-Identifier: MIT
// Mask validation, ALiBi slopes and the default scale: shared by the reference and the fast
// kernels.
#include <algorithm>
#include <cmath>
#include <string>

#include "attn/ops/attention.h"
#include "ops/internal/attention_checks.h"

namespace attn::ops {

namespace {
std::vector<double> alibi_slopes_power_of_two(int64_t n) {
  std::vector<double> slopes;
  const double start = std::pow(2.0, -8.0 / static_cast<double>(n));
  double s = start;
  for (int64_t i = 0; i < n; ++i, s *= start) slopes.push_back(s);
  return slopes;
}
std::vector<double> alibi_slopes_double(int64_t n) {
  int64_t p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<double> slopes = alibi_slopes_power_of_two(p);
  if (p != n) {
    const std::vector<double> extra = alibi_slopes_double(2 * p);
    for (int64_t i = 0; i < n - p; ++i) slopes.push_back(extra[static_cast<size_t>(2 * i)]);
  }
  return slopes;
}
}  // namespace

std::vector<float> alibi_slopes(int64_t num_heads) {
  if (num_heads < 1) fail<ValueError>("alibi_slopes", "num_heads must be >= 1, got ", num_heads);
  std::vector<float> out;
  for (double s : alibi_slopes_double(num_heads)) out.push_back(static_cast<float>(s));
  return out;
}

double default_attention_scale(int64_t head_size) {
  if (head_size < 1)
    fail<ValueError>("default_attention_scale", "head size must be >= 1, got ", head_size);
  return 1.0 / std::sqrt(static_cast<double>(head_size));
}

bool AttentionMask::key_visible(int64_t b, int64_t t, int64_t s) const {
  const int64_t p = t + query_offset, k = s + key_offset;
  if (causal && k > p) return false;
  if (window_left >= 0 && k < p - window_left) return false;
  if (window_right >= 0 && k > p + window_right) return false;
  if (dilation > 1 && (p - k) % dilation != 0) return false;
  if (chunk_size > 0) {
    const int64_t ck = internal::floor_div(k, chunk_size), cp = internal::floor_div(p, chunk_size);
    if (ck > cp) return false;
    if (num_left_chunks >= 0 && ck < cp - num_left_chunks) return false;
  }
  if (!key_lengths.empty() && s >= key_lengths[static_cast<size_t>(b)]) return false;
  return true;
}

AttentionMask::Interval AttentionMask::key_interval(int64_t b, int64_t t, int64_t S) const {
  // In key positions first, then shifted to local indices.
  const int64_t p = t + query_offset;
  int64_t lo = key_offset, hi = key_offset + S - 1;
  if (causal) hi = std::min(hi, p);
  if (window_left >= 0) lo = std::max(lo, p - window_left);
  if (window_right >= 0) hi = std::min(hi, p + window_right);
  if (chunk_size > 0) {
    const int64_t c = internal::floor_div(p, chunk_size);
    hi = std::min(hi, (c + 1) * chunk_size - 1);
    if (num_left_chunks >= 0) lo = std::max(lo, (c - num_left_chunks) * chunk_size);
  }
  lo -= key_offset, hi -= key_offset;
  if (!key_lengths.empty()) hi = std::min(hi, key_lengths[static_cast<size_t>(b)] - 1);
  return {lo, hi};
}

}  // namespace attn::ops

namespace attn::internal {

void check_attention_mask(const char* fn, const ops::AttentionMask& m, int64_t B, int64_t NH,
                          int64_t S) {
  if (m.window_left < -1)
    fail<ValueError>(fn, "mask.window_left must be >= 0 or -1 (unbounded), got ", m.window_left);
  if (m.window_right < -1)
    fail<ValueError>(fn, "mask.window_right must be >= 0 or -1 (unbounded), got ", m.window_right);
  if (m.dilation < 1) fail<ValueError>(fn, "mask.dilation must be >= 1, got ", m.dilation);
  if (m.chunk_size < 0)
    fail<ValueError>(fn, "mask.chunk_size must be >= 0 (0 = off), got ", m.chunk_size);
  if (m.num_left_chunks < -1)
    fail<ValueError>(fn, "mask.num_left_chunks must be >= 0 or -1 (all), got ", m.num_left_chunks);
  // Positions are computed as t + query_offset in int64; keep them far from overflow.
  constexpr int64_t kLimit = int64_t{1} << 40;
  if (m.query_offset < -kLimit || m.query_offset > kLimit)
    fail<ValueError>(fn, "mask.query_offset ", m.query_offset, " is out of range");
  if (m.key_offset < -kLimit || m.key_offset > kLimit)
    fail<ValueError>(fn, "mask.key_offset ", m.key_offset, " is out of range");
  if (!m.key_lengths.empty()) {
    if (static_cast<int64_t>(m.key_lengths.size()) != B)
      fail<ShapeError>(fn, "mask.key_lengths has ", m.key_lengths.size(),
                       " entries but the batch size is ", B);
    for (size_t b = 0; b < m.key_lengths.size(); ++b)
      if (m.key_lengths[b] < 0 || m.key_lengths[b] > S)
        fail<ValueError>(fn, "mask.key_lengths[", b, "] = ", m.key_lengths[b],
                         " is outside [0, S = ", S, "]");
  }
  if (!m.alibi_slopes.empty()) {
    if (static_cast<int64_t>(m.alibi_slopes.size()) != NH)
      fail<ShapeError>(fn, "mask.alibi_slopes has ", m.alibi_slopes.size(),
                       " entries but there are ", NH, " heads");
    for (size_t h = 0; h < m.alibi_slopes.size(); ++h)
      if (!std::isfinite(m.alibi_slopes[h]))
        fail<ValueError>(fn, "mask.alibi_slopes[", h, "] is not finite");
  }
}

namespace {
// "2 or 1" for a dimension that broadcasts, "1" where it is 1 anyway (not "1 or 1").
std::string or_one(int64_t n) { return n == 1 ? "1" : std::to_string(n) + " or 1"; }
}  // namespace

void check_attention_bias(const char* fn, const Shape& bs, int64_t B, int64_t NH, int64_t T_,
                          int64_t S) {
  if (bs.rank() != 4 || (bs[0] != B && bs[0] != 1) || (bs[1] != NH && bs[1] != 1) || bs[2] != T_ ||
      bs[3] != S)
    fail<ShapeError>(fn, "bias has shape ", bs.str(), " but (", or_one(B), ", ", or_one(NH), ", ",
                     T_, ", ", S, ") is expected for (B, NH, T, S) = (", B, ", ", NH, ", ", T_,
                     ", ", S, ")");
}

}  // namespace attn::internal
