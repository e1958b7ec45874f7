// SPDX-License-Identifier: MIT
#include "attn/dist/communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <numeric>

namespace attn::dist {
namespace {

// Every MPI call goes through check: the communicator returns errors (MPI_ERRORS_RETURN) and they
// become attn::Error here, naming the call.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(
      detail::concat("dist: ", call, " failed: ", std::string(text, static_cast<size_t>(len))));
}

int count_of(size_t n, const char* call) {
  if (n > static_cast<size_t>(INT_MAX))
    throw ValueError(detail::concat(
        "dist: ", call, ": ", n, " elements is more than one MPI message holds (", INT_MAX, ")"));
  return static_cast<int>(n);
}

void require_mpi(const char* what) {
  if (!Environment::initialized())
    throw Error(detail::concat("dist: ", what,
                               " needs MPI: create an attn::dist::Environment in main first"));
}

[[noreturn]] void throw_kind(int kind, const std::string& message) {
  switch (kind) {
    case 1:
      throw ShapeError(message);
    case 2:
      throw ValueError(message);
    case 3:
      throw IoError(message);
    default:
      throw Error(message);
  }
}

}  // namespace

Environment::Environment(int* argc, char*** argv) {
  if (initialized()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool Environment::initialized() {
  int init = 0, finalized = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&finalized);
  return init && !finalized;
}

struct Communicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
};

Communicator::Communicator() : impl_(std::make_unique<Impl>()) {}
Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;
Communicator::~Communicator() {
  if (impl_ && impl_->comm != MPI_COMM_NULL && Environment::initialized())
    MPI_Comm_free(&impl_->comm);
}

Communicator Communicator::world() {
  require_mpi("Communicator::world");
  Communicator c;
  check(MPI_Comm_dup(MPI_COMM_WORLD, &c.impl_->comm), "MPI_Comm_dup");
  check(MPI_Comm_set_errhandler(c.impl_->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(c.impl_->comm, &c.rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(c.impl_->comm, &c.size_), "MPI_Comm_size");
  return c;
}

const void* Communicator::native_handle() const { return &impl_->comm; }

void Communicator::agree(const std::string& error_message, int error_kind) const {
  // The lowest failing rank (size_ when none failed), then its kind and message from it.
  int mine = error_message.empty() ? size_ : rank_, first = size_;
  check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, impl_->comm), "MPI_Allreduce");
  if (first == size_) return;
  int header[2] = {error_kind, count_of(error_message.size(), "agree")};
  check(MPI_Bcast(header, 2, MPI_INT, first, impl_->comm), "MPI_Bcast");
  std::string message =
      first == rank_ ? error_message : std::string(static_cast<size_t>(header[1]), ' ');
  check(MPI_Bcast(message.data(), header[1], MPI_CHAR, first, impl_->comm), "MPI_Bcast");
  if (size_ > 1) message = detail::concat("rank ", first, ": ", message);
  throw_kind(header[0], message);
}

void Communicator::barrier() const { check(MPI_Barrier(impl_->comm), "MPI_Barrier"); }

void Communicator::allreduce_sum(std::span<float> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size(), "allreduce_sum"),
                      MPI_FLOAT, MPI_SUM, impl_->comm),
        "MPI_Allreduce");
}
void Communicator::allreduce_sum(std::span<double> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size(), "allreduce_sum"),
                      MPI_DOUBLE, MPI_SUM, impl_->comm),
        "MPI_Allreduce");
}
void Communicator::allreduce_max(std::span<double> values) const {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size(), "allreduce_max"),
                      MPI_DOUBLE, MPI_MAX, impl_->comm),
        "MPI_Allreduce");
}
void Communicator::broadcast(std::span<float> values, int root) const {
  check(
      MPI_Bcast(values.data(), count_of(values.size(), "broadcast"), MPI_FLOAT, root, impl_->comm),
      "MPI_Bcast");
}

std::vector<int64_t> Communicator::allgather(std::span<const int64_t> values) const {
  std::vector<int64_t> all(values.size() * static_cast<size_t>(size_));
  const int n = count_of(values.size(), "allgather");
  check(MPI_Allgather(values.data(), n, MPI_INT64_T, all.data(), n, MPI_INT64_T, impl_->comm),
        "MPI_Allgather");
  return all;
}

