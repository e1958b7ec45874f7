// SPDX-License-Identifier: MIT
// A spinning barrier between the group's threads (a sum is two of them: after every rank has
// published its span, and after every rank has summed its share of the elements into all spans).
// Spinning, not sleeping: the ranks meet once or twice a step, a few microseconds apart; waking a
// sleeping thread costs tens of microseconds in a VM. After a while a waiter yields, so that a
// group larger than the machine still makes progress.
#include "attn/train/thread_group.h"

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "attn/error.h"

namespace attn::train {

namespace {
constexpr const char* kFn = "ThreadGroup::allreduce_sum";

// Thrown to a rank whose group was aborted by another rank's failure.
struct GroupAborted : Error {
  using Error::Error;
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

struct ThreadGroup::Shared {
  explicit Shared(int n)
      : size(n),
        data(static_cast<size_t>(n)),
        len(static_cast<size_t>(n)),
        elem(static_cast<size_t>(n)) {}
  const int size;
  std::atomic<int> arrived{0};
  std::atomic<int64_t> generation{0};
  std::atomic<bool> aborted{false};
  std::mutex why_mutex;
  std::string why;
  // What each rank published for the sum in progress: its values, their count and element size.
  std::vector<void*> data;
  std::vector<size_t> len, elem;

  [[noreturn]] void throw_aborted() {
    std::lock_guard<std::mutex> lock(why_mutex);
    throw GroupAborted(std::string(kFn) + ": another rank of the group failed: " + why);
  }
  void barrier() {
    const int64_t gen = generation.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == size) {
      arrived.store(0, std::memory_order_relaxed);
      generation.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int64_t spins = 0; generation.load(std::memory_order_acquire) == gen; ++spins) {
      if (aborted.load(std::memory_order_acquire)) throw_aborted();
      if (spins < 20000)
        cpu_relax();
      else
        std::this_thread::yield();
    }
  }
};

ThreadGroup::ThreadGroup(int size) {
  if (size < 1) fail<ValueError>("ThreadGroup", "size must be >= 1, got ", size);
  s_ = std::make_unique<Shared>(size);
}
ThreadGroup::~ThreadGroup() = default;

int ThreadGroup::size() const { return s_->size; }

void ThreadGroup::abort(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(s_->why_mutex);
    if (!s_->aborted.load()) s_->why = why;
  }
  s_->aborted.store(true, std::memory_order_release);
}

namespace {
// Elements [lo, hi) of every rank's span summed in rank order and written back to every span.
template <typename T>
void sum_share(const std::vector<void*>& data, size_t lo, size_t hi) {
  const size_t ranks = data.size();
  for (size_t i = lo; i < hi; ++i) {
    T sum = static_cast<T*>(data[0])[i];
    for (size_t r = 1; r < ranks; ++r) sum += static_cast<T*>(data[r])[i];
    for (size_t r = 0; r < ranks; ++r) static_cast<T*>(data[r])[i] = sum;
  }
}

template <typename T>
void group_allreduce(ThreadGroup::Shared& s, int rank, std::span<T> v) {
  if (rank < 0 || rank >= s.size)
    fail<ValueError>(kFn, "rank ", rank, " is outside [0, ", s.size, ")");
  if (s.aborted.load(std::memory_order_acquire)) s.throw_aborted();
  if (s.size == 1) return;
  const auto r = static_cast<size_t>(rank);
  s.data[r] = v.data(), s.len[r] = v.size(), s.elem[r] = sizeof(T);
  s.barrier();  // every rank's span is published
  for (size_t i = 1; i < s.len.size(); ++i)
    if (s.len[i] != s.len[0] || s.elem[i] != s.elem[0]) {
      std::string lens;
      for (size_t j = 0; j < s.len.size(); ++j)
        lens +=
            (j ? ", " : "") + std::to_string(s.len[j]) + (s.elem[j] == 4 ? " float" : " double");
      // Every rank sees the same mismatch: they all throw this, none waits.
      fail<ValueError>(kFn, "the ranks' spans differ: ", lens, " (ranks 0..", s.size - 1, ")");
    }
  const size_t n = v.size(), ranks = static_cast<size_t>(s.size);
  sum_share<T>(s.data, n * r / ranks, n * (r + 1) / ranks);
  s.barrier();  // every share is summed: every span holds the totals
}
}  // namespace

void ThreadGroup::allreduce_sum(int rank, std::span<float> values) {
  group_allreduce(*s_, rank, values);
}
void ThreadGroup::allreduce_sum(int rank, std::span<double> values) {
  group_allreduce(*s_, rank, values);
}

DataParallel ThreadGroup::member(int rank) {
  if (rank < 0 || rank >= s_->size)
    fail<ValueError>("ThreadGroup::member", "rank ", rank, " is outside [0, ", s_->size, ")");
  DataParallel dp;
  dp.rank = rank, dp.size = s_->size;
  dp.allreduce_sum = [this, rank](std::span<float> v) { allreduce_sum(rank, v); };
  dp.allreduce_sum_double = [this, rank](std::span<double> v) { allreduce_sum(rank, v); };
  return dp;
}

void run_data_parallel(int size, const std::function<void(int, const DataParallel&)>& fn) {
  if (!fn) fail<ValueError>("run_data_parallel", "fn is required");
  ThreadGroup group(size);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size));
  std::vector<char> follow_on(static_cast<size_t>(size),
                              0);  // not vector<bool>: ranks write at once
  auto run = [&](int rank) {
    const auto r = static_cast<size_t>(rank);
    try {
      fn(rank, group.member(rank));
    } catch (const GroupAborted&) {
      errors[r] = std::current_exception();
      follow_on[r] = 1;
    } catch (const std::exception& e) {
      errors[r] = std::current_exception();
      group.abort("rank " + std::to_string(rank) + ": " + e.what());
    } catch (...) {
      errors[r] = std::current_exception();
      group.abort("rank " + std::to_string(rank) + " threw");
    }
  };
  std::vector<std::thread> threads;
  for (int rank = 1; rank < size; ++rank) threads.emplace_back(run, rank);
  run(0);
  for (std::thread& t : threads) t.join();
  for (size_t r = 0; r < errors.size(); ++r)
    if (errors[r] && follow_on[r] == 0) std::rethrow_exception(errors[r]);
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace attn::train
