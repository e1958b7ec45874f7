// SPDX-License-Identifier: MIT
// The two sequence-parallel algorithms behind dist::attention, on checked arguments.
#pragma once

#include "dist/internal/sequence_checks.h"

namespace attn::dist::internal {

ops::AttentionResult ring_attention(const Communicator& comm, const SequenceLayout& layout,
                                    ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                    const ops::AttentionMask& mask, const SequenceDims& d,
                                    const Context& ctx, CommStats* stats);
ops::AttentionGrads ring_attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                        ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                        ConstTensorView out, ConstTensorView lse,
                                        ConstTensorView dout, const ops::AttentionMask& mask,
                                        const SequenceDims& d, const Context& ctx,
                                        CommStats* stats);

ops::AttentionResult ulysses_attention(const Communicator& comm, const SequenceLayout& layout,
                                       ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                       const ops::AttentionMask& mask, const SequenceDims& d,
                                       const Context& ctx, CommStats* stats);
ops::AttentionGrads ulysses_attention_grad(const Communicator& comm, const SequenceLayout& layout,
                                           ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                           ConstTensorView out, ConstTensorView lse,
                                           ConstTensorView dout, const ops::AttentionMask& mask,
                                           const SequenceDims& d, const Context& ctx,
                                           CommStats* stats);

}  // namespace attn::dist::internal
