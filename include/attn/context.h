// SPDX-License-Identifier: MIT
// Context: the explicit execution state every op takes (threads, seed, scratch memory). No globals.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace attn {

// Small, fast, reproducible generator (xoshiro256**), seeded through splitmix64. Its sequences are
// the same on every platform and standard library, unlike std::normal_distribution.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double uniform(double lo, double hi);
  double normal();                              // standard normal (Box-Muller)
  int64_t uniform_int(int64_t lo, int64_t hi);  // [lo, hi]

 private:
  uint64_t s_[4];
};

struct ContextOptions {
  int num_threads = 0;  // 0: all hardware threads OpenMP reports
  uint64_t seed = 0;
};

class Context {
 public:
  Context() : Context(ContextOptions{}) {}
  explicit Context(const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int num_threads() const { return num_threads_; }
  void set_num_threads(int n);  // n >= 1, or 0 for all hardware threads
  uint64_t seed() const { return seed_; }

  // Per-worker scratch of at least `count` floats, 64-byte aligned. Valid until the same worker
  // asks again; workers never share a buffer, so parallel workers may call this concurrently.
  float* scratch(int worker, int64_t count) const;

 private:
  struct Scratch;
  int num_threads_ = 1;
  uint64_t seed_ = 0;
  std::unique_ptr<Scratch> scratch_;
};

// The threads a context uses by default: OMP_NUM_THREADS if set, else the processors this process
// may use.
int hardware_threads();

// The largest single allocation attn makes (a tensor, a scratch buffer), in bytes: a request above
// it fails at once with ValueError naming the size it needed, instead of swapping or being killed.
// Default: the environment's ATTN_MEMORY_BUDGET (bytes, or with a K/M/G suffix) if set, else 80% of
// physical memory.
int64_t memory_budget_bytes();
void set_memory_budget_bytes(int64_t bytes);  // > 0
// Throws ValueError from `fn` if `bytes` exceeds the budget; `what` says what they are for.
void check_memory_budget(const char* fn, double bytes, const std::string& what);

// The context of the calling thread, for calls that take none (ops::attention, the Python module):
// one per thread, so concurrent callers never share scratch memory. Its thread count follows
// set_default_num_threads (initially all hardware threads); do not change it directly.
const Context& thread_context();
// Threads that thread_context() uses in every thread from now on (n >= 1, or 0 for all hardware
// threads).
void set_default_num_threads(int n);
int default_num_threads();

}  // namespace attn
