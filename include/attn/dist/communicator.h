// SPDX-License-Identifier: MIT
// The MPI layer (optional: built when CMake finds MPI). An RAII environment, a communicator whose
// MPI errors are returned and thrown as attn::Error, and `agree`, which turns an error on one rank
// into the same error on every rank, so that a bad argument never leaves the others waiting in a
// collective. MPI's own types stay in src/: this header needs no mpi.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attn/error.h"

namespace attn::dist {

// MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that made the environment calls MPI; attn's
// OpenMP workers never do) on construction, MPI_Finalize on destruction. One per process, in main.
class Environment {
 public:
  Environment(int* argc, char*** argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  static bool initialized();  // MPI_Init has run and MPI_Finalize has not
};

// What the sequence-parallel calls spent on communication, per rank.
struct CommStats {
  int64_t bytes_sent = 0;
  int64_t messages_sent = 0;
  double wait_seconds = 0;  // blocked in MPI_Wait (communication the compute did not hide)
};

class Communicator {
 public:
  // A duplicate of MPI_COMM_WORLD (its own message space) with MPI_ERRORS_RETURN. Needs an
  // Environment.
  static Communicator world();
  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  ~Communicator();

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Every rank calls agree with its own error message ("" when it has none). If any rank has one,
  // every rank throws the error of the lowest such rank, of the same type (ShapeError, ValueError,
  // IoError or Error), its message prefixed with "rank r: " when the communicator has several
  // ranks.
  void agree(const std::string& error_message, int error_kind = 0) const;
  // Runs checks() on every rank and agrees on what it threw (attn::Error only).
  template <typename F>
  void agree_on(F&& checks) const {
    std::string message;
    int kind = 0;
    try {
      checks();
    } catch (const ShapeError& e) {
      message = e.what(), kind = 1;
    } catch (const ValueError& e) {
      message = e.what(), kind = 2;
    } catch (const IoError& e) {
      message = e.what(), kind = 3;
    } catch (const Error& e) {
      message = e.what(), kind = 4;
    }
    agree(message, kind);
  }

  void barrier() const;
  // In place, over every rank.
  void allreduce_sum(std::span<float> values) const;
  void allreduce_sum(std::span<double> values) const;
  void allreduce_max(std::span<double> values) const;
  void broadcast(std::span<float> values, int root) const;
  // Every rank's `values` (the same count on every rank), rank after rank.
  std::vector<int64_t> allgather(std::span<const int64_t> values) const;
  // Every rank's `send` concatenated in rank order into recv; recv_counts[r] is rank r's count.
  void allgatherv(std::span<const float> send, std::span<float> recv,
                  std::span<const int64_t> recv_counts) const;
  // Rank r's send[counts_send offsets...] to each rank; counts are element counts per rank.
  void alltoallv(std::span<const float> send, std::span<const int64_t> send_counts,
                 std::span<float> recv, std::span<const int64_t> recv_counts,
                 CommStats* stats = nullptr) const;

  // A non-blocking send or receive; wait() blocks until it completes and returns the seconds it
  // waited. The destructor waits for one still pending (never leaves MPI writing freed memory).
  class Request {
   public:
    Request();
    Request(Request&&) noexcept;
    Request& operator=(Request&&) noexcept;
    ~Request();
    double wait();
    bool pending() const;

   private:
    friend class Communicator;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  Request isend(std::span<const float> data, int dest, int tag, CommStats* stats = nullptr) const;
  Request irecv(std::span<float> data, int source, int tag) const;

  // The MPI_Comm, as an opaque pointer to it (for callers that include mpi.h themselves).
  const void* native_handle() const;

 private:
  Communicator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
};

}  // namespace attn::dist
