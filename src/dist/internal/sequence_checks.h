// SPDX-License-Identifier: MIT
// Argument checks of the sequence-parallel calls, agreed over the communicator: every rank checks
// its own arguments, then every rank throws the first failing rank's error (or none does), and
// every rank compares the shapes and options all ranks passed, so that no rank enters the
// exchange with arguments the others do not share.
#pragma once

#include "attn/dist/sequence.h"

namespace attn::dist::internal {

struct SequenceDims {
  int64_t B, NH, NH_kv, n, HS, HSV, N;
  double scale;
  int64_t piece_bytes;  // DistAttentionOptions::ring_piece_bytes
};

// q, k, v as documented in attn/dist/sequence.h. Throws on every rank or on none.
SequenceDims check_sequence_attention(const char* fn, const Communicator& comm,
                                      const SequenceLayout& layout, ConstTensorView q,
                                      ConstTensorView k, ConstTensorView v,
                                      const DistAttentionOptions& options);
// The above plus out, lse and dout of this rank.
SequenceDims check_sequence_attention_grad(const char* fn, const Communicator& comm,
                                           const SequenceLayout& layout, ConstTensorView q,
                                           ConstTensorView k, ConstTensorView v,
                                           ConstTensorView out, ConstTensorView lse,
                                           ConstTensorView dout,
                                           const DistAttentionOptions& options);

// The mask of one block pair: queries starting at global position q_start, `rows` keys starting at
// global position k_start (key_offset), key lengths moved onto the block's local indices.
ops::AttentionMask block_mask(const ops::AttentionMask& global, int64_t q_start, int64_t k_start,
                              int64_t rows);

// The mask of batch entries [b0, b0 + nb) and query heads [h0, h0 + nh) of the global one: its key
// lengths and ALiBi slopes cut to them.
ops::AttentionMask heads_mask(const ops::AttentionMask& global, int64_t b0, int64_t nb, int64_t h0,
                              int64_t nh);

// dst += src, element by element (same shapes).
void add_into(ConstTensorView src, TensorView dst);

}  // namespace attn::dist::internal
