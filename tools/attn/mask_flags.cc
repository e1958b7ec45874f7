// SPDX-License-Identifier: MIT
#include "mask_flags.h"

#include "commands.h"

namespace attn::cli {

void add_mask_flags(CLI::App* sub, MaskFlags& f, unsigned which) {
  if (which & kCausalFlag)
    sub->add_flag("--causal", f.causal,
                  "Causal mask, top-left aligned as PyTorch: key s <= query t + query offset");
  if (which & kWindowFlag)
    f.window_opt = sub->add_option(
        "--window", f.window,
        "Truncated attention: query t sees keys t-LEFT .. t+RIGHT (LEFT,RIGHT or W; -1 unbounded)");
  if (which & kDilationFlag)
    sub->add_option("--dilation", f.dilation,
                    "Interval sampling: only keys whose offset from t is a multiple of D")
        ->capture_default_str();
  if (which & kChunkFlag)
    f.chunk_opt = sub->add_option(
        "--chunk", f.chunk,
        "Streaming chunks: SIZE[,LEFT_CHUNKS] (WeNet's chunk mask; all left chunks if omitted)");
  if (which & kKeyLengthsFlag)
    f.key_lengths_opt = sub->add_option("--key-lengths", f.key_lengths,
                                        "Valid keys per batch entry n1,n2,... (padding mask)");
  if (which & kQueryOffsetFlag)
    sub->add_option(
           "--query-offset", f.query_offset,
           "Position of query 0 on the key axis (S - T: bottom-right alignment, as FlashAttention)")
        ->capture_default_str();
  if (which & kAlibiFlag)
    sub->add_flag("--alibi", f.alibi,
                  "ALiBi with the standard per-head slopes: score -= slope_h * |t - s|");
}

namespace {
bool given(const CLI::Option* opt) { return opt != nullptr && opt->count() > 0; }
}  // namespace

ops::AttentionMask MaskFlags::build(int64_t num_heads, int64_t batch) const {
  ops::AttentionMask m;
  m.causal = causal;
  m.query_offset = query_offset;
  m.dilation = dilation;
  if (dilation < 1) usage_fail("--dilation", "dilation must be >= 1, got ", dilation);
  if (given(window_opt)) {
    std::tie(m.window_left, m.window_right) = parse_window(window);
    if (m.window_left < -1 || m.window_right < -1)
      usage_fail("--window", "each side must be >= 0, or -1 for unbounded; got '", window, "'");
  }
  if (given(chunk_opt)) {
    const auto c = parse_int_list("--chunk", chunk);
    if (c.size() > 2) usage_fail("--chunk", "expected SIZE[,LEFT_CHUNKS], got '", chunk, "'");
    m.chunk_size = c[0];
    if (m.chunk_size < 1) usage_fail("--chunk", "chunk size must be >= 1, got ", m.chunk_size);
    m.num_left_chunks = c.size() == 2 ? c[1] : -1;
    if (m.num_left_chunks < -1)
      usage_fail("--chunk", "LEFT_CHUNKS must be >= 0, or -1 for all; got ", m.num_left_chunks);
  }
  if (given(key_lengths_opt)) {
    m.key_lengths = parse_int_list("--key-lengths", key_lengths);
    if (batch >= 0 && static_cast<int64_t>(m.key_lengths.size()) != batch)
      usage_fail("--key-lengths", "expected ", batch, " lengths (one per batch entry), got ",
                 m.key_lengths.size());
  }
  if (alibi) m.alibi_slopes = ops::alibi_slopes(num_heads);
  return m;
}

std::string MaskFlags::describe() const {
  std::string s;
  if (causal) s += " causal";
  if (given(window_opt)) s += " window=" + window;
  if (dilation > 1) s += " dilation=" + std::to_string(dilation);
  if (given(chunk_opt)) s += " chunk=" + chunk;
  if (given(key_lengths_opt)) s += " key-lengths=" + key_lengths;
  if (query_offset != 0) s += " query-offset=" + std::to_string(query_offset);
  if (alibi) s += " alibi";
  return s.empty() ? " none" : s;
}

}  // namespace attn::cli
