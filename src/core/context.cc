// SPDX-License-Identifier: MIT
#include "attn/context.h"

#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>

#include "attn/error.h"

namespace attn {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::normal() {
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t Rng::uniform_int(int64_t lo, int64_t hi) {
  if (hi < lo) fail<ValueError>("Rng::uniform_int", "empty range [", lo, ", ", hi, "]");
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(span == 0 ? next_u64() : next_u64() % span);
}

// ---------------------------------------------------------------------------------------------------

struct Context::Scratch {
  struct Buffer {
    float* data = nullptr;
    int64_t count = 0;
  };
  std::vector<Buffer> buffers;
  ~Scratch() {
    for (auto& b : buffers) std::free(b.data);
  }
};

int hardware_threads() {
  // OMP_NUM_THREADS when set, else the processors available to this process. Not
  // omp_get_max_threads(): a library loaded into the same process (PyTorch does) may have lowered
  // it with omp_set_num_threads.
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return omp_get_num_procs();
}

Context::Context(const ContextOptions& options)
    : seed_(options.seed), scratch_(std::make_unique<Scratch>()) {
  set_num_threads(options.num_threads);
}

Context::~Context() = default;

void Context::set_num_threads(int n) {
  if (n < 0) fail<ValueError>("Context::set_num_threads", "thread count must be >= 0, got ", n);
  num_threads_ = n == 0 ? hardware_threads() : n;
  // Buffers are created up front so that scratch() never resizes the vector from inside a parallel
  // region (each worker only touches its own slot).
  scratch_->buffers.resize(static_cast<size_t>(num_threads_));
}

float* Context::scratch(int worker, int64_t count) const {
  if (worker < 0 || worker >= num_threads_)
    fail<ValueError>("Context::scratch", "worker ", worker, " is out of range for ", num_threads_,
                     " threads");
  auto& b = scratch_->buffers[static_cast<size_t>(worker)];
  if (b.count < count) {
    std::free(b.data);
    const size_t bytes = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
    check_memory_budget("Context::scratch", static_cast<double>(bytes), "scratch memory");
    b.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (b.data == nullptr) {
      b.count = 0;
      fail<Error>("Context::scratch", "out of memory allocating ", bytes, " bytes");
    }
    b.count = count;
  }
  return b.data;
}

namespace {
std::atomic<int> g_default_threads{0};    // 0: all hardware threads
std::atomic<int64_t> g_memory_budget{0};  // 0: not yet decided

int64_t default_memory_budget() {
  if (const char* env = std::getenv("ATTN_MEMORY_BUDGET")) {
    char* end = nullptr;
    const double value = std::strtod(env, &end);
    const double scale = *end == 'G' || *end == 'g'   ? 1024.0 * 1024 * 1024
                         : *end == 'M' || *end == 'm' ? 1024.0 * 1024
                         : *end == 'K' || *end == 'k' ? 1024.0
                                                      : 1.0;
    if (value > 0 && end != env) return static_cast<int64_t>(value * scale);
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    return static_cast<int64_t>(0.8 * static_cast<double>(pages) * static_cast<double>(page));
  return int64_t{1} << 40;
}

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024.0 * 1024.0)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

int64_t memory_budget_bytes() {
  int64_t b = g_memory_budget.load();
  if (b == 0) {
    b = default_memory_budget();
    g_memory_budget.store(b);
  }
  return b;
}

void set_memory_budget_bytes(int64_t bytes) {
  if (bytes <= 0)
    fail<ValueError>("set_memory_budget_bytes", "the budget must be > 0 bytes, got ", bytes);
  g_memory_budget.store(bytes);
}

void check_memory_budget(const char* fn, double bytes, const std::string& what) {
  const int64_t budget = memory_budget_bytes();
  if (bytes > static_cast<double>(budget))
    fail<ValueError>(fn, what, " needs ", human_bytes(bytes), ", more than the memory budget of ",
                     human_bytes(static_cast<double>(budget)),
                     " (80% of physical memory by default; set ATTN_MEMORY_BUDGET to change it)");
}

void set_default_num_threads(int n) {
  if (n < 0) fail<ValueError>("set_default_num_threads", "thread count must be >= 0, got ", n);
  g_default_threads.store(n == 0 ? hardware_threads() : n);
}

int default_num_threads() {
  const int n = g_default_threads.load();
  return n == 0 ? hardware_threads() : n;
}

const Context& thread_context() {
  thread_local Context ctx;
  const int wanted = default_num_threads();
  if (ctx.num_threads() != wanted) ctx.set_num_threads(wanted);
  return ctx;
}

}  // namespace attn
