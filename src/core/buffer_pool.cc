// SPDX-License-Identifier: MIT
// Size classes: a request is rounded up to the next multiple of an eighth of its power of two
// (at most 12.5% slack), so a buffer freed by one step fits the same tensor of the next. The pool
// holds at most kMaxPooledBytes; beyond that buffers go back to malloc's free. Under
// AddressSanitizer a pooled buffer is poisoned, so a use after free of a tensor is still reported.
#include "core/buffer_pool.h"

#include <array>
#include <atomic>
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

// One of the pool's shards: a mutex and free lists by size class.
struct Shard {
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

// Each thread takes and returns buffers at a shard of its own (threads past kShards share them):
// threads that allocate at once (data-parallel replicas) neither wait on one mutex nor hand each
// other blocks whose lines sit in the other core's cache. The cap is over all shards together.
constexpr size_t kShards = 8;
struct Pool {
  std::array<Shard, kShards> shards;
  std::atomic<size_t> bytes{0};
  std::atomic<size_t> next_slot{0};
};

// Never destroyed: a static Tensor may release its buffer during exit, after any destructor of the
// pool would have run. What it holds stays reachable, so leak checkers do not report it.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

Shard& my_shard() {
  Pool& p = pool();
  thread_local const size_t slot = p.next_slot.fetch_add(1) % kShards;
  return p.shards[slot];
}

}  // namespace

void* acquire_buffer(size_t bytes) {
  const size_t size = size_class(bytes);
  if (size >= kMinPooledBytes) {
    Shard& s = my_shard();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.free_by_class.find(size);
    if (it != s.free_by_class.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      s.bytes -= size;
      pool().bytes -= size;
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
    // Reserve room under the cap first (shards fill at once), give it back if it is not there.
    if (p.bytes.fetch_add(size) + size <= kMaxPooledBytes) {
      Shard& s = my_shard();
      std::lock_guard<std::mutex> lock(s.mutex);
      ATTN_POISON(block, size);
      s.free_by_class[size].push_back(block);
      s.bytes += size;
      return;
    }
    p.bytes -= size;
  }
  std::free(block);
}

size_t pooled_buffer_bytes() { return pool().bytes.load(); }

void trim_buffer_pool() {
  Pool& p = pool();
  for (Shard& s : p.shards) {
    std::lock_guard<std::mutex> lock(s.mutex);
    p.bytes -= s.bytes;
    s.trim();
  }
}

}  // namespace attn::internal