void Communicator::allgatherv(std::span<const float> send, std::span<float> recv,
                              std::span<const int64_t> recv_counts) const {
  const auto p = static_cast<size_t>(size_);
  if (recv_counts.size() != p)
    throw ValueError(
        detail::concat("dist: allgatherv: counts must have one entry per rank (", size_, ")"));
  std::vector<int> rc(p), rd(p);
  int64_t off = 0;
  for (size_t i = 0; i < p; ++i) {
    rc[i] = count_of(static_cast<size_t>(recv_counts[i]), "allgatherv");
    rd[i] = count_of(static_cast<size_t>(off), "allgatherv");
    off += recv_counts[i];
  }
  if (static_cast<size_t>(off) > recv.size() ||
      static_cast<int64_t>(send.size()) != recv_counts[static_cast<size_t>(rank_)])
    throw ValueError("dist: allgatherv: the counts do not match the buffers");
  check(MPI_Allgatherv(send.data(), rc[static_cast<size_t>(rank_)], MPI_FLOAT, recv.data(),
                       rc.data(), rd.data(), MPI_FLOAT, impl_->comm),
        "MPI_Allgatherv");
}

void Communicator::alltoallv(std::span<const float> send, std::span<const int64_t> send_counts,
                             std::span<float> recv, std::span<const int64_t> recv_counts,
                             CommStats* stats) const {
  const auto p = static_cast<size_t>(size_);
  if (send_counts.size() != p || recv_counts.size() != p)
    throw ValueError(
        detail::concat("dist: alltoallv: counts must have one entry per rank (", size_, ")"));
  std::vector<int> sc(p), rc(p), sd(p), rd(p);
  int64_t soff = 0, roff = 0;
  for (size_t i = 0; i < p; ++i) {
    sc[i] = count_of(static_cast<size_t>(send_counts[i]), "alltoallv");
    rc[i] = count_of(static_cast<size_t>(recv_counts[i]), "alltoallv");
    sd[i] = count_of(static_cast<size_t>(soff), "alltoallv");
    rd[i] = count_of(static_cast<size_t>(roff), "alltoallv");
    soff += send_counts[i], roff += recv_counts[i];
  }
  if (static_cast<size_t>(soff) > send.size() || static_cast<size_t>(roff) > recv.size())
    throw ValueError("dist: alltoallv: the counts exceed the buffers");
  const auto t0 = std::chrono::steady_clock::now();
  check(MPI_Alltoallv(send.data(), sc.data(), sd.data(), MPI_FLOAT, recv.data(), rc.data(),
                      rd.data(), MPI_FLOAT, impl_->comm),
        "MPI_Alltoallv");
  if (stats) {
    stats->wait_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (size_t i = 0; i < p; ++i)
      if (static_cast<int>(i) != rank_ && sc[i] > 0) {
        stats->bytes_sent += static_cast<int64_t>(sc[i]) * static_cast<int64_t>(sizeof(float));
        ++stats->messages_sent;
      }
  }
}

struct Communicator::Request::Impl {
  MPI_Request request = MPI_REQUEST_NULL;
};

Communicator::Request::Request() : impl_(std::make_unique<Impl>()) {}
Communicator::Request::Request(Request&&) noexcept = default;
Communicator::Request& Communicator::Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (pending()) MPI_Wait(&impl_->request, MPI_STATUS_IGNORE);
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Communicator::Request::~Request() {
  if (pending() && Environment::initialized()) MPI_Wait(&impl_->request, MPI_STATUS_IGNORE);
}
bool Communicator::Request::pending() const { return impl_ && impl_->request != MPI_REQUEST_NULL; }

double Communicator::Request::wait() {
  if (!pending()) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  check(MPI_Wait(&impl_->request, MPI_STATUS_IGNORE), "MPI_Wait");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Communicator::Request Communicator::isend(std::span<const float> data, int dest, int tag,
                                          CommStats* stats) const {
  Request r;
  check(MPI_Isend(data.data(), count_of(data.size(), "isend"), MPI_FLOAT, dest, tag, impl_->comm,
                  &r.impl_->request),
        "MPI_Isend");
  if (stats) {
    stats->bytes_sent += static_cast<int64_t>(data.size() * sizeof(float));
    ++stats->messages_sent;
  }
  return r;
}

Communicator::Request Communicator::irecv(std::span<float> data, int source, int tag) const {
  Request r;
  check(MPI_Irecv(data.data(), count_of(data.size(), "irecv"), MPI_FLOAT, source, tag, impl_->comm,
                  &r.impl_->request),
        "MPI_Irecv");
  return r;
}

}  // namespace attn::dist
