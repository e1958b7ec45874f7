// SPDX-License-Identifier: MIT
// Size classes: a request is rounded up to the next multiple of an eighth of its power of two
// (at most 12.5% slack), so a buffer freed by one step fits the same tensor of the next. The pool
// holds at most kMaxPooledBytes; beyond that buffers go back to malloc's free. Under
// AddressSanitizer a pooled buffer is poisoned, so a use after free of a tensor is still reported.
#include "core/buffer_pool.h"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ATTN_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ATTN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ATTN_POISON(p, n) ((void)(p), (void)(n))
#define ATTN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace attn::internal {

namespace {

// Below this, malloc's small bins serve and recycle blocks well (src/core/buffer_pool.h: why not
// larger).
constexpr size_t kMinPooledBytes = size_t{4} << 10;
constexpr size_t kMaxPooledBytes = size_t{512} << 20;

size_t size_class(size_t bytes) {
  if (bytes < kMinPooledBytes) return (bytes + 63) / 64 * 64;
  const size_t eighth = std::bit_floor(bytes) / 8;
  return (bytes + eighth - 1) / eighth * eighth;
}

struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_by_class;
  size_t bytes = 0;
  void trim() {
    for (auto& [size, list] : free_by_class)
      for (void* p : list) {
        ATTN_UNPOISON(p, size);
        std::free(p);
      }
    free_by_class.clear();
    bytes = 0;
  }
};

// Never destroyed: a static Tensor may release its buffer during exit, after any destructor of the
// pool would have run. What it holds stays reachable, so leak checkers do not report it.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

void* acquire_buffer(size_t bytes) {
  const size_t size = size_class(bytes);
  if (size >= kMinPooledBytes) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free_by_class.find(size);
    if (it != p.free_by_class.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      p.bytes -= size;
      ATTN_UNPOISON(block, size);
      return block;
    }
  }
  return std::aligned_alloc(64, size);
}

void release_buffer(void* block, size_t bytes) {
  if (block == nullptr) return;
  const size_t size = size_class(bytes);
  if (size >= kMinPooledBytes) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.bytes + size <= kMaxPooledBytes) {
      ATTN_POISON(block, size);
      p.free_by_class[size].push_back(block);
      p.bytes += size;
      return;
    }
  }
  std::free(block);
}

size_t pooled_buffer_bytes() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.bytes;
}

void trim_buffer_pool() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.trim();
}

}  // namespace attn::internal
