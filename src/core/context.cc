// SPDX-License-Identifier: MIT
#include "attn/context.h"

#include <omp.h>

#include <atomic>
#include <cmath>
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
std::atomic<int> g_default_threads{0};  // 0: all hardware threads
}  // namespace

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
