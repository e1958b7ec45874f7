// SPDX-License-Identifier: MIT
// Reuse of large tensor buffers. A training step allocates the same activation and gradient
// tensors every step; fresh large blocks from malloc are new pages from the kernel (mmap), and
// their page faults cost more than the arithmetic of a small model (measured: 8% of a step of `attn
// train reverse`). Smaller blocks come from malloc's heap, but glibc gives the top of the heap back
// to the kernel once more than 128 KiB of it is free, which a step's freed activations are: at
// batch 16 (49 KiB tensors) that cost 169 faults a step, half of it. Freed buffers of 4 KiB or more
// are kept by size class and handed out again. Internal header (src/ only).
#pragma once

#include <cstddef>

namespace attn::internal {

// A 64-byte aligned block of at least `bytes` bytes (contents undefined), or null when out of
// memory. Give it back with release_buffer(p, bytes) with the same byte count.
void* acquire_buffer(size_t bytes);
void release_buffer(void* p, size_t bytes);

// Bytes held for reuse right now (tests), and a way to return them all to the system.
size_t pooled_buffer_bytes();
void trim_buffer_pool();

}  // namespace attn::internal
