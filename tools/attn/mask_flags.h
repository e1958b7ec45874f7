// SPDX-License-Identifier: MIT
// The attention-mask flags, parsed one way for every subcommand that takes them (attend, bench,
// encode):
//   --causal  --window LEFT,RIGHT|W  --dilation D  --chunk SIZE[,LEFT_CHUNKS]  --key-lengths
//   n1,n2,...
//   --query-offset N  --alibi
// A flag given with an empty value is an error, not "no mask".
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "attn/ops/attention.h"

namespace attn::cli {

enum MaskFlag : unsigned {
  kCausalFlag = 1u << 0,
  kWindowFlag = 1u << 1,
  kDilationFlag = 1u << 2,
  kChunkFlag = 1u << 3,
  kKeyLengthsFlag = 1u << 4,
  kQueryOffsetFlag = 1u << 5,
  kAlibiFlag = 1u << 6,
  kAllMaskFlags = (1u << 7) - 1,
};

struct MaskFlags {
  bool causal = false, alibi = false;
  std::string window, chunk, key_lengths;
  int64_t dilation = 1, query_offset = 0;
  // The options, to tell "given empty" from "not given".
  CLI::Option *window_opt = nullptr, *chunk_opt = nullptr, *key_lengths_opt = nullptr;

  // The mask these flags describe, for NH heads (ALiBi slopes) and, when batch >= 0, that many
  // batch entries (--key-lengths must give one per entry). Throws ValueError naming the flag.
  ops::AttentionMask build(int64_t num_heads, int64_t batch = -1) const;
  // " causal window=4,2 ..." or " none", for the line a subcommand prints.
  std::string describe() const;
};

// Adds the flags in `which` to sub, writing into flags (which must outlive sub's parsing).
void add_mask_flags(CLI::App* sub, MaskFlags& flags, unsigned which = kAllMaskFlags);

}  // namespace attn::cli
