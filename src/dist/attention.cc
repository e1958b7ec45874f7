// SPDX-License-Identifier: MIT
#include "dist/internal/ring.h"

namespace attn::dist {

ops::AttentionResult attention(const Communicator& comm, const SequenceLayout& layout,
                               ConstTensorView q, ConstTensorView k, ConstTensorView v,
                               const DistAttentionOptions& options, const Context& ctx,
                               CommStats* stats) {
  const internal::SequenceDims d =
      internal::check_sequence_attention("dist::attention", comm, layout, q, k, v, options);
  const ops::AttentionMask& m = options.attention.mask;
  return options.mode == Mode::ulysses
             ? internal::ulysses_attention(comm, layout, q, k, v, m, d, ctx, stats)
             : internal::ring_attention(comm, layout, q, k, v, m, d, ctx, stats);
}

ops::AttentionGrads attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                   ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                   ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                                   const DistAttentionOptions& options, const Context& ctx,
                                   CommStats* stats) {
  const internal::SequenceDims d = internal::check_sequence_attention_grad(
      "dist::attention_grad", comm, layout, q, k, v, out, lse, dout, options);
  const ops::AttentionMask& m = options.attention.mask;
  return options.mode == Mode::ulysses
             ? internal::ulysses_attention_grad(comm, layout, q, k, v, out, lse, dout, m, d, ctx,
                                                stats)
             : internal::ring_attention_grad(comm, layout, q, k, v, out, lse, dout, m, d, ctx,
                                             stats);
}

}  // namespace attn::dist
